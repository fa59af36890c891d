package hyperv

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// Node is one failover-cluster node and how to reach its WinRM service.
type Node struct {
	// Name is the node's name in the cluster (its COMPUTERNAME).
	Name string
	// Host is its address or DNS name for WinRM.
	Host string
	// WinRM holds the connection options (port, CA, pin, ...) for this
	// node; Executor and Logger in it are ignored.
	WinRM winrm.Options
}

// Options configure the driver.
type Options struct {
	// Zone is the name of the one zone the cluster forms; empty means
	// the cluster's name.
	Zone string
	// PollInterval is how often a Watch reads the nodes' event logs when
	// nothing is pending; zero means DefaultPollInterval.
	PollInterval time.Duration
	// ResyncInterval is how often a Watch lists every VM to report
	// changes the event logs do not carry (power, a move to another node,
	// addresses); zero means DefaultResyncInterval.
	ResyncInterval time.Duration
	// Switch is the name of the vmSwitch that trunks the zone's VLANs
	// (the same on every node); Preflight checks it when set.
	Switch string
	// TemplatesPath is the directory on the templates CSV that holds the
	// template .vhdx files (C:\ClusterStorage\Templates). Required.
	TemplatesPath string
	// VMsPath is the directory on the VMs CSV where Provision puts each
	// VM (its configuration, disk and cidata ISO in a directory of its
	// own, C:\ClusterStorage\VMs\mvm-...). Required by Provision.
	VMsPath string
	// FullCopy makes Provision copy the template's .vhdx instead of
	// making a differencing disk on it.
	FullCopy bool
	// Generation is the VM generation Provision makes (1 or 2; zero
	// means 2, UEFI, which VHDX templates usually need).
	Generation int
	// VLANs are the zone's VLANs, which the switch must trunk; Preflight
	// names them.
	VLANs []int
	// Guest configures the executors GuestExecutor returns (PowerShell
	// Direct): their default command timeout, logger and telemetry. Nil
	// is the zero guest.Options.
	Guest *guest.Options
	// ProvisionTimeout is provider.Options.ProvisionTimeout: the bound of
	// a Provision whose spec has no Timeout (zero: the provider package's
	// default).
	ProvisionTimeout time.Duration
	// Logger receives the driver's own logs (a retry, a failed clean-up)
	// and, through the portable *provider.Provider, one record per call;
	// nil discards them.
	Logger *slog.Logger
	// TracerProvider and MeterProvider are handed to the portable
	// *provider.Provider: nil records nothing.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// windowsPath is an absolute path on a drive, without the characters
// Windows forbids in names.
var windowsPath = regexp.MustCompile(`^[A-Za-z]:\\[^<>:"/|?*\x00-\x1f]*$`)

// Provider is the Hyper-V driver, a provider.Driver (and a
// provider.GuestAccessDriver). Hosts hold the *provider.Provider New
// returns; its As reaches this driver (a **hyperv.Provider target). It is
// safe for concurrent use.
type Provider struct {
	zone           string
	templates      string
	pollInterval   time.Duration
	resyncInterval time.Duration
	vmSwitch       string
	nodes          []*nodeConn
	vmsPath        string
	fullCopy       bool
	generation     int
	vlans          []int
	log            *slog.Logger
	guestOpts      *guest.Options

	keyMu    sync.Mutex
	keyLocks map[string]*keyLock

	mu      sync.Mutex
	owner   map[string]*nodeConn // VMId -> node last seen holding it
	cluName string               // the cluster's name, once known
}

var _ provider.Driver = (*Provider)(nil)

type nodeConn struct {
	name string
	ex   *guest.Executor
	flow provider.Flow
}

// New returns the portable Provider in front of a driver for the
// failover cluster of nodes (every node, each reached over its own WinRM
// endpoint) as cred, the domain service account (local administrator on
// every node, not a Domain Admin, with full cluster access). It asks the
// first node that answers for the cluster (cluster/1), so bad
// credentials, an untrusted certificate or a wrong address fail here.
// opts must set TemplatesPath (and VMsPath for Provision); the other
// fields are optional.
func New(ctx context.Context, nodes []Node, cred guest.Credentials, opts *Options) (*provider.Provider, error) {
	if err := errs.FromContext(ctx, "hyperv.New"); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	d, err := newDriver(nodes, cred, o)
	if err != nil {
		return nil, errs.WrapOp("hyperv.New", err)
	}
	if _, err := d.cluster(ctx); err != nil {
		_ = d.Close()
		return nil, errs.WrapOp("hyperv.New", err)
	}
	return provider.New(d, &provider.Options{Logger: o.Logger, TracerProvider: o.TracerProvider, MeterProvider: o.MeterProvider,
		ProvisionTimeout: o.ProvisionTimeout}), nil
}

// newDriver checks the arguments and makes one WinRM executor per node
// (each keeps its shells for reuse). Nothing is sent.
func newDriver(nodes []Node, cred guest.Credentials, opts Options) (*Provider, error) {
	if len(nodes) == 0 {
		return nil, errs.New(errs.InvalidArgument, "", "hyperv: no nodes")
	}
	if opts.Zone != "" {
		if err := limit.Name("hyperv.New", "Options.Zone", opts.Zone); err != nil {
			return nil, err
		}
	}
	if err := limit.Text("hyperv.New", "Options.TemplatesPath", opts.TemplatesPath, 260); err != nil {
		return nil, err
	}
	if !windowsPath.MatchString(opts.TemplatesPath) {
		return nil, errs.Errorf(errs.InvalidArgument, "", "hyperv: Options.TemplatesPath %s is not an absolute Windows path", limit.Quote(opts.TemplatesPath))
	}
	if opts.Switch != "" {
		if err := limit.Name("hyperv.New", "Options.Switch", opts.Switch); err != nil {
			return nil, err
		}
	}
	if opts.VMsPath != "" {
		if err := limit.Text("hyperv.New", "Options.VMsPath", opts.VMsPath, 200); err != nil {
			return nil, err
		}
		if !windowsPath.MatchString(opts.VMsPath) {
			return nil, errs.Errorf(errs.InvalidArgument, "", "hyperv: Options.VMsPath %s is not an absolute Windows path", limit.Quote(opts.VMsPath))
		}
	}
	if opts.Generation != 0 && opts.Generation != 1 && opts.Generation != 2 {
		return nil, errs.Errorf(errs.InvalidArgument, "", "hyperv: Options.Generation %d is not 1 or 2", opts.Generation)
	}
	for _, v := range opts.VLANs {
		if v < 1 || v > 4094 {
			return nil, errs.Errorf(errs.InvalidArgument, "", "hyperv: Options.VLANs holds %d, outside 1-4094", v)
		}
	}
	if opts.PollInterval < 0 || opts.ResyncInterval < 0 {
		return nil, errs.New(errs.InvalidArgument, "", "hyperv: negative PollInterval or ResyncInterval")
	}
	d := &Provider{zone: opts.Zone, templates: opts.TemplatesPath, owner: map[string]*nodeConn{},
		pollInterval: opts.PollInterval, resyncInterval: opts.ResyncInterval, vmSwitch: opts.Switch,
		vmsPath: strings.TrimRight(opts.VMsPath, `\`), fullCopy: opts.FullCopy, generation: opts.Generation, vlans: slices.Clone(opts.VLANs),
		log: opts.Logger, keyLocks: map[string]*keyLock{}, guestOpts: opts.Guest}
	if d.generation == 0 {
		d.generation = 2
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.pollInterval == 0 {
		d.pollInterval = DefaultPollInterval
	}
	if d.resyncInterval == 0 {
		d.resyncInterval = DefaultResyncInterval
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if err := limit.Name("hyperv.New", "Node.Name", n.Name); err != nil {
			d.Close()
			return nil, err
		}
		if seen[strings.ToUpper(n.Name)] {
			d.Close()
			return nil, errs.Errorf(errs.InvalidArgument, "", "hyperv: node %s listed twice", limit.Quote(n.Name))
		}
		seen[strings.ToUpper(n.Name)] = true
		wo := n.WinRM
		wo.Executor, wo.Logger = nil, nil
		ex, err := winrm.New(n.Host, cred, &wo)
		if err != nil {
			d.Close()
			return nil, err
		}
		port, tls := uint16(5986), !wo.HTTP
		if wo.HTTP {
			port = 5985
		}
		if wo.Port > 0 && wo.Port < 1<<16 {
			port = uint16(wo.Port)
		}
		d.nodes = append(d.nodes, &nodeConn{name: n.Name, ex: ex, flow: provider.Flow{Service: "Service Orchestration",
			Destination: "Microsoft Hyper-V node " + n.Name, Host: n.Host, Ports: []uint16{port}, TLS: tls,
			Why: "WinRM (PowerShell templates: inventory, events, provisioning, cluster roles, PowerShell Direct)"}})
	}
	return d, nil
}

var _ provider.FlowsDriver = (*Provider)(nil)

// Flows states the network flows the driver needs: WinRM to every node
// (5986 with TLS unless the node's winrm.Options say otherwise).
func (d *Provider) Flows() []provider.Flow {
	out := make([]provider.Flow, len(d.nodes))
	for i, n := range d.nodes {
		out[i] = n.flow
		out[i].Ports = slices.Clone(n.flow.Ports)
	}
	return out
}

// Close closes every node's executor.
func (d *Provider) Close() error {
	var all []error
	for _, n := range d.nodes {
		all = append(all, n.ex.Close())
	}
	return errors.Join(all...)
}

// eachNode runs f on every node at once and returns the first error in
// node order.
func (d *Provider) eachNode(ctx context.Context, f func(ctx context.Context, n *nodeConn) error) error {
	errsByNode := make([]error, len(d.nodes))
	var wg sync.WaitGroup
	for i, n := range d.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errsByNode[i] = f(ctx, n)
		}()
	}
	wg.Wait()
	for _, err := range errsByNode {
		if err != nil {
			return err
		}
	}
	return nil
}

// zoneName is the zone's name: Options.Zone, or else the cluster's name
// as the cluster template reported it (asked once: a cluster's name does
// not change while it runs).
func (d *Provider) zoneName(ctx context.Context) (string, error) {
	if d.zone != "" {
		return d.zone, nil
	}
	d.mu.Lock()
	name := d.cluName
	d.mu.Unlock()
	if name != "" {
		return name, nil
	}
	c, err := d.cluster(ctx)
	if err != nil {
		return "", err
	}
	return c.Cluster, nil
}

// List runs the inventory template on every node (one command each) and
// joins the answers by VMId. A VM that moves while the nodes answer can
// be listed by two nodes: it is listed once, as the first node in
// Options.Nodes order had it. Every node must answer: a list without one
// node's VMs would look like deletions. IncludeTemplates adds the
// templates (files) as VMs with Template set.
func (d *Provider) List(ctx context.Context, opts *provider.ListOptions) ([]provider.VM, error) {
	zone, err := d.zoneName(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Zone != "" && opts.Zone != zone {
		return nil, errs.Errorf(errs.NotFound, "", "hyperv: no zone %s", limit.Quote(opts.Zone))
	}
	vms, _, err := d.inventory(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]provider.VM, 0, len(vms))
	for _, w := range vms {
		out = append(out, vmOf(zone, w))
	}
	if opts.IncludeTemplates {
		ts, err := d.Templates(ctx, "")
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			out = append(out, templateAsVM(t))
		}
	}
	return out, nil
}

// inventory runs the inventory template on every node at once and joins
// the answers by VMId (first node in Options order wins a VM seen twice);
// owners maps each lower-case VMId to its node, and becomes the cache Get
// starts from.
func (d *Provider) inventory(ctx context.Context) ([]wireVM, map[string]*nodeConn, error) {
	answers := make([]inventoryAnswer, len(d.nodes))
	idx := map[*nodeConn]int{}
	for i, n := range d.nodes {
		idx[n] = i
	}
	err := d.eachNode(ctx, func(ctx context.Context, n *nodeConn) error {
		return run(ctx, n.ex, n.name, scriptInventory, nil, &answers[idx[n]])
	})
	if err != nil {
		return nil, nil, err
	}
	var out []wireVM
	owners := map[string]*nodeConn{}
	for i, a := range answers {
		for _, w := range a.VMs {
			id := strings.ToLower(w.ID)
			if owners[id] != nil {
				continue
			}
			owners[id] = d.nodes[i]
			out = append(out, w)
		}
	}
	d.mu.Lock()
	d.owner = maps.Clone(owners)
	d.mu.Unlock()
	return out, owners, nil
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Get asks the node that last held the VM first, then every other node
// at once. A template's ID (a path under TemplatesPath) is answered as a
// VM with Template set. An ID that is not a GUID names no VM: NotFound without a
// request. A VM found on a node is returned even when another node did
// not answer; NotFound needs every node's answer (else the first node's
// error).
func (d *Provider) Get(ctx context.Context, id string) (provider.VM, error) {
	if d.isTemplateID(id) {
		return d.templateVM(ctx, id)
	}
	zone, err := d.zoneName(ctx)
	if err != nil {
		return provider.VM{}, err
	}
	_, w, err := d.locate(ctx, id)
	if err != nil {
		return provider.VM{}, err
	}
	return vmOf(zone, w), nil
}

// locate finds the node that holds VM id (see Get) and what it says of
// the VM.
func (d *Provider) locate(ctx context.Context, id string) (*nodeConn, wireVM, error) {
	if !guidRE.MatchString(id) {
		return nil, wireVM{}, errs.Errorf(errs.NotFound, "", "hyperv: no VM %s (a VMId is a GUID)", limit.Quote(id))
	}
	id = strings.ToLower(id)
	d.mu.Lock()
	first := d.owner[id]
	d.mu.Unlock()
	params := map[string]string{"Id": id}
	answers := make([]getAnswer, len(d.nodes))
	failures := make([]error, len(d.nodes))
	idx := map[*nodeConn]int{}
	for i, n := range d.nodes {
		idx[n] = i
	}
	if first != nil {
		i := idx[first]
		failures[i] = run(ctx, first.ex, first.name, scriptGet, params, &answers[i])
		if a := answers[i]; failures[i] == nil && a.VM != nil {
			return first, *a.VM, nil
		}
		if ctx.Err() != nil {
			return nil, wireVM{}, failures[i]
		}
	}
	_ = d.eachNode(ctx, func(ctx context.Context, n *nodeConn) error {
		if n != first {
			failures[idx[n]] = run(ctx, n.ex, n.name, scriptGet, params, &answers[idx[n]])
		}
		return nil
	})
	for i, a := range answers {
		if failures[i] == nil && a.VM != nil {
			d.mu.Lock()
			d.owner[id] = d.nodes[i]
			d.mu.Unlock()
			return d.nodes[i], *a.VM, nil
		}
	}
	// Not found: that is only sure when every node answered.
	for _, err := range failures {
		if err != nil {
			return nil, wireVM{}, err
		}
	}
	d.mu.Lock()
	delete(d.owner, id)
	d.mu.Unlock()
	return nil, wireVM{}, errs.Errorf(errs.NotFound, "", "hyperv: no VM %s on any node", limit.Quote(id))
}

// onAnyNode runs s on the first node that can be reached, for what every
// node sees alike (the cluster, the CSVs). Only an unreachable node
// (Unavailable) moves on to the next: a script that failed would fail on
// every node.
func (d *Provider) onAnyNode(ctx context.Context, s script, params, out any) error {
	var first error
	for _, n := range d.nodes {
		err := run(ctx, n.ex, n.name, s, params, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !errs.Is(err, errs.Unavailable) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// cluster runs the cluster template on the first node that answers.
func (d *Provider) cluster(ctx context.Context) (clusterAnswer, error) {
	var a clusterAnswer
	if err := d.onAnyNode(ctx, scriptCluster, nil, &a); err != nil {
		return clusterAnswer{}, err
	}
	d.mu.Lock()
	d.cluName = a.Cluster
	d.mu.Unlock()
	return a, nil
}

// Zones returns the one zone: the cluster (Clusters), its CSVs' paths
// (Datastores) and the virtual switches (Networks); Attributes hold the
// domain and the nodes with their cluster states.
func (d *Provider) Zones(ctx context.Context) ([]provider.Zone, error) {
	c, err := d.cluster(ctx)
	if err != nil {
		return nil, err
	}
	name := d.zone
	if name == "" {
		name = c.Cluster
	}
	z := provider.Zone{Name: name, Clusters: []string{c.Cluster}, Attributes: map[string]string{"domain": c.Domain}}
	for _, s := range c.CSVs {
		z.Datastores = append(z.Datastores, s.Path)
		z.Attributes["csv."+s.Path] = s.Name + " (" + s.State + ", owner " + s.Owner + ")"
	}
	for _, w := range c.Switches {
		z.Networks = append(z.Networks, w.Name)
	}
	var nodes []string
	for _, n := range c.Nodes {
		nodes = append(nodes, n.Name+"="+n.State)
	}
	z.Attributes["nodes"] = strings.Join(nodes, ",")
	return []provider.Zone{z}, nil
}

// powerOf maps a VMState name.
func powerOf(state string) provider.PowerState {
	switch state {
	case "Running":
		return provider.PoweredOn
	case "Off":
		return provider.PoweredOff
	case "Saved", "Paused":
		return provider.Suspended
	}
	return provider.PowerUnknown
}

// vmOf turns a template's VM into a provider.VM. Numbers that do not
// parse are left zero; addresses that do not parse (or come late: KVP)
// are left out, which is not an error.
func vmOf(zone string, w wireVM) provider.VM {
	cpus, _ := strconv.Atoi(w.CPUs)
	mem, _ := strconv.ParseInt(w.Memory, 10, 64)
	vm := provider.VM{
		ID:         strings.ToLower(w.ID),
		Name:       w.Name,
		Zone:       zone,
		Power:      powerOf(w.State),
		CPUs:       cpus,
		MemoryMiB:  mem >> 20,
		Annotation: w.Notes,
		Attributes: map[string]string{
			"node":                     w.Node,
			"state":                    w.State,
			"generation":               w.Gen,
			"clustered":                strings.ToLower(w.Clustered),
			"integrationServicesState": w.IS,
		},
	}
	vm.Guest.ToolsStatus = w.Heartbeat
	vm.Guest.ToolsRunning = strings.HasPrefix(w.Heartbeat, "Ok")
	for i, a := range w.Adapters {
		p := "nic" + strconv.Itoa(i) + "."
		vm.Attributes[p+"mac"] = a.Mac
		vm.Attributes[p+"switch"] = a.Switch
		if a.VlanMode == "Access" {
			vm.Attributes[p+"vlan"] = a.Vlan
		}
		for _, s := range a.IPs {
			if ip, err := netip.ParseAddr(s); err == nil {
				vm.Guest.IPs = append(vm.Guest.IPs, ip)
			}
		}
	}
	return vm
}
