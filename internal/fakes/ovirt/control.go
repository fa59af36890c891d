package ovirt

import (
	"container/heap"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// --- fault switches ---

// Rule makes matching API requests slow or fail. Method "" matches any
// method; Path is the path under /ovirt-engine/api with "*" standing for
// one segment ("/vms/*/start"), "" matching every path. Times is how many
// requests it applies to (0: until removed). Delay is added before the
// answer; a non-zero Status answers a fault instead of serving the
// request (after the token check): <fault> with Reason and Detail, or an
// empty body when both are empty. Drop closes the connection without an
// answer, before the request is served (DropBefore: nothing happened) or
// after (DropAfter: the engine did the work, the client cannot know).
type Rule struct {
	Method, Path   string
	Times          int
	Delay          time.Duration
	Status         int
	Reason, Detail string
	Drop           Drop
}

// Drop says when a Rule hangs up.
type Drop int

// Drop values.
const (
	NoDrop Drop = iota
	DropBefore
	DropAfter
)

type ruleState struct {
	Rule
	id   int
	used int
}

// AddRule installs r and returns a function removing it. Rules are tried
// in the order they were added; the first that matches applies.
func (s *Server) AddRule(r Rule) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ruleSeq++
	rs := &ruleState{Rule: r, id: s.ruleSeq}
	s.rules = append(s.rules, rs)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, x := range s.rules {
			if x == rs {
				s.rules = append(s.rules[:i], s.rules[i+1:]...)
				return
			}
		}
	}
}

// matchRule finds and uses the first rule for the request. s.mu is held.
func (s *Server) matchRule(method, path string) *Rule {
	p := strings.TrimPrefix(path, apiPrefix)
	if p == path && path != apiPrefix {
		return nil // not an API path
	}
	for i, r := range s.rules {
		if r.Method != "" && r.Method != method {
			continue
		}
		if r.Path != "" && !pathMatch(r.Path, p) {
			continue
		}
		r.used++
		if r.Times > 0 && r.used >= r.Times {
			s.rules = append(s.rules[:i], s.rules[i+1:]...)
		}
		out := r.Rule
		return &out
	}
	return nil
}

func pathMatch(pat, p string) bool {
	a := strings.Split(strings.Trim(pat, "/"), "/")
	b := strings.Split(strings.Trim(p, "/"), "/")
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != "*" && a[i] != b[i] {
			return false
		}
	}
	return true
}

// FaultVMLocked makes the next times requests matching method and path
// fail as the engine does while a VM's images are locked: 409, "Cannot
// <action> VM: VM is locked. Please try again in a few minutes.".
func (s *Server) FaultVMLocked(method, path, action string, times int) (remove func()) {
	return s.AddRule(Rule{Method: method, Path: path, Times: times, Status: http.StatusConflict,
		Reason: "Operation Failed", Detail: "[Cannot " + action + " VM: VM is locked. Please try again in a few minutes.]"})
}

// FaultInProgress makes the next times requests matching method and path
// fail as the engine does when another command holds the object's lock:
// 409, "Cannot <action> VM. Related operation is currently in progress.
// Please try again later.".
func (s *Server) FaultInProgress(method, path, action string, times int) (remove func()) {
	return s.AddRule(Rule{Method: method, Path: path, Times: times, Status: http.StatusConflict,
		Reason: "Operation Failed", Detail: "[Cannot " + action + " VM. Related operation is currently in progress. Please try again later.]"})
}

// LockVM holds the engine's in-memory lock on a VM, as a long command
// does: every action on it (start, stop, shutdown, remove, update, NIC
// changes) is 409 "Related operation is currently in progress" until
// unlock is called.
func (s *Server) LockVM(id string) (unlock func()) {
	s.mu.Lock()
	s.locks[id]++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.locks[id]--
			if s.locks[id] <= 0 {
				delete(s.locks, id)
			}
			s.mu.Unlock()
		})
	}
}

// SetLatency adds d before every answer (API, SSO and pki-resource).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// ExpireTokens makes every token issued so far expired: requests that
// carry one get 401 with the engine's HTML page (go-ovirt returns
// *ResponseParseError for it, not *AuthError).
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	for _, t := range s.tokens {
		t.expired = true
	}
	s.mu.Unlock()
}

// Restart restarts the engine: every token is forgotten (401 HTML for
// them afterwards), jobs still running end as unknown (the engine marks
// them so at start-up; the VMs' own changes go on), events "Stopping
// oVirt Engine." (2) and "Starting oVirt Engine." (1) are posted, and
// for down the engine answers every request with the 503 page the Apache
// proxy in front of it writes. VMs, templates and the event history
// survive, as they live in the database.
func (s *Server) Restart(down time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	now := s.now()
	s.post(now, CodeEngineStop, "normal", "Stopping oVirt Engine.", nil, "", false)
	s.tokens = map[string]*token{}
	for _, j := range s.jobs {
		s.endJob(j, "unknown", now)
	}
	s.down = now.Add(down)
	s.startPending = true
	// What falls due while the engine is down is seen when it is back.
	for _, t := range s.timers {
		if t.at.Before(s.down) {
			t.at = s.down
		}
	}
	heap.Init(&s.timers)
}

// PurgeEventsBefore deletes events older than t, as the engine's nightly
// audit log cleanup does, and returns the index of the oldest event kept
// (0 if none is left).
func (s *Server) PurgeEventsBefore(t time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	i := 0
	for i < len(s.events) && s.events[i].time.Before(t) {
		i++
	}
	s.events = append([]*event(nil), s.events[i:]...)
	return s.oldest()
}

// PurgeEventsThrough deletes the events with index <= index and returns
// the oldest index kept (0 if none is left).
func (s *Server) PurgeEventsThrough(index int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	i := 0
	for i < len(s.events) && s.events[i].index <= index {
		i++
	}
	s.events = append([]*event(nil), s.events[i:]...)
	return s.oldest()
}

func (s *Server) oldest() int64 {
	if len(s.events) == 0 {
		return 0
	}
	return s.events[0].index
}

// OldestEventIndex is the index of the oldest event kept (0 if none).
func (s *Server) OldestEventIndex() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oldest()
}

// LastEventIndex is the index of the newest event (0 if none).
func (s *Server) LastEventIndex() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return s.eventSeq
}

// SuppressDuplicates drops an event when one with the same code for the
// same VM was posted less than interval before it (0: off, the default),
// as the engine's audit log does for repeated events; the event's
// flood_rate shows the interval in seconds. Suppressed counts them.
func (s *Server) SuppressDuplicates(interval time.Duration) {
	s.mu.Lock()
	s.dupInterval = interval
	s.mu.Unlock()
}

// Suppressed is how many events duplicate suppression dropped.
func (s *Server) Suppressed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.suppressed
}

// SetIPChangeEvents turns the 934 event posted when a VM's reported
// addresses change on (the default) or off. Whether an engine logs one
// when the guest agent reports new addresses is not established; turn it
// off to test a driver's periodic resync alone.
func (s *Server) SetIPChangeEvents(on bool) {
	s.mu.Lock()
	s.ipEvents = on
	s.mu.Unlock()
}

// FailNextCopies makes the disk copy of the next n added VMs fail: the VM
// stays image_locked for its steps, then event 60 is posted, its job
// fails and the VM is removed, as the engine ends a failed
// AddVmFromTemplate.
func (s *Server) FailNextCopies(n int) {
	s.mu.Lock()
	s.failCopies = n
	s.mu.Unlock()
}

// --- counters ---

// Stats counts what the server saw.
type Stats struct {
	Logins       int // tokens issued
	FailedLogins int
	Logouts      int // sso-logout calls that revoked a token
	EmptyLogouts int // sso-logout calls with no or an unknown token (go-ovirt's Close sends none)
	Connections  int // TCP connections accepted (each a TLS handshake)
	Requests     int // requests of every kind
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Logins: s.logins, FailedLogins: s.badLogins, Logouts: s.logouts, EmptyLogouts: s.emptyLogouts, Connections: int(s.conns.Load())}
	for _, n := range s.calls {
		st.Requests += n
	}
	return st
}

// Calls counts requests by "METHOD /pattern": the path under
// /ovirt-engine/api with ids as {id} ("GET /vms", "GET /vms/{id}",
// "POST /vms/{id}/start", "GET /vms/{id}/reporteddevices"); SSO and
// pki-resource paths are kept whole ("POST /ovirt-engine/sso/oauth/token").
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, n := range s.calls {
		out[k] = n
	}
	return out
}

// ResetCalls zeroes the per-path counters.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = map[string]int{}
	s.mu.Unlock()
}

// --- inventory behind the client's back ---

// VMSpec describes a VM made with AddVM.
type VMSpec struct {
	Name       string
	ClusterID  string // default cluster if empty
	TemplateID string // the default template if empty (Blank without one)
	Status     string // down if empty; up gives a VM whose agent has reported
	IPs        []netip.Addr
	FQDN       string
	Memory     int64 // the template's if zero
	Sockets    int
	Init       *Initialization
}

// AddVM creates a VM as another engine user would: events 34 and 53 are
// posted at once, no job is left. It returns the VM's id.
func (s *Server) AddVM(spec VMSpec) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return s.addVMNow(spec)
}

// AddVMs creates n VMs named prefix-00001 ... (status up, agent reported,
// one address each) in one call, for scale tests. It returns their ids.
func (s *Server) AddVMs(prefix string, n int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	ids := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		id, err := s.addVMNow(VMSpec{Name: fmt.Sprintf("%s-%05d", prefix, i), Status: StatusUp})
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (s *Server) addVMNow(spec VMSpec) (string, error) {
	if spec.Name == "" {
		return "", fmt.Errorf("ovirt fake: a VM needs a name")
	}
	if s.byName[spec.Name] != nil {
		return "", fmt.Errorf("ovirt fake: VM name %q in use", spec.Name)
	}
	cid := spec.ClusterID
	if cid == "" {
		cid = s.def.ClusterID
	}
	cl := s.clusters[cid]
	if cl == nil {
		return "", fmt.Errorf("ovirt fake: no cluster %q", cid)
	}
	tid := spec.TemplateID
	if tid == "" {
		tid = s.def.TemplateID
	}
	if tid == "" {
		tid = BlankTemplateID
	}
	t := s.templates[tid]
	if t == nil {
		return "", fmt.Errorf("ovirt fake: no template %q", tid)
	}
	v := &vm{id: newID(), name: spec.Name, cluster: cl, template: t, memory: t.memory, sockets: t.sockets, cores: t.cores, threads: 1, osType: t.osType, init: spec.Init}
	if spec.Memory > 0 {
		v.memory = spec.Memory
	}
	if spec.Sockets > 0 {
		v.sockets = spec.Sockets
	}
	for i, td := range t.disks {
		v.disks = append(v.disks, &disk{id: newID(), alias: fmt.Sprintf("%s_Disk%d", v.name, i+1), size: td.size, format: "cow", sparse: true, sd: td.sd, status: "ok", bootable: td.bootable, iface: td.iface})
	}
	for _, n := range t.nics {
		v.nics = append(v.nics, &nicT{id: newID(), name: n.name, mac: s.nextMAC(), profile: n.profile, iface: n.iface, linked: true, plugged: true})
	}
	now := s.now()
	v.created = now
	v.status = StatusDown
	s.vms[v.id] = v
	s.byName[v.name] = v
	s.vmOrder = nil
	s.post(now, CodeAddVM, "normal", fmt.Sprintf("VM %s was created by %s.", v.name, s.userName()), v, "", true)
	s.post(now, CodeAddVMFinished, "normal", fmt.Sprintf("VM %s creation has been completed.", v.name), v, "", false)
	switch spec.Status {
	case "", StatusDown:
	case StatusUp:
		v.status = StatusUp
		v.host = true
		v.startTime = now
		v.fqdn = spec.FQDN
		v.wantIPs = spec.IPs
		s.post(now, CodeStartedVM, "normal", fmt.Sprintf("VM %s was started by %s (Host: %s).", v.name, s.userName(), s.opts.HostName), v, "", true)
		s.agentReport(v, now)
	default:
		v.status = spec.Status
	}
	return v.id, nil
}

// RemoveVM deletes a VM at once, as another user whose removal finished
// would: events 113 and 36.
func (s *Server) RemoveVM(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	v := s.vms[id]
	if v == nil {
		return fmt.Errorf("ovirt fake: no VM %q", id)
	}
	now := s.now()
	s.post(now, CodeRemoveVM, "normal", fmt.Sprintf("Removal of VM %s was initiated by %s.", v.name, s.userName()), v, "", true)
	s.post(now, CodeRemoveVMFinished, "normal", fmt.Sprintf("VM %s was successfully removed.", v.name), v, "", false)
	s.deleteVM(v)
	return nil
}

// RenameVM renames a VM (event 35).
func (s *Server) RenameVM(id, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	v := s.vms[id]
	if v == nil {
		return fmt.Errorf("ovirt fake: no VM %q", id)
	}
	if o := s.byName[name]; o != nil && o != v {
		return fmt.Errorf("ovirt fake: VM name %q in use", name)
	}
	s.rename(v, name)
	s.post(s.now(), CodeUpdateVM, "normal", fmt.Sprintf("VM %s configuration was updated by %s.", v.name, s.userName()), v, "", true)
	return nil
}

// SetVMStatus sets a VM's status without events (a status the fake never
// reaches by itself: paused, unknown, not_responding, ...).
func (s *Server) SetVMStatus(id, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	v := s.vms[id]
	if v == nil {
		return fmt.Errorf("ovirt fake: no VM %q", id)
	}
	v.gen++
	v.status = status
	return nil
}

// SetIPs sets the addresses the VM's guest agent reports. On a VM whose
// agent has reported they show at once (event 934 if they changed, see
// SetIPChangeEvents); otherwise they show when it reports.
func (s *Server) SetIPs(id string, ips ...netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	v := s.vms[id]
	if v == nil {
		return fmt.Errorf("ovirt fake: no VM %q", id)
	}
	v.wantIPs = append([]netip.Addr{}, ips...)
	if v.agent {
		s.setIPs(v, v.wantIPs, s.now())
	}
	return nil
}

// SetAgent makes a VM's guest agent report now (fqdn, OS, addresses) or,
// with running false, stop reporting (no fqdn, OS or reported devices).
func (s *Server) SetAgent(id string, running bool, fqdn string, os *GuestOS) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	v := s.vms[id]
	if v == nil {
		return fmt.Errorf("ovirt fake: no VM %q", id)
	}
	if !running {
		v.agent = false
		v.ips = nil
		return nil
	}
	if fqdn != "" {
		v.fqdn = fqdn
	}
	if os != nil {
		v.guestOS = *os
	}
	s.agentReport(v, s.now())
	return nil
}

// MigrateVM posts "Migration complete" (63) for a running VM.
func (s *Server) MigrateVM(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	v := s.vms[id]
	if v == nil || v.status != StatusUp {
		return fmt.Errorf("ovirt fake: no running VM %q", id)
	}
	s.post(s.now(), CodeMigrationDone, "normal", fmt.Sprintf("Migration complete (VM: %s, Source Host: %s).", v.name, s.opts.HostName), v, "", false)
	return nil
}

// TemplateSpec describes a template made with AddTemplate.
type TemplateSpec struct {
	Name            string
	ClusterID       string // the default cluster if empty
	StorageDomainID string // where its one disk is (the default template domain if empty)
	ProfileID       string // its NIC's vNIC profile (the management profile if empty; "-" for no NIC)
	DiskSize        int64  // 10 GiB if zero
	Memory          int64  // 2 GiB if zero
	Status          string // ok if empty
}

// AddTemplate adds a template with one disk and one NIC and returns its
// id and its disk's id.
func (s *Server) AddTemplate(spec TemplateSpec) (id, diskID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cid := spec.ClusterID
	if cid == "" {
		cid = s.def.ClusterID
	}
	cl := s.clusters[cid]
	if cl == nil {
		return "", "", fmt.Errorf("ovirt fake: no cluster %q", cid)
	}
	sid := spec.StorageDomainID
	if sid == "" {
		sid = s.def.TemplateStorageID
	}
	sd := s.sds[sid]
	if sd == nil {
		return "", "", fmt.Errorf("ovirt fake: no storage domain %q", sid)
	}
	t := &template{id: newID(), name: spec.Name, status: "ok", cluster: cl, memory: 2 << 30, sockets: 1, cores: 1, osType: "rhel_9x64", created: s.now()}
	if spec.Memory > 0 {
		t.memory = spec.Memory
	}
	if spec.Status != "" {
		t.status = spec.Status
	}
	size := spec.DiskSize
	if size == 0 {
		size = 10 << 30
	}
	d := &disk{id: newID(), alias: spec.Name + "_Disk1", size: size, format: "cow", sparse: true, sd: sd, status: "ok", bootable: true, iface: "virtio_scsi"}
	t.disks = []*disk{d}
	if spec.ProfileID != "-" {
		pid := spec.ProfileID
		if pid == "" {
			pid = s.def.ManagementProfileID
		}
		p := s.profiles[pid]
		if p == nil {
			return "", "", fmt.Errorf("ovirt fake: no vNIC profile %q", pid)
		}
		t.nics = []*nicT{{id: newID(), name: "nic1", profile: p, iface: "virtio", linked: true, plugged: true}}
	}
	s.templates[t.id] = t
	return t.id, d.id, nil
}

// RemoveTemplate deletes a template.
func (s *Server) RemoveTemplate(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.templates[id] == nil || id == BlankTemplateID {
		return fmt.Errorf("ovirt fake: no removable template %q", id)
	}
	delete(s.templates, id)
	return nil
}

// RenameTemplate renames a template.
func (s *Server) RenameTemplate(id, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.templates[id]
	if t == nil {
		return fmt.Errorf("ovirt fake: no template %q", id)
	}
	t.name = name
	return nil
}

// SetTemplateStatus sets a template's status (ok, locked, illegal).
func (s *Server) SetTemplateStatus(id, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.templates[id]
	if t == nil {
		return fmt.Errorf("ovirt fake: no template %q", id)
	}
	t.status = status
	return nil
}

// CopyTemplateDisk records a copy of a template's disks on another
// storage domain, so thin VMs can have their disks there.
func (s *Server) CopyTemplateDisk(templateID, storageDomainID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, sd := s.templates[templateID], s.sds[storageDomainID]
	if t == nil || sd == nil {
		return fmt.Errorf("ovirt fake: no template %q or storage domain %q", templateID, storageDomainID)
	}
	for _, d := range t.disks {
		if !d.onDomain(sd) {
			d.copies = append(d.copies, sd)
		}
	}
	return nil
}

// SetDataCenterStatus sets a data center's status (up, maintenance,
// not_operational, problematic, uninitialized, contend).
func (s *Server) SetDataCenterStatus(id, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dcs[id]
	if d == nil {
		return fmt.Errorf("ovirt fake: no data center %q", id)
	}
	d.status = status
	return nil
}

// SetStorageDomainStatus sets a storage domain's status (active,
// maintenance, inactive, locked, unattached, ...).
func (s *Server) SetStorageDomainStatus(id, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sd := s.sds[id]
	if sd == nil {
		return fmt.Errorf("ovirt fake: no storage domain %q", id)
	}
	sd.status = status
	return nil
}

// AddNetwork adds a VM network with the given VLAN id (0: untagged) to a
// data center, and a vNIC profile of the same name on it; it returns
// both ids.
func (s *Server) AddNetwork(dataCenterID, name string, vlan int) (networkID, profileID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dcs[dataCenterID]
	if d == nil {
		return "", "", fmt.Errorf("ovirt fake: no data center %q", dataCenterID)
	}
	n := &network{id: newID(), name: name, dc: d, vlan: vlan, mtu: 1500}
	p := &vnicProfile{id: newID(), name: name, net: n}
	s.networks[n.id], s.profiles[p.id] = n, p
	return n.id, p.id, nil
}

// VMInfo is a snapshot of a VM as the fake holds it.
type VMInfo struct {
	ID, Name, Status string
	ClusterID        string
	TemplateID       string
	Clone            bool
	CorrelationID    string // of the add
	Memory           int64
	Sockets, Cores   int
	DiskDomains      []string // storage domain id of each disk
	DiskFormats      []string // cow/raw and sparse: "cow/sparse", "raw/preallocated"
	NICProfiles      []string // vNIC profile id of each NIC
	Init             *Initialization
	StartedCloudInit bool // the last start asked for use_cloud_init
	IPs              []netip.Addr
	AgentReported    bool
}

// VM returns what the fake holds of a VM.
func (s *Server) VM(id string) (VMInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	v := s.vms[id]
	if v == nil {
		return VMInfo{}, false
	}
	return s.info(v), true
}

// VMByName returns a VM by name.
func (s *Server) VMByName(name string) (VMInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	if v := s.byName[name]; v != nil {
		return s.info(v), true
	}
	return VMInfo{}, false
}

// VMs lists every VM, ordered by name.
func (s *Server) VMs() []VMInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	out := []VMInfo{}
	for _, v := range s.sortedVMs() {
		out = append(out, s.info(v))
	}
	return out
}

func (s *Server) info(v *vm) VMInfo {
	in := VMInfo{ID: v.id, Name: v.name, Status: v.status, ClusterID: v.cluster.id, Clone: v.clone, CorrelationID: v.correlationID,
		Memory: v.memory, Sockets: v.sockets, Cores: v.cores, StartedCloudInit: v.startedCI, IPs: append([]netip.Addr(nil), v.ips...), AgentReported: v.agent}
	if v.template != nil {
		in.TemplateID = v.template.id
	}
	for _, d := range v.disks {
		in.DiskDomains = append(in.DiskDomains, d.sd.id)
		kind := "preallocated"
		if d.sparse {
			kind = "sparse"
		}
		in.DiskFormats = append(in.DiskFormats, d.format+"/"+kind)
	}
	for _, n := range v.nics {
		pid := ""
		if n.profile != nil {
			pid = n.profile.id
		}
		in.NICProfiles = append(in.NICProfiles, pid)
	}
	if v.init != nil {
		c := *v.init
		in.Init = &c
	}
	return in
}

// EventInfo is an event as the fake holds it.
type EventInfo struct {
	Index         int64
	Code          int
	Description   string
	Time          time.Time
	VMID          string
	CorrelationID string
}

// Events lists the events kept, oldest first.
func (s *Server) Events() []EventInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	out := make([]EventInfo, 0, len(s.events))
	for _, e := range s.events {
		out = append(out, EventInfo{Index: e.index, Code: e.code, Description: e.description, Time: e.time, VMID: e.vmID, CorrelationID: e.correlationID})
	}
	return out
}

// JobInfo is a job as the fake holds it.
type JobInfo struct {
	ID, Description, Status, CorrelationID string
}

// Jobs lists the jobs with the correlation id ("" for all), oldest first.
func (s *Server) Jobs(correlationID string) []JobInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	out := []JobInfo{}
	for _, j := range s.jobs {
		if correlationID == "" || j.correlationID == correlationID {
			out = append(out, JobInfo{ID: j.id, Description: j.description, Status: j.status, CorrelationID: j.correlationID})
		}
	}
	return out
}

// Tick applies every state change due by now (every request does too);
// with a ManualClock, call it after Advance to let timers fire without a
// request.
func (s *Server) Tick() {
	s.mu.Lock()
	s.advance()
	s.mu.Unlock()
}

// ManualClock is a clock that moves only when told.
type ManualClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewManualClock starts a clock at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{t: t} }

// Now is the clock's time; give it as Options.Now.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
