// Package notifytest builds a real orchestrator over the in-memory drivers
// for the notify observers' tests and benchmarks.
package notifytest

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strconv"

	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

// The world's names.
const (
	Provider = "vc1"
	Zone     = "az1"
	Pool     = "pub"
	// Profile is a named service profile besides the default one.
	Profile = "gold"
	// User is the guest account of every VM.
	User = "admin"
)

// World is an orchestrator over in-memory drivers with N powered-on
// Debian VMs whose guest account User has the password given to New.
type World struct {
	O   *enroll.Orchestrator
	HV  *memprovider.Provider
	IDs []string
}

// TB is the part of testing.TB the world needs.
type TB interface {
	Helper()
	Fatal(...any)
}

// New builds the world; observer receives the orchestrator's events.
func New(t TB, n int, password string, observer enroll.Observer) *World {
	t.Helper()
	ctx := context.Background()
	hv := memprovider.New(&memprovider.Options{HistorySize: 16})
	if err := hv.AddZone(provider.Zone{Name: Zone}); err != nil {
		t.Fatal(err)
	}
	w := &World{HV: hv}
	for i := 0; i < n; i++ {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		vm, err := hv.AddVM(provider.VM{Name: "vm" + strconv.Itoa(i), Zone: Zone, Power: provider.PoweredOn,
			Guest: provider.GuestInfo{Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)", OSVersion: "12", IPs: []netip.Addr{ip}, ToolsRunning: true}})
		if err != nil {
			t.Fatal(err)
		}
		if err := hv.SetGuestAccount(vm.ID, User, password); err != nil {
			t.Fatal(err)
		}
		w.IDs = append(w.IDs, vm.ID)
	}
	addrs := memipam.New(nil)
	if err := addrs.CreatePool(ctx, ipam.Pool{Name: Pool, Prefix: netip.MustParsePrefix("100.64.0.0/10")}); err != nil {
		t.Fatal(err)
	}
	policy := enroll.Policy{Pool: Pool, ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Requirements: map[guest.OSFamily]guest.Requirements{guest.Linux: {Distributions: map[string]string{"debian": "11"}}}}
	o, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{Provider: hv.Provider()},
		IPAM:      addrs, Firewall: memfw.New(nil), CMDB: memcmdb.New(nil), Store: enroll.NewMemoryStore(nil),
		Policy: policy, Profiles: map[string]enroll.Policy{Profile: policy},
		Configurator: guest.ConfiguratorFunc(func(context.Context, guest.Target, *guest.Executor) error { return nil }),
	}, &enroll.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: observer})
	if err != nil {
		t.Fatal(err)
	}
	w.O = o
	return w
}

// Request is the enrollment of VM i with the given password and profile.
func (w *World) Request(i int, password, profile string) enroll.Request {
	return enroll.Request{Provider: Provider, VMID: w.IDs[i], Profile: profile, Credentials: guest.Password(User, password)}
}
