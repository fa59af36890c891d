package enroll_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

// exampleSetup builds a provider with one running Linux VM (password
// "s3cret" for root) and an orchestrator over in-memory drivers.
func exampleSetup(opts *enroll.Options) (*enroll.Orchestrator, *memprovider.Provider, *cmdb.CMDB, string) {
	ctx := context.Background()
	hv := memprovider.New(nil)
	_ = hv.AddZone(provider.Zone{Name: "az1"})
	vm, _ := hv.AddVM(provider.VM{
		Name: "web-01", Zone: "az1", Power: provider.PoweredOn,
		Guest: provider.GuestInfo{Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)",
			IPs: []netip.Addr{netip.MustParseAddr("192.168.10.11")}, ToolsRunning: true},
	})
	_ = hv.SetGuestAccount(vm.ID, "root", "s3cret")
	addrs := memipam.New(nil)
	_ = addrs.CreatePool(ctx, ipam.Pool{Name: "public", Prefix: netip.MustParsePrefix("203.0.113.0/28"), Gateway: netip.MustParseAddr("203.0.113.1")})
	db := memcmdb.New(nil)
	o, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{"vc1": hv.Provider()},
		IPAM:      addrs,
		Firewall:  memfw.New(nil),
		CMDB:      db,
		Store:     enroll.NewMemoryStore(nil),
		Policy: enroll.Policy{
			Pool:              "public",
			ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		},
	}, opts)
	if err != nil {
		panic(err)
	}
	return o, hv, db, vm.ID
}

func ExampleOrchestrator_Enroll() {
	o, _, _, vmID := exampleSetup(nil)
	res, err := o.Enroll(context.Background(), enroll.Request{
		Key:         "ticket-1",
		Provider:    "vc1",
		VMID:        vmID,
		Credentials: guest.Password("root", "s3cret"),
	})
	if err != nil {
		fmt.Println("enrollment failed:", err)
		return
	}
	fmt.Println(res.State, res.PublicIP, "->", res.LocalIP, res.Ports)
	// Output: enrolled 203.0.113.2 -> 192.168.10.11 [tcp/22]
}

func ExampleOrchestrator_Enroll_wrongPassword() {
	o, _, db, vmID := exampleSetup(nil)
	res, err := o.Enroll(context.Background(), enroll.Request{
		Provider: "vc1", VMID: vmID, Credentials: guest.Password("root", "guess"),
	})
	fmt.Println(errs.CodeOf(err), "at step", res.FailedStep)
	rec, _ := db.Get(context.Background(), res.VM)
	fmt.Println("record:", rec.State, "public IP held:", rec.PublicIP.IsValid())
	// Output:
	// Unauthenticated at step credentials
	// record: failed public IP held: false
}

func ExampleOrchestrator_Unenroll() {
	o, _, _, vmID := exampleSetup(nil)
	ctx := context.Background()
	cred := guest.Password("root", "s3cret")
	if _, err := o.Enroll(ctx, enroll.Request{Provider: "vc1", VMID: vmID, Credentials: cred}); err != nil {
		panic(err)
	}
	res, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: "vc1", VMID: vmID, Credentials: cred})
	fmt.Println(res.State, err)
	// Output: available <nil>
}

// Progress is observed through an Observer: every step's start, success,
// failure and compensation is an Event.
func ExampleObserverFunc() {
	progress := enroll.ObserverFunc(func(e enroll.Event) {
		if e.Kind == enroll.StepSucceeded {
			fmt.Println("done:", e.Step)
		}
	})
	o, _, _, vmID := exampleSetup(&enroll.Options{Observer: progress})
	_, _ = o.Enroll(context.Background(), enroll.Request{Provider: "vc1", VMID: vmID, Credentials: guest.Password("root", "s3cret")})
	// Output:
	// done: eligibility
	// done: credentials
	// done: requirements
	// done: ipam
	// done: firewall
	// done: configure
	// done: cmdb
}

// The Indexer records every VM of the providers in the CMDB, then follows
// their events until its context ends.
func ExampleIndexer_Sync() {
	o, _, db, _ := exampleSetup(nil)
	if err := o.Indexer(nil).Sync(context.Background(), "vc1"); err != nil {
		panic(err)
	}
	recs, _ := db.List(context.Background(), cmdb.Filter{Provider: "vc1"})
	for _, r := range recs {
		fmt.Println(r.VM.Name, r.State)
	}
	// Output: web-01 available
}

// After a crash, a new process over the same Store finishes or rolls back
// what the old one left open. Credentials are never stored: Resume asks
// Config.Credentials for them.
func ExampleOrchestrator_Resume() {
	// In a real host this orchestrator is built over the same Store (e.g.
	// PostgreSQL) the crashed process used; here nothing is left open.
	o, _, _, _ := exampleSetup(&enroll.Options{Instance: "replica-1", LeaseTTL: 30 * time.Second})
	rep, err := o.Resume(context.Background())
	fmt.Println(len(rep.Resumed), "resumed,", rep.Skipped, "skipped,", err)
	// Output: 0 resumed, 0 skipped, <nil>
}
