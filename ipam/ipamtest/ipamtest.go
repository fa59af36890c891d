package ipamtest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
)

// Harness makes the driver under test.
type Harness interface {
	// NewDriver returns a new driver with no pools, used by one test case
	// only. The suite runs it through ipam.New. It registers any teardown
	// with t.Cleanup and fails t (t.Fatal) if it cannot make one.
	NewDriver(t *testing.T) ipam.Driver
}

// HarnessFunc adapts a function to a Harness.
type HarnessFunc func(t *testing.T) ipam.Driver

// NewDriver calls f(t).
func (f HarnessFunc) NewDriver(t *testing.T) ipam.Driver { return f(t) }

// Run runs the conformance suite against the drivers h makes, each
// through ipam.New. Each case is a subtest named after the behaviour it
// checks, e.g. "Allocate/Exhaustion" or "Limits/PoolName".
func Run(t *testing.T, h Harness) {
	groups := []struct {
		name  string
		cases []tcase
	}{
		{"Pool", poolCases},
		{"Allocate", allocateCases},
		{"Release", releaseCases},
		{"Lookup", lookupCases},
		{"SetLocalIP", setLocalIPCases},
		{"Allocations", allocationsCases},
		{"Context", contextCases},
		{"Concurrent", concurrentCases},
		{"Limits", limitCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					d := h.NewDriver(t)
					if d == nil {
						t.Fatal("harness returned a nil Driver")
					}
					c.run(t, ipam.New(d, nil))
				})
			}
		})
	}
	for _, g := range []struct {
		name  string
		cases []dcase
	}{
		{"Close", closeCases},
		{"Telemetry", telemetryCases},
	} {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					d := h.NewDriver(t)
					if d == nil {
						t.Fatal("harness returned a nil Driver")
					}
					c.run(t, d)
				})
			}
		})
	}
}

// dcase is a case that makes its own ipam.IPAM over the driver.
type dcase struct {
	name string
	run  func(t *testing.T, d ipam.Driver)
}

type tcase struct {
	name string
	run  func(t *testing.T, m *ipam.IPAM)
}

// Fixtures.

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func rng(from, to string) ipam.Range { return ipam.Range{From: ip(from), To: ip(to)} }

// zoneA is a /24 with a gateway and a reserved range: 245 usable addresses.
func zoneA() ipam.Pool {
	return ipam.Pool{
		Name:     "zone-a",
		Prefix:   pfx("203.0.113.0/24"),
		Gateway:  ip("203.0.113.1"),
		Reserved: []ipam.Range{rng("203.0.113.2", "203.0.113.9")},
	}
}

// zoneB is a plain /24 without gateway or reservations.
func zoneB() ipam.Pool {
	return ipam.Pool{Name: "zone-b", Prefix: pfx("198.51.100.0/24")}
}

// tiny is a /29 with gateway .1 and .2-.3 reserved: .4, .5 and .6 remain.
func tiny() ipam.Pool {
	return ipam.Pool{
		Name:     "tiny",
		Prefix:   pfx("192.0.2.0/29"),
		Gateway:  ip("192.0.2.1"),
		Reserved: []ipam.Range{rng("192.0.2.2", "192.0.2.3")},
	}
}

// Helpers. They take the test's context (t.Context()).

func mustCreate(t *testing.T, m *ipam.IPAM, p ipam.Pool) {
	t.Helper()
	if err := m.CreatePool(t.Context(), p); err != nil {
		t.Fatalf("CreatePool(%q %s): %v", p.Name, p.Prefix, err)
	}
}

func mustAlloc(t *testing.T, m *ipam.IPAM, req ipam.Request) ipam.Allocation {
	t.Helper()
	a, err := m.Allocate(t.Context(), req)
	if err != nil {
		t.Fatalf("Allocate(%+v): %v", req, err)
	}
	checkAlloc(t, m, req, a)
	return a
}

// checkAlloc checks an allocation Allocate returned for req.
func checkAlloc(t testing.TB, m *ipam.IPAM, req ipam.Request, a ipam.Allocation) {
	t.Helper()
	if a.Pool != req.Pool || a.Owner != req.Owner {
		t.Errorf("Allocate(%+v) returned pool %q owner %q", req, a.Pool, a.Owner)
	}
	if req.LocalIP.IsValid() && a.LocalIP != req.LocalIP {
		t.Errorf("Allocate(%+v) returned LocalIP %v, want %v", req, a.LocalIP, req.LocalIP)
	}
	if a.Created.IsZero() || a.Updated.Before(a.Created) {
		t.Errorf("Allocate(%+v): bad timestamps Created %v Updated %v", req, a.Created, a.Updated)
	}
}

func mustRelease(t *testing.T, m *ipam.IPAM, pool, owner string) {
	t.Helper()
	if err := m.Release(t.Context(), pool, owner); err != nil {
		t.Fatalf("Release(%q, %q): %v", pool, owner, err)
	}
}

func mustLookup(t *testing.T, m *ipam.IPAM, pool, owner string) ipam.Allocation {
	t.Helper()
	a, err := m.Lookup(t.Context(), pool, owner)
	if err != nil {
		t.Fatalf("Lookup(%q, %q): %v", pool, owner, err)
	}
	return a
}

func mustPool(t *testing.T, m *ipam.IPAM, name string) ipam.PoolInfo {
	t.Helper()
	pi, err := m.Pool(t.Context(), name)
	if err != nil {
		t.Fatalf("Pool(%q): %v", name, err)
	}
	return pi
}

func wantUsed(t *testing.T, m *ipam.IPAM, pool string, used int) {
	t.Helper()
	if pi := mustPool(t, m, pool); pi.Used != used {
		t.Errorf("Pool(%q).Used = %d, want %d", pool, pi.Used, used)
	}
}

// sameAlloc compares allocations (timestamps with time.Time.Equal).
func sameAlloc(a, b ipam.Allocation) bool {
	return a.Pool == b.Pool && a.Owner == b.Owner && a.Address == b.Address &&
		a.LocalIP == b.LocalIP && a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated)
}

func wantSameAlloc(t testing.TB, got, want ipam.Allocation, call string) {
	t.Helper()
	if !sameAlloc(got, want) {
		t.Errorf("%s = %s, want %s", call, fmtAlloc(got), fmtAlloc(want))
	}
}

func fmtAlloc(a ipam.Allocation) string {
	return fmt.Sprintf("{pool %q owner %q %v local %v created %s updated %s}", a.Pool, a.Owner,
		a.Address, a.LocalIP, a.Created.Format(time.RFC3339Nano), a.Updated.Format(time.RFC3339Nano))
}

func samePool(a, b ipam.Pool) bool {
	return a.Name == b.Name && a.Prefix == b.Prefix && a.Gateway == b.Gateway && slices.Equal(a.Reserved, b.Reserved)
}

// snapshot renders every pool and every allocation of m as text, so that
// two snapshots are equal exactly when nothing changed.
func snapshot(t *testing.T, m *ipam.IPAM) string {
	t.Helper()
	ctx := t.Context()
	pools, err := m.Pools(ctx)
	if err != nil {
		t.Fatalf("Pools: %v", err)
	}
	var b strings.Builder
	for _, p := range pools {
		fmt.Fprintf(&b, "pool %q %s gw %v reserved %v size %d used %d\n", p.Name, p.Prefix, p.Gateway, p.Reserved, p.Size, p.Used)
		as, err := m.Allocations(ctx, p.Name)
		if err != nil {
			t.Fatalf("Allocations(%q): %v", p.Name, err)
		}
		for _, a := range as {
			fmt.Fprintf(&b, "  %v owner %q local %v created %d updated %d\n", a.Address, a.Owner, a.LocalIP,
				a.Created.UnixNano(), a.Updated.UnixNano())
		}
	}
	return b.String()
}

// unchanged fails t if m's state differs from the snapshot before.
func unchanged(t *testing.T, m *ipam.IPAM, before, call string) {
	t.Helper()
	if after := snapshot(t, m); after != before {
		t.Errorf("%s was rejected but changed the state:\nbefore:\n%safter:\n%s", call, before, after)
	}
}

// usable lists the addresses of p that can be allocated, by walking the
// prefix (small prefixes only).
func usable(p ipam.Pool) []netip.Addr {
	var out []netip.Addr
	for a := p.Prefix.Addr(); a.IsValid() && p.Prefix.Contains(a); a = a.Next() {
		if !p.Excluded(a) {
			out = append(out, a)
		}
	}
	return out
}

// fill allocates owners prefix+"0", prefix+"1", ... until the pool is
// exhausted, and returns the allocations. It fails t on any other error or
// if the pool yields more than max addresses.
func fill(t *testing.T, m *ipam.IPAM, pool, prefix string, max int) []ipam.Allocation {
	t.Helper()
	var out []ipam.Allocation
	for i := 0; ; i++ {
		req := ipam.Request{Pool: pool, Owner: fmt.Sprintf("%s%d", prefix, i)}
		a, err := m.Allocate(t.Context(), req)
		if errs.CodeOf(err) == errs.ResourceExhausted {
			return out
		}
		if err != nil {
			t.Fatalf("Allocate(%+v): %v", req, err)
		}
		checkAlloc(t, m, req, a)
		out = append(out, a)
		if len(out) > max {
			t.Fatalf("pool %q yielded more than %d addresses", pool, max)
		}
	}
}

func canceledContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
