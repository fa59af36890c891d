package vsphere

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/template"
)

// vmProps are the only VM properties the driver reads.
var vmProps = []string{
	"name", "config.instanceUuid", "config.template", "config.hardware.numCPU",
	"config.hardware.memoryMB", "config.guestId", "config.annotation",
	"runtime.powerState", "runtime.host",
	"guest.guestFamily", "guest.guestFullName", "guest.hostName", "guest.ipAddress", "guest.net",
	"guest.toolsRunningStatus", "guest.toolsVersionStatus2",
}

// retrieveView reads props of every object of kind under the root folder
// through one ContainerView, page by page (PageSize objects a page), and
// calls fn with each page.
func (p *Provider) retrieveView(ctx context.Context, kinds []string, propSet []types.PropertySpec, fn func([]types.ObjectContent) error) error {
	root := p.client.ServiceContent.RootFolder
	cv, err := methods.CreateContainerView(ctx, p.client, &types.CreateContainerView{
		This: *p.client.ServiceContent.ViewManager, Container: root, Type: kinds, Recursive: true,
	})
	if err != nil {
		return err
	}
	view := cv.Returnval
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30e9)
		defer cancel()
		_, _ = methods.DestroyView(dctx, p.client, &types.DestroyView{This: view})
	}()
	spec := types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{
			Obj: view, Skip: types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}},
		}},
		PropSet: propSet,
	}
	res, err := methods.RetrievePropertiesEx(ctx, p.client, &types.RetrievePropertiesEx{
		This: p.client.ServiceContent.PropertyCollector, SpecSet: []types.PropertyFilterSpec{spec},
		Options: types.RetrieveOptions{MaxObjects: int32(p.opts.PageSize)},
	})
	if err != nil {
		return err
	}
	for r := res.Returnval; r != nil; {
		if err := fn(r.Objects); err != nil {
			return err
		}
		if r.Token == "" {
			break
		}
		next, err := methods.ContinueRetrievePropertiesEx(ctx, p.client, &types.ContinueRetrievePropertiesEx{
			This: p.client.ServiceContent.PropertyCollector, Token: r.Token,
		})
		if err != nil {
			return err
		}
		r = &next.Returnval
	}
	return nil
}

// retrieveVMs reads props of every VM under the root folder: the VM
// references through one ContainerView (its "view" property, one call),
// then their properties in pages of PageSize objects, ListConcurrency pages
// at a time. decode runs once per page, on the goroutine that retrieved it
// (so decoding overlaps the retrieval of other pages); page i holds the
// i-th PageSize references of the view. A VM deleted after the view was
// read is left out. It returns the number of pages.
func (p *Provider) retrieveVMs(ctx context.Context, props []string, decode func(page int, objs []types.ObjectContent) error) (int, error) {
	cv, err := methods.CreateContainerView(ctx, p.client, &types.CreateContainerView{
		This: *p.client.ServiceContent.ViewManager, Container: p.client.ServiceContent.RootFolder,
		Type: []string{"VirtualMachine"}, Recursive: true,
	})
	if err != nil {
		return 0, err
	}
	view := cv.Returnval
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30e9)
		defer cancel()
		_, _ = methods.DestroyView(dctx, p.client, &types.DestroyView{This: view})
	}()
	var v mo.ContainerView
	if err := p.retrieveOne(ctx, view, []string{"view"}, &v); err != nil {
		return 0, err
	}
	if p.afterView != nil {
		p.afterView()
	}
	size := p.opts.PageSize
	pages := (len(v.View) + size - 1) / size
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		next    atomic.Int64
		errOnce sync.Once
		first   error
	)
	fail := func(err error) {
		errOnce.Do(func() { first = err; cancel() })
	}
	for range min(p.opts.ListConcurrency, pages) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= pages || ctx.Err() != nil {
					return
				}
				refs := v.View[i*size : min((i+1)*size, len(v.View))]
				objs, err := p.retrieveObjects(ctx, refs, props)
				if err == nil {
					err = decode(i, objs)
				}
				if err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return pages, nil
}

// retrieveObjects reads props of the given objects (all of one type),
// following continuation tokens if the server pages the result. Objects
// that no longer exist are left out.
func (p *Provider) retrieveObjects(ctx context.Context, refs []types.ManagedObjectReference, props []string) ([]types.ObjectContent, error) {
	set := make([]types.ObjectSpec, len(refs))
	for i, r := range refs {
		set[i] = types.ObjectSpec{Obj: r}
	}
	res, err := methods.RetrievePropertiesEx(ctx, p.client, &types.RetrievePropertiesEx{
		This: p.client.ServiceContent.PropertyCollector,
		SpecSet: []types.PropertyFilterSpec{{
			ObjectSet: set, PropSet: []types.PropertySpec{{Type: refs[0].Type, PathSet: props}},
			ReportMissingObjectsInResults: types.NewBool(true),
		}},
		Options: types.RetrieveOptions{MaxObjects: int32(len(refs))},
	})
	if err != nil {
		return nil, err
	}
	var out []types.ObjectContent
	for r := res.Returnval; r != nil; {
		for _, o := range r.Objects {
			if !gone(o) {
				out = append(out, o)
			}
		}
		if r.Token == "" {
			break
		}
		next, err := methods.ContinueRetrievePropertiesEx(ctx, p.client, &types.ContinueRetrievePropertiesEx{
			This: p.client.ServiceContent.PropertyCollector, Token: r.Token,
		})
		if err != nil {
			return nil, err
		}
		r = &next.Returnval
	}
	return out, nil
}

// gone reports whether o stands for an object that no longer exists (a
// ManagedObjectNotFound in its missing set).
func gone(o types.ObjectContent) bool {
	for _, m := range o.MissingSet {
		if _, ok := m.Fault.Fault.(*types.ManagedObjectNotFound); ok {
			return true
		}
	}
	return false
}

// List returns every VM (templates only with IncludeTemplates), with one
// ContainerView and RetrievePropertiesEx calls of PageSize VMs each, up to
// ListConcurrency at a time.
func (p *Provider) List(ctx context.Context, opts *provider.ListOptions) ([]provider.VM, error) {
	const opname = op + ".List"
	if err := errs.FromContext(ctx, opname); err != nil {
		return nil, err
	}
	var o provider.ListOptions
	if opts != nil {
		o = *opts
	}
	topo, err := p.topology(ctx, false)
	if err != nil {
		return nil, mapErr(opname, err, false)
	}
	if o.Zone != "" && topo.zone(o.Zone) == nil {
		return nil, errs.Errorf(errs.NotFound, opname, "no zone %q", o.Zone)
	}
	var (
		mu    sync.Mutex
		pages = map[int][]mo.VirtualMachine{}
	)
	n, err := p.retrieveVMs(ctx, vmProps, func(i int, objs []types.ObjectContent) error {
		var mvms []mo.VirtualMachine
		if err := mo.LoadObjectContent(objs, &mvms); err != nil {
			return err
		}
		mu.Lock()
		pages[i] = mvms
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, mapErr(opname, err, false)
	}
	var out []provider.VM
	refreshed := false
	for i := range n {
		for j := range pages[i] {
			m := &pages[i][j]
			if m.Config == nil {
				continue // being created
			}
			if !refreshed && m.Runtime.Host != nil && topo.hosts[*m.Runtime.Host] == nil {
				if t, err := p.topology(ctx, true); err == nil {
					topo, refreshed = t, true
				}
			}
			vm := topo.toVM(m)
			if vm.Template && !o.IncludeTemplates {
				continue
			}
			if o.Zone != "" && vm.Zone != o.Zone {
				continue
			}
			out = append(out, vm)
		}
		pages[i] = nil
	}
	p.remember(out...)
	return out, nil
}

func (p *Provider) remember(vms ...provider.VM) {
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	if len(p.refs) > 200000 {
		clear(p.refs)
	}
	if len(p.last) > 200000 {
		clear(p.last)
	}
	for _, vm := range vms {
		if ref, ok := refOf(vm); ok {
			p.refs[vm.ID] = ref
		}
	}
}

// rememberRef keeps the last state seen of a VM, so a watcher can still
// name a VM that is gone.
func (p *Provider) rememberRef(ref types.ManagedObjectReference, vm provider.VM) {
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	p.refs[vm.ID] = ref
	p.last[ref] = vm
}

func refOf(vm provider.VM) (types.ManagedObjectReference, bool) {
	v := vm.Attributes["moref"]
	if v == "" {
		return types.ManagedObjectReference{}, false
	}
	return types.ManagedObjectReference{Type: "VirtualMachine", Value: v}, true
}

// findRef returns the VM with instance UUID id.
func (p *Provider) findRef(ctx context.Context, id string) (types.ManagedObjectReference, error) {
	p.cacheMu.Lock()
	ref, ok := p.refs[id]
	p.cacheMu.Unlock()
	if ok {
		return ref, nil
	}
	yes := true
	res, err := methods.FindByUuid(ctx, p.client, &types.FindByUuid{
		This: *p.client.ServiceContent.SearchIndex, Uuid: id, VmSearch: true, InstanceUuid: &yes,
	})
	if err != nil {
		return ref, err
	}
	if res.Returnval == nil {
		return ref, errs.Errorf(errs.NotFound, op, "no VM with ID %q", id)
	}
	return *res.Returnval, nil
}

// getMO reads the VM with ID id.
func (p *Provider) getMO(ctx context.Context, id string) (mo.VirtualMachine, error) {
	var m mo.VirtualMachine
	for attempt := 0; attempt < 2; attempt++ {
		ref, err := p.findRef(ctx, id)
		if err != nil {
			return m, err
		}
		err = p.retrieveOne(ctx, ref, vmProps, &m)
		if err == nil && m.Config != nil && m.Config.InstanceUuid == id {
			return m, nil
		}
		if err != nil && !isGone(err) {
			return m, err
		}
		// A stale cache entry: forget it and search again.
		p.cacheMu.Lock()
		delete(p.refs, id)
		p.cacheMu.Unlock()
	}
	return m, errs.Errorf(errs.NotFound, op, "no VM with ID %q", id)
}

func isGone(err error) bool {
	var nf *notFoundErr
	if errors.As(err, &nf) {
		return true
	}
	return isFault[*types.ManagedObjectNotFound](err)
}

// Get returns one VM by its instance UUID.
func (p *Provider) Get(ctx context.Context, id string) (provider.VM, error) {
	const opname = op + ".Get"
	if err := errs.FromContext(ctx, opname); err != nil {
		return provider.VM{}, err
	}
	m, err := p.getMO(ctx, id)
	if err != nil {
		return provider.VM{}, mapErr(opname, err, false)
	}
	return p.toVM(ctx, &m)
}

func (p *Provider) toVM(ctx context.Context, m *mo.VirtualMachine) (provider.VM, error) {
	topo, err := p.topology(ctx, false)
	if err != nil {
		return provider.VM{}, err
	}
	if m.Runtime.Host != nil && topo.hosts[*m.Runtime.Host] == nil {
		if topo, err = p.topology(ctx, true); err != nil {
			return provider.VM{}, err
		}
	}
	vm := topo.toVM(m)
	p.remember(vm)
	return vm, nil
}

func (t *topology) toVM(m *mo.VirtualMachine) provider.VM {
	vm := provider.VM{Name: m.Name, Power: powerOf(m.Runtime.PowerState)}
	attrs := map[string]string{"moref": m.Self.Value}
	if c := m.Config; c != nil {
		vm.ID = c.InstanceUuid
		vm.Template = c.Template
		vm.CPUs = int(c.Hardware.NumCPU)
		vm.MemoryMiB = int64(c.Hardware.MemoryMB)
		vm.Annotation = c.Annotation
		vm.Guest.Family = guest.ParseFamily(c.GuestId)
	}
	if g := m.Guest; g != nil {
		if f := guest.ParseFamily(g.GuestFamily); f != guest.FamilyUnknown {
			vm.Guest.Family = f
		}
		if g.GuestFullName != "" {
			vm.Guest.OSName = g.GuestFullName
		}
		vm.Guest.Hostname = g.HostName
		vm.Guest.ToolsRunning = g.ToolsRunningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
		vm.Guest.ToolsStatus = g.ToolsVersionStatus2
		if a, err := netip.ParseAddr(g.IpAddress); err == nil {
			vm.Guest.IPs = append(vm.Guest.IPs, a)
		}
		for _, n := range g.Net {
			for _, s := range n.IpAddress {
				if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(vm.Guest.IPs, a) {
					vm.Guest.IPs = append(vm.Guest.IPs, a)
				}
			}
		}
	}
	if m.Runtime.Host != nil {
		if h := t.hosts[*m.Runtime.Host]; h != nil {
			attrs["host"] = h.name
			if cr := t.computes[h.compute]; cr != nil {
				attrs["cluster"] = cr.name
				if dc := t.dcs[cr.dc]; dc != nil {
					attrs["datacenter"] = dc.name
				}
				vm.Zone = t.zoneOf(h.compute, cr.dc)
			}
		}
	}
	vm.Attributes = attrs
	return vm
}

func powerOf(s types.VirtualMachinePowerState) provider.PowerState {
	switch s {
	case types.VirtualMachinePowerStatePoweredOn:
		return provider.PoweredOn
	case types.VirtualMachinePowerStatePoweredOff:
		return provider.PoweredOff
	case types.VirtualMachinePowerStateSuspended:
		return provider.Suspended
	}
	return provider.PowerUnknown
}

// Zones lists the availability zones with what each spans.
func (p *Provider) Zones(ctx context.Context) ([]provider.Zone, error) {
	const opname = op + ".Zones"
	if err := errs.FromContext(ctx, opname); err != nil {
		return nil, err
	}
	topo, err := p.topology(ctx, true)
	if err != nil {
		return nil, mapErr(opname, err, false)
	}
	var out []provider.Zone
	for _, z := range topo.zones {
		out = append(out, topo.publicZone(z))
	}
	return out, nil
}

// Templates lists the templates (VMs marked as templates) of one zone, or
// of all zones for "".
func (p *Provider) Templates(ctx context.Context, zone string) ([]provider.Template, error) {
	const opname = op + ".Templates"
	vms, err := p.List(ctx, &provider.ListOptions{Zone: zone, IncludeTemplates: true})
	if err != nil {
		return nil, errs.WrapOp(opname, err)
	}
	var out []provider.Template
	for _, vm := range vms {
		if !vm.Template || vm.Zone == "" {
			continue
		}
		installed, _ := template.VMwareToolsFacts(vm.Guest.ToolsStatus)
		out = append(out, provider.Template{
			ID: vm.ID, Name: vm.Name, Zone: vm.Zone, Family: vm.Guest.Family, OSName: vm.Guest.OSName,
			ToolsInstalled: installed == template.Yes, Attributes: vm.Attributes,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
