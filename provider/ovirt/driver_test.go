package ovirt_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	fakeovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/ovirt"
	"github.com/managedvm/managedvm/report"
	"github.com/managedvm/managedvm/template"
)

var bg = context.Background()

// One provider instance logs in once for 64 concurrent calls, and its
// Close revokes the token at the SSO.
func TestSessionSharedAndLoggedOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	if _, err := w.s.AddVMs("load", 30); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.pp.List(bg, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := w.s.Stats().Logins; n != 1 {
		t.Fatalf("logins = %d, want 1", n)
	}
	if err := w.pp.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.s.Stats(); st.Logouts != 1 || st.EmptyLogouts != 0 {
		t.Fatalf("after Close: %+v, want one logout revoking the token", st)
	}
}

// The password never shows in logs or errors, also when it is refused.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	const canary = "canary-Pa55-9f3e"
	s := fakeovirt.New(&fakeovirt.Options{Password: canary, Step: 10 * time.Millisecond})
	defer s.Close()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, err := ovirt.New(bg, s.URL(), s.User(), guest.NewSecret(canary+"x"), &ovirt.Options{CACertPEM: s.CACertPEM(), Logger: log})
	testkit.WantCode(t, "wrong password", err, errs.Unauthenticated)
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("password in error %v", err)
	}
	pp, err := ovirt.New(bg, s.URL(), s.User(), guest.NewSecret(canary), &ovirt.Options{CACertPEM: s.CACertPEM(), Logger: log, StepPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var errsSeen []string
	vm, err := pp.Provision(bg, provider.ProvisionSpec{Key: "k1", Name: "canary-vm", Template: "centos9", Zone: zoneName, PowerOn: true,
		Customization: &provider.Customization{UserData: []byte("#cloud-config\n")}})
	if err != nil {
		t.Fatal(err)
	}
	s.ExpireTokens() // a renewal
	for _, f := range []func() error{
		func() error { _, err := pp.Get(bg, "no-such-vm"); return err },
		func() error { return pp.PowerOff(bg, vm.ID) },
		func() error { return pp.Destroy(bg, vm.ID) },
	} {
		if err := f(); err != nil {
			errsSeen = append(errsSeen, err.Error())
		}
	}
	_ = pp.Close()
	all := buf.String() + strings.Join(errsSeen, "\n")
	if strings.Contains(all, canary) || strings.Contains(all, "Bearer") {
		t.Fatalf("a secret leaked:\n%s", all)
	}
	if len(errsSeen) == 0 {
		t.Fatal("no error was produced to inspect")
	}
}

func TestInventoryFacts(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	ip := netip.MustParseAddr("192.0.2.44")
	id, err := w.s.AddVM(fakeovirt.VMSpec{Name: "facts", Status: "up", IPs: []netip.Addr{ip}, FQDN: "facts.example"})
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := w.s.AddVM(fakeovirt.VMSpec{Name: "quiet", Status: "up"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.s.SetAgent(quiet, false, "", nil); err != nil {
		t.Fatal(err)
	}
	w.s.ResetCalls()
	vms, err := w.pp.List(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := w.s.Calls()["GET /vms/{id}/reporteddevices"]; n != 0 {
		t.Fatalf("%d reported-devices calls, want 0 (follow inlines them)", n)
	}
	i := slices.IndexFunc(vms, func(v provider.VM) bool { return v.ID == id })
	if i < 0 {
		t.Fatal("VM not listed")
	}
	vm := vms[i]
	if vm.Power != provider.PoweredOn || vm.Zone != zoneName || vm.Guest.Hostname != "facts.example" ||
		!slices.Equal(vm.Guest.IPs, []netip.Addr{ip}) || vm.Guest.Family != guest.Linux || !vm.Guest.ToolsRunning ||
		vm.Attributes["status"] != "up" || vm.Attributes["datacenter"] != "Default" || vm.CPUs == 0 || vm.MemoryMiB == 0 {
		t.Fatalf("VM facts %+v", vm)
	}
	q, err := w.pp.Get(bg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Guest.IPs) != 0 || q.Guest.ToolsRunning {
		t.Fatalf("a VM whose agent has not reported: %+v", q)
	}
}

// Pages shift when VMs are removed while List reads them: a VM moved into
// a page already read is not dropped, and none is listed twice.
func TestListPagesShift(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, &ovirt.Options{PageSize: 10})
	ids, err := w.s.AddVMs("shift", 45)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	w.p.SetAfterPage(func(pass, page int) {
		if pass == 0 && page == 1 {
			once.Do(func() {
				// Remove five VMs of the first page: the second page
				// now starts five VMs later.
				for _, id := range ids[:5] {
					if err := w.s.RemoveVM(id); err != nil {
						t.Error(err)
					}
				}
				if _, err := w.s.AddVM(fakeovirt.VMSpec{Name: "aaa-added"}); err != nil {
					t.Error(err)
				}
			})
		}
	})
	vms, err := w.pp.List(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, vm := range vms {
		got[vm.ID]++
	}
	for _, id := range ids[5:] {
		if got[id] != 1 {
			t.Errorf("VM %s listed %d times, want 1", id, got[id])
		}
	}
	for _, id := range ids[:5] {
		if got[id] != 0 {
			t.Errorf("removed VM %s listed", id)
		}
	}
}

// Events that only the engine's restart and purge could lose: the stream
// goes on across a restart, and a purge past its position is a resync
// that still reports the removal.
func TestWatchAcrossRestartAndPurge(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	gone, err := w.s.AddVM(fakeovirt.VMSpec{Name: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.pp.Watch(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	// waitFor reads until every (VM, type) pair came, in any order.
	waitFor := func(want ...any) {
		t.Helper()
		missing := map[string]bool{}
		for i := 0; i < len(want); i += 2 {
			missing[want[i].(string)+"/"+want[i+1].(provider.EventType).String()] = true
		}
		for len(missing) > 0 {
			ev, err := st.Next(ctx)
			if err != nil {
				t.Fatalf("waiting for %v: %v", missing, err)
			}
			delete(missing, ev.VMID+"/"+ev.Type.String())
		}
	}

	w.s.Restart(200 * time.Millisecond)
	a, err := w.s.AddVM(fakeovirt.VMSpec{Name: "after-restart"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(a, provider.Created)

	// Hold the stream's next read of the events while the VM is removed,
	// another added and the history purged past the stream's position.
	w.s.AddRule(fakeovirt.Rule{Method: "GET", Path: "/events", Times: 1, Delay: 300 * time.Millisecond})
	time.Sleep(50 * time.Millisecond)
	if err := w.s.RemoveVM(gone); err != nil {
		t.Fatal(err)
	}
	b, err := w.s.AddVM(fakeovirt.VMSpec{Name: "after-purge"})
	if err != nil {
		t.Fatal(err)
	}
	w.s.PurgeEventsThrough(w.s.LastEventIndex())
	waitFor(gone, provider.Deleted, b, provider.Created)
	// The stream goes on after the purge.
	c, err := w.s.AddVM(fakeovirt.VMSpec{Name: "after-resync"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(c, provider.Created)

	// A cursor the purge took is expired.
	_, err = w.pp.Watch(bg, provider.Cursor("2"))
	if !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("Watch(purged cursor) = %v, want ErrCursorExpired", err)
	}
}

// The periodic resync reports what the event log did not: here a removal
// whose events were suppressed (stand-in for any event the lossy log
// drops).
func TestWatchPeriodicResync(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, &ovirt.Options{ResyncInterval: 100 * time.Millisecond, PollInterval: time.Hour})
	id, err := w.s.AddVM(fakeovirt.VMSpec{Name: "resync"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.pp.Watch(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := w.s.RemoveVM(id); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("no Deleted from the resync: %v", err)
		}
		if ev.VMID == id && ev.Type == provider.Deleted {
			return
		}
	}
}

func (w *world) noVMNamed(t *testing.T, name string) {
	t.Helper()
	if v, ok := w.s.VMByName(name); ok {
		t.Fatalf("VM %s left behind: %+v", name, v)
	}
}

func TestProvisionDetails(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	d := w.s.Defaults()
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3 ops@example"
	cust, err := template.CustomizationFor(template.Settings{InstanceID: "i-1", Hostname: "web-1", Domain: "example",
		Users: []template.User{{Name: "ops", SSHAuthorizedKeys: []string{key}, Sudo: true}}, Packages: []string{"nginx"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := provider.ProvisionSpec{Key: "req-1", Name: "web-1", Template: "centos9", Zone: zoneName, CPUs: 4, MemoryMiB: 4096,
		Network: provider.Network{Name: "vlan100"}, PowerOn: true, Customization: &cust}
	vm, err := w.pp.Provision(bg, spec)
	if err != nil {
		t.Fatal(err)
	}
	info, ok := w.s.VM(vm.ID)
	if !ok {
		t.Fatal("VM not in the engine")
	}
	if info.Clone || info.Sockets != 4 || info.Memory != 4096<<20 || !slices.Equal(info.NICProfiles, []string{d.VLANProfileID}) ||
		info.Init == nil || info.Init.HostName != "web-1" || !strings.Contains(info.Init.CustomScript, "nginx") ||
		info.Init.UserName != "ops" || info.Init.AuthorizedSSHKeys != key ||
		!info.StartedCloudInit || info.Status != "up" {
		t.Fatalf("engine VM %+v", info)
	}
	if info.CorrelationID != ovirt.CorrelationID("req-1") || len(info.CorrelationID) != 36 {
		t.Fatalf("correlation id %q", info.CorrelationID)
	}
	// Idempotent across a process restart: another driver finds the VM.
	other, err := ovirt.New(bg, w.s.URL(), w.s.User(), guest.NewSecret(w.s.Password()), &ovirt.Options{CACertPEM: w.s.CACertPEM()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	again, err := other.Provision(bg, spec)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != vm.ID {
		t.Fatalf("second Provision made %s, want %s", again.ID, vm.ID)
	}
}

func TestProvisionClone(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, &ovirt.Options{Clone: true, Zones: []ovirt.ZoneConfig{{DataCenter: "Default", Cluster: "Default", StorageDomain: "vmstore"}}})
	vm, err := w.pp.Provision(bg, provider.ProvisionSpec{Key: "c1", Name: "clone-1", Template: "centos9", Zone: zoneName})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := w.s.VM(vm.ID)
	if !info.Clone || !slices.Equal(info.DiskDomains, []string{w.s.Defaults().VMStorageDomainID}) || info.Status != "down" {
		t.Fatalf("clone %+v", info)
	}
}

// A failed copy, a timeout during the copy and a lost answer to POST /vms
// each leave no VM.
func TestProvisionFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, &fakeovirt.Options{Step: 50 * time.Millisecond}, &ovirt.Options{Clone: true})
	spec := func(k string) provider.ProvisionSpec {
		return provider.ProvisionSpec{Key: k, Name: "fail-" + k, Template: "centos9", Zone: zoneName}
	}

	w.s.FailNextCopies(1)
	_, err := w.pp.Provision(bg, spec("copy"))
	testkit.WantCode(t, "failed copy", err, errs.FailedPrecondition)
	w.noVMNamed(t, "fail-copy")

	s := spec("timeout")
	s.Timeout = 60 * time.Millisecond // the copy takes 5 steps of 50 ms
	_, err = w.pp.Provision(bg, s)
	testkit.WantCode(t, "timeout", err, errs.DeadlineExceeded)
	w.noVMNamed(t, "fail-timeout")

	w.s.AddRule(fakeovirt.Rule{Method: "POST", Path: "/vms", Times: 1, Drop: fakeovirt.DropAfter})
	_, err = w.pp.Provision(bg, spec("lost"))
	testkit.WantCode(t, "lost answer", err, errs.OutcomeUnknown)
	w.noVMNamed(t, "fail-lost")

	// A start refused after the VM was made removes it too.
	w.s.FaultInProgress("POST", "/vms/*/start", "run", 0)
	s = spec("start")
	s.PowerOn, s.Timeout = true, 3*time.Second
	_, err = w.pp.Provision(bg, s)
	testkit.WantCode(t, "start refused", err, errs.DeadlineExceeded)
	w.noVMNamed(t, "fail-start")
}

func TestRetryableRefusals(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	id, err := w.s.AddVM(fakeovirt.VMSpec{Name: "locked"})
	if err != nil {
		t.Fatal(err)
	}
	// PowerOn retries the engine's "VM is locked" and succeeds.
	w.s.FaultVMLocked("POST", "/vms/*/start", "run", 2)
	if err := w.pp.PowerOn(bg, id); err != nil {
		t.Fatal(err)
	}
	// Without time to retry, the refusal surfaces as Unavailable.
	w.s.FaultVMLocked("POST", "/vms/*/stop", "stop", 0)
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	err = w.pp.PowerOff(ctx, id)
	testkit.WantCode(t, "locked stop", err, errs.DeadlineExceeded)
}

func checkByID(r report.Report, id, subject string) (report.Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id && (subject == "" || strings.Contains(c.Subject, subject)) {
			return c, true
		}
	}
	return report.Check{}, false
}

func TestPreflightRows(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	d := w.s.Defaults()
	r, err := w.pp.Preflight(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ovirt.engine", "ovirt.datacenter", "ovirt.cluster", "ovirt.storage", "ovirt.network", "ovirt.template", "ovirt.permissions"} {
		c, ok := checkByID(r, id, "")
		if !ok || c.Status != report.Pass {
			t.Errorf("%s: %+v, want pass", id, c)
		}
	}
	if c, _ := checkByID(r, "ovirt.template.agent", "centos9"); c.Status != report.Warn {
		t.Errorf("agent row without VMs: %+v, want warn", c)
	}

	if err := w.s.SetDataCenterStatus(d.DataCenterID, "maintenance"); err != nil {
		t.Fatal(err)
	}
	if err := w.s.SetTemplateStatus(d.TemplateID, "locked"); err != nil {
		t.Fatal(err)
	}
	for _, sd := range []string{d.VMStorageDomainID, d.TemplateStorageID} {
		if err := w.s.SetStorageDomainStatus(sd, "maintenance"); err != nil {
			t.Fatal(err)
		}
	}
	role, err := w.s.AddRole("reader", false, 1300)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.s.SetPermissions(fakeovirt.Grant{RoleID: role}); err != nil {
		t.Fatal(err)
	}
	r, err = w.pp.Preflight(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ovirt.datacenter", "ovirt.storage", "ovirt.template", "ovirt.permissions"} {
		c, ok := checkByID(r, id, "")
		if !ok || c.Status != report.Fail || c.Fix == "" {
			t.Errorf("%s: %+v, want fail with a fix", id, c)
		}
	}
	if c, _ := checkByID(r, "ovirt.permissions", ""); !strings.Contains(c.Detail, "create_vm") {
		t.Errorf("permissions row does not name the missing permit: %+v", c)
	}
}

// Two processes (two drivers) provisioning one key at once make one VM.
func TestProvisionSameKeyTwoProcesses(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	other, err := ovirt.New(bg, w.s.URL(), w.s.User(), guest.NewSecret(w.s.Password()), &ovirt.Options{CACertPEM: w.s.CACertPEM(), StepPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	spec := provider.ProvisionSpec{Key: "shared", Name: "shared-1", Template: "centos9", Zone: zoneName}
	ids := make([]string, 2)
	var wg sync.WaitGroup
	for i, p := range []*provider.Provider{w.pp, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vm, err := p.Provision(bg, spec)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = vm.ID
		}()
	}
	wg.Wait()
	if ids[0] == "" || ids[0] != ids[1] {
		t.Fatalf("ids %v, want one VM", ids)
	}
}

// New addresses the agent reports (event 934) come as Changed with them.
func TestWatchNewIPs(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	id, err := w.s.AddVM(fakeovirt.VMSpec{Name: "ips", Status: "up"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.pp.Watch(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ip := netip.MustParseAddr("198.51.100.7")
	if err := w.s.SetIPs(id, ip); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("no Changed with the new address: %v", err)
		}
		if ev.VMID == id && ev.Type == provider.Changed && slices.Contains(ev.VM.Guest.IPs, ip) {
			return
		}
	}
}
