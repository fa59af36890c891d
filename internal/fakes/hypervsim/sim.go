package hypervsim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

// Options configure a Sim.
type Options struct {
	// Cluster names the failover cluster; Domain is the AD domain (its
	// NetBIOS name, as NTLM logons give it).
	Cluster, Domain string
	// Nodes are the node names (COMPUTERNAME), each served by its own
	// WinRM endpoint. At least one.
	Nodes []string
	// User and Password are the account every node accepts (NTLM, as
	// DOMAIN\user, user@domain or user).
	User, Password string
	// RequestDelay is added to every WinRM request of every node (the
	// network and WinRM service latency a benchmark wants to see).
	RequestDelay time.Duration
	// BeforeAnswer, if set, is called on a node before it computes a
	// template's answer (outside the Sim's lock, so it may change the
	// cluster: move a VM while the nodes answer a List, as a failover
	// does).
	BeforeAnswer func(node, template string)
}

// VM is a virtual machine of the simulated cluster, with the properties
// of Microsoft.HyperV.PowerShell.VirtualMachine the templates read.
type VM struct {
	// ID is the VMId (a GUID, lower case); AddVM makes one when empty.
	ID   string
	Name string
	// State is a VMState name: Running, Off, Saved, Paused, Starting, ...
	State string
	CPUs  int
	// MemoryStartup is in bytes.
	MemoryStartup int64
	Generation    int
	// Clustered is IsClustered: the VM is a cluster role.
	Clustered bool
	Notes     string
	// Heartbeat is the heartbeat integration service's status
	// (OkApplicationsUnknown, LostCommunication, ...; empty when off).
	Heartbeat string
	// IntegrationServicesState, e.g. "Up to date".
	IntegrationServicesState string
	// Owner is the node the VM is registered on.
	Owner    string
	Adapters []Adapter
	// Disks are the paths of its hard disks and DVD drives' media.
	Disks []string
	// Path is the directory of its configuration (New-VM -Path).
	Path string
}

// Adapter is a VM network adapter.
type Adapter struct {
	MAC    string // 12 hex digits, as Hyper-V writes it
	Switch string
	// IPs come from the guest's KVP daemon: reported only while the VM is
	// Running.
	IPs []string
	// VLAN is the access VLAN; 0 means untagged.
	VLAN int
}

// CSV is a Cluster Shared Volume.
type CSV struct {
	Name  string // "Cluster Disk 1"
	Path  string // C:\ClusterStorage\Volume1
	Owner string
	State string // Online
}

// Switch is a virtual switch (present on every node).
type Switch struct {
	Name string
	Type string // External, Internal, Private
	// Adapter is the physical adapter an External switch is bound to
	// (default "NIC1"); AdapterVLAN that adapter's VlanID property (0: it
	// filters no VLAN).
	Adapter     string
	AdapterVLAN int
}

// Event is one record of a node's Microsoft-Windows-Hyper-V-VMMS-Admin
// log.
type Event struct {
	RecordID int64
	ID       int // 13002 created, 13003 deleted
	VMID     string
	VMName   string
	Time     time.Time
}

// VHDX is a virtual disk file on a CSV.
type VHDX struct {
	// Path is the full path, e.g. C:\ClusterStorage\Templates\ubuntu.vhdx.
	Path string
	// Format is VHD or VHDX (default VHDX); Type Fixed, Dynamic (default)
	// or Differencing, whose Parent is the parent's path.
	Format, Type, Parent string
	// Size is the virtual size, FileSize the file's size, in bytes.
	Size, FileSize int64
}

// Account is who a session runs as on a node: the account's name
// (DOMAIN\user), whether its token holds the local Administrators role,
// and its group SIDs.
type Account struct {
	Name   string
	Admin  bool
	Groups []string
}

// Sim is a Hyper-V failover cluster in memory, one WinRM endpoint per
// node.
type Sim struct {
	opts Options

	mu       sync.Mutex
	nodes    map[string]*node
	order    []string
	vms      map[string]*VM
	csvs     []CSV
	switches []Switch
	files    map[string]VHDX   // lower-case path -> file
	blobs    map[string][]byte // lower-case path -> other files' bytes (ISOs, sidecars)
	names    map[string]string // lower-case path -> path as written
	inUse    int               // create/1 runs left that fail with the disk in use
	denied   map[string]bool   // upper-case node -> cluster-role operations refused
	guests   map[string]*guestOS
	scripts  map[string]int // template name -> runs
	runsOn   map[string]int // node + " " + template name -> runs
}

type node struct {
	name    string
	account Account
	state   string // as Get-ClusterNode reports it: Up, Down, Paused, Joining
	srv     *winrmserver.Server
	px      *proxy
	hang    time.Duration // added before every template's answer
	log     []Event
	record  int64
	wlog    []Event // Hyper-V-Worker-Admin: power records
	wrecord int64
}

// New starts the nodes' WinRM endpoints (HTTPS, each with its own CA).
func New(opts Options) (*Sim, error) {
	if len(opts.Nodes) == 0 || opts.User == "" || opts.Password == "" {
		return nil, errors.New("hypervsim: Nodes, User and Password are required")
	}
	if opts.Cluster == "" {
		opts.Cluster = "HVCLUSTER"
	}
	s := &Sim{opts: opts, nodes: map[string]*node{}, vms: map[string]*VM{}, scripts: map[string]int{}, runsOn: map[string]int{}, files: map[string]VHDX{},
		blobs: map[string][]byte{}, names: map[string]string{}, denied: map[string]bool{}, guests: map[string]*guestOS{}}
	for _, name := range opts.Nodes {
		if _, dup := s.nodes[strings.ToUpper(name)]; dup {
			s.Close()
			return nil, fmt.Errorf("hypervsim: node %q twice", name)
		}
		n := &node{name: name, state: "Up", account: Account{Name: opts.Domain + `\` + opts.User, Admin: true,
			Groups: []string{"S-1-5-32-544", "S-1-5-21-1004336348-1177238915-682003330-513", "S-1-5-11"}}}
		srv, err := winrmserver.New(winrmserver.Options{User: opts.User, Domain: opts.Domain, Password: opts.Password,
			Delay: opts.RequestDelay, Handler: func(ctx context.Context, r *winrmserver.Request) int { return s.handle(ctx, n, r) }})
		if err != nil {
			s.Close()
			return nil, err
		}
		n.srv = srv
		s.nodes[strings.ToUpper(name)] = n
		if n.px, err = newProxy(joinHostPort(srv.Host(), srv.Port())); err != nil {
			s.Close()
			return nil, err
		}
		s.order = append(s.order, name)
	}
	return s, nil
}

// Close stops every node's endpoint.
func (s *Sim) Close() {
	for _, n := range s.nodes {
		if n.px != nil {
			n.px.close()
		}
		if n.srv != nil {
			n.srv.Close()
		}
	}
}

// NodeDown takes node off the network: its open connections are reset
// and new ones are closed at once, as when the host is gone. NodeUp puts
// it back on the same address. (SetNodeState is the cluster's view of it,
// independently.)
func (s *Sim) NodeDown(name string) error { return s.setDown(name, true) }

// NodeUp ends a NodeDown.
func (s *Sim) NodeUp(name string) error { return s.setDown(name, false) }

func (s *Sim) setDown(name string, down bool) error {
	n, ok := s.nodes[strings.ToUpper(name)]
	if !ok {
		return fmt.Errorf("hypervsim: no node %q", name)
	}
	n.px.setDown(down)
	return nil
}

// SetNodeHang makes node wait d before answering each template (until the
// driver terminates the command), as a node whose WMI or cluster service
// hangs; zero ends it.
func (s *Sim) SetNodeHang(name string, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[strings.ToUpper(name)]
	if !ok {
		return fmt.Errorf("hypervsim: no node %q", name)
	}
	n.hang = d
	return nil
}

// Nodes returns the node names in the order of Options.Nodes.
func (s *Sim) Nodes() []string { return append([]string(nil), s.order...) }

// Endpoint is where a node's WinRM service answers.
type Endpoint struct {
	Host      string
	Port      int
	CACertPEM []byte
}

// Endpoint returns node's WinRM endpoint; ok is false for an unknown node.
func (s *Sim) Endpoint(name string) (Endpoint, bool) {
	n, ok := s.nodes[strings.ToUpper(name)]
	if !ok {
		return Endpoint{}, false
	}
	return Endpoint{Host: n.srv.Host(), Port: n.px.port(), CACertPEM: n.srv.CACertPEM()}, true
}

// Server returns node's WinRM server (its Requests and Stats).
func (s *Sim) Server(name string) *winrmserver.Server {
	if n, ok := s.nodes[strings.ToUpper(name)]; ok {
		return n.srv
	}
	return nil
}

// AddCSV adds a Cluster Shared Volume.
func (s *Sim) AddCSV(c CSV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.State == "" {
		c.State = "Online"
	}
	s.csvs = append(s.csvs, c)
}

// AddVHDX adds a virtual disk file (on a CSV: every node sees it).
func (s *Sim) AddVHDX(f VHDX) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Format == "" {
		f.Format = "VHDX"
	}
	if f.Type == "" {
		f.Type = "Dynamic"
	}
	s.files[strings.ToLower(f.Path)] = f
}

// Files returns the paths of every file (VHDX files and the others),
// sorted.
func (s *Sim) Files() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, f := range s.files {
		out = append(out, f.Path)
	}
	for k := range s.blobs {
		out = append(out, s.names[k])
	}
	sort.Strings(out)
	return out
}

// AddFile writes a file that is not a virtual disk (a template's sidecar
// NAME.json, ...) on a CSV.
func (s *Sim) AddFile(path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[strings.ToLower(path)] = append([]byte(nil), data...)
	s.names[strings.ToLower(path)] = path
}

// File returns the bytes of a file written by AddFile or the file/1
// template; ok is false when there is none.
func (s *Sim) File(path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[strings.ToLower(path)]
	return append([]byte(nil), b...), ok
}

// DiskInUse makes the next n create/1 runs fail at New-VM, after the
// differencing disk was made, as Hyper-V does when the new VHDX is still
// held open right after New-VHD ("being used by another process"): the
// disk stays, a retry goes on from it.
func (s *Sim) DiskInUse(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inUse = n
}

// DenyClusterRoles makes Add-ClusterVirtualMachineRole on node fail as it
// does for an account without full access to the cluster (role/1 and
// rolecheck/1).
func (s *Sim) DenyClusterRoles(node string, deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[strings.ToUpper(node)] = deny
}

// RenameVM renames a VM behind the driver's back (Rename-VM; no event is
// logged).
func (s *Sim) RenameVM(id, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	vm, ok := s.vms[strings.ToLower(id)]
	if !ok {
		return fmt.Errorf("hypervsim: no VM %q", id)
	}
	vm.Name = name
	return nil
}

// AddSwitch adds a virtual switch to every node.
func (s *Sim) AddSwitch(w Switch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.switches = append(s.switches, w)
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// AddVM registers vm on vm.Owner, logs event 13002 there and returns its
// VMId.
func (s *Sim) AddVM(vm VM) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[strings.ToUpper(vm.Owner)]
	if !ok {
		return "", fmt.Errorf("hypervsim: no node %q", vm.Owner)
	}
	if vm.ID == "" {
		vm.ID = newGUID()
	}
	vm.ID = strings.ToLower(vm.ID)
	if _, dup := s.vms[vm.ID]; dup {
		return "", fmt.Errorf("hypervsim: VMId %s taken", vm.ID)
	}
	vm.Owner = n.name
	if vm.State == "" {
		vm.State = "Off"
	}
	if vm.Generation == 0 {
		vm.Generation = 2
	}
	c := vm
	c.Adapters = cloneAdapters(vm.Adapters)
	c.Disks = append([]string(nil), vm.Disks...)
	s.vms[vm.ID] = &c
	n.logEvent(13002, &c)
	return vm.ID, nil
}

func cloneAdapters(a []Adapter) []Adapter {
	out := make([]Adapter, len(a))
	for i, x := range a {
		x.IPs = append([]string(nil), x.IPs...)
		out[i] = x
	}
	return out
}

func (n *node) logEvent(id int, vm *VM) {
	n.record++
	n.log = append(n.log, Event{RecordID: n.record, ID: id, VMID: vm.ID, VMName: vm.Name, Time: time.Now().UTC()})
}

// logPower logs the Hyper-V-Worker-Admin record of a change of vm's
// state from old to vm.State, if Hyper-V writes one: 18500 started,
// 18502 turned off, 18510 saved, 18596 restored (from saved).
func (n *node) logPower(old string, vm *VM) {
	id := 0
	switch {
	case old == vm.State:
	case vm.State == "Running" && old == "Saved":
		id = 18596
	case vm.State == "Running" && old != "Paused":
		id = 18500
	case vm.State == "Off":
		id = 18502
	case vm.State == "Saved":
		id = 18510
	}
	if id == 0 {
		return
	}
	n.wrecord++
	n.wlog = append(n.wlog, Event{RecordID: n.wrecord, ID: id, VMID: vm.ID, VMName: vm.Name, Time: time.Now().UTC()})
}

// RemoveVM deletes a VM and logs 13003 on its owner node.
func (s *Sim) RemoveVM(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	vm, ok := s.vms[strings.ToLower(id)]
	if !ok {
		return false
	}
	delete(s.vms, vm.ID)
	s.nodes[strings.ToUpper(vm.Owner)].logEvent(13003, vm)
	return true
}

// SetNodeState sets the state the cluster reports for node (Up, Down,
// Paused, Joining). It changes the cluster's view only: to make a node
// unreachable, close its Server.
func (s *Sim) SetNodeState(name, state string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[strings.ToUpper(name)]
	if !ok {
		return fmt.Errorf("hypervsim: no node %q", name)
	}
	n.state = state
	return nil
}

// SetAccount sets who sessions on node run as (by default a local
// administrator in Domain Users, not in Domain Admins).
func (s *Sim) SetAccount(name string, a Account) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[strings.ToUpper(name)]
	if !ok {
		return fmt.Errorf("hypervsim: no node %q", name)
	}
	a.Groups = append([]string(nil), a.Groups...)
	n.account = a
	return nil
}

// TrimLog drops all but the newest keep records of node's VMMS-Admin
// log, as a log that reached its maximum size overwrites its oldest
// records (record ids go on).
func (s *Sim) TrimLog(name string, keep int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[strings.ToUpper(name)]
	if !ok || keep >= len(n.log) {
		return
	}
	if keep < 0 {
		keep = 0
	}
	n.log = append([]Event(nil), n.log[len(n.log)-keep:]...)
}

// TrimWorkerLog is TrimLog for node's Hyper-V-Worker-Admin log.
func (s *Sim) TrimWorkerLog(name string, keep int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[strings.ToUpper(name)]
	if !ok || keep >= len(n.wlog) {
		return
	}
	n.wlog = append([]Event(nil), n.wlog[len(n.wlog)-max(keep, 0):]...)
}

// PowerEvents returns node's Hyper-V-Worker-Admin log.
func (s *Sim) PowerEvents(name string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nodes[strings.ToUpper(name)]; ok {
		return append([]Event(nil), n.wlog...)
	}
	return nil
}

// Move makes node the owner of VM id, as a live migration or a failover
// does (the VM keeps its VMId; no 13002/13003 is logged).
func (s *Sim) Move(id, to string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	vm, ok := s.vms[strings.ToLower(id)]
	n, nok := s.nodes[strings.ToUpper(to)]
	if !ok || !nok {
		return fmt.Errorf("hypervsim: no VM %q or node %q", id, to)
	}
	vm.Owner = n.name
	return nil
}

// SetState sets a VM's State (and Heartbeat: OkApplicationsUnknown while
// Running, empty otherwise).
func (s *Sim) SetState(id, state string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	vm, ok := s.vms[strings.ToLower(id)]
	if !ok {
		return fmt.Errorf("hypervsim: no VM %q", id)
	}
	old := vm.State
	vm.State = state
	s.nodes[strings.ToUpper(vm.Owner)].logPower(old, vm)
	vm.Heartbeat = ""
	if state == "Running" {
		vm.Heartbeat = "OkApplicationsUnknown"
	}
	return nil
}

// VMs returns a copy of every VM, ordered by ID.
func (s *Sim) VMs() []VM {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]VM, 0, len(s.vms))
	for _, vm := range s.vms {
		c := *vm
		c.Adapters = cloneAdapters(vm.Adapters)
		c.Disks = append([]string(nil), vm.Disks...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Events returns node's VMMS-Admin log.
func (s *Sim) Events(name string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nodes[strings.ToUpper(name)]; ok {
		return append([]Event(nil), n.log...)
	}
	return nil
}

// ScriptRuns returns how many times the template name ("inventory/1")
// was run on all nodes.
func (s *Sim) ScriptRuns(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scripts[name]
}

// ScriptRunsOn returns how many times the template name was answered by
// node. A count includes the answer: it is computed under the same lock.
func (s *Sim) ScriptRunsOn(node, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runsOn[strings.ToUpper(node)+" "+name]
}

// Requests returns how many WS-Management requests (Create, Command,
// Send, Receive, Signal, Delete) all nodes answered.
func (s *Sim) Requests() int {
	total := 0
	for _, n := range s.nodes {
		st := n.srv.Stats()
		total += st.ShellsCreated + st.ShellsDeleted + st.Commands + st.Sends + st.Receives + st.Signals
	}
	return total
}

var (
	reHeader       = regexp.MustCompile(`(?m)^# managedvm-hyperv ([a-z-]+/[0-9]+)$`)
	reComputerName = regexp.MustCompile(`(?i)-ComputerName\s+(\$p\.([A-Za-z]+)|'([^']*)'|([^\s;|)]+))`)
)

// handle runs one command on node n: it recognises the template by its
// header line, checks that it follows the rules every template follows,
// and answers from the cluster state.
func (s *Sim) handle(ctx context.Context, n *node, r *winrmserver.Request) int {
	if !r.PowerShell {
		fmt.Fprintf(r.Stderr, "hypervsim: only powershell.exe -EncodedCommand is served, not %q\r\n", r.CommandLine)
		return 1
	}
	m := reHeader.FindStringSubmatch(r.Script)
	if m == nil {
		fmt.Fprint(r.Stderr, "hypervsim: not a managedvm-hyperv template (no header line)\r\n")
		return 1
	}
	name := m[1]
	for _, must := range []string{"[Console]::In.ReadToEnd() | ConvertFrom-Json", "ConvertTo-Json", "-Compress", "-Depth"} {
		if !strings.Contains(r.Script, must) {
			fmt.Fprintf(r.Stderr, "hypervsim: %s does not use %s\r\n", name, must)
			return 1
		}
	}
	in, err := io.ReadAll(r.Stdin)
	if err != nil {
		return 1
	}
	for _, c := range in {
		if c >= 0x80 {
			// [Console]::In decodes with the OEM code page: the value
			// would arrive changed.
			fmt.Fprint(r.Stderr, "hypervsim: non-ASCII bytes on standard input would be read in the console code page\r\n")
			return 1
		}
	}
	var params map[string]any
	if len(strings.TrimSpace(string(in))) == 0 {
		params = map[string]any{}
	} else if err := json.Unmarshal(in, &params); err != nil {
		fmt.Fprintf(r.Stderr, "ConvertFrom-Json : Invalid JSON primitive: %v\r\n", err)
		return 1
	}
	for _, v := range params {
		if sv, ok := v.(string); ok && len(sv) >= 3 && strings.Contains(r.Script, sv) {
			fmt.Fprintf(r.Stderr, "hypervsim: %s has a parameter value pasted into its text\r\n", name)
			return 1
		}
	}
	if code, refused := s.doubleHop(n, r, params); refused {
		return code
	}
	s.mu.Lock()
	hang := n.hang
	s.mu.Unlock()
	if hang > 0 {
		t := time.NewTimer(hang)
		select {
		case <-ctx.Done():
			t.Stop()
			return 1
		case <-t.C:
		}
	}
	if s.opts.BeforeAnswer != nil {
		s.opts.BeforeAnswer(n.name, name)
	}
	if name == "guest/1" {
		return s.guestRun(ctx, n, r, params)
	}
	s.mu.Lock()
	s.scripts[name]++
	s.runsOn[strings.ToUpper(n.name)+" "+name]++
	out, code, msg := s.answer(n, name, params)
	s.mu.Unlock()
	if code != 0 {
		fmt.Fprint(r.Stderr, msg+"\r\n")
		return code
	}
	var b strings.Builder
	writeJSON(&b, out)
	if ctx.Err() != nil {
		return 1
	}
	_, _ = io.WriteString(r.Stdout, b.String())
	return 0
}

// doubleHop refuses a script that names another node with -ComputerName,
// as Hyper-V does inside an NTLM WinRM session: the node cannot pass the
// caller's credentials on.
func (s *Sim) doubleHop(n *node, r *winrmserver.Request, params map[string]any) (int, bool) {
	for _, m := range reComputerName.FindAllStringSubmatch(r.Script, -1) {
		target := m[3] + m[4]
		if m[2] != "" {
			target, _ = params[m[2]].(string)
		}
		if target == "" || strings.EqualFold(target, n.name) || target == "." || strings.EqualFold(target, "localhost") {
			continue
		}
		fmt.Fprintf(r.Stderr, "Get-VM : You do not have the required permission to complete this task. Contact the administrator of the authorization policy for the computer '%s'.\r\n", target)
		return 1, true
	}
	return 0, false
}

// answer computes a template's answer; s.mu is held.
func (s *Sim) answer(n *node, name string, p map[string]any) (obj, int, string) {
	switch name {
	case "inventory/1":
		vms := []obj{}
		for _, vm := range s.sortedVMs() {
			if vm.Owner == n.name {
				vms = append(vms, vmObj(vm))
			}
		}
		return obj{"V": "1", "Node": n.name, "VMs": vms}, 0, ""
	case "get/1":
		id, _ := p["Id"].(string)
		if !guidRE.MatchString(id) {
			return nil, 1, fmt.Sprintf("Get-VM : Cannot bind parameter 'Id'. Cannot convert value \"%s\" to type \"System.Guid\".", id)
		}
		vm, ok := s.vms[strings.ToLower(strings.Trim(id, "{}"))]
		if !ok || vm.Owner != n.name {
			return obj{"V": "1", "Node": n.name, "VM": nil}, 0, ""
		}
		return obj{"V": "1", "Node": n.name, "VM": vmObj(vm)}, 0, ""
	case "cluster/1":
		nodes := []obj{}
		for _, nm := range s.order {
			nodes = append(nodes, obj{"Name": nm, "State": s.nodes[strings.ToUpper(nm)].state})
		}
		csvs := []obj{}
		for _, c := range s.csvs {
			csvs = append(csvs, obj{"Name": c.Name, "State": c.State, "Owner": c.Owner, "Path": c.Path})
		}
		sw := []obj{}
		for _, w := range s.switches {
			sw = append(sw, obj{"Name": w.Name, "Type": w.Type})
		}
		return obj{"V": "1", "Node": n.name, "Cluster": s.opts.Cluster, "Domain": s.opts.Domain, "Nodes": nodes, "CSVs": csvs, "Switches": sw}, 0, ""
	case "templates/1":
		dir, _ := p["Path"].(string)
		dir = strings.TrimRight(dir, `\`)
		known := false
		for _, c := range s.csvs {
			if strings.EqualFold(c.Path, dir) {
				known = true
			}
		}
		var files []VHDX
		for _, f := range s.files {
			i := strings.LastIndex(f.Path, `\`)
			if i >= 0 && strings.EqualFold(f.Path[:i], dir) {
				known = true
				if strings.EqualFold(f.Path[len(f.Path)-5:], ".vhdx") {
					files = append(files, f)
				}
			}
		}
		if !known {
			return nil, 1, "Get-ChildItem : Cannot find path '" + dir + "' because it does not exist."
		}
		sort.Slice(files, func(i, j int) bool { return strings.ToLower(files[i].Path) < strings.ToLower(files[j].Path) })
		out := []obj{}
		for _, f := range files {
			meta := ""
			if b, ok := s.blobs[strings.ToLower(f.Path[:len(f.Path)-5]+".json")]; ok {
				meta = string(b)
			}
			out = append(out, obj{"Path": f.Path, "Format": f.Format, "Type": f.Type, "Size": strconv.FormatInt(f.Size, 10),
				"FileSize": strconv.FormatInt(f.FileSize, 10), "Parent": f.Parent, "Meta": meta})
		}
		return obj{"V": "1", "Node": n.name, "Files": out}, 0, ""
	case "power/1":
		id, _ := p["Id"].(string)
		on, isBool := p["On"].(bool)
		if !guidRE.MatchString(id) || !isBool {
			return nil, 1, "Get-VM : Cannot bind parameter 'Id'. Cannot convert value \"" + id + "\" to type \"System.Guid\"."
		}
		vm, ok := s.vms[strings.ToLower(strings.Trim(id, "{}"))]
		if !ok || vm.Owner != n.name {
			return obj{"V": "1", "Node": n.name, "Found": "False", "State": ""}, 0, ""
		}
		old := vm.State
		if on {
			vm.State, vm.Heartbeat = "Running", "OkApplicationsUnknown"
		} else {
			vm.State, vm.Heartbeat = "Off", ""
		}
		n.logPower(old, vm)
		return obj{"V": "1", "Node": n.name, "Found": "True", "State": vm.State}, 0, ""
	case "remove/1":
		id, _ := p["Id"].(string)
		keep, _ := p["Keep"].(string)
		if !guidRE.MatchString(id) {
			return nil, 1, "Get-VM : Cannot bind parameter 'Id'. Cannot convert value \"" + id + "\" to type \"System.Guid\"."
		}
		vm, ok := s.vms[strings.ToLower(strings.Trim(id, "{}"))]
		if !ok || vm.Owner != n.name {
			return obj{"V": "1", "Node": n.name, "Found": "False", "Removed": []string{}, "Kept": []string{}}, 0, ""
		}
		prefix := strings.ToLower(strings.TrimRight(keep, `\`) + `\`)
		removed, kept := []string{}, []string{}
		for _, d := range vm.Disks {
			if strings.HasPrefix(strings.ToLower(d), prefix) {
				kept = append(kept, d)
				continue
			}
			delete(s.files, strings.ToLower(d))
			delete(s.blobs, strings.ToLower(d))
			removed = append(removed, d)
		}
		old := vm.State
		vm.State = "Off"
		n.logPower(old, vm)
		delete(s.vms, vm.ID)
		n.logEvent(13003, vm)
		return obj{"V": "1", "Node": n.name, "Found": "True", "Removed": removed, "Kept": kept}, 0, ""
	case "file/1":
		path, _ := p["Path"].(string)
		data, _ := p["Data"].(string)
		want, _ := p["Sha256"].(string)
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, 1, "Exception calling \"FromBase64String\" with \"1\" argument(s): \"The input is not a valid Base-64 string.\""
		}
		sum := sha256.Sum256(b)
		got := strings.ToUpper(hex.EncodeToString(sum[:]))
		if got != want {
			return nil, 1, "the file written does not have the SHA-256 sent"
		}
		s.blobs[strings.ToLower(path)] = b
		s.names[strings.ToLower(path)] = path
		return obj{"V": "1", "Node": n.name, "Path": path, "Sha256": got, "Size": strconv.Itoa(len(b))}, 0, ""
	case "create/1":
		return s.create(n, p)
	case "role/1":
		id, _ := p["Id"].(string)
		if !guidRE.MatchString(id) {
			return nil, 1, "Get-VM : Cannot bind parameter 'Id'. Cannot convert value \"" + id + "\" to type \"System.Guid\"."
		}
		vm, ok := s.vms[strings.ToLower(strings.Trim(id, "{}"))]
		if !ok || vm.Owner != n.name {
			return obj{"V": "1", "Node": n.name, "Found": "False", "VM": nil}, 0, ""
		}
		if !vm.Clustered && s.denied[strings.ToUpper(n.name)] {
			return nil, 1, roleDenied
		}
		vm.Clustered = true
		return obj{"V": "1", "Node": n.name, "Found": "True", "VM": vmObj(vm)}, 0, ""
	case "undo/1":
		tag, _ := p["Tag"].(string)
		dir, _ := p["Dir"].(string)
		under, _ := p["Under"].(string)
		dir = strings.TrimRight(dir, `\`)
		u := strings.TrimRight(under, `\`) + `\`
		if !strings.HasPrefix(strings.ToLower(dir), strings.ToLower(u+"mvm-")) || strings.Contains(dir[len(u):], `\`) {
			return nil, 1, "undo/1: Dir is not a provisioning directory"
		}
		removed := []string{}
		for _, vm := range s.sortedVMs() {
			if vm.Owner == n.name && (vm.Notes == tag || strings.EqualFold(strings.TrimRight(vm.Path, `\`), dir)) {
				delete(s.vms, vm.ID)
				n.logEvent(13003, vm)
				removed = append(removed, vm.ID)
			}
		}
		s.removeTree(dir)
		return obj{"V": "1", "Node": n.name, "Removed": removed}, 0, ""
	case "rolecheck/1":
		name, _ := p["Name"].(string)
		vm := &VM{ID: newGUID(), Name: name}
		n.logEvent(13002, vm)
		n.logEvent(13003, vm)
		e := ""
		if s.denied[strings.ToUpper(n.name)] {
			e = roleDeniedMessage
		}
		return obj{"V": "1", "Node": n.name, "Error": e}, 0, ""
	case "switch/1":
		name, _ := p["Name"].(string)
		for _, w := range s.switches {
			if !strings.EqualFold(w.Name, name) {
				continue
			}
			a, l := "", ""
			if w.Type == "External" {
				a, l = w.Adapter, strconv.Itoa(w.AdapterVLAN)
				if a == "" {
					a = "NIC1"
				}
			}
			return obj{"V": "1", "Node": n.name, "Found": "True", "Type": w.Type, "Adapter": a, "AdapterVlan": l}, 0, ""
		}
		return obj{"V": "1", "Node": n.name, "Found": "False", "Type": "", "Adapter": "", "AdapterVlan": ""}, 0, ""
	case "account/1":
		return obj{"V": "1", "Node": n.name, "User": n.account.Name, "Admin": psBool(n.account.Admin),
			"Groups": append([]string{}, n.account.Groups...)}, 0, ""
	case "events/1", "powerevents/1":
		log := n.log
		if name == "powerevents/1" {
			log = n.wlog
		}
		// [int64]$p.After and [int]$p.Max: numbers, or strings of digits.
		after, ok1 := intParam(p["After"])
		max, ok2 := intParam(p["Max"])
		if !ok1 || !ok2 {
			return nil, 1, "Cannot convert value to type \"System.Int64\". Error: \"Input string was not in a correct format.\""
		}
		if max <= 0 {
			return nil, 1, "Get-WinEvent : Cannot validate argument on parameter 'MaxEvents'. The " + strconv.FormatInt(max, 10) + " argument is less than the minimum allowed range of 1."
		}
		evs := []obj{}
		oldest, last := "", ""
		if len(log) > 0 {
			oldest = strconv.FormatInt(log[0].RecordID, 10)
			last = strconv.FormatInt(log[len(log)-1].RecordID, 10)
		}
		for _, e := range log {
			if e.RecordID <= after || int64(len(evs)) >= max {
				continue
			}
			evs = append(evs, obj{"RecordId": strconv.FormatInt(e.RecordID, 10), "Id": strconv.Itoa(e.ID), "VMId": strings.ToUpper(e.VMID),
				"VMName": e.VMName, "Time": e.Time.UTC().Format("2006-01-02T15:04:05.0000000Z")})
		}
		return obj{"V": "1", "Node": n.name, "Oldest": oldest, "Last": last, "Events": evs}, 0, ""
	}
	return nil, 1, "hypervsim: template " + name + " is not simulated"
}

// intParam converts a JSON parameter as PowerShell's [int64] cast does
// for the values a template is sent: a number or a string of digits.
func intParam(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		return int64(x), x == float64(int64(x))
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

var guidRE = regexp.MustCompile(`^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$`)

func (s *Sim) sortedVMs() []*VM {
	out := make([]*VM, 0, len(s.vms))
	for _, vm := range s.vms {
		out = append(out, vm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// vmObj is what vmj in the templates builds for a VM: every value cast
// to a string as [string] casts it.
func vmObj(vm *VM) obj {
	ads := []obj{}
	for _, a := range vm.Adapters {
		ips := []string{}
		if vm.State == "Running" {
			ips = append(ips, a.IPs...)
		}
		mode, vlan := "Untagged", "0"
		if a.VLAN != 0 {
			mode, vlan = "Access", strconv.Itoa(a.VLAN)
		}
		ads = append(ads, obj{"Mac": strings.ToUpper(a.MAC), "Switch": a.Switch, "IPs": ips, "VlanMode": mode, "Vlan": vlan})
	}
	return obj{"Id": vm.ID, "Name": vm.Name, "State": vm.State, "CPUs": strconv.Itoa(vm.CPUs),
		"Memory": strconv.FormatInt(vm.MemoryStartup, 10), "Gen": strconv.Itoa(vm.Generation),
		"Clustered": psBool(vm.Clustered), "Notes": vm.Notes, "Heartbeat": vm.Heartbeat,
		"IS": vm.IntegrationServicesState, "Node": vm.Owner, "Adapters": ads}
}

// psBool is [string]$true / [string]$false.
func psBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// The text Add-ClusterVirtualMachineRole fails with for an account that
// lacks full access to the cluster (Grant-ClusterAccess -Full).
const (
	roleDeniedMessage = "You do not have administrative privileges on the cluster. Contact your network administrator to request access.\r\n    Access is denied"
	roleDenied        = "Add-ClusterVirtualMachineRole : " + roleDeniedMessage
	diskInUse         = "New-VM : Failed to create a new virtual machine.\r\nThe process cannot access the file because it is being used by another process. (0x80070020)"
)

// removeTree deletes every file under dir; s.mu is held.
func (s *Sim) removeTree(dir string) {
	prefix := strings.ToLower(strings.TrimRight(dir, `\`) + `\`)
	for k := range s.files {
		if strings.HasPrefix(k, prefix) {
			delete(s.files, k)
		}
	}
	for k := range s.blobs {
		if strings.HasPrefix(k, prefix) {
			delete(s.blobs, k)
			delete(s.names, k)
		}
	}
}

// create answers create/1; s.mu is held.
func (s *Sim) create(n *node, p map[string]any) (obj, int, string) {
	str := func(k string) string { v, _ := p[k].(string); return v }
	num := func(k string) int64 { v, _ := intParam(p[k]); return v }
	tag := str("Tag")
	for _, vm := range s.sortedVMs() {
		if vm.Owner == n.name && vm.Notes == tag {
			return obj{"V": "1", "Node": n.name, "VM": vmObj(vm)}, 0, ""
		}
	}
	disk, parent := str("Disk"), str("Parent")
	if _, ok := s.files[strings.ToLower(disk)]; !ok {
		pf, ok := s.files[strings.ToLower(parent)]
		if !ok {
			return nil, 1, "New-VHD : Failed to create the virtual hard disk.\r\nThe system cannot find the file specified. (0x80070002)"
		}
		f := VHDX{Path: disk, Format: "VHDX", Type: "Differencing", Parent: pf.Path, Size: pf.Size, FileSize: 4 << 20}
		if full, _ := p["Full"].(bool); full {
			f = VHDX{Path: disk, Format: pf.Format, Type: pf.Type, Size: pf.Size, FileSize: pf.FileSize}
		}
		s.files[strings.ToLower(disk)] = f
	}
	if s.inUse > 0 {
		s.inUse--
		return nil, 1, diskInUse
	}
	sw := str("Switch")
	known := false
	for _, w := range s.switches {
		known = known || strings.EqualFold(w.Name, sw)
	}
	if !known {
		return nil, 1, "hypervsim: New-VM: no virtual switch " + strconv.Quote(sw)
	}
	iso := str("ISO")
	disks := []string{disk}
	if iso != "" {
		if _, ok := s.blobs[strings.ToLower(iso)]; !ok {
			return nil, 1, "Add-VMDvdDrive : Failed to add device 'Virtual CD/DVD Disk'.\r\nThe system cannot find the file specified. (0x80070002)"
		}
		disks = append(disks, iso)
	}
	var mac [3]byte
	_, _ = rand.Read(mac[:])
	vm := &VM{ID: newGUID(), Name: str("Name"), State: "Off", CPUs: int(num("CPUs")), MemoryStartup: num("Memory"), Generation: int(num("Gen")),
		Notes: tag, Owner: n.name, Path: str("Dir"), Disks: disks,
		Adapters: []Adapter{{MAC: "00155d" + hex.EncodeToString(mac[:]), Switch: sw, VLAN: int(num("Vlan"))}}}
	s.vms[vm.ID] = vm
	n.logEvent(13002, vm)
	return obj{"V": "1", "Node": n.name, "VM": vmObj(vm)}, 0, ""
}

// Guest is what PowerShell Direct reaches in a VM: a Windows guest with
// one local account, whose commands the winrmserver Interpreter runs for
// real over Root (a host directory standing for the guest's drives).
type Guest struct {
	User, Password string
	Root           string
}

type guestOS struct {
	g  Guest
	in *winrmserver.Interpreter
}

// SetGuest gives VM id a guest that PowerShell Direct (guest/1) reaches
// while the VM is Running. A VM without one fails guest/1 as a VM whose
// guest does not answer over VMBus does.
func (s *Sim) SetGuest(id string, g Guest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vms[strings.ToLower(id)]; !ok {
		return fmt.Errorf("hypervsim: no VM %q", id)
	}
	s.guests[strings.ToLower(id)] = &guestOS{g: g, in: winrmserver.NewInterpreter(winrmserver.InterpreterOptions{Root: g.Root})}
	return nil
}

// The texts PowerShell Direct fails with.
const (
	credentialInvalid = "The credential is invalid."
	directUnavailable = "An error has occurred which Windows PowerShell cannot handle. A remote session might have ended."
)

// guestRun answers guest/1: the checks under the lock, the guest's
// command outside it (it may run long; ctx ends it when the driver
// terminates the command).
func (s *Sim) guestRun(ctx context.Context, n *node, r *winrmserver.Request, p map[string]any) int {
	str := func(k string) string { v, _ := p[k].(string); return v }
	id := str("Id")
	if !guidRE.MatchString(id) {
		fmt.Fprint(r.Stderr, "Get-VM : Cannot bind parameter 'Id'. Cannot convert value \""+id+"\" to type \"System.Guid\".\r\n")
		return 1
	}
	out := obj{"V": "1", "Node": n.name, "Found": "False", "State": "", "Error": "", "Out": "", "Err": "", "Code": ""}
	s.mu.Lock()
	s.scripts["guest/1"]++
	s.runsOn[strings.ToUpper(n.name)+" guest/1"]++
	vm, ok := s.vms[strings.ToLower(strings.Trim(id, "{}"))]
	var g *guestOS
	if ok && vm.Owner == n.name {
		out["Found"], out["State"] = "True", vm.State
		g = s.guests[vm.ID]
	}
	s.mu.Unlock()
	if out["State"] == "Running" {
		user := str("User")
		if i := strings.LastIndex(user, `\`); i >= 0 {
			user = user[i+1:]
		}
		switch {
		case g == nil:
			out["Error"] = directUnavailable
		case !strings.EqualFold(user, g.g.User) || str("Password") != g.g.Password:
			out["Error"] = credentialInvalid
		default:
			stdin, err := base64.StdEncoding.DecodeString(str("Stdin"))
			if err != nil {
				fmt.Fprint(r.Stderr, "Exception calling \"FromBase64String\" with \"1\" argument(s): \"The input is not a valid Base-64 string.\"\r\n")
				return 1
			}
			var so, se strings.Builder
			code := g.in.Handler(ctx, &winrmserver.Request{PowerShell: true, Script: str("Script"), Stdin: strings.NewReader(string(stdin)),
				Stdout: &so, Stderr: &se, Alive: func(int) bool { return false }})
			out["Out"] = base64.StdEncoding.EncodeToString([]byte(so.String()))
			out["Err"] = base64.StdEncoding.EncodeToString([]byte(se.String()))
			out["Code"] = strconv.Itoa(code)
		}
	}
	if ctx.Err() != nil {
		return 1
	}
	var b strings.Builder
	writeJSON(&b, out)
	_, _ = io.WriteString(r.Stdout, b.String())
	return 0
}
