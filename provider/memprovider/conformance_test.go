package memprovider_test

import (
	"context"
	"testing"
	"time"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
	"github.com/managedvm/managedvm/provider/providertest"
)

// world builds the provider the conformance suite and several tests use:
// zone-a (with a network and a Linux template that has tools) and zone-b
// (with a Windows template), and a running Linux VM with a guest account.
func world(t testing.TB, opts *memprovider.Options) (*memprovider.Provider, providertest.Fixture) {
	t.Helper()
	p := memprovider.New(opts)
	must(t, p.AddZone(provider.Zone{Name: "zone-a", Clusters: []string{"c1"}, Networks: []string{"vlan-100", "vlan-200"}}))
	must(t, p.AddZone(provider.Zone{Name: "zone-b", Networks: []string{"vlan-300"}}))
	_, err := p.AddTemplate(provider.Template{Zone: "zone-a", Name: "debian-12", Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)", ToolsInstalled: true})
	must(t, err)
	_, err = p.AddTemplate(provider.Template{Zone: "zone-b", Name: "win-2022", Family: guest.Windows, OSName: "Microsoft Windows Server 2022 Datacenter", ToolsInstalled: true})
	must(t, err)
	vm, err := p.AddVM(provider.VM{
		Name: "guest-vm", Zone: "zone-a", Power: provider.PoweredOn,
		Guest: provider.GuestInfo{Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)", ToolsRunning: true},
	})
	must(t, err)
	must(t, p.SetGuestAccount(vm.ID, "admin", "correct horse"))
	return p, providertest.Fixture{
		Zone:             "zone-a",
		Template:         "debian-12",
		OtherZone:        "zone-b",
		Network:          provider.Network{Name: "vlan-100", VLAN: 100},
		GuestVM:          vm.ID,
		GuestCredentials: guest.Password("admin", "correct horse"),
		Timeout:          20 * time.Second,
		OutOfBandRename: func(_ context.Context, id, name string) error {
			_, err := p.UpdateVM(id, func(vm *provider.VM) { vm.Name = name })
			return err
		},
		OutOfBandDelete: func(_ context.Context, id string) error { return p.RemoveVM(id) },
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.HarnessFunc(func(t *testing.T) (provider.Driver, providertest.Fixture) {
		return world(t, nil)
	}))
}

// A tiny history must not break the suite's own use of Watch.
func TestConformanceSmallHistory(t *testing.T) {
	providertest.Run(t, providertest.HarnessFunc(func(t *testing.T) (provider.Driver, providertest.Fixture) {
		return world(t, &memprovider.Options{HistorySize: 64})
	}))
}

// guestAccess is p's guest access, through its portable value.
func guestAccess(p *memprovider.Provider) *provider.GuestAccess {
	ga, ok := p.Provider().GuestAccess()
	if !ok {
		panic("memprovider has no guest access")
	}
	return ga
}
