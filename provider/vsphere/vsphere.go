package vsphere

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/certerr"
	"github.com/managedvm/managedvm/provider"
)

// ZoneConfig maps one availability zone onto vSphere objects, by name.
type ZoneConfig struct {
	Name string
	// Datacenters and Clusters the zone spans. A zone without clusters
	// spans every cluster of its datacenters.
	Datacenters []string
	Clusters    []string
	// Datastores are the zone's shared datastores (empty: every datastore
	// shared by all hosts of the zone's clusters); Provision picks the one
	// with the most free space.
	Datastores []string
	// Networks are the zone's distributed port groups.
	Networks []string
}

// Options configure a Provider; nil or the zero value means every default.
// The vCenter's URL and the service account are New's arguments.
type Options struct {
	// RootCAs verifies the vCenter certificate (nil: the system pool).
	RootCAs *x509.CertPool
	// Thumbprint, if set, pins the vCenter certificate (SHA-1 or SHA-256,
	// hex with or without colons) instead of verifying its chain.
	Thumbprint string
	// Insecure turns certificate verification off. Never the default.
	Insecure bool
	// Zones are the availability zones. Empty: one zone per datacenter,
	// named like it, spanning all its clusters.
	Zones []ZoneConfig
	// Environment, if set ("PROD"), prefixes the customization spec name
	// looked up for a template: "PROD-<template>".
	Environment string
	// ProvisionTimeout is provider.Options.ProvisionTimeout: it bounds a
	// Provision whose spec has no Timeout (default
	// provider.DefaultProvisionTimeout, 10 minutes).
	ProvisionTimeout time.Duration
	// KeepAlive is how often an idle session is touched (default 5
	// minutes); zero uses the default, negative disables it.
	KeepAlive time.Duration
	// PageSize is how many objects one RetrievePropertiesEx page holds
	// (default 500).
	PageSize int
	// ListConcurrency is how many pages List retrieves at once (default
	// 4; 1 reads them one after the other).
	ListConcurrency int
	// GuestPollInterval is the longest wait between two checks of a
	// running guest program (default 200 ms).
	GuestPollInterval time.Duration
	// Logger receives the driver's own debug logs (session established,
	// keep-alive failed, partial VM destroyed) and, through the portable
	// *provider.Provider, one record per call; nil discards them.
	Logger *slog.Logger
	// TracerProvider and MeterProvider are handed to the portable
	// *provider.Provider (see provider.Options): nil records nothing.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Provider is the vSphere driver: a provider.Driver with guest access
// (provider.GuestAccessDriver). Hosts hold the *provider.Provider New
// returns; its As reaches the driver (a **vsphere.Provider target) and
// the vendor client. It is safe for concurrent use.
type Provider struct {
	opts   Options
	log    *slog.Logger
	soap   *soap.Client
	client *vim25.Client
	sess   *session

	keyMu   sync.Mutex
	keyLock map[string]*sync.Mutex

	// afterView, if set, runs in List between reading the VM references
	// and their properties (tests only).
	afterView func()

	cacheMu sync.Mutex
	refs    map[string]types.ManagedObjectReference // instanceUuid -> ref
	last    map[types.ManagedObjectReference]provider.VM

	topoMu sync.Mutex
	topo   *topology

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// streams counts the Watch streams still running; Close waits for
	// them before it logs out (a call after the logout would log in
	// again).
	streamMu sync.Mutex
	closing  bool
	streams  sync.WaitGroup
}

var (
	_ provider.Driver            = (*Provider)(nil)
	_ provider.GuestAccessDriver = (*Provider)(nil)
)

// op names the package in the errors of the guest operations (guest.go)
// and of New; the driver methods return errors with no Op, which the
// portable *provider.Provider names.
const op = "vsphere"

// New connects to the vCenter whose SDK URL is sdkURL
// ("https://vcenter.example/sdk"; user information in it is ignored), logs
// in once as the service account username with password, and returns the
// portable Provider in front of the driver. opts may be nil (every
// default). The password is never logged or put in an error. The session
// is reused by every call, kept alive, and re-established transparently
// when it expires. Close the Provider to log out.
//
// An empty sdkURL, username or password, or a URL that is not http(s), is
// InvalidArgument; a refused certificate is PermissionDenied (see
// Connection in the package documentation); refused credentials are
// Unauthenticated; an unreachable vCenter is Unavailable.
func New(ctx context.Context, sdkURL, username string, password guest.Secret, opts *Options) (*provider.Provider, error) {
	d, err := newDriver(ctx, sdkURL, username, password, opts)
	if err != nil {
		return nil, err
	}
	return provider.New(d, &provider.Options{
		Logger: d.opts.Logger, TracerProvider: d.opts.TracerProvider, MeterProvider: d.opts.MeterProvider,
		ProvisionTimeout: d.opts.ProvisionTimeout,
	}), nil
}

func newDriver(ctx context.Context, sdkURL, username string, password guest.Secret, o *Options) (*Provider, error) {
	if err := errs.FromContext(ctx, op+".New"); err != nil {
		return nil, err
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	if sdkURL == "" || username == "" || password.IsZero() {
		return nil, errs.New(errs.InvalidArgument, op+".New", "the SDK URL, user name and password are required")
	}
	u, err := url.Parse(sdkURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errs.New(errs.InvalidArgument, op+".New", "URL must be an http(s) URL of the vCenter SDK")
	}
	u.User = nil
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 5 * time.Minute
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 500
	}
	if opts.ListConcurrency <= 0 {
		opts.ListConcurrency = 4
	}
	if opts.GuestPollInterval <= 0 {
		opts.GuestPollInterval = 200 * time.Millisecond
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sc := soap.NewClient(u, opts.Insecure)
	if opts.RootCAs != nil {
		sc.DefaultTransport().TLSClientConfig.RootCAs = opts.RootCAs
	}
	if opts.Thumbprint != "" {
		want := normThumbprint(opts.Thumbprint)
		cfg := sc.DefaultTransport().TLSClientConfig
		// The chain is not verified: the pinned certificate is.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &thumbprintError{}
			}
			raw := cs.PeerCertificates[0].Raw
			s256, s1 := sha256.Sum256(raw), sha1.Sum(raw)
			if want == hex.EncodeToString(s256[:]) || want == hex.EncodeToString(s1[:]) {
				return nil
			}
			return &thumbprintError{got: hex.EncodeToString(s256[:])}
		}
	}
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, mapErr(op+".New", err, false)
	}
	p := &Provider{
		opts: opts, log: log, soap: sc, client: c,
		keyLock: map[string]*sync.Mutex{},
		refs:    map[string]types.ManagedObjectReference{},
		last:    map[types.ManagedObjectReference]provider.VM{},
		stop:    make(chan struct{}),
	}
	p.sess = &session{inner: sc, sm: *c.ServiceContent.SessionManager, user: username, pass: password, log: log}
	c.RoundTripper = p.sess
	if err := p.sess.login(ctx, 0); err != nil {
		return nil, err
	}
	if opts.KeepAlive > 0 {
		p.wg.Add(1)
		go p.keepAlive(opts.KeepAlive)
	}
	return p, nil
}

// thumbprintError is a server certificate that does not match the pinned
// Options.Thumbprint.
type thumbprintError struct {
	got string // SHA-256, hex; empty: no certificate
}

func (e *thumbprintError) Error() string {
	if e.got == "" {
		return "vsphere: the server sent no certificate"
	}
	return "vsphere: the server certificate (SHA-256 " + e.got + ") does not match the pinned thumbprint"
}

// certRefused reports whether err is the refusal of the server's
// certificate: what TLS verification refuses (certerr.Refused) or a
// thumbprint that does not match the pinned one.
func certRefused(err error) bool {
	var tp *thumbprintError
	return errors.As(err, &tp) || certerr.Refused(err)
}

func normThumbprint(s string) string {
	return strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(s))
}

// Close ends the streams, stops the keep-alive and logs out
// (provider.Provider.Close calls it).
func (p *Provider) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.streamMu.Lock()
		p.closing = true
		p.streamMu.Unlock()
		close(p.stop)
		p.streams.Wait()
		p.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, lerr := methods.Logout(ctx, p.sess.inner, &types.Logout{This: p.sess.sm})
		if lerr != nil && !isFault[*types.NotAuthenticated](lerr) {
			err = mapErr("", lerr, false)
		}
	})
	return err
}

// addStream counts a new Watch stream, unless the provider is closing.
func (p *Provider) addStream() bool {
	p.streamMu.Lock()
	defer p.streamMu.Unlock()
	if p.closing {
		return false
	}
	p.streams.Add(1)
	return true
}

// Logins reports how many times the provider logged in (1 unless the
// session expired and was re-established).
func (p *Provider) Logins() int64 { return p.sess.logins.Load() }

// As exposes the vendor client: *vim25.Client or **vim25.Client.
func (p *Provider) As(target any) bool {
	switch t := target.(type) {
	case **vim25.Client:
		*t = p.client
		return true
	}
	return false
}

// FaultOf returns the vSphere fault (types.BaseMethodFault) an error from
// this package carries, if any: the escape hatch for vendor detail.
func FaultOf(err error) (types.BaseMethodFault, bool) {
	var f methodFault
	if errors.As(err, &f) {
		return f.fault, true
	}
	return nil, false
}

func (p *Provider) keepAlive(every time.Duration) {
	defer p.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			// Any authenticated call refreshes the session; a lost one is
			// re-established by the session round tripper.
			var sm mo.SessionManager
			err := p.retrieveOne(ctx, p.sess.sm, []string{"currentSession"}, &sm)
			cancel()
			if err != nil {
				p.log.Debug("vsphere keep-alive failed", "err", err)
			}
		}
	}
}

// session is the one authenticated session: a soap.RoundTripper that logs
// in again (once, for all waiting callers) when vCenter says the session
// is not authenticated, then retries the call (vCenter did nothing with
// it).
type session struct {
	inner  *soap.Client
	sm     types.ManagedObjectReference
	user   string
	pass   guest.Secret
	log    *slog.Logger
	mu     sync.Mutex
	gen    atomic.Int64
	logins atomic.Int64
}

func (s *session) login(ctx context.Context, seen int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen.Load() != seen {
		return nil // someone else logged in meanwhile
	}
	_, err := methods.Login(ctx, s.inner, &types.Login{This: s.sm, UserName: s.user, Password: s.pass.Reveal()})
	if err != nil {
		return mapErr(op+".login", err, false)
	}
	s.logins.Add(1)
	s.gen.Add(1)
	s.log.Debug("vsphere session established", "user", s.user)
	return nil
}

func (s *session) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	for attempt := 0; ; attempt++ {
		gen := s.gen.Load()
		err := s.inner.RoundTrip(ctx, req, res)
		if err == nil {
			// methods.* read the fault from res: a retry must not
			// leave the first attempt's fault in it.
			if f := res.Fault(); f == nil || !isSoapNotAuthenticated(f) || attempt == 2 {
				return nil
			}
		} else if !isFault[*types.NotAuthenticated](err) || attempt == 2 {
			return err
		}
		if lerr := s.login(ctx, gen); lerr != nil {
			return lerr
		}
		if rv := reflect.ValueOf(res); rv.Kind() == reflect.Pointer && !rv.IsNil() {
			rv.Elem().Set(reflect.Zero(rv.Elem().Type()))
		}
	}
}

func isSoapNotAuthenticated(f *soap.Fault) bool {
	_, ok := asMethodFault(f.VimFault()).(*types.NotAuthenticated)
	return ok
}

func isFault[T types.BaseMethodFault](err error) bool {
	f := vimFault(err)
	if f == nil {
		return false
	}
	_, ok := f.(T)
	return ok
}

func vimFault(err error) types.BaseMethodFault {
	var mf methodFault
	if errors.As(err, &mf) {
		return mf.fault
	}
	if soap.IsSoapFault(err) {
		if f := asMethodFault(soap.ToSoapFault(err).VimFault()); f != nil {
			return f
		}
	}
	if soap.IsVimFault(err) {
		return soap.ToVimFault(err)
	}
	var te taskError
	if errors.As(err, &te) {
		return te.fault
	}
	return nil
}

// asMethodFault returns v as a types.BaseMethodFault pointer (SOAP fault
// details decode as values).
func asMethodFault(v any) types.BaseMethodFault {
	if v == nil {
		return nil
	}
	if f, ok := v.(types.BaseMethodFault); ok {
		return f
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Struct {
		ptr := reflect.New(rv.Type())
		ptr.Elem().Set(rv)
		if f, ok := ptr.Interface().(types.BaseMethodFault); ok {
			return f
		}
	}
	return nil
}

// methodFault carries a vSphere fault under an errs code.
type methodFault struct {
	fault types.BaseMethodFault
	msg   string
}

func (m methodFault) Error() string { return m.msg }

type taskError struct {
	fault types.BaseMethodFault
	msg   string
}

func (t taskError) Error() string { return t.msg }

// mapErr gives err its errs code. mutating says whether the call may have
// changed something: a transport failure is then OutcomeUnknown, not
// Unavailable. A refused server certificate is PermissionDenied (the
// request was not sent).
func mapErr(opname string, err error, mutating bool) error {
	if err == nil {
		return nil
	}
	var coder errs.Coder
	if errors.As(err, &coder) {
		if opname == "" {
			return err // the driver's own error: the portable type names it
		}
		return errs.WrapOp(opname, err)
	}
	if errors.Is(err, context.Canceled) {
		return errs.Wrap(errs.Canceled, opname, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errs.Wrap(errs.DeadlineExceeded, opname, err)
	}
	if f := vimFault(err); f != nil {
		msg := faultMessage(err, f)
		return &errs.Error{Code: faultCode(f), Op: opname, Err: methodFault{fault: f, msg: msg}}
	}
	if certRefused(err) {
		// The request never left: retrying cannot help, as with SSH's
		// host-key mismatch.
		return errs.Wrap(errs.PermissionDenied, opname, err)
	}
	var nerr net.Error
	if errors.As(err, &nerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "connection refused") {
		if mutating {
			return errs.Wrap(errs.OutcomeUnknown, opname, err)
		}
		return errs.Wrap(errs.Unavailable, opname, err)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		if mutating {
			return errs.Wrap(errs.OutcomeUnknown, opname, err)
		}
		return errs.Wrap(errs.Unavailable, opname, err)
	}
	return errs.Wrap(errs.Unknown, opname, err)
}

func faultMessage(err error, f types.BaseMethodFault) string {
	name := strings.TrimPrefix(strings.TrimPrefix(typeName(f), "*types."), "types.")
	msg := err.Error()
	if mf, ok := err.(methodFault); ok {
		msg = mf.msg
	}
	if strings.Contains(msg, name) {
		return msg
	}
	return name + ": " + msg
}

func faultCode(f types.BaseMethodFault) errs.Code {
	switch f.(type) {
	case *types.NotAuthenticated, *types.InvalidLogin, *types.InvalidGuestLogin, *types.GuestPermissionDenied:
		return errs.Unauthenticated
	case *types.NoPermission:
		return errs.PermissionDenied
	case *types.ManagedObjectNotFound, *types.FileNotFound, *types.GuestProcessNotFound, *types.NotFound:
		return errs.NotFound
	case *types.DuplicateName, *types.AlreadyExists, *types.FileAlreadyExists:
		return errs.AlreadyExists
	case *types.InvalidArgument, *types.InvalidRequest, *types.InvalidName, *types.InvalidProperty:
		return errs.InvalidArgument
	case *types.InvalidPowerState, *types.InvalidState, *types.GuestOperationsUnavailable, *types.ToolsUnavailable, *types.TaskInProgress, *types.InvalidDatastore:
		return errs.FailedPrecondition
	case *types.NotSupported, *types.NotImplemented, *types.MethodNotFound:
		return errs.Unimplemented
	case *types.InsufficientResourcesFault, *types.OutOfBounds:
		return errs.ResourceExhausted
	case *types.RequestCanceled:
		return errs.Canceled
	case *types.HostCommunication, *types.HostNotConnected:
		return errs.Unavailable
	}
	return errs.Unknown
}

var _ provider.FlowsDriver = (*Provider)(nil)

// Flows states the one flow the driver needs: the orchestrator to the
// vCenter SDK endpoint it was created with (HTTPS, normally 443).
func (p *Provider) Flows() []provider.Flow {
	f, ok := provider.URLFlow("Service Orchestration", "VMware vCenter Server", p.soap.URL().String(),
		"vSphere API (inventory, provisioning, events, guest operations)")
	if !ok {
		return nil
	}
	return []provider.Flow{f}
}
