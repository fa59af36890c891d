package vsphere_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere"
)

func countNamed(t *testing.T, p provider.Inventory, name string) int {
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
	w := newWorld(t, nil)
	ctx := context.Background()
	vm, err := w.p.Provision(ctx, provider.ProvisionSpec{
		Key: "k-spec", Name: "web-42", Template: "debian-12", Zone: "DC0",
		Network: provider.Network{Name: "DC0_DVPG0"}, PowerOn: true,
		Customization: &provider.Customization{UseTemplateSpec: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.p.Get(ctx, vm.ID)
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
	w := newWorld(t, nil)
	ctx := context.Background()
	_, err := w.p.Provision(ctx, provider.ProvisionSpec{
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
	if n := countNamed(t, w.p, "orphan-1"); n != 0 {
		t.Fatalf("a failed Provision left %d VMs named orphan-1", n)
	}
	// The key is free: a good request with it works.
	vm, err := w.p.Provision(ctx, provider.ProvisionSpec{Key: "k-orphan", Name: "orphan-1", Template: "debian-12", Zone: "DC0"})
	if err != nil {
		t.Fatal(err)
	}
	if vm.Name != "orphan-1" {
		t.Fatalf("got %+v", vm)
	}
	// A template cannot be powered on: FailedPrecondition, with the vendor
	// fault reachable.
	if err := w.p.PowerOn(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.p.Get(ctx, "no-such-id"); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("Get(unknown): %v", err)
	}
}
