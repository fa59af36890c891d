//go:build linux

package netreq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/netreq"
	"github.com/managedvm/managedvm/report"
)

// dropNS makes a network namespace whose loopback drops TCP to port 9
// (an nftables rule) and returns a dial function that connects from
// inside it.
func dropNS(t *testing.T) func(ctx context.Context, network, addr string) (net.Conn, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root", "run the tests as root (network namespaces)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		testenv.Missing(t, "nftables", "apt-get install nftables")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "netreq-" + hex.EncodeToString(b)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run("ip", "-n", name, "link", "set", "lo", "up")
	run("ip", "netns", "exec", name, "nft", "add table inet netreq; add chain inet netreq in { type filter hook input priority 0; }; add rule inet netreq in tcp dport 9 drop")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			return nil, err
		}
		defer func() { _ = netns.Set(orig) }()
		var d net.Dialer
		return d.DialContext(ctx, network, addr) // the socket stays in the namespace
	}
}

func TestProbeDropped(t *testing.T) {
	dial := dropNS(t)
	opts := &netreq.ProbeOptions{Dial: dial, Timeout: 300 * time.Millisecond}
	start := time.Now()
	c := one(t, flowTo(t, "dropped", netreq.TCP, "127.0.0.1:9"), opts)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v with a 300ms timeout", took)
	}
	want(t, c, report.Fail, "no answer within 300ms", "dropped")
	if !strings.Contains(c.Fix, "open TCP 9") {
		t.Errorf("fix %q", c.Fix)
	}
	// Port 10 in the same namespace is not dropped: refused, not a timeout.
	want(t, one(t, flowTo(t, "closed", netreq.TCP, "127.0.0.1:10"), opts), report.Fail, "connection refused")
}
