package vsphere

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/template"
)

// vmProps are the only VM properties the driver reads. The identity,
// template flag, size and configured guest ID come from summary.config,
// what VMware Tools report from summary.guest (plus guest.guestFamily and
// guest.net, which the summary lacks): a handful of properties instead of
// one per fact is what makes a large List cheap for vCenter and for the
// client alike. Name and annotation are read directly, as renames and
// edits reach them first.
var vmProps = []string{
	"name", "config.annotation", "summary.config", "runtime.powerState", "runtime.host",
	"guest.guestFamily", "guest.net", "summary.guest",
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
	if err := ctx.Err(); err != nil {
		return 0, err // the caller gave up: pages were skipped
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
	var o provider.ListOptions
	if opts != nil {
		o = *opts
	}
	topo, err := p.topology(ctx, false)
	if err != nil {
		return nil, mapErr("", err, false)
	}
	if o.Zone != "" && topo.zone(o.Zone) == nil {
		return nil, errs.Errorf(errs.NotFound, "", "no zone %s", limit.Quote(o.Zone))
	}
	var (
		mu    sync.Mutex
		pages = map[int][]vmFacts{}
	)
	n, err := p.retrieveVMs(ctx, vmProps, func(i int, objs []types.ObjectContent) error {
		facts := make([]vmFacts, 0, len(objs))
		for _, o := range objs {
			facts = append(facts, factsFrom(o.Obj, o.PropSet))
		}
		mu.Lock()
		pages[i] = facts
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, mapErr("", err, false)
	}
	var out []provider.VM
	refreshed := false
	for i := range n {
		for j := range pages[i] {
			f := &pages[i][j]
			if !f.hasConfig {
				continue // being created
			}
			if !refreshed && f.host != nil && topo.hosts[*f.host] == nil {
				if t, err := p.topology(ctx, true); err == nil {
					topo, refreshed = t, true
				}
			}
			vm := topo.toVM(f)
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
		return ref, errs.Errorf(errs.NotFound, "", "no VM with ID %s", limit.Quote(id))
	}
	return *res.Returnval, nil
}

// readFacts reads the vmProps of the VM ref.
func (p *Provider) readFacts(ctx context.Context, ref types.ManagedObjectReference, props []string) (vmFacts, error) {
	objs, err := p.retrieveObjects(ctx, []types.ManagedObjectReference{ref}, props)
	if err != nil {
		return vmFacts{}, err
	}
	if len(objs) == 0 {
		return vmFacts{}, fmt.Errorf("%w", &notFoundErr{ref: ref})
	}
	return factsFrom(ref, objs[0].PropSet), nil
}

// getFacts reads the VM with ID id.
func (p *Provider) getFacts(ctx context.Context, id string) (vmFacts, error) {
	for attempt := 0; attempt < 2; attempt++ {
		ref, err := p.findRef(ctx, id)
		if err != nil {
			return vmFacts{}, err
		}
		f, err := p.readFacts(ctx, ref, vmProps)
		if err == nil && f.hasConfig && f.uuid == id {
			return f, nil
		}
		if err != nil && !isGone(err) {
			return f, err
		}
		// A stale cache entry: forget it and search again.
		p.cacheMu.Lock()
		delete(p.refs, id)
		p.cacheMu.Unlock()
	}
	return vmFacts{}, errs.Errorf(errs.NotFound, "", "no VM with ID %s", limit.Quote(id))
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
	f, err := p.getFacts(ctx, id)
	if err != nil {
		return provider.VM{}, mapErr("", err, false)
	}
	return p.toVM(ctx, &f)
}

func (p *Provider) toVM(ctx context.Context, f *vmFacts) (provider.VM, error) {
	topo, err := p.topology(ctx, false)
	if err != nil {
		return provider.VM{}, err
	}
	if f.host != nil && topo.hosts[*f.host] == nil {
		if topo, err = p.topology(ctx, true); err != nil {
			return provider.VM{}, err
		}
	}
	vm := topo.toVM(f)
	p.remember(vm)
	return vm, nil
}

// vmFacts are the VM properties the driver reads (vmProps), decoded
// straight from the retrieved properties by factsFrom, which costs a
// fraction of loading an mo.VirtualMachine (several KiB of nested structs
// a VM, filled by reflection).
type vmFacts struct {
	ref                         types.ManagedObjectReference
	name                        string
	hasConfig                   bool // the VM has its identity: it is not being created
	uuid, guestID, annotation   string
	template                    bool
	cpus, memoryMB              int32
	power                       types.VirtualMachinePowerState
	host                        *types.ManagedObjectReference
	family, fullName, hostName  string
	ipAddress                   string
	net                         []types.GuestNicInfo
	toolsRunning, toolsVersion2 string
}

// factsFrom takes the facts from retrieved properties (vmProps; others are
// ignored). Values of an unexpected type are left out, as a missing
// property would be.
func factsFrom(ref types.ManagedObjectReference, props []types.DynamicProperty) vmFacts {
	f := vmFacts{ref: ref}
	str := func(v types.AnyType) string { s, _ := v.(string); return s }
	for _, p := range props {
		switch p.Name {
		case "name":
			f.name = str(p.Val)
		case "config.annotation":
			f.annotation = str(p.Val)
		case "summary.config":
			if c, ok := p.Val.(types.VirtualMachineConfigSummary); ok && c.InstanceUuid != "" {
				f.hasConfig = true
				f.uuid, f.template, f.guestID = c.InstanceUuid, c.Template, c.GuestId
				f.cpus, f.memoryMB = c.NumCpu, c.MemorySizeMB
			}
		case "runtime.powerState":
			f.power, _ = p.Val.(types.VirtualMachinePowerState)
		case "runtime.host":
			if h, ok := p.Val.(types.ManagedObjectReference); ok {
				f.host = &h
			}
		case "guest.guestFamily":
			f.family = str(p.Val)
		case "guest.net":
			if a, ok := p.Val.(types.ArrayOfGuestNicInfo); ok {
				f.net = a.GuestNicInfo
			}
		case "summary.guest":
			if g, ok := p.Val.(types.VirtualMachineGuestSummary); ok {
				f.fullName, f.hostName, f.ipAddress = g.GuestFullName, g.HostName, g.IpAddress
				f.toolsRunning, f.toolsVersion2 = g.ToolsRunningStatus, g.ToolsVersionStatus2
			}
		}
	}
	return f
}

func (t *topology) toVM(f *vmFacts) provider.VM {
	vm := provider.VM{Name: f.name, Power: powerOf(f.power)}
	attrs := map[string]string{"moref": f.ref.Value}
	if f.hasConfig {
		vm.ID = f.uuid
		vm.Template = f.template
		vm.CPUs = int(f.cpus)
		vm.MemoryMiB = int64(f.memoryMB)
		vm.Annotation = f.annotation
		vm.Guest.Family = guest.ParseFamily(f.guestID)
	}
	if fam := guest.ParseFamily(f.family); fam != guest.FamilyUnknown {
		vm.Guest.Family = fam
	}
	if f.fullName != "" {
		vm.Guest.OSName = f.fullName
	}
	vm.Guest.Hostname = f.hostName
	vm.Guest.ToolsRunning = f.toolsRunning == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
	vm.Guest.ToolsStatus = f.toolsVersion2
	if a, err := netip.ParseAddr(f.ipAddress); err == nil {
		vm.Guest.IPs = append(vm.Guest.IPs, a)
	}
	for _, n := range f.net {
		for _, s := range n.IpAddress {
			if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(vm.Guest.IPs, a) {
				vm.Guest.IPs = append(vm.Guest.IPs, a)
			}
		}
	}
	if f.host != nil {
		if h := t.hosts[*f.host]; h != nil {
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
	topo, err := p.topology(ctx, true)
	if err != nil {
		return nil, mapErr("", err, false)
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
	vms, err := p.List(ctx, &provider.ListOptions{Zone: zone, IncludeTemplates: true})
	if err != nil {
		return nil, err
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
