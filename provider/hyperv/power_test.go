package hyperv

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
)

func TestPower(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	id := addVM(t, s, hypervsim.VM{Name: "p", Owner: "HV2", State: "Saved"})
	d := driverFor(t, s, "az1")
	power := func(want provider.PowerState) {
		t.Helper()
		vm, err := d.Get(ctx, id)
		if err != nil || vm.Power != want {
			t.Fatalf("power %v %v, want %v", vm.Power, err, want)
		}
	}
	if err := d.PowerOff(ctx, id); err != nil {
		t.Fatal(err)
	}
	power(provider.PoweredOff)
	for range 2 { // the second is a no-op
		if err := d.PowerOn(ctx, id); err != nil {
			t.Fatal(err)
		}
		power(provider.PoweredOn)
	}
	if err := d.PowerOff(ctx, id); err != nil {
		t.Fatal(err)
	}
	power(provider.PoweredOff)
	testkit.WantCode(t, "PowerOn of no VM", d.PowerOn(ctx, "00000000-0000-4000-8000-000000000000"), errs.NotFound)
	testkit.WantCode(t, "PowerOn of a non-GUID", d.PowerOn(ctx, "p"), errs.NotFound)
}

// The VM moves between the driver finding it and the power template: it
// is found again and powered on its new node.
func TestPowerFollowsAMove(t *testing.T) {
	t.Parallel()
	var s *hypervsim.Sim
	var id string
	moved := false
	s = newClusterOpts(t, hypervsim.Options{BeforeAnswer: func(node, template string) {
		if template == "power/1" && !moved {
			moved = true
			_ = s.Move(id, "HV3")
		}
	}})
	id = addVM(t, s, hypervsim.VM{Name: "m", Owner: "HV1"})
	d := driverFor(t, s, "az1")
	if err := d.PowerOn(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	vm := s.VMs()[0]
	if vm.State != "Running" || vm.Owner != "HV3" || s.ScriptRunsOn("HV1", "power/1") != 1 || s.ScriptRunsOn("HV3", "power/1") != 1 {
		t.Fatalf("VM %+v; power/1 on HV1 %d, HV3 %d", vm, s.ScriptRunsOn("HV1", "power/1"), s.ScriptRunsOn("HV3", "power/1"))
	}
}
