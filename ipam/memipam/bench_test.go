package memipam_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
)

func benchPool(bits int) ipam.Pool {
	return ipam.Pool{
		Name:    "bench",
		Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}), bits),
		Gateway: netip.AddrFrom4([4]byte{10, 0, 0, 1}),
	}
}

// benchOwners returns n owner keys shaped like real ones.
func benchOwners(n int) []string {
	owners := make([]string, n)
	for i := range owners {
		owners[i] = fmt.Sprintf("vsphere-prod/4211%04x-9c3e-5e6b-8f0a-%012x", i>>16, i)
	}
	return owners
}

func newBenchIPAM(b *testing.B, p ipam.Pool) *ipam.IPAM { return newBenchIPAMWith(b, p, nil) }

func newBenchIPAMWith(b *testing.B, p ipam.Pool, opts *memipam.Options) *ipam.IPAM {
	m := memipam.New(opts)
	if err := m.CreatePool(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkAllocate measures one Allocate of a new owner. The cost must not
// depend on the pool's size: compare prefix=16 with prefix=24. When the pool
// is full it is recreated with the timer stopped.
func BenchmarkAllocate(b *testing.B) {
	for _, bits := range []int{24, 16} {
		b.Run(fmt.Sprintf("prefix=%d", bits), func(b *testing.B) {
			ctx := context.Background()
			p := benchPool(bits)
			owners := benchOwners(p.Size())
			m := newBenchIPAM(b, p)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(owners) {
					b.StopTimer()
					m, i = newBenchIPAM(b, p), 0
					b.StartTimer()
				}
				if _, err := m.Allocate(ctx, ipam.Request{Pool: "bench", Owner: owners[i]}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAllocateLayers is BenchmarkAllocate three ways in one run:
// through the portable ipam.IPAM (what a host calls), on the driver
// alone (memipam.NewDriver, no checks, no bookkeeping), and on the driver
// after the request's validation, so that the difference between the
// lines is the cost of each part of the portable layer.
func BenchmarkAllocateLayers(b *testing.B) {
	ctx := context.Background()
	p := benchPool(24)
	owners := benchOwners(p.Size())
	newDriver := func() *memipam.Driver {
		d := memipam.NewDriver(nil)
		if err := d.CreatePool(ctx, p); err != nil {
			b.Fatal(err)
		}
		return d
	}
	loop := func(b *testing.B, alloc func(ipam.Request) error, reset func()) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i == len(owners) {
				b.StopTimer()
				reset()
				i = 0
				b.StartTimer()
			}
			if err := alloc(ipam.Request{Pool: "bench", Owner: owners[i]}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	b.Run("layer=portable", func(b *testing.B) {
		m := newBenchIPAM(b, p)
		loop(b, func(r ipam.Request) error { _, err := m.Allocate(ctx, r); return err },
			func() { m = newBenchIPAM(b, p) })
	})
	b.Run("layer=validate+driver", func(b *testing.B) {
		d := newDriver()
		loop(b, func(r ipam.Request) error {
			if err := r.Validate(); err != nil {
				return err
			}
			_, err := d.Allocate(ctx, r)
			return err
		}, func() { d = newDriver() })
	})
	b.Run("layer=driver", func(b *testing.B) {
		d := newDriver()
		loop(b, func(r ipam.Request) error { _, err := d.Allocate(ctx, r); return err },
			func() { d = newDriver() })
	})
}

// discardSpans is a span processor that drops every span: the SDK still
// records each one (sampled, attributes, status), only the export is
// left out.
type discardSpans struct{}

func (discardSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardSpans) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardSpans) Shutdown(context.Context) error                  { return nil }
func (discardSpans) ForceFlush(context.Context) error                { return nil }

// BenchmarkAllocateTelemetry is BenchmarkAllocate with the OpenTelemetry
// SDK installed: every span recorded (AlwaysSample, then dropped instead
// of exported) and the metrics aggregated by a manual reader, as a host
// that exports them would have them.
// "with=metrics" installs only the MeterProvider.
func BenchmarkAllocateTelemetry(b *testing.B) {
	for _, with := range []string{"metrics", "traces+metrics"} {
		for _, bits := range []int{24, 16} {
			b.Run(fmt.Sprintf("with=%s/prefix=%d", with, bits), func(b *testing.B) {
				benchAllocateTelemetry(b, bits, with == "traces+metrics")
			})
		}
	}
}

func benchAllocateTelemetry(b *testing.B, bits int, traces bool) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(discardSpans{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	opts := &memipam.Options{MeterProvider: mp}
	if traces {
		opts.TracerProvider = tp
	}
	ctx := context.Background()
	p := benchPool(bits)
	owners := benchOwners(p.Size())
	m := newBenchIPAMWith(b, p, opts)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(owners) {
			b.StopTimer()
			_ = m.Close() // unregisters its gauges
			m, i = newBenchIPAMWith(b, p, opts), 0
			b.StartTimer()
		}
		if _, err := m.Allocate(ctx, ipam.Request{Pool: "bench", Owner: owners[i]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAllocateRelease measures churn on a half-full /24: each
// iteration allocates an address to a new owner and releases the oldest
// holder's.
func BenchmarkAllocateRelease(b *testing.B) {
	ctx := context.Background()
	p := benchPool(24)
	owners := benchOwners(p.Size())
	m := newBenchIPAM(b, p)
	half := len(owners) / 2
	for _, o := range owners[:half] {
		if _, err := m.Allocate(ctx, ipam.Request{Pool: "bench", Owner: o}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	next, oldest := half, 0 // owners[oldest:next] (mod len) hold addresses
	for b.Loop() {
		if _, err := m.Allocate(ctx, ipam.Request{Pool: "bench", Owner: owners[next]}); err != nil {
			b.Fatal(err)
		}
		if err := m.Release(ctx, "bench", owners[oldest]); err != nil {
			b.Fatal(err)
		}
		next, oldest = (next+1)%len(owners), (oldest+1)%len(owners)
	}
}

// BenchmarkAllocateParallel measures Allocate and Release from many
// goroutines on one pool (one lock), for the record.
func BenchmarkAllocateParallel(b *testing.B) {
	ctx := context.Background()
	p := benchPool(16)
	owners := benchOwners(p.Size())
	m := newBenchIPAM(b, p)
	b.ReportAllocs()
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		base := int(seq.Add(1)-1) * 1024 % len(owners) // owners of its own
		i := 0
		for pb.Next() {
			o := owners[(base+i%1024)%len(owners)]
			i++
			if _, err := m.Allocate(ctx, ipam.Request{Pool: "bench", Owner: o}); err != nil {
				b.Error(err)
				return
			}
			if err := m.Release(ctx, "bench", o); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
