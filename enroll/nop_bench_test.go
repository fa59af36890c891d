package enroll_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
)

// Drivers that answer at once, so that a benchmark measures the
// orchestrator's own overhead (journal, events, saga bookkeeping).

type nopProvider struct {
	provider.Driver
	vm provider.VM
}

func (p nopProvider) Get(_ context.Context, id string) (provider.VM, error) {
	vm := p.vm
	vm.ID = id
	return vm, nil
}
func (nopProvider) ValidateCredentials(context.Context, string, guest.Credentials) error { return nil }
func (nopProvider) GuestExecutor(context.Context, string, guest.Credentials) (*guest.Executor, error) {
	return guest.New(nopExec{}, nil), nil
}

type nopExec struct{}

var debianFacts = []byte("ID=debian\nVERSION_ID=\"12\"\n__MANAGEDVM_UNAME__\n6.1.0\nx86_64\n")

func (nopExec) Run(context.Context, guest.Command) (guest.Result, error) {
	return guest.Result{Stdout: debianFacts}, nil
}
func (nopExec) Upload(context.Context, string, io.Reader, guest.UploadOptions) error { return nil }
func (nopExec) Family() guest.OSFamily                                               { return guest.Linux }
func (nopExec) Close() error                                                         { return nil }

type nopIPAM struct{ ipam.Driver }

func (nopIPAM) Allocate(_ context.Context, r ipam.Request) (ipam.Allocation, error) {
	return ipam.Allocation{Pool: r.Pool, Owner: r.Owner, Address: netip.AddrFrom4([4]byte{203, 0, 113, 7}), LocalIP: r.LocalIP}, nil
}

type nopFW struct{ natfw.Driver }

func (nopFW) EnsureNAT(context.Context, natfw.Rule) error { return nil }

type nopCMDB struct{ cmdb.Driver }

func (nopCMDB) Get(_ context.Context, k cmdb.Key) (cmdb.Record, error) {
	return cmdb.Record{}, errs.New(errs.NotFound, "nop", "no record")
}
func (nopCMDB) Upsert(_ context.Context, r cmdb.Record) (cmdb.Record, error) {
	r.Revision++
	return r, nil
}

type nopStore struct{ enroll.StoreDriver }

func (nopStore) CreateJournal(_ context.Context, j enroll.Journal) (enroll.Journal, error) {
	j.Revision = 1
	return j, nil
}
func (nopStore) UpdateJournal(_ context.Context, j enroll.Journal) (enroll.Journal, error) {
	j.Revision++
	return j, nil
}

// BenchmarkEnrollOverhead measures the orchestrator alone: every driver
// (and the Store) answers at once without work.
func BenchmarkEnrollOverhead(b *testing.B) {
	for _, conc := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) { benchOverhead(b, conc, nil, nil) })
	}
}

// BenchmarkEnrollOverheadTelemetry is BenchmarkEnrollOverhead with the
// OpenTelemetry SDK installed on the orchestrator and every driver: every
// span recorded (AlwaysSample; the processor drops it instead of
// exporting) and the metrics aggregated for a manual reader.
func BenchmarkEnrollOverheadTelemetry(b *testing.B) {
	for _, conc := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(dropSpans{}))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			defer func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) }()
			benchOverhead(b, conc, tp, mp)
		})
	}
}

type dropSpans struct{}

func (dropSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (dropSpans) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (dropSpans) Shutdown(context.Context) error                  { return nil }
func (dropSpans) ForceFlush(context.Context) error                { return nil }

func benchOverhead(b *testing.B, conc int, tp trace.TracerProvider, mp metric.MeterProvider) {
	prov := nopProvider{vm: provider.VM{Zone: zoneName, Power: provider.PoweredOn,
		Guest: provider.GuestInfo{Family: guest.Linux, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, ToolsRunning: true}}}
	po := &provider.Options{TracerProvider: tp, MeterProvider: mp}
	o, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{provName: provider.New(prov, po)},
		IPAM:      ipam.New(nopIPAM{}, &ipam.Options{TracerProvider: tp, MeterProvider: mp}),
		Firewall:  natfw.New(nopFW{}, &natfw.Options{TracerProvider: tp, MeterProvider: mp}),
		CMDB:      cmdb.New(nopCMDB{}, &cmdb.Options{TracerProvider: tp, MeterProvider: mp}),
		Store:     enroll.NewStore(nopStore{}, &enroll.StoreOptions{TracerProvider: tp, MeterProvider: mp}),
		Policy: enroll.Policy{Pool: poolName, ManagementSources: []netip.Prefix{mgmt},
			Requirements: map[guest.OSFamily]guest.Requirements{guest.Linux: {Distributions: map[string]string{"debian": "11"}}}},
	}, &enroll.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: enroll.ObserverFunc(func(enroll.Event) {}),
		TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	cred := guest.Password("admin", "pw")
	var next, failed atomic.Int64
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		wg.Go(func() {
			for int(next.Add(1)) <= b.N {
				if _, err := o.Enroll(context.Background(), enroll.Request{Key: "", Provider: provName, VMID: "vm", Credentials: cred}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if failed.Load() > 0 {
		b.Fatalf("%d enrollments failed", failed.Load())
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "enrollments/cpu-s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enrollments/s")
}
