package vsphere_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

func countNamed(t *testing.T, p *provider.Provider, name string) int {
	t.Helper()
	vms, err := p.List(context.Background(), &provider.ListOptions{IncludeTemplates: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, vm := range vms {
		if vm.Name == name {
			n++
		}
	}
	return n
}

// TestProvisionCustomizationSpec: the spec named like the template is
// applied (the simulator sets the guest host name from it at power on) and
// the NIC is on the distributed port group.
func TestProvisionCustomizationSpec(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	ctx := context.Background()
	vm, err := w.pp.Provision(ctx, provider.ProvisionSpec{
		Key: "k-spec", Name: "web-42", Template: "debian-12", Zone: "DC0",
		Network: provider.Network{Name: "DC0_DVPG0"}, PowerOn: true,
		Customization: &provider.Customization{UseTemplateSpec: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.pp.Get(ctx, vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The simulator derives the name as "<vm name>-<n>".
	if !strings.HasPrefix(got.Guest.Hostname, "web-42") {
		t.Errorf("guest host name %q, want the VM name (the spec uses the VM name)", got.Guest.Hostname)
	}
	ref, err := w.sim.VMByUUID(ctx, vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	var m mo.VirtualMachine
	if err := ref.Properties(ctx, ref.Reference(), []string{"config.hardware.device"}, &m); err != nil {
		t.Fatal(err)
	}
	onDVPG := false
	for _, d := range m.Config.Hardware.Device {
		if nic, ok := d.(types.BaseVirtualEthernetCard); ok {
			_, onDVPG = nic.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
		}
	}
	if !onDVPG {
		t.Error("the clone has no NIC on the distributed port group")
	}
}

// TestProvisionFailureLeavesNoOrphan: a clone whose customization fails
// after the VM was created (one NIC setting, no NIC) is destroyed.
func TestProvisionFailureLeavesNoOrphan(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	ctx := context.Background()
	_, err := w.pp.Provision(ctx, provider.ProvisionSpec{
		Key: "k-orphan", Name: "orphan-1", Template: "debian-12", Zone: "DC0",
		Customization: &provider.Customization{Static: &provider.StaticIP{
			Address: netip.MustParsePrefix("192.0.2.50/24"), Gateway: netip.MustParseAddr("192.0.2.1"),
		}},
	})
	if err == nil {
		t.Fatal("Provision with a NIC setting and no NIC succeeded")
	}
	if f, ok := vsphere.FaultOf(err); !ok {
		t.Errorf("FaultOf(%v): no vSphere fault", err)
	} else if _, ok := f.(*types.NicSettingMismatch); !ok {
		t.Errorf("FaultOf: %T, want *types.NicSettingMismatch", f)
	}
	if n := countNamed(t, w.pp, "orphan-1"); n != 0 {
		t.Fatalf("a failed Provision left %d VMs named orphan-1", n)
	}
	// The key is free: a good request with it works.
	vm, err := w.pp.Provision(ctx, provider.ProvisionSpec{Key: "k-orphan", Name: "orphan-1", Template: "debian-12", Zone: "DC0"})
	if err != nil {
		t.Fatal(err)
	}
	if vm.Name != "orphan-1" {
		t.Fatalf("got %+v", vm)
	}
	// A template cannot be powered on: FailedPrecondition, with the vendor
	// fault reachable.
	if err := w.pp.PowerOn(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pp.Get(ctx, "no-such-id"); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("Get(unknown): %v", err)
	}
}

// hasTask reports whether the simulator has a task of the given
// description ID ("VirtualMachine.cloneVm"), running or ended.
func hasTask(sim *vspheresim.Sim, descriptionID string) bool {
	for _, obj := range sim.Map().AllReference("Task") {
		t, ok := obj.(*simulator.Task)
		if !ok {
			continue
		}
		found := false
		sim.Context().WithLock(t, func() { found = t.Info.DescriptionId == descriptionID })
		if found {
			return true
		}
	}
	return false
}

// holdOnCall holds the simulator's lock on the object at path from the
// moment method is called until d has passed, and counts the calls of
// "CancelTask".
func holdOnCall(t *testing.T, w *world, method, path string, d time.Duration) (cancels *atomic.Int64) {
	t.Helper()
	obj, err := find.NewFinder(w.sim.Client()).ManagedObjectList(context.Background(), path)
	if err != nil || len(obj) != 1 {
		t.Fatalf("%s: %v, %v", path, obj, err)
	}
	ref := obj[0].Object.Reference()
	var once sync.Once
	w.sim.OnCall(method, func() {
		once.Do(func() {
			release, err := w.sim.HoldLock(ref)
			if err != nil {
				t.Error(err)
				return
			}
			time.AfterFunc(d, release)
		})
	})
	cancels = new(atomic.Int64)
	w.sim.OnCall("CancelTask", func() { cancels.Add(1) })
	t.Cleanup(func() { w.sim.OnCall(method, nil); w.sim.OnCall("CancelTask", nil) })
	return cancels
}

// TestProvisionTimeoutLeavesNoOrphan: the clone task outlives the
// provisioning timeout (its cluster is busy). Provision cancels it; the
// task is past the point where it can stop and ends in success anyway, so
// Provision destroys the VM it made before returning DeadlineExceeded.
func TestProvisionTimeoutLeavesNoOrphan(t *testing.T) {
	t.Parallel() // mostly waiting for the held cluster
	w := newWorld(t, nil)
	ctx := context.Background()
	// The timeout leaves room for the calls before the clone on a loaded
	// machine (under -race a 400 ms one once ran out before the clone
	// started); the hold outlasts it.
	const hold = 3 * time.Second
	cancels := holdOnCall(t, w, "CloneVM_Task", "/DC0/host/DC0_C0/Resources", hold)
	start := time.Now()
	_, err := w.pp.Provision(ctx, provider.ProvisionSpec{
		Key: "k-slow", Name: "slow-1", Template: "debian-12", Zone: "DC0", Timeout: 1500 * time.Millisecond,
	})
	if errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Fatalf("Provision past its timeout: %v, want DeadlineExceeded", err)
	}
	if cancels.Load() == 0 {
		t.Error("the clone task was not canceled")
	}
	if time.Since(start) < hold {
		t.Error("Provision returned before the canceled task ended")
	}
	w.sim.WaitTasks()
	if n := countNamed(t, w.pp, "slow-1"); n != 0 {
		t.Fatalf("a timed-out Provision left %d VMs named slow-1", n)
	}
	// The key and the name are free again.
	if _, err := w.pp.Provision(ctx, provider.ProvisionSpec{Key: "k-slow", Name: "slow-1", Template: "debian-12", Zone: "DC0"}); err != nil {
		t.Fatal(err)
	}
}

// TestProvisionCloneRequestTimeout: the clone request itself outlives the
// timeout (the template is busy), so whether vCenter started the clone is
// unknown: Provision says OutcomeUnknown, and a repeated Provision with the
// same key returns the VM the request made, once: no orphan, no duplicate.
func TestProvisionCloneRequestTimeout(t *testing.T) {
	t.Parallel() // mostly waiting for the held template
	w := newWorld(t, nil)
	ctx := context.Background()
	// As above: room for the calls before the clone request, and a hold
	// that outlasts the timeout.
	holdOnCall(t, w, "CloneVM_Task", "/DC0/vm/debian-12", 2500*time.Millisecond)
	spec := provider.ProvisionSpec{Key: "k-req", Name: "req-1", Template: "debian-12", Zone: "DC0", Timeout: 1200 * time.Millisecond}
	_, err := w.pp.Provision(ctx, spec)
	if errs.CodeOf(err) != errs.OutcomeUnknown {
		t.Fatalf("Provision whose clone request timed out: %v, want OutcomeUnknown", err)
	}
	w.sim.OnCall("CloneVM_Task", nil)
	// The request is served once the template is free: wait for its task
	// to exist, then to end.
	for deadline := time.Now().Add(30 * time.Second); !hasTask(w.sim, "VirtualMachine.cloneVm"); {
		if time.Now().After(deadline) {
			t.Fatal("the held clone request started no task within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.sim.WaitTasks()
	spec.Timeout = 0
	vm, err := w.pp.Provision(ctx, spec)
	if err != nil {
		t.Fatalf("Provision again with the same key: %v", err)
	}
	if vm.Name != "req-1" {
		t.Fatalf("got %+v", vm)
	}
	if n := countNamed(t, w.pp, "req-1"); n != 1 {
		t.Fatalf("%d VMs named req-1, want 1", n)
	}
}
