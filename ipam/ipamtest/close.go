package ipamtest

import (
	"io"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/ipam"
)

var closeCases = []dcase{
	{"CallsAfterClose", testCallsAfterClose},
}

// testCallsAfterClose: after Close every call is FailedPrecondition and
// reaches nothing; Close again returns nil.
func testCallsAfterClose(t *testing.T, d ipam.Driver) {
	m := ipam.New(d, nil)
	ctx := t.Context()
	a, b := zoneA(), zoneB()
	mustCreate(t, m, a)
	mustCreate(t, m, b)
	held := mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-1"})
	// A second IPAM over the same driver sees whether anything changed
	// (unless closing the first closes the driver).
	_, closer := d.(io.Closer)
	view := ipam.New(d, nil)
	before := snapshot(t, view)
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := map[string]func() error{
		"CreatePool":    func() error { return m.CreatePool(ctx, tiny()) },
		"DeletePool":    func() error { return m.DeletePool(ctx, b.Name) },
		"Pool":          func() error { _, err := m.Pool(ctx, a.Name); return err },
		"Pools":         func() error { _, err := m.Pools(ctx); return err },
		"Allocate":      func() error { _, err := m.Allocate(ctx, ipam.Request{Pool: a.Name, Owner: "vm-2"}); return err },
		"Release":       func() error { return m.Release(ctx, a.Name, "vm-1") },
		"SetLocalIP":    func() error { _, err := m.SetLocalIP(ctx, a.Name, "vm-1", ip("10.0.0.1")); return err },
		"Lookup":        func() error { _, err := m.Lookup(ctx, a.Name, "vm-1"); return err },
		"LookupAddress": func() error { _, err := m.LookupAddress(ctx, a.Name, held.Address); return err },
		"Allocations":   func() error { _, err := m.Allocations(ctx, a.Name); return err },
		// Even a call that is invalid or on a canceled context says Closed.
		"Allocate(invalid)": func() error { _, err := m.Allocate(ctx, ipam.Request{}); return err },
		"Pools(canceled)":   func() error { _, err := m.Pools(canceledContext(t)); return err },
	}
	for name, call := range calls {
		err := call()
		testkit.WantCode(t, name+" after Close", err, errs.FailedPrecondition)
		testkit.Bounded(t, name+" after Close", err, maxMessage)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close again: %v, want nil", err)
	}
	if !closer {
		unchanged(t, view, before, "calls after Close")
	}
}
