package ipamtest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/ipam"
)

var allocateCases = []tcase{
	{"HappyPath", testAllocateHappyPath},
	{"EveryUsableAddressOnce", testAllocateEveryUsableAddressOnce},
	{"Idempotent", testAllocateIdempotent},
	{"LocalIP", testAllocateLocalIP},
	{"OwnerPerPool", testAllocateOwnerPerPool},
	{"Exhaustion", testAllocateExhaustion},
	{"EmptyPool", testAllocateEmptyPool},
	{"InvalidRequest", testAllocateInvalidRequest},
	{"UnknownPool", testAllocateUnknownPool},
}

func testAllocateHappyPath(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	mustCreate(t, m, p)
	mustCreate(t, m, zoneB())
	req := ipam.Request{Pool: p.Name, Owner: "vsphere-prod/4211-aaaa"}
	a := mustAlloc(t, m, req)
	if !p.Prefix.Contains(a.Address) || p.Excluded(a.Address) {
		t.Errorf("allocated %v: outside %s or excluded", a.Address, p.Prefix)
	}
	if a.LocalIP.IsValid() {
		t.Errorf("LocalIP = %v, want none (the request set none)", a.LocalIP)
	}
	if !a.Updated.Equal(a.Created) {
		t.Errorf("new allocation: Updated %v != Created %v", a.Updated, a.Created)
	}
	wantSameAlloc(t, mustLookup(t, m, p.Name, req.Owner), a, "Lookup")
	wantUsed(t, m, p.Name, 1)
	wantUsed(t, m, zoneB().Name, 0)
	b := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vsphere-prod/4211-bbbb"})
	if b.Address == a.Address {
		t.Errorf("two owners got %v", a.Address)
	}
	wantUsed(t, m, p.Name, 2)
}

func testAllocateEveryUsableAddressOnce(t *testing.T, m *ipam.IPAM) {
	pools := []ipam.Pool{
		tiny(),
		{Name: "p28", Prefix: pfx("192.0.2.16/28"), Gateway: ip("192.0.2.30"),
			Reserved: []ipam.Range{rng("192.0.2.18", "192.0.2.19"), rng("192.0.2.19", "192.0.2.21"), rng("192.0.2.25", "192.0.2.25")}},
		{Name: "p30", Prefix: pfx("192.0.2.32/30")},
		{Name: "p31", Prefix: pfx("192.0.2.36/31")},
		{Name: "p31-gw", Prefix: pfx("192.0.2.38/31"), Gateway: ip("192.0.2.39")},
		{Name: "p32", Prefix: pfx("192.0.2.40/32")},
		{Name: "p27-top", Prefix: pfx("192.0.2.224/27"), Reserved: []ipam.Range{rng("192.0.2.250", "192.0.3.10")}},
		// The very top of the address space, and the bottom.
		{Name: "last", Prefix: pfx("255.255.255.240/28"), Gateway: ip("255.255.255.241"),
			Reserved: []ipam.Range{rng("255.255.255.250", "255.255.255.255"), rng("255.255.255.248", "255.255.255.249")}},
		{Name: "first", Prefix: pfx("0.0.0.0/29"), Reserved: []ipam.Range{rng("0.0.0.0", "0.0.0.2")}},
	}
	for _, p := range pools {
		mustCreate(t, m, p)
	}
	for _, p := range pools {
		want := usable(p)
		if len(want) != p.Size() {
			t.Fatalf("fixture %q: %d usable addresses, Size() = %d", p.Name, len(want), p.Size())
		}
		got := fill(t, m, p.Name, "vm-", len(want))
		addrs := make([]netip.Addr, len(got))
		for i, a := range got {
			addrs[i] = a.Address
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		if !slices.Equal(addrs, want) {
			t.Errorf("pool %q: allocated %v, want each of %v once", p.Name, addrs, want)
		}
		wantUsed(t, m, p.Name, len(want))
	}
}

func testAllocateIdempotent(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	mustCreate(t, m, p)
	req := ipam.Request{Pool: p.Name, Owner: "vm-1"}
	first := mustAlloc(t, m, req)
	mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-2"})
	before := snapshot(t, m)
	for range 3 {
		again := mustAlloc(t, m, req)
		wantSameAlloc(t, again, first, "Allocate again")
	}
	if after := snapshot(t, m); after != before {
		t.Errorf("repeating Allocate changed the state:\nbefore:\n%safter:\n%s", before, after)
	}
	wantUsed(t, m, p.Name, 2)
}

func testAllocateLocalIP(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := zoneA()
	mustCreate(t, m, p)
	l1, l2, l3 := ip("10.1.0.5"), ip("10.1.0.6"), ip("10.1.0.7")
	a := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1", LocalIP: l1})
	other := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-2", LocalIP: l3})
	if a.LocalIP != l1 {
		t.Fatalf("Allocate recorded LocalIP %v, want %v", a.LocalIP, l1)
	}
	wantSameAlloc(t, mustLookup(t, m, p.Name, "vm-1"), a, "Lookup")

	// No LocalIP in the request: the recorded one stays.
	b := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	wantSameAlloc(t, b, a, "Allocate again without LocalIP")

	// A new LocalIP: same address, same Created, LocalIP updated.
	c := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1", LocalIP: l2})
	if c.Address != a.Address || !c.Created.Equal(a.Created) || c.LocalIP != l2 || c.Updated.Before(a.Updated) {
		t.Fatalf("Allocate with a new LocalIP = %s, want address %v, created %v, LocalIP %v",
			fmtAlloc(c), a.Address, a.Created, l2)
	}
	wantSameAlloc(t, mustLookup(t, m, p.Name, "vm-1"), c, "Lookup after Allocate with a new LocalIP")
	got, err := m.LookupAddress(ctx, p.Name, a.Address)
	if err != nil {
		t.Fatalf("LookupAddress: %v", err)
	}
	wantSameAlloc(t, got, c, "LookupAddress after Allocate with a new LocalIP")

	// SetLocalIP.
	d, err := m.SetLocalIP(ctx, p.Name, "vm-1", l3)
	if err != nil {
		t.Fatalf("SetLocalIP: %v", err)
	}
	if d.Pool != p.Name || d.Owner != "vm-1" || d.Address != a.Address || d.LocalIP != l3 ||
		!d.Created.Equal(a.Created) || d.Updated.Before(c.Updated) {
		t.Fatalf("SetLocalIP = %s, want address %v, LocalIP %v", fmtAlloc(d), a.Address, l3)
	}
	wantSameAlloc(t, mustLookup(t, m, p.Name, "vm-1"), d, "Lookup after SetLocalIP")

	// Setting the same LocalIP again changes nothing.
	before := snapshot(t, m)
	e, err := m.SetLocalIP(ctx, p.Name, "vm-1", l3)
	if err != nil {
		t.Fatalf("SetLocalIP again: %v", err)
	}
	wantSameAlloc(t, e, d, "SetLocalIP with the same address")
	unchanged(t, m, before, "SetLocalIP with the same address")

	// The zero address clears the local address.
	f, err := m.SetLocalIP(ctx, p.Name, "vm-1", netip.Addr{})
	if err != nil {
		t.Fatalf("SetLocalIP(zero): %v", err)
	}
	if f.LocalIP.IsValid() || f.Address != a.Address {
		t.Fatalf("SetLocalIP(zero) = %s, want LocalIP cleared", fmtAlloc(f))
	}
	wantSameAlloc(t, mustLookup(t, m, p.Name, "vm-1"), f, "Lookup after SetLocalIP(zero)")

	// The other owner was never touched.
	wantSameAlloc(t, mustLookup(t, m, p.Name, "vm-2"), other, "Lookup of another owner")
}

func testAllocateOwnerPerPool(t *testing.T, m *ipam.IPAM) {
	a, b := zoneA(), zoneB()
	mustCreate(t, m, a)
	mustCreate(t, m, b)
	inA := mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-1"})
	inB := mustAlloc(t, m, ipam.Request{Pool: b.Name, Owner: "vm-1"})
	if !a.Prefix.Contains(inA.Address) || !b.Prefix.Contains(inB.Address) {
		t.Fatalf("vm-1 got %v in %q and %v in %q", inA.Address, a.Name, inB.Address, b.Name)
	}
	mustRelease(t, m, a.Name, "vm-1")
	wantSameAlloc(t, mustLookup(t, m, b.Name, "vm-1"), inB, "Lookup in the other pool after Release")
	_, err := m.Lookup(t.Context(), a.Name, "vm-1")
	testkit.WantCode(t, "Lookup after Release", err, errs.NotFound)
	_, err = m.LookupAddress(t.Context(), b.Name, inA.Address)
	testkit.WantCode(t, "LookupAddress of another pool's address", err, errs.NotFound)
}

func testAllocateExhaustion(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := tiny()
	mustCreate(t, m, p)
	mustCreate(t, m, zoneB())
	held := fill(t, m, p.Name, "vm-", 3)
	if len(held) != 3 {
		t.Fatalf("pool %q of size 3 yielded %d addresses", p.Name, len(held))
	}
	before := snapshot(t, m)
	_, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: "late", LocalIP: ip("10.0.0.9")})
	testkit.WantCode(t, "Allocate from a full pool", err, errs.ResourceExhausted)
	if err != nil && !strings.Contains(err.Error(), p.Name) {
		t.Errorf("exhaustion error %q does not name the pool %q", err, p.Name)
	}
	unchanged(t, m, before, "Allocate from a full pool")
	_, err = m.Lookup(ctx, p.Name, "late")
	testkit.WantCode(t, "Lookup of the owner refused", err, errs.NotFound)

	// An owner that already holds an address still gets it back.
	wantSameAlloc(t, mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: held[1].Owner}), held[1],
		"Allocate of a holder while full")
	// Other pools are not affected.
	mustAlloc(t, m, ipam.Request{Pool: zoneB().Name, Owner: "late"})

	// Releasing makes room: the freed address is the only one left.
	mustRelease(t, m, p.Name, held[1].Owner)
	wantUsed(t, m, p.Name, 2)
	late := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "late"})
	if late.Address != held[1].Address {
		t.Errorf("after releasing %v, Allocate gave %v", held[1].Address, late.Address)
	}
	wantUsed(t, m, p.Name, 3)
	_, err = m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: held[1].Owner})
	testkit.WantCode(t, "Allocate from a full pool again", err, errs.ResourceExhausted)
}

func testAllocateEmptyPool(t *testing.T, m *ipam.IPAM) {
	p := ipam.Pool{Name: "gw-only", Prefix: pfx("192.0.2.7/32"), Gateway: ip("192.0.2.7")}
	mustCreate(t, m, p)
	before := snapshot(t, m)
	_, err := m.Allocate(t.Context(), ipam.Request{Pool: p.Name, Owner: "vm-1"})
	testkit.WantCode(t, "Allocate from a pool of size 0", err, errs.ResourceExhausted)
	unchanged(t, m, before, "Allocate from a pool of size 0")
}

func testAllocateInvalidRequest(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	mustCreate(t, m, p)
	mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	before := snapshot(t, m)
	for _, req := range []ipam.Request{
		{Owner: "vm-2"},
		{Pool: p.Name},
		{Pool: p.Name, LocalIP: ip("10.0.0.1")},
		{},
	} {
		_, err := m.Allocate(t.Context(), req)
		testkit.WantCode(t, fmt.Sprintf("Allocate(%+v)", req), err, errs.InvalidArgument)
	}
	unchanged(t, m, before, "Allocate with an invalid request")
}

func testAllocateUnknownPool(t *testing.T, m *ipam.IPAM) {
	mustCreate(t, m, zoneA())
	before := snapshot(t, m)
	_, err := m.Allocate(t.Context(), ipam.Request{Pool: "zone-z", Owner: "vm-1"})
	testkit.WantCode(t, "Allocate from an unknown pool", err, errs.NotFound)
	unchanged(t, m, before, "Allocate from an unknown pool")
}

var releaseCases = []tcase{
	{"Idempotent", testReleaseIdempotent},
	{"Reusable", testReleaseReusable},
	{"OthersUntouched", testReleaseOthersUntouched},
	{"Invalid", testReleaseInvalid},
}

func testReleaseIdempotent(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := zoneA()
	mustCreate(t, m, p)
	a := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1", LocalIP: ip("10.0.0.1")})
	mustRelease(t, m, p.Name, "vm-1")
	_, err := m.Lookup(ctx, p.Name, "vm-1")
	testkit.WantCode(t, "Lookup after Release", err, errs.NotFound)
	_, err = m.LookupAddress(ctx, p.Name, a.Address)
	testkit.WantCode(t, "LookupAddress after Release", err, errs.NotFound)
	_, err = m.SetLocalIP(ctx, p.Name, "vm-1", ip("10.0.0.2"))
	testkit.WantCode(t, "SetLocalIP after Release", err, errs.NotFound)
	wantUsed(t, m, p.Name, 0)
	before := snapshot(t, m)
	mustRelease(t, m, p.Name, "vm-1")
	mustRelease(t, m, p.Name, "never-held")
	unchanged(t, m, before, "Release of what is not held")
	// A new allocation for the same owner starts afresh.
	b := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	if b.LocalIP.IsValid() {
		t.Errorf("allocation after Release kept the old LocalIP %v", b.LocalIP)
	}
}

func testReleaseReusable(t *testing.T, m *ipam.IPAM) {
	p := ipam.Pool{Name: "p30", Prefix: pfx("192.0.2.0/30")} // .1 and .2
	mustCreate(t, m, p)
	held := fill(t, m, p.Name, "vm-", 2)
	if len(held) != 2 {
		t.Fatalf("a /30 yielded %d addresses", len(held))
	}
	for round := range 3 {
		for _, h := range held {
			mustRelease(t, m, p.Name, h.Owner)
		}
		wantUsed(t, m, p.Name, 0)
		for i := range held {
			held[i] = mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: fmt.Sprintf("round%d-%d", round, i)})
		}
		got := []netip.Addr{held[0].Address, held[1].Address}
		slices.SortFunc(got, netip.Addr.Compare)
		if want := usable(p); !slices.Equal(got, want) {
			t.Fatalf("round %d: reallocating gave %v, want %v", round, got, want)
		}
		wantUsed(t, m, p.Name, 2)
	}
}

func testReleaseOthersUntouched(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	mustCreate(t, m, p)
	var held []ipam.Allocation
	for i := range 5 {
		held = append(held, mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: fmt.Sprint("vm-", i), LocalIP: ip(fmt.Sprint("10.0.0.", i+1))}))
	}
	mustRelease(t, m, p.Name, "vm-2")
	for i, a := range held {
		if i == 2 {
			continue
		}
		wantSameAlloc(t, mustLookup(t, m, p.Name, a.Owner), a, "Lookup of "+a.Owner+" after releasing vm-2")
		got, err := m.LookupAddress(t.Context(), p.Name, a.Address)
		if err != nil {
			t.Fatalf("LookupAddress(%v): %v", a.Address, err)
		}
		wantSameAlloc(t, got, a, "LookupAddress of "+a.Owner+" after releasing vm-2")
	}
	wantUsed(t, m, p.Name, 4)
}

func testReleaseInvalid(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	mustCreate(t, m, p)
	mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	before := snapshot(t, m)
	testkit.WantCode(t, "Release in an unknown pool", m.Release(t.Context(), "zone-z", "vm-1"), errs.NotFound)
	testkit.WantCode(t, `Release with pool ""`, m.Release(t.Context(), "", "vm-1"), errs.InvalidArgument)
	testkit.WantCode(t, `Release with owner ""`, m.Release(t.Context(), p.Name, ""), errs.InvalidArgument)
	unchanged(t, m, before, "rejected Release")
}

var lookupCases = []tcase{
	{"Hit", testLookupHit},
	{"Miss", testLookupMiss},
}

func testLookupHit(t *testing.T, m *ipam.IPAM) {
	p := zoneA()
	mustCreate(t, m, p)
	a := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1", LocalIP: ip("10.0.0.1")})
	b := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-2"})
	for _, want := range []ipam.Allocation{a, b} {
		wantSameAlloc(t, mustLookup(t, m, p.Name, want.Owner), want, "Lookup("+want.Owner+")")
		got, err := m.LookupAddress(t.Context(), p.Name, want.Address)
		if err != nil {
			t.Fatalf("LookupAddress(%v): %v", want.Address, err)
		}
		wantSameAlloc(t, got, want, fmt.Sprintf("LookupAddress(%v)", want.Address))
	}
}

func testLookupMiss(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := zoneA()
	mustCreate(t, m, p)
	mustCreate(t, m, zoneB())
	a := mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	mustAlloc(t, m, ipam.Request{Pool: zoneB().Name, Owner: "vm-b"})
	before := snapshot(t, m)

	_, err := m.Lookup(ctx, p.Name, "vm-2")
	testkit.WantCode(t, "Lookup of an owner without an address", err, errs.NotFound)
	_, err = m.Lookup(ctx, p.Name, "vm-b")
	testkit.WantCode(t, "Lookup of an owner of another pool", err, errs.NotFound)
	_, err = m.Lookup(ctx, "zone-z", "vm-1")
	testkit.WantCode(t, "Lookup in an unknown pool", err, errs.NotFound)
	_, err = m.Lookup(ctx, "", "vm-1")
	testkit.WantCode(t, `Lookup with pool ""`, err, errs.InvalidArgument)
	_, err = m.Lookup(ctx, p.Name, "")
	testkit.WantCode(t, `Lookup with owner ""`, err, errs.InvalidArgument)

	free := a.Address.Next()
	for free == a.Address || p.Excluded(free) {
		free = free.Next()
	}
	for _, addr := range []netip.Addr{
		free,                               // in the pool, not allocated
		ip("203.0.113.0"),                  // network address
		ip("203.0.113.1"),                  // gateway
		ip("203.0.113.5"),                  // reserved
		ip("203.0.113.255"),                // broadcast
		ip("192.0.2.10"),                   // outside the prefix
		ip("2001:db8::1"),                  // IPv6
		ip("::ffff:" + a.Address.String()), // IPv4-mapped form of a held address
	} {
		_, err = m.LookupAddress(ctx, p.Name, addr)
		testkit.WantCode(t, fmt.Sprintf("LookupAddress(%v)", addr), err, errs.NotFound)
	}
	_, err = m.LookupAddress(ctx, "zone-z", a.Address)
	testkit.WantCode(t, "LookupAddress in an unknown pool", err, errs.NotFound)
	_, err = m.LookupAddress(ctx, "", a.Address)
	testkit.WantCode(t, `LookupAddress with pool ""`, err, errs.InvalidArgument)
	_, err = m.LookupAddress(ctx, p.Name, netip.Addr{})
	testkit.WantCode(t, "LookupAddress of the zero address", err, errs.InvalidArgument)
	unchanged(t, m, before, "Lookup misses")
}

var setLocalIPCases = []tcase{
	{"Invalid", testSetLocalIPInvalid},
}

func testSetLocalIPInvalid(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	p := zoneA()
	mustCreate(t, m, p)
	mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: "vm-1", LocalIP: ip("10.0.0.1")})
	before := snapshot(t, m)
	l := ip("10.0.0.2")
	_, err := m.SetLocalIP(ctx, p.Name, "vm-2", l)
	testkit.WantCode(t, "SetLocalIP of an owner without an address", err, errs.NotFound)
	_, err = m.SetLocalIP(ctx, "zone-z", "vm-1", l)
	testkit.WantCode(t, "SetLocalIP in an unknown pool", err, errs.NotFound)
	_, err = m.SetLocalIP(ctx, "", "vm-1", l)
	testkit.WantCode(t, `SetLocalIP with pool ""`, err, errs.InvalidArgument)
	_, err = m.SetLocalIP(ctx, p.Name, "", l)
	testkit.WantCode(t, `SetLocalIP with owner ""`, err, errs.InvalidArgument)
	unchanged(t, m, before, "rejected SetLocalIP")
}

var allocationsCases = []tcase{
	{"OrderedByAddress", testAllocationsOrdered},
	{"EmptyAndMissing", testAllocationsEmptyAndMissing},
}

func testAllocationsOrdered(t *testing.T, m *ipam.IPAM) {
	p := ipam.Pool{Name: "p27", Prefix: pfx("192.0.2.0/27"), Gateway: ip("192.0.2.1")} // 29 usable
	mustCreate(t, m, p)
	r := rand.New(rand.NewPCG(1, 2))
	owners := map[string]bool{}
	for i := range 24 {
		o := fmt.Sprint("vm-", i)
		mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: o})
		owners[o] = true
	}
	// Release a shuffled half and allocate new owners, so that allocation
	// order and address order differ.
	perm := r.Perm(24)
	for _, i := range perm[:12] {
		o := fmt.Sprint("vm-", i)
		mustRelease(t, m, p.Name, o)
		delete(owners, o)
	}
	for i := range 15 {
		o := fmt.Sprint("new-", i)
		mustAlloc(t, m, ipam.Request{Pool: p.Name, Owner: o, LocalIP: ip(fmt.Sprint("10.0.0.", i+1))})
		owners[o] = true
	}
	as, err := m.Allocations(t.Context(), p.Name)
	if err != nil {
		t.Fatalf("Allocations: %v", err)
	}
	if len(as) != len(owners) {
		t.Fatalf("Allocations returned %d, want %d", len(as), len(owners))
	}
	for i, a := range as {
		if i > 0 && !as[i-1].Address.Less(a.Address) {
			t.Errorf("Allocations not ordered by address: %v before %v", as[i-1].Address, a.Address)
		}
		if !owners[a.Owner] {
			t.Errorf("Allocations lists %q, which holds nothing", a.Owner)
		}
		wantSameAlloc(t, a, mustLookup(t, m, p.Name, a.Owner), "Allocations entry of "+a.Owner)
	}
	wantUsed(t, m, p.Name, len(owners))
}

func testAllocationsEmptyAndMissing(t *testing.T, m *ipam.IPAM) {
	mustCreate(t, m, zoneA())
	as, err := m.Allocations(t.Context(), zoneA().Name)
	if err != nil || len(as) != 0 {
		t.Errorf("Allocations of an empty pool = %v, %v; want none", as, err)
	}
	_, err = m.Allocations(t.Context(), "zone-z")
	testkit.WantCode(t, "Allocations of an unknown pool", err, errs.NotFound)
	_, err = m.Allocations(t.Context(), "")
	testkit.WantCode(t, `Allocations("")`, err, errs.InvalidArgument)
}
