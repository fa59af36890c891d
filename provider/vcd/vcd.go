package vcd

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
	"github.com/managedvm/managedvm/internal/httpapi"
	"github.com/managedvm/managedvm/provider"
)

const op = "vcd"

// Options configure a Provider. Every field is optional.
type Options struct {
	// CACertPEM is the CA certificate (PEM) that verifies VCD's
	// certificate. With neither it nor RootCAs the system pool verifies.
	CACertPEM []byte
	// RootCAs verifies VCD's certificate instead of CACertPEM.
	RootCAs *x509.CertPool
	// Insecure turns certificate verification off. Never the default.
	Insecure bool
	// PageSize is the query service's page size (default 128, VCD's
	// default maximum; VCD caps larger values silently).
	PageSize int
	// MaxConns bounds the connections to VCD (default 16).
	MaxConns int
	// TaskPoll is the longest wait between two reads of a running task
	// (default 1 s; the first polls come sooner).
	TaskPoll time.Duration
	// PollInterval is how often a Watch stream reads the audit trail
	// (default 5 s).
	PollInterval time.Duration
	// ResyncInterval is how often a Watch stream reads the whole
	// inventory through the query service beside the audit trail, to
	// report changes the trail does not record (default 10 minutes;
	// negative: never).
	ResyncInterval time.Duration
	// AuditRetention is the shortest time VCD's audit trail keeps an
	// event (its retention setting; default 24 hours). A Watch stream
	// that has not read the trail for longer, and whose position's events
	// were purged meanwhile, ends with provider.ErrCursorExpired: events
	// after its position may have been purged unread.
	AuditRetention time.Duration
	// ProvisionTimeout is provider.Options.ProvisionTimeout.
	ProvisionTimeout time.Duration
	// Logger receives the driver's own logs and, through the portable
	// *provider.Provider, one record per call; nil discards them.
	Logger *slog.Logger
	// TracerProvider and MeterProvider are handed to the portable
	// *provider.Provider: nil records nothing.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Provider is the VCD driver, a provider.Driver. Hosts hold the
// *provider.Provider New returns; its As reaches this driver (a
// **vcd.Provider target) and the driver's *http.Client (TLS settings,
// no token). It is safe for concurrent use.
type Provider struct {
	opts Options
	log  *slog.Logger
	c    *conn
	hc   *http.Client

	keyMu   sync.Mutex
	keyLock map[string]*keyLock

	stop      chan struct{}
	closeOnce sync.Once
	closeErr  error
	streams   sync.WaitGroup
}

var (
	_ provider.Driver      = (*Provider)(nil)
	_ provider.FlowsDriver = (*Provider)(nil)
)

// New connects to VCD at endpoint ("https://vcd.example"), checks that
// it serves API version 37.0, logs in once with cred and returns the
// portable Provider in front of the driver. The session is shared by
// every call and renewed when VCD refuses it; Close logs out.
func New(ctx context.Context, endpoint string, cred Credentials, opts *Options) (*provider.Provider, error) {
	d, err := newDriver(ctx, endpoint, cred, opts)
	if err != nil {
		return nil, err
	}
	return provider.New(d, &provider.Options{
		Logger: d.opts.Logger, TracerProvider: d.opts.TracerProvider, MeterProvider: d.opts.MeterProvider,
		ProvisionTimeout: d.opts.ProvisionTimeout,
	}), nil
}

func newDriver(ctx context.Context, endpoint string, cred Credentials, opts *Options) (*Provider, error) {
	const opNew = op + ".New"
	if err := errs.FromContext(ctx, opNew); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if cred.Org == "" || (cred.APIToken.IsZero() && (cred.User == "" || cred.Password.IsZero())) {
		return nil, errs.New(errs.InvalidArgument, opNew, "Credentials need Org and either User and Password or APIToken")
	}
	base, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, errs.WrapOp(opNew, err)
	}
	roots := o.RootCAs
	if roots == nil && len(o.CACertPEM) > 0 {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(o.CACertPEM) {
			return nil, errs.New(errs.InvalidArgument, opNew, "CACertPEM holds no PEM certificate")
		}
	}
	if o.PageSize <= 0 {
		o.PageSize = 128
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 16
	}
	if o.TaskPoll <= 0 {
		o.TaskPoll = time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.AuditRetention <= 0 {
		o.AuditRetention = 24 * time.Hour
	}
	if o.ResyncInterval == 0 {
		o.ResyncInterval = 10 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := httpapi.NewClient(roots, o.Insecure, o.MaxConns)
	p := &Provider{opts: o, log: log, hc: hc, c: newConn(base, hc, cred), keyLock: map[string]*keyLock{}, stop: make(chan struct{})}
	vs, err := p.c.supportedVersions(ctx)
	if err == nil {
		if _, ok := vs[APIVersion]; !ok {
			err = errs.Errorf(errs.FailedPrecondition, "", "VCD does not serve API version %s (VCD 10.4 or later needed)", APIVersion)
		}
	}
	if err == nil {
		_, err = p.c.session.Token(ctx, p.c.login) // bad credentials fail here, not at the first call
	}
	if err != nil {
		hc.CloseIdleConnections()
		return nil, errs.WrapOp(opNew, err)
	}
	return p, nil
}

// Close stops the Watch streams, logs out and closes the idle
// connections. It is idempotent.
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

// As reaches the driver's *http.Client (a **http.Client target).
func (p *Provider) As(target any) bool {
	if t, ok := target.(**http.Client); ok {
		*t = p.hc
		return true
	}
	return false
}

// keyLock serializes Provision calls with one key in this process; refs
// counts its holders and waiters, and the entry goes when none is left.
type keyLock struct {
	ch   chan struct{}
	refs int
}

// lockKey takes the per-key lock, or fails with ctx.
func (p *Provider) lockKey(ctx context.Context, key string) (func(), error) {
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
		if l.refs--; l.refs == 0 {
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

// Flows states the one flow the driver needs: HTTPS to the VCD endpoint
// (the vCloud API, the OpenAPI and, for API tokens, /oauth).
func (p *Provider) Flows() []provider.Flow {
	f, ok := provider.URLFlow("Service Orchestration", "VMware Cloud Director", p.c.base,
		"VCD API and OpenAPI (sessions, query service, vApps, tasks, audit trail)")
	if !ok {
		return nil
	}
	return []provider.Flow{f}
}

// SetsAdminPassword reports that VCD's guest customization takes
// Customization.AdminPassword (provider.AdminPasswordDriver).
func (p *Provider) SetsAdminPassword() bool { return true }
