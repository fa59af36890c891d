package ovirt

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/httpapi"
	"github.com/managedvm/managedvm/provider"
)

// Options configure a Provider. Every field is optional.
type Options struct {
	// CACertPEM is the engine's CA certificate, PEM (see the package
	// documentation for where the engine serves it). With neither it nor
	// RootCAs the system pool verifies the engine.
	CACertPEM []byte
	// RootCAs verifies the engine's certificate instead of CACertPEM.
	RootCAs *x509.CertPool
	// Insecure turns certificate verification off. Never the default.
	Insecure bool
	// Zones are the availability zones. Empty: one zone per cluster,
	// named "<datacenter>/<cluster>".
	Zones []ZoneConfig
	// PageSize is how many VMs one page of List holds (default 100, the
	// engine's SearchResultsLimit).
	PageSize int
	// MaxConns bounds the connections to the engine (default 16).
	MaxConns int
	// Clone makes Provision copy the template's disks (clone=true: the
	// VM is image_locked during the copy) onto the zone's storage domain,
	// instead of thin copy-on-write disks beside the template's.
	Clone bool
	// PollInterval is how often a Watch stream reads the engine's events
	// (default 2 s).
	PollInterval time.Duration
	// ResyncInterval is how often a Watch stream reads the whole
	// inventory beside the events, to report what the lossy event log
	// left out (default 10 minutes; negative: never).
	ResyncInterval time.Duration
	// StepPoll is the longest wait between two reads of a VM or its jobs
	// while Provision, PowerOn, PowerOff and Destroy wait (default 1 s).
	StepPoll time.Duration
	// ProvisionTimeout is provider.Options.ProvisionTimeout.
	ProvisionTimeout time.Duration
	// Logger receives the driver's own logs (a re-login, a resync, a
	// partial VM removed) and, through the portable *provider.Provider,
	// one record per call; nil discards them.
	Logger *slog.Logger
	// TracerProvider and MeterProvider are handed to the portable
	// *provider.Provider: nil records nothing.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Provider is the oVirt driver, a provider.Driver. Hosts hold the
// *provider.Provider New returns; its As reaches this driver (a
// **ovirt.Provider target) and the driver's *http.Client. It is safe for
// concurrent use.
type Provider struct {
	opts Options
	log  *slog.Logger
	c    *conn
	hc   *http.Client

	// afterPage, if set, runs after each page List reads (tests only).
	afterPage func(pass, page int)

	topoMu   sync.Mutex
	topology *topology

	keyMu   sync.Mutex
	keyLock map[string]*keyLock

	stop      chan struct{}
	closeOnce sync.Once
	closeErr  error
	streams   sync.WaitGroup
}

var _ provider.Driver = (*Provider)(nil)

// New connects to the engine's API at engineURL
// ("https://engine.example/ovirt-engine/api"), logs in once as user
// ("admin@internal": user@profile) and returns the portable Provider in
// front of the driver. The token is shared by every call and renewed
// when the engine refuses it; Close logs out.
func New(ctx context.Context, engineURL, user string, password guest.Secret, opts *Options) (*provider.Provider, error) {
	d, err := newDriver(ctx, engineURL, user, password, opts)
	if err != nil {
		return nil, err
	}
	return provider.New(d, &provider.Options{
		Logger: d.opts.Logger, TracerProvider: d.opts.TracerProvider, MeterProvider: d.opts.MeterProvider,
		ProvisionTimeout: d.opts.ProvisionTimeout,
	}), nil
}

func newDriver(ctx context.Context, engineURL, user string, password guest.Secret, opts *Options) (*Provider, error) {
	if err := errs.FromContext(ctx, op+".New"); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if user == "" || password.IsZero() {
		return nil, errs.New(errs.InvalidArgument, op+".New", "user (user@profile) and password are required")
	}
	base, apiPath, err := parseEngineURL(engineURL)
	if err != nil {
		return nil, err
	}
	roots := o.RootCAs
	if roots == nil && len(o.CACertPEM) > 0 {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(o.CACertPEM) {
			return nil, errs.New(errs.InvalidArgument, op+".New", "CACertPEM holds no PEM certificate")
		}
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 16
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.ResyncInterval == 0 {
		o.ResyncInterval = 10 * time.Minute
	}
	if o.StepPoll <= 0 {
		o.StepPoll = time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := httpapi.NewClient(roots, o.Insecure, o.MaxConns)
	p := &Provider{opts: o, log: log, hc: hc, c: newConn(base, apiPath, hc, user, password),
		keyLock: map[string]*keyLock{}, stop: make(chan struct{})}
	// Log in and read the API root now: bad credentials, a wrong URL or
	// an untrusted certificate fail here, not at the first call.
	if _, err := p.c.do(ctx, request{method: http.MethodGet, path: "/"}); err != nil {
		hc.CloseIdleConnections()
		return nil, errs.WrapOp(op+".New", err)
	}
	return p, nil
}

// Close stops the Watch streams, logs out (revoking the token at the
// engine's SSO) and closes the idle connections. It is idempotent.
func (p *Provider) Close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.streams.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.c.logout(ctx); err != nil {
			p.closeErr = errs.WrapOp(op+".Close", err)
		}
		p.hc.CloseIdleConnections()
	})
	return p.closeErr
}

// As reaches the driver's *http.Client (a **http.Client target): it
// carries the engine's TLS settings, not the token.
func (p *Provider) As(target any) bool {
	switch t := target.(type) {
	case **http.Client:
		*t = p.hc
		return true
	}
	return false
}

// keyLock serializes Provision calls with one key.
type keyLock struct {
	ch   chan struct{}
	refs int
}

// lockKey takes the per-key lock, or fails with ctx.
func (p *Provider) lockKey(ctx context.Context, key string) (unlock func(), err error) {
	p.keyMu.Lock()
	l := p.keyLock[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		p.keyLock[key] = l
	}
	l.refs++
	p.keyMu.Unlock()
	release := func() {
		p.keyMu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(p.keyLock, key)
		}
		p.keyMu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, errs.FromContext(ctx, "")
	}
}

var _ provider.FlowsDriver = (*Provider)(nil)

// Flows states the one flow the driver needs: the orchestrator to the
// engine's REST API and SSO it was created with (HTTPS, normally 443).
func (p *Provider) Flows() []provider.Flow {
	f, ok := provider.URLFlow("Service Orchestration", "oVirt Manager (KVM)", p.c.base,
		"oVirt engine REST API and SSO (inventory, provisioning, events)")
	if !ok {
		return nil
	}
	return []provider.Flow{f}
}
