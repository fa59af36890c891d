package vsphere_test

import (
	"context"
	"testing"
	"time"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/providertest"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

const (
	guestUser = "root"
	guestPass = "guest-Pa55"
)

type world struct {
	sim      *vspheresim.Sim
	pp       *provider.Provider // what hosts hold
	p        *vsphere.Provider  // the driver behind pp
	guestVM  string
	template string
}

// newWorld starts a simulated vCenter with two datacenters (zones DC0 and
// DC1), a template in DC0, a running VM with tools and an IP, guest
// operations and computed privileges, and a driver connected to it.
func newWorld(t testing.TB, opts *vsphere.Options) *world {
	t.Helper()
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{
		Datacenters: 2, ModelVMs: 1, Privileges: true,
		GuestAccounts: map[string]string{guestUser: guestPass},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.CreateTemplate(ctx, "debian-12", vspheresim.Placement{Datacenter: "DC0"}, &vspheresim.GuestState{
		ToolsStatus: "guestToolsCurrent", Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)",
	}); err != nil {
		t.Fatal(err)
	}
	if err := sim.CreateCustomizationSpec(ctx, "debian-12"); err != nil {
		t.Fatal(err)
	}
	refs, err := sim.CreateVMs(ctx, 1, "guest", vspheresim.Placement{Datacenter: "DC0"}, &vspheresim.GuestState{
		ToolsRunning: true, IP: "192.0.2.10", Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)",
	})
	if err != nil {
		t.Fatal(err)
	}
	o := vsphere.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Thumbprint == "" && o.RootCAs == nil && !o.Insecure {
		o.RootCAs = sim.CAs
	}
	if o.GuestPollInterval == 0 {
		o.GuestPollInterval = 20 * time.Millisecond
	}
	pp, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pp.Close() })
	return &world{sim: sim, pp: pp, p: driverOf(t, pp), guestVM: sim.UUID(refs[0]), template: "debian-12"}
}

// driverOf returns the driver behind p.
func driverOf(t testing.TB, p *provider.Provider) *vsphere.Provider {
	t.Helper()
	var d *vsphere.Provider
	if !p.As(&d) {
		t.Fatal("As(**vsphere.Provider) found no driver")
	}
	return d
}

// newDriver connects another driver instance to sim.
func newDriver(t testing.TB, sim *vspheresim.Sim) *provider.Provider {
	t.Helper()
	p, err := vsphere.New(context.Background(), sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{RootCAs: sim.CAs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestConformance(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	providertest.Run(t, providertest.HarnessFunc(func(t *testing.T) (provider.Driver, providertest.Fixture) {
		return w.p, providertest.Fixture{
			Zone: "DC0", OtherZone: "DC1", Template: w.template,
			Network:          provider.Network{Name: "DC0_DVPG0"},
			GuestVM:          w.guestVM,
			GuestCredentials: guest.Password(guestUser, guestPass),
			OutOfBandRename:  w.sim.Rename,
			OutOfBandDelete:  w.sim.Delete,
			Parallelism:      16,
			Timeout:          time.Minute,
		}
	}))
}

func vcsimNoTools() vspheresim.GuestState { return vspheresim.GuestState{ToolsRunning: false} }
