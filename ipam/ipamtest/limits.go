package ipamtest

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/ipam"
)

var limitCases = []tcase{
	{"PoolName", testLimitPoolName},
	{"Owner", testLimitOwner},
	{"MaxLengths", testLimitMaxLengths},
	{"NamesAreBytes", testLimitNamesAreBytes},
	{"ReservedRanges", testLimitReservedRanges},
	{"LocalIPZone", testLimitLocalIPZone},
}

// maxMessage bounds every error message the limit cases provoke.
const maxMessage = 300

// badValue is a value outside a class's limits.
type badValue struct{ name, v string }

// badValues are the values outside the limits of a class of max bytes:
// empty, one byte too long, with a NUL, a newline, a DEL, invalid UTF-8,
// and 16 kB.
func badValues(max int) []badValue {
	return []badValue{
		{"empty", ""},
		{fmt.Sprintf("%d bytes", max+1), strings.Repeat("a", max+1)},
		{"NUL", "zone\x00a"},
		{"newline", "zone\na"},
		{"DEL", "zone\x7fa"},
		{"C1 control", "zone\u0085a"},
		{"invalid UTF-8", "zone\xff\xfea"},
		{"16 kB", strings.Repeat("z", 16<<10)},
	}
}

// rejected checks a call refused for a bad value: InvalidArgument, a
// bounded message, nothing changed.
func rejected(t *testing.T, m *ipam.IPAM, before, what string, err error) {
	t.Helper()
	testkit.WantCode(t, what, err, errs.InvalidArgument)
	testkit.Bounded(t, what, err, maxMessage)
	unchanged(t, m, before, what)
}

func testLimitPoolName(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	a := zoneA()
	mustCreate(t, m, a)
	held := mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-1"})
	before := snapshot(t, m)
	for _, bad := range badValues(limit.MaxName) {
		p := zoneB()
		p.Name = bad.v
		calls := map[string]func() error{
			"CreatePool": func() error { return m.CreatePool(ctx, p) },
			"DeletePool": func() error { return m.DeletePool(ctx, bad.v) },
			"Pool":       func() error { _, err := m.Pool(ctx, bad.v); return err },
			"Allocate": func() error {
				_, err := m.Allocate(ctx, ipam.Request{Pool: bad.v, Owner: "vm-2"})
				return err
			},
			"Release":    func() error { return m.Release(ctx, bad.v, "vm-1") },
			"SetLocalIP": func() error { _, err := m.SetLocalIP(ctx, bad.v, "vm-1", ip("10.0.0.1")); return err },
			"Lookup":     func() error { _, err := m.Lookup(ctx, bad.v, "vm-1"); return err },
			"LookupAddress": func() error {
				_, err := m.LookupAddress(ctx, bad.v, held.Address)
				return err
			},
			"Allocations": func() error { _, err := m.Allocations(ctx, bad.v); return err },
		}
		for name, call := range calls {
			rejected(t, m, before, fmt.Sprintf("%s with a pool name (%s)", name, bad.name), call())
		}
	}
}

func testLimitOwner(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	a := zoneA()
	mustCreate(t, m, a)
	mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-1"})
	before := snapshot(t, m)
	for _, bad := range badValues(limit.MaxKey) {
		calls := map[string]func() error{
			"Allocate": func() error {
				_, err := m.Allocate(ctx, ipam.Request{Pool: a.Name, Owner: bad.v, LocalIP: ip("10.0.0.9")})
				return err
			},
			"Release":    func() error { return m.Release(ctx, a.Name, bad.v) },
			"SetLocalIP": func() error { _, err := m.SetLocalIP(ctx, a.Name, bad.v, ip("10.0.0.1")); return err },
			"Lookup":     func() error { _, err := m.Lookup(ctx, a.Name, bad.v); return err },
		}
		for name, call := range calls {
			rejected(t, m, before, fmt.Sprintf("%s with an owner (%s)", name, bad.name), call())
		}
	}
}

// testLimitMaxLengths: a pool name of exactly MaxName bytes and an owner
// of exactly MaxKey bytes (multi-byte characters included) work in every
// call, and come back unchanged.
func testLimitMaxLengths(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	for _, c := range []struct{ name, pool, owner string }{
		{"ASCII", strings.Repeat("p", limit.MaxName), strings.Repeat("o", limit.MaxKey)},
		{"multi-byte", strings.Repeat("é", limit.MaxName/2), "ö" + strings.Repeat("€", (limit.MaxKey-2)/3) + ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.pool) != limit.MaxName || len(c.owner) > limit.MaxKey || len(c.owner) < limit.MaxKey-2 {
				t.Fatalf("fixture: pool %d bytes, owner %d bytes", len(c.pool), len(c.owner))
			}
			p := zoneB()
			p.Name = c.pool
			mustCreate(t, m, p)
			if pi := mustPool(t, m, c.pool); pi.Name != c.pool {
				t.Errorf("Pool: name %q, want %q", pi.Name, c.pool)
			}
			a := mustAlloc(t, m, ipam.Request{Pool: c.pool, Owner: c.owner, LocalIP: ip("10.0.0.1")})
			wantSameAlloc(t, mustLookup(t, m, c.pool, c.owner), a, "Lookup")
			b, err := m.LookupAddress(ctx, c.pool, a.Address)
			if err != nil {
				t.Fatalf("LookupAddress: %v", err)
			}
			wantSameAlloc(t, b, a, "LookupAddress")
			if _, err := m.SetLocalIP(ctx, c.pool, c.owner, ip("10.0.0.2")); err != nil {
				t.Fatalf("SetLocalIP: %v", err)
			}
			as, err := m.Allocations(ctx, c.pool)
			if err != nil || len(as) != 1 || as[0].Owner != c.owner || as[0].Pool != c.pool {
				t.Fatalf("Allocations = %+v, %v", as, err)
			}
			mustRelease(t, m, c.pool, c.owner)
			if err := m.DeletePool(ctx, c.pool); err != nil {
				t.Fatalf("DeletePool: %v", err)
			}
		})
	}
}

// testLimitNamesAreBytes: names are compared and ordered as bytes, in
// every driver: no case folding, no Unicode normalization, no collation.
func testLimitNamesAreBytes(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	names := []string{"zone-b", "Zone-B", "zone-ä", "zone-a\u0308", "zone b", "zone-a", "zone-\U0001F600"}
	for i, n := range names {
		mustCreate(t, m, ipam.Pool{Name: n, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 24)})
	}
	ps, err := m.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Name)
	}
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Pools in order %q, want (bytewise) %q", got, want)
	}
	for i, n := range names {
		a := mustAlloc(t, m, ipam.Request{Pool: n, Owner: "vm"})
		if want := netip.AddrFrom4([4]byte{10, byte(i), 0, 1}); a.Address != want {
			t.Errorf("Allocate in %q gave %v, want %v (another pool's?)", n, a.Address, want)
		}
	}
	// Owners, too, are bytes.
	x := mustAlloc(t, m, ipam.Request{Pool: names[0], Owner: "VM"})
	y := mustAlloc(t, m, ipam.Request{Pool: names[0], Owner: "vm"})
	if x.Address == y.Address {
		t.Errorf("owners %q and %q share %v", "VM", "vm", x.Address)
	}
}

// testLimitReservedRanges: a pool may list up to ipam.MaxReserved reserved
// ranges; one more is InvalidArgument.
func testLimitReservedRanges(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	mk := func(name string, n int) ipam.Pool {
		p := ipam.Pool{Name: name, Prefix: pfx("10.0.0.0/16")}
		for i := range n {
			a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 6), byte(i&63) * 4})
			p.Reserved = append(p.Reserved, ipam.Range{From: a, To: a})
		}
		return p
	}
	full := mk("full", ipam.MaxReserved)
	mustCreate(t, m, full)
	if pi := mustPool(t, m, full.Name); !samePool(pi.Pool, full) || pi.Size != full.Size() {
		t.Errorf("Pool(full): %d reserved ranges, size %d; want %d and %d", len(pi.Reserved), pi.Size, ipam.MaxReserved, full.Size())
	}
	before := snapshot(t, m)
	rejected(t, m, before, "CreatePool with one reserved range too many", m.CreatePool(ctx, mk("over", ipam.MaxReserved+1)))
}

// testLimitLocalIPZone: a local address with an IPv6 zone is refused.
func testLimitLocalIPZone(t *testing.T, m *ipam.IPAM) {
	ctx := t.Context()
	a := zoneA()
	mustCreate(t, m, a)
	mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-1", LocalIP: ip("10.0.0.1")})
	before := snapshot(t, m)
	zoned := ip("fe80::1%eth0")
	_, err := m.Allocate(ctx, ipam.Request{Pool: a.Name, Owner: "vm-2", LocalIP: zoned})
	rejected(t, m, before, "Allocate with a zoned LocalIP", err)
	_, err = m.Allocate(ctx, ipam.Request{Pool: a.Name, Owner: "vm-1", LocalIP: zoned})
	rejected(t, m, before, "Allocate (holder) with a zoned LocalIP", err)
	_, err = m.SetLocalIP(ctx, a.Name, "vm-1", zoned)
	rejected(t, m, before, "SetLocalIP with a zoned LocalIP", err)
	// IPv6 local addresses without a zone, IPv4-mapped ones included,
	// are kept as given.
	for _, v6 := range []netip.Addr{ip("2001:db8::7"), ip("::ffff:10.0.0.7")} {
		got, err := m.SetLocalIP(ctx, a.Name, "vm-1", v6)
		if err != nil || got.LocalIP != v6 {
			t.Fatalf("SetLocalIP(%v) = %+v, %v", v6, got, err)
		}
		if l := mustLookup(t, m, a.Name, "vm-1"); l.LocalIP != v6 {
			t.Errorf("Lookup after SetLocalIP(%v): LocalIP %v", v6, l.LocalIP)
		}
	}
}
