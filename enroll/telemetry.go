package enroll

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/internal/obs"
)

// gaugeTimeout bounds the Store and IPAM reads one metric collection makes.
const gaugeTimeout = 5 * time.Second

// telemetry is the orchestrator's spans and gauges.
type telemetry struct {
	in  *obs.Instrument
	reg metric.Registration
	// lag holds, per provider name, the Indexer's last event lag in
	// seconds (float64).
	lag sync.Map
}

func (o *Orchestrator) initTelemetry(opts *Options) error {
	o.tel.in = obs.New("enroll", "orchestrator", obs.Options{TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider})
	if opts.MeterProvider == nil {
		return nil
	}
	m := opts.MeterProvider.Meter(obs.Scope + "enroll")
	active, err := m.Int64ObservableGauge("managedvm.enroll.runs.active",
		metric.WithDescription("Enrollments, unenrollments and cleanups this orchestrator is running now."), metric.WithUnit("{journal}"))
	if err != nil {
		return err
	}
	open, err := m.Int64ObservableGauge("managedvm.enroll.journals.open",
		metric.WithDescription("Open journals in the Store (every replica's), by operation and phase."), metric.WithUnit("{journal}"))
	if err != nil {
		return err
	}
	lag, err := m.Float64ObservableGauge("managedvm.enroll.indexer.lag",
		metric.WithDescription("Time from a provider event (its own timestamp, else its arrival) to the CMDB write the Indexer made for it, for the last event of each provider."), metric.WithUnit("s"))
	if err != nil {
		return err
	}
	used, err := m.Int64ObservableGauge("managedvm.enroll.pool.used",
		metric.WithDescription("Addresses allocated in each IPAM pool."), metric.WithUnit("{address}"))
	if err != nil {
		return err
	}
	size, err := m.Int64ObservableGauge("managedvm.enroll.pool.size",
		metric.WithDescription("Allocatable addresses of each IPAM pool."), metric.WithUnit("{address}"))
	if err != nil {
		return err
	}
	inst := attribute.String("instance", o.instance)
	o.tel.reg, err = m.RegisterCallback(func(ctx context.Context, ob metric.Observer) error {
		o.activeMu.Lock()
		n := len(o.active)
		o.activeMu.Unlock()
		ob.ObserveInt64(active, int64(n), metric.WithAttributes(inst))

		o.tel.lag.Range(func(k, v any) bool {
			ob.ObserveFloat64(lag, v.(float64), metric.WithAttributes(attribute.String("provider", k.(string))))
			return true
		})

		ctx, cancel := context.WithTimeout(ctx, gaugeTimeout)
		defer cancel()
		if js, err := o.cfg.Store.OpenJournals(ctx); err == nil {
			type opPhase struct {
				op    Op
				phase Phase
			}
			counts := map[opPhase]int64{}
			for _, j := range js {
				counts[opPhase{j.Op, j.Phase}]++
			}
			for k, c := range counts {
				ob.ObserveInt64(open, c, metric.WithAttributes(attribute.String("op", string(k.op)), attribute.String("phase", string(k.phase))))
			}
		}
		if pools, err := o.cfg.IPAM.Pools(ctx); err == nil {
			for _, p := range pools {
				a := metric.WithAttributes(attribute.String("pool", p.Name))
				ob.ObserveInt64(used, int64(p.Used), a)
				ob.ObserveInt64(size, int64(p.Size), a)
			}
		}
		return nil
	}, active, open, lag, used, size)
	return err
}

// Close stops the orchestrator's metric callbacks (the gauges). It does not
// stop running operations or close the drivers, which the host owns.
func (o *Orchestrator) Close() error {
	if o.tel.reg != nil {
		return o.tel.reg.Unregister()
	}
	return nil
}

// span starts the span of a public operation on vm.
func (o *Orchestrator) span(ctx context.Context, op string, vm cmdb.Key) (context.Context, obs.Call) {
	if o.tel.in.Off() {
		return o.tel.in.Start(ctx, op)
	}
	if vm.Provider == "" && vm.VMID == "" {
		return o.tel.in.StartWith(ctx, op, attribute.String("instance", o.instance))
	}
	return o.tel.in.StartWith(ctx, op, attribute.String("instance", o.instance), attribute.String("vm", vm.String()))
}

// stepOps names the spans of every step and compensation, built once so
// that a step with telemetry off costs no string concatenation.
var stepOps = func() map[string][2]string {
	m := map[string][2]string{}
	for name := range steps {
		m[name] = [2]string{"enroll.step." + name, "enroll.undo." + name}
	}
	return m
}()

// stepSpan starts the span of one step (undo: of its compensation).
func (r *run) stepSpan(ctx context.Context, step string, undo bool) (context.Context, obs.Call) {
	i := 0
	if undo {
		i = 1
	}
	op := stepOps[step][i]
	if r.o.tel.in.Off() {
		return r.o.tel.in.Start(ctx, op)
	}
	return r.o.tel.in.StartWith(ctx, op, attribute.String("journal", r.j.ID), attribute.String("op", string(r.j.Op)))
}

// indexed records the Indexer's lag for one event of provider name.
func (o *Orchestrator) indexed(name string, eventTime, arrived time.Time) {
	if !o.tel.in.Metered() {
		return
	}
	from := eventTime
	if from.IsZero() || from.After(arrived) {
		from = arrived
	}
	o.tel.lag.Store(name, time.Since(from).Seconds())
}
