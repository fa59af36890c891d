package memipam_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// fakeClock advances one second on every reading.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func TestTimestamps(t *testing.T) {
	ctx := t.Context()
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := memipam.New(&memipam.Options{Now: clock.now})
	if err := m.CreatePool(ctx, ipam.Pool{Name: "a", Prefix: netip.MustParsePrefix("192.0.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	t1 := clock.t.Add(time.Second)
	a, err := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: "vm", LocalIP: ip("10.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Created.Equal(t1) || !a.Updated.Equal(t1) {
		t.Fatalf("new allocation: Created %v Updated %v, want both %v", a.Created, a.Updated, t1)
	}
	// Calls that change nothing leave Updated alone.
	b, _ := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: "vm"})
	c, _ := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: "vm", LocalIP: ip("10.0.0.1")})
	d, _ := m.SetLocalIP(ctx, "a", "vm", ip("10.0.0.1"))
	for _, x := range []ipam.Allocation{b, c, d} {
		if !x.Updated.Equal(t1) {
			t.Errorf("a call that changed nothing moved Updated to %v", x.Updated)
		}
	}
	// Changes move Updated, never Created.
	e, _ := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: "vm", LocalIP: ip("10.0.0.2")})
	t2 := clock.t
	f, _ := m.SetLocalIP(ctx, "a", "vm", netip.Addr{})
	t3 := clock.t
	if !e.Updated.Equal(t2) || !f.Updated.Equal(t3) || !e.Created.Equal(t1) || !f.Created.Equal(t1) {
		t.Errorf("after changes: %v/%v and %v/%v, want Created %v, Updated %v then %v",
			e.Created, e.Updated, f.Created, f.Updated, t1, t2, t3)
	}
}

// TestAllocationOrder checks the documented order: never-used addresses
// first, in address order, then released ones, oldest release first.
func TestAllocationOrder(t *testing.T) {
	ctx := t.Context()
	m := memipam.New(nil)
	p := ipam.Pool{Name: "a", Prefix: netip.MustParsePrefix("192.0.2.0/28"), Gateway: ip("192.0.2.1"),
		Reserved: []ipam.Range{{From: ip("192.0.2.4"), To: ip("192.0.2.6")}}}
	if err := m.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	alloc := func(owner string) string {
		t.Helper()
		a, err := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: owner})
		if err != nil {
			t.Fatalf("Allocate(%q): %v", owner, err)
		}
		return a.Address.String()
	}
	var got []string
	for i := range 4 {
		got = append(got, alloc(fmt.Sprint("vm-", i)))
	}
	for _, o := range []string{"vm-2", "vm-0"} {
		if err := m.Release(ctx, "a", o); err != nil {
			t.Fatal(err)
		}
	}
	for i := 4; i < 12; i++ { // 6 never used, then the 2 released
		got = append(got, alloc(fmt.Sprint("vm-", i)))
	}
	want := "192.0.2.2 192.0.2.3 192.0.2.7 192.0.2.8 " +
		"192.0.2.9 192.0.2.10 192.0.2.11 192.0.2.12 192.0.2.13 192.0.2.14 " + // fresh
		"192.0.2.7 192.0.2.2" // released: vm-2's, then vm-0's
	if g := strings.Join(got, " "); g != want {
		t.Errorf("allocation order:\n got %s\nwant %s", g, want)
	}
	_, err := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: "one-too-many"})
	if errs.CodeOf(err) != errs.ResourceExhausted {
		t.Errorf("Allocate from a full pool: %v", err)
	}
}

// TestAllocateDoesNotScan shows that allocation work does not grow with
// the number of addresses allocated or excluded: filling a /16 that has a
// large reserved block takes one step per address plus one per excluded
// span, and refilling it after releasing everything one step per address.
// A linear scan would take about size²/2 steps.
func TestAllocateDoesNotScan(t *testing.T) {
	ctx := t.Context()
	m := memipam.New(nil)
	var d *memipam.Driver
	if !m.As(&d) {
		t.Fatal("As(*memipam.Driver) = false")
	}
	p := ipam.Pool{Name: "big", Prefix: netip.MustParsePrefix("10.1.0.0/16"), Gateway: ip("10.1.0.1"),
		Reserved: []ipam.Range{
			{From: ip("10.1.0.2"), To: ip("10.1.0.255")},
			{From: ip("10.1.16.0"), To: ip("10.1.200.255")}, // 47,360 addresses
			{From: ip("10.1.201.7"), To: ip("10.1.201.7")},
			{From: ip("10.1.255.0"), To: ip("10.1.255.255")},
		}}
	if err := m.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	size := p.Size()
	spans := uint64(len(p.Reserved) + 3) // at most: network, broadcast, gateway
	owners := make([]string, size)
	for i := range owners {
		owners[i] = fmt.Sprint("vm-", i)
	}
	fill := func() {
		for _, o := range owners {
			if _, err := m.Allocate(ctx, ipam.Request{Pool: "big", Owner: o}); err != nil {
				t.Fatalf("Allocate(%q): %v", o, err)
			}
		}
		if _, err := m.Allocate(ctx, ipam.Request{Pool: "big", Owner: "extra"}); errs.CodeOf(err) != errs.ResourceExhausted {
			t.Fatalf("Allocate past %d: %v, want ResourceExhausted", size, err)
		}
	}
	fill()
	first := memipam.Probes(d, "big")
	if first > uint64(size)+1+spans {
		t.Errorf("filling %d addresses took %d steps, want at most %d", size, first, uint64(size)+1+spans)
	}
	for _, o := range owners {
		if err := m.Release(ctx, "big", o); err != nil {
			t.Fatal(err)
		}
	}
	fill()
	if again := memipam.Probes(d, "big") - first; again != uint64(size)+1 {
		t.Errorf("refilling %d released addresses took %d steps, want %d", size, again, size+1)
	}
}

// TestSteadyStateAllocatesNothing: once a pool has been through its
// addresses, an Allocate and Release pair makes no heap allocation.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations")
	}
	ctx := context.Background()
	m := memipam.New(nil)
	p := ipam.Pool{Name: "a", Prefix: netip.MustParsePrefix("192.0.2.0/24")}
	if err := m.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	owners := make([]string, p.Size())
	for i := range owners {
		owners[i] = fmt.Sprint("vm-", i)
		if _, err := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: owners[i]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range owners[:100] {
		_ = m.Release(ctx, "a", o)
	}
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		o := owners[i%100]
		i++
		if _, err := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: o}); err != nil {
			t.Fatal(err)
		}
		if err := m.Release(ctx, "a", o); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("Allocate+Release made %v heap allocations, want 0", n)
	}
}

func TestLogger(t *testing.T) {
	ctx := t.Context()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := memipam.New(&memipam.Options{Logger: log})
	p := ipam.Pool{Name: "a", Prefix: netip.MustParsePrefix("192.0.2.0/31")}
	if err := m.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"vm-1", "vm-2", "vm-3"} {
		_, _ = m.Allocate(ctx, ipam.Request{Pool: "a", Owner: o})
	}
	_ = m.Release(ctx, "a", "vm-1")
	_ = m.Release(ctx, "a", "vm-2")
	_ = m.DeletePool(ctx, "a")
	for _, want := range []string{
		`level=INFO msg="ipam: pool created" pool=a prefix=192.0.2.0/31 size=2`,
		`level=DEBUG msg="ipam: address allocated" pool=a owner=vm-1 address=192.0.2.0`,
		`level=DEBUG msg="ipam: address allocated" pool=a owner=vm-2 address=192.0.2.1`,
		`level=WARN msg="ipam: pool exhausted" pool=a owner=vm-3 size=2`,
		`level=DEBUG msg="ipam: address released" pool=a owner=vm-1 address=192.0.2.0`,
		`level=INFO msg="ipam: pool deleted" pool=a`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s\nlog:\n%s", want, buf.String())
		}
	}
}

// TestDeleteUnderRunningCall deletes (and recreates) a pool while an
// Allocate has found it but not yet locked it: the Allocate must then see
// that the pool is gone, and nothing may be allocated in a pool that no
// longer exists.
func TestDeleteUnderRunningCall(t *testing.T) {
	for _, recreate := range []bool{false, true} {
		t.Run(fmt.Sprint("recreate=", recreate), func(t *testing.T) {
			ctx := t.Context()
			d := memipam.NewDriver(nil)
			m := ipam.New(d, nil)
			p := ipam.Pool{Name: "a", Prefix: netip.MustParsePrefix("192.0.2.0/24")}
			if err := m.CreatePool(ctx, p); err != nil {
				t.Fatal(err)
			}
			loaded, proceed := make(chan struct{}), make(chan struct{})
			var once sync.Once
			memipam.SetLoadedHook(d, func() {
				once.Do(func() {
					close(loaded)
					<-proceed
				})
			})
			errc := make(chan error)
			go func() {
				_, err := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: "vm-1"})
				errc <- err
			}()
			<-loaded
			if err := m.DeletePool(ctx, "a"); err != nil {
				t.Fatalf("DeletePool: %v", err)
			}
			if recreate {
				if err := m.CreatePool(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			close(proceed)
			if err := <-errc; errs.CodeOf(err) != errs.NotFound {
				t.Fatalf("Allocate in a pool deleted under it: %v, want NotFound", err)
			}
			if !recreate {
				return
			}
			if pi, err := m.Pool(ctx, "a"); err != nil || pi.Used != 0 {
				t.Errorf("the recreated pool: %+v, %v; want it empty", pi, err)
			}
			if _, err := m.Lookup(ctx, "a", "vm-1"); errs.CodeOf(err) != errs.NotFound {
				t.Errorf("Lookup in the recreated pool: %v, want NotFound", err)
			}
		})
	}
}

// TestRecreatedPoolIsUsed: after a pool has been used (and so remembered
// as the last pool found), deleting it makes calls NotFound and creating it
// again makes them use the new pool, not the deleted one.
func TestRecreatedPoolIsUsed(t *testing.T) {
	ctx := t.Context()
	m := memipam.New(nil)
	p := ipam.Pool{Name: "a", Prefix: netip.MustParsePrefix("192.0.2.0/24")}
	if err := m.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: "vm-1"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx, "a", "vm-1"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeletePool(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: "vm-2"}); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("Allocate in a deleted pool: %v, want NotFound", err)
	}
	p.Prefix = netip.MustParsePrefix("198.51.100.0/24")
	if err := m.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	a, err := m.Allocate(ctx, ipam.Request{Pool: "a", Owner: "vm-2"})
	if err != nil || !p.Prefix.Contains(a.Address) {
		t.Fatalf("Allocate in the recreated pool: %+v, %v; want an address of %s", a, err, p.Prefix)
	}
	if pi, err := m.Pool(ctx, "a"); err != nil || pi.Used != 1 || pi.Prefix != p.Prefix {
		t.Fatalf("Pool: %+v, %v; want the new pool with 1 used", pi, err)
	}
}
