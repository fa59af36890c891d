package netreq_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/netreq"
	"github.com/managedvm/managedvm/notify/smtpnotify"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
	"github.com/managedvm/managedvm/report"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func testConfig() netreq.Config {
	vc := memprovider.New(&memprovider.Options{Flows: []provider.Flow{{
		Service: "Service Orchestration", Destination: "VMware vCenter Server", Host: "vc.example", Ports: []uint16{443}, TLS: true, Why: "vSphere API",
	}}})
	silent := provider.New(struct{ provider.Driver }{memprovider.New(nil)}, nil)
	return netreq.Config{
		Providers: map[string]*provider.Provider{"vc1": vc.Provider(), "other": silent},
		Policy:    enroll.Policy{Pool: "public", ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		Profiles: map[string]enroll.Policy{"gold": {Families: []guest.OSFamily{guest.Linux},
			Ports: map[guest.OSFamily][]natfw.Port{guest.Linux: {{Protocol: natfw.TCP, Number: 2222}}},
			Pool:  "gold", PoolByZone: map[string]string{"z2": "gold-z2"}}},
		Relay:     &smtpnotify.Relay{Addr: "smtp.example:587", Security: smtpnotify.STARTTLS},
		LDAP:      []string{"ldap://dc1.example", "ldaps://dc2.example:3269"},
		PortalURL: "https://portal.example/",
	}
}

func TestDerive(t *testing.T) {
	m, err := netreq.Derive(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]netreq.Flow{}
	for _, f := range m.Flows {
		if _, dup := got[f.ID]; dup {
			t.Errorf("duplicate flow ID %s", f.ID)
		}
		got[f.ID] = f
	}
	want := []struct {
		id        string
		host      string
		port      uint16
		kind      netreq.Kind
		checkable bool
	}{
		{"provider.vc1.0", "vc.example", 443, netreq.HTTPS, true},
		{"vm.default.linux.tcp/22", "", 22, netreq.SSH, false},
		{"vm.default.windows.tcp/5985", "", 5985, netreq.WinRMHTTP, false},
		{"vm.default.windows.tcp/5986", "", 5986, netreq.WinRMHTTPS, false},
		{"vm.default.windows.tcp/3389", "", 3389, netreq.RDP, false},
		{"vm.gold.linux.tcp/2222", "", 2222, netreq.TCP, false},
		{"notify.smtp", "smtp.example", 587, netreq.SMTP, true},
		{"auth.ldap.0", "dc1.example", 389, netreq.LDAP, true},
		{"auth.ldap.1", "dc2.example", 3269, netreq.LDAPS, true},
		{"agent.443", "portal.example", 443, netreq.HTTPS, false},
		{"agent.5671", "portal.example", 5671, netreq.AMQPS, false},
	}
	if len(m.Flows) != len(want) {
		t.Errorf("%d flows, want %d: %+v", len(m.Flows), len(want), m.Flows)
	}
	for _, w := range want {
		f, ok := got[w.id]
		if !ok {
			t.Errorf("no flow %s", w.id)
			continue
		}
		if f.Host != w.host || len(f.Ports) != 1 || f.Ports[0] != w.port || f.Kind != w.kind || f.Checkable != w.checkable || !f.Required {
			t.Errorf("flow %s = %+v, want host %q port %d kind %s checkable %v", w.id, f, w.host, w.port, w.kind, w.checkable)
		}
	}
	if g := got["vm.gold.linux.tcp/2222"].Destination; !strings.Contains(g, `"gold"`) || !strings.Contains(g, `zone "z2": "gold-z2"`) {
		t.Errorf("gold destination %q does not name its pools", g)
	}
	if s := got["vm.default.linux.tcp/22"].Source; !strings.Contains(s, "allowed from 198.51.100.0/24") {
		t.Errorf("default profile's source %q does not name the management sources", s)
	}
	if _, ok := got["vm.gold.windows.tcp/3389"]; ok {
		t.Error("the Linux-only profile has Windows rows")
	}
	if len(m.Silent) != 1 || m.Silent[0] != "other" {
		t.Errorf("Silent = %v, want [other]", m.Silent)
	}
	r := m.Report()
	if len(r.Checks) != len(m.Flows)+1 || r.Status() != report.Warn || r.Warnings()[0].Subject != "other" {
		t.Errorf("report:\n%s", r)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back netreq.Matrix
	if err := json.Unmarshal(b, &back); err != nil || len(back.Flows) != len(m.Flows) || back.Flows[0].ID != m.Flows[0].ID {
		t.Errorf("JSON round trip: %v %s", err, b)
	}
	if !strings.Contains(string(b), `"ports":[443]`) || !strings.Contains(string(b), `"silent_providers":["other"]`) {
		t.Errorf("JSON %s", b)
	}
}

func TestDeriveSMTPS(t *testing.T) {
	m, err := netreq.Derive(netreq.Config{Relay: &smtpnotify.Relay{Addr: "[2001:db8::25]:465", Security: smtpnotify.ImplicitTLS, ServerName: "mail.example"}})
	if err != nil {
		t.Fatal(err)
	}
	var f *netreq.Flow
	for i := range m.Flows {
		if m.Flows[i].ID == "notify.smtp" {
			f = &m.Flows[i]
		}
	}
	if f == nil || f.Kind != netreq.SMTPS || f.Host != "2001:db8::25" || f.ServerName != "mail.example" || f.Ports[0] != 465 {
		t.Fatalf("relay flow %+v", f)
	}
}

func TestDeriveInvalid(t *testing.T) {
	for name, cfg := range map[string]netreq.Config{
		"relay without port": {Relay: &smtpnotify.Relay{Addr: "smtp.example"}},
		"relay port 0":       {Relay: &smtpnotify.Relay{Addr: "smtp.example:0"}},
		"relay no host":      {Relay: &smtpnotify.Relay{Addr: ":25"}},
		"ldap scheme":        {LDAP: []string{"http://dc.example"}},
		"ldap port":          {LDAP: []string{"ldap://dc.example:99999"}},
		"portal scheme":      {PortalURL: "ftp://portal.example"},
		"long value":         {LDAP: []string{"ldap://" + strings.Repeat("\x00", 16<<10)}},
		"postgres scheme":    {PostgreSQL: []string{"mysql://u:canary-Pa55@db.example/x"}},
		"postgres port":      {PostgreSQL: []string{"postgres://u:canary-Pa55@db.example:70000/x"}},
	} {
		_, err := netreq.Derive(cfg)
		if err != nil && strings.Contains(err.Error(), "canary-Pa55") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
		testkit.WantCode(t, name, err, errs.InvalidArgument)
		testkit.Bounded(t, name, err, 300)
	}
}
