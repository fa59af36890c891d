package memfw_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/natfw/natfwtest"
)

func TestConformance(t *testing.T) {
	natfwtest.Run(t, natfwtest.Harness{
		New: func(*testing.T) natfw.Driver { return memfw.NewDriver() },
	})
}

func TestAllowed(t *testing.T) {
	fw := memfw.New(&memfw.Options{})
	var d *memfw.Driver
	if !fw.As(&d) {
		t.Fatal("As(*memfw.Driver) = false")
	}
	ctx := context.Background()
	addr := netip.MustParseAddr
	linux := natfw.Rule{
		Owner:   "linux",
		Public:  addr("203.0.113.10"),
		Local:   addr("10.0.0.10"),
		Ports:   natfw.LinuxPorts(),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("192.0.2.7/32")},
	}
	windows := natfw.Rule{
		Owner:   "windows",
		Public:  addr("203.0.113.11"),
		Local:   addr("10.0.0.11"),
		Ports:   natfw.WindowsPorts(),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/25")},
	}
	for _, r := range []natfw.Rule{linux, windows} {
		if err := fw.EnsureNAT(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	ssh := natfw.Port{Protocol: natfw.TCP, Number: 22}
	rdp := natfw.Port{Protocol: natfw.TCP, Number: 3389}
	cases := []struct {
		name     string
		src, dst netip.Addr
		port     natfw.Port
		want     netip.Addr // zero: dropped
	}{
		{"ssh from admins", addr("198.51.100.20"), linux.Public, ssh, linux.Local},
		{"ssh from jump box", addr("192.0.2.7"), linux.Public, ssh, linux.Local},
		{"ssh from next to jump box", addr("192.0.2.8"), linux.Public, ssh, netip.Addr{}},
		{"ssh from outside", addr("8.8.8.8"), linux.Public, ssh, netip.Addr{}},
		{"udp/22", addr("198.51.100.20"), linux.Public, natfw.Port{Protocol: natfw.UDP, Number: 22}, netip.Addr{}},
		{"rdp to linux", addr("198.51.100.20"), linux.Public, rdp, netip.Addr{}},
		{"rdp to windows", addr("198.51.100.20"), windows.Public, rdp, windows.Local},
		{"rdp from outside the /25", addr("198.51.100.200"), windows.Public, rdp, netip.Addr{}},
		{"winrm https", addr("198.51.100.1"), windows.Public, natfw.Port{Protocol: natfw.TCP, Number: 5986}, windows.Local},
		{"to the local address", addr("198.51.100.20"), linux.Local, ssh, netip.Addr{}},
		{"to an unknown address", addr("198.51.100.20"), addr("203.0.113.99"), ssh, netip.Addr{}},
		{"mapped addresses", netip.AddrFrom16(addr("198.51.100.20").As16()), netip.AddrFrom16(linux.Public.As16()), ssh, linux.Local},
		{"zero source", netip.Addr{}, linux.Public, ssh, netip.Addr{}},
	}
	for _, c := range cases {
		got, ok := d.Allowed(c.src, c.dst, c.port)
		if ok != c.want.IsValid() || got != c.want {
			t.Errorf("%s: Allowed(%v, %v, %v) = %v, %v; want %v", c.name, c.src, c.dst, c.port, got, ok, c.want)
		}
	}

	// Replacing and removing rules changes what is allowed.
	moved := linux
	moved.Public = addr("203.0.113.12")
	if err := fw.EnsureNAT(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Allowed(addr("198.51.100.20"), linux.Public, ssh); ok {
		t.Error("old public address still allowed after replace")
	}
	if got, ok := d.Allowed(addr("198.51.100.20"), moved.Public, ssh); !ok || got != linux.Local {
		t.Errorf("new public address: %v, %v", got, ok)
	}
	if err := fw.RemoveNAT(ctx, "linux"); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Allowed(addr("198.51.100.20"), moved.Public, ssh); ok {
		t.Error("removed rule still allowed")
	}
}
