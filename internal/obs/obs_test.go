package obs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/obs"
	"github.com/managedvm/managedvm/internal/obs/obstest"
)

func TestWrapOnce(t *testing.T) {
	bare := errs.New(errs.NotFound, "", "no pool \"a\"")
	w := obs.Wrap("ipam.Pool", bare)
	if w.Error() != `ipam.Pool: no pool "a"` || errs.CodeOf(w) != errs.NotFound {
		t.Fatalf("got %v", w)
	}
	if obs.Wrap("ipam.Pool", w) != w {
		t.Fatal("wrapped twice")
	}
	if bare.(*errs.Error).Op != "" {
		t.Fatal("driver error changed")
	}
	c := obs.Wrap("ipam.Pool", context.Canceled)
	if errs.CodeOf(c) != errs.Canceled || !errors.Is(c, context.Canceled) {
		t.Fatalf("got %v (%v)", c, errs.CodeOf(c))
	}
	o := obs.Wrap("ipam.Pool", errs.New(errs.Unavailable, "pgipam", "down"))
	if o.Error() != "ipam.Pool: pgipam: down" || errs.CodeOf(o) != errs.Unavailable {
		t.Fatalf("got %v", o)
	}
}

func TestRecorded(t *testing.T) {
	r := obstest.New(t)
	in := obs.New("ipam", "memipam", obs.Options{TracerProvider: r.TP, MeterProvider: r.MP})
	ctx := context.Background()
	_, c := in.Start(ctx, "ipam.Allocate")
	_ = c.End(ctx, nil)
	_, c = in.Start(ctx, "ipam.Allocate")
	_ = c.End(ctx, errs.New(errs.ResourceExhausted, "", "full"))
	spans := r.SpansNamed("ipam.Allocate")
	if len(spans) != 2 || spans[0].Error || !spans[1].Error || spans[1].Code != "ResourceExhausted" {
		t.Fatalf("spans %+v", spans)
	}
	if n := r.Sum("managedvm.calls", map[string]string{"op": "ipam.Allocate"}); n != 2 {
		t.Fatalf("calls %d", n)
	}
	if n := r.Sum("managedvm.errors", map[string]string{"op": "ipam.Allocate", "code": "ResourceExhausted"}); n != 1 {
		t.Fatalf("errors %d", n)
	}
	if n := r.HistogramCount("managedvm.call.duration", map[string]string{"op": "ipam.Allocate"}); n != 2 {
		t.Fatalf("durations %d", n)
	}
}

func TestOffAllocatesNothing(t *testing.T) {
	in := obs.New("ipam", "memipam", obs.Options{})
	ctx := context.Background()
	n := testing.AllocsPerRun(1000, func() {
		ctx2, c := in.Start(ctx, "ipam.Allocate")
		_ = c.End(ctx2, nil)
	})
	if n != 0 {
		t.Fatalf("%v allocations per call with telemetry off", n)
	}
}
