//go:build linux

package nftables_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/nftables"
)

// inNS runs fn on an OS thread inside the named network namespace and
// restores the thread afterwards (a thread that cannot be restored is
// left locked, so the runtime ends it). Sockets fn opens stay in that
// namespace.
func inNS(name string, fn func() error) error {
	h, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	defer h.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// topology is three namespaces on TEST-NET addresses:
//
//	client 203.0.113.2/24 (c0), plus 198.51.100.10 and .20 on lo
//	   |
//	router 203.0.113.1/24 (r0, the WAN side) | 192.0.2.1/24 (r1)
//	   |
//	server 192.0.2.2/24 (s0), the VM
type topology struct{ client, router, server string }

var (
	clientWAN  = netip.MustParseAddr("203.0.113.2")
	publicAddr = netip.MustParseAddr("203.0.113.10")
	serverAddr = netip.MustParseAddr("192.0.2.2")
	allowedSrc = netip.MustParseAddr("198.51.100.10")
	deniedSrc  = netip.MustParseAddr("198.51.100.20")
)

func newTopology(t *testing.T) topology {
	t.Helper()
	tp := topology{client: newNS(t, "cli"), router: newNS(t, "rtr"), server: newNS(t, "srv")}
	run(t, "ip", "link", "add", "c0", "netns", tp.client, "type", "veth", "peer", "name", "r0", "netns", tp.router)
	run(t, "ip", "link", "add", "s0", "netns", tp.server, "type", "veth", "peer", "name", "r1", "netns", tp.router)
	ipn := func(ns string, args ...string) { run(t, "ip", append([]string{"-n", ns}, args...)...) }
	ipn(tp.client, "addr", "add", "203.0.113.2/24", "dev", "c0")
	ipn(tp.client, "addr", "add", "198.51.100.10/32", "dev", "lo")
	ipn(tp.client, "addr", "add", "198.51.100.20/32", "dev", "lo")
	ipn(tp.client, "link", "set", "c0", "up")
	ipn(tp.client, "route", "add", "default", "via", "203.0.113.1")
	ipn(tp.router, "addr", "add", "203.0.113.1/24", "dev", "r0")
	ipn(tp.router, "addr", "add", "192.0.2.1/24", "dev", "r1")
	ipn(tp.router, "link", "set", "r0", "up")
	ipn(tp.router, "link", "set", "r1", "up")
	ipn(tp.router, "route", "add", "198.51.100.0/24", "via", "203.0.113.2")
	ipn(tp.server, "addr", "add", "192.0.2.2/24", "dev", "s0")
	ipn(tp.server, "link", "set", "s0", "up")
	ipn(tp.server, "route", "add", "default", "via", "192.0.2.1")
	run(t, "ip", "netns", "exec", tp.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return tp
}

// listen opens a TCP listener inside ns that answers every connection with
// a greeting and reports the peer's address on the returned channel.
func listen(t *testing.T, ns string, addr string) <-chan netip.AddrPort {
	t.Helper()
	var l net.Listener
	if err := inNS(ns, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	peers := make(chan netip.AddrPort, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
			_, _ = fmt.Fprintf(c, "hello from %s\n", l.Addr())
			_ = c.Close()
		}
	}()
	return peers
}

// hold opens a TCP listener inside ns whose connections stay open: they
// are handed over on the returned channel.
func hold(t *testing.T, ns string, addr string) <-chan net.Conn {
	t.Helper()
	var l net.Listener
	if err := inNS(ns, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	conns := make(chan net.Conn, 4)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			conns <- c
		}
	}()
	return conns
}

// exchange writes msg on from and returns what to reads of it within
// timeout ("" if nothing arrives).
func exchange(t *testing.T, from, to net.Conn, msg string, timeout time.Duration) string {
	t.Helper()
	if _, err := from.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = to.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, len(msg))
	n, _ := io.ReadFull(to, buf)
	return string(buf[:n])
}

// dial connects from src (an address of ns; invalid: any) to dst inside ns
// and returns the greeting the other side sent.
func dial(ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	var greeting string
	err := inNS(ns, func() error {
		d := net.Dialer{Timeout: timeout}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		c, err := d.Dial("tcp4", dst.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		greeting, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return strings.TrimSpace(greeting), err
}

// Long enough for a veth round trip by orders of magnitude; a dropped SYN
// never completes.
const dropTimeout = time.Second

func wantReach(t *testing.T, tp topology, src netip.Addr, port uint16, peers <-chan netip.AddrPort) {
	t.Helper()
	g, err := dial(tp.client, src, netip.AddrPortFrom(publicAddr, port), 5*time.Second)
	if err != nil {
		t.Fatalf("connect from %s to %s:%d: %v", src, publicAddr, port, err)
	}
	if !strings.HasPrefix(g, "hello from") {
		t.Fatalf("greeting = %q", g)
	}
	select {
	case p := <-peers:
		// The VM sees the real client: inbound traffic is not SNAT'd.
		if p.Addr() != src {
			t.Fatalf("server saw the connection from %s, want %s", p.Addr(), src)
		}
	default:
		t.Fatal("the server's listener did not see the connection")
	}
}

func wantDropped(t *testing.T, tp topology, src netip.Addr, port uint16, peers <-chan netip.AddrPort) {
	t.Helper()
	_, err := dial(tp.client, src, netip.AddrPortFrom(publicAddr, port), dropTimeout)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connect from %s to %s:%d = %v, want a timeout (dropped)", src, publicAddr, port, err)
	}
	select {
	case p := <-peers:
		t.Fatalf("the server accepted a connection from %s that must be dropped", p)
	default:
	}
}

func TestRealTraffic(t *testing.T) {
	tp := newTopology(t)
	ctx := context.Background()
	opts := nftables.Options{NetNSPath: nsPath(tp.router), WANInterface: "r0", ManagePublicAddress: true}
	fw := newFirewall(t, opts)

	ssh := listen(t, tp.server, "0.0.0.0:22")
	rdp := listen(t, tp.server, "0.0.0.0:3389")
	rule := natfw.Rule{
		Owner: "vm-1", Public: publicAddr, Local: serverAddr,
		Ports:       natfw.LinuxPorts(),
		Sources:     []netip.Prefix{netip.PrefixFrom(allowedSrc, 32)},
		Description: "traffic test",
	}

	// Before the rule: the public address is not even there.
	wantDropped(t, tp, allowedSrc, 22, ssh)

	if err := fw.EnsureNAT(ctx, rule); err != nil {
		t.Fatalf("EnsureNAT: %v", err)
	}
	if out := run(t, "ip", "-n", tp.router, "-4", "addr", "show", "dev", "r0"); !strings.Contains(out, publicAddr.String()+"/32") {
		t.Fatalf("public address not on r0:\n%s", out)
	}
	t.Run("AllowedSourceAndPort", func(t *testing.T) { wantReach(t, tp, allowedSrc, 22, ssh) })
	t.Run("DisallowedSource", func(t *testing.T) { wantDropped(t, tp, deniedSrc, 22, ssh) })
	t.Run("DisallowedPort", func(t *testing.T) { wantDropped(t, tp, allowedSrc, 3389, rdp) })
	t.Run("PrivateAddressFromOutside", func(t *testing.T) {
		// Straight to the VM's local address, bypassing the NAT: dropped.
		_, err := dial(tp.client, allowedSrc, netip.AddrPortFrom(serverAddr, 3389), dropTimeout)
		if err == nil {
			t.Fatal("reached the VM's local address from outside on a port the rule does not allow")
		}
	})
	t.Run("OutboundLeavesWithPublicAddress", func(t *testing.T) {
		seen := listen(t, tp.client, clientWAN.String()+":8080")
		g, err := dial(tp.server, netip.Addr{}, netip.AddrPortFrom(clientWAN, 8080), 5*time.Second)
		if err != nil || !strings.HasPrefix(g, "hello from") {
			t.Fatalf("VM's outbound connection: %q, %v", g, err)
		}
		if p := <-seen; p.Addr() != publicAddr {
			t.Fatalf("the client saw the VM's connection from %s, want the public address %s", p.Addr(), publicAddr)
		}
	})

	// A restarted driver rebuilds the same rule from the kernel.
	if err := fw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	fw2 := newFirewall(t, opts)
	got, err := fw2.List(ctx)
	if err != nil {
		t.Fatalf("List after restart: %v", err)
	}
	if len(got) != 1 || !got[0].Equal(rule) {
		t.Fatalf("List after restart = %+v, want [%+v]", got, rule.Normalize())
	}
	if _, err := fw.List(ctx); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("List on a closed firewall = %v, want FailedPrecondition", err)
	}
	wantReach(t, tp, allowedSrc, 22, ssh)

	// Widen the sources: the replacement takes effect at once.
	wider := rule
	wider.Sources = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	wider.Ports = append(slices.Clone(rule.Ports), natfw.Port{Protocol: natfw.TCP, Number: 2222})
	if err := fw2.EnsureNAT(ctx, wider); err != nil {
		t.Fatalf("EnsureNAT (wider): %v", err)
	}
	wantReach(t, tp, deniedSrc, 22, ssh)

	// A session that is open when the rule goes.
	held := hold(t, tp.server, "0.0.0.0:2222")
	var cc net.Conn
	if err := inNS(tp.client, func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: allowedSrc.AsSlice()}}
		cc, err = d.Dial("tcp4", netip.AddrPortFrom(publicAddr, 2222).String())
		return err
	}); err != nil {
		t.Fatalf("open a session: %v", err)
	}
	defer cc.Close()
	sc := <-held
	if got := exchange(t, sc, cc, "before\n", 5*time.Second); got != "before\n" {
		t.Fatalf("open session carried %q, want %q", got, "before\n")
	}

	if err := fw2.RemoveNAT(ctx, rule.Owner); err != nil {
		t.Fatalf("RemoveNAT: %v", err)
	}
	// The open session ends with the rule: what the VM sends no longer
	// reaches the client.
	if got := exchange(t, sc, cc, "after\n", dropTimeout); got != "" {
		t.Fatalf("the session outlived RemoveNAT: the client still received %q", got)
	}
	if out := run(t, "ip", "-n", tp.router, "-4", "addr", "show", "dev", "r0"); strings.Contains(out, publicAddr.String()) {
		t.Fatalf("public address still on r0 after RemoveNAT:\n%s", out)
	}
	wantDropped(t, tp, allowedSrc, 22, ssh)
	if rs, err := fw2.List(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("List after RemoveNAT = %v, %v", rs, err)
	}
}
