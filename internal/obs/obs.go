// Package obs is the instrumentation every portable type shares: one span
// per call, the call metrics, the debug log line, and the single wrapping of
// a driver's error with the operation's name.
//
// With no TracerProvider and no MeterProvider it does no tracing or
// metrics work at all (not even a no-op span), so the portable layer adds no
// allocation to a call that succeeds.
//
// The names, the same for every contract:
//
//	span            the operation, e.g. "ipam.Allocate"; on failure its
//	                status is Error and attribute error.type is the errs code
//	managedvm.calls            counter, attributes op, code ("OK" on success)
//	managedvm.errors           counter of failed calls, attributes op, code
//	managedvm.call.duration    histogram in seconds, attributes op, code
//	log keys        op, code, err, duration (at Debug)
package obs

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
)

// Options are the telemetry options of a portable type. Every portable
// type's Options embeds or copies these three fields.
type Options struct {
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Scope is the instrumentation scope name prefix.
const Scope = "github.com/managedvm/managedvm/"

// Instrument records the calls of one portable value.
type Instrument struct {
	log    *slog.Logger
	tracer trace.Tracer
	driver attribute.KeyValue

	calls, errors metric.Int64Counter
	duration      metric.Float64Histogram
	sets          sync.Map // op+code -> metric.MeasurementOption
	// off: no tracer, no metrics and no logger, so a call records nothing
	// (the fast path of Start and End).
	off bool
}

var discard = slog.New(slog.DiscardHandler)

// New returns the instrument of a portable value of the named package
// (e.g. "ipam") over the named driver (e.g. "memipam").
func New(pkg, driver string, o Options) *Instrument {
	in := &Instrument{log: o.Logger, driver: attribute.String("driver", driver)}
	if in.log == nil {
		in.log = discard
	}
	defer func() {
		in.off = in.tracer == nil && in.calls == nil && in.errors == nil && in.duration == nil && o.Logger == nil
	}()
	if o.TracerProvider != nil {
		in.tracer = o.TracerProvider.Tracer(Scope + pkg)
	}
	if o.MeterProvider != nil {
		m := o.MeterProvider.Meter(Scope + pkg)
		var err error
		if in.calls, err = m.Int64Counter("managedvm.calls", metric.WithDescription("Calls of the operation."), metric.WithUnit("{call}")); err != nil {
			in.calls = nil
		}
		if in.errors, err = m.Int64Counter("managedvm.errors", metric.WithDescription("Failed calls of the operation, by errs code."), metric.WithUnit("{call}")); err != nil {
			in.errors = nil
		}
		if in.duration, err = m.Float64Histogram("managedvm.call.duration", metric.WithDescription("Duration of the operation."), metric.WithUnit("s")); err != nil {
			in.duration = nil
		}
	}
	return in
}

// Logger returns the logger (never nil).
func (in *Instrument) Logger() *slog.Logger { return in.log }

// Off reports that calls record nothing (no tracer, no metrics, no
// logger): a caller may skip building span attributes.
func (in *Instrument) Off() bool { return in.off }

// Metered reports whether metrics are recorded.
func (in *Instrument) Metered() bool { return in.calls != nil || in.duration != nil }

// Call is one call in progress. The zero Call records nothing (End only
// wraps the error).
type Call struct {
	in *Instrument
	op string
	// start is when the call began, on the monotonic clock since epoch.
	start time.Duration
	span  trace.Span
}

// epoch is the origin of Call.start (set once, never changed; a Duration
// keeps a Call small).
var epoch = time.Now()

// Start begins a call of op. The returned context carries its span when
// tracing is on (it is ctx itself otherwise).
func (in *Instrument) Start(ctx context.Context, op string) (context.Context, Call) {
	if in.off { // small enough to inline: off, a call costs next to nothing
		return ctx, Call{op: op} // no in: End only wraps
	}
	return in.startPlain(ctx, op)
}

//go:noinline
func (in *Instrument) startPlain(ctx context.Context, op string) (context.Context, Call) {
	return in.start(ctx, op, nil)
}

// StartWith is Start with span attributes.
func (in *Instrument) StartWith(ctx context.Context, op string, attrs ...attribute.KeyValue) (context.Context, Call) {
	if in.off {
		return ctx, Call{in: in, op: op}
	}
	return in.start(ctx, op, attrs)
}

func (in *Instrument) start(ctx context.Context, op string, attrs []attribute.KeyValue) (context.Context, Call) {
	c := Call{in: in, op: op}
	if in.tracer != nil {
		ctx, c.span = in.tracer.Start(ctx, op, trace.WithAttributes(in.driver), trace.WithAttributes(attrs...))
	}
	if in.calls != nil || in.duration != nil || in.log.Enabled(ctx, slog.LevelDebug) {
		c.start = time.Since(epoch)
	}
	return ctx, c
}

// End ends the call: it wraps err once with the operation's name, records
// the span status and the metrics, and logs at Debug. It returns the wrapped
// error (nil for nil).
func (c Call) End(ctx context.Context, err error) error {
	if err == nil && (c.in == nil || c.in.off) {
		return nil
	}
	return c.end(ctx, err)
}

func (c Call) end(ctx context.Context, err error) error {
	err = Wrap(c.op, err)
	c.Finish(ctx, err)
	return err
}

func (c Call) elapsed() time.Duration { return time.Since(epoch) - c.start }

// Finish ends the call like End but leaves err as it is (for composite
// operations, such as an enrollment, whose errors already name their
// steps).
func (c Call) Finish(ctx context.Context, err error) {
	code := errs.CodeOf(err)
	if c.span != nil {
		if err != nil {
			c.span.SetAttributes(attribute.String("error.type", code.String()))
			c.span.SetStatus(codes.Error, code.String())
		}
		c.span.End()
	}
	in := c.in
	if in == nil || in.off { // nothing to record
		return
	}
	if in.calls != nil || in.duration != nil {
		set := in.set(c.op, code)
		if in.calls != nil {
			in.calls.Add(ctx, 1, set)
		}
		if err != nil && in.errors != nil {
			in.errors.Add(ctx, 1, set)
		}
		if in.duration != nil {
			in.duration.Record(ctx, c.elapsed().Seconds(), set)
		}
	}
	if in.log.Enabled(ctx, slog.LevelDebug) {
		if err != nil {
			in.log.LogAttrs(ctx, slog.LevelDebug, "call failed", slog.String("op", c.op), slog.String("code", code.String()),
				slog.String("err", err.Error()), slog.Duration("duration", c.elapsed()))
		} else {
			in.log.LogAttrs(ctx, slog.LevelDebug, "call", slog.String("op", c.op), slog.String("code", code.String()),
				slog.Duration("duration", c.elapsed()))
		}
	}
}

type setKey struct {
	op   string
	code errs.Code
}

func (in *Instrument) set(op string, code errs.Code) metric.MeasurementOption {
	k := setKey{op, code}
	if v, ok := in.sets.Load(k); ok {
		return v.(metric.MeasurementOption)
	}
	o := metric.WithAttributeSet(attribute.NewSet(attribute.String("op", op), attribute.String("code", code.String()), in.driver))
	v, _ := in.sets.LoadOrStore(k, o)
	return v.(metric.MeasurementOption)
}

// Wrap wraps err exactly once with op: an *errs.Error already naming op is
// returned as it is; one with no Op gets op (a copy); context errors get
// their Canceled/DeadlineExceeded code; anything else is wrapped keeping
// its code (Unknown when it has none).
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*errs.Error); ok {
		switch e.Op {
		case op:
			return err
		case "":
			cp := *e
			cp.Op = op
			return &cp
		}
	}
	if errs.CodeOf(err) == errs.Unknown {
		switch {
		case errors.Is(err, context.Canceled):
			return errs.Wrap(errs.Canceled, op, err)
		case errors.Is(err, context.DeadlineExceeded):
			return errs.Wrap(errs.DeadlineExceeded, op, err)
		}
	}
	return errs.WrapOp(op, err)
}

// DriverName names a driver for the driver attribute: its DriverName
// method when it has one, else its package's last path element
// ("memipam").
func DriverName(d any) string {
	if n, ok := d.(interface{ DriverName() string }); ok {
		return n.DriverName()
	}
	t := reflect.TypeOf(d)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "unknown"
	}
	p := t.PkgPath()
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if p == "" {
		return t.String()
	}
	return p
}

// Closed tracks whether a portable value was closed. The zero value is
// open.
type Closed struct{ closed atomic.Bool }

// Check is a FailedPrecondition error naming op after Close, nil before.
func (c *Closed) Check(op string) error {
	if c.closed.Load() {
		return errs.New(errs.FailedPrecondition, op, "called after Close")
	}
	return nil
}

// Close marks the value closed and reports whether this was the first
// Close (the one that must close the driver).
func (c *Closed) Close() bool { return c.closed.CompareAndSwap(false, true) }

// As is the escape hatch every portable type offers: it asks the driver's
// own As(any) bool method first (vendor clients), then sets *target to
// the driver itself when target is a non-nil pointer to a type the driver
// is assignable to. interfaces says whether that type may be an interface
// (a *provider.Driver) or must be the driver's concrete type (a
// **memfw.Driver). It reports whether it set target.
func As(drv, target any, interfaces bool) bool {
	if target == nil {
		return false
	}
	if a, ok := drv.(interface{ As(any) bool }); ok && a.As(target) {
		return true
	}
	tv := reflect.ValueOf(target)
	if tv.Kind() != reflect.Pointer || tv.IsNil() {
		return false
	}
	el, dv := tv.Elem(), reflect.ValueOf(drv)
	if !dv.IsValid() || !dv.Type().AssignableTo(el.Type()) || (!interfaces && el.Kind() == reflect.Interface) {
		return false
	}
	el.Set(dv)
	return true
}
