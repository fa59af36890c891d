package natfw

import (
	"context"
	"io"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/obs"
)

// Driver is what a firewall driver implements: the protocol logic only.
// The portable [Firewall] in front of it checks the context and validates
// every argument before calling it, so a driver is only ever given a live
// context, a valid owner and a valid rule, already normalized and freshly
// copied (the driver may keep it). It copies what the driver returns, so a
// driver may return rules that share slices with what it keeps, as long as
// it never changes them afterwards. It wraps the driver's errors with the
// operation's name: a driver returns errs errors with an empty Op.
//
// A driver may also implement io.Closer (called once, by Firewall.Close)
// and As(any) bool (the escape hatch, see Firewall.As).
type Driver interface {
	// EnsureNAT makes the owner's rule exactly r (see Firewall.EnsureNAT).
	EnsureNAT(ctx context.Context, r Rule) error
	// RemoveNAT removes the owner's rule; a missing rule is not an error.
	RemoveNAT(ctx context.Context, owner string) error
	// Get returns the owner's rule, normalized, or NotFound.
	Get(ctx context.Context, owner string) (Rule, error)
	// List returns every rule, normalized, ordered by owner.
	List(ctx context.Context) ([]Rule, error)
}

// Options configures a Firewall. A nil *Options is the zero value: no
// logging, tracing or metrics.
type Options struct {
	// Logger receives a Debug line per call (keys op, code, err,
	// duration); nil discards.
	Logger *slog.Logger
	// TracerProvider, if set, records a span per call.
	TracerProvider trace.TracerProvider
	// MeterProvider, if set, records the call metrics.
	MeterProvider metric.MeterProvider
}

// Firewall is the portable firewall every caller holds: it validates,
// instruments and forwards to a [Driver]. Create it with New (or a driver
// package's constructor, such as memfw.New). It is safe for concurrent use
// when its driver is.
type Firewall struct {
	drv    Driver
	in     *obs.Instrument
	closed obs.Closed
}

// New returns the portable Firewall over d. opts may be nil.
func New(d Driver, opts *Options) *Firewall {
	if opts == nil {
		opts = &Options{}
	}
	return &Firewall{drv: d, in: obs.New("natfw", obs.DriverName(d), obs.Options{
		Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider,
	})}
}

// EnsureNAT makes the owner's rule exactly r: it creates it, replaces a
// different rule of the same owner, or does nothing if it is already in
// place. A public or local address used by another owner's rule is
// AlreadyExists; a malformed rule, or one beyond the limits, is
// InvalidArgument. Either changes nothing.
func (f *Firewall) EnsureNAT(ctx context.Context, r Rule) error {
	const op = "natfw.EnsureNAT"
	ctx, c := f.in.Start(ctx, op)
	err := f.closed.Check(op)
	if err == nil {
		err = errs.FromContext(ctx, op)
	}
	if err == nil {
		err = r.validate()
	}
	if err == nil {
		err = f.drv.EnsureNAT(ctx, r.Normalize())
	}
	return c.End(ctx, err)
}

// RemoveNAT removes the owner's rule; removing a rule that does not exist
// is not an error. An owner beyond the limits is InvalidArgument.
func (f *Firewall) RemoveNAT(ctx context.Context, owner string) error {
	const op = "natfw.RemoveNAT"
	ctx, c := f.in.Start(ctx, op)
	err := f.begin(ctx, op, owner)
	if err == nil {
		err = f.drv.RemoveNAT(ctx, owner)
	}
	return c.End(ctx, err)
}

// Get returns the owner's rule, normalized, or NotFound. An owner beyond
// the limits is InvalidArgument.
func (f *Firewall) Get(ctx context.Context, owner string) (Rule, error) {
	const op = "natfw.Get"
	ctx, c := f.in.Start(ctx, op)
	err := f.begin(ctx, op, owner)
	var r Rule
	if err == nil {
		r, err = f.drv.Get(ctx, owner)
	}
	if err != nil {
		return Rule{}, c.End(ctx, err)
	}
	return clone(r), c.End(ctx, nil)
}

// List returns every rule, normalized, ordered by owner.
func (f *Firewall) List(ctx context.Context) ([]Rule, error) {
	const op = "natfw.List"
	ctx, c := f.in.Start(ctx, op)
	err := f.closed.Check(op)
	if err == nil {
		err = errs.FromContext(ctx, op)
	}
	var rs []Rule
	if err == nil {
		rs, err = f.drv.List(ctx)
	}
	if err != nil {
		return nil, c.End(ctx, err)
	}
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = clone(r)
	}
	return out, c.End(ctx, nil)
}

// Close closes the driver (when it is an io.Closer) once; later calls of
// every method, Close aside, are FailedPrecondition. A second Close returns
// nil.
func (f *Firewall) Close() error {
	const op = "natfw.Close"
	if !f.closed.Close() {
		return nil
	}
	cl, ok := f.drv.(io.Closer)
	if !ok {
		return nil
	}
	ctx, c := f.in.Start(context.Background(), op)
	return c.End(ctx, cl.Close())
}

// As is the escape hatch to the driver: it asks the driver's own As
// method first, if it has one (documented by each driver); otherwise, if
// target is a pointer to the driver's own type (for example
// **memfw.Driver or **nftables.Driver), it sets *target to the driver and reports true.
func (f *Firewall) As(target any) bool { return obs.As(f.drv, target, false) }

func (f *Firewall) begin(ctx context.Context, op, owner string) error {
	if err := f.closed.Check(op); err != nil {
		return err
	}
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	return ValidateOwner(owner)
}

func clone(r Rule) Rule {
	r.Ports = slices.Clone(r.Ports)
	r.Sources = slices.Clone(r.Sources)
	return r
}
