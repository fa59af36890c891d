package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

// server is serve's state: the stack, the sessions and the operations.
type server struct {
	stack    *Stack
	log      *slog.Logger
	hub      *hub
	auth     Authenticator
	sessions *sessions
	limit    *limiter
	metrics  *metricsHandler
	// scrapeToken, if set, lets a Prometheus scraper read /metrics.
	scrapeToken string
	// ctx is the server's life: operations run on it, not on a request.
	ctx context.Context
	wg  sync.WaitGroup

	mu    sync.Mutex
	ready bool
	demo  map[string]string // demo user -> password, printed at start-up
	cert  *x509.Certificate // the serving certificate
}

// serveOptions are what tests change.
type serveOptions struct {
	// listening, if set, is called with the address once the server listens.
	listening func(addr string, s *server)
}

func cmdServe(ctx context.Context, c *call) error { return serve(ctx, c, serveOptions{}) }

func serve(ctx context.Context, c *call, so serveOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &server{log: c.log, hub: newHub(), sessions: newSessions(8 * time.Hour), limit: newLimiter(5, 5*time.Minute), ctx: ctx}
	mh, mp, err := newMetrics()
	if err != nil {
		return err
	}
	srv.metrics = mh
	if pt := c.cfg.Portal; pt.MetricsTokenEnv != "" || pt.MetricsTokenFile != "" {
		tok, err := readSecret(pt.MetricsTokenEnv, pt.MetricsTokenFile)
		if err != nil {
			return fmt.Errorf("portal.metrics_token_file: %w", err)
		}
		if len(tok.Reveal()) < 16 {
			return errs.New(errs.InvalidArgument, "", "portal: the metrics token is shorter than 16 bytes")
		}
		srv.scrapeToken = tok.Reveal()
	}
	stack, err := Build(ctx, c.cfg, BuildOptions{Logger: c.log, Observer: srv.hub, MeterProvider: mp})
	if err != nil {
		return err
	}
	defer stack.Close()
	srv.stack = stack

	var auths chain
	if c.cfg.Portal.DemoLogin {
		srv.demo = map[string]string{"demo": randomToken(12), "viewer": randomToken(12)}
		auths = append(auths, demoAuth{"demo": {srv.demo["demo"], Operator}, "viewer": {srv.demo["viewer"], Viewer}})
	}
	if c.cfg.LDAP != nil {
		la, err := newLDAPAuth(c.cfg.LDAP, c.log)
		if err != nil {
			return err
		}
		auths = append(auths, la)
	}
	if len(auths) == 0 {
		return errs.New(errs.InvalidArgument, "", "nobody can log in: set ldap or portal.demo_login")
	}
	srv.auth = auths

	// Resume what a previous process left, then index and keep resuming.
	rep, err := stack.Orch.Resume(ctx)
	if err != nil {
		return fmt.Errorf("resume at start-up: %w", err)
	}
	if len(rep.Resumed) > 0 {
		c.log.Info("resumed open journals", "count", len(rep.Resumed))
	}
	if err := stack.Sync(ctx); err != nil {
		return err
	}
	every := 30 * time.Second
	if c.cfg.ResumeEvery != "" {
		every, _ = parseDuration(c.cfg.ResumeEvery)
	}
	srv.wg.Add(2)
	go func() { defer srv.wg.Done(); _ = stack.Orch.Indexer(nil).Run(ctx) }()
	go func() { defer srv.wg.Done(); _ = stack.Orch.ResumeEvery(ctx, every, nil) }()
	defer srv.wg.Wait()
	defer cancel()

	tlsCfg, fingerprint, err := tlsConfig(c.cfg)
	if err != nil {
		return err
	}
	srv.cert, _ = x509.ParseCertificate(tlsCfg.Certificates[0].Certificate[0])
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return errs.Wrap(errs.Unavailable, "", err)
	}
	hs := &http.Server{
		Handler:           srv.routes(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	srv.mu.Lock()
	srv.ready = true
	srv.mu.Unlock()
	addr := ln.Addr().String()
	fmt.Fprintf(c.stdout, "managedvm: serving https://%s/\n", addr)
	if fingerprint != "" {
		fmt.Fprintf(c.stdout, "  self-signed certificate for the loopback, SHA-256 %s\n", fingerprint)
	}
	for _, u := range sortedKeys(srv.demo) {
		role := map[string]string{"demo": "operator", "viewer": "viewer"}[u]
		fmt.Fprintf(c.stdout, "  demo login (%s): user %s, password %s\n", role, u, srv.demo[u])
	}
	if so.listening != nil {
		so.listening(addr, srv)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return errs.Wrap(errs.Unavailable, "", err)
	case <-ctx.Done():
	}
	shut, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer done()
	_ = hs.Shutdown(shut)
	return nil
}

// tlsConfig loads the configured certificate, or makes a self-signed one
// for a loopback address (its fingerprint is printed).
func tlsConfig(cfg *Config) (*tls.Config, string, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, "", errs.Wrap(errs.InvalidArgument, "tls", err)
		}
		tc.Certificates = []tls.Certificate{cert}
		return tc, "", nil
	}
	cert, err := selfSigned()
	if err != nil {
		return nil, "", err
	}
	tc.Certificates = []tls.Certificate{cert}
	sum := sha256.Sum256(cert.Certificate[0])
	hexs := make([]string, len(sum))
	for i, b := range sum {
		hexs[i] = fmt.Sprintf("%02X", b)
	}
	return tc, strings.Join(hexs, ":"), nil
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "managedvm portal (self-signed, loopback)"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// routes is the whole HTTP surface. Everything but /healthz, /login and
// the static files needs a session; every POST a CSRF token; enroll and
// unenroll the operator role.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", s.scrape(s.metrics))
	mux.Handle("GET /static/", http.FileServerFS(staticFS))

	// The JSON API.
	mux.HandleFunc("POST /api/login", s.apiLogin)
	mux.Handle("POST /api/logout", s.authed(s.csrf(http.HandlerFunc(s.apiLogout))))
	mux.Handle("GET /api/devices", s.authed(http.HandlerFunc(s.apiDevices)))
	mux.Handle("GET /api/devices/{provider}/{id}", s.authed(http.HandlerFunc(s.apiDevice)))
	mux.Handle("POST /api/devices/{provider}/{id}/enroll", s.authed(s.csrf(s.operator(http.HandlerFunc(s.apiEnroll)))))
	mux.Handle("POST /api/devices/{provider}/{id}/unenroll", s.authed(s.csrf(s.operator(http.HandlerFunc(s.apiUnenroll)))))
	mux.Handle("GET /api/ops/{op}", s.authed(http.HandlerFunc(s.apiOp)))
	mux.Handle("GET /api/ops/{op}/events", s.authed(http.HandlerFunc(s.opEvents)))
	mux.Handle("GET /api/events", s.authed(http.HandlerFunc(s.deviceEvents)))
	mux.Handle("GET /api/preflight", s.authed(http.HandlerFunc(s.apiPreflight)))
	mux.Handle("GET /api/netreq", s.authed(http.HandlerFunc(s.apiNetreq)))
	mux.Handle("GET /api/audit", s.authed(http.HandlerFunc(s.apiAudit)))

	s.portalRoutes(mux)
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

type ctxKey struct{}

func sessionOf(r *http.Request) *session { ss, _ := r.Context().Value(ctxKey{}).(*session); return ss }

func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics"
}

// authed refuses a request without a live session: 401 for the API, a
// redirect to the login page for the portal.
func (s *server) authed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss := s.sessions.get(r)
		if ss == nil {
			if isAPI(r) || r.Method != http.MethodGet {
				apiError(w, http.StatusUnauthorized, errs.New(errs.Unauthenticated, "", "log in first"))
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ss)))
	})
}

// scrape lets a request with the configured scrape token through, and
// otherwise asks for a session as authed does.
func (s *server) scrape(h http.Handler) http.Handler {
	ah := s.authed(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if scrapeToken(r, s.scrapeToken) {
			h.ServeHTTP(w, r)
			return
		}
		ah.ServeHTTP(w, r)
	})
}

// csrf refuses a POST whose token (form field csrf, or header
// X-CSRF-Token) is not the session's, or that comes from another origin.
func (s *server) csrf(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss := sessionOf(r)
		tok := r.Header.Get("X-CSRF-Token")
		if tok == "" && !isAPI(r) {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			tok = r.PostFormValue("csrf")
		}
		if ss == nil || !validCSRF(ss.csrf, tok) || !sameOrigin(r) {
			s.log.Warn("request refused: CSRF token missing or wrong", "path", r.URL.Path, "user", ss.userName())
			apiError(w, http.StatusForbidden, errs.New(errs.PermissionDenied, "", "the form's security token is missing or stale: reload the page"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (ss *session) userName() string {
	if ss == nil {
		return ""
	}
	return ss.user
}

// sameOrigin refuses a request whose Origin header names another site.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || o == "https://"+r.Host
}

// operator refuses viewers.
func (s *server) operator(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ss := sessionOf(r); ss == nil || ss.role != Operator {
			s.log.Warn("request refused: not an operator", "path", r.URL.Path, "user", ss.userName())
			apiError(w, http.StatusForbidden, errs.New(errs.PermissionDenied, "", "only operators may enroll and unenroll"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status, code := "ok", http.StatusOK
	if !ready {
		status, code = "starting", http.StatusServiceUnavailable
	} else if _, err := s.stack.Store.OpenJournals(ctx); err != nil {
		status, code = "store unavailable", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]string{"status": status})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// httpStatus maps an errs code to an HTTP status.
func httpStatus(err error) int {
	switch errs.CodeOf(err) {
	case errs.OK:
		return http.StatusOK
	case errs.NotFound:
		return http.StatusNotFound
	case errs.AlreadyExists:
		return http.StatusConflict
	case errs.InvalidArgument:
		return http.StatusBadRequest
	case errs.FailedPrecondition:
		return http.StatusConflict
	case errs.PermissionDenied:
		return http.StatusForbidden
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.ResourceExhausted:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	case errs.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case errs.Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func apiError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"code": errs.CodeOf(err).String(), "error": err.Error()})
}

// login checks a user name and password, with the rate limit; it returns
// the new session.
func (s *server) login(w http.ResponseWriter, r *http.Request, user, password string) (*session, error) {
	client := clientAddr(r)
	if !s.limit.allowed("user:"+user, "addr:"+client) {
		s.log.Warn("login refused: too many failures", "user", quote(user), "client", client)
		return nil, errs.New(errs.ResourceExhausted, "", "too many failed logins: wait a few minutes")
	}
	if user == "" || password == "" || len(user) > 256 || len(password) > 1024 {
		s.limit.fail("user:"+user, "addr:"+client)
		return nil, errs.New(errs.Unauthenticated, "", "wrong user name or password")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	role, err := s.auth.Authenticate(ctx, user, password)
	if err != nil {
		if c := errs.CodeOf(err); c == errs.Unauthenticated || c == errs.InvalidArgument || errors.Is(err, errNoGroup) {
			s.limit.fail("user:"+user, "addr:"+client)
		}
		s.log.Warn("login refused", "user", quote(user), "client", client, "code", errs.CodeOf(err).String())
		return nil, err
	}
	s.log.Info("login", "user", quote(user), "role", string(role), "client", client)
	return s.sessions.create(w, user, role), nil
}

func clientAddr(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ap.Addr().String()
}

type loginJSON struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func (s *server) apiLogin(w http.ResponseWriter, r *http.Request) {
	var in loginJSON
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, errs.New(errs.InvalidArgument, "", "the body is not a JSON object with user and password"))
		return
	}
	if !sameOrigin(r) {
		apiError(w, http.StatusForbidden, errs.New(errs.PermissionDenied, "", "cross-origin login refused"))
		return
	}
	ss, err := s.login(w, r, in.User, in.Password)
	if err != nil {
		apiError(w, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": ss.user, "role": string(ss.role), "csrf": ss.csrf})
}

func (s *server) apiLogout(w http.ResponseWriter, r *http.Request) {
	s.sessions.destroy(w, r)
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

// deviceQuery filters and sorts devices (the Devices page and the API):
// q matches name, ID, IPs and OS; provider and state narrow; sort names a
// column, desc reverses.
type deviceQuery struct {
	Q, Provider, State, Sort string
	Desc                     bool
}

func queryOf(r *http.Request) deviceQuery {
	v := r.URL.Query()
	q := deviceQuery{Q: v.Get("q"), Provider: v.Get("provider"), State: v.Get("state"), Sort: v.Get("sort"), Desc: v.Get("desc") == "1"}
	if len(q.Q) > 256 {
		q.Q = q.Q[:256]
	}
	return q
}

func (s *server) devices(ctx context.Context, q deviceQuery) ([]Device, error) {
	f := cmdb.Filter{}
	if q.Provider != "" {
		if s.stack.Providers[q.Provider] == nil {
			return nil, errs.Errorf(errs.NotFound, "", "no provider %s", quote(q.Provider))
		}
		f.Provider = q.Provider
	}
	if q.State != "" {
		st := cmdb.State(q.State)
		if !st.Valid() {
			return nil, errs.Errorf(errs.InvalidArgument, "", "%s is not a state", quote(q.State))
		}
		f.States = []cmdb.State{st}
	}
	all, err := s.stack.ListDevices(ctx, f)
	if err != nil {
		return nil, err
	}
	return filterSort(all, q), nil
}

func (s *server) apiDevices(w http.ResponseWriter, r *http.Request) {
	devs, err := s.devices(r.Context(), queryOf(r))
	if err != nil {
		apiError(w, httpStatus(err), err)
		return
	}
	if devs == nil {
		devs = []Device{}
	}
	writeJSON(w, http.StatusOK, devs)
}

func (s *server) device(r *http.Request) (Device, error) {
	p, id := r.PathValue("provider"), r.PathValue("id")
	if s.stack.Providers[p] == nil {
		return Device{}, errs.Errorf(errs.NotFound, "", "no provider %s", quote(p))
	}
	rec, err := s.stack.CMDB.Get(r.Context(), cmdb.Key{Provider: p, VMID: id})
	if err != nil {
		return Device{}, err
	}
	return s.stack.withAccess(r.Context(), deviceOf(rec))
}

func (s *server) apiDevice(w http.ResponseWriter, r *http.Request) {
	d, err := s.device(r)
	if err != nil {
		apiError(w, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// enrollJSON is the body of an API enroll or unenroll.
type enrollJSON struct {
	User     string `json:"user"`
	Password string `json:"password"`
	Profile  string `json:"profile,omitempty"`
	Force    bool   `json:"force,omitempty"`
}

func (s *server) apiEnroll(w http.ResponseWriter, r *http.Request) { s.apiStart(w, r, "enroll") }

func (s *server) apiUnenroll(w http.ResponseWriter, r *http.Request) { s.apiStart(w, r, "unenroll") }

func (s *server) apiStart(w http.ResponseWriter, r *http.Request, kind string) {
	var in enrollJSON
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, errs.New(errs.InvalidArgument, "", "the body is not a JSON object"))
		return
	}
	o, err := s.start(r, kind, in)
	if err != nil {
		apiError(w, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"op": o.ID, "status": "/api/ops/" + o.ID, "events": "/api/ops/" + o.ID + "/events"})
}

// start checks and starts an enrollment or unenrollment in the
// background (on the server's context: a closed browser tab does not
// cancel it). The password is used for this request and dropped.
func (s *server) start(r *http.Request, kind string, in enrollJSON) (*op, error) {
	d, err := s.device(r)
	if err != nil {
		return nil, err
	}
	if in.User == "" && !(kind == "unenroll" && (in.Password == "" || in.Force)) {
		return nil, errs.New(errs.InvalidArgument, "", "the guest user name is required")
	}
	if kind == "enroll" && in.Password == "" {
		return nil, errs.New(errs.InvalidArgument, "", "the guest password is required")
	}
	if len(in.User) > enroll.MaxUsername || len(in.Password) > 1024 {
		return nil, errs.New(errs.InvalidArgument, "", "the user name or password is too long")
	}
	if in.Profile != "" {
		if _, ok := s.stack.Profiles[in.Profile]; !ok {
			return nil, errs.Errorf(errs.InvalidArgument, "", "no profile %s", quote(in.Profile))
		}
	}
	o := s.hub.newOp(kind, sessionOf(r).user, d)
	creds := guest.Credentials{}
	if in.Password != "" {
		creds = guest.Password(in.User, in.Password)
	}
	s.log.Info("operation started", "op", o.ID, "kind", kind, "vm", d.Key(), "user", quote(o.User))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var res enroll.Result
		var err error
		if kind == "enroll" {
			res, err = s.stack.Orch.Enroll(s.ctx, enroll.Request{Key: o.ID, Provider: d.Provider, VMID: d.ID, Credentials: creds, Profile: in.Profile})
		} else {
			res, err = s.stack.Orch.Unenroll(s.ctx, enroll.UnenrollRequest{Key: o.ID, Provider: d.Provider, VMID: d.ID, Credentials: creds, Force: in.Force})
		}
		o.finish(jsonOfResult(res, err))
		s.hub.devicesChanged()
	}()
	return o, nil
}

func (s *server) apiOp(w http.ResponseWriter, r *http.Request) {
	o := s.hub.op(r.PathValue("op"))
	if o == nil {
		apiError(w, http.StatusNotFound, errs.New(errs.NotFound, "", "no such operation"))
		return
	}
	writeJSON(w, http.StatusOK, o.view())
}

// opEvents streams an operation's events as server-sent events: every
// event so far, then each new one; "done" with the result ends it.
func (s *server) opEvents(w http.ResponseWriter, r *http.Request) {
	o := s.hub.op(r.PathValue("op"))
	if o == nil {
		apiError(w, http.StatusNotFound, errs.New(errs.NotFound, "", "no such operation"))
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		apiError(w, http.StatusInternalServerError, errs.New(errs.Internal, "", "streaming unsupported"))
		return
	}
	ch, unsub := o.subscribe()
	defer unsub()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	sent := 0
	for {
		evs, done := o.since(sent)
		for _, e := range evs {
			writeSSE(w, "step", e)
		}
		sent += len(evs)
		if done {
			writeSSE(w, "done", o.view().Result)
			fl.Flush()
			return
		}
		fl.Flush()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		case <-time.After(15 * time.Second):
			io.WriteString(w, ": keep-alive\n\n")
		}
	}
}

// deviceEvents tells a Devices page that the devices changed (it then
// fetches the rows again): one "devices" event per change, coalesced.
func (s *server) deviceEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		return
	}
	ch, unsub := s.hub.subscribe()
	defer unsub()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, ": connected\n\n")
	fl.Flush()
	for {
		select {
		case <-ch:
			writeSSE(w, "devices", map[string]string{"at": time.Now().UTC().Format(time.RFC3339Nano)})
			fl.Flush()
			// Coalesce bursts (a sync of thousands of VMs).
			select {
			case <-time.After(250 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		case <-r.Context().Done():
			return
		case <-time.After(15 * time.Second):
			io.WriteString(w, ": keep-alive\n\n")
			fl.Flush()
		}
	}
}

func writeSSE(w io.Writer, event string, v any) {
	b, _ := json.Marshal(v) // JSON has no raw newlines: one data line
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
}

func (s *server) preflight(ctx context.Context) ([]preflightRow, error) {
	rows := []preflightRow{}
	for _, name := range s.stack.ProviderNames() {
		rep, err := s.stack.Providers[name].Preflight(ctx)
		if err != nil {
			return nil, fmt.Errorf("preflight of %s: %w", name, err)
		}
		for _, ch := range rep.Checks {
			rows = append(rows, preflightRow{Provider: name, Check: ch})
		}
	}
	return rows, nil
}

func (s *server) apiPreflight(w http.ResponseWriter, r *http.Request) {
	rows, err := s.preflight(r.Context())
	if err != nil {
		apiError(w, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, rows)
}

func (s *server) apiNetreq(w http.ResponseWriter, r *http.Request) {
	m, err := s.stack.NetworkRequirements()
	if err != nil {
		apiError(w, httpStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *server) apiAudit(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.hub.auditTrail())
}
