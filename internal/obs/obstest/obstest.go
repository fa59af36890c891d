// Package obstest records the spans and metrics of portable types in
// memory, for the tests that check one span per call, the errs code on
// failures and the gauges.
package obstest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Recorder holds an SDK TracerProvider and MeterProvider that record in
// memory.
type Recorder struct {
	t      testing.TB
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	TP     *sdktrace.TracerProvider
	MP     *sdkmetric.MeterProvider
}

// New returns a Recorder shut down when the test ends.
func New(t testing.TB) *Recorder {
	r := &Recorder{t: t, spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.TP = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.MP = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		_ = r.TP.Shutdown(context.Background())
		_ = r.MP.Shutdown(context.Background())
	})
	return r
}

// Span is one ended span.
type Span struct {
	Name string
	// Code is the error.type attribute ("" on success).
	Code   string
	Error  bool
	Attrs  map[string]string
	Parent string // parent span ID, "" for a root
	ID     string
	Trace  string
}

// Spans returns the spans ended so far, in order.
func (r *Recorder) Spans() []Span {
	var out []Span
	for _, s := range r.spans.Ended() {
		sp := Span{Name: s.Name(), Error: s.Status().Code == 1, Attrs: map[string]string{},
			ID: s.SpanContext().SpanID().String(), Trace: s.SpanContext().TraceID().String()}
		if s.Parent().IsValid() {
			sp.Parent = s.Parent().SpanID().String()
		}
		for _, kv := range s.Attributes() {
			sp.Attrs[string(kv.Key)] = kv.Value.String()
			if kv.Key == "error.type" {
				sp.Code = kv.Value.AsString()
			}
		}
		out = append(out, sp)
	}
	return out
}

// SpansNamed returns the ended spans with that name.
func (r *Recorder) SpansNamed(name string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Collect reads the metrics recorded so far.
func (r *Recorder) Collect() metricdata.ResourceMetrics {
	r.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		r.t.Fatalf("collecting metrics: %v", err)
	}
	return rm
}

// Sum returns the sum of the Int64 counter or gauge points of the named
// instrument whose attributes include every key=value in match.
func (r *Recorder) Sum(name string, match map[string]string) int64 {
	r.t.Helper()
	var n int64
	for _, sm := range r.Collect().ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if matches(p.Attributes, match) {
						n += p.Value
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if matches(p.Attributes, match) {
						n += p.Value
					}
				}
			}
		}
	}
	return n
}

// Gauge returns the float64 or int64 gauge value of the named instrument
// whose attributes include match, and whether one was found.
func (r *Recorder) Gauge(name string, match map[string]string) (float64, bool) {
	r.t.Helper()
	for _, sm := range r.Collect().ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if matches(p.Attributes, match) {
						return p.Value, true
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if matches(p.Attributes, match) {
						return float64(p.Value), true
					}
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if matches(p.Attributes, match) {
						return float64(p.Value), true
					}
				}
			}
		}
	}
	return 0, false
}

// HistogramCount returns the number of recordings of the named histogram
// whose attributes include match.
func (r *Recorder) HistogramCount(name string, match map[string]string) uint64 {
	r.t.Helper()
	var n uint64
	for _, sm := range r.Collect().ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, p := range d.DataPoints {
					if matches(p.Attributes, match) {
						n += p.Count
					}
				}
			}
		}
	}
	return n
}

func matches(set attribute.Set, match map[string]string) bool {
	for k, v := range match {
		got, ok := set.Value(attribute.Key(k))
		if !ok || got.String() != v {
			return false
		}
	}
	return true
}
