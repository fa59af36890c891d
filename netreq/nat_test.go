//go:build linux

package netreq_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/nftables"
	"github.com/managedvm/managedvm/netreq"
	"github.com/managedvm/managedvm/report"
)

// natTopology is natfw/nftables' traffic topology, three namespaces on
// TEST-NET addresses: the orchestrator 203.0.113.2 (c0) | the router
// 203.0.113.1 (r0, WAN) and 192.0.2.1 (r1) | the VM 192.0.2.2 (s0).
type natTopology struct{ client, router, server string }

func newNATTopology(t *testing.T) natTopology {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root", "run the tests as root (network namespaces)")
	}
	mk := func(role string) string {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		name := fmt.Sprintf("netreq%s-%x", role, b)
		runCmd(t, "ip", "netns", "add", name)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
		runCmd(t, "ip", "-n", name, "link", "set", "lo", "up")
		return name
	}
	tp := natTopology{client: mk("cli"), router: mk("rtr"), server: mk("srv")}
	runCmd(t, "ip", "link", "add", "c0", "netns", tp.client, "type", "veth", "peer", "name", "r0", "netns", tp.router)
	runCmd(t, "ip", "link", "add", "s0", "netns", tp.server, "type", "veth", "peer", "name", "r1", "netns", tp.router)
	ipn := func(ns string, args ...string) { runCmd(t, "ip", append([]string{"-n", ns}, args...)...) }
	ipn(tp.client, "addr", "add", "203.0.113.2/24", "dev", "c0")
	ipn(tp.client, "link", "set", "c0", "up")
	ipn(tp.client, "route", "add", "default", "via", "203.0.113.1")
	ipn(tp.router, "addr", "add", "203.0.113.1/24", "dev", "r0")
	ipn(tp.router, "addr", "add", "192.0.2.1/24", "dev", "r1")
	ipn(tp.router, "link", "set", "r0", "up")
	ipn(tp.router, "link", "set", "r1", "up")
	ipn(tp.server, "addr", "add", "192.0.2.2/24", "dev", "s0")
	ipn(tp.server, "link", "set", "s0", "up")
	ipn(tp.server, "route", "add", "default", "via", "192.0.2.1")
	runCmd(t, "ip", "netns", "exec", tp.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return tp
}

func runCmd(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// nsDial connects from inside the named namespace.
func nsDial(t *testing.T, name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
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
		return d.DialContext(ctx, network, addr)
	}
}

// sshdInNS runs the real sshd inside ns on 0.0.0.0:22.
func sshdInNS(t *testing.T, ns string) {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "host_ed25519")
	runCmd(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	cfg := filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf("Port 22\nListenAddress 0.0.0.0\nHostKey %s\nPidFile %s\nUsePAM no\nPasswordAuthentication no\n", key, filepath.Join(dir, "pid"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll("/run/sshd", 0o755)
	cmd := exec.Command("ip", "netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(ready)
				for sc.Scan() {
				}
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("sshd did not start in the namespace")
	}
}

// The post-enrollment check: the VM's management ports through its
// public address and a real nftables NAT, from the orchestrator's side.
func TestProbeVMThroughNAT(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		testenv.Missing(t, "sshd", "apt-get install openssh-server")
	}
	tp := newNATTopology(t)
	ctx := context.Background()
	fw, err := nftables.New(&nftables.Options{NetNSPath: "/run/netns/" + tp.router, WANInterface: "r0",
		ManagePublicAddress: true, LockDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	sshdInNS(t, tp.server)
	public := netip.MustParseAddr("203.0.113.10")
	ports := []natfw.Port{{Protocol: natfw.TCP, Number: 22}, {Protocol: natfw.TCP, Number: 5986}}
	if err := fw.EnsureNAT(ctx, natfw.Rule{Owner: "vm-1", Public: public, Local: netip.MustParseAddr("192.0.2.2"),
		Ports: ports, Sources: []netip.Prefix{netip.MustParsePrefix("203.0.113.2/32")}}); err != nil {
		t.Fatal(err)
	}
	// 3389 is not in the rule: the router drops it.
	flows := netreq.VMFlows(public, append(ports, natfw.Port{Protocol: natfw.TCP, Number: 3389}))
	r := netreq.Probe(ctx, flows, &netreq.ProbeOptions{Dial: nsDial(t, tp.client), Timeout: 500 * time.Millisecond})
	if len(r.Checks) != 3 {
		t.Fatalf("rows:\n%s", r)
	}
	t.Logf("probe through the NAT:\n%s", r)
	want(t, r.Checks[0], report.Pass, `banner "SSH-2.0-OpenSSH`)
	if r.Checks[0].Subject != "203.0.113.10:22" {
		t.Errorf("subject %q", r.Checks[0].Subject)
	}
	want(t, r.Checks[1], report.Fail, "connection refused") // forwarded, nothing listens on the VM
	want(t, r.Checks[2], report.Fail, "no answer within 500ms")
	if !strings.Contains(r.Checks[2].Fix, "open TCP 3389") {
		t.Errorf("fix %q", r.Checks[2].Fix)
	}

	// The same through enroll's hook.
	check := netreq.Reachability(&netreq.ProbeOptions{Dial: nsDial(t, tp.client), Timeout: 500 * time.Millisecond})
	if err := check.Check(ctx, public, ports[:1]); err != nil {
		t.Errorf("Reachability of tcp/22: %v", err)
	}
	err = check.Check(ctx, public, []natfw.Port{{Protocol: natfw.TCP, Number: 22}, {Protocol: natfw.TCP, Number: 3389}})
	testkit.WantCode(t, "Reachability of tcp/3389", err, errs.Unavailable)
	if err == nil || !strings.Contains(err.Error(), "tcp/3389 on 203.0.113.10: no answer") || strings.Contains(err.Error(), "tcp/22") {
		t.Errorf("error %v does not name exactly tcp/3389", err)
	}
}
