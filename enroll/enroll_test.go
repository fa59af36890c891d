package enroll_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
)

func TestEnrollLinuxAndWindows(t *testing.T) {
	for _, mode := range []struct {
		name    string
		noGuest bool
	}{{"guest-access", false}, {"network", true}} {
		t.Run(mode.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{noGuestAccess: mode.noGuest})
			o := w.orchestrator("i1", nil)
			ctx := context.Background()
			for i, wantPorts := range [][]natfw.Port{natfw.LinuxPorts(), natfw.LinuxPorts(), natfw.WindowsPorts()} {
				res, err := o.Enroll(ctx, w.request(i, ""))
				if err != nil {
					t.Fatalf("enroll %d: %v", i, err)
				}
				if res.State != cmdb.Enrolled || !res.PublicIP.IsValid() || res.LocalIP != w.vms[i].Guest.IPs[0] {
					t.Fatalf("result %+v", res)
				}
				rule, err := w.fw.Get(ctx, res.VM.String())
				if err != nil {
					t.Fatal(err)
				}
				if !rule.Equal(natfw.Rule{Owner: rule.Owner, Public: res.PublicIP, Local: res.LocalIP, Ports: wantPorts, Sources: []netip.Prefix{mgmt}, Description: rule.Description}) {
					t.Fatalf("rule %+v, ports want %v", rule, wantPorts)
				}
				rec, err := w.db.Get(ctx, res.VM)
				if err != nil || rec.State != cmdb.Enrolled || rec.PublicIP != res.PublicIP || rec.EnrolledAt.IsZero() {
					t.Fatalf("record %+v, %v", rec, err)
				}
			}
			w.checkInvariants(t)
			// Order of steps as journaled.
			js := w.allJournals()
			var names []string
			for _, s := range js[0].Steps {
				names = append(names, s.Name)
			}
			want := "eligibility credentials requirements ipam firewall configure cmdb"
			if mode.noGuest {
				want = "eligibility ipam firewall credentials requirements configure cmdb"
			}
			if strings.Join(names, " ") != want {
				t.Fatalf("plan %v, want %s", names, want)
			}
			// Every step's start and success was an event, in order, then
			// the journal's success.
			var kinds []string
			for _, e := range w.eventsOf(js[0].ID) {
				if e.Kind == enroll.StepStarted || e.Kind == enroll.StepSucceeded || e.Kind == enroll.JournalSucceeded || e.Kind == enroll.JournalStarted {
					kinds = append(kinds, string(e.Kind)+":"+e.Step)
				}
			}
			var wantKinds []string
			wantKinds = append(wantKinds, "journal.started:")
			for _, n := range names {
				wantKinds = append(wantKinds, "step.started:"+n, "step.succeeded:"+n)
			}
			wantKinds = append(wantKinds, "journal.succeeded:")
			if strings.Join(kinds, " ") != strings.Join(wantKinds, " ") {
				t.Fatalf("events\n%v\nwant\n%v", kinds, wantKinds)
			}
		})
	}
}

func TestEnrollIdempotencyKeyAndExclusivity(t *testing.T) {
	w := newWorld(t, worldOptions{})
	o := w.orchestrator("i1", nil)
	ctx := context.Background()
	first, err := o.Enroll(ctx, w.request(0, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := o.Enroll(ctx, w.request(0, "k1"))
	if err != nil || again.PublicIP != first.PublicIP || again.State != cmdb.Enrolled {
		t.Fatalf("repeat of a finished request: %+v, %v", again, err)
	}
	// A new request for an enrolled VM is refused.
	_, err = o.Enroll(ctx, w.request(0, "k2"))
	wantCode(t, err, errs.FailedPrecondition)
	// The refused request did not disturb the enrollment.
	w.checkInvariants(t)
	// A key reused for another VM is refused.
	_, err = o.Enroll(ctx, w.request(1, "k1"))
	wantCode(t, err, errs.InvalidArgument)
	// A busy VM: a journal held open by another instance.
	if _, err := w.store.CreateJournal(ctx, enroll.Journal{ID: "other", Op: enroll.OpEnroll, VM: w.key(1), Phase: enroll.Running, Holder: "x", LeaseExpires: w.now().Add(1e12)}); err != nil {
		t.Fatal(err)
	}
	_, err = o.Enroll(ctx, w.request(1, "k3"))
	wantCode(t, err, errs.AlreadyExists)
	if !errors.Is(err, enroll.ErrVMBusy) {
		t.Fatalf("busy VM: %v", err)
	}
}

func TestEnrollRejections(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 6})
	ctx := context.Background()
	o := w.orchestrator("i1", nil)
	// Powered off, no tools, no IP, template-like failures each give a
	// FailedPrecondition with an actionable message, and change nothing.
	if err := w.hv.PowerOff(ctx, w.vms[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.hv.UpdateVM(w.vms[1].ID, func(vm *provider.VM) { vm.Guest.ToolsRunning = false }); err != nil {
		t.Fatal(err)
	}
	if _, err := w.hv.UpdateVM(w.vms[3].ID, func(vm *provider.VM) { vm.Guest.IPs = nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := w.hv.UpdateVM(w.vms[4].ID, func(vm *provider.VM) { vm.Guest.OSName, vm.Guest.OSVersion = "Red Hat Enterprise Linux 7.9", "7.9" }); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		i    int
		code errs.Code
		msg  string
		step string
	}{
		{0, errs.FailedPrecondition, "power it on", enroll.StepEligibility},
		{1, errs.FailedPrecondition, "VMware Tools", enroll.StepEligibility},
		{3, errs.FailedPrecondition, "no IP address", enroll.StepEligibility},
		{4, errs.FailedPrecondition, "older than the minimum 8", enroll.StepRequirements},
	}
	for _, c := range cases {
		res, err := o.Enroll(ctx, w.request(c.i, ""))
		wantCode(t, err, c.code)
		if !strings.Contains(err.Error(), c.msg) || res.FailedStep != c.step {
			t.Errorf("vm %d: error %q (step %s), want it to mention %q at step %s", c.i, err, res.FailedStep, c.msg, c.step)
		}
		rec, gerr := w.db.Get(ctx, w.key(c.i))
		if gerr != nil || rec.State != cmdb.Failed || rec.FailedStep != c.step || rec.Reason == "" {
			t.Errorf("vm %d: record %+v, %v", c.i, rec, gerr)
		}
	}
	var re *enroll.RequirementsError
	_, err := o.Enroll(ctx, w.request(4, ""))
	if !errors.As(err, &re) || len(re.Report.Failures()) != 1 {
		t.Fatalf("requirements error: %v", err)
	}
	// Wrong password: Unauthenticated, actionable, no secret in it.
	req := w.request(5, "")
	req.Credentials = guest.Password("admin", "wrong-CANARY-x")
	res, err := o.Enroll(ctx, req)
	wantCode(t, err, errs.Unauthenticated)
	if !strings.Contains(err.Error(), "check the password") || strings.Contains(err.Error(), "wrong-CANARY-x") {
		t.Fatalf("wrong password error: %q", err)
	}
	// One sentence: the driver's own wording of the refusal is the cause,
	// reachable, but not repeated in the text.
	if n := strings.Count(err.Error(), "guest"); n != 1 || strings.Contains(err.Error(), "refused the user name or password") {
		t.Fatalf("wrong password error says \"guest\" %d times or repeats the driver's text: %q", n, err)
	}
	reached := false
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		reached = reached || strings.Contains(e.Error(), "refused the user name or password")
	}
	if !reached {
		t.Fatalf("the driver's error is not reachable from %q", err)
	}
	if res.State != cmdb.Failed || res.FailedStep != enroll.StepCredentials {
		t.Fatalf("result %+v", res)
	}
	// Bad requests.
	_, err = o.Enroll(ctx, enroll.Request{Provider: provName, VMID: w.vms[2].ID})
	wantCode(t, err, errs.InvalidArgument)
	_, err = o.Enroll(ctx, enroll.Request{Provider: "nope", VMID: "x", Credentials: guest.Password("a", "b")})
	wantCode(t, err, errs.NotFound)
	_, err = o.Enroll(ctx, enroll.Request{Provider: provName, VMID: "missing", Credentials: guest.Password("a", "b")})
	wantCode(t, err, errs.NotFound)
	req = w.request(2, "")
	req.Profile = "platinum"
	_, err = o.Enroll(ctx, req)
	wantCode(t, err, errs.InvalidArgument)
	w.checkInvariants(t)
	// Failed VMs can be enrolled again once fixed.
	if err := w.hv.PowerOn(ctx, w.vms[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Enroll(ctx, w.request(0, "")); err != nil {
		t.Fatalf("re-enroll after fixing: %v", err)
	}
	w.checkInvariants(t)
}

func TestUnenroll(t *testing.T) {
	w := newWorld(t, worldOptions{})
	o := w.orchestrator("i1", nil)
	ctx := context.Background()
	for i := range w.vms {
		if _, err := o.Enroll(ctx, w.request(i, "")); err != nil {
			t.Fatal(err)
		}
	}
	res, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: w.vms[0].ID, Credentials: guest.Password("admin", password)})
	if err != nil || res.State != cmdb.Available {
		t.Fatalf("unenroll: %+v, %v", res, err)
	}
	w.checkInvariants(t)
	// Idempotent: again, and for a VM never enrolled.
	if _, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: w.vms[0].ID}); err != nil {
		t.Fatalf("second unenroll: %v", err)
	}
	if _, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: "never"}); err != nil {
		t.Fatalf("unenroll unknown VM: %v", err)
	}
	// Without credentials the guest is left alone (Force, too).
	if _, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: w.vms[1].ID, Force: true}); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	still := w.configured[w.vms[1].ID]
	delete(w.configured, w.vms[1].ID) // the operator cleans up by hand
	w.mu.Unlock()
	if !still {
		t.Fatal("forced unenroll touched the guest")
	}
	// A failing firewall leaves the VM unenrolling with a reason; a retry
	// finishes.
	w.fwInj.Fail("RemoveNAT", w.fwInj.Calls("RemoveNAT")+1, errs.Internal)
	_, err = o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: w.vms[2].ID, Credentials: guest.Password("admin", password)})
	wantCode(t, err, errs.Internal)
	rec, _ := w.db.Get(ctx, w.key(2))
	if rec.State != cmdb.Unenrolling || !strings.Contains(rec.Reason, enroll.StepRemoveNAT) {
		t.Fatalf("after failed unenroll: %+v", rec)
	}
	if _, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: w.vms[2].ID, Credentials: guest.Password("admin", password)}); err != nil {
		t.Fatal(err)
	}
	w.checkInvariants(t)
}

// TestWrongPasswordOverNetwork: without guest access the credentials are
// checked through the new NAT; a rejection compensates the NAT and the IP.
func TestWrongPasswordOverNetwork(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 1, noGuestAccess: true})
	o := w.orchestrator("i1", nil)
	req := w.request(0, "")
	req.Credentials = guest.Password("admin", "nope")
	res, err := o.Enroll(context.Background(), req)
	wantCode(t, err, errs.Unauthenticated)
	if res.FailedStep != enroll.StepCredentials || w.dials.Load() == 0 {
		t.Fatalf("failed at %q after %d dials", res.FailedStep, w.dials.Load())
	}
	var undone []string
	for _, e := range w.eventsOf(res.Journal) {
		if e.Kind == enroll.CompensationDone {
			undone = append(undone, e.Step)
		}
	}
	if strings.Join(undone, " ") != "firewall ipam" {
		t.Fatalf("compensated %v, want the NAT then the IP", undone)
	}
	w.checkInvariants(t)
}

// TestNoRequirementsNoProbe: a profile without requirement checks asks the
// guest nothing (no OS-facts probe), on Linux and Windows; one with checks
// does.
func TestNoRequirementsNoProbe(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 3})
	o := w.orchestrator("i1", func(c *enroll.Config, _ *enroll.Options) { c.Policy.Requirements = nil })
	for _, i := range []int{0, 2} { // Linux, Windows
		if _, err := o.Enroll(context.Background(), w.request(i, "")); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.probes.Load(); n != 0 {
		t.Fatalf("%d OS-facts probes for profiles without requirements", n)
	}
	if _, err := w.orchestrator("i2", nil).Enroll(context.Background(), w.request(1, "")); err != nil {
		t.Fatal(err)
	}
	if w.probes.Load() == 0 {
		t.Fatal("requirements were checked without the OS facts")
	}
}

// TestSecondUnenrollChangesNothing: unenrolling a VM that is no longer
// enrolled writes no journal and leaves the CMDB record's revision alone,
// with or without a request key; the same key still answers its result.
func TestSecondUnenrollChangesNothing(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 2})
	o := w.orchestrator("i1", nil)
	ctx := context.Background()
	if _, err := o.Enroll(ctx, w.request(0, "")); err != nil {
		t.Fatal(err)
	}
	req := enroll.UnenrollRequest{Key: "u1", Provider: provName, VMID: w.vms[0].ID, Credentials: guest.Password("admin", password)}
	first, err := o.Unenroll(ctx, req)
	if err != nil || first.Journal != "u1" {
		t.Fatalf("first unenroll: %+v, %v", first, err)
	}
	before, _ := w.db.Get(ctx, w.key(0))
	journals := len(w.allJournals())
	for _, r := range []enroll.UnenrollRequest{
		{Provider: provName, VMID: w.vms[0].ID},
		{Key: "u2", Provider: provName, VMID: w.vms[0].ID, Credentials: req.Credentials},
		{Provider: provName, VMID: w.vms[1].ID}, // never enrolled
	} {
		res, err := o.Unenroll(ctx, r)
		if err != nil || res.Journal != "" {
			t.Fatalf("unenroll of a VM not enrolled: %+v, %v", res, err)
		}
	}
	after, _ := w.db.Get(ctx, w.key(0))
	if after.Revision != before.Revision || after.State != cmdb.Available {
		t.Fatalf("record revision %d -> %d, state %s", before.Revision, after.Revision, after.State)
	}
	if n := len(w.allJournals()); n != journals {
		t.Fatalf("%d journals written for unenrollments that had nothing to do", n-journals)
	}
	if _, err := w.db.Get(ctx, w.key(1)); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("a record was made for a VM never enrolled: %v", err)
	}
	again, err := o.Unenroll(ctx, req) // the same key: its result
	if err != nil || again.Journal != "u1" {
		t.Fatalf("repeated request: %+v, %v", again, err)
	}
	w.checkInvariants(t)
}

// TestEventsCarryProfile: every event of a journal names its service
// profile, so that an observer can route by it (notify/smtpnotify).
func TestEventsCarryProfile(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 2})
	o := w.orchestrator("i1", func(cfg *enroll.Config, _ *enroll.Options) {
		cfg.Profiles = map[string]enroll.Policy{"gold": cfg.Policy}
	})
	req := w.request(0, "")
	req.Profile = "gold"
	if _, err := o.Enroll(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.events {
		if e.Journal == "" {
			continue
		}
		n++
		if e.Profile != "gold" {
			t.Fatalf("event %s of journal %s has profile %q", e.Kind, e.Journal, e.Profile)
		}
	}
	if n < 5 {
		t.Fatalf("%d journal events", n)
	}
}
