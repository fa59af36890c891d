package enroll_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/pgcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/pgsql/pgtest"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// The scale benchmarks of the Indexer (issue 25): simulated vCenters with
// 1 ms per SOAP call (vspheresim.Options.DelayMS, held by the simulator's
// server for every call it serves, so the driver's round trips cost wire
// latency), the vSphere driver, and the PostgreSQL CMDB of
// MANAGEDVM_PG_URL. -short keeps them small (what .ci/run runs once).

// scaleSize is the world of a benchmark: vcenters simulated vCenters with
// vms VMs each.
type scaleSize struct{ vcenters, vms int }

func (s scaleSize) total() int { return s.vcenters * s.vms }

func sizeFor(full scaleSize) scaleSize {
	if testing.Short() {
		return scaleSize{vcenters: full.vcenters, vms: 40}
	}
	return full
}

// scaleSims are the simulated vCenters of one size, built once per test
// process (10,000 VMs take half a minute to build) and shared by the
// benchmarks and their -count runs; nothing changes their inventory
// (the steady-state benchmark changes IPs and power states only).
var (
	scaleMu   sync.Mutex
	scaleSims = map[scaleSize][]*vspheresim.Sim{}
)

// steadyOff (VMs powered off) and steadyNext (the last address given)
// are the state BenchmarkIndexerSteadyState's changes left the cached
// simulators in; only the benchmark's own goroutine uses them.
var (
	steadyOff  = map[cmdb.Key]bool{}
	steadyNext int
)

func simsFor(b *testing.B, size scaleSize) []*vspheresim.Sim {
	b.Helper()
	scaleMu.Lock()
	defer scaleMu.Unlock()
	if sims, ok := scaleSims[size]; ok {
		return sims
	}
	ctx := context.Background()
	sims := make([]*vspheresim.Sim, size.vcenters)
	for i := range sims {
		sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sim.CreateVMs(ctx, size.vms, fmt.Sprintf("vc%d-vm", i), vspheresim.Placement{}, &vspheresim.GuestState{
			ToolsRunning: true, IP: "192.0.2.7", Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)",
		}); err != nil {
			b.Fatal(err)
		}
		sim.WaitTasks()
		// From here on every call costs a round trip's latency.
		sim.SetDelay(1)
		sims[i] = sim
	}
	scaleSims[size] = sims
	return sims
}

// connect opens one vSphere provider per simulator, named vc0, vc1, ...
func connect(b *testing.B, sims []*vspheresim.Sim) (map[string]*provider.Provider, func()) {
	b.Helper()
	provs := map[string]*provider.Provider{}
	closeAll := func() {
		for _, p := range provs {
			_ = p.Close()
		}
	}
	for i, sim := range sims {
		p, err := vsphere.New(context.Background(), sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{RootCAs: sim.CAs})
		if err != nil {
			closeAll()
			b.Fatal(err)
		}
		provs[fmt.Sprintf("vc%d", i)] = p
	}
	return provs, closeAll
}

// eachProvider runs f for every provider at once, as the Indexer's Run
// does, and returns the first error.
func eachProvider(provs map[string]*provider.Provider, f func(name string, p *provider.Provider) error) error {
	var wg sync.WaitGroup
	errc := make(chan error, len(provs))
	for name, p := range provs {
		wg.Go(func() {
			if err := f(name, p); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func listAll(provs map[string]*provider.Provider, want int) error {
	var mu sync.Mutex
	n := 0
	err := eachProvider(provs, func(_ string, p *provider.Provider) error {
		vms, err := p.List(context.Background(), nil)
		mu.Lock()
		n += len(vms)
		mu.Unlock()
		return err
	})
	if err == nil && n != want {
		err = fmt.Errorf("listed %d VMs, want %d", n, want)
	}
	return err
}

// pgCMDB is a CMDB over a fresh, migrated schema.
func pgCMDB(b *testing.B, url string) *cmdb.CMDB {
	b.Helper()
	pool := pgtest.OpenPool(b, url, pgtest.NewSchema(b, url, "enroll_scale_"), 16)
	if err := pgcmdb.Migrate(context.Background(), pool); err != nil {
		b.Fatal(err)
	}
	return pgcmdb.New(pool, nil)
}

func scaleOrchestrator(b *testing.B, provs map[string]*provider.Provider, db *cmdb.CMDB, opts *enroll.Options) *enroll.Orchestrator {
	b.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Observer == nil {
		opts.Observer = enroll.ObserverFunc(func(enroll.Event) {})
	}
	o, err := enroll.New(enroll.Config{
		Providers: provs, IPAM: memipam.New(nil), Firewall: memfw.New(nil), CMDB: db,
		Store:        enroll.NewMemoryStore(nil),
		Policy:       enroll.Policy{Pool: poolName, ManagementSources: []netip.Prefix{mgmt}},
		Configurator: guest.ConfiguratorFunc(func(context.Context, guest.Target, *guest.Executor) error { return nil }),
	}, opts)
	if err != nil {
		b.Fatal(err)
	}
	return o
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC() // the second cycle frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkInitialIndex measures the Indexer's first sync of five
// simulated vCenters of 2,000 VMs each (1 ms per SOAP call) into an empty
// PostgreSQL CMDB, beside its reference, the five providers' List alone
// (both run the five vCenters at once, as Indexer.Run does). Sync reports
// sync/list, its time over the List time measured just before each sync
// (the target is at most 2), and bytes/VM, the heap the sync leaves
// behind (after GC, with the orchestrator and the providers still alive,
// the simulators excluded; target under 4 KiB).
func BenchmarkInitialIndex(b *testing.B) {
	url := pgtest.URL(b)
	size := sizeFor(scaleSize{vcenters: 5, vms: 2000})
	sims := simsFor(b, size)
	b.Run("List", func(b *testing.B) {
		provs, closeAll := connect(b, sims)
		defer closeAll()
		if err := listAll(provs, size.total()); err != nil { // the topology, read once
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if err := listAll(provs, size.total()); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(size.total()), "VMs")
	})
	b.Run("Sync", func(b *testing.B) {
		var listed, synced time.Duration
		var retained float64
		b.StopTimer()
		for range b.N {
			// The reference, on connections of its own.
			lp, closeList := connect(b, sims)
			t0 := time.Now()
			err := listAll(lp, size.total())
			listed += time.Since(t0)
			closeList()
			if err != nil {
				b.Fatal(err)
			}

			db := pgCMDB(b, url)
			provs, closeAll := connect(b, sims)
			o := scaleOrchestrator(b, provs, db, &enroll.Options{})
			ix := o.Indexer(nil)
			before := heapInUse()
			b.StartTimer()
			t0 = time.Now()
			err = eachProvider(provs, func(name string, _ *provider.Provider) error { return ix.Sync(context.Background(), name) })
			synced += time.Since(t0)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			retained += float64(heapInUse()) - float64(before)
			runtime.KeepAlive(ix)
			recs, err := db.List(context.Background(), cmdb.Filter{})
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) != size.total() {
				b.Fatalf("%d records after the sync of %d VMs", len(recs), size.total())
			}
			for _, r := range recs {
				if r.State != cmdb.Available || r.VM.ID != r.Key.VMID || len(r.VM.Guest.IPs) != 1 {
					b.Fatalf("record %+v", r)
				}
			}
			_ = o.Close()
			closeAll()
		}
		b.ReportMetric(float64(size.total()), "VMs")
		b.ReportMetric(synced.Seconds()/listed.Seconds(), "sync/list")
		b.ReportMetric(retained/float64(b.N)/float64(size.total()), "bytes/VM")
	})
}

// arrivals is a TracerProvider that records, per provider, when the
// Indexer began applying its latest event (the span
// "enroll.Indexer.apply" starts when Stream.Next returned it); spans are
// otherwise the no-op ones. Each provider's events are applied one at a
// time on one goroutine, so the Observer's VMChanged for that provider
// belongs to the latest start.
type arrivals struct {
	noop.TracerProvider
	mu     sync.Mutex
	latest map[string]time.Time
}

func (a *arrivals) Tracer(string, ...trace.TracerOption) trace.Tracer { return arrivalTracer{a: a} }

func (a *arrivals) at(prov string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.latest[prov]
}

type arrivalTracer struct {
	noop.Tracer
	a *arrivals
}

func (t arrivalTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if name == "enroll.Indexer.apply" {
		now := time.Now()
		cfg := trace.NewSpanStartConfig(opts...)
		for _, kv := range cfg.Attributes() {
			if kv.Key == attribute.Key("provider") {
				t.a.mu.Lock()
				t.a.latest[kv.Value.AsString()] = now
				t.a.mu.Unlock()
			}
		}
	}
	return t.Tracer.Start(ctx, name, opts...)
}

// pending is one change made to a simulated VM and when.
type pending struct {
	key            cmdb.Key
	start, applied time.Time // before the control call, after it returned
}

// BenchmarkIndexerSteadyState measures the watch path: after the initial
// sync, b.N changes at 100 per second spread over the five simulated
// vCenters of 2,000 VMs each (1 ms per SOAP call), four in five a guest IP
// change (SetIP), one in five a power change (PowerOff or PowerOn), each
// to a different VM. Reported, over the b.N changes (run with -benchtime
// Nx; each change is one op): e2e, from just before the simulator control
// call to the Indexer having written the CMDB row; hold, the part the
// simulator takes (the control call and the delivery of the change to
// the driver's watch, up to the moment Stream.Next returns it); indexer,
// the rest (e2e minus hold: applying the event, the PostgreSQL round
// trips and the cursor); each as p50 and p99 in ms; cpu-µs/event, the
// process's CPU time (simulators included) over the changes.
func BenchmarkIndexerSteadyState(b *testing.B) {
	url := pgtest.URL(b)
	size := sizeFor(scaleSize{vcenters: 5, vms: 2000})
	sims := simsFor(b, size)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		mu      sync.Mutex
		waiting = map[cmdb.Key]*pending{}
		done    []pending
		rows    []time.Time
		arrived []time.Time
		allSeen = make(chan struct{})
		want    = -1
	)
	tp := &arrivals{latest: map[string]time.Time{}}
	observe := func(e enroll.Event) {
		if e.Kind != enroll.VMChanged {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		p, ok := waiting[e.VM]
		if !ok {
			return
		}
		delete(waiting, e.VM)
		done, rows, arrived = append(done, *p), append(rows, now), append(arrived, tp.at(e.VM.Provider))
		if len(done) == want {
			close(allSeen)
		}
	}
	db := pgCMDB(b, url)
	provs, closeAll := connect(b, sims)
	defer closeAll()
	o := scaleOrchestrator(b, provs, db, &enroll.Options{Observer: enroll.ObserverFunc(observe), TracerProvider: tp})
	defer func() { _ = o.Close() }()
	ix := o.Indexer(&enroll.IndexerOptions{RetryInterval: 100 * time.Millisecond})
	if err := eachProvider(provs, func(name string, _ *provider.Provider) error { return ix.Sync(ctx, name) }); err != nil {
		b.Fatal(err)
	}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = ix.Run(ctx)
	}()
	defer func() {
		cancel()
		<-ran
	}()

	// The VMs, by simulator, and their state as the benchmark left it.
	type target struct {
		sim  *vspheresim.Sim
		prov string
		ids  []string
	}
	targets := make([]target, len(sims))
	for i, sim := range sims {
		vms, err := provs[fmt.Sprintf("vc%d", i)].List(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, len(vms))
		for j, vm := range vms {
			ids[j] = vm.ID
		}
		slices.Sort(ids)
		targets[i] = target{sim: sim, prov: fmt.Sprintf("vc%d", i), ids: ids}
	}
	// The simulators outlive one run of the benchmark (the N=1 run comes
	// first): so does what the changes left them in.
	powered, next := steadyOff, &steadyNext
	change := func(k int) (*pending, func() error) {
		t := targets[k%len(targets)]
		j := (k / len(targets)) % len(t.ids)
		id := t.ids[j]
		key := cmdb.Key{Provider: t.prov, VMID: id}
		p := &pending{key: key}
		if k%5 == 4 {
			off := powered[key]
			powered[key] = !off
			if off {
				return p, func() error { return t.sim.PowerOn(ctx, id) }
			}
			return p, func() error { return t.sim.PowerOff(ctx, id) }
		}
		*next++
		n := *next
		ip := netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}).String()
		return p, func() error { return t.sim.SetIP(ctx, id, ip) }
	}
	// The watches are up once a change per vCenter has reached the CMDB.
	warm := func(from, n int) int {
		mu.Lock()
		done, rows, arrived, want, allSeen = nil, nil, nil, n, make(chan struct{})
		mu.Unlock()
		for k := from; k < from+n; k++ {
			p, f := change(k)
			mu.Lock()
			waiting[p.key] = p
			p.start = time.Now()
			mu.Unlock()
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-allSeen:
		case <-time.After(2 * time.Minute):
			b.Fatal("the watches did not deliver the warm-up changes")
		}
		return from + n
	}
	k := warm(0, len(targets))
	mu.Lock()
	done, rows, arrived, want, allSeen = nil, nil, nil, b.N, make(chan struct{})
	mu.Unlock()

	tick := time.NewTicker(10 * time.Millisecond) // 100 a second
	defer tick.Stop()
	var calls sync.WaitGroup
	failed := make(chan error, b.N)
	// A VM's changes run one after another, in the order they were made
	// (a power-off issued while the power-on before it is still running
	// would be refused); different VMs' changes run at once.
	last := map[cmdb.Key]chan struct{}{}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		p, f := change(k + i)
		prev, mine := last[p.key], make(chan struct{})
		last[p.key] = mine
		calls.Go(func() {
			defer close(mine)
			if prev != nil {
				<-prev
			}
			mu.Lock()
			waiting[p.key] = p
			p.start = time.Now()
			mu.Unlock()
			err := f()
			mu.Lock()
			p.applied = time.Now()
			mu.Unlock()
			if err != nil {
				failed <- err
			}
		})
	}
	calls.Wait()
	close(failed)
	for err := range failed {
		b.Fatal(err)
	}
	select {
	case <-allSeen:
	case <-time.After(time.Minute):
		mu.Lock()
		n := len(done)
		mu.Unlock()
		b.Fatalf("only %d of %d changes reached the CMDB within a minute", n, b.N)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0

	mu.Lock()
	defer mu.Unlock()
	var e2e, hold, indexer, control []time.Duration
	for i, p := range done {
		e2e = append(e2e, rows[i].Sub(p.start))
		h := arrived[i].Sub(p.start)
		if arrived[i].Before(p.start) {
			h = 0 // cannot be: the arrival is that of an earlier event
		}
		hold = append(hold, h)
		indexer = append(indexer, rows[i].Sub(p.start)-h)
		control = append(control, p.applied.Sub(p.start))
	}
	ms := func(ds []time.Duration, q float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(float64(len(ds))*q))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(e2e, 0.50), "e2e-p50-ms")
	b.ReportMetric(ms(e2e, 0.99), "e2e-p99-ms")
	b.ReportMetric(ms(hold, 0.50), "hold-p50-ms")
	b.ReportMetric(ms(hold, 0.99), "hold-p99-ms")
	b.ReportMetric(ms(control, 0.99), "control-p99-ms")
	b.ReportMetric(ms(indexer, 0.50), "indexer-p50-ms")
	b.ReportMetric(ms(indexer, 0.99), "indexer-p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}
