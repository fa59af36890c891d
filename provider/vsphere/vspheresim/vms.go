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

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// GuestState is what the guest tools report; the stock simulator's VMs
// have tools not running and no IP.
type GuestState struct {
	// ToolsRunning is whether VMware Tools run in the guest (guest
	// operations need them).
	ToolsRunning bool
	// ToolsStatus is guest.toolsVersionStatus2 ("guestToolsCurrent" when
	// empty and ToolsRunning).
	ToolsStatus string
	// IP is guest.ipAddress, Hostname guest.hostName (CreateVMs defaults
	// it to the VM's name).
	IP       string
	Hostname string
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
		return errs.Errorf(errs.NotFound, "vspheresim.SetGuest", "no VM %s", ref)
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
	// Datacenter and Cluster are inventory names ("DC0", "DC0_C0"),
	// Datastore a datastore name ("LocalDS_0").
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
func (s *Sim) CreateVMs(ctx context.Context, n int, prefix string, p Placement, g *GuestState) (_ []types.ManagedObjectReference, err error) {
	defer func() { err = simErr("vspheresim.CreateVMs", err) }()
	if n < 0 {
		return nil, errs.New(errs.InvalidArgument, "", "a negative number of VMs")
	}
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
					errc <- errs.Errorf(errs.CodeOf(simErr("", err)), "", "%s: %w", limit.Quote(name), err)
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
		return errs.Errorf(errs.NotFound, "", "no task %s", task.Reference())
	}
	t.Wait()
	var err error
	s.Context().WithLock(t, func() {
		if t.Info.Error != nil {
			err = errs.Errorf(faultCode(t.Info.Error.Fault), "", "task %s: %s", t.Info.DescriptionId, t.Info.Error.LocalizedMessage)
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
func (s *Sim) CreateTemplate(ctx context.Context, name string, p Placement, g *GuestState) (_ types.ManagedObjectReference, err error) {
	defer func() { err = simErr("vspheresim.CreateTemplate", err) }()
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
	return simErr("vspheresim.CreateCustomizationSpec", m.CreateCustomizationSpec(ctx, types.CustomizationSpecItem{
		Info: types.CustomizationSpecInfo{Name: name, Type: "Linux"},
		Spec: types.CustomizationSpec{
			Identity:         &types.CustomizationLinuxPrep{HostName: &types.CustomizationVirtualMachineName{}, Domain: "example.internal"},
			GlobalIPSettings: types.CustomizationGlobalIPSettings{},
			NicSettingMap:    []types.CustomizationAdapterMapping{{Adapter: types.CustomizationIPSettings{Ip: &types.CustomizationDhcpIpGenerator{}}}},
		},
	}))
}

// VMByUUID finds a VM by its instance UUID.
func (s *Sim) VMByUUID(ctx context.Context, uuid string) (*object.VirtualMachine, error) {
	vm, err := s.vmByUUID(ctx, uuid)
	return vm, simErr("vspheresim.VMByUUID", err)
}

func (s *Sim) vmByUUID(ctx context.Context, uuid string) (*object.VirtualMachine, error) {
	yes := true
	ref, err := object.NewSearchIndex(s.client).FindByUuid(ctx, nil, uuid, true, &yes)
	if err != nil {
		return nil, err
	}
	if ref == nil {
		return nil, errs.Errorf(errs.NotFound, "", "no VM with instance UUID %s", limit.Quote(uuid))
	}
	return object.NewVirtualMachine(s.client, ref.Reference()), nil
}

// Rename renames a VM behind the driver's back.
func (s *Sim) Rename(ctx context.Context, uuid, name string) (err error) {
	defer func() { err = simErr("vspheresim.Rename", err) }()
	vm, err := s.vmByUUID(ctx, uuid)
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
func (s *Sim) Delete(ctx context.Context, uuid string) (err error) {
	defer func() { err = simErr("vspheresim.Delete", err) }()
	vm, err := s.vmByUUID(ctx, uuid)
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
func (s *Sim) CreateNamedVMs(ctx context.Context, names []string, p Placement, guest func(name string) *GuestState) (_ []types.ManagedObjectReference, err error) {
	defer func() { err = simErr("vspheresim.CreateNamedVMs", err) }()
	folder, pool, ds, err := s.placement(ctx, p)
	if err != nil {
		return nil, err
	}
	refs := make([]types.ManagedObjectReference, len(names))
	failed := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			ref, err := s.createVM(ctx, folder, pool, ds, name, true)
			if err == nil && guest != nil {
				if g := guest(name); g != nil {
					err = s.SetGuest(ref, *g)
				}
			}
			refs[i], failed[i] = ref, err
		})
	}
	wg.Wait()
	for i, err := range failed {
		if err != nil {
			return nil, errs.Errorf(errs.CodeOf(simErr("", err)), "", "%s: %w", limit.Quote(names[i]), err)
		}
	}
	return refs, nil
}

// PowerOn powers the VM with instance UUID uuid on behind the driver's
// back (a Changed event for a driver's Watch). A VM already on is
// FailedPrecondition, an unknown one NotFound.
func (s *Sim) PowerOn(ctx context.Context, uuid string) (err error) {
	defer func() { err = simErr("vspheresim.PowerOn", err) }()
	vm, err := s.vmByUUID(ctx, uuid)
	if err != nil {
		return err
	}
	task, err := vm.PowerOn(ctx)
	if err != nil {
		return err
	}
	return s.wait(task)
}

// PowerOff powers the VM with instance UUID uuid off behind the driver's
// back (a Changed event for a driver's Watch). A VM already off is
// FailedPrecondition, an unknown one NotFound.
func (s *Sim) PowerOff(ctx context.Context, uuid string) (err error) {
	defer func() { err = simErr("vspheresim.PowerOff", err) }()
	vm, err := s.vmByUUID(ctx, uuid)
	if err != nil {
		return err
	}
	task, err := vm.PowerOff(ctx)
	if err != nil {
		return err
	}
	return s.wait(task)
}

// SetIP changes the IP address VMware Tools report for the VM with
// instance UUID uuid (guest.ipAddress and summary.guest.ipAddress; "" for
// none), as when the guest's DHCP lease changes: a Changed event for a
// driver's Watch. The rest of the guest info stays.
func (s *Sim) SetIP(ctx context.Context, uuid, ip string) error {
	return s.updateVM(ctx, "vspheresim.SetIP", uuid, []types.PropertyChange{
		{Name: "guest.ipAddress", Val: ip},
		{Name: "summary.guest.ipAddress", Val: ip},
	})
}

// SetToolsRunning starts or stops VMware Tools in the guest of the VM
// with instance UUID uuid, as far as vCenter can tell
// (guest.toolsRunningStatus and guest.toolsStatus, and their
// summary.guest copies): stopped, guest operations on it fail and the
// driver reports the tools not running. The rest of the guest info stays.
func (s *Sim) SetToolsRunning(ctx context.Context, uuid string, running bool) error {
	rs, st := types.VirtualMachineToolsRunningStatusGuestToolsNotRunning, types.VirtualMachineToolsStatusToolsNotRunning
	if running {
		rs, st = types.VirtualMachineToolsRunningStatusGuestToolsRunning, types.VirtualMachineToolsStatusToolsOk
	}
	return s.updateVM(ctx, "vspheresim.SetToolsRunning", uuid, []types.PropertyChange{
		{Name: "guest.toolsRunningStatus", Val: string(rs)},
		{Name: "guest.toolsStatus", Val: st},
		{Name: "summary.guest.toolsRunningStatus", Val: string(rs)},
		{Name: "summary.guest.toolsStatus", Val: st},
	})
}

// updateVM applies property changes to a VM in-process, as vCenter would
// when the guest reports them.
func (s *Sim) updateVM(ctx context.Context, op, uuid string, changes []types.PropertyChange) error {
	obj, err := s.vmByUUID(ctx, uuid)
	if err != nil {
		return simErr(op, err)
	}
	vm, ok := s.Map().Get(obj.Reference()).(*simulator.VirtualMachine)
	if !ok {
		return errs.Errorf(errs.NotFound, op, "no VM with instance UUID %s", limit.Quote(uuid))
	}
	sctx := s.Context()
	sctx.WithLock(vm, func() { sctx.Update(vm, changes) })
	return nil
}
