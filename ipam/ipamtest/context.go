package ipamtest

import (
	"context"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/ipam"
)

var contextCases = []tcase{
	{"Canceled", testContextCanceled},
	{"DeadlineExceeded", testContextDeadlineExceeded},
}

func testContextCanceled(t *testing.T, m *ipam.IPAM) {
	a, b := zoneA(), zoneB()
	mustCreate(t, m, a)
	mustCreate(t, m, b) // empty: deletable
	held := mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-1", LocalIP: ip("10.0.0.1")})
	before := snapshot(t, m)
	ctx := canceledContext(t)

	calls := map[string]func() error{
		"CreatePool(new)": func() error {
			return m.CreatePool(ctx, ipam.Pool{Name: "new", Prefix: pfx("192.0.2.0/24")})
		},
		"DeletePool(empty)": func() error { return m.DeletePool(ctx, b.Name) },
		"Pool":              func() error { _, err := m.Pool(ctx, a.Name); return err },
		"Pools":             func() error { _, err := m.Pools(ctx); return err },
		"Allocate(new owner)": func() error {
			_, err := m.Allocate(ctx, ipam.Request{Pool: a.Name, Owner: "vm-2"})
			return err
		},
		"Allocate(holder, new LocalIP)": func() error {
			_, err := m.Allocate(ctx, ipam.Request{Pool: a.Name, Owner: "vm-1", LocalIP: ip("10.0.0.2")})
			return err
		},
		"Release(holder)": func() error { return m.Release(ctx, a.Name, "vm-1") },
		"SetLocalIP(holder)": func() error {
			_, err := m.SetLocalIP(ctx, a.Name, "vm-1", ip("10.0.0.3"))
			return err
		},
		"Lookup":        func() error { _, err := m.Lookup(ctx, a.Name, "vm-1"); return err },
		"LookupAddress": func() error { _, err := m.LookupAddress(ctx, a.Name, held.Address); return err },
		"Allocations":   func() error { _, err := m.Allocations(ctx, a.Name); return err },
	}
	for name, call := range calls {
		testkit.WantCode(t, name+" on a canceled context", call(), errs.Canceled)
		unchanged(t, m, before, name+" on a canceled context")
	}
}

func testContextDeadlineExceeded(t *testing.T, m *ipam.IPAM) {
	a := zoneA()
	mustCreate(t, m, a)
	before := snapshot(t, m)
	ctx, cancel := context.WithDeadline(t.Context(), time.Unix(1, 0))
	defer cancel()
	_, err := m.Allocate(ctx, ipam.Request{Pool: a.Name, Owner: "vm-1"})
	testkit.WantCode(t, "Allocate past the deadline", err, errs.DeadlineExceeded)
	testkit.WantCode(t, "CreatePool past the deadline", m.CreatePool(ctx, zoneB()), errs.DeadlineExceeded)
	unchanged(t, m, before, "calls past the deadline")
}
