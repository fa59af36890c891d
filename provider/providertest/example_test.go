package providertest_test

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
	"github.com/managedvm/managedvm/provider/providertest"
)

// A driver's test builds its world in the harness and hands the suite a
// fixture. (The suite needs a *testing.T, so this example only compiles:
// put the body in a TestConformance function.)
func Example() {
	harness := providertest.HarnessFunc(func(t *testing.T) (provider.Driver, providertest.Fixture) {
		p := memprovider.New(nil)
		if err := p.AddZone(provider.Zone{Name: "zone-a", Networks: []string{"vlan-100"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.AddTemplate(provider.Template{Zone: "zone-a", Name: "debian-12", Family: guest.Linux, ToolsInstalled: true}); err != nil {
			t.Fatal(err)
		}
		vm, err := p.AddVM(provider.VM{Name: "guest", Zone: "zone-a", Power: provider.PoweredOn,
			Guest: provider.GuestInfo{Family: guest.Linux, ToolsRunning: true}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SetGuestAccount(vm.ID, "admin", "pw"); err != nil {
			t.Fatal(err)
		}
		return p, providertest.Fixture{
			Zone: "zone-a", Template: "debian-12", Network: provider.Network{Name: "vlan-100"},
			GuestVM: vm.ID, GuestCredentials: guest.Password("admin", "pw"),
			OutOfBandDelete: func(_ context.Context, id string) error { return p.RemoveVM(id) },
		}
	})
	var t *testing.T // in a test: func TestConformance(t *testing.T)
	if t != nil {
		providertest.Run(t, harness)
	}
}
