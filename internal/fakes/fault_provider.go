package fakes

import (
	"context"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// Provider wraps a provider.Driver with an Injector; hand the wrapper to
// provider.New. Method names are those of provider.Driver: "List", "Get", "Cursor", "Watch",
// "Provision", "PowerOn", "PowerOff", "Destroy", "Zones", "Templates",
// "Preflight"; the streams Watch returns are wrapped too, their methods
// named "Next" and "Stream.Close".
//
// A *Provider does not implement provider.GuestAccessDriver, even when
// the wrapped driver does: use WrapProvider, which keeps the capability.
type Provider struct {
	provider.Driver
	*Injector
}

var _ provider.Driver = (*Provider)(nil)

// GuestProvider is a Provider whose wrapped driver has the
// provider.GuestAccessDriver capability, which it keeps, with faults:
// "ValidateCredentials" and "GuestExecutor". The executors GuestExecutor
// returns are wrapped in an Executor with the same Injector ("Run",
// "Upload", "Close").
type GuestProvider struct {
	*Provider
}

var (
	_ provider.Driver            = GuestProvider{}
	_ provider.GuestAccessDriver = GuestProvider{}
)

// WrapProvider wraps the driver d with inj. The result implements
// provider.GuestAccessDriver (it is a GuestProvider) exactly when d does
// (it is a *Provider otherwise), so provider.New(WrapProvider(d, inj),
// nil).GuestAccess sees through the wrapper.
func WrapProvider(d provider.Driver, inj *Injector) provider.Driver {
	fp := &Provider{Driver: d, Injector: inj}
	if _, ok := d.(provider.GuestAccessDriver); ok {
		return GuestProvider{fp}
	}
	return fp
}

// List forwards to the wrapped provider with faults.
func (p *Provider) List(ctx context.Context, opts *provider.ListOptions) ([]provider.VM, error) {
	return call(ctx, p.Injector, "List", func() ([]provider.VM, error) { return p.Driver.List(ctx, opts) })
}

// Get forwards to the wrapped provider with faults.
func (p *Provider) Get(ctx context.Context, id string) (provider.VM, error) {
	return call(ctx, p.Injector, "Get", func() (provider.VM, error) { return p.Driver.Get(ctx, id) })
}

// Cursor forwards to the wrapped provider with faults.
func (p *Provider) Cursor(ctx context.Context) (provider.Cursor, error) {
	return call(ctx, p.Injector, "Cursor", func() (provider.Cursor, error) { return p.Driver.Cursor(ctx) })
}

// Watch forwards to the wrapped provider with faults and wraps the stream.
// A stream opened by a call whose answer is then lost is closed.
func (p *Provider) Watch(ctx context.Context, cursor provider.Cursor) (provider.DriverStream, error) {
	pl, err := p.Injector.before(ctx, "Watch")
	if err != nil {
		return nil, err
	}
	s, err := p.Driver.Watch(ctx, cursor)
	if aerr := pl.after(ctx); aerr != nil {
		if s != nil {
			_ = s.Close()
		}
		return nil, aerr
	}
	if err != nil || s == nil {
		return s, err
	}
	return &stream{DriverStream: s, in: p.Injector}, nil
}

// Provision forwards to the wrapped provider with faults.
func (p *Provider) Provision(ctx context.Context, spec provider.ProvisionSpec) (provider.VM, error) {
	return call(ctx, p.Injector, "Provision", func() (provider.VM, error) { return p.Driver.Provision(ctx, spec) })
}

// PowerOn forwards to the wrapped provider with faults.
func (p *Provider) PowerOn(ctx context.Context, id string) error {
	return call0(ctx, p.Injector, "PowerOn", func() error { return p.Driver.PowerOn(ctx, id) })
}

// PowerOff forwards to the wrapped provider with faults.
func (p *Provider) PowerOff(ctx context.Context, id string) error {
	return call0(ctx, p.Injector, "PowerOff", func() error { return p.Driver.PowerOff(ctx, id) })
}

// Destroy forwards to the wrapped provider with faults.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	return call0(ctx, p.Injector, "Destroy", func() error { return p.Driver.Destroy(ctx, id) })
}

// Zones forwards to the wrapped provider with faults.
func (p *Provider) Zones(ctx context.Context) ([]provider.Zone, error) {
	return call(ctx, p.Injector, "Zones", func() ([]provider.Zone, error) { return p.Driver.Zones(ctx) })
}

// Templates forwards to the wrapped provider with faults.
func (p *Provider) Templates(ctx context.Context, zone string) ([]provider.Template, error) {
	return call(ctx, p.Injector, "Templates", func() ([]provider.Template, error) { return p.Driver.Templates(ctx, zone) })
}

// Preflight forwards to the wrapped provider with faults.
func (p *Provider) Preflight(ctx context.Context) (report.Report, error) {
	return call(ctx, p.Injector, "Preflight", func() (report.Report, error) { return p.Driver.Preflight(ctx) })
}

func (g GuestProvider) guestAccess(op string) (provider.GuestAccessDriver, error) {
	ga, ok := g.Provider.Driver.(provider.GuestAccessDriver)
	if !ok {
		return nil, errs.New(errs.Unimplemented, op, "the wrapped provider has no guest access")
	}
	return ga, nil
}

// ValidateCredentials forwards to the wrapped provider with faults.
func (g GuestProvider) ValidateCredentials(ctx context.Context, vmID string, cred guest.Credentials) error {
	return call0(ctx, g.Injector, "ValidateCredentials", func() error {
		ga, err := g.guestAccess("fakes.ValidateCredentials")
		if err != nil {
			return err
		}
		return ga.ValidateCredentials(ctx, vmID, cred)
	})
}

// GuestExecutor forwards to the wrapped provider with faults and wraps the
// executor in an Executor with the same Injector. An executor opened by a
// call whose answer is then lost is closed.
func (g GuestProvider) GuestExecutor(ctx context.Context, vmID string, cred guest.Credentials) (*guest.Executor, error) {
	pl, err := g.Injector.before(ctx, "GuestExecutor")
	if err != nil {
		return nil, err
	}
	ga, err := g.guestAccess("fakes.GuestExecutor")
	if err != nil {
		return nil, err
	}
	ex, err := ga.GuestExecutor(ctx, vmID, cred)
	if aerr := pl.after(ctx); aerr != nil {
		if ex != nil {
			_ = ex.Close()
		}
		return nil, aerr
	}
	if err != nil || ex == nil {
		return ex, err
	}
	return WrapExecutor(ex, g.Injector), nil
}

// stream is a provider.DriverStream with faults.
type stream struct {
	provider.DriverStream
	in *Injector
}

func (s *stream) Next(ctx context.Context) (provider.Event, error) {
	return call(ctx, s.in, "Next", func() (provider.Event, error) { return s.DriverStream.Next(ctx) })
}

func (s *stream) Close() error {
	return call0(context.Background(), s.in, "Stream.Close", s.DriverStream.Close)
}
