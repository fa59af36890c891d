package vcd

import (
	"net/netip"
	"time"

	"github.com/vmware/go-vcloud-director/v2/types/v56"
)

// Resource status codes of the vCloud API (ResourceEntityType status).
const (
	statusFailedCreation = -1
	statusUnresolved     = 0
	statusResolved       = 1
	statusSuspended      = 3
	statusPoweredOn      = 4
	statusPoweredOff     = 8
)

// statusName is the query service's spelling of a status code.
func statusName(c int) string {
	switch c {
	case statusFailedCreation:
		return "FAILED_CREATION"
	case statusUnresolved:
		return "UNRESOLVED"
	case statusResolved:
		return "RESOLVED"
	case statusSuspended:
		return "SUSPENDED"
	case statusPoweredOn:
		return "POWERED_ON"
	case statusPoweredOff:
		return "POWERED_OFF"
	}
	return "UNKNOWN"
}

type org struct {
	id, name, fullName string
}

// Roles a user may hold.
const (
	RoleOrgAdmin = "Organization Administrator"
	RoleVAppUser = "vApp User"
	RoleSysAdmin = "System Administrator"
)

type user struct {
	org            *org
	name, password string
	role           string
}

type session struct {
	token, id string
	org       *org
	user      *user
	expires   time.Time // zero: never
}

type vdc struct {
	id, name string
	org      *org
	profiles []*storageProfile
	networks []*orgNetwork
}

type storageProfile struct {
	id, name string
	vdc      *vdc
	def      bool
}

type orgNetwork struct {
	id, name  string
	vdc       *vdc
	prefix    netip.Prefix
	gateway   netip.Addr
	poolStart netip.Addr
	poolEnd   netip.Addr
	used      map[netip.Addr]bool
	edge      *gateway
	next      netip.Addr // where the next search starts
}

// allocate returns a free address of the static pool, searching from
// after the last one given and wrapping around once.
func (n *orgNetwork) allocate() (netip.Addr, bool) {
	start := n.next
	if !start.IsValid() || start.Compare(n.poolStart) < 0 || start.Compare(n.poolEnd) > 0 {
		start = n.poolStart
	}
	for _, rg := range [][2]netip.Addr{{start, n.poolEnd}, {n.poolStart, start}} {
		for a := rg[0]; a.IsValid() && a.Compare(rg[1]) <= 0; a = a.Next() {
			if !n.used[a] {
				n.used[a] = true
				n.next = a.Next()
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

type catalog struct {
	id, name string
	org      *org
	shared   bool
	items    []*catalogItem
	created  time.Time
}

type catalogItem struct {
	id, name string
	catalog  *catalog
	tpl      *template
}

type template struct {
	id, name       string
	item           *catalogItem
	vdc            *vdc
	vmID, vmName   string
	guestOS        string
	cpus, memoryMB int
	tools          bool
	created        time.Time
	vmCount        int
}

type vappNet struct {
	id, name string
	parent   *orgNetwork
	fence    string
	scope    *types.IPScope // from the request, when given
	used     map[netip.Addr]bool
}

type vapp struct {
	id, name    string
	description string
	vdc         *vdc
	status      int
	deployed    bool
	vms         []*vm
	nets        []*vappNet
	created     time.Time
	busy        int    // running tasks
	busyOp      string // the operation of the last task started
	owner       string
}

type vm struct {
	id, name       string
	vapp           *vapp
	status         int
	deployed       bool
	guestOS        string
	cpus, memoryMB int
	ip             string
	network        string // the vApp network the primary NIC is on
	computerName   string
	adminPassword  string
	script         string
	customize      bool
	profile        *storageProfile
	tools          string // vmToolsStatus
	created        time.Time
	template       *template
	deleted        bool
	strs           *vmStrings // the record's fixed strings, built once
}

// vmStrings are the parts of a VM's query record that never change.
type vmStrings struct {
	href, urn, container, vdc, created string
}

// task is an asynchronous operation.
type task struct {
	id            string
	operationName string
	operation     string
	owner         types.Reference
	org           *org
	user          string
	start, end    time.Time
	dur           time.Duration
	status        string // running, success, error
	errv          *types.Error
	failMsg       string
	effect        func() *apiError
	onFail        func()
}

type state struct {
	base string
	opts Options
	now  func() time.Time

	orgs            []*org
	users           []*user
	sessions        map[string]*session
	sessionsCreated int
	sessionsEnded   int

	vdcs        []*vdc
	catalogs    []*catalog
	vapps       map[string]*vapp
	vappList    []*vapp
	vms         map[string]*vm
	vmList      []*vm
	tasks       map[string]*task
	running     []*task
	audit       []AuditEvent
	gateways    []*gateway
	appProfiles []*appProfile

	taskDuration time.Duration
	failNext     []failRule
	lastAudit    time.Time
}

type failRule struct {
	op, msg string
}

func newState(base string, o Options) *state {
	return &state{
		base:         base,
		opts:         o,
		now:          time.Now,
		sessions:     map[string]*session{},
		vapps:        map[string]*vapp{},
		vms:          map[string]*vm{},
		tasks:        map[string]*task{},
		taskDuration: o.TaskDuration,
	}
}

func (st *state) seed(o Options) {
	sys := &org{id: newUUID(), name: "System", fullName: "System Organization"}
	st.orgs = append(st.orgs, sys)
	st.users = append(st.users, &user{org: sys, name: "administrator", password: o.SysAdminPassword, role: RoleSysAdmin})
	tenant := st.addOrg(o.Org)
	st.users = append(st.users, &user{org: tenant, name: o.User, password: o.Password, role: RoleOrgAdmin})
	v := st.addVDC(tenant, o.VDC)
	st.addProfile(v, o.StorageProfile, true)
	gw := st.addGateway(v, o.EdgeGateway, netip.MustParsePrefix("203.0.113.1/24"),
		mustAddr("203.0.113.2"), mustAddr("203.0.113.10"), mustAddr("203.0.113.40"))
	n := st.addNetwork(v, o.Network, netip.MustParsePrefix("10.10.0.1/16"), mustAddr("10.10.1.1"), mustAddr("10.10.254.254"))
	n.edge = gw
	c := st.addCatalog(tenant, o.Catalog)
	st.addTemplate(c, v, o.Template, "ubuntu64Guest", 2, 2048, true)
	st.seedAppProfiles()
}

func (st *state) href(p string) string { return st.base + "/api/" + p }

func (st *state) findOrg(name string) *org {
	for _, o := range st.orgs {
		if o.name == name {
			return o
		}
	}
	return nil
}

func (st *state) addOrg(name string) *org {
	o := &org{id: newUUID(), name: name, fullName: name}
	st.orgs = append(st.orgs, o)
	return o
}

func (st *state) addVDC(o *org, name string) *vdc {
	v := &vdc{id: newUUID(), name: name, org: o}
	st.vdcs = append(st.vdcs, v)
	return v
}

func (st *state) addProfile(v *vdc, name string, def bool) *storageProfile {
	p := &storageProfile{id: newUUID(), name: name, vdc: v, def: def}
	v.profiles = append(v.profiles, p)
	return p
}

func (st *state) addNetwork(v *vdc, name string, gwPrefix netip.Prefix, start, end netip.Addr) *orgNetwork {
	n := &orgNetwork{id: newUUID(), name: name, vdc: v, prefix: gwPrefix.Masked(), gateway: gwPrefix.Addr(),
		poolStart: start, poolEnd: end, used: map[netip.Addr]bool{}}
	v.networks = append(v.networks, n)
	return n
}

func (st *state) addCatalog(o *org, name string) *catalog {
	c := &catalog{id: newUUID(), name: name, org: o, created: st.now()}
	st.catalogs = append(st.catalogs, c)
	return c
}

func (st *state) addTemplate(c *catalog, v *vdc, name, guestOS string, cpus, mem int, tools bool) *template {
	t := &template{id: newUUID(), name: name, vdc: v, vmID: newUUID(), vmName: name, guestOS: guestOS,
		cpus: cpus, memoryMB: mem, tools: tools, created: st.now(), vmCount: 1}
	it := &catalogItem{id: newUUID(), name: name, catalog: c, tpl: t}
	t.item = it
	c.items = append(c.items, it)
	return t
}

func (st *state) findVDC(name string) *vdc {
	for _, v := range st.vdcs {
		if v.name == name {
			return v
		}
	}
	return nil
}

func (st *state) vdcByID(id string) *vdc {
	for _, v := range st.vdcs {
		if v.id == id {
			return v
		}
	}
	return nil
}

func (st *state) findCatalog(name string) *catalog {
	for _, c := range st.catalogs {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (st *state) templates() []*template {
	var out []*template
	for _, c := range st.catalogs {
		for _, it := range c.items {
			out = append(out, it.tpl)
		}
	}
	return out
}

func (st *state) templateByID(id string) *template {
	for _, t := range st.templates() {
		if t.id == id {
			return t
		}
	}
	return nil
}

func (st *state) templateByVMID(id string) *template {
	for _, t := range st.templates() {
		if t.vmID == id {
			return t
		}
	}
	return nil
}

func (st *state) networkByID(id string) *orgNetwork {
	for _, v := range st.vdcs {
		for _, n := range v.networks {
			if n.id == id {
				return n
			}
		}
	}
	return nil
}

func (st *state) profileByID(id string) *storageProfile {
	for _, v := range st.vdcs {
		for _, p := range v.profiles {
			if p.id == id {
				return p
			}
		}
	}
	return nil
}

// addVApp registers a vApp (and its VMs) in the inventory.
func (st *state) addVApp(a *vapp) {
	st.vapps[a.id] = a
	st.vappList = append(st.vappList, a)
	for _, m := range a.vms {
		st.vms[m.id] = m
		st.vmList = append(st.vmList, m)
	}
}

// removeVApp drops a vApp and its VMs, releasing their addresses.
func (st *state) removeVApp(a *vapp) {
	delete(st.vapps, a.id)
	for i, x := range st.vappList {
		if x == a {
			st.vappList = append(st.vappList[:i:i], st.vappList[i+1:]...)
			break
		}
	}
	gone := map[*vm]bool{}
	for _, m := range a.vms {
		delete(st.vms, m.id)
		m.deleted = true
		gone[m] = true
		st.releaseIP(m)
	}
	kept := st.vmList[:0]
	for _, m := range st.vmList {
		if !gone[m] {
			kept = append(kept, m)
		}
	}
	for i := len(kept); i < len(st.vmList); i++ {
		st.vmList[i] = nil
	}
	st.vmList = kept
}

func (st *state) releaseIP(m *vm) {
	if m.ip == "" {
		return
	}
	a, err := netip.ParseAddr(m.ip)
	if err != nil {
		return
	}
	for _, n := range m.vapp.nets {
		if n.name == m.network {
			if n.used != nil {
				delete(n.used, a)
			} else if n.parent != nil {
				delete(n.parent.used, a)
			}
		}
	}
}

func (st *state) vappByName(v *vdc, name string) *vapp {
	for _, a := range st.vappList {
		if a.vdc == v && a.name == name {
			return a
		}
	}
	return nil
}

// ---- tasks ----

// newTask starts a task; effect runs when it completes successfully.
func (st *state) newTask(opName, operation string, owner types.Reference, s *session, effect func() *apiError, onFail func()) *task {
	t := &task{id: newUUID(), operationName: opName, operation: operation, owner: owner,
		start: st.now(), dur: st.taskDuration, status: "running", effect: effect, onFail: onFail}
	if s != nil {
		t.org = s.org
		t.user = s.user.name
	}
	for i, r := range st.failNext {
		if r.op == "" || r.op == opName {
			t.failMsg = r.msg
			st.failNext = append(st.failNext[:i:i], st.failNext[i+1:]...)
			break
		}
	}
	st.tasks[t.id] = t
	st.running = append(st.running, t)
	return t
}

// advance completes the tasks whose time has come.
func (st *state) advance() {
	if len(st.running) == 0 {
		return
	}
	now := st.now()
	kept := st.running[:0]
	for _, t := range st.running {
		if now.Before(t.start.Add(t.dur)) {
			kept = append(kept, t)
			continue
		}
		t.end = now
		if t.failMsg != "" {
			t.status = "error"
			t.errv = &types.Error{MajorErrorCode: 500, MinorErrorCode: "INTERNAL_SERVER_ERROR", Message: t.failMsg}
			if t.onFail != nil {
				t.onFail()
			}
			continue
		}
		if t.effect != nil {
			if e := t.effect(); e != nil {
				t.status = "error"
				t.errv = &types.Error{MajorErrorCode: e.status, MinorErrorCode: e.minor, Message: e.msg}
				if t.onFail != nil {
					t.onFail()
				}
				continue
			}
		}
		t.status = "success"
	}
	for i := len(kept); i < len(st.running); i++ {
		st.running[i] = nil
	}
	st.running = kept
}

// cancel aborts a running task: its effect never happens and its failure
// path runs (a cancelled instantiation leaves its vApp FAILED_CREATION).
func (st *state) cancel(t *task) {
	if t.status != "running" {
		return
	}
	t.status, t.end = "aborted", st.now()
	for i, x := range st.running {
		if x == t {
			st.running = append(st.running[:i:i], st.running[i+1:]...)
			break
		}
	}
	if t.onFail != nil {
		t.onFail()
	}
}

func (st *state) taskXML(t *task) *types.Task {
	x := &types.Task{
		HREF:             st.href("task/" + t.id),
		Type:             types.MimeTask,
		ID:               "urn:vcloud:task:" + t.id,
		Name:             "task",
		Status:           t.status,
		Operation:        t.operation,
		OperationName:    t.operationName,
		ServiceNamespace: "com.vmware.cloud",
		StartTime:        vcdTime(t.start),
		ExpiryTime:       vcdTime(t.start.Add(30 * 24 * time.Hour)),
		Owner:            &types.Reference{HREF: t.owner.HREF, ID: t.owner.ID, Type: t.owner.Type, Name: t.owner.Name},
		Error:            t.errv,
	}
	if t.org != nil {
		x.Organization = &types.Reference{HREF: st.href("org/" + t.org.id), Name: t.org.name, Type: types.MimeOrg, ID: "urn:vcloud:org:" + t.org.id}
	}
	if t.user != "" {
		x.User = &types.Reference{Name: t.user, Type: "application/vnd.vmware.admin.user+xml"}
	}
	switch t.status {
	case "running":
		if t.dur > 0 {
			x.Progress = int(st.now().Sub(t.start) * 100 / t.dur)
			if x.Progress > 99 {
				x.Progress = 99
			}
		}
		x.Link = &types.LinkList{{Rel: "task:cancel", HREF: st.href("task/" + t.id + "/action/cancel")}}
	default:
		x.Progress = 100
		x.EndTime = vcdTime(t.end)
	}
	return x
}

// ---- audit trail ----

// AuditEvent is one entry of /cloudapi/1.0.0/auditTrail (the
// AuditTrailEvent model of the VCD OpenAPI).
type AuditEvent struct {
	EventID              string         `json:"eventId"`
	Description          string         `json:"description"`
	OperatingOrg         EntityRef      `json:"operatingOrg"`
	User                 EntityRef      `json:"user"`
	EventEntity          EntityRef      `json:"eventEntity"`
	TaskID               *string        `json:"taskId"`
	TaskCellID           *string        `json:"taskCellId"`
	CellID               string         `json:"cellId"`
	EventType            string         `json:"eventType"`
	ServiceNamespace     string         `json:"serviceNamespace"`
	EventStatus          string         `json:"eventStatus"`
	Timestamp            string         `json:"timestamp"`
	External             bool           `json:"external"`
	AdditionalProperties map[string]any `json:"additionalProperties"`

	at time.Time
}

// EntityRef is the OpenAPI EntityReference {name, id}.
type EntityRef struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// Event types the fake records.
const (
	EventVMCreate   = "com/vmware/vcloud/event/vm/create"
	EventVMModify   = "com/vmware/vcloud/event/vm/modify"
	EventVMDelete   = "com/vmware/vcloud/event/vm/delete"
	EventVMDeploy   = "com/vmware/vcloud/event/vm/deploy"
	EventVMUndeploy = "com/vmware/vcloud/event/vm/undeploy"
	EventVAppCreate = "com/vmware/vcloud/event/vapp/create"
	EventVAppModify = "com/vmware/vcloud/event/vapp/modify"
	EventVAppDelete = "com/vmware/vcloud/event/vapp/delete"
)

func (st *state) record(evType, entityName, entityURN string, o *org, userName string, t *task) {
	now := st.now().UTC().Truncate(time.Millisecond)
	if now.Before(st.lastAudit) {
		now = st.lastAudit
	}
	st.lastAudit = now
	ev := AuditEvent{
		EventID:          "urn:vcloud:audit:" + newUUID(),
		Description:      evType + " " + entityName,
		EventEntity:      EntityRef{Name: entityName, ID: entityURN},
		CellID:           "urn:vcloud:cell:00000000-0000-0000-0000-000000000001",
		EventType:        evType,
		ServiceNamespace: "com.vmware.cloud",
		EventStatus:      "SUCCESS",
		Timestamp:        vcdTime(now),
		at:               now,
	}
	if o != nil {
		ev.OperatingOrg = EntityRef{Name: o.name, ID: "urn:vcloud:org:" + o.id}
	}
	ev.User = EntityRef{Name: userName}
	if t != nil {
		id := "urn:vcloud:task:" + t.id
		ev.TaskID = &id
	}
	st.audit = append(st.audit, ev)
}
