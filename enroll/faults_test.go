package enroll_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes"
)

// faultPoint names the driver call that carries a step's side effect.
type faultPoint struct {
	step   string
	inj    func(w *world) *fakes.Injector
	method string
}

func guestModePoints() []faultPoint {
	return []faultPoint{
		{enroll.StepEligibility, func(w *world) *fakes.Injector { return w.provInj }, "Get"},
		{enroll.StepCredentials, func(w *world) *fakes.Injector { return w.provInj }, "ValidateCredentials"},
		{enroll.StepRequirements, func(w *world) *fakes.Injector { return w.provInj }, "GuestExecutor"},
		{enroll.StepIPAM, func(w *world) *fakes.Injector { return w.ipamInj }, "Allocate"},
		{enroll.StepFirewall, func(w *world) *fakes.Injector { return w.fwInj }, "EnsureNAT"},
		{enroll.StepConfigure, func(w *world) *fakes.Injector { return w.guestInj }, "Run"},
		{enroll.StepCMDB, func(w *world) *fakes.Injector { return w.dbInj }, "Upsert"},
	}
}

func networkModePoints() []faultPoint {
	return []faultPoint{
		{enroll.StepEligibility, func(w *world) *fakes.Injector { return w.provInj }, "Get"},
		{enroll.StepIPAM, func(w *world) *fakes.Injector { return w.ipamInj }, "Allocate"},
		{enroll.StepFirewall, func(w *world) *fakes.Injector { return w.fwInj }, "EnsureNAT"},
		{enroll.StepCredentials, func(w *world) *fakes.Injector { return w.dialInj }, "Get"},
		{enroll.StepRequirements, func(w *world) *fakes.Injector { return w.guestInj }, "Run"},
		{enroll.StepConfigure, func(w *world) *fakes.Injector { return w.guestInj }, "Run"},
		{enroll.StepCMDB, func(w *world) *fakes.Injector { return w.dbInj }, "Upsert"},
	}
}

type crash struct{ where string }

// outcome is what a fault case must end in.
type outcome int

const (
	mustFail outcome = iota
	mustSucceed
	eitherWay
)

type faultKind struct {
	name string
	// arm installs the fault on the step's driver call, armed when the
	// step starts. cancel cancels the request's context.
	arm func(w *world, inj *fakes.Injector, method string, cancel context.CancelFunc)
	// opts adjusts the orchestrator.
	opts func(*enroll.Config, *enroll.Options)
	// resume: the first orchestrator crashes; a second one resumes.
	resume     bool
	resumeOpts func(*enroll.Config, *enroll.Options)
	sameName   bool
	want       outcome
	code       errs.Code
}

func nextCall(inj *fakes.Injector, method string) int { return inj.Calls(method) + 1 }

func faultKinds() []faultKind {
	noRetry := func(_ *enroll.Config, o *enroll.Options) { o.Retries = -1 }
	noCreds := func(c *enroll.Config, _ *enroll.Options) { c.Credentials = nil }
	crashAfterWork := func(w *world, inj *fakes.Injector, method string, _ context.CancelFunc) {
		n := nextCall(inj, method)
		inj.HookAfterWork(method, func(ctx context.Context) error {
			if inj.Calls(method) == n {
				panic(crash{"after " + method})
			}
			return nil
		})
	}
	crashBefore := func(w *world, inj *fakes.Injector, method string, _ context.CancelFunc) {
		n := nextCall(inj, method)
		inj.Hook(method, func(ctx context.Context) error {
			if inj.Calls(method) == n {
				panic(crash{"before " + method})
			}
			return nil
		})
	}
	return []faultKind{
		{name: "error", want: mustFail, code: errs.Internal,
			arm: func(w *world, inj *fakes.Injector, method string, _ context.CancelFunc) {
				inj.Fail(method, nextCall(inj, method), errs.Internal)
			}},
		{name: "unavailable-every-try", want: mustFail, code: errs.Unavailable,
			arm: func(w *world, inj *fakes.Injector, method string, _ context.CancelFunc) {
				n := nextCall(inj, method)
				for i := 0; i < 3; i++ {
					inj.Fail(method, n+i, errs.Unavailable)
				}
			}},
		{name: "unavailable-once-retried", want: mustSucceed,
			arm: func(w *world, inj *fakes.Injector, method string, _ context.CancelFunc) {
				inj.Fail(method, nextCall(inj, method), errs.Unavailable)
			}},
		{name: "outcome-unknown-retried", want: mustSucceed,
			arm: func(w *world, inj *fakes.Injector, method string, _ context.CancelFunc) {
				inj.AfterWork(method, nextCall(inj, method))
			}},
		{name: "outcome-unknown-compensated", want: mustFail, code: errs.OutcomeUnknown, opts: noRetry,
			arm: func(w *world, inj *fakes.Injector, method string, _ context.CancelFunc) {
				inj.AfterWork(method, nextCall(inj, method))
			}},
		{name: "context-canceled", want: mustFail, code: errs.Canceled,
			arm: func(w *world, inj *fakes.Injector, method string, cancel context.CancelFunc) {
				n := nextCall(inj, method)
				inj.Hook(method, func(ctx context.Context) error {
					if inj.Calls(method) == n {
						cancel()
						return errs.FromContext(ctx, "test")
					}
					return nil
				})
			}},
		{name: "crash-after-side-effect-resume", resume: true, want: mustSucceed, arm: crashAfterWork},
		{name: "crash-before-call-resume", resume: true, want: mustSucceed, arm: crashBefore},
		{name: "crash-after-side-effect-same-instance", resume: true, sameName: true, want: mustSucceed, arm: crashAfterWork},
		{name: "crash-resume-without-credentials", resume: true, resumeOpts: noCreds, want: eitherWay, arm: crashAfterWork},
	}
}

// TestFaultMatrix runs every step x every fault kind, in both access modes,
// and checks the invariants after each case.
func TestFaultMatrix(t *testing.T) {
	cases, leaks := 0, 0
	for _, mode := range []struct {
		name    string
		noGuest bool
		points  []faultPoint
	}{{"guest-access", false, guestModePoints()}, {"network", true, networkModePoints()}} {
		for _, p := range mode.points {
			for _, k := range faultKinds() {
				cases++
				name := fmt.Sprintf("%s/%s/%s", mode.name, p.step, k.name)
				ok := t.Run(name, func(t *testing.T) {
					runFaultCase(t, mode.noGuest, p, k)
				})
				if !ok {
					leaks++
				}
			}
		}
	}
	t.Logf("fault matrix: %d cases, %d failed", cases, leaks)
}

func runFaultCase(t *testing.T, noGuest bool, p faultPoint, k faultKind) {
	w := newWorld(t, worldOptions{vms: 1, noGuestAccess: noGuest})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := w.orchestrator("i1", k.opts)
	enroll.SetHook(o, func(point string) {
		if point == "before:"+p.step {
			k.arm(w, p.inj(w), p.method, cancel)
		}
	})
	var (
		res     enroll.Result
		err     error
		crashed any
	)
	func() {
		defer func() { crashed = recover() }()
		res, err = o.Enroll(ctx, w.request(0, "req"))
	}()
	if crashed != nil {
		if _, ok := crashed.(crash); !ok {
			panic(crashed)
		}
		if !k.resume {
			t.Fatalf("unexpected crash %v", crashed)
		}
		// A new process over the same store and drivers.
		name := "i2"
		if k.sameName {
			name = "i1"
		} else {
			// The crashed instance's lease must expire first.
			rep, rerr := w.orchestrator(name, k.resumeOpts).Resume(context.Background())
			if rerr != nil || len(rep.Resumed) != 0 || rep.Skipped != 1 {
				t.Fatalf("resume before the lease expired: %+v, %v", rep, rerr)
			}
			w.advance(2 * time.Minute)
		}
		o2 := w.orchestrator(name, k.resumeOpts)
		rep, rerr := o2.Resume(context.Background())
		if rerr != nil || len(rep.Resumed) != 1 {
			t.Fatalf("resume: %+v, %v", rep, rerr)
		}
		res, err = rep.Resumed[0], rep.Resumed[0].Err
	} else if k.resume {
		t.Fatalf("the crash was not reached (step %s, method %s): %v", p.step, p.method, err)
	}
	rec, gerr := w.db.Get(context.Background(), w.key(0))
	if rec.State == cmdb.Failed && strings.Contains(rec.Reason, "left in the guest: the OS configuration") {
		// Rolled back without credentials: the record says what was left;
		// the operator removes it by hand.
		w.mu.Lock()
		delete(w.configured, w.vms[0].ID)
		w.mu.Unlock()
	}
	w.checkInvariants(t)
	switch k.want {
	case mustSucceed:
		if err != nil || res.State != cmdb.Enrolled || gerr != nil || rec.State != cmdb.Enrolled {
			t.Fatalf("want success: %+v, %v; record %s", res, err, rec.State)
		}
	case mustFail:
		if err == nil {
			t.Fatalf("want failure, got %+v", res)
		}
		if k.code != errs.OK && !strings.Contains(fmt.Sprint(errs.CodeOf(err), err), k.code.String()) && errs.CodeOf(err) != k.code {
			t.Fatalf("error code %v (%v), want %v", errs.CodeOf(err), err, k.code)
		}
		if res.FailedStep != p.step {
			t.Fatalf("failed step %q, want %q", res.FailedStep, p.step)
		}
		if p.step == enroll.StepEligibility && p.method == "Get" && errs.CodeOf(gerr) == errs.NotFound {
			break // the VM could not even be read: no record to mark
		}
		if gerr != nil || rec.State != cmdb.Failed || rec.FailedStep != p.step || rec.Reason == "" {
			t.Fatalf("record after failure: %+v, %v", rec, gerr)
		}
	case eitherWay:
		if (err == nil) != (rec.State == cmdb.Enrolled) {
			t.Fatalf("result %v disagrees with record state %s", err, rec.State)
		}
	}
	// Every journal is closed and says how it ended.
	for _, j := range w.allJournals() {
		if j.Phase.Open() {
			t.Fatalf("journal %s still %s", j.ID, j.Phase)
		}
	}
	// A second enrollment attempt after a failure works.
	if err != nil {
		if _, err := w.orchestrator("i3", nil).Enroll(context.Background(), w.request(0, "req-2")); err != nil {
			t.Fatalf("enrolling again after the failure: %v", err)
		}
		w.checkInvariants(t)
	}
}

// TestCrashDuringCompensation: a crash while undoing a failed enrollment;
// Resume finishes the compensation.
func TestCrashDuringCompensation(t *testing.T) {
	for _, undo := range []string{enroll.StepConfigure, enroll.StepFirewall, enroll.StepIPAM} {
		t.Run(undo, func(t *testing.T) {
			w := newWorld(t, worldOptions{vms: 1})
			o := w.orchestrator("i1", nil)
			w.dbInj.Fail("Upsert", 2, errs.Internal) // the cmdb step fails
			enroll.SetHook(o, func(point string) {
				if point == "undo:"+undo {
					panic(crash{point})
				}
			})
			func() {
				defer func() {
					if r := recover(); r == nil {
						t.Fatal("no crash")
					}
				}()
				_, _ = o.Enroll(context.Background(), w.request(0, "req"))
			}()
			w.advance(2 * time.Minute)
			rep, err := w.orchestrator("i2", nil).Resume(context.Background())
			if err != nil || len(rep.Resumed) != 1 || rep.Resumed[0].Err == nil {
				t.Fatalf("resume: %+v, %v", rep, err)
			}
			w.checkInvariants(t)
			rec, _ := w.db.Get(context.Background(), w.key(0))
			if rec.State != cmdb.Failed || rec.FailedStep != enroll.StepCMDB {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}

// TestCompensationFailureKeepsJournalOpen: a compensation that fails leaves
// the journal open for Resume, which finishes it once the driver recovers.
func TestCompensationFailureKeepsJournalOpen(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 1})
	o := w.orchestrator("i1", nil)
	w.dbInj.Fail("Upsert", 2, errs.Internal)
	w.fwInj.Fail("RemoveNAT", 1, errs.Internal)
	_, err := o.Enroll(context.Background(), w.request(0, "req"))
	if err == nil || !strings.Contains(err.Error(), "compensating firewall") {
		t.Fatalf("error %v", err)
	}
	open, _ := w.store.OpenJournals(context.Background())
	if len(open) != 1 || open[0].Phase != enroll.Compensating {
		t.Fatalf("open journals %+v", open)
	}
	rec, _ := w.db.Get(context.Background(), w.key(0))
	if rec.State != cmdb.Failed {
		t.Fatalf("record left %s", rec.State)
	}
	rep, err := o.Resume(context.Background()) // same instance: no wait
	if err != nil || len(rep.Resumed) != 1 {
		t.Fatalf("resume %+v %v", rep, err)
	}
	w.checkInvariants(t)
}
