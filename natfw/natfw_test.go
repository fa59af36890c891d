package natfw_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
)

func validRule() natfw.Rule {
	return natfw.Rule{
		Owner:       "vsphere-prod/4213-aa",
		Public:      netip.MustParseAddr("203.0.113.10"),
		Local:       netip.MustParseAddr("10.0.0.10"),
		Ports:       []natfw.Port{{Protocol: natfw.TCP, Number: 22}},
		Sources:     []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Description: "web-01",
	}
}

func TestValidate(t *testing.T) {
	if err := validRule().Validate(); err != nil {
		t.Fatalf("valid rule: %v", err)
	}
	valid := []func(*natfw.Rule){
		func(r *natfw.Rule) { r.Ports = natfw.WindowsPorts() },
		func(r *natfw.Rule) { r.Ports = append(r.Ports, natfw.Port{Protocol: natfw.UDP, Number: 65535}) },
		func(r *natfw.Rule) { r.Sources = append(r.Sources, netip.MustParsePrefix("0.0.0.0/0")) },
		func(r *natfw.Rule) { r.Sources = []netip.Prefix{netip.MustParsePrefix("10.9.8.7/8")} }, // host bits: masked by Normalize
		func(r *natfw.Rule) { r.Description = "" },
	}
	for i, mod := range valid {
		r := validRule()
		mod(&r)
		if err := r.Validate(); err != nil {
			t.Errorf("valid variant %d: %v", i, err)
		}
	}

	invalid := map[string]func(*natfw.Rule){
		"no owner":    func(r *natfw.Rule) { r.Owner = "" },
		"no public":   func(r *natfw.Rule) { r.Public = netip.Addr{} },
		"IPv6 public": func(r *natfw.Rule) { r.Public = netip.MustParseAddr("2001:db8::10") },
		"IPv4-mapped public": func(r *natfw.Rule) {
			r.Public = netip.MustParseAddr("::ffff:203.0.113.10")
		},
		"no local":        func(r *natfw.Rule) { r.Local = netip.Addr{} },
		"IPv6 local":      func(r *natfw.Rule) { r.Local = netip.MustParseAddr("fd00::10") },
		"public == local": func(r *natfw.Rule) { r.Local = r.Public },
		"no ports":        func(r *natfw.Rule) { r.Ports = nil },
		"port 0":          func(r *natfw.Rule) { r.Ports = append(r.Ports, natfw.Port{Protocol: natfw.TCP}) },
		"bad protocol":    func(r *natfw.Rule) { r.Ports = []natfw.Port{{Protocol: "sctp", Number: 22}} },
		"empty protocol":  func(r *natfw.Rule) { r.Ports = []natfw.Port{{Number: 22}} },
		"upper protocol":  func(r *natfw.Rule) { r.Ports = []natfw.Port{{Protocol: "TCP", Number: 22}} },
		"no sources":      func(r *natfw.Rule) { r.Sources = nil },
		"zero source":     func(r *natfw.Rule) { r.Sources = append(r.Sources, netip.Prefix{}) },
		"IPv6 source":     func(r *natfw.Rule) { r.Sources = append(r.Sources, netip.MustParsePrefix("2001:db8::/32")) },
	}
	for name, mod := range invalid {
		t.Run(name, func(t *testing.T) {
			r := validRule()
			mod(&r)
			err := r.Validate()
			if got := errs.CodeOf(err); got != errs.InvalidArgument {
				t.Fatalf("Validate() = %v (code %v), want InvalidArgument", err, got)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	r := validRule()
	r.Ports = []natfw.Port{{natfw.UDP, 53}, {natfw.TCP, 5986}, {natfw.TCP, 22}, {natfw.TCP, 5986}, {natfw.TCP, 3389}}
	r.Sources = []netip.Prefix{
		netip.MustParsePrefix("198.51.100.7/24"),
		netip.MustParsePrefix("10.1.2.3/8"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("10.0.0.0/16"),
	}
	origPorts, origSources := slices.Clone(r.Ports), slices.Clone(r.Sources)

	n := r.Normalize()
	wantPorts := []natfw.Port{{natfw.TCP, 22}, {natfw.TCP, 3389}, {natfw.TCP, 5986}, {natfw.UDP, 53}}
	if !slices.Equal(n.Ports, wantPorts) {
		t.Errorf("ports = %v, want %v", n.Ports, wantPorts)
	}
	wantSources := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/16"),
		netip.MustParsePrefix("198.51.100.0/24"),
	}
	if !slices.Equal(n.Sources, wantSources) {
		t.Errorf("sources = %v, want %v", n.Sources, wantSources)
	}
	if n.Owner != r.Owner || n.Public != r.Public || n.Local != r.Local || n.Description != r.Description {
		t.Errorf("scalar fields changed: %+v", n)
	}
	// The input is untouched and the output does not alias it.
	if !slices.Equal(r.Ports, origPorts) || !slices.Equal(r.Sources, origSources) {
		t.Errorf("Normalize modified its receiver: %v %v", r.Ports, r.Sources)
	}
	n.Ports[0].Number = 9999
	n.Sources[0] = netip.MustParsePrefix("1.2.3.0/24")
	if !slices.Equal(r.Ports, origPorts) || !slices.Equal(r.Sources, origSources) {
		t.Errorf("Normalize result aliases its receiver")
	}
	// Idempotent.
	n2 := r.Normalize()
	if n3 := n2.Normalize(); !slices.Equal(n2.Ports, n3.Ports) || !slices.Equal(n2.Sources, n3.Sources) {
		t.Errorf("Normalize is not idempotent: %v / %v", n2, n3)
	}
}

func TestEqual(t *testing.T) {
	a := validRule()
	same := validRule()
	same.Ports = []natfw.Port{{natfw.TCP, 22}, {natfw.TCP, 22}}
	same.Sources = []netip.Prefix{netip.MustParsePrefix("198.51.100.99/24"), netip.MustParsePrefix("198.51.100.0/24")}
	if !a.Equal(same) || !same.Equal(a) {
		t.Errorf("rules that mean the same differ:\n%+v\n%+v", a, same)
	}
	if !a.Equal(a) {
		t.Error("rule differs from itself")
	}
	diff := map[string]func(*natfw.Rule){
		"owner":       func(r *natfw.Rule) { r.Owner += "x" },
		"public":      func(r *natfw.Rule) { r.Public = netip.MustParseAddr("203.0.113.11") },
		"local":       func(r *natfw.Rule) { r.Local = netip.MustParseAddr("10.0.0.11") },
		"description": func(r *natfw.Rule) { r.Description = "other" },
		"extra port":  func(r *natfw.Rule) { r.Ports = append(r.Ports, natfw.Port{natfw.TCP, 80}) },
		"protocol":    func(r *natfw.Rule) { r.Ports = []natfw.Port{{natfw.UDP, 22}} },
		"port number": func(r *natfw.Rule) { r.Ports = []natfw.Port{{natfw.TCP, 23}} },
		"source bits": func(r *natfw.Rule) { r.Sources = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/25")} },
		"extra source": func(r *natfw.Rule) {
			r.Sources = append(r.Sources, netip.MustParsePrefix("192.0.2.0/24"))
		},
	}
	for name, mod := range diff {
		b := validRule()
		mod(&b)
		if a.Equal(b) || b.Equal(a) {
			t.Errorf("%s: rules compare equal:\n%+v\n%+v", name, a, b)
		}
	}
}

func TestParsePort(t *testing.T) {
	good := map[string]natfw.Port{
		"tcp/22":    {natfw.TCP, 22},
		"udp/53":    {natfw.UDP, 53},
		"TCP/3389":  {natfw.TCP, 3389},
		"tcp/65535": {natfw.TCP, 65535},
		"udp/1":     {natfw.UDP, 1},
	}
	for s, want := range good {
		got, err := natfw.ParsePort(s)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	bad := []string{"", "tcp", "22", "/22", "tcp/", "tcp/0", "tcp/65536", "tcp/-1", "tcp/x", "sctp/22",
		"tcp/22/33", "tcp:22", " tcp/22", "tcp/ 22", "icmp/8"}
	for _, s := range bad {
		p, err := natfw.ParsePort(s)
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("ParsePort(%q) = %v, %v; want InvalidArgument", s, p, err)
		}
		if p != (natfw.Port{}) {
			t.Errorf("ParsePort(%q) returned %v with its error", s, p)
		}
	}
}

func TestPortString(t *testing.T) {
	cases := map[natfw.Port]string{
		{natfw.TCP, 22}:    "tcp/22",
		{natfw.UDP, 53}:    "udp/53",
		{natfw.TCP, 65535}: "tcp/65535",
	}
	for p, want := range cases {
		if got := p.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", p, got, want)
		}
	}
	// Every well-known port round-trips.
	for _, p := range slices.Concat(natfw.LinuxPorts(), natfw.WindowsPorts()) {
		q, err := natfw.ParsePort(p.String())
		if err != nil || q != p {
			t.Errorf("round trip of %v: %v, %v", p, q, err)
		}
	}
}

func TestWellKnownPorts(t *testing.T) {
	str := func(ps []natfw.Port) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.String())
		}
		return strings.Join(s, ",")
	}
	if got := str(natfw.LinuxPorts()); got != "tcp/22" {
		t.Errorf("LinuxPorts = %s", got)
	}
	if got := str(natfw.WindowsPorts()); got != "tcp/5985,tcp/5986,tcp/3389" {
		t.Errorf("WindowsPorts = %s", got)
	}
}
