package memguest_test

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkRunOverhead measures what an executor adds around a handler
// that answers at once (the same source before and after issue 18).
func BenchmarkRunOverhead(b *testing.B) {
	ex := memguest.New(guest.Linux, &memguest.Options{Default: memguest.Reply("ok\n")})
	cmd := guest.Command{Args: []string{"true", "x"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ex.Run(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunOverheadSDK is BenchmarkRunOverhead with an OpenTelemetry
// SDK installed (spans batched to an exporter that drops them, metrics
// aggregated for a manual reader): the cost of telemetry per Run.
func BenchmarkRunOverheadSDK(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	ctx := context.Background()
	defer func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) }()
	ex := memguest.New(guest.Linux, &memguest.Options{Default: memguest.Reply("ok\n"),
		Executor: &guest.Options{TracerProvider: tp, MeterProvider: mp}})
	cmd := guest.Command{Args: []string{"true", "x"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ex.Run(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}
