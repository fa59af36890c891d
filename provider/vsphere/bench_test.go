package vsphere_test

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// bigWorld builds a simulator with n running VMs (tools running, an IP),
// in parallel, and a driver on it.
func bigWorld(tb testing.TB, n int, opts *vsphere.Options) (*vspheresim.Sim, *provider.Provider) {
	tb.Helper()
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.CreateVMs(ctx, n, "vm", vspheresim.Placement{}, &vspheresim.GuestState{
		ToolsRunning: true, IP: "192.0.2.7", Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)",
	}); err != nil {
		tb.Fatal(err)
	}
	o := vsphere.Options{}
	if opts != nil {
		o = *opts
	}
	o.RootCAs = sim.CAs
	p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return sim, p
}

// TestListRoundTrips: List costs a fixed number of calls (view, its list,
// one per page, destroy), whatever the VM count; a Provider's first call
// also reads the topology (view, one page, destroy).
func TestListRoundTrips(t *testing.T) {
	t.Parallel()
	const n = 600
	sim, p := bigWorld(t, n, &vsphere.Options{PageSize: 100})
	ctx := context.Background()
	calls := sim.CountCalls()
	if vms, err := p.List(ctx, nil); err != nil || len(vms) != n {
		t.Fatalf("first List: %d VMs, %v", len(vms), err)
	}
	if got := calls.Load(); got != 12 {
		t.Fatalf("the first List of %d VMs took %d calls, want 12 (topology: view, 1 page, destroy; then view, its list, 6 pages, destroy)", n, got)
	}
	calls = sim.CountCalls()
	vms, err := p.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != n {
		t.Fatalf("List: %d VMs, want %d", len(vms), n)
	}
	// CreateContainerView, its list of VMs, 6 pages of 100, DestroyView.
	if got := calls.Load(); got != 9 {
		t.Fatalf("List of %d VMs took %d calls, want 9 (view, its list, 6 pages, destroy)", n, got)
	}
	for _, vm := range vms {
		if vm.ID == "" || vm.Zone != "DC0" || !vm.Guest.ToolsRunning || len(vm.Guest.IPs) != 1 {
			t.Fatalf("incomplete VM %+v", vm)
		}
	}
}

// finderList is the naive way: find every VM, then one Properties call
// per VM.
func finderList(ctx context.Context, c *govmomi.Client) (int, error) {
	f := find.NewFinder(c.Client, true)
	dc, err := f.DefaultDatacenter(ctx)
	if err != nil {
		return 0, err
	}
	f.SetDatacenter(dc)
	list, err := f.VirtualMachineList(ctx, "*")
	if err != nil {
		return 0, err
	}
	// The same properties the driver's List reads: equal work per VM.
	props := vsphere.VMProps
	for _, vm := range list {
		var m mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), props, &m); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// BenchmarkList2000 compares, on 2,000 VMs with 1 ms added to every call,
// the driver's List (one ContainerView, RetrievePropertiesEx pages of 500)
// with a find.Finder listing plus one Properties call per VM.
//
//	go test -run '^$' -bench List2000 -benchtime 3x ./provider/vsphere/
func BenchmarkList2000(b *testing.B) {
	const n = 2000
	sim, p := bigWorld(b, n, nil)
	ctx := context.Background()
	if _, err := p.Zones(ctx); err != nil {
		b.Fatal(err)
	}
	u := *sim.URL
	u.User = url.UserPassword(sim.Username, sim.Password)
	naive, err := govmomi.NewClient(ctx, &u, true)
	if err != nil {
		b.Fatal(err)
	}
	defer naive.Logout(ctx)
	sim.SetDelay(1)
	defer sim.SetDelay(0)
	calls := sim.CountCalls()
	var driver, finder time.Duration
	b.Run("driver-List", func(b *testing.B) {
		calls.Store(0)
		start := time.Now()
		for b.Loop() {
			vms, err := p.List(ctx, nil)
			if err != nil || len(vms) != n {
				b.Fatalf("List: %d VMs, %v", len(vms), err)
			}
		}
		driver = time.Since(start) / time.Duration(b.N)
		b.ReportMetric(float64(calls.Load())/float64(b.N), "roundtrips/op")
	})
	b.Run("finder-per-VM", func(b *testing.B) {
		calls.Store(0)
		start := time.Now()
		for b.Loop() {
			got, err := finderList(ctx, naive)
			if err != nil || got != n {
				b.Fatalf("finder: %d VMs, %v", got, err)
			}
		}
		finder = time.Since(start) / time.Duration(b.N)
		b.ReportMetric(float64(calls.Load())/float64(b.N), "roundtrips/op")
	})
	if driver > 0 {
		b.Logf("driver List %v, finder loop %v: %.1fx faster", driver, finder, float64(finder)/float64(driver))
	}
}

// BenchmarkListRoundTrips reports the round trips of a Provider's first
// List (which also reads the topology) and of a later one, and the memory
// the result retains per VM, for 2,000 and 10,000 VMs (the 10,000-VM model
// takes ~20 s to build: only with -bench).
//
//	go test -run '^$' -bench ListRoundTrips -benchtime 1x ./provider/vsphere/
func BenchmarkListRoundTrips(b *testing.B) {
	for _, n := range []int{2000, 10000} {
		b.Run(fmt.Sprintf("vms=%d", n), func(b *testing.B) {
			sim, p := bigWorld(b, n, nil)
			ctx := context.Background()
			calls := sim.CountCalls()
			if _, err := p.List(ctx, nil); err != nil {
				b.Fatal(err)
			}
			first := calls.Load()
			var perVM float64
			for b.Loop() {
				calls.Store(0)
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				vms, err := p.List(ctx, nil)
				if err != nil || len(vms) != n {
					b.Fatalf("List: %d, %v", len(vms), err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perVM = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
				runtime.KeepAlive(vms)
			}
			b.ReportMetric(float64(first), "first-roundtrips")
			b.ReportMetric(float64(calls.Load()), "roundtrips/op")
			b.ReportMetric(perVM, "retained-B/VM")
		})
	}
}

// BenchmarkWatchLatency measures the time from a change in the simulator
// (a guest IP change through the PropertyCollector path, a power change
// through the event path) to the event on a Watch stream.
//
//	go test -run '^$' -bench WatchLatency -benchtime 200x ./provider/vsphere/
func BenchmarkWatchLatency(b *testing.B) {
	sim, p := bigWorld(b, 50, nil)
	ctx := context.Background()
	vms, err := p.List(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	target := vms[0]
	ref, err := sim.VMByUUID(ctx, target.ID)
	if err != nil {
		b.Fatal(err)
	}
	for _, kind := range []string{"ip", "power"} {
		b.Run(kind, func(b *testing.B) {
			st, err := p.Watch(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var lat []time.Duration
			i := 0
			for b.Loop() {
				i++
				var want func(provider.Event) bool
				start := time.Now()
				switch kind {
				case "ip":
					ip := fmt.Sprintf("198.51.100.%d", i%250+1)
					if err := sim.SetGuest(ref.Reference(), vspheresim.GuestState{ToolsRunning: true, IP: ip, Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)"}); err != nil {
						b.Fatal(err)
					}
					want = func(ev provider.Event) bool {
						return len(ev.VM.Guest.IPs) > 0 && ev.VM.Guest.IPs[0].String() == ip
					}
				case "power":
					on := i%2 == 0
					var err error
					if on {
						err = p.PowerOn(ctx, target.ID)
					} else {
						err = p.PowerOff(ctx, target.ID)
					}
					if err != nil {
						b.Fatal(err)
					}
					wantPower := provider.PoweredOff
					if on {
						wantPower = provider.PoweredOn
					}
					want = func(ev provider.Event) bool { return ev.VM.Power == wantPower }
					start = time.Now() // the simulator changed when the task ended
				}
				for {
					ev, err := st.Next(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if ev.VMID == target.ID && want(ev) {
						break
					}
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// TestListPages: List gives every VM exactly once, in the same order,
// whatever the page size and the number of pages read at once.
func TestListPages(t *testing.T) {
	t.Parallel()
	const n = 50
	sim, _ := bigWorld(t, n, nil)
	ctx := context.Background()
	var first []string
	for _, o := range []vsphere.Options{{PageSize: 500, ListConcurrency: 1}, {PageSize: 7, ListConcurrency: 1}, {PageSize: 7, ListConcurrency: 3}, {PageSize: 1, ListConcurrency: 16}} {
		o.RootCAs = sim.CAs
		p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &o)
		if err != nil {
			t.Fatal(err)
		}
		vms, err := p.List(ctx, nil)
		_ = p.Close()
		if err != nil {
			t.Fatalf("PageSize %d, ListConcurrency %d: %v", o.PageSize, o.ListConcurrency, err)
		}
		var ids []string
		seen := map[string]bool{}
		for _, vm := range vms {
			if seen[vm.ID] {
				t.Fatalf("PageSize %d, ListConcurrency %d: %s listed twice", o.PageSize, o.ListConcurrency, vm.ID)
			}
			seen[vm.ID] = true
			ids = append(ids, vm.ID)
		}
		if len(ids) != n {
			t.Fatalf("PageSize %d, ListConcurrency %d: %d VMs, want %d", o.PageSize, o.ListConcurrency, len(ids), n)
		}
		if first == nil {
			first = ids
		} else if !slices.Equal(ids, first) {
			t.Fatalf("PageSize %d, ListConcurrency %d: order differs:\n%v\n%v", o.PageSize, o.ListConcurrency, ids, first)
		}
	}
}

// TestListVMDeletedMeanwhile: a VM destroyed after List read the VM
// references, before it read their properties, is left out; List does not
// fail.
func TestListVMDeletedMeanwhile(t *testing.T) {
	t.Parallel()
	sim, p := bigWorld(t, 10, &vsphere.Options{PageSize: 4})
	ctx := context.Background()
	before, err := p.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	victim := before[3].ID
	vsphere.SetAfterView(p, func() {
		vsphere.SetAfterView(p, nil)
		if err := sim.Delete(ctx, victim); err != nil {
			t.Error(err)
		}
	})
	after, err := p.List(ctx, nil)
	if err != nil {
		t.Fatalf("List with a VM destroyed under it: %v", err)
	}
	if len(after) != len(before)-1 {
		t.Fatalf("List: %d VMs, want %d", len(after), len(before)-1)
	}
	for _, vm := range after {
		if vm.ID == victim {
			t.Fatalf("the destroyed VM %s is listed", victim)
		}
	}
}

// TestListCanceledMidway: a List whose context ends while it runs fails
// with Canceled; it never returns the pages it read as the whole list.
func TestListCanceledMidway(t *testing.T) {
	t.Parallel()
	_, p := bigWorld(t, 10, &vsphere.Options{PageSize: 2, ListConcurrency: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vsphere.SetAfterView(p, cancel)
	vms, err := p.List(ctx, nil)
	if errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("List canceled midway: %d VMs, %v; want Canceled", len(vms), err)
	}
}
