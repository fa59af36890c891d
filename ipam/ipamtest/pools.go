package ipamtest

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/ipam"
)

var poolCases = []tcase{
	{"CreateGetList", testPoolCreateGetList},
	{"CreateIdentical", testPoolCreateIdentical},
	{"CreateConflicting", testPoolCreateConflicting},
	{"CreateInvalid", testPoolCreateInvalid},
	{"Delete", testPoolDelete},
	{"DeleteNonEmpty", testPoolDeleteNonEmpty},
	{"DeleteMissing", testPoolDeleteMissing},
	{"GetMissing", testPoolGetMissing},
	{"SizeAndUsed", testPoolSizeAndUsed},
	{"ReturnsCopies", testPoolReturnsCopies},
}

func testPoolCreateGetList(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	if ps, err := m.Pools(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("Pools on a new IPAM = %v, %v; want none", ps, err)
	}
	b, a := zoneB(), zoneA()
	mustCreate(t, m, b) // out of name order on purpose
	mustCreate(t, m, a)
	for _, p := range []ipam.Pool{a, b} {
		pi := mustPool(t, m, p.Name)
		if !samePool(pi.Pool, p) {
			t.Errorf("Pool(%q) = %+v, want %+v", p.Name, pi.Pool, p)
		}
		if pi.Size != p.Size() || pi.Used != 0 {
			t.Errorf("Pool(%q): Size %d Used %d, want %d and 0", p.Name, pi.Size, pi.Used, p.Size())
		}
	}
	ps, err := m.Pools(ctx)
	if err != nil {
		t.Fatalf("Pools: %v", err)
	}
	if len(ps) != 2 || ps[0].Name != a.Name || ps[1].Name != b.Name {
		t.Fatalf("Pools = %+v, want %q then %q", ps, a.Name, b.Name)
	}
	if !samePool(ps[0].Pool, a) || !samePool(ps[1].Pool, b) || ps[0].Size != a.Size() || ps[1].Size != b.Size() {
		t.Errorf("Pools = %+v, want %+v and %+v", ps, a, b)
	}
}

func testPoolCreateIdentical(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	mustCreate(t, m, p)
	mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	before := snapshot(t, m)
	again := zoneA() // equal, but a distinct Reserved slice
	if err := m.CreatePool(t.Context(), again); err != nil {
		t.Fatalf("CreatePool of an identical pool: %v, want nil (no-op)", err)
	}
	if after := snapshot(t, m); after != before {
		t.Errorf("CreatePool of an identical pool changed the state:\nbefore:\n%safter:\n%s", before, after)
	}
}

func testPoolCreateConflicting(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	mustCreate(t, m, p)
	mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	before := snapshot(t, m)
	variants := map[string]func(*ipam.Pool){
		"other prefix":       func(q *ipam.Pool) { q.Prefix = pfx("203.0.113.0/25") },
		"other gateway":      func(q *ipam.Pool) { q.Gateway = ip("203.0.113.254") },
		"no gateway":         func(q *ipam.Pool) { q.Gateway = netip.Addr{} },
		"other reserved":     func(q *ipam.Pool) { q.Reserved = []ipam.Range{rng("203.0.113.2", "203.0.113.10")} },
		"no reserved":        func(q *ipam.Pool) { q.Reserved = nil },
		"extra reserved":     func(q *ipam.Pool) { q.Reserved = append(q.Reserved, rng("203.0.113.200", "203.0.113.200")) },
		"other network, too": func(q *ipam.Pool) { *q = ipam.Pool{Name: q.Name, Prefix: pfx("10.0.0.0/8")} },
	}
	for what, change := range variants {
		q := zoneA()
		change(&q)
		err := m.CreatePool(t.Context(), q)
		testkit.WantCode(t, "CreatePool with "+what, err, errs.AlreadyExists)
		unchanged(t, m, before, "CreatePool with "+what)
	}
}

func testPoolCreateInvalid(t *testing.T, m *ipam.IPAM) {
	valid := zoneB()
	mustCreate(t, m, valid)
	before := snapshot(t, m)
	bad := []struct {
		what string
		p    ipam.Pool
	}{
		{"no name", ipam.Pool{Prefix: pfx("192.0.2.0/24")}},
		{"no prefix", ipam.Pool{Name: "bad"}},
		{"IPv6", ipam.Pool{Name: "bad", Prefix: pfx("2001:db8::/64")}},
		{"IPv4-mapped IPv6", ipam.Pool{Name: "bad", Prefix: pfx("::ffff:192.0.2.0/120")}},
		{"host bits set", ipam.Pool{Name: "bad", Prefix: pfx("192.0.2.1/24")}},
		{"larger than /8", ipam.Pool{Name: "bad", Prefix: pfx("10.0.0.0/7")}},
		{"gateway outside", ipam.Pool{Name: "bad", Prefix: pfx("192.0.2.0/24"), Gateway: ip("192.0.3.1")}},
		{"IPv6 gateway", ipam.Pool{Name: "bad", Prefix: pfx("192.0.2.0/24"), Gateway: ip("2001:db8::1")}},
		{"reversed range", ipam.Pool{Name: "bad", Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{rng("192.0.2.9", "192.0.2.2")}}},
		{"open range", ipam.Pool{Name: "bad", Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{{From: ip("192.0.2.9")}}}},
		{"IPv6 range", ipam.Pool{Name: "bad", Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{rng("2001:db8::1", "2001:db8::2")}}},
		// A valid pool's name with an invalid definition is still
		// InvalidArgument, not AlreadyExists: validation comes first.
		{"taken name, bad prefix", ipam.Pool{Name: valid.Name, Prefix: pfx("198.51.100.7/24")}},
	}
	for _, c := range bad {
		err := m.CreatePool(t.Context(), c.p)
		testkit.WantCode(t, "CreatePool with "+c.what, err, errs.InvalidArgument)
		unchanged(t, m, before, "CreatePool with "+c.what)
	}
	_, err := m.Pool(t.Context(), "bad")
	testkit.WantCode(t, `Pool("bad") after invalid creations`, err, errs.NotFound)
}

func testPoolDelete(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	a, b := zoneA(), zoneB()
	mustCreate(t, m, a)
	mustCreate(t, m, b)
	mustAlloc(t, m, ipam.Request{Pool: b.Name, Owner: "vm-b"})
	// A pool whose addresses were all released again is empty.
	mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-a"})
	mustRelease(t, m, a.Name, "vm-a")
	if err := m.DeletePool(ctx, a.Name); err != nil {
		t.Fatalf("DeletePool(%q): %v", a.Name, err)
	}
	_, err := m.Pool(ctx, a.Name)
	testkit.WantCode(t, "Pool after DeletePool", err, errs.NotFound)
	_, err = m.Allocate(ctx, ipam.Request{Pool: a.Name, Owner: "vm-a"})
	testkit.WantCode(t, "Allocate after DeletePool", err, errs.NotFound)
	ps, err := m.Pools(ctx)
	if err != nil || len(ps) != 1 || ps[0].Name != b.Name || ps[0].Used != 1 {
		t.Fatalf("Pools after deleting %q = %+v, %v; want only %q with 1 used", a.Name, ps, err, b.Name)
	}
	// The name is free again, for a different pool.
	c := ipam.Pool{Name: a.Name, Prefix: pfx("192.0.2.0/24")}
	mustCreate(t, m, c)
	if pi := mustPool(t, m, c.Name); !samePool(pi.Pool, c) || pi.Used != 0 {
		t.Errorf("recreated pool = %+v, want %+v unused", pi, c)
	}
	if _, err := m.Lookup(ctx, c.Name, "vm-a"); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("Lookup in a recreated pool: %v, want NotFound (no allocation survives)", err)
	}
}

func testPoolDeleteNonEmpty(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	mustCreate(t, m, p)
	mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-2"})
	before := snapshot(t, m)
	err := m.DeletePool(t.Context(), p.Name)
	testkit.WantCode(t, "DeletePool with 2 allocations", err, errs.FailedPrecondition)
	unchanged(t, m, before, "DeletePool with 2 allocations")
	mustRelease(t, m, p.Name, "vm-1")
	before = snapshot(t, m)
	err = m.DeletePool(t.Context(), p.Name)
	testkit.WantCode(t, "DeletePool with 1 allocation", err, errs.FailedPrecondition)
	unchanged(t, m, before, "DeletePool with 1 allocation")
	mustRelease(t, m, p.Name, "vm-2")
	if err := m.DeletePool(t.Context(), p.Name); err != nil {
		t.Fatalf("DeletePool once empty: %v", err)
	}
}

func testPoolDeleteMissing(t *testing.T, m *ipam.IPAM) {
	mustCreate(t, m, zoneA())
	before := snapshot(t, m)
	testkit.WantCode(t, "DeletePool of a missing pool", m.DeletePool(t.Context(), "no-such-pool"), errs.NotFound)
	testkit.WantCode(t, `DeletePool("")`, m.DeletePool(t.Context(), ""), errs.InvalidArgument)
	unchanged(t, m, before, "DeletePool of a missing pool")
	// Deleting twice: the second is NotFound.
	mustCreate(t, m, zoneB())
	if err := m.DeletePool(t.Context(), zoneB().Name); err != nil {
		t.Fatalf("DeletePool: %v", err)
	}
	testkit.WantCode(t, "second DeletePool", m.DeletePool(t.Context(), zoneB().Name), errs.NotFound)
	unchanged(t, m, before, "second DeletePool")
}

func testPoolGetMissing(t *testing.T, m *ipam.IPAM) {
	mustCreate(t, m, zoneA())
	_, err := m.Pool(t.Context(), "zone-z")
	testkit.WantCode(t, "Pool of a missing pool", err, errs.NotFound)
	_, err = m.Pool(t.Context(), "")
	testkit.WantCode(t, `Pool("")`, err, errs.InvalidArgument)
}

func testPoolSizeAndUsed(t *testing.T, m *ipam.IPAM) {
	pools := []struct {
		p    ipam.Pool
		size int
	}{
		{zoneA(), 245},
		{zoneB(), 254},
		{tiny(), 3},
		{ipam.Pool{Name: "slash31", Prefix: pfx("192.0.2.8/31")}, 2},
		{ipam.Pool{Name: "slash31-gw", Prefix: pfx("192.0.2.10/31"), Gateway: ip("192.0.2.10")}, 1},
		{ipam.Pool{Name: "slash32", Prefix: pfx("192.0.2.12/32")}, 1},
		{ipam.Pool{Name: "slash32-gw", Prefix: pfx("192.0.2.13/32"), Gateway: ip("192.0.2.13")}, 0},
		{ipam.Pool{Name: "overlaps", Prefix: pfx("192.0.2.64/26"), Gateway: ip("192.0.2.65"),
			Reserved: []ipam.Range{
				rng("192.0.2.60", "192.0.2.70"), // starts outside the prefix, covers network and gateway
				rng("192.0.2.68", "192.0.2.72"), // overlaps the first
				rng("192.0.2.73", "192.0.2.73"), // adjacent to it
				rng("192.0.2.127", "192.0.2.200"),
				rng("10.0.0.0", "10.0.0.255"), // entirely outside
			}}, 64 - 10 - 1},
		{ipam.Pool{Name: "big", Prefix: pfx("10.0.0.0/8"), Gateway: ip("10.0.0.1")}, 1<<24 - 3},
	}
	for _, c := range pools {
		if c.p.Size() != c.size {
			t.Fatalf("fixture %q: Size() = %d, want %d", c.p.Name, c.p.Size(), c.size)
		}
		mustCreate(t, m, c.p)
		if pi := mustPool(t, m, c.p.Name); pi.Size != c.size || pi.Used != 0 {
			t.Errorf("Pool(%q): Size %d Used %d, want %d and 0", c.p.Name, pi.Size, pi.Used, c.size)
		}
	}
	p := zoneA().Name
	for i := range 5 {
		mustAlloc(t, m, ipam.Request{Pool: p, Owner: fmt.Sprint("vm-", i)})
		wantUsed(t, m, p, i+1)
	}
	mustAlloc(t, m, ipam.Request{Pool: p, Owner: "vm-0"}) // again: idempotent
	wantUsed(t, m, p, 5)
	mustRelease(t, m, p, "vm-3")
	wantUsed(t, m, p, 4)
	mustRelease(t, m, p, "vm-3")
	wantUsed(t, m, p, 4)
	wantUsed(t, m, zoneB().Name, 0)
}

func testPoolReturnsCopies(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	want := zoneA()
	mustCreate(t, m, p)
	p.Reserved[0] = rng("203.0.113.100", "203.0.113.200") // the caller's slice, after the call
	if pi := mustPool(t, m, p.Name); !samePool(pi.Pool, want) {
		t.Fatalf("changing the caller's Reserved after CreatePool changed the pool: %+v", pi.Pool)
	}
	pi := mustPool(t, m, p.Name)
	pi.Reserved[0] = rng("203.0.113.100", "203.0.113.200")
	ps, err := m.Pools(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ps[0].Reserved[0] = rng("203.0.113.100", "203.0.113.200")
	ps[0].Reserved = slices.Grow(ps[0].Reserved, 10)
	if pi := mustPool(t, m, p.Name); !samePool(pi.Pool, want) {
		t.Fatalf("changing a returned PoolInfo changed the pool: %+v", pi.Pool)
	}
	// Every address past .9 is allocatable: the mutations excluded nothing.
	a := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	if want.Excluded(a.Address) {
		t.Errorf("allocated excluded address %v", a.Address)
	}
}
