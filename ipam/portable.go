package ipam

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/obs"
)

// Options configures an [IPAM]. A nil *Options is ready to use: nothing
// is logged, traced or measured.
type Options struct {
	// Logger receives one Debug line per call (keys op, code, err,
	// duration). Nil discards.
	Logger *slog.Logger
	// TracerProvider, if set, records one span per call.
	TracerProvider trace.TracerProvider
	// MeterProvider, if set, records the call metrics and the pool
	// gauges (see the package doc).
	MeterProvider metric.MeterProvider
	// GaugeTimeout bounds the driver's Pools call the pool gauges make
	// at each collection; 0 means DefaultGaugeTimeout.
	GaugeTimeout time.Duration
}

// DefaultGaugeTimeout is the default of Options.GaugeTimeout.
const DefaultGaugeTimeout = 2 * time.Second

// IPAM allocates public addresses from pools, over a [Driver]. It checks
// every call's context and arguments, so that nothing invalid reaches the
// driver, names the operation in every error, copies what it returns, and
// records the call's span, metrics and log line. Create it with [New] (or
// with a driver package's constructor, such as memipam.New); it is safe for
// concurrent use when its driver is, which every driver must be.
type IPAM struct {
	d      Driver
	in     *obs.Instrument
	closed obs.Closed
	gauges metric.Registration // nil without a MeterProvider
}

// New returns the IPAM over d. It panics if d is nil.
func New(d Driver, opts *Options) *IPAM {
	if d == nil {
		panic("ipam.New: nil Driver")
	}
	var o obs.Options
	if opts != nil {
		o = obs.Options{Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider}
	}
	m := &IPAM{d: d, in: obs.New("ipam", obs.DriverName(d), o)}
	if o.MeterProvider != nil {
		timeout := opts.GaugeTimeout
		if timeout <= 0 {
			timeout = DefaultGaugeTimeout
		}
		m.registerGauges(o.MeterProvider, timeout)
	}
	return m
}

// begin checks what every call checks first: Close, then the context.
func (m *IPAM) begin(ctx context.Context, op string) error {
	if err := m.closed.Check(op); err != nil {
		return err
	}
	return errs.FromContext(ctx, op)
}

func checkPoolName(name string) error { return checkName("pool name", name) }

func checkOwner(pool, owner string) error {
	if err := checkPoolName(pool); err != nil {
		return err
	}
	return checkKey("owner", owner)
}

// CreatePool adds a pool. Creating an identical pool (same prefix, gateway
// and reserved list) again is a no-op; a different pool under an existing
// name is AlreadyExists. The pool is checked with [Pool.Validate].
func (m *IPAM) CreatePool(ctx context.Context, p Pool) error {
	const op = "ipam.CreatePool"
	ctx, c := m.in.Start(ctx, op)
	err := m.begin(ctx, op)
	if err == nil {
		err = p.Validate()
	}
	if err == nil {
		p.Reserved = cloneRanges(p.Reserved) // the driver may keep it
		err = m.d.CreatePool(ctx, p)
	}
	return c.End(ctx, err)
}

// DeletePool removes an empty pool (FailedPrecondition while addresses
// are allocated; NotFound if there is no such pool).
func (m *IPAM) DeletePool(ctx context.Context, name string) error {
	const op = "ipam.DeletePool"
	ctx, c := m.in.Start(ctx, op)
	err := m.begin(ctx, op)
	if err == nil {
		err = checkPoolName(name)
	}
	if err == nil {
		err = m.d.DeletePool(ctx, name)
	}
	return c.End(ctx, err)
}

// Pool returns a pool and its usage.
func (m *IPAM) Pool(ctx context.Context, name string) (PoolInfo, error) {
	const op = "ipam.Pool"
	ctx, c := m.in.Start(ctx, op)
	err := m.begin(ctx, op)
	if err == nil {
		err = checkPoolName(name)
	}
	var pi PoolInfo
	if err == nil {
		pi, err = m.d.Pool(ctx, name)
		pi.Reserved = cloneRanges(pi.Reserved)
	}
	if err != nil {
		pi = PoolInfo{}
	}
	return pi, c.End(ctx, err)
}

// Pools lists every pool, by name.
func (m *IPAM) Pools(ctx context.Context) ([]PoolInfo, error) {
	const op = "ipam.Pools"
	ctx, c := m.in.Start(ctx, op)
	err := m.begin(ctx, op)
	var out []PoolInfo
	if err == nil {
		var ps []PoolInfo
		ps, err = m.d.Pools(ctx)
		if err == nil {
			out = make([]PoolInfo, len(ps))
			for i, p := range ps {
				p.Reserved = cloneRanges(p.Reserved)
				out[i] = p
			}
		}
	}
	return out, c.End(ctx, err)
}

// Allocate gives req.Owner an address from req.Pool. If the owner already
// holds one, that allocation is returned (with LocalIP updated when req
// sets a different one): Allocate is idempotent. A full pool is
// ResourceExhausted. The request is checked with [Request.Validate].
func (m *IPAM) Allocate(ctx context.Context, req Request) (a Allocation, err error) {
	const op = "ipam.Allocate"
	ctx, c := m.in.Start(ctx, op)
	if err = m.begin(ctx, op); err == nil {
		if err = req.validate(); err == nil {
			a, err = m.d.Allocate(ctx, req)
		}
	}
	if err != nil {
		a = Allocation{}
	}
	return a, c.End(ctx, err)
}

// Release frees the owner's address. Releasing what is not held is not an
// error (idempotent); an unknown pool is NotFound.
func (m *IPAM) Release(ctx context.Context, pool, owner string) error {
	const op = "ipam.Release"
	ctx, c := m.in.Start(ctx, op)
	err := m.begin(ctx, op)
	if err == nil {
		err = checkOwner(pool, owner)
	}
	if err == nil {
		err = m.d.Release(ctx, pool, owner)
	}
	return c.End(ctx, err)
}

// SetLocalIP records the owner's new local address (the NAT relation); the
// zero netip.Addr clears it. An owner that holds no address is NotFound.
func (m *IPAM) SetLocalIP(ctx context.Context, pool, owner string, local netip.Addr) (Allocation, error) {
	const op = "ipam.SetLocalIP"
	ctx, c := m.in.Start(ctx, op)
	err := m.begin(ctx, op)
	if err == nil {
		err = checkOwner(pool, owner)
	}
	if err == nil {
		err = checkLocal(local)
	}
	var a Allocation
	if err == nil {
		a, err = m.d.SetLocalIP(ctx, pool, owner, local)
	}
	if err != nil {
		a = Allocation{}
	}
	return a, c.End(ctx, err)
}

// Lookup returns the owner's allocation, or NotFound.
func (m *IPAM) Lookup(ctx context.Context, pool, owner string) (Allocation, error) {
	const op = "ipam.Lookup"
	ctx, c := m.in.Start(ctx, op)
	err := m.begin(ctx, op)
	if err == nil {
		err = checkOwner(pool, owner)
	}
	var a Allocation
	if err == nil {
		a, err = m.d.Lookup(ctx, pool, owner)
	}
	if err != nil {
		a = Allocation{}
	}
	return a, c.End(ctx, err)
}

// LookupAddress returns the allocation of a public address, or NotFound.
// The zero address is InvalidArgument.
func (m *IPAM) LookupAddress(ctx context.Context, pool string, addr netip.Addr) (Allocation, error) {
	const op = "ipam.LookupAddress"
	ctx, c := m.in.Start(ctx, op)
	err := m.begin(ctx, op)
	if err == nil {
		err = checkPoolName(pool)
	}
	if err == nil && !addr.IsValid() {
		err = errs.New(errs.InvalidArgument, "", "no address given")
	}
	var a Allocation
	if err == nil {
		a, err = m.d.LookupAddress(ctx, pool, addr)
	}
	if err != nil {
		a = Allocation{}
	}
	return a, c.End(ctx, err)
}

// Allocations lists a pool's allocations ordered by address.
func (m *IPAM) Allocations(ctx context.Context, pool string) ([]Allocation, error) {
	const op = "ipam.Allocations"
	ctx, c := m.in.Start(ctx, op)
	err := m.begin(ctx, op)
	if err == nil {
		err = checkPoolName(pool)
	}
	var out []Allocation
	if err == nil {
		var as []Allocation
		as, err = m.d.Allocations(ctx, pool)
		if err == nil {
			out = slices.Clone(as)
			if out == nil {
				out = []Allocation{}
			}
		}
	}
	return out, c.End(ctx, err)
}

// cloneRanges copies rs; empty is nil, whatever the driver returned.
func cloneRanges(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	return slices.Clone(rs)
}

// Close stops the pool gauges and closes the driver if it is an
// io.Closer. Every call after Close is FailedPrecondition; Close again
// returns nil.
func (m *IPAM) Close() error {
	const op = "ipam.Close"
	if !m.closed.Close() {
		return nil
	}
	var err error
	if m.gauges != nil {
		err = m.gauges.Unregister()
	}
	if cl, ok := m.d.(io.Closer); ok {
		if cerr := cl.Close(); cerr != nil {
			err = cerr
		}
	}
	return obs.Wrap(op, err)
}

// As reaches the driver's own types: it calls the driver's As(any) bool
// method when it has one and that returns true; otherwise, when target is
// a non-nil pointer to a type the driver itself is assignable to (the
// driver's concrete type, or an interface it implements), it stores the
// driver there. Each driver's package doc says what its As reaches.
func (m *IPAM) As(target any) bool { return obs.As(m.d, target, true) }

// registerGauges registers the pool gauges: at each collection one Pools
// call to the driver, bounded by timeout, reports every pool's used and
// size. A failed or timed-out Pools call reports nothing for that
// collection.
func (m *IPAM) registerGauges(mp metric.MeterProvider, timeout time.Duration) {
	meter := mp.Meter(obs.Scope + "ipam")
	used, err1 := meter.Int64ObservableGauge("managedvm.ipam.pool.used",
		metric.WithDescription("Addresses allocated from the pool."), metric.WithUnit("{address}"))
	size, err2 := meter.Int64ObservableGauge("managedvm.ipam.pool.size",
		metric.WithDescription("Addresses the pool can allocate."), metric.WithUnit("{address}"))
	if err1 != nil || err2 != nil {
		m.in.Logger().Warn("ipam: pool gauges not registered", "err", errors.Join(err1, err2))
		return
	}
	driver := attribute.String("driver", obs.DriverName(m.d))
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		pools, err := m.d.Pools(ctx)
		if err != nil {
			m.in.Logger().LogAttrs(ctx, slog.LevelDebug, "ipam: pool gauges skipped",
				slog.String("code", errs.CodeOf(err).String()), slog.String("err", err.Error()))
			return nil
		}
		for _, p := range pools {
			set := metric.WithAttributeSet(attribute.NewSet(attribute.String("pool", p.Name), driver))
			o.ObserveInt64(used, int64(p.Used), set)
			o.ObserveInt64(size, int64(p.Size), set)
		}
		return nil
	}, used, size)
	if err != nil {
		m.in.Logger().Warn("ipam: pool gauges not registered", "err", err)
		return
	}
	m.gauges = reg
}
