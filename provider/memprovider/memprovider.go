package memprovider

import (
	"context"
	"io/fs"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// DefaultHistorySize is how many events a Provider keeps for Watch when
// Options.HistorySize is not set.
const DefaultHistorySize = 10_000

// Options configures a Provider. The zero value (or a nil *Options) is fine.
type Options struct {
	// Logger receives a debug record for every change made with the
	// helpers (AddZone, AddVM, ...) and, through the portable
	// *provider.Provider, one per call (never a secret); nil discards.
	Logger *slog.Logger
	// TracerProvider and MeterProvider are handed to the portable
	// *provider.Provider (see provider.Options): nil records nothing.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// ProvisionTimeout is provider.Options.ProvisionTimeout.
	ProvisionTimeout time.Duration
	// HistorySize is how many events Watch can replay; zero or less means
	// DefaultHistorySize. A cursor older than the history is expired.
	HistorySize int
	// Now is the clock for Event.Time; nil means time.Now.
	Now func() time.Time
	// GuestHandler answers the commands run through GuestExecutor for VMs
	// that have no handler of their own (see SetGuestHandler). Nil means
	// DefaultGuestHandler.
	GuestHandler GuestHandler
	// PreflightChecks are appended to every Preflight report after the rows
	// computed from the state: use them to script a missing privilege or
	// any other finding a test needs.
	PreflightChecks []report.Check
	// Flows are what the driver's Flows returns (the in-memory provider
	// reaches nothing over the network; tests script the flows a real
	// driver would state).
	Flows []provider.Flow
}

// Provider is the in-memory driver (a provider.Driver with guest access,
// provider.GuestAccessDriver) and the control surface tests use to set up
// its world. Create it with New; hosts hand its portable value, Provider,
// to the code under test. It is safe for concurrent use.
type Provider struct {
	portable       *provider.Provider
	log            *slog.Logger
	now            func() time.Time
	defaultHandler GuestHandler

	mu        sync.Mutex
	zones     map[string]provider.Zone
	vms       map[string]*record
	byName    map[nameKey]map[*record]struct{} // VMs and templates by zone and name
	keys      map[string]string                // provision key -> VM ID
	nextID    uint64
	preflight []report.Check
	flows     []provider.Flow
	hist      history
	wake      chan struct{} // closed and replaced on every event
}

var (
	_ provider.Driver            = (*Provider)(nil)
	_ provider.GuestAccessDriver = (*Provider)(nil)
	_ provider.FlowsDriver       = (*Provider)(nil)
)

// Flows returns Options.Flows (a provider.FlowsDriver).
func (p *Provider) Flows() []provider.Flow { return p.flows }

// record is one VM or template and what the provider knows beside it.
type record struct {
	vm provider.VM
	// key is the provision key the VM was made with, if any.
	key  string
	spec *provider.ProvisionSpec
	// toolsInstalled decides whether PowerOn starts the guest tools; for a
	// template it is provider.Template.ToolsInstalled.
	toolsInstalled bool
	accounts       map[string]string // user -> password
	handler        GuestHandler
	files          map[string]GuestFile
}

// GuestFile is a file uploaded into a guest through a GuestExecutor.
type GuestFile struct {
	Data []byte
	// Mode is the requested mode, 0644 when the upload asked for none.
	Mode fs.FileMode
	// Owner is the requested owner, if any.
	Owner string
}

// New returns an empty provider: no zones, templates or VMs. Its portable
// value (Provider) is made here, with opts' Logger, TracerProvider,
// MeterProvider and ProvisionTimeout.
func New(opts *Options) *Provider {
	if opts == nil {
		opts = &Options{}
	}
	p := &Provider{
		log:            opts.Logger,
		now:            opts.Now,
		defaultHandler: opts.GuestHandler,
		zones:          make(map[string]provider.Zone),
		vms:            make(map[string]*record),
		byName:         make(map[nameKey]map[*record]struct{}),
		keys:           make(map[string]string),
		preflight:      slices.Clone(opts.PreflightChecks),
		flows:          slices.Clone(opts.Flows),
		wake:           make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.defaultHandler == nil {
		p.defaultHandler = DefaultGuestHandler
	}
	p.hist.size = opts.HistorySize
	if p.hist.size <= 0 {
		p.hist.size = DefaultHistorySize
	}
	p.portable = provider.New(p, &provider.Options{
		Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider,
		ProvisionTimeout: opts.ProvisionTimeout,
	})
	return p
}

// Provider returns the portable *provider.Provider in front of p: the
// value host code and the code under test hold. It is the same value on
// every call; its As reaches p (a **memprovider.Provider target). Closing
// it closes its streams and makes its calls fail; p and its helpers keep
// working.
func (p *Provider) Provider() *provider.Provider { return p.portable }

type nameKey struct{ zone, name string }

// insert adds r to the store and its name index. Call with p.mu held.
func (p *Provider) insert(r *record) {
	p.vms[r.vm.ID] = r
	p.index(r)
}

func (p *Provider) index(r *record) {
	k := nameKey{r.vm.Zone, r.vm.Name}
	set := p.byName[k]
	if set == nil {
		set = make(map[*record]struct{})
		p.byName[k] = set
	}
	set[r] = struct{}{}
}

func (p *Provider) unindex(r *record) {
	k := nameKey{r.vm.Zone, r.vm.Name}
	delete(p.byName[k], r)
	if len(p.byName[k]) == 0 {
		delete(p.byName, k)
	}
}

// newID returns an ID with the given prefix that no record has. Call with
// p.mu held.
func (p *Provider) newID(prefix string) string {
	for {
		p.nextID++
		id := prefix + strconv.FormatUint(p.nextID, 10)
		if _, taken := p.vms[id]; !taken {
			return id
		}
	}
}

func cloneZone(z provider.Zone) provider.Zone {
	z.Datacenters = slices.Clone(z.Datacenters)
	z.Clusters = slices.Clone(z.Clusters)
	z.Datastores = slices.Clone(z.Datastores)
	z.Networks = slices.Clone(z.Networks)
	z.Attributes = maps.Clone(z.Attributes)
	return z
}

func (r *record) template() provider.Template {
	return provider.Template{
		ID:             r.vm.ID,
		Name:           r.vm.Name,
		Zone:           r.vm.Zone,
		Family:         r.vm.Guest.Family,
		OSName:         r.vm.Guest.OSName,
		ToolsInstalled: r.toolsInstalled,
		Attributes:     maps.Clone(r.vm.Attributes),
	}
}

// checkZone reports NotFound for a zone name that is set and unknown. Call
// with p.mu held.
func (p *Provider) checkZone(op, zone string) error {
	if _, ok := p.zones[zone]; zone != "" && !ok {
		return errs.Errorf(errs.NotFound, op, "zone %s not found", limit.Quote(zone))
	}
	return nil
}

func notFound(op, id string) error {
	return errs.Errorf(errs.NotFound, op, "VM %s not found", limit.Quote(id))
}

// ---- Host-test helpers ----

// AddZone adds an availability zone. A zone needs a name (InvalidArgument);
// a second zone with the same name is AlreadyExists.
func (p *Provider) AddZone(z provider.Zone) error {
	const op = "memprovider.AddZone"
	if z.Name == "" {
		return errs.New(errs.InvalidArgument, op, "zone has no name")
	}
	if err := limit.Name(op, "zone name", z.Name); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.zones[z.Name]; ok {
		return errs.Errorf(errs.AlreadyExists, op, "zone %s already exists", limit.Quote(z.Name))
	}
	p.zones[z.Name] = cloneZone(z)
	p.log.Debug("memprovider: zone added", "zone", z.Name)
	return nil
}

// AddTemplate adds a template to an existing zone (NotFound otherwise) and
// returns it with its ID, assigned ("template-N") when t.ID is empty. The
// template is also a VM (Template set, powered off, 1 CPU, 1024 MiB; change
// it with UpdateVM) whose guest family and OS name are t.Family and
// t.OSName: VMs provisioned from it copy its guest OS, its size, its guest
// accounts and guest handler. A template needs a name (InvalidArgument); an
// ID in use, or a template name already used in the zone, is AlreadyExists.
// Names and IDs keep the limits of the provider package (limit.Name,
// limit.Key: InvalidArgument otherwise). It emits a Created event.
func (p *Provider) AddTemplate(t provider.Template) (provider.Template, error) {
	const op = "memprovider.AddTemplate"
	if t.Name == "" {
		return provider.Template{}, errs.New(errs.InvalidArgument, op, "template has no name")
	}
	if err := limit.Name(op, "template name", t.Name); err != nil {
		return provider.Template{}, err
	}
	if t.ID != "" {
		if err := limit.Key(op, "template ID", t.ID); err != nil {
			return provider.Template{}, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.zones[t.Zone]; !ok {
		return provider.Template{}, errs.Errorf(errs.NotFound, op, "zone %s not found", limit.Quote(t.Zone))
	}
	if t.ID != "" {
		if _, ok := p.vms[t.ID]; ok {
			return provider.Template{}, errs.Errorf(errs.AlreadyExists, op, "ID %s is already in use", limit.Quote(t.ID))
		}
	}
	for r := range p.byName[nameKey{t.Zone, t.Name}] {
		if r.vm.Template {
			return provider.Template{}, errs.Errorf(errs.AlreadyExists, op, "zone %s already has a template named %s (ID %s)", limit.Quote(t.Zone), limit.Quote(t.Name), limit.Quote(r.vm.ID))
		}
	}
	if t.ID == "" {
		t.ID = p.newID("template-")
	}
	r := &record{
		vm: provider.VM{
			ID: t.ID, Name: t.Name, Zone: t.Zone, Power: provider.PoweredOff, Template: true,
			CPUs: 1, MemoryMiB: 1024,
			Guest:      provider.GuestInfo{Family: t.Family, OSName: t.OSName},
			Attributes: maps.Clone(t.Attributes),
		},
		toolsInstalled: t.ToolsInstalled,
	}
	p.insert(r)
	p.emit(provider.Created, r)
	p.log.Debug("memprovider: template added", "template", t.ID, "name", t.Name, "zone", t.Zone)
	return r.template(), nil
}

// AddVM adds a VM as if it had been made outside managedvm (by an operator
// in vCenter, say), and returns it with its ID, assigned ("vm-N") when
// vm.ID is empty. The VM needs a name, and cannot be a template (use
// AddTemplate): both InvalidArgument. Its zone must exist (NotFound) or
// be empty (a VM outside every zone). An ID in use is AlreadyExists. A zero
// Power means PoweredOff. Unlike Provision, AddVM accepts names that are
// taken. The VM's guest tools count as installed (see
// PowerOn) when Guest.ToolsRunning is set or Guest.ToolsVersion is not
// empty. Names and IDs keep the limits of the provider package
// (InvalidArgument otherwise). It emits a Created event.
func (p *Provider) AddVM(vm provider.VM) (provider.VM, error) {
	const op = "memprovider.AddVM"
	switch {
	case vm.Name == "":
		return provider.VM{}, errs.New(errs.InvalidArgument, op, "VM has no name")
	case vm.Template:
		return provider.VM{}, errs.New(errs.InvalidArgument, op, "VM is a template: use AddTemplate")
	}
	if err := limit.Name(op, "VM name", vm.Name); err != nil {
		return provider.VM{}, err
	}
	if vm.ID != "" {
		if err := limit.Key(op, "VM ID", vm.ID); err != nil {
			return provider.VM{}, err
		}
	}
	vm = vm.Clone()
	if vm.Power == provider.PowerUnknown {
		vm.Power = provider.PoweredOff
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkZone(op, vm.Zone); err != nil {
		return provider.VM{}, err
	}
	if vm.ID != "" {
		if _, ok := p.vms[vm.ID]; ok {
			return provider.VM{}, errs.Errorf(errs.AlreadyExists, op, "ID %s is already in use", limit.Quote(vm.ID))
		}
	} else {
		vm.ID = p.newID("vm-")
	}
	r := &record{vm: vm, toolsInstalled: vm.Guest.ToolsRunning || vm.Guest.ToolsVersion != ""}
	p.insert(r)
	p.emit(provider.Created, r)
	p.log.Debug("memprovider: VM added", "vm", vm.ID, "name", vm.Name, "zone", vm.Zone)
	return vm.Clone(), nil
}

// UpdateVM changes a VM (or template) as if from outside managedvm: fn gets
// a copy to change, and the result is stored and returned. Changing the ID
// or the Template flag is InvalidArgument and changes nothing; an unknown
// ID, or a new zone that does not exist, is NotFound. Setting
// Guest.ToolsRunning marks the guest tools as installed. It emits a Changed event, even when fn changed nothing.
func (p *Provider) UpdateVM(id string, fn func(vm *provider.VM)) (provider.VM, error) {
	const op = "memprovider.UpdateVM"
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.vms[id]
	if !ok {
		return provider.VM{}, notFound(op, id)
	}
	vm := r.vm.Clone()
	fn(&vm)
	switch {
	case vm.ID != r.vm.ID:
		return provider.VM{}, errs.Errorf(errs.InvalidArgument, op, "the ID of VM %s cannot change", limit.Quote(id))
	case vm.Template != r.vm.Template:
		return provider.VM{}, errs.Errorf(errs.InvalidArgument, op, "the Template flag of VM %s cannot change", limit.Quote(id))
	}
	if err := limit.Name(op, "VM name", vm.Name); err != nil {
		return provider.VM{}, err
	}
	if vm.Zone != r.vm.Zone {
		if err := p.checkZone(op, vm.Zone); err != nil {
			return provider.VM{}, err
		}
	}
	p.unindex(r)
	r.vm = vm.Clone()
	p.index(r)
	if vm.Guest.ToolsRunning {
		r.toolsInstalled = true
	}
	p.emit(provider.Changed, r)
	p.log.Debug("memprovider: VM updated", "vm", id)
	return vm, nil
}

// RemoveVM deletes a VM or template as if from outside managedvm,
// whatever its power state; an unknown ID is NotFound. It emits a Deleted
// event.
func (p *Provider) RemoveVM(id string) error {
	const op = "memprovider.RemoveVM"
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.vms[id]
	if !ok {
		return notFound(op, id)
	}
	p.remove(r)
	p.log.Debug("memprovider: VM removed", "vm", id)
	return nil
}

// remove deletes r and emits Deleted. Call with p.mu held.
func (p *Provider) remove(r *record) {
	delete(p.vms, r.vm.ID)
	p.unindex(r)
	if r.key != "" {
		delete(p.keys, r.key)
	}
	p.emitDeleted(r.vm.ID)
}

// SetGuestIPs sets the addresses the guest tools report, the primary one
// first (shorthand for UpdateVM). It emits a Changed event.
func (p *Provider) SetGuestIPs(id string, ips ...netip.Addr) error {
	_, err := p.UpdateVM(id, func(vm *provider.VM) { vm.Guest.IPs = slices.Clone(ips) })
	return errs.WrapOp("memprovider.SetGuestIPs", err)
}

// SetToolsRunning sets whether the guest tools run (shorthand for
// UpdateVM); true also marks them installed, so later power-ons start
// them. It emits a Changed event.
func (p *Provider) SetToolsRunning(id string, running bool) error {
	_, err := p.UpdateVM(id, func(vm *provider.VM) { vm.Guest.ToolsRunning = running })
	return errs.WrapOp("memprovider.SetToolsRunning", err)
}

// SetGuestAccount sets (or replaces) an OS account's password in the guest
// of a VM or template; VMs provisioned from a template get its accounts.
// The password is kept only for ValidateCredentials and is never logged or
// put in an error. An empty user is InvalidArgument; an unknown ID is
// NotFound. It emits no event: the hypervisor does not see guest accounts.
func (p *Provider) SetGuestAccount(id, user, password string) error {
	const op = "memprovider.SetGuestAccount"
	if user == "" {
		return errs.New(errs.InvalidArgument, op, "empty user name")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.vms[id]
	if !ok {
		return notFound(op, id)
	}
	if r.accounts == nil {
		r.accounts = make(map[string]string)
	}
	r.accounts[user] = password
	p.log.Debug("memprovider: guest account set", "vm", id, "user", user)
	return nil
}

// SetGuestHandler sets the handler that answers commands run in the guest
// of a VM or template (nil goes back to Options.GuestHandler); VMs
// provisioned from a template get its handler. An unknown ID is NotFound.
func (p *Provider) SetGuestHandler(id string, h GuestHandler) error {
	const op = "memprovider.SetGuestHandler"
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.vms[id]
	if !ok {
		return notFound(op, id)
	}
	r.handler = h
	return nil
}

// GuestFile returns a copy of the file uploaded to path in a VM's guest
// through a GuestExecutor, if there is one.
func (p *Provider) GuestFile(id, path string) (GuestFile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.vms[id]
	if !ok {
		return GuestFile{}, false
	}
	f, ok := r.files[path]
	f.Data = slices.Clone(f.Data)
	return f, ok
}

// ProvisionSpecOf returns a copy of the spec a VM was provisioned with
// (its customization included), for tests that check what reached the
// provider. VMs added with AddVM have none.
func (p *Provider) ProvisionSpecOf(id string) (provider.ProvisionSpec, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.vms[id]
	if !ok || r.spec == nil {
		return provider.ProvisionSpec{}, false
	}
	return cloneSpec(*r.spec), true
}

// SetPreflightChecks replaces the scripted rows that Preflight appends
// (Options.PreflightChecks).
func (p *Provider) SetPreflightChecks(checks []report.Check) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.preflight = slices.Clone(checks)
}

func cloneSpec(s provider.ProvisionSpec) provider.ProvisionSpec {
	if c := s.Customization; c != nil {
		cc := *c
		cc.UserData = slices.Clone(c.UserData)
		cc.MetaData = slices.Clone(c.MetaData)
		cc.NetworkConfig = slices.Clone(c.NetworkConfig)
		if c.Static != nil {
			st := *c.Static
			st.DNS = slices.Clone(c.Static.DNS)
			cc.Static = &st
		}
		s.Customization = &cc
	}
	return s
}

// ---- Inventory and discovery (the provider.Driver methods) ----

// List returns the VMs, sorted by name then ID: templates only with
// IncludeTemplates, one zone's only with Zone (an unknown zone is
// NotFound).
func (p *Provider) List(_ context.Context, opts *provider.ListOptions) ([]provider.VM, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkZone("", opts.Zone); err != nil {
		return nil, err
	}
	recs := make([]*record, 0, len(p.vms))
	for _, r := range p.vms {
		if (r.vm.Template && !opts.IncludeTemplates) || (opts.Zone != "" && r.vm.Zone != opts.Zone) {
			continue
		}
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b *record) int {
		if c := cmpString(a.vm.Name, b.vm.Name); c != 0 {
			return c
		}
		return compareIDs(a.vm.ID, b.vm.ID)
	})
	// The stored VMs are never changed in place (a change replaces
	// r.vm), so they may be handed out: the portable type copies them.
	out := make([]provider.VM, len(recs))
	for i, r := range recs {
		out[i] = r.vm
	}
	return out, nil
}

// compareIDs orders IDs so that "vm-2" comes before "vm-10".
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Get returns one VM or template; an unknown ID is NotFound.
func (p *Provider) Get(_ context.Context, id string) (provider.VM, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.vms[id]
	if !ok {
		return provider.VM{}, notFound("", id)
	}
	return r.vm, nil
}

// Zones returns the zones, sorted by name.
func (p *Provider) Zones(context.Context) ([]provider.Zone, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]provider.Zone, 0, len(p.zones))
	for _, name := range slices.Sorted(maps.Keys(p.zones)) {
		out = append(out, p.zones[name]) // never changed in place
	}
	return out, nil
}

// Templates returns the templates of one zone (NotFound if it does not
// exist), or of every zone when zone is empty, sorted by zone then name.
func (p *Provider) Templates(_ context.Context, zone string) ([]provider.Template, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkZone("", zone); err != nil {
		return nil, err
	}
	return p.templatesLocked(zone), nil
}

func (p *Provider) templatesLocked(zone string) []provider.Template {
	out := []provider.Template{}
	for _, r := range p.vms {
		if r.vm.Template && (zone == "" || r.vm.Zone == zone) {
			out = append(out, r.template())
		}
	}
	slices.SortFunc(out, func(a, b provider.Template) int {
		switch {
		case a.Zone != b.Zone:
			return cmpString(a.Zone, b.Zone)
		case a.Name != b.Name:
			return cmpString(a.Name, b.Name)
		}
		return compareIDs(a.ID, b.ID)
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ---- Lifecycle ----

// Provision clones a template into a zone; see the package documentation
// for what the new VM gets. An unknown zone, template (by ID or name, in
// spec.Zone) or network (when the zone lists its networks) is NotFound; a
// name already used in the zone by another VM or template is
// AlreadyExists. A spec.Key seen before returns that VM as it is now,
// changing nothing. It emits Created, then Changed when spec.PowerOn is
// set.
func (p *Provider) Provision(_ context.Context, spec provider.ProvisionSpec) (provider.VM, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.keys[spec.Key]; ok {
		return p.vms[id].vm, nil
	}
	zone, ok := p.zones[spec.Zone]
	if !ok {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "zone %s not found", limit.Quote(spec.Zone))
	}
	tmpl := p.findTemplate(spec.Zone, spec.Template)
	if tmpl == nil {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "template %s not found in zone %s", limit.Quote(spec.Template), limit.Quote(spec.Zone))
	}
	if n := spec.Network.Name; n != "" && len(zone.Networks) > 0 && !slices.Contains(zone.Networks, n) {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "network %s not found in zone %s", limit.Quote(n), limit.Quote(spec.Zone))
	}
	for r := range p.byName[nameKey{spec.Zone, spec.Name}] {
		return provider.VM{}, errs.Errorf(errs.AlreadyExists, "", "zone %s already has a VM named %s (ID %s)", limit.Quote(spec.Zone), limit.Quote(spec.Name), limit.Quote(r.vm.ID))
	}

	t := tmpl.vm
	vm := provider.VM{
		ID:        p.newID("vm-"),
		Name:      spec.Name,
		Zone:      spec.Zone,
		Power:     provider.PoweredOff,
		CPUs:      t.CPUs,
		MemoryMiB: t.MemoryMiB,
		Guest: provider.GuestInfo{
			Family:       t.Guest.Family,
			OSName:       t.Guest.OSName,
			OSVersion:    t.Guest.OSVersion,
			Hostname:     spec.Name,
			ToolsVersion: t.Guest.ToolsVersion,
			ToolsStatus:  t.Guest.ToolsStatus,
		},
		Attributes: map[string]string{"template": t.ID},
	}
	if spec.CPUs > 0 {
		vm.CPUs = spec.CPUs
	}
	if spec.MemoryMiB > 0 {
		vm.MemoryMiB = spec.MemoryMiB
	}
	if spec.Network.Name != "" {
		vm.Attributes["network"] = spec.Network.Name
	}
	if spec.Network.VLAN != 0 {
		vm.Attributes["vlan"] = strconv.Itoa(spec.Network.VLAN)
	}
	if c := spec.Customization; c != nil {
		if c.Hostname != "" {
			vm.Guest.Hostname = c.Hostname
		}
		if c.Static != nil {
			vm.Guest.IPs = []netip.Addr{c.Static.Address.Addr()}
		}
	}
	saved := cloneSpec(spec)
	r := &record{
		vm:             vm,
		key:            spec.Key,
		spec:           &saved,
		toolsInstalled: tmpl.toolsInstalled,
		accounts:       maps.Clone(tmpl.accounts),
		handler:        tmpl.handler,
	}
	p.insert(r)
	p.keys[spec.Key] = vm.ID
	p.emit(provider.Created, r)
	if spec.PowerOn {
		p.powerOn(r)
	}
	return r.vm, nil
}

// findTemplate finds a template of zone by ID, else by name. Call with
// p.mu held.
func (p *Provider) findTemplate(zone, idOrName string) *record {
	if r, ok := p.vms[idOrName]; ok && r.vm.Template && r.vm.Zone == zone {
		return r
	}
	for r := range p.byName[nameKey{zone, idOrName}] {
		if r.vm.Template {
			return r
		}
	}
	return nil
}

// lookupVM returns the VM record for a lifecycle call: NotFound for an
// unknown ID, FailedPrecondition for a template. Call with p.mu held.
func (p *Provider) lookupVM(id string) (*record, error) {
	r, ok := p.vms[id]
	if !ok {
		return nil, notFound("", id)
	}
	if r.vm.Template {
		return nil, errs.Errorf(errs.FailedPrecondition, "", "%s is a template, not a VM: templates cannot be powered on, off or destroyed", limit.Quote(id))
	}
	return r, nil
}

// PowerOn powers a VM on and starts its guest tools if they are
// installed. Powering on a running VM does nothing; an unknown ID is
// NotFound; a template is FailedPrecondition. It emits Changed when the
// state changes.
func (p *Provider) PowerOn(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, err := p.lookupVM(id)
	if err != nil {
		return err
	}
	if r.vm.Power != provider.PoweredOn {
		p.powerOn(r)
	}
	return nil
}

func (p *Provider) powerOn(r *record) {
	r.vm.Power = provider.PoweredOn
	r.vm.Guest.ToolsRunning = r.toolsInstalled
	p.emit(provider.Changed, r)
}

// PowerOff powers a VM off (or a suspended one off) and stops its guest
// tools. Powering off a VM that is off does nothing; an unknown ID is
// NotFound; a template is FailedPrecondition. It emits Changed when the
// state changes.
func (p *Provider) PowerOff(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, err := p.lookupVM(id)
	if err != nil {
		return err
	}
	if r.vm.Power != provider.PoweredOff {
		r.vm.Power = provider.PoweredOff
		r.vm.Guest.ToolsRunning = false
		p.emit(provider.Changed, r)
	}
	return nil
}

// Destroy deletes a VM whatever its power state, with its guest accounts
// and files; its provision key is forgotten. A VM that does not exist is
// not an error; a template is FailedPrecondition (use RemoveVM). It emits
// Deleted.
func (p *Provider) Destroy(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, err := p.lookupVM(id)
	switch {
	case errs.Is(err, errs.NotFound):
		return nil
	case err != nil:
		return err
	}
	p.remove(r)
	return nil
}
