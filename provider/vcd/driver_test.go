package vcd_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	fakevcd "github.com/managedvm/managedvm/internal/fakes/vcd"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vcd"
	"github.com/managedvm/managedvm/report"
	"github.com/managedvm/managedvm/template"
)

func tenantCred(s *fakevcd.Server) vcd.Credentials {
	so := s.Options()
	return vcd.Credentials{Org: so.Org, User: so.User, Password: guest.NewSecret(so.Password)}
}

func spec(s *fakevcd.Server, key, name string) provider.ProvisionSpec {
	so := s.Options()
	return provider.ProvisionSpec{Key: key, Name: name, Template: so.Template, Zone: so.VDC, Network: provider.Network{Name: so.Network}}
}

func TestNewAndCloseOneSession(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	pp, err := vcd.New(context.Background(), s.URL(), tenantCred(s), &vcd.Options{CACertPEM: s.CACertPEM()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := pp.List(context.Background(), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.SessionsCreated(); n != 1 {
		t.Fatalf("64 concurrent Lists opened %d sessions", n)
	}
	if err := pp.Close(); err != nil {
		t.Fatal(err)
	}
	if n := s.ActiveSessions(); n != 0 {
		t.Fatalf("Close left %d sessions", n)
	}
}

func TestNewRefusals(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	ctx := context.Background()
	cred := tenantCred(s)
	cred.Password = guest.NewSecret("canary-pass-8812")
	_, err := vcd.New(ctx, s.URL(), cred, &vcd.Options{CACertPEM: s.CACertPEM()})
	testkit.MustCode(t, "wrong password", err, errs.Unauthenticated)
	if strings.Contains(err.Error(), "canary") {
		t.Fatalf("error shows the password: %v", err)
	}
	_, err = vcd.New(ctx, s.URL(), tenantCred(s), nil)
	testkit.MustCode(t, "unknown CA", err, errs.PermissionDenied)
	_, err = vcd.New(ctx, s.URL(), vcd.Credentials{Org: "acme"}, nil)
	testkit.MustCode(t, "no credentials", err, errs.InvalidArgument)
	_, err = vcd.New(ctx, s.URL(), tenantCred(s), &vcd.Options{CACertPEM: []byte("no pem")})
	testkit.MustCode(t, "bad PEM", err, errs.InvalidArgument)
	if s.ActiveSessions() != 0 {
		t.Fatal("a refused New left a session")
	}
}

func TestListPages(t *testing.T) {
	w := newWorld(t, nil, &vcd.Options{PageSize: 50})
	for i := range 120 {
		if _, err := w.s.AddVM(fakevcd.VMSpec{Name: fmt.Sprintf("bulk-%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	w.s.ResetCounts()
	vms, err := w.pp.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 120 {
		t.Fatalf("List gave %d VMs, want 120", len(vms))
	}
	// 120 VMs and the template VM: 121 records, 3 pages of 50.
	if n := w.s.Requests("GET /api/query"); n != 3 {
		t.Fatalf("List took %d query pages, want 3", n)
	}
	vm := vms[0]
	if vm.Zone != w.s.Options().VDC || vm.Attributes["vApp"] == "" || len(vm.Guest.IPs) != 1 || vm.CPUs != 1 || vm.MemoryMiB != 1024 {
		t.Fatalf("VM facts %+v", vm)
	}
}

func TestProvisionFailureLeavesNothing(t *testing.T) {
	var logs bytes.Buffer
	w := newWorld(t, &fakevcd.Options{TaskDuration: 5 * time.Millisecond}, &vcd.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	sp := spec(w.s, "k-fail", "fails")
	sp.Customization = &provider.Customization{MetaData: []byte("instance-id: iid-fails\n"), UserData: []byte("#cloud-config\npassword: canary-userdata-5521\n")}
	w.s.FailNextTask("vdcInstantiateVapp", "datastore on fire")
	_, err := w.pp.Provision(context.Background(), sp)
	testkit.MustCode(t, "failed instantiation", err, errs.FailedPrecondition)
	if !strings.Contains(err.Error(), "datastore on fire") {
		t.Fatalf("error %v does not say why", err)
	}
	if len(w.s.VApps()) != 0 {
		t.Fatalf("a failed Provision left %+v", w.s.VApps())
	}
	if strings.Contains(logs.String()+err.Error(), "canary") {
		t.Fatal("the customization script reached a log or the error")
	}
	// The key is free: the same spec now works.
	vm, err := w.pp.Provision(context.Background(), spec(w.s, "k-fail", "fails"))
	if err != nil || vm.Name != "fails" {
		t.Fatalf("retry: %+v %v", vm, err)
	}
}

func TestProvisionTimeoutLeavesNothing(t *testing.T) {
	w := newWorld(t, &fakevcd.Options{TaskDuration: 2 * time.Second}, nil)
	sp := spec(w.s, "k-slow", "slow")
	sp.Timeout = 200 * time.Millisecond
	_, err := w.pp.Provision(context.Background(), sp)
	testkit.MustCode(t, "timed-out instantiation", err, errs.DeadlineExceeded)
	if len(w.s.VApps()) != 0 {
		t.Fatalf("a timed-out Provision left %+v", w.s.VApps())
	}
	if w.s.RunningTasks() != 0 {
		t.Fatalf("%d tasks still run", w.s.RunningTasks())
	}
}

func TestProvisionIdempotentAcrossRestart(t *testing.T) {
	w := newWorld(t, &fakevcd.Options{TaskDuration: 5 * time.Millisecond}, nil)
	ctx := context.Background()
	sp := spec(w.s, "k-restart", "restart")
	sp.CPUs, sp.MemoryMiB, sp.PowerOn = 4, 4096, true
	sp.Customization = &provider.Customization{Hostname: "restart.example.org"}
	vm, err := w.pp.Provision(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	if vm.CPUs != 4 || vm.MemoryMiB != 4096 || vm.Power != provider.PoweredOn {
		t.Fatalf("VM %+v", vm)
	}
	info, _ := w.s.VM(vm.Name)
	if info.ComputerName != "restart" || !info.CustomizationEnabled || info.Network != w.s.Options().Network {
		t.Fatalf("customization %+v", info)
	}
	a, _ := w.s.VApp("restart")
	if len(a.Networks) != 1 || a.Networks[0].ParentNetwork != w.s.Options().Network {
		t.Fatalf("vApp networks %+v", a.Networks)
	}
	// A new process (another driver) with the same key gets the same VM.
	pp2, err := vcd.New(ctx, w.s.URL(), tenantCred(w.s), &vcd.Options{CACertPEM: w.s.CACertPEM(), TaskPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pp2.Close()
	w.s.ResetCounts()
	again, err := pp2.Provision(ctx, sp)
	if err != nil || again.ID != vm.ID {
		t.Fatalf("second Provision: %+v %v, want %s", again, err, vm.ID)
	}
	for k, n := range w.s.RequestCounts() {
		if !strings.HasPrefix(k, "GET ") && !strings.HasPrefix(k, "POST /cloudapi/1.0.0/sessions") {
			t.Errorf("the repeated Provision changed something: %s x%d", k, n)
		}
	}
	other := sp
	other.Key = "k-other"
	_, err = pp2.Provision(ctx, other)
	testkit.MustCode(t, "same name, other key", err, errs.AlreadyExists)
	if n := len(w.s.VApps()); n != 1 {
		t.Fatalf("%d vApps", n)
	}
}

func TestDestroyOrder(t *testing.T) {
	w := newWorld(t, &fakevcd.Options{TaskDuration: 5 * time.Millisecond}, nil)
	ctx := context.Background()
	sp := spec(w.s, "k-d", "doomed")
	sp.PowerOn = true
	vm, err := w.pp.Provision(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	w.s.ResetCounts()
	if err := w.pp.Destroy(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if w.s.Requests("POST /api/vApp/{id}/action/undeploy") != 1 || w.s.Requests("DELETE /api/vApp/{id}") != 1 {
		t.Fatalf("requests %v", w.s.RequestCounts())
	}
	if len(w.s.VApps()) != 0 {
		t.Fatal("vApp left")
	}
}

func TestPreflight(t *testing.T) {
	w := newWorld(t, nil, nil)
	r, err := w.pp.Preflight(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]report.Status{}
	for _, c := range r.Checks {
		if byID[c.ID] != report.Fail {
			byID[c.ID] = c.Status
		}
	}
	if byID["vcd.endpoint"] != report.Warn {
		t.Errorf("endpoint row %q: the fake is reached by IP address", byID["vcd.endpoint"])
	}
	for _, id := range []string{"vcd.api", "vcd.org", "vcd.role", "vcd.vdc", "vcd.nsx", "vcd.storagePolicy", "vcd.networks", "vcd.edgeGateway", "vcd.templates"} {
		if byID[id] != report.Pass {
			t.Errorf("%s: %q, want pass\n%s", id, byID[id], r)
		}
	}
	if byID["vcd.networkPool"] != report.Warn {
		t.Errorf("network pool row %q: the fake serves no networkPool query", byID["vcd.networkPool"])
	}

	// NSX-V, a template without tools, a user without the role.
	s := fakevcd.New(&fakevcd.Options{NetworkProvider: "NSX_V"})
	defer s.Close()
	if err := s.AddTemplate(s.Options().Catalog, "no-tools", "ubuntu64Guest", 1, 1024, false); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(s.Options().Org, "viewer", "Passw0rd-viewer", "vApp User"); err != nil {
		t.Fatal(err)
	}
	pp, err := vcd.New(context.Background(), s.URL(), vcd.Credentials{Org: s.Options().Org, User: "viewer", Password: guest.NewSecret("Passw0rd-viewer")}, &vcd.Options{CACertPEM: s.CACertPEM()})
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Close()
	r, err = pp.Preflight(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]report.Status{}
	for _, c := range r.Checks {
		if got[c.ID+"/"+c.Subject] != report.Fail {
			got[c.ID+"/"+c.Subject] = c.Status
		}
	}
	if got["vcd.nsx/"+s.Options().VDC] != report.Warn || got["vcd.templates/no-tools"] != report.Fail || got["vcd.role/viewer"] != report.Fail {
		t.Fatalf("rows %v\n%s", got, r)
	}
}

// Tokens that expire mid-use are renewed: one new login per expiry,
// however many calls saw the 401.
func TestSessionRenewedThroughProvider(t *testing.T) {
	s := fakevcd.New(&fakevcd.Options{TokenTTL: 150 * time.Millisecond, APIToken: "canary-api-token-3301"})
	defer s.Close()
	so := s.Options()
	pp, err := vcd.New(context.Background(), s.URL(), vcd.Credentials{Org: so.Org, APIToken: guest.NewSecret("canary-api-token-3301")},
		&vcd.Options{CACertPEM: s.CACertPEM()})
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Close()
	for range 3 {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := pp.Zones(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		time.Sleep(200 * time.Millisecond)
	}
	if n := s.SessionsCreated(); n < 3 || n > 4 {
		t.Fatalf("%d logins for three rounds across expiries, want 3 (one per round)", n)
	}
}

func TestFlows(t *testing.T) {
	w := newWorld(t, nil, nil)
	fs, ok := w.pp.Flows()
	if !ok || len(fs) != 1 {
		t.Fatalf("Flows %v %v", fs, ok)
	}
	u, _ := url.Parse(w.s.URL())
	if f := fs[0]; f.Host != u.Hostname() || len(f.Ports) != 1 || strconv.Itoa(int(f.Ports[0])) != u.Port() || !f.TLS {
		t.Fatalf("flow %+v for %s", f, w.s.URL())
	}
}

// TestProvisionAdminPassword: a given administrator password reaches
// VCD's guest customization (AdminPasswordAuto false), none lets VCD
// generate it, and the password shows in no log, error or span, even
// when VCD's failed task repeats it.
func TestProvisionAdminPassword(t *testing.T) {
	const pw = `canary-admin-pw-7731"x`
	var logs bytes.Buffer
	rec := obstest.New(t)
	w := newWorld(t, &fakevcd.Options{TaskDuration: 5 * time.Millisecond}, &vcd.Options{
		Logger:         slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		TracerProvider: rec.TP, MeterProvider: rec.MP})
	ctx := context.Background()

	sp := spec(w.s, "k-pw", "given-pw")
	sp.Customization = &provider.Customization{AdminPassword: guest.NewSecret(pw)}
	if _, err := w.pp.Provision(ctx, sp); err != nil {
		t.Fatal(err)
	}
	info, _ := w.s.VM("given-pw")
	if info.AdminPassword != pw || info.AdminPasswordAuto {
		t.Fatalf("VCD holds password auto=%v, not the given one", info.AdminPasswordAuto)
	}

	gen := spec(w.s, "k-gen", "generated-pw")
	gen.Customization = &provider.Customization{}
	if _, err := w.pp.Provision(ctx, gen); err != nil {
		t.Fatal(err)
	}
	if info, _ := w.s.VM("generated-pw"); !info.AdminPasswordAuto || info.AdminPassword == "" {
		t.Fatalf("without a password VCD did not generate one: auto=%v", info.AdminPasswordAuto)
	}

	fail := spec(w.s, "k-pw-fail", "fails-pw")
	fail.Customization = &provider.Customization{AdminPassword: guest.NewSecret(pw)}
	w.s.FailNextTask("vdcInstantiateVapp", "customization refused the password "+pw)
	_, err := w.pp.Provision(ctx, fail)
	testkit.MustCode(t, "failed instantiation", err, errs.FailedPrecondition)
	if len(w.s.VApps()) != 2 {
		t.Fatalf("the failed Provision left its vApp: %d vApps", len(w.s.VApps()))
	}
	seen := logs.String() + err.Error() + fmt.Sprint(rec.Spans())
	if strings.Contains(seen, "canary-admin-pw") {
		t.Fatalf("the administrator password reached a log, an error or a span: %v", err)
	}
}

// TestProvisionCustomizationScript: the spec's cloud-init documents reach
// VCD as template's VCD script (a shell script writing the NoCloud seed),
// not as the bare user-data VCD would run as a shell script; a seed over
// VCD's script limit is InvalidArgument before anything is made.
func TestProvisionCustomizationScript(t *testing.T) {
	w := newWorld(t, &fakevcd.Options{TaskDuration: 5 * time.Millisecond}, nil)
	ctx := context.Background()
	set := template.Settings{InstanceID: "iid-scripted", Hostname: "scripted",
		Users: []template.User{{Name: "ops", SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqsZC3SWcqTUQH2jzzK0wqN ops@example"}}}}
	c, err := template.CustomizationFor(set, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := &template.NoCloud{MetaData: c.MetaData, UserData: c.UserData, NetworkConfig: c.NetworkConfig}
	want, err := nc.VCDScript()
	if err != nil {
		t.Fatal(err)
	}
	sp := spec(w.s, "k-script", "scripted")
	sp.Customization = &c
	if _, err := w.pp.Provision(ctx, sp); err != nil {
		t.Fatal(err)
	}
	info, _ := w.s.VM("scripted")
	if info.CustomizationScript != string(want) || !strings.HasPrefix(info.CustomizationScript, "#!/bin/sh\n") {
		t.Fatalf("VCD holds the script\n%s\nwant\n%s", info.CustomizationScript, want)
	}

	big := c
	r := rand.New(rand.NewChaCha8([32]byte{9}))
	noise := make([]byte, 3000)
	for i := range noise {
		noise[i] = "0123456789abcdef"[r.IntN(16)]
	}
	big.UserData = append(append([]byte("#cloud-config\n# canary-big "), noise...), '\n')
	sp2 := spec(w.s, "k-script-big", "too-big")
	sp2.Customization = &big
	w.s.ResetCounts()
	_, err = w.pp.Provision(ctx, sp2)
	testkit.MustCode(t, "oversized customization", err, errs.InvalidArgument)
	if strings.Contains(err.Error(), "canary") {
		t.Fatalf("the error shows the user-data: %v", err)
	}
	if n := w.s.Requests("POST /api/vdc"); n != 0 {
		t.Fatalf("an oversized customization still instantiated (%d POSTs)", n)
	}
}

// TestDestroyRemovesNAT: Destroy goes undeploy, the VM's NAT rules on the
// VDC's edge gateway (with their firewall rules, IP sets and port
// profiles), delete; another address's rule stays.
func TestDestroyRemovesNAT(t *testing.T) {
	w := newWorld(t, &fakevcd.Options{TaskDuration: 5 * time.Millisecond}, nil)
	ctx := context.Background()
	sp := spec(w.s, "k-nat", "natted")
	sp.PowerOn = true
	vm, err := w.pp.Provision(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(vm.Guest.IPs) == 0 {
		t.Fatalf("VM without an address: %+v", vm)
	}
	fw := newEdge(t, w.s)
	mine := edgeRule(1)
	mine.Owner, mine.Local = "natted-web", vm.Guest.IPs[0]
	other := edgeRule(2)
	for _, r := range []natfw.Rule{mine, other} {
		if err := fw.EnsureNAT(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	gw := w.s.Options().EdgeGateway
	groups := len(w.s.FirewallGroups(gw))
	if err := w.pp.Destroy(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if len(w.s.VApps()) != 0 {
		t.Fatal("vApp left")
	}
	rs, err := fw.List(ctx)
	if err != nil || len(rs) != 1 || !rs[0].Equal(other) {
		t.Fatalf("rules after Destroy: %+v %v", rs, err)
	}
	if n, f, g := len(w.s.NATRules(gw)), len(w.s.FirewallRules(gw)), len(w.s.FirewallGroups(gw)); n != 1 || f != 1 || g != groups-2 {
		t.Fatalf("gateway after Destroy: %d NAT rules, %d firewall rules, %d IP sets (of %d)", n, f, g, groups)
	}
}
