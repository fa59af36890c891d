//go:build linux

package nftables_test

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/nftables"
)

// readCounter counts the driver's debug lines for full reads of the table.
type readCounter struct{ n atomic.Int64 }

func (c *readCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *readCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "nftables table read from the kernel" {
		c.n.Add(1)
	}
	return nil
}
func (c *readCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *readCounter) WithGroup(string) slog.Handler      { return c }

// After its first read the driver follows every change, its own and
// anyone else's, from the kernel's notifications: no change makes it read
// the table again, and what it lists is what a new driver reads from the
// kernel.
func TestFollowsChangesWithoutReading(t *testing.T) {
	ns := newNS(t, "fol")
	reads := &readCounter{}
	fw := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns), Logger: slog.New(reads)})
	fw2 := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns)})
	other := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns), Table: "other"})
	ctx := context.Background()
	same := func(what string) {
		t.Helper()
		fresh := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns)})
		wantList(t, fw, mustList(t, fresh)...)
		if t.Failed() {
			t.Fatalf("after %s", what)
		}
	}

	a, b, c, d := testRule(1), testRule(2), testRule(3), testRule(4)
	mustEnsure(t, fw, a)
	start := reads.n.Load()
	if start == 0 {
		t.Fatal("the first EnsureNAT did not read the table")
	}
	mustEnsure(t, fw, b)
	mustEnsure(t, fw, c)
	wantList(t, fw, a, b, c)
	b.Ports = natfw.WindowsPorts()
	b.Sources = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("192.0.2.200/32")}
	mustEnsure(t, fw, b)
	if err := fw.RemoveNAT(ctx, c.Owner); err != nil {
		t.Fatal(err)
	}
	wantList(t, fw, a, b)
	same("own changes")

	mustEnsure(t, fw2, d)   // another instance on the table
	mustEnsure(t, other, c) // another table
	wantList(t, fw, a, b, d)
	same("another instance's change")

	// A kernel rule deleted by hand leaves a's rule incomplete.
	kc := kernelConn(t, ns)
	for _, r := range rulesOf(t, kc, nftables.DefaultTable, "postrouting") {
		if strings.Contains(string(r.UserData), a.Owner) {
			if err := kc.DelRule(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := kc.Flush(); err != nil {
		t.Fatal(err)
	}
	wantList(t, fw, b, d)
	same("a deletion by hand")
	mustEnsure(t, fw, a) // repaired
	wantList(t, fw, a, b, d)

	// The conflict check sees addresses others took.
	e := testRule(5)
	e.Local = d.Local
	if err := fw.EnsureNAT(ctx, e); err == nil {
		t.Fatal("EnsureNAT with another owner's local address succeeded")
	}
	if n := reads.n.Load() - start; n != 0 {
		t.Fatalf("%d full reads of the table after the first, want none", n)
	}

	var d2 *nftables.Driver
	if !fw2.As(&d2) {
		t.Fatal("As(*nftables.Driver) = false")
	}
	if err := d2.DeleteTable(ctx); err != nil {
		t.Fatal(err)
	}
	wantList(t, fw)
	mustEnsure(t, fw, a)
	wantList(t, fw, a)
	same("the table deleted and made again")
}
