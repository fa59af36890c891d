package ipamtest

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/obs"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/ipam"
)

var telemetryCases = []dcase{
	{"SpansAndMetrics", testTelemetrySpansAndMetrics},
	{"PoolGauges", testTelemetryPoolGauges},
}

// testTelemetrySpansAndMetrics: one span per call, named after the
// operation, with error.type the errs code on a failure (an invalid call
// included); managedvm.calls, managedvm.errors and the duration histogram
// count every call by op and code.
func testTelemetrySpansAndMetrics(t *testing.T, d ipam.Driver) {
	r := obstest.New(t)
	m := ipam.New(d, &ipam.Options{TracerProvider: r.TP, MeterProvider: r.MP})
	ctx := t.Context()
	a := tiny()
	mustCreate(t, m, a)
	mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-1"})
	mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-1"})
	_, err := m.Allocate(ctx, ipam.Request{Pool: a.Name, Owner: "bad\nowner"})
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("Allocate with a bad owner: %v", err)
	}
	_, err = m.Lookup(ctx, a.Name, "vm-2")
	if errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("Lookup of an owner without address: %v", err)
	}
	_, err = m.Pool(ctx, "missing")
	if errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("Pool(missing): %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Pools(cctx); errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("Pools on a canceled context: %v", err)
	}

	driver := obs.DriverName(d)
	want := []struct {
		op    string
		codes []string // one per call, "" for success
	}{
		{"ipam.CreatePool", []string{""}},
		{"ipam.Allocate", []string{"", "", "InvalidArgument"}},
		{"ipam.Lookup", []string{"NotFound"}},
		{"ipam.Pool", []string{"NotFound"}},
		{"ipam.Pools", []string{"Canceled"}},
	}
	total := 0
	for _, w := range want {
		total += len(w.codes)
		spans := r.SpansNamed(w.op)
		if len(spans) != len(w.codes) {
			t.Errorf("%d %s spans, want %d", len(spans), w.op, len(w.codes))
			continue
		}
		perCode := map[string]int64{}
		for i, s := range spans {
			if s.Code != w.codes[i] || s.Error != (w.codes[i] != "") {
				t.Errorf("%s span %d: error.type %q (error status %v), want %q", w.op, i, s.Code, s.Error, w.codes[i])
			}
			if s.Attrs["driver"] != driver {
				t.Errorf("%s span %d: driver %q, want %q", w.op, i, s.Attrs["driver"], driver)
			}
			code := w.codes[i]
			if code == "" {
				code = "OK"
			}
			perCode[code]++
		}
		for code, n := range perCode {
			match := map[string]string{"op": w.op, "code": code, "driver": driver}
			if got := r.Sum("managedvm.calls", match); got != n {
				t.Errorf("managedvm.calls{op=%s code=%s} = %d, want %d", w.op, code, got, n)
			}
			wantErr := n
			if code == "OK" {
				wantErr = 0
			}
			if got := r.Sum("managedvm.errors", match); got != wantErr {
				t.Errorf("managedvm.errors{op=%s code=%s} = %d, want %d", w.op, code, got, wantErr)
			}
			if got := r.HistogramCount("managedvm.call.duration", match); got != uint64(n) {
				t.Errorf("managedvm.call.duration{op=%s code=%s} has %d recordings, want %d", w.op, code, got, n)
			}
		}
	}
	if n := len(r.Spans()); n != total {
		t.Errorf("%d spans in all, want %d (one per call)", n, total)
	}
}

// testTelemetryPoolGauges: managedvm.ipam.pool.used and .size report every
// pool at each collection, and stop after Close.
func testTelemetryPoolGauges(t *testing.T, d ipam.Driver) {
	r := obstest.New(t)
	m := ipam.New(d, &ipam.Options{MeterProvider: r.MP})
	a, b := zoneA(), tiny()
	mustCreate(t, m, a)
	mustCreate(t, m, b)
	mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-1"})
	mustAlloc(t, m, ipam.Request{Pool: a.Name, Owner: "vm-2"})
	mustAlloc(t, m, ipam.Request{Pool: b.Name, Owner: "vm-1"})
	gauge := func(name, pool string) (float64, bool) {
		return r.Gauge(name, map[string]string{"pool": pool, "driver": obs.DriverName(d)})
	}
	for _, w := range []struct {
		pool       string
		used, size int
	}{{a.Name, 2, a.Size()}, {b.Name, 1, b.Size()}} {
		if v, ok := gauge("managedvm.ipam.pool.used", w.pool); !ok || v != float64(w.used) {
			t.Errorf("managedvm.ipam.pool.used{pool=%s} = %v (found %v), want %d", w.pool, v, ok, w.used)
		}
		if v, ok := gauge("managedvm.ipam.pool.size", w.pool); !ok || v != float64(w.size) {
			t.Errorf("managedvm.ipam.pool.size{pool=%s} = %v (found %v), want %d", w.pool, v, ok, w.size)
		}
	}
	// The gauges follow the pools at each collection.
	mustRelease(t, m, a.Name, "vm-1")
	if v, _ := gauge("managedvm.ipam.pool.used", a.Name); v != 1 {
		t.Errorf("managedvm.ipam.pool.used{pool=%s} after a release = %v, want 1", a.Name, v)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if v, ok := gauge("managedvm.ipam.pool.used", a.Name); ok {
		t.Errorf("managedvm.ipam.pool.used{pool=%s} after Close = %v, want no observation", a.Name, v)
	}
}
