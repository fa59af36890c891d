package enroll_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/obs/obstest"
)

// TestTelemetry: a span per enrollment with a child span per step, the
// failing step and its compensations carry the errs code, and the gauges
// report pool use, open journals, active runs and the Indexer's lag.
func TestTelemetry(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 3})
	r := obstest.New(t)
	o := w.orchestrator("i1", func(_ *enroll.Config, opts *enroll.Options) {
		opts.TracerProvider, opts.MeterProvider = r.TP, r.MP
	})
	t.Cleanup(func() { _ = o.Close() })
	ctx := context.Background()

	if _, err := o.Enroll(ctx, w.request(0, "ok")); err != nil {
		t.Fatal(err)
	}
	enrolls := r.SpansNamed("enroll.Enroll")
	if len(enrolls) != 1 || enrolls[0].Error {
		t.Fatalf("Enroll spans %+v", enrolls)
	}
	parent := enrolls[0].ID
	for _, step := range []string{enroll.StepEligibility, enroll.StepCredentials, enroll.StepRequirements, enroll.StepIPAM,
		enroll.StepFirewall, enroll.StepConfigure, enroll.StepCMDB} {
		s := r.SpansNamed("enroll.step." + step)
		if len(s) != 1 || s[0].Parent != parent || s[0].Error || s[0].Attrs["journal"] != "ok" {
			t.Fatalf("step %s spans %+v (enroll span %s)", step, s, parent)
		}
	}
	if v, ok := r.Gauge("managedvm.enroll.pool.used", map[string]string{"pool": poolName}); !ok || v != 1 {
		t.Fatalf("pool used %v %v", v, ok)
	}
	if v, ok := r.Gauge("managedvm.enroll.pool.size", map[string]string{"pool": poolName}); !ok || v != 254 {
		t.Fatalf("pool size %v %v", v, ok)
	}
	if v, _ := r.Gauge("managedvm.enroll.runs.active", map[string]string{"instance": "i1"}); v != 0 {
		t.Fatalf("%v runs active after the enrollment", v)
	}

	// A failure at the cmdb step: the step span has the code, and the
	// compensations of the steps before it have spans of their own.
	w.dbInj.Fail("Upsert", nextCall(w.dbInj, "Upsert")+1, errs.Internal)
	if _, err := o.Enroll(ctx, w.request(1, "bad")); errs.CodeOf(err) != errs.Internal {
		t.Fatalf("enroll: %v", err)
	}
	bad := r.SpansNamed("enroll.Enroll")[1]
	if !bad.Error || bad.Code != "Internal" {
		t.Fatalf("failed Enroll span %+v", bad)
	}
	failed := r.SpansNamed("enroll.step." + enroll.StepCMDB)[1]
	if failed.Parent != bad.ID || failed.Code != "Internal" {
		t.Fatalf("failed step span %+v", failed)
	}
	for _, step := range []string{enroll.StepIPAM, enroll.StepFirewall} {
		u := r.SpansNamed("enroll.undo." + step)
		if len(u) != 1 || u[0].Parent != bad.ID || u[0].Error {
			t.Fatalf("undo %s spans %+v", step, u)
		}
	}
	if n := r.Sum("managedvm.errors", map[string]string{"op": "enroll.step." + enroll.StepCMDB, "code": "Internal"}); n != 1 {
		t.Fatalf("cmdb step errors %d", n)
	}
	if n := r.HistogramCount("managedvm.call.duration", map[string]string{"op": "enroll.step." + enroll.StepIPAM}); n != 2 {
		t.Fatalf("ipam step durations %d", n)
	}
	if v, _ := r.Gauge("managedvm.enroll.pool.used", map[string]string{"pool": poolName}); v != 1 {
		t.Fatalf("pool used %v after the rollback", v)
	}

	// An open journal (left by a crashed holder) shows in the gauge.
	if _, err := w.store.CreateJournal(ctx, enroll.Journal{ID: "crashed", Op: enroll.OpEnroll, VM: w.key(2),
		Phase: enroll.Running, Steps: []enroll.StepRecord{{Name: enroll.StepEligibility}}}); err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Gauge("managedvm.enroll.journals.open", map[string]string{"op": "enroll", "phase": "running"}); !ok || v != 1 {
		t.Fatalf("open journals %v %v", v, ok)
	}

	// The Indexer's lag per provider, after it applied an event.
	stop := runIndexer(t, o)
	waitFor(t, "initial sync", func() bool { return w.state(2) == cmdb.Available || w.state(2) == cmdb.Enrolling })
	w.addVM("late", netip.MustParseAddr("10.9.9.9"), 0)
	waitFor(t, "event applied", func() bool {
		_, ok := r.Gauge("managedvm.enroll.indexer.lag", map[string]string{"provider": provName})
		return ok
	})
	stop()
	if v, _ := r.Gauge("managedvm.enroll.indexer.lag", map[string]string{"provider": provName}); v < 0 || v > 60 {
		t.Fatalf("indexer lag %v s", v)
	}
	if len(r.SpansNamed("enroll.Indexer.apply")) == 0 {
		t.Fatal("no Indexer span")
	}
}
