package ovirt

import (
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// VM statuses, as the API model's VmStatus spells them.
const (
	StatusDown          = "down"
	StatusImageLocked   = "image_locked"
	StatusWaitForLaunch = "wait_for_launch"
	StatusPoweringUp    = "powering_up"
	StatusUp            = "up"
	StatusPoweringDown  = "powering_down"
	StatusPaused        = "paused"
	StatusUnknown       = "unknown"
	StatusNotResponding = "not_responding"
	StatusMigrating     = "migrating"
)

// Event codes the fake posts (AuditLogType values of ovirt-engine).
const (
	CodeEngineStart       = 1   // VDC_START
	CodeEngineStop        = 2   // VDC_STOP
	CodeAddVM             = 34  // USER_ADD_VM
	CodeUpdateVM          = 35  // USER_UPDATE_VM
	CodeRemoveVMFinished  = 36  // USER_REMOVE_VM_FINISHED
	CodeAddVMFinished     = 53  // USER_ADD_VM_FINISHED_SUCCESS
	CodeAddVMFailed       = 60  // USER_ADD_VM_FINISHED_FAILURE
	CodeVMDown            = 61  // VM_DOWN
	CodeMigrationDone     = 63  // VM_MIGRATION_DONE
	CodeRemoveVM          = 113 // USER_REMOVE_VM
	CodeStartedVM         = 153 // USER_STARTED_VM
	CodeUpdateVMInterface = 934 // NETWORK_USER_UPDATE_VM_INTERFACE
)

// BlankTemplateID is the id of the Blank template every engine has.
const BlankTemplateID = "00000000-0000-0000-0000-000000000000"

type dataCenter struct {
	id, name, description string
	status                string // up, maintenance, not_operational, problematic, uninitialized, contend
	major, minor          int
}

type cluster struct {
	id, name, description string
	dc                    *dataCenter
	major, minor          int
	cpuType               string
}

type storageDomain struct {
	id, name   string
	typ        string // data, iso, export, image, volume, managed_block_storage
	status     string // active, maintenance, unattached, inactive, locked, ...
	dc         *dataCenter
	available  int64
	used       int64
	storageTyp string // nfs, iscsi, fcp, glance, ...
	master     bool
}

type network struct {
	id, name string
	dc       *dataCenter
	vlan     int // 0: untagged
	mtu      int
}

type vnicProfile struct {
	id, name string
	net      *network
}

type disk struct {
	id, alias string
	size      int64 // provisioned_size, bytes
	format    string
	sparse    bool
	sd        *storageDomain
	status    string // ok, locked, illegal
	bootable  bool
	iface     string
	copies    []*storageDomain // a template disk's copies on other domains
}

func (d *disk) onDomain(sd *storageDomain) bool {
	if d.sd == sd {
		return true
	}
	for _, c := range d.copies {
		if c == sd {
			return true
		}
	}
	return false
}

type nicT struct {
	id, name string
	mac      string
	profile  *vnicProfile
	iface    string
	linked   bool
	plugged  bool
}

type template struct {
	id, name, description string
	status                string // ok, locked, illegal
	cluster               *cluster
	memory                int64
	sockets, cores        int
	osType                string
	disks                 []*disk
	nics                  []*nicT
	created               time.Time
}

// Initialization is what a VM was given in its initialization element
// (cloud-init), as the engine stored it.
type Initialization struct {
	HostName          string
	UserName          string
	AuthorizedSSHKeys string
	CustomScript      string
	RootPassword      string // stored, never served back
	DNSServers        string
	DNSSearch         string
	Timezone          string
}

type vm struct {
	id, name, description, comment string
	status                         string
	cluster                        *cluster
	template                       *template
	memory                         int64
	sockets, cores, threads        int
	osType                         string
	disks                          []*disk
	nics                           []*nicT
	init                           *Initialization
	created                        time.Time
	startTime, stopTime            time.Time
	host                           bool // runs on the fake host
	clone                          bool
	correlationID                  string

	// guest agent facts, set when the agent reports
	agent      bool
	fqdn       string
	guestOS    GuestOS
	ips        []netip.Addr
	wantIPs    []netip.Addr // what the agent reports once it runs
	startedCI  bool         // last start asked for use_cloud_init
	gen        int          // bumped on each state change that cancels timers
	removing   bool
	failCopy   bool
	stopReason string
}

// GuestOS is what the guest agent reports of the operating system.
type GuestOS struct {
	Architecture, Codename, Distribution, Family, Kernel, Version string
}

type event struct {
	index         int64
	code          int
	severity      string
	description   string
	time          time.Time
	correlationID string
	vmID          string
	vmName        string
	templateID    string
	clusterID     string
	dcID          string
	user          bool
	floodRate     int
}

type job struct {
	id            string
	description   string
	status        string // started, finished, failed, aborted, unknown
	start, end    time.Time
	updated       time.Time
	correlationID string
	vmID          string
}

// timer is a state change due at a time.
type timer struct {
	at   time.Time
	seq  int64
	vmID string
	gen  int
	fn   func(s *Server, v *vm, at time.Time)
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(*timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// schedule runs fn on v at from+d; the timer is dropped if v changes
// generation (an action replaced the pending transition) or is removed.
// Transitions that follow one another are scheduled from the time the
// previous one was due, so one long clock jump runs the whole chain.
// s.mu is held.
func (s *Server) schedule(v *vm, from time.Time, d time.Duration, fn func(s *Server, v *vm, at time.Time)) {
	s.seq++
	heap.Push(&s.timers, &timer{at: from.Add(d), seq: s.seq, vmID: v.id, gen: v.gen, fn: fn})
}

// advance applies every due transition in time order; after a restart
// the engine's start event comes first. s.mu is held.
func (s *Server) advance() {
	now := s.now()
	for {
		if s.startPending && !now.Before(s.down) && (s.timers.Len() == 0 || !s.timers[0].at.Before(s.down)) {
			s.startPending = false
			s.post(s.down, CodeEngineStart, "normal", "Starting oVirt Engine.", nil, "", false)
		}
		if s.timers.Len() == 0 || s.timers[0].at.After(now) {
			return
		}
		t := heap.Pop(&s.timers).(*timer)
		v := s.vms[t.vmID]
		if v == nil || v.gen != t.gen {
			continue
		}
		t.fn(s, v, t.at)
	}
}

// post appends an event unless duplicate suppression drops it. s.mu is held.
func (s *Server) post(at time.Time, code int, severity, desc string, v *vm, corr string, user bool) {
	if s.dupInterval > 0 {
		key := fmt.Sprintf("%d/", code)
		if v != nil {
			key += v.id
		}
		if last, ok := s.lastPosted[key]; ok && at.Sub(last) < s.dupInterval {
			s.suppressed++
			return
		}
		s.lastPosted[key] = at
	}
	s.eventSeq++
	e := &event{index: s.eventSeq, code: code, severity: severity, description: desc, time: at, correlationID: corr, user: user, floodRate: int(s.dupInterval / time.Second)}
	if v != nil {
		e.vmID, e.vmName = v.id, v.name
		if v.cluster != nil {
			e.clusterID = v.cluster.id
			e.dcID = v.cluster.dc.id
		}
		if v.template != nil {
			e.templateID = v.template.id
		}
	}
	s.events = append(s.events, e)
}

func (s *Server) userName() string {
	u := s.opts.User
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		return u + "-authz"
	}
	return u
}

func (s *Server) newJob(desc, corr string, v *vm) *job {
	now := s.now()
	j := &job{id: newID(), description: desc, status: "started", start: now, updated: now, correlationID: corr}
	if v != nil {
		j.vmID = v.id
	}
	s.jobs = append(s.jobs, j)
	return j
}

func (s *Server) endJob(j *job, status string, at time.Time) {
	if j == nil || j.status != "started" {
		return
	}
	j.status, j.end, j.updated = status, at, at
}

// nextIP gives the address the guest agent of a new VM reports by default.
func (s *Server) nextIP() netip.Addr {
	s.ipSeq++
	n := s.ipSeq
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

func (s *Server) nextMAC() string {
	s.macSeq++
	n := s.macSeq
	return fmt.Sprintf("56:6f:%02x:%02x:%02x:%02x", byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// sortedVMs returns the VMs ordered by name, then id, as the engine's VM
// search orders them. s.mu is held.
func (s *Server) sortedVMs() []*vm {
	if s.vmOrder == nil {
		s.vmOrder = make([]*vm, 0, len(s.vms))
		for _, v := range s.vms {
			s.vmOrder = append(s.vmOrder, v)
		}
		sort.Slice(s.vmOrder, func(i, j int) bool {
			a, b := s.vmOrder[i], s.vmOrder[j]
			if a.name != b.name {
				return a.name < b.name
			}
			return a.id < b.id
		})
	}
	return s.vmOrder
}

// --- VM life cycle (s.mu held in all of these) ---

// addVM creates a VM from a template: image_locked while its disks are
// made, down when done (53), or removed when the copy fails (60).
func (s *Server) addVM(v *vm, corr string, byUser bool) {
	v.status = StatusImageLocked
	v.created = s.now()
	s.vms[v.id] = v
	s.byName[v.name] = v
	s.vmOrder = nil
	s.post(s.now(), CodeAddVM, "normal", fmt.Sprintf("VM %s was created by %s.", v.name, s.userName()), v, corr, byUser)
	tn, cn := "Blank", ""
	if v.template != nil {
		tn = v.template.name
	}
	if v.cluster != nil {
		cn = v.cluster.name
	}
	j := s.newJob(fmt.Sprintf("Creating VM %s from Template %s in Cluster %s", v.name, tn, cn), corr, v)
	steps := s.opts.ThinSteps
	if v.clone {
		steps = s.opts.CloneSteps
	}
	for _, d := range v.disks {
		d.status = "locked"
	}
	s.schedule(v, s.now(), time.Duration(steps)*s.opts.Step, func(s *Server, v *vm, at time.Time) {
		if v.failCopy {
			s.post(at, CodeAddVMFailed, "error", fmt.Sprintf("Failed to complete VM %s creation.", v.name), v, corr, false)
			s.endJob(j, "failed", at)
			s.deleteVM(v)
			return
		}
		for _, d := range v.disks {
			d.status = "ok"
		}
		v.status = StatusDown
		s.post(at, CodeAddVMFinished, "normal", fmt.Sprintf("VM %s creation has been completed.", v.name), v, corr, false)
		s.endJob(j, "finished", at)
	})
}

func (s *Server) deleteVM(v *vm) {
	delete(s.vms, v.id)
	if s.byName[v.name] == v {
		delete(s.byName, v.name)
	}
	v.gen++
	s.vmOrder = nil
}

func (s *Server) rename(v *vm, name string) {
	if s.byName[v.name] == v {
		delete(s.byName, v.name)
	}
	v.name = name
	s.byName[name] = v
	s.vmOrder = nil
}

// startVM: wait_for_launch, powering_up, up (153); the agent reports
// AgentSteps later.
func (s *Server) startVM(v *vm, corr string, cloudInit bool) {
	v.gen++
	v.status = StatusWaitForLaunch
	v.startedCI = cloudInit
	v.host = true
	v.stopReason = ""
	j := s.newJob(fmt.Sprintf("Launching VM %s", v.name), corr, v)
	step := s.opts.Step
	s.schedule(v, s.now(), step, func(s *Server, v *vm, at time.Time) {
		v.status = StatusPoweringUp
		s.schedule(v, at, step, func(s *Server, v *vm, at time.Time) {
			v.status = StatusUp
			v.startTime = at
			s.post(at, CodeStartedVM, "normal", fmt.Sprintf("VM %s was started by %s (Host: %s).", v.name, s.userName(), s.opts.HostName), v, corr, true)
			s.endJob(j, "finished", at)
			if s.opts.AgentSteps >= 0 {
				s.schedule(v, at, time.Duration(s.opts.AgentSteps)*step, func(s *Server, v *vm, at time.Time) {
					s.agentReport(v, at)
				})
			}
		})
	})
}

// agentReport makes the guest agent report: fqdn, OS and addresses.
func (s *Server) agentReport(v *vm, at time.Time) {
	v.agent = true
	if v.fqdn == "" {
		v.fqdn = v.name
		if v.init != nil && v.init.HostName != "" {
			v.fqdn = v.init.HostName
		}
	}
	if v.guestOS == (GuestOS{}) {
		v.guestOS = s.opts.GuestOS
	}
	if v.wantIPs == nil && len(v.nics) > 0 {
		v.wantIPs = []netip.Addr{s.nextIP()}
	}
	s.setIPs(v, v.wantIPs, at)
}

func (s *Server) setIPs(v *vm, ips []netip.Addr, at time.Time) {
	same := len(ips) == len(v.ips)
	for i := range ips {
		if same && ips[i] != v.ips[i] {
			same = false
		}
	}
	v.ips = append([]netip.Addr(nil), ips...)
	if !same && s.ipEvents && len(v.nics) > 0 {
		n := v.nics[0]
		s.post(at, CodeUpdateVMInterface, "normal", fmt.Sprintf("Interface %s (%s) was updated for VM %s. (User: %s)", n.name, n.iface, v.name, s.userName()), v, "", false)
	}
}

// downVM brings a VM down now (stop) or after a step (shutdown): 61.
func (s *Server) downVM(v *vm, corr string, graceful bool) {
	v.gen++
	desc := "Stopping VM " + v.name
	reason := "Exit message: Admin shut down from the engine"
	if graceful {
		desc = "Shutting down VM " + v.name
		reason = "Exit message: User shut down from within the guest"
	}
	j := s.newJob(desc, corr, v)
	v.status = StatusPoweringDown
	s.schedule(v, s.now(), s.opts.Step, func(s *Server, v *vm, at time.Time) {
		v.status = StatusDown
		v.stopTime = at
		v.host = false
		v.agent = false
		v.ips = nil
		s.post(at, CodeVMDown, "normal", fmt.Sprintf("VM %s is down. %s", v.name, reason), v, corr, false)
		s.endJob(j, "finished", at)
	})
}

// removeVM: 113 now, the VM stays image_locked while its disks go, then
// it is gone (36).
func (s *Server) removeVM(v *vm, corr string) {
	v.gen++
	v.status = StatusImageLocked
	v.removing = true
	s.post(s.now(), CodeRemoveVM, "normal", fmt.Sprintf("Removal of VM %s was initiated by %s.", v.name, s.userName()), v, corr, true)
	j := s.newJob("Removing VM "+v.name+" from system", corr, v)
	s.schedule(v, s.now(), s.opts.Step, func(s *Server, v *vm, at time.Time) {
		s.post(at, CodeRemoveVMFinished, "normal", fmt.Sprintf("VM %s was successfully removed.", v.name), v, corr, false)
		s.endJob(j, "finished", at)
		s.deleteVM(v)
	})
}
