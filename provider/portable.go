package provider

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/obs"
	"github.com/managedvm/managedvm/report"
)

// DefaultProvisionTimeout bounds a Provision when neither the spec's
// Timeout nor Options.ProvisionTimeout is set.
const DefaultProvisionTimeout = 10 * time.Minute

// Options configure a Provider. A nil *Options is the zero value: no
// logging, no tracing, no metrics, DefaultProvisionTimeout.
type Options struct {
	// Logger receives a Debug record per call (keys op, code, err,
	// duration; never a secret); nil discards.
	Logger *slog.Logger
	// TracerProvider, if set, records a span per call.
	TracerProvider trace.TracerProvider
	// MeterProvider, if set, records the call metrics and
	// managedvm.provider.events.
	MeterProvider metric.MeterProvider
	// ProvisionTimeout bounds a Provision whose spec has no Timeout; zero
	// or less means DefaultProvisionTimeout.
	ProvisionTimeout time.Duration
}

// Provider is a hypervisor manager (vSphere through provider/vsphere, or
// the in-memory one of provider/memprovider) as callers hold it: the
// portable type in front of a
// [Driver]. Create it with New (driver packages' constructors do). It is
// safe for concurrent use.
type Provider struct {
	d  Driver
	ga *GuestAccess // nil when the driver has no GuestAccessDriver
	in *obs.Instrument

	closed           obs.Closed
	provisionTimeout time.Duration

	events  metric.Int64Counter // nil without a MeterProvider
	evAttrs [4]metric.AddOption // by EventType; [0] for an unknown type

	stats statsRec

	mu      sync.Mutex
	streams map[*Stream]struct{}
}

// New returns the Provider in front of d. It panics if d is nil.
func New(d Driver, opts *Options) *Provider {
	if d == nil {
		panic("provider.New: nil Driver")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	name := obs.DriverName(d)
	p := &Provider{
		d:                d,
		in:               obs.New("provider", name, obs.Options{Logger: o.Logger, TracerProvider: o.TracerProvider, MeterProvider: o.MeterProvider}),
		provisionTimeout: o.ProvisionTimeout,
		streams:          map[*Stream]struct{}{},
	}
	if p.provisionTimeout <= 0 {
		p.provisionTimeout = DefaultProvisionTimeout
	}
	if ga, ok := d.(GuestAccessDriver); ok {
		p.ga = &GuestAccess{p: p, d: ga}
	}
	if o.MeterProvider != nil {
		c, err := o.MeterProvider.Meter(obs.Scope+"provider").Int64Counter("managedvm.provider.events",
			metric.WithDescription("Events delivered by Stream.Next, by kind."), metric.WithUnit("{event}"))
		if err == nil {
			p.events = c
			drv := attribute.String("driver", name)
			for t := range p.evAttrs {
				kind := EventType(t).String()
				p.evAttrs[t] = metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", kind), drv))
			}
		}
	}
	return p
}

// begin checks the closed state and the context: the prologue of every
// call (its error goes through Call.End like any other).
func (p *Provider) begin(ctx context.Context, op string) error {
	if err := p.closed.Check(op); err != nil {
		return err
	}
	return errs.FromContext(ctx, "")
}

// sentinel keeps this package's sentinels reachable with errors.Is when a
// driver returns one as it is (obs.Wrap copies an *errs.Error with no Op).
func sentinel(err error) error {
	if err == ErrCursorExpired || err == ErrStreamClosed {
		return errs.Wrap(errs.FailedPrecondition, "", err)
	}
	return err
}

func checkID(id string) error { return limit.Key("", "VM id", id) }

// List returns every VM, filtered by opts (nil: every VM but the
// templates, in every zone). ListOptions.Zone, when set, must be a zone
// the provider has (NotFound otherwise).
func (p *Provider) List(ctx context.Context, opts *ListOptions) ([]VM, error) {
	const op = "provider.List"
	ctx, c := p.in.Start(ctx, op)
	var o ListOptions
	if opts != nil {
		o = *opts
	}
	err := p.begin(ctx, op)
	if err == nil {
		err = o.validate("")
	}
	if err != nil {
		return nil, c.End(ctx, err)
	}
	vms, err := p.d.List(ctx, &o)
	if err != nil {
		return nil, c.End(ctx, sentinel(err))
	}
	for i := range vms {
		vms[i] = vms[i].Clone() // the slice is the driver's fresh one
	}
	return vms, c.End(ctx, nil)
}

// Get returns one VM (or template) by ID, or a NotFound error.
func (p *Provider) Get(ctx context.Context, id string) (VM, error) {
	const op = "provider.Get"
	ctx, c := p.in.Start(ctx, op)
	err := p.begin(ctx, op)
	if err == nil {
		err = checkID(id)
	}
	if err != nil {
		return VM{}, c.End(ctx, err)
	}
	vm, err := p.d.Get(ctx, id)
	if err != nil {
		return VM{}, c.End(ctx, sentinel(err))
	}
	return vm.Clone(), c.End(ctx, nil)
}

// Cursor returns the current position of the event stream. Take it
// before List: Watch(cursor) then delivers every change after it (some
// possibly already seen by List: events are safe to apply twice).
func (p *Provider) Cursor(ctx context.Context) (Cursor, error) {
	const op = "provider.Cursor"
	ctx, c := p.in.Start(ctx, op)
	if err := p.begin(ctx, op); err != nil {
		return "", c.End(ctx, err)
	}
	cur, err := p.d.Cursor(ctx)
	if err == nil {
		err = validCursor("", cur) // a driver bug, never handed on
		if err != nil {
			err = errs.Wrap(errs.Internal, "", err)
		}
	}
	if err != nil {
		return "", c.End(ctx, sentinel(err))
	}
	return cur, c.End(ctx, nil)
}

// Watch returns a stream of the events after cursor; an empty cursor
// means "from now". A cursor longer than MaxCursor or not printable UTF-8
// is InvalidArgument; one the provider cannot resume from (too old, from
// another provider) is an error wrapping ErrCursorExpired, from Watch or
// from the stream's first Next. Close the stream when done; Close of the
// Provider closes its streams.
func (p *Provider) Watch(ctx context.Context, cursor Cursor) (*Stream, error) {
	const op = "provider.Watch"
	ctx, c := p.in.Start(ctx, op)
	err := p.begin(ctx, op)
	if err == nil {
		err = validCursor("", cursor)
	}
	if err != nil {
		return nil, c.End(ctx, err)
	}
	ds, err := p.d.Watch(ctx, cursor)
	if err != nil {
		return nil, c.End(ctx, sentinel(err))
	}
	s := &Stream{p: p, d: ds}
	p.mu.Lock()
	if err := p.closed.Check(op); err != nil {
		p.mu.Unlock()
		_ = ds.Close()
		return nil, c.End(ctx, err)
	}
	p.streams[s] = struct{}{}
	p.mu.Unlock()
	return s, c.End(ctx, nil)
}

// Provision clones spec.Template into spec.Zone; see the package
// documentation. A malformed spec is InvalidArgument (ProvisionSpec.Validate)
// and nothing is created. The call is bounded by spec.Timeout, else by
// Options.ProvisionTimeout. On failure the driver destroys any partial VM.
// A repeated spec.Key returns the VM the first call made.
func (p *Provider) Provision(ctx context.Context, spec ProvisionSpec) (VM, error) {
	const op = "provider.Provision"
	ctx, c := p.in.Start(ctx, op)
	err := p.begin(ctx, op)
	if err == nil {
		err = spec.validate("")
	}
	if err == nil && spec.Customization != nil && !spec.Customization.AdminPassword.IsZero() {
		if ad, ok := p.d.(AdminPasswordDriver); !ok || !ad.SetsAdminPassword() {
			err = errs.New(errs.InvalidArgument, "", "this provider cannot set Customization.AdminPassword: set the administrator's password in the customization's user data (package template) instead")
		}
	}
	if err != nil {
		return VM{}, c.End(ctx, err)
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = p.provisionTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	vm, err := p.d.Provision(dctx, spec)
	cancel()
	if err != nil {
		return VM{}, c.End(ctx, sentinel(err))
	}
	return vm.Clone(), c.End(ctx, nil)
}

// PowerOn powers a VM on; powering on a running VM does nothing. A
// template is FailedPrecondition.
func (p *Provider) PowerOn(ctx context.Context, id string) error {
	return p.idCall(ctx, "provider.PowerOn", id, p.d.PowerOn)
}

// PowerOff powers a VM off; powering off a VM that is off does nothing.
// A template is FailedPrecondition.
func (p *Provider) PowerOff(ctx context.Context, id string) error {
	return p.idCall(ctx, "provider.PowerOff", id, p.d.PowerOff)
}

// Destroy powers a VM off and deletes it. Destroying a VM that does not
// exist is not an error; a template is FailedPrecondition.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	return p.idCall(ctx, "provider.Destroy", id, p.d.Destroy)
}

func (p *Provider) idCall(ctx context.Context, op, id string, fn func(context.Context, string) error) error {
	ctx, c := p.in.Start(ctx, op)
	err := p.begin(ctx, op)
	if err == nil {
		err = checkID(id)
	}
	if err == nil {
		err = sentinel(fn(ctx, id))
	}
	return c.End(ctx, err)
}

// Zones lists the availability zones.
func (p *Provider) Zones(ctx context.Context) ([]Zone, error) {
	const op = "provider.Zones"
	ctx, c := p.in.Start(ctx, op)
	if err := p.begin(ctx, op); err != nil {
		return nil, c.End(ctx, err)
	}
	zs, err := p.d.Zones(ctx)
	if err != nil {
		return nil, c.End(ctx, sentinel(err))
	}
	for i := range zs {
		z := &zs[i]
		z.Datacenters = slices.Clone(z.Datacenters)
		z.Clusters = slices.Clone(z.Clusters)
		z.Datastores = slices.Clone(z.Datastores)
		z.Networks = slices.Clone(z.Networks)
		z.Attributes = maps.Clone(z.Attributes)
	}
	return zs, c.End(ctx, nil)
}

// Templates lists the templates of one zone (NotFound if it does not
// exist), or of all zones when zone is empty.
func (p *Provider) Templates(ctx context.Context, zone string) ([]Template, error) {
	const op = "provider.Templates"
	ctx, c := p.in.Start(ctx, op)
	err := p.begin(ctx, op)
	if err == nil && zone != "" {
		err = limit.Name("", "zone", zone)
	}
	if err != nil {
		return nil, c.End(ctx, err)
	}
	ts, err := p.d.Templates(ctx, zone)
	if err != nil {
		return nil, c.End(ctx, sentinel(err))
	}
	for i := range ts {
		ts[i].Attributes = maps.Clone(ts[i].Attributes)
	}
	return ts, c.End(ctx, nil)
}

// Preflight checks what the provider needs (the reference's requirements,
// service-account privileges) and reports every row. It returns an error
// only when it could not check at all.
func (p *Provider) Preflight(ctx context.Context) (report.Report, error) {
	const op = "provider.Preflight"
	ctx, c := p.in.Start(ctx, op)
	if err := p.begin(ctx, op); err != nil {
		return report.Report{}, c.End(ctx, err)
	}
	r, err := p.d.Preflight(ctx)
	r.Checks = slices.Clone(r.Checks)
	return r, c.End(ctx, sentinel(err))
}

// GuestAccess returns the provider's guest-access capability, if its
// driver has one (implements GuestAccessDriver); ok is false otherwise.
func (p *Provider) GuestAccess() (ga *GuestAccess, ok bool) {
	return p.ga, p.ga != nil
}

// As reaches the driver: it calls the driver's As(any) bool method if it
// has one (each driver's package documentation lists its targets: vendor
// clients), and otherwise, or when that says false, sets *target to the
// driver itself when target is a non-nil pointer to the driver's type or
// to an interface the driver implements (a **memprovider.Provider, a
// *provider.Driver). It reports whether it set target. What As hands out
// bypasses the Provider: no validation, no telemetry.
func (p *Provider) As(target any) bool { return obs.As(p.d, target, true) }

// Close closes the Provider's open streams, then the driver if it is an
// io.Closer. Later calls of every method are FailedPrecondition ("called
// after Close"); a second Close returns nil.
func (p *Provider) Close() error {
	const op = "provider.Close"
	ctx, c := p.in.Start(context.Background(), op)
	if !p.closed.Close() {
		return c.End(ctx, nil)
	}
	p.mu.Lock()
	streams := slices.Collect(maps.Keys(p.streams))
	p.mu.Unlock()
	for _, s := range streams {
		_ = s.Close()
	}
	var err error
	if cl, ok := p.d.(io.Closer); ok {
		err = cl.Close()
	}
	return c.End(ctx, err)
}

// WatchStats are what the streams of a Provider have delivered: the building block of an indexer-lag gauge. LastDelivered
// minus LastEventTime is how old the newest event was when it reached the
// caller; now minus LastDelivered is how long the stream has been quiet.
type WatchStats struct {
	// Events is how many events Next returned.
	Events int64
	// LastEventTime is the Time of the last event Next returned (the
	// provider's clock; zero before any event, or if the driver gave no
	// time).
	LastEventTime time.Time
	// LastDelivered is when Next returned that event (this process's
	// clock; zero before any event).
	LastDelivered time.Time
}

// WatchStats returns what every stream of p delivered so far (streams
// closed since included). It is safe to call from a metric callback.
func (p *Provider) WatchStats() WatchStats { return p.stats.get() }

type statsRec struct {
	mu sync.Mutex
	s  WatchStats
}

func (r *statsRec) add(at, now time.Time) {
	r.mu.Lock()
	r.s.Events++
	r.s.LastEventTime, r.s.LastDelivered = at, now
	r.mu.Unlock()
}

func (r *statsRec) get() WatchStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s
}

// Stream is a stream of events from Watch. It is meant for one consumer
// goroutine; Close may be called from any goroutine.
type Stream struct {
	p      *Provider
	d      DriverStream
	closed atomic.Bool
	once   sync.Once
}

// Next blocks until the next event, ctx ends (Canceled or
// DeadlineExceeded), or the stream breaks. A stream that cannot go on
// from where it is returns an error wrapping ErrCursorExpired: the caller
// then lists everything again. After Close it returns an error wrapping
// ErrStreamClosed. The event is a copy. Next records no span (a stream
// may deliver millions of events): it counts managedvm.provider.events.
func (s *Stream) Next(ctx context.Context) (Event, error) {
	const op = "provider.Stream.Next"
	if s.closed.Load() {
		return Event{}, errs.Wrap(errs.FailedPrecondition, op, ErrStreamClosed)
	}
	if err := errs.FromContext(ctx, op); err != nil {
		return Event{}, err
	}
	ev, err := s.d.Next(ctx)
	if err != nil {
		if s.closed.Load() && !errs.Is(err, errs.FailedPrecondition) {
			err = errs.Wrap(errs.FailedPrecondition, "", ErrStreamClosed)
		}
		return Event{}, obs.Wrap(op, sentinel(err))
	}
	ev.VM = ev.VM.Clone()
	s.p.stats.add(ev.Time, time.Now())
	if s.p.events != nil {
		t := ev.Type
		if t < Created || t > Deleted {
			t = 0
		}
		s.p.events.Add(ctx, 1, s.p.evAttrs[t])
	}
	return ev, nil
}

// Close ends the stream and unblocks a waiting Next. Closing twice is
// fine (the second Close returns nil).
func (s *Stream) Close() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		err = obs.Wrap("provider.Stream.Close", s.d.Close())
		s.p.mu.Lock()
		delete(s.p.streams, s)
		s.p.mu.Unlock()
	})
	return err
}

// GuestAccess is the optional capability of reaching a guest without a
// network path, through the hypervisor (vSphere guest operations over
// VMware Tools): Provider.GuestAccess returns it when the driver
// implements GuestAccessDriver. Its calls are validated and recorded like
// the Provider's (ops provider.ValidateCredentials, provider.GuestExecutor).
type GuestAccess struct {
	p *Provider
	d GuestAccessDriver
}

func (g *GuestAccess) check(ctx context.Context, op, vmID string, cred guest.Credentials) error {
	if err := g.p.begin(ctx, op); err != nil {
		return err
	}
	if err := checkID(vmID); err != nil {
		return err
	}
	if err := limit.Key("", "user name", cred.Username); err != nil && cred.Username != "" {
		return err
	}
	return cred.Validate()
}

// ValidateCredentials checks cred inside the guest: a wrong user name or
// password is Unauthenticated; tools not running (or a powered-off VM) is
// FailedPrecondition; credentials without a user or a secret are
// InvalidArgument. No secret appears in an error.
func (g *GuestAccess) ValidateCredentials(ctx context.Context, vmID string, cred guest.Credentials) error {
	const op = "provider.ValidateCredentials"
	ctx, c := g.p.in.Start(ctx, op)
	err := g.check(ctx, op, vmID, cred)
	if err == nil {
		err = g.d.ValidateCredentials(ctx, vmID, cred)
	}
	return c.End(ctx, err)
}

// GuestExecutor returns an executor that runs commands in the guest as
// cred's user; its errors are those of ValidateCredentials.
func (g *GuestAccess) GuestExecutor(ctx context.Context, vmID string, cred guest.Credentials) (*guest.Executor, error) {
	const op = "provider.GuestExecutor"
	ctx, c := g.p.in.Start(ctx, op)
	if err := g.check(ctx, op, vmID, cred); err != nil {
		return nil, c.End(ctx, err)
	}
	ex, err := g.d.GuestExecutor(ctx, vmID, cred)
	if err != nil {
		return nil, c.End(ctx, err)
	}
	return ex, c.End(ctx, nil)
}
