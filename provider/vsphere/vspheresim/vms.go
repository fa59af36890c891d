package vspheresim

import (
	"context"
	"fmt"
	"sync"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// GuestState is what the guest tools report; the stock simulator's VMs
// have tools not running and no IP.
type GuestState struct {
	ToolsRunning bool
	// ToolsStatus is guest.toolsVersionStatus2 ("guestToolsCurrent" when
	// empty and ToolsRunning).
	ToolsStatus string
	IP          string
	Hostname    string
	// Family is guest.guestFamily ("linuxGuest"), FullName
	// guest.guestFullName.
	Family   string
	FullName string
}

// SetGuest sets a VM's guest info in-process (as VMware Tools would report
// it), posting a property change the PropertyCollector sees. Like vCenter
// (and the simulator's own guest customization), it updates summary.guest
// with guest.
func (s *Sim) SetGuest(ref types.ManagedObjectReference, g GuestState) error {
	vm, ok := s.Map().Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return fmt.Errorf("vspheresim: no VM %s", ref)
	}
	running, status := string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning), "toolsNotRunning"
	v2 := g.ToolsStatus
	if g.ToolsRunning {
		running, status = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning), "toolsOk"
		if v2 == "" {
			v2 = string(types.VirtualMachineToolsVersionStatusGuestToolsCurrent)
		}
	}
	changes := []types.PropertyChange{
		{Name: "guest.toolsRunningStatus", Val: running},
		{Name: "guest.toolsStatus", Val: types.VirtualMachineToolsStatus(status)},
		{Name: "guest.toolsVersionStatus2", Val: v2},
		{Name: "guest.toolsVersion", Val: "12352"},
		{Name: "guest.ipAddress", Val: g.IP},
		{Name: "guest.hostName", Val: g.Hostname},
		{Name: "guest.guestFamily", Val: g.Family},
		{Name: "guest.guestFullName", Val: g.FullName},
		// vCenter keeps summary.guest in step with guest.
		{Name: "summary.guest.toolsRunningStatus", Val: running},
		{Name: "summary.guest.toolsStatus", Val: types.VirtualMachineToolsStatus(status)},
		{Name: "summary.guest.toolsVersionStatus2", Val: v2},
		{Name: "summary.guest.ipAddress", Val: g.IP},
		{Name: "summary.guest.hostName", Val: g.Hostname},
		{Name: "summary.guest.guestFullName", Val: g.FullName},
	}
	ctx := s.Context()
	ctx.WithLock(vm, func() { ctx.Update(vm, changes) })
	return nil
}

// Placement names where CreateVMs puts VMs; empty fields mean the first
// datacenter's first cluster and its first shared datastore.
type Placement struct {
	Datacenter, Cluster, Datastore string
}

func (s *Sim) placement(ctx context.Context, p Placement) (*object.Folder, *object.ResourcePool, string, error) {
	f := find.NewFinder(s.client, false)
	dcPath := p.Datacenter
	if dcPath == "" {
		dcPath = "*"
	}
	dcs, err := f.DatacenterList(ctx, dcPath)
	if err != nil {
		return nil, nil, "", err
	}
	dc := dcs[0]
	f.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	cl := p.Cluster
	if cl == "" {
		cl = "*"
	}
	ccrs, err := f.ClusterComputeResourceList(ctx, cl)
	if err != nil {
		return nil, nil, "", err
	}
	pool, err := ccrs[0].ResourcePool(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	ds := p.Datastore
	if ds == "" {
		ds = "LocalDS_0"
	}
	return folders.VmFolder, pool, ds, nil
}

// CreateVMs creates n powered-on VMs named prefix-0001... in parallel (the
// simulator is slow serially), with guest info g (nil: as the simulator
// makes them). It returns their references in name order.
func (s *Sim) CreateVMs(ctx context.Context, n int, prefix string, p Placement, g *GuestState) ([]types.ManagedObjectReference, error) {
	folder, pool, ds, err := s.placement(ctx, p)
	if err != nil {
		return nil, err
	}
	refs := make([]types.ManagedObjectReference, n)
	errc := make(chan error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(n, 32) {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("%s-%04d", prefix, i+1)
				ref, err := s.createVM(ctx, folder, pool, ds, name, true)
				if err == nil && g != nil {
					gs := *g
					if gs.Hostname == "" {
						gs.Hostname = name
					}
					err = s.SetGuest(ref, gs)
				}
				if err != nil {
					errc <- fmt.Errorf("%s: %w", name, err)
					continue
				}
				refs[i] = ref
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return refs, nil
}

func (s *Sim) wait(task *object.Task) error {
	t, ok := s.Map().Get(task.Reference()).(*simulator.Task)
	if !ok {
		return fmt.Errorf("vspheresim: no task %s", task.Reference())
	}
	t.Wait()
	var err error
	s.Context().WithLock(t, func() {
		if t.Info.Error != nil {
			err = fmt.Errorf("vspheresim: task %s: %s", t.Info.DescriptionId, t.Info.Error.LocalizedMessage)
		}
	})
	return err
}

func (s *Sim) createVM(ctx context.Context, folder *object.Folder, pool *object.ResourcePool, ds, name string, on bool) (types.ManagedObjectReference, error) {
	spec := types.VirtualMachineConfigSpec{
		Name: name, GuestId: string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest),
		NumCPUs: 1, MemoryMB: 512,
		Files: &types.VirtualMachineFileInfo{VmPathName: "[" + ds + "]"},
	}
	task, err := folder.CreateVM(ctx, spec, pool, nil)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	if err := s.wait(task); err != nil {
		return types.ManagedObjectReference{}, err
	}
	var ref types.ManagedObjectReference
	t := s.Map().Get(task.Reference()).(*simulator.Task)
	s.Context().WithLock(t, func() { ref = t.Info.Result.(types.ManagedObjectReference) })
	if on {
		task, err := object.NewVirtualMachine(s.client, ref).PowerOn(ctx)
		if err != nil {
			return ref, err
		}
		if err := s.wait(task); err != nil {
			return ref, err
		}
	}
	return ref, nil
}

// CreateTemplate creates a VM and marks it as a template, with guest info
// g (tools installed) and the given guest OS.
func (s *Sim) CreateTemplate(ctx context.Context, name string, p Placement, g *GuestState) (types.ManagedObjectReference, error) {
	folder, pool, ds, err := s.placement(ctx, p)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	ref, err := s.createVM(ctx, folder, pool, ds, name, false)
	if err != nil {
		return ref, err
	}
	if g != nil {
		if err := s.SetGuest(ref, *g); err != nil {
			return ref, err
		}
	}
	return ref, object.NewVirtualMachine(s.client, ref).MarkAsTemplate(ctx)
}

// CreateCustomizationSpec stores a Linux customization spec named name
// that takes the host name from the VM name and uses DHCP.
func (s *Sim) CreateCustomizationSpec(ctx context.Context, name string) error {
	m := object.NewCustomizationSpecManager(s.client)
	return m.CreateCustomizationSpec(ctx, types.CustomizationSpecItem{
		Info: types.CustomizationSpecInfo{Name: name, Type: "Linux"},
		Spec: types.CustomizationSpec{
			Identity:         &types.CustomizationLinuxPrep{HostName: &types.CustomizationVirtualMachineName{}, Domain: "example.internal"},
			GlobalIPSettings: types.CustomizationGlobalIPSettings{},
			NicSettingMap:    []types.CustomizationAdapterMapping{{Adapter: types.CustomizationIPSettings{Ip: &types.CustomizationDhcpIpGenerator{}}}},
		},
	})
}

// VMByUUID finds a VM by its instance UUID.
func (s *Sim) VMByUUID(ctx context.Context, uuid string) (*object.VirtualMachine, error) {
	yes := true
	ref, err := object.NewSearchIndex(s.client).FindByUuid(ctx, nil, uuid, true, &yes)
	if err != nil {
		return nil, err
	}
	if ref == nil {
		return nil, fmt.Errorf("vspheresim: no VM with instance UUID %s", uuid)
	}
	return object.NewVirtualMachine(s.client, ref.Reference()), nil
}

// Rename renames a VM behind the driver's back.
func (s *Sim) Rename(ctx context.Context, uuid, name string) error {
	vm, err := s.VMByUUID(ctx, uuid)
	if err != nil {
		return err
	}
	task, err := vm.Rename(ctx, name)
	if err != nil {
		return err
	}
	return s.wait(task)
}

// Delete powers a VM off and destroys it behind the driver's back.
func (s *Sim) Delete(ctx context.Context, uuid string) error {
	vm, err := s.VMByUUID(ctx, uuid)
	if err != nil {
		return err
	}
	var mvm mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"runtime.powerState"}, &mvm); err != nil {
		return err
	}
	if mvm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
		task, err := vm.PowerOff(ctx)
		if err != nil {
			return err
		}
		if err := s.wait(task); err != nil {
			return err
		}
	}
	task, err := vm.Destroy(ctx)
	if err != nil {
		return err
	}
	return s.wait(task)
}

// UUID returns a VM's instance UUID.
func (s *Sim) UUID(ref types.ManagedObjectReference) string {
	vm, ok := s.Map().Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return ""
	}
	var id string
	s.Context().WithLock(vm, func() { id = vm.Config.InstanceUuid })
	return id
}

// CreateNamedVMs creates powered-on VMs with the given names, in parallel,
// each with the guest info guest(name) returns (nil: none set).
func (s *Sim) CreateNamedVMs(ctx context.Context, names []string, p Placement, guest func(name string) *GuestState) ([]types.ManagedObjectReference, error) {
	folder, pool, ds, err := s.placement(ctx, p)
	if err != nil {
		return nil, err
	}
	refs := make([]types.ManagedObjectReference, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			ref, err := s.createVM(ctx, folder, pool, ds, name, true)
			if err == nil && guest != nil {
				if g := guest(name); g != nil {
					err = s.SetGuest(ref, *g)
				}
			}
			refs[i], errs[i] = ref, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names[i], err)
		}
	}
	return refs, nil
}
