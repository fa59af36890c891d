//go:build linux

package nftables

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/internal/testkit"
)

// forgetConnections ends with the caller's context: a context already
// done deletes nothing, and one that ends while entries are being dumped
// or deleted stops the work (the socket is closed under the read) with
// the context's code; the rest goes on the next call.
func TestForgetConnectionsHonoursContext(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root + network namespaces (nftables)", "run as root with iproute2; .ci/run does")
	}
	d := lockTestDriver(t)
	if d.ns == nil {
		t.Fatal("no throwaway namespace")
	}
	c, err := conntrack.Dial(&netlink.Config{NetNS: int(*d.ns)})
	if err != nil {
		t.Fatalf("conntrack.Dial: %v", err)
	}
	defer c.Close()

	public := netip.MustParseAddr("203.0.113.10")
	other := netip.MustParseAddr("203.0.113.11")
	const n = 3000
	for i := range n {
		src := netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i%250)})
		if err := c.Create(conntrack.NewFlow(17, 0, src, public, uint16(10000+i), 9, 120, 0)); err != nil {
			t.Fatalf("create conntrack entry %d: %v", i, err)
		}
	}
	// An entry of another public address stays whatever happens.
	if err := c.Create(conntrack.NewFlow(17, 0, netip.MustParseAddr("198.51.100.1"), other, 9999, 9, 120, 0)); err != nil {
		t.Fatalf("create conntrack entry: %v", err)
	}
	count := func(a netip.Addr) int {
		t.Helper()
		flows, err := c.Dump(nil)
		if err != nil {
			t.Fatalf("dump: %v", err)
		}
		k := 0
		for _, f := range flows {
			if tupleHas(f.TupleOrig, a) || tupleHas(f.TupleReply, a) {
				k++
			}
		}
		return k
	}
	if got := count(public); got != n {
		t.Fatalf("%d entries of %s in place, want %d", got, public, n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = d.forgetConnections(ctx, public)
	testkit.WantCode(t, "forgetConnections (canceled before)", err, errs.Canceled)
	if got := count(public); got != n {
		t.Fatalf("a canceled call deleted entries: %d left, want %d", got, n)
	}

	left := n
	for _, end := range []string{"cancel", "deadline"} {
		var want errs.Code
		switch end {
		case "cancel":
			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(3*time.Millisecond, cancel)
			want = errs.Canceled
		case "deadline":
			ctx, cancel = context.WithTimeout(context.Background(), 3*time.Millisecond)
			want = errs.DeadlineExceeded
		}
		start := time.Now()
		deleted, err := d.forgetConnections(ctx, public)
		took := time.Since(start)
		cancel()
		testkit.WantCode(t, "forgetConnections ("+end+" during the work)", err, want)
		left -= deleted
		if got := count(public); got == 0 || got != left {
			t.Fatalf("after the %s: %d entries left (deleted %d), want %d > 0", end, got, deleted, left)
		}
		if took > time.Second {
			t.Fatalf("forgetConnections returned %v after the %s", took, end)
		}
	}

	deleted, err := d.forgetConnections(context.Background(), public)
	if err != nil || deleted != left {
		t.Fatalf("forgetConnections = %d, %v; want %d, nil", deleted, err, left)
	}
	if got := count(public); got != 0 {
		t.Fatalf("%d entries of %s left", got, public)
	}
	if got := count(other); got != 1 {
		t.Fatalf("%d entries of %s left, want 1 (not ours to delete)", got, other)
	}
}
