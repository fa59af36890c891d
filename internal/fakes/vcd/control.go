package vcd

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vmware/go-vcloud-director/v2/types/v56"
)

// VMSpec describes a VM added behind the client's back (AddVM).
type VMSpec struct {
	Name     string // required
	VApp     string // default: Name
	VDC      string // default: Options.VDC
	GuestOS  string // an osType, default "ubuntu64Guest"
	CPUs     int    // default 1
	MemoryMB int    // default 1024
	// IP is the primary NIC's address; "" takes one from the VDC's first
	// organization network pool, "none" leaves the NIC without one.
	IP        string
	PoweredOn bool
	Tools     bool // VMware Tools installed (running when powered on)
}

// VMInfo is a snapshot of a VM as the server holds it.
type VMInfo struct {
	ID, Name, VApp, VDC  string // ID is the URN
	Status               string // as the query service spells it (POWERED_ON, ...)
	Deployed             bool
	GuestOS              string
	CPUs, MemoryMB       int
	IP, Network          string
	ComputerName         string
	AdminPassword        string // generated ("auto-UUID") with AdminPasswordAuto
	AdminPasswordAuto    bool
	CustomizationScript  string
	CustomizationEnabled bool
	StorageProfile       string
	ToolsStatus          string
	Template             string // the template it was instantiated from
}

// VAppInfo is a snapshot of a vApp.
type VAppInfo struct {
	ID, Name, VDC string
	Status        string
	Deployed      bool
	VMs           []string // names
	Networks      []VAppNetworkInfo
	Busy          bool
}

// VAppNetworkInfo is one vApp network.
type VAppNetworkInfo struct {
	Name, FenceMode, ParentNetwork string
}

func (s *Server) lock() func() {
	s.mu.Lock()
	s.st.advance()
	return s.mu.Unlock
}

func (st *state) info(m *vm) VMInfo {
	v := VMInfo{ID: "urn:vcloud:vm:" + m.id, Name: m.name, VApp: m.vapp.name, VDC: m.vapp.vdc.name,
		Status: statusName(m.status), Deployed: m.deployed, GuestOS: m.guestOS, CPUs: m.cpus, MemoryMB: m.memoryMB,
		IP: m.ip, Network: m.network, ComputerName: m.computerName, AdminPassword: m.adminPassword, AdminPasswordAuto: m.passwordAuto,
		CustomizationScript: m.script, CustomizationEnabled: m.customize, ToolsStatus: m.tools}
	if m.profile != nil {
		v.StorageProfile = m.profile.name
	}
	if m.template != nil {
		v.Template = m.template.name
	}
	return v
}

func (st *state) findVM(key string) *vm {
	if m := st.vms[uuidOf(key)]; m != nil {
		return m
	}
	for _, m := range st.vmList {
		if m.name == key {
			return m
		}
	}
	return nil
}

func (st *state) findVApp(key string) *vapp {
	if a := st.vapps[uuidOf(key)]; a != nil {
		return a
	}
	for _, a := range st.vappList {
		if a.name == key {
			return a
		}
	}
	return nil
}

// AddVM creates a vApp holding one VM, as another VCD user would, and
// records its create events in the audit trail.
func (s *Server) AddVM(spec VMSpec) (VMInfo, error) {
	defer s.lock()()
	st := s.st
	if spec.Name == "" {
		return VMInfo{}, fmt.Errorf("vcd fake: AddVM needs a name")
	}
	if spec.VApp == "" {
		spec.VApp = spec.Name
	}
	if spec.VDC == "" {
		spec.VDC = s.opts.VDC
	}
	v := st.findVDC(spec.VDC)
	if v == nil {
		return VMInfo{}, fmt.Errorf("vcd fake: no VDC %q", spec.VDC)
	}
	if st.vappByName(v, spec.VApp) != nil {
		return VMInfo{}, fmt.Errorf("vcd fake: vApp %q exists", spec.VApp)
	}
	if spec.GuestOS == "" {
		spec.GuestOS = "ubuntu64Guest"
	}
	if spec.CPUs == 0 {
		spec.CPUs = 1
	}
	if spec.MemoryMB == 0 {
		spec.MemoryMB = 1024
	}
	a := &vapp{id: newUUID(), name: spec.VApp, vdc: v, created: st.now(), owner: "system"}
	m := &vm{id: newUUID(), name: spec.Name, vapp: a, guestOS: spec.GuestOS, cpus: spec.CPUs, memoryMB: spec.MemoryMB,
		created: st.now(), network: "none", tools: "toolsNotInstalled"}
	if len(v.profiles) > 0 {
		m.profile = v.profiles[0]
	}
	if spec.IP != "none" && len(v.networks) > 0 {
		n := v.networks[0]
		vn := &vappNet{id: newUUID(), name: n.name, parent: n, fence: types.FenceModeBridged}
		a.nets = []*vappNet{vn}
		m.network = n.name
		if spec.IP == "" {
			ip, ok := n.allocate()
			if !ok {
				return VMInfo{}, fmt.Errorf("vcd fake: network %q has no free address", n.name)
			}
			m.ip = ip.String()
		} else {
			ip, err := netip.ParseAddr(spec.IP)
			if err != nil {
				return VMInfo{}, fmt.Errorf("vcd fake: bad IP %q", spec.IP)
			}
			n.used[ip] = true
			m.ip = ip.String()
		}
	}
	if spec.Tools {
		m.tools = "toolsNotRunning"
	}
	m.status = statusPoweredOff
	if spec.PoweredOn {
		m.status, m.deployed = statusPoweredOn, true
		if spec.Tools {
			m.tools = "toolsOk"
		}
	}
	a.vms = []*vm{m}
	aggregate(a)
	st.addVApp(a)
	st.record(EventVAppCreate, a.name, "urn:vcloud:vapp:"+a.id, v.org, "system", nil)
	st.record(EventVMCreate, m.name, "urn:vcloud:vm:"+m.id, v.org, "system", nil)
	return st.info(m), nil
}

// RemoveVApp deletes a vApp (by name or id) and its VMs, whatever their
// state, recording the delete events.
func (s *Server) RemoveVApp(key string) error {
	defer s.lock()()
	st := s.st
	a := st.findVApp(key)
	if a == nil {
		return fmt.Errorf("vcd fake: no vApp %q", key)
	}
	for _, m := range a.vms {
		st.record(EventVMDelete, m.name, "urn:vcloud:vm:"+m.id, a.vdc.org, "system", nil)
	}
	st.record(EventVAppDelete, a.name, "urn:vcloud:vapp:"+a.id, a.vdc.org, "system", nil)
	st.removeVApp(a)
	return nil
}

// RemoveVM deletes one VM (by name or id) from its vApp.
func (s *Server) RemoveVM(key string) error {
	defer s.lock()()
	st := s.st
	m := st.findVM(key)
	if m == nil {
		return fmt.Errorf("vcd fake: no VM %q", key)
	}
	st.record(EventVMDelete, m.name, "urn:vcloud:vm:"+m.id, m.vapp.vdc.org, "system", nil)
	a := m.vapp
	st.removeVM(m)
	aggregate(a)
	return nil
}

// RenameVM renames a VM and records a modify event.
func (s *Server) RenameVM(key, name string) error {
	return s.modifyVM(key, func(m *vm) { m.name = name })
}

// RenameVApp renames a vApp and records a vApp modify event.
func (s *Server) RenameVApp(key, name string) error {
	defer s.lock()()
	st := s.st
	a := st.findVApp(key)
	if a == nil {
		return fmt.Errorf("vcd fake: no vApp %q", key)
	}
	a.name = name
	st.record(EventVAppModify, a.name, "urn:vcloud:vapp:"+a.id, a.vdc.org, "system", nil)
	return nil
}

// SetVMIP changes the address the guest reports on its primary NIC.
func (s *Server) SetVMIP(key, ip string) error {
	return s.modifyVM(key, func(m *vm) { m.ip = ip })
}

// SetGuestState sets a VM's power state behind the client's back: on
// powers it on (deployed), off powers it off and undeploys it.
func (s *Server) SetGuestState(key string, on bool) error {
	return s.modifyVM(key, func(m *vm) {
		if on {
			m.status, m.deployed = statusPoweredOn, true
			if m.tools == "toolsNotRunning" {
				m.tools = "toolsOk"
			}
		} else {
			m.status, m.deployed = statusPoweredOff, false
			if m.tools == "toolsOk" {
				m.tools = "toolsNotRunning"
			}
		}
		aggregate(m.vapp)
	})
}

// SetToolsStatus sets vmToolsStatus (toolsOk, toolsNotRunning,
// toolsNotInstalled, toolsOld).
func (s *Server) SetToolsStatus(key, status string) error {
	return s.modifyVM(key, func(m *vm) { m.tools = status })
}

// SetHardware sets CPUs and memory behind the client's back.
func (s *Server) SetHardware(key string, cpus, memoryMB int) error {
	return s.modifyVM(key, func(m *vm) { m.cpus, m.memoryMB = cpus, memoryMB })
}

func (s *Server) modifyVM(key string, f func(*vm)) error {
	defer s.lock()()
	st := s.st
	m := st.findVM(key)
	if m == nil {
		return fmt.Errorf("vcd fake: no VM %q", key)
	}
	f(m)
	st.record(EventVMModify, m.name, "urn:vcloud:vm:"+m.id, m.vapp.vdc.org, "system", nil)
	return nil
}

// VM returns a snapshot of the VM named (or with id) key.
func (s *Server) VM(key string) (VMInfo, bool) {
	defer s.lock()()
	m := s.st.findVM(key)
	if m == nil {
		return VMInfo{}, false
	}
	return s.st.info(m), true
}

// VMs returns snapshots of every VM (not the template VMs).
func (s *Server) VMs() []VMInfo {
	defer s.lock()()
	out := make([]VMInfo, 0, len(s.st.vmList))
	for _, m := range s.st.vmList {
		out = append(out, s.st.info(m))
	}
	return out
}

// VApp returns a snapshot of the vApp named (or with id) key.
func (s *Server) VApp(key string) (VAppInfo, bool) {
	defer s.lock()()
	a := s.st.findVApp(key)
	if a == nil {
		return VAppInfo{}, false
	}
	return vappInfo(a), true
}

// VApps returns snapshots of every vApp.
func (s *Server) VApps() []VAppInfo {
	defer s.lock()()
	out := make([]VAppInfo, 0, len(s.st.vappList))
	for _, a := range s.st.vappList {
		out = append(out, vappInfo(a))
	}
	return out
}

func vappInfo(a *vapp) VAppInfo {
	v := VAppInfo{ID: "urn:vcloud:vapp:" + a.id, Name: a.name, VDC: a.vdc.name, Status: statusName(a.status),
		Deployed: a.deployed, Busy: a.busy > 0}
	for _, m := range a.vms {
		v.VMs = append(v.VMs, m.name)
	}
	for _, n := range a.nets {
		ni := VAppNetworkInfo{Name: n.name, FenceMode: n.fence}
		if n.parent != nil {
			ni.ParentNetwork = n.parent.name
		}
		v.Networks = append(v.Networks, ni)
	}
	return v
}

// FailNextTask makes the next task with this operationName fail (""
// matches any task) with message: the task ends with status "error" and
// Error{majorErrorCode 500, minorErrorCode INTERNAL_SERVER_ERROR}. A
// failed instantiation leaves its vApp in FAILED_CREATION. Operation
// names: vdcInstantiateVapp, vappDeploy, vappUndeployPowerOff,
// vappPowerOn, vappPowerOff, vappShutdownGuest, vappReset,
// vappRebootGuest, vappSuspend, vdcDeleteVapp, vappDeleteVm,
// vappUpdateVm, natRuleCreate, natRuleUpdate, natRuleDelete,
// edgeFirewallUpdate, firewallGroupCreate, firewallGroupDelete.
func (s *Server) FailNextTask(operationName, message string) {
	defer s.lock()()
	s.st.failNext = append(s.st.failNext, failRule{op: operationName, msg: message})
}

// SetTaskDuration changes how long new tasks run.
func (s *Server) SetTaskDuration(d time.Duration) {
	defer s.lock()()
	s.st.taskDuration = d
	s.opts.TaskDuration = d
}

// SetGatewayTaskDuration changes how long new edge gateway writes run.
func (s *Server) SetGatewayTaskDuration(d time.Duration) {
	defer s.lock()()
	s.opts.GatewayTaskDuration = d
}

// SetGatewayBusy keeps the edge gateway busy for d, as an operation of
// another client would: writes meanwhile get BUSY_ENTITY.
func (s *Server) SetGatewayBusy(name string, d time.Duration) error {
	defer s.lock()()
	st := s.st
	for _, g := range st.gateways {
		if g.name == name {
			saved := st.taskDuration
			st.taskDuration = d
			g.busy = st.newTask("natRuleCreate", "NAT_RULE_CREATE "+g.name, types.Reference{ID: g.urn(), Name: g.name}, nil, nil, nil)
			st.taskDuration = saved
			g.busyOp = "NAT_RULE_CREATE"
			return nil
		}
	}
	return fmt.Errorf("vcd fake: no edge gateway %q", name)
}

// ExpireSessions makes every current token invalid, as an idle timeout
// would: the next call with it gets 401 and a new login works.
func (s *Server) ExpireSessions() {
	defer s.lock()()
	for k := range s.st.sessions {
		delete(s.st.sessions, k)
		s.st.sessionsEnded++
	}
}

// SessionsCreated is the number of logins (sessions and API-token
// exchanges) served.
func (s *Server) SessionsCreated() int {
	defer s.lock()()
	return s.st.sessionsCreated
}

// ActiveSessions is the number of sessions neither logged out nor expired.
func (s *Server) ActiveSessions() int {
	defer s.lock()()
	n := 0
	now := s.st.now()
	for _, ses := range s.st.sessions {
		if ses.expires.IsZero() || now.Before(ses.expires) {
			n++
		}
	}
	return n
}

// AddUser adds a user with a role (RoleOrgAdmin, RoleVAppUser, or any
// role name) to an organization, creating the organization when missing.
// Roles are reported by /cloudapi/1.0.0/sessions/current, not enforced.
func (s *Server) AddUser(orgName, name, password, role string) error {
	defer s.lock()()
	st := s.st
	o := st.findOrg(orgName)
	if o == nil {
		o = st.addOrg(orgName)
	}
	for _, u := range st.users {
		if u.org == o && u.name == name {
			return fmt.Errorf("vcd fake: user %q exists in %q", name, orgName)
		}
	}
	st.users = append(st.users, &user{org: o, name: name, password: password, role: role})
	return nil
}

// AddCatalog adds an empty catalog: shared, it belongs to org System
// and is published to every organization (a public catalog); otherwise
// it belongs to the default organization.
func (s *Server) AddCatalog(name string, shared bool) error {
	defer s.lock()()
	st := s.st
	if st.findCatalog(name) != nil {
		return fmt.Errorf("vcd fake: catalog %q exists", name)
	}
	if shared {
		st.addCatalog(st.findOrg("System"), name).shared = true
	} else {
		st.addCatalog(st.findOrg(s.opts.Org), name)
	}
	return nil
}

// AddTemplate adds a single-VM vApp template to a catalog (created in the
// default organization when missing); its storage is in the default VDC.
func (s *Server) AddTemplate(catalogName, name, guestOS string, cpus, memoryMB int, tools bool) error {
	defer s.lock()()
	st := s.st
	c := st.findCatalog(catalogName)
	if c == nil {
		c = st.addCatalog(st.findOrg(s.opts.Org), catalogName)
	}
	st.addTemplate(c, st.findVDC(s.opts.VDC), name, guestOS, cpus, memoryMB, tools)
	return nil
}

// AddStorageProfile adds a storage policy to a VDC.
func (s *Server) AddStorageProfile(vdcName, name string) error {
	defer s.lock()()
	v := s.st.findVDC(vdcName)
	if v == nil {
		return fmt.Errorf("vcd fake: no VDC %q", vdcName)
	}
	s.st.addProfile(v, name, false)
	return nil
}

func (st *state) findGateway(name string) *gateway {
	for _, g := range st.gateways {
		if g.name == name {
			return g
		}
	}
	return nil
}

// NATRules returns copies of an edge gateway's NAT rules.
func (s *Server) NATRules(gatewayName string) []types.NsxtNatRule {
	defer s.lock()()
	g := s.st.findGateway(gatewayName)
	if g == nil {
		return nil
	}
	out := make([]types.NsxtNatRule, len(g.nat))
	for i, r := range g.nat {
		out[i] = *r
	}
	return out
}

// FirewallRules returns copies of an edge gateway's user-defined rules.
func (s *Server) FirewallRules(gatewayName string) []types.NsxtFirewallRule {
	defer s.lock()()
	g := s.st.findGateway(gatewayName)
	if g == nil {
		return nil
	}
	out := make([]types.NsxtFirewallRule, len(g.fw))
	for i, r := range g.fw {
		out[i] = *r
	}
	return out
}

// FirewallGroups returns copies of an edge gateway's firewall groups.
func (s *Server) FirewallGroups(gatewayName string) []types.NsxtFirewallGroup {
	defer s.lock()()
	g := s.st.findGateway(gatewayName)
	if g == nil {
		return nil
	}
	out := make([]types.NsxtFirewallGroup, len(g.groups))
	for i, r := range g.groups {
		out[i] = *r
	}
	return out
}

// AuditEvents returns a copy of the audit trail, oldest first.
func (s *Server) AuditEvents() []AuditEvent {
	defer s.lock()()
	s.st.purgeAudit()
	return append([]AuditEvent(nil), s.st.audit...)
}

// RunningTasks is the number of tasks still running.
func (s *Server) RunningTasks() int {
	defer s.lock()()
	return len(s.st.running)
}
