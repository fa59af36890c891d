//go:build linux

package nftables

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/internal/testkit"
)

// setAddr adds and removes a /32 on the WAN interface inside the
// driver's namespace, idempotently, and changes nothing once the caller's
// context has ended.
func TestSetAddr(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root + network namespaces (nftables)", "run as root with iproute2; .ci/run does")
	}
	d := lockTestDriver(t)
	ns := strings.TrimPrefix(d.opts.NetNSPath, "/run/netns/")
	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ip("link", "add", "wan0", "type", "veth", "peer", "name", "wan0p")
	ip("link", "set", "wan0", "up")
	d.wan = "wan0"
	a := netip.MustParseAddr("203.0.113.10")
	has := func() bool { return strings.Contains(ip("-4", "addr", "show", "dev", "wan0"), a.String()+"/32") }
	ctx := context.Background()

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel2()
	<-expired.Done()
	testkit.WantCode(t, "setAddr (canceled)", d.setAddr(canceled, true, a), errs.Canceled)
	testkit.WantCode(t, "setAddr (deadline passed)", d.setAddr(expired, true, a), errs.DeadlineExceeded)
	if has() {
		t.Fatal("setAddr added the address on an ended context")
	}

	for range 2 {
		if err := d.setAddr(ctx, true, a); err != nil {
			t.Fatalf("setAddr add: %v", err)
		}
		if !has() {
			t.Fatal("address not on wan0 after add")
		}
	}
	short, cancel3 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel3()
	testkit.WantCode(t, "setAddr remove (canceled)", d.setAddr(canceled, false, a), errs.Canceled)
	if !has() {
		t.Fatal("setAddr removed the address on a canceled context")
	}
	for range 2 {
		if err := d.setAddr(short, false, a); err != nil {
			t.Fatalf("setAddr remove: %v", err)
		}
		if has() {
			t.Fatal("address still on wan0 after remove")
		}
	}

	d.wan = "nosuch0"
	if err := d.setAddr(ctx, true, a); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Fatalf("setAddr on a missing interface = %v, want an error naming it", err)
	}
}
