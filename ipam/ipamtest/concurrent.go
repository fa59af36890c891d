package ipamtest

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
)

var concurrentCases = []tcase{
	{"DistinctOwners", testConcurrentDistinctOwners},
	{"SameOwner", testConcurrentSameOwner},
	{"SameOwnerLocalIPs", testConcurrentSameOwnerLocalIPs},
	{"RaceToExhaustion", testConcurrentRaceToExhaustion},
	{"Churn", testConcurrentChurn},
	{"CreatePool", testConcurrentCreatePool},
	{"DeletePoolVsAllocate", testConcurrentDeleteVsAllocate},
}

// goroutines is how many goroutines the concurrent cases start.
const goroutines = 64

// together runs f(0..n-1) on n goroutines released at the same moment, and
// waits for them.
func together(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func testConcurrentDistinctOwners(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := zoneB() // 254 usable
	mustCreate(t, m, p)
	const perG = 3
	got := make([][perG]ipam.Allocation, goroutines)
	together(goroutines, func(g int) {
		for k := range perG {
			req := ipam.Request{Pool: p.Name, Owner: fmt.Sprintf("vm-%d-%d", g, k)}
			a, err := m.Allocate(ctx, req)
			if err != nil {
				t.Errorf("Allocate(%+v): %v", req, err)
				return
			}
			checkAlloc(t, m, req, a)
			got[g][k] = a
		}
	})
	if t.Failed() {
		return
	}
	byAddr := map[netip.Addr]string{}
	for _, as := range got {
		for _, a := range as {
			if prev, dup := byAddr[a.Address]; dup {
				t.Errorf("%v given to both %q and %q", a.Address, prev, a.Owner)
			}
			byAddr[a.Address] = a.Owner
			if !p.Prefix.Contains(a.Address) || p.Excluded(a.Address) {
				t.Errorf("%q got %v: outside %s or excluded", a.Owner, a.Address, p.Prefix)
			}
			wantSameAlloc(t, mustLookup(t, m, p.Name, a.Owner), a, "Lookup of "+a.Owner)
		}
	}
	wantUsed(t, m, p.Name, goroutines*perG)
	if as, err := m.Allocations(ctx, p.Name); err != nil || len(as) != goroutines*perG {
		t.Errorf("Allocations: %d entries, %v; want %d", len(as), err, goroutines*perG)
	}
}

func testConcurrentSameOwner(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := zoneB()
	mustCreate(t, m, p)
	got := make([]ipam.Allocation, goroutines)
	together(goroutines, func(g int) {
		a, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: "vm-1"})
		if err != nil {
			t.Errorf("Allocate: %v", err)
		}
		got[g] = a
	})
	if t.Failed() {
		return
	}
	for _, a := range got {
		wantSameAlloc(t, a, got[0], "concurrent Allocate of one owner")
	}
	wantSameAlloc(t, mustLookup(t, m, p.Name, "vm-1"), got[0], "Lookup")
	wantUsed(t, m, p.Name, 1)
}

func testConcurrentSameOwnerLocalIPs(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := zoneB()
	mustCreate(t, m, p)
	locals := map[netip.Addr]bool{}
	for g := range goroutines {
		locals[netip.AddrFrom4([4]byte{10, 0, 0, byte(g + 1)})] = true
	}
	got := make([]ipam.Allocation, goroutines)
	together(goroutines, func(g int) {
		l := netip.AddrFrom4([4]byte{10, 0, 0, byte(g + 1)})
		a, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: "vm-1", LocalIP: l})
		if err != nil {
			t.Errorf("Allocate: %v", err)
		}
		if a.LocalIP != l {
			t.Errorf("Allocate with LocalIP %v returned LocalIP %v", l, a.LocalIP)
		}
		got[g] = a
	})
	if t.Failed() {
		return
	}
	for _, a := range got {
		if a.Address != got[0].Address || !a.Created.Equal(got[0].Created) {
			t.Errorf("concurrent Allocate of one owner gave %s and %s", fmtAlloc(a), fmtAlloc(got[0]))
		}
	}
	final := mustLookup(t, m, p.Name, "vm-1")
	if final.Address != got[0].Address || !locals[final.LocalIP] {
		t.Errorf("Lookup = %s: want address %v and one of the requested local addresses", fmtAlloc(final), got[0].Address)
	}
	wantUsed(t, m, p.Name, 1)
}

func testConcurrentRaceToExhaustion(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := ipam.Pool{Name: "p28", Prefix: pfx("192.0.2.16/28"), Gateway: ip("192.0.2.17")} // 13 usable
	mustCreate(t, m, p)
	size := p.Size()
	var ok, full atomic.Int64
	got := make([]ipam.Allocation, goroutines)
	together(goroutines, func(g int) {
		a, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: fmt.Sprint("vm-", g)})
		switch errs.CodeOf(err) {
		case errs.OK:
			ok.Add(1)
			got[g] = a
		case errs.ResourceExhausted:
			full.Add(1)
		default:
			t.Errorf("Allocate: %v", err)
		}
	})
	if ok.Load() != int64(size) || full.Load() != int64(goroutines-size) {
		t.Fatalf("%d goroutines raced for %d addresses: %d succeeded, %d exhausted", goroutines, size, ok.Load(), full.Load())
	}
	seen := map[netip.Addr]bool{}
	for _, a := range got {
		if !a.Address.IsValid() {
			continue
		}
		if seen[a.Address] || p.Excluded(a.Address) {
			t.Errorf("%v allocated twice or excluded", a.Address)
		}
		seen[a.Address] = true
	}
	wantUsed(t, m, p.Name, size)
}

// testConcurrentChurn has more goroutines than addresses allocate, check
// and release over and over. Each goroutine claims its address in a shared
// table while it holds it: a second claim is an address given twice.
func testConcurrentChurn(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := ipam.Pool{Name: "p28", Prefix: pfx("192.0.2.16/28"), Gateway: ip("192.0.2.17")} // 13 usable
	mustCreate(t, m, p)
	const workers, rounds = 16, 40
	var (
		mu      sync.Mutex
		holders = map[netip.Addr]string{}
		stop    = make(chan struct{})
		readers sync.WaitGroup
	)
	// A reader checks every listing it sees while the churn runs.
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			as, err := m.Allocations(ctx, p.Name)
			if err != nil {
				t.Errorf("Allocations: %v", err)
				return
			}
			if len(as) > p.Size() {
				t.Errorf("Allocations lists %d entries in a pool of %d", len(as), p.Size())
			}
			for i := 1; i < len(as); i++ {
				if !as[i-1].Address.Less(as[i].Address) {
					t.Errorf("Allocations: %v before %v (unordered or duplicate)", as[i-1].Address, as[i].Address)
				}
			}
		}
	})
	together(workers, func(g int) {
		owner := fmt.Sprint("vm-", g)
		local := netip.AddrFrom4([4]byte{10, 0, 0, byte(g + 1)})
		for range rounds {
			a, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: owner, LocalIP: local})
			if errs.CodeOf(err) == errs.ResourceExhausted {
				continue
			}
			if err != nil {
				t.Errorf("Allocate(%q): %v", owner, err)
				return
			}
			mu.Lock()
			prev, taken := holders[a.Address]
			holders[a.Address] = owner
			mu.Unlock()
			if taken {
				t.Errorf("%v given to %q while %q holds it", a.Address, owner, prev)
				return
			}
			if got, err := m.LookupAddress(ctx, p.Name, a.Address); err != nil || got.Owner != owner || got.LocalIP != local {
				t.Errorf("LookupAddress(%v) while %q holds it = %s, %v", a.Address, owner, fmtAlloc(got), err)
				return
			}
			mu.Lock()
			delete(holders, a.Address)
			mu.Unlock()
			if err := m.Release(ctx, p.Name, owner); err != nil {
				t.Errorf("Release(%q): %v", owner, err)
				return
			}
		}
	})
	close(stop)
	readers.Wait()
	wantUsed(t, m, p.Name, 0)
	if as, err := m.Allocations(ctx, p.Name); err != nil || len(as) != 0 {
		t.Errorf("after the churn, Allocations = %d entries, %v; want none", len(as), err)
	}
	// Every address is still usable: nothing leaked.
	if n := len(fill(t, m, p.Name, "after-", p.Size())); n != p.Size() {
		t.Errorf("after the churn the pool yields %d addresses, want %d", n, p.Size())
	}
}

func testConcurrentCreatePool(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	// The identical pool from every goroutine: all succeed.
	together(goroutines, func(int) {
		if err := m.CreatePool(ctx, zoneA()); err != nil {
			t.Errorf("concurrent CreatePool of one identical pool: %v", err)
		}
	})
	if pi := mustPool(t, m, zoneA().Name); !samePool(pi.Pool, zoneA()) {
		t.Errorf("Pool = %+v, want %+v", pi.Pool, zoneA())
	}
	// A different pool under one name from every goroutine: one wins.
	var wins atomic.Int64
	var winner atomic.Int64
	together(goroutines, func(g int) {
		p := ipam.Pool{Name: "contested", Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(g), 0, 0}), 16)}
		switch err := m.CreatePool(ctx, p); errs.CodeOf(err) {
		case errs.OK:
			wins.Add(1)
			winner.Store(int64(g))
		case errs.AlreadyExists:
		default:
			t.Errorf("CreatePool(%s): %v", p.Prefix, err)
		}
	})
	if wins.Load() != 1 {
		t.Fatalf("%d goroutines created different pools under one name: %d succeeded, want 1", goroutines, wins.Load())
	}
	want := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(winner.Load()), 0, 0}), 16)
	if pi := mustPool(t, m, "contested"); pi.Prefix != want {
		t.Errorf("the pool is %s, but the creation that succeeded was %s", pi.Prefix, want)
	}
	if ps, err := m.Pools(ctx); err != nil || len(ps) != 2 {
		t.Errorf("Pools = %d, %v; want 2", len(ps), err)
	}
}

// testConcurrentDeleteVsAllocate races DeletePool against allocations.
// Allocators allocate and release over and over while a deleter retries
// DeletePool until the pool happens to be empty. A pool must never go with
// an address in it: an allocator that got an address must be able to
// release it (Release of a deleted pool is NotFound).
func testConcurrentDeleteVsAllocate(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	const allocators, iterations, attempts = 8, 300, 20000
	for round := range 8 {
		p := zoneB()
		mustCreate(t, m, p)
		// deleting is set while a DeletePool call is in flight: a store
		// shared over a network may show the deletion to other clients
		// before the call returns (the deletion takes effect somewhere
		// between call and return), so NotFound is legal from then on.
		var deleted, deleting atomic.Bool
		together(allocators+1, func(g int) {
			if g == allocators {
				for range attempts {
					deleting.Store(true)
					switch err := m.DeletePool(ctx, p.Name); errs.CodeOf(err) {
					case errs.OK:
						deleted.Store(true)
						return
					case errs.FailedPrecondition:
						deleting.Store(false)
						runtime.Gosched()
					default:
						t.Errorf("DeletePool: %v", err)
						return
					}
				}
				return
			}
			owner := fmt.Sprint("vm-", g)
			for range iterations {
				_, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: owner})
				switch errs.CodeOf(err) {
				case errs.OK:
				case errs.NotFound:
					if !deleted.Load() && !deleting.Load() {
						t.Errorf("Allocate: %v, but the pool was not deleted", err)
					}
					return
				default:
					t.Errorf("Allocate: %v", err)
					return
				}
				if err := m.Release(ctx, p.Name, owner); err != nil {
					t.Errorf("round %d: Release of an address %q holds: %v (deleted: %v): the pool went while an address was allocated",
						round, owner, err, deleted.Load())
					return
				}
			}
		})
		if t.Failed() {
			return
		}
		if deleted.Load() {
			if _, err := m.Pool(ctx, p.Name); errs.CodeOf(err) != errs.NotFound {
				t.Fatalf("round %d: DeletePool succeeded, yet Pool = %v", round, err)
			}
			continue
		}
		wantUsed(t, m, p.Name, 0)
		if err := m.DeletePool(ctx, p.Name); err != nil {
			t.Fatalf("round %d: DeletePool of the emptied pool: %v", round, err)
		}
	}
}
