package ovirt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EngineVersion is what the API root reports as product_info/version.
type EngineVersion struct {
	Major, Minor, Build, Revision int
	Full                          string
}

// Options configure a Server. The zero value works: see each field.
type Options struct {
	// User is the login, user@profile ("admin@internal" if empty), and
	// Password its password ("secret" if empty).
	User, Password string

	// Now is the clock (time.Now if nil). Give a ManualClock's Now to
	// move time by hand.
	Now func() time.Time

	// Step is the time one state change takes (100 ms if zero): a thin
	// add is image_locked for ThinSteps steps (1 if zero), a clone for
	// CloneSteps (5 if zero); start goes wait_for_launch -> powering_up
	// -> up one step each; the guest agent reports AgentSteps steps after
	// up (2 if zero, -1: never); stop and shutdown take one step through
	// powering_down; a removal keeps the VM image_locked for one step.
	Step                              time.Duration
	ThinSteps, CloneSteps, AgentSteps int

	// TokenTTL is how long an SSO token lives (no limit if zero);
	// TokenIdle how long it lives unused (no limit if zero), as the
	// engine's SSO session times out when idle.
	TokenTTL, TokenIdle time.Duration

	// Version is the engine version (4.5.5 if zero).
	Version EngineVersion

	// HostName is the name of the one host VMs run on ("host1").
	HostName string

	// GuestOS is what guest agents report (a CentOS Stream 9 if zero).
	GuestOS GuestOS

	// NoDefaultInventory starts with no data center, cluster, storage,
	// network or template but the Blank template (see Defaults).
	NoDefaultInventory bool
}

// Server is a fake oVirt engine over TLS. Its methods are safe for
// concurrent use.
type Server struct {
	opts   Options
	hs     *httptest.Server
	caPEM  []byte
	pool   *x509.CertPool
	userID string
	hostID string

	conns atomic.Int64

	mu           sync.Mutex
	tokens       map[string]*token
	logins       int
	logouts      int
	badLogins    int
	emptyLogouts int
	calls        map[string]int
	down         time.Time // engine restarting until then
	startPending bool
	roles        map[string]*role
	perms        []*permission
	superUserID  string // the start event is posted when the engine is back
	latency      time.Duration
	rules        []*ruleState
	ruleSeq      int
	locks        map[string]int // vm id -> in-memory lock holders
	dupInterval  time.Duration
	lastPosted   map[string]time.Time
	suppressed   int
	ipEvents     bool

	dcs        map[string]*dataCenter
	clusters   map[string]*cluster
	sds        map[string]*storageDomain
	networks   map[string]*network
	profiles   map[string]*vnicProfile
	templates  map[string]*template
	vms        map[string]*vm
	byName     map[string]*vm
	vmOrder    []*vm
	events     []*event // ascending index; purge drops from the front
	eventSeq   int64
	jobs       []*job
	timers     timerHeap
	seq        int64
	ipSeq      uint32
	macSeq     uint32
	failCopies int

	def Defaults
}

type token struct {
	expires  time.Time // zero: no limit
	lastUsed time.Time
	expired  bool
}

// New starts a Server on 127.0.0.1 with a certificate signed by its own
// CA. Close it when done.
func New(opts *Options) *Server {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.User == "" {
		o.User = "admin@internal"
	}
	if o.Password == "" {
		o.Password = "secret"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Step == 0 {
		o.Step = 100 * time.Millisecond
	}
	if o.ThinSteps == 0 {
		o.ThinSteps = 1
	}
	if o.CloneSteps == 0 {
		o.CloneSteps = 5
	}
	if o.AgentSteps == 0 {
		o.AgentSteps = 2
	}
	if o.Version == (EngineVersion{}) {
		o.Version = EngineVersion{Major: 4, Minor: 5, Build: 5, Revision: 1, Full: "4.5.5-1.el9"}
	}
	if o.HostName == "" {
		o.HostName = "host1"
	}
	if o.GuestOS == (GuestOS{}) {
		o.GuestOS = GuestOS{Architecture: "x86_64", Codename: "", Distribution: "CentOS Stream", Family: "Linux", Kernel: "5.14.0-362.el9.x86_64", Version: "9"}
	}
	s := &Server{
		opts: o, userID: newID(), hostID: newID(),
		tokens: map[string]*token{}, calls: map[string]int{}, locks: map[string]int{},
		lastPosted: map[string]time.Time{}, ipEvents: true,
		dcs: map[string]*dataCenter{}, clusters: map[string]*cluster{}, sds: map[string]*storageDomain{},
		networks: map[string]*network{}, profiles: map[string]*vnicProfile{}, templates: map[string]*template{},
		vms: map[string]*vm{}, byName: map[string]*vm{},
	}
	s.templates[BlankTemplateID] = &template{id: BlankTemplateID, name: "Blank", description: "Blank template", status: "ok", memory: 1 << 30, sockets: 1, cores: 1, osType: "other", created: time.Date(2008, 4, 1, 0, 0, 0, 0, time.UTC)}
	s.seedRoles()
	if !o.NoDefaultInventory {
		s.seed()
	}
	caPEM, cert, err := newPKI()
	if err != nil {
		panic("ovirt fake: " + err.Error())
	}
	s.caPEM = caPEM
	s.pool = x509.NewCertPool()
	s.pool.AppendCertsFromPEM(caPEM)
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.hs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.hs.StartTLS()
	s.mu.Lock()
	s.post(s.now(), CodeEngineStart, "normal", "Starting oVirt Engine.", nil, "", false)
	s.mu.Unlock()
	return s
}

// Defaults names the default inventory (empty with NoDefaultInventory).
type Defaults struct {
	DataCenterID, ClusterID              string
	VMStorageDomainID, TemplateStorageID string
	ImageStorageDomainID                 string
	ManagementNetworkID, VLANNetworkID   string
	ManagementProfileID, VLANProfileID   string
	TemplateID, TemplateDiskID           string
	VLAN                                 int
}

func (s *Server) seed() {
	dc := &dataCenter{id: newID(), name: "Default", description: "The default Data Center", status: "up", major: 4, minor: 7}
	s.dcs[dc.id] = dc
	cl := &cluster{id: newID(), name: "Default", description: "The default server cluster", dc: dc, major: 4, minor: 7, cpuType: "Intel Nehalem Family"}
	s.clusters[cl.id] = cl
	vmsd := &storageDomain{id: newID(), name: "vmstore", typ: "data", status: "active", dc: dc, available: 500 << 30, used: 100 << 30, storageTyp: "nfs", master: true}
	tplsd := &storageDomain{id: newID(), name: "tplstore", typ: "data", status: "active", dc: dc, available: 200 << 30, used: 20 << 30, storageTyp: "nfs"}
	img := &storageDomain{id: newID(), name: "ovirt-image-repository", typ: "image", status: "unattached", storageTyp: "glance"}
	for _, sd := range []*storageDomain{vmsd, tplsd, img} {
		s.sds[sd.id] = sd
	}
	mgmt := &network{id: newID(), name: "ovirtmgmt", dc: dc, mtu: 1500}
	vlan := &network{id: newID(), name: "vlan100", dc: dc, vlan: 100, mtu: 1500}
	s.networks[mgmt.id], s.networks[vlan.id] = mgmt, vlan
	pm := &vnicProfile{id: newID(), name: "ovirtmgmt", net: mgmt}
	pv := &vnicProfile{id: newID(), name: "vlan100", net: vlan}
	s.profiles[pm.id], s.profiles[pv.id] = pm, pv
	d := &disk{id: newID(), alias: "centos9_Disk1", size: 10 << 30, format: "cow", sparse: true, sd: tplsd, status: "ok", bootable: true, iface: "virtio_scsi"}
	t := &template{id: newID(), name: "centos9", description: "CentOS Stream 9 with cloud-init and the guest agent", status: "ok", cluster: cl,
		memory: 2 << 30, sockets: 2, cores: 1, osType: "rhel_9x64", disks: []*disk{d},
		nics: []*nicT{{id: newID(), name: "nic1", profile: pm, iface: "virtio", linked: true, plugged: true}}, created: s.now()}
	s.templates[t.id] = t
	s.def = Defaults{DataCenterID: dc.id, ClusterID: cl.id, VMStorageDomainID: vmsd.id, TemplateStorageID: tplsd.id,
		ImageStorageDomainID: img.id, ManagementNetworkID: mgmt.id, VLANNetworkID: vlan.id,
		ManagementProfileID: pm.id, VLANProfileID: pv.id, TemplateID: t.id, TemplateDiskID: d.id, VLAN: 100}
}

// Defaults returns the ids of the default inventory.
func (s *Server) Defaults() Defaults { return s.def }

// URL is the API's URL, https://127.0.0.1:PORT/ovirt-engine/api, as
// go-ovirt's ConnectionBuilder.URL takes it.
func (s *Server) URL() string { return s.hs.URL + apiPrefix }

// BaseURL is https://127.0.0.1:PORT.
func (s *Server) BaseURL() string { return s.hs.URL }

// CACertPEM is the engine CA's certificate, as the pki-resource URL serves
// it.
func (s *Server) CACertPEM() []byte { return append([]byte(nil), s.caPEM...) }

// CertPool holds the engine CA.
func (s *Server) CertPool() *x509.CertPool { return s.pool.Clone() }

// Client is an http.Client that trusts the engine CA.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12}}}
}

// User and Password are the account the engine accepts.
func (s *Server) User() string     { return s.opts.User }
func (s *Server) Password() string { return s.opts.Password }

// Close stops the server.
func (s *Server) Close() { s.hs.Close() }

// CloseClientConnections closes every open connection.
func (s *Server) CloseClientConnections() { s.hs.CloseClientConnections() }

func (s *Server) now() time.Time { return s.opts.Now() }

func newPKI() ([]byte, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "engine.test CA", Organization: []string{"managedvm-test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "engine.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost", "engine.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}

// --- HTTP ---

const (
	htmlUnauthorized = "<html><head><title>Error</title></head><body>Unauthorized</body></html>"
	htmlExpired      = "<html><head><title>Error</title></head><body>invalid_grant: The provided authorization grant for the auth code has expired.</body></html>"
	htmlUnavailable  = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>503 Service Unavailable</title>\n</head><body>\n<h1>Service Unavailable</h1>\n<p>The server is temporarily unable to service your\nrequest due to maintenance downtime or capacity\nproblems. Please try again later.</p>\n</body></html>\n"
)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	key := r.Method + " " + pattern(p)
	s.mu.Lock()
	s.calls[key]++
	down := s.now().Before(s.down)
	delay := s.latency
	rule := s.matchRule(r.Method, p)
	s.mu.Unlock()
	if rule != nil && rule.Delay > 0 {
		delay += rule.Delay
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if down {
		w.Header().Set("Content-Type", "text/html; charset=iso-8859-1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(htmlUnavailable))
		return
	}
	switch {
	case p == "/ovirt-engine/sso/oauth/token":
		s.ssoToken(w, r)
	case p == "/ovirt-engine/services/sso-logout":
		s.ssoLogout(w, r)
	case p == "/ovirt-engine/services/pki-resource":
		s.pki(w, r)
	case p == apiPrefix || strings.HasPrefix(p, apiPrefix+"/"):
		if !s.authorized(w, r) {
			return
		}
		if rule != nil && rule.Status != 0 {
			writeFault(w, rule.Status, rule.Reason, rule.Detail)
			return
		}
		if rule != nil && rule.Drop == DropBefore {
			hangUp(w)
			return
		}
		if rule != nil && rule.Drop == DropAfter {
			s.api(httptest.NewRecorder(), r, strings.TrimPrefix(p, apiPrefix))
			hangUp(w)
			return
		}
		s.api(w, r, strings.TrimPrefix(p, apiPrefix))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// pattern turns a path into its shape for call counting: ids become {id}.
func pattern(p string) string {
	if p != apiPrefix && !strings.HasPrefix(p, apiPrefix+"/") {
		return p
	}
	p = strings.TrimPrefix(p, apiPrefix)
	if p == "" {
		return "/"
	}
	seg := strings.Split(p, "/")
	for i := range seg {
		if i >= 2 && i%2 == 0 {
			seg[i] = "{id}"
		}
	}
	return strings.Join(seg, "/")
}

func (s *Server) pki(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method != http.MethodGet || q.Get("resource") != "ca-certificate" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	switch q.Get("format") {
	case "X509-PEM-CA", "":
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		_, _ = w.Write(s.caPEM)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type ssoError struct {
	Code string `json:"error_code"`
	Err  string `json:"error"`
}

// ssoToken is the SSO token endpoint: grant_type=password with
// username=user@profile, password and scope=ovirt-app-api.
func (s *Server) ssoToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, ssoError{"invalid_request", "The request is malformed."})
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") == "":
		writeJSON(w, http.StatusBadRequest, ssoError{"invalid_request", "The request is missing a required parameter: grant_type."})
		return
	case f.Get("grant_type") != "password":
		writeJSON(w, http.StatusBadRequest, ssoError{"unsupported_grant_type", "The authorization grant type is not supported by the authorization server."})
		return
	case !strings.Contains(" "+f.Get("scope")+" ", " ovirt-app-api "):
		writeJSON(w, http.StatusBadRequest, ssoError{"invalid_scope", "The requested scope is invalid, unknown, or malformed."})
		return
	}
	user, pass := f.Get("username"), f.Get("password")
	s.mu.Lock()
	defer s.mu.Unlock()
	wantUser, wantProfile, _ := cut(s.opts.User)
	gotUser, gotProfile, ok := cut(user)
	switch {
	case !ok || gotProfile != wantProfile:
		s.badLogins++
		writeJSON(w, http.StatusBadRequest, ssoError{"access_denied", fmt.Sprintf("Cannot authenticate user '%s': No valid profile found in credentials..", user)})
		return
	case gotUser != wantUser || pass != s.opts.Password:
		s.badLogins++
		writeJSON(w, http.StatusBadRequest, ssoError{"access_denied", fmt.Sprintf("Cannot authenticate user '%s': The username or password is incorrect..", user)})
		return
	}
	tok := newToken()
	t := &token{lastUsed: s.now()}
	exp := ""
	if s.opts.TokenTTL > 0 {
		t.expires = s.now().Add(s.opts.TokenTTL)
		exp = fmt.Sprint(t.expires.UnixMilli())
	} else {
		exp = fmt.Sprint(s.now().Add(100 * 365 * 24 * time.Hour).UnixMilli())
	}
	s.tokens[tok] = t
	s.logins++
	writeJSON(w, http.StatusOK, map[string]string{"access_token": tok, "scope": "ovirt-app-api ovirt-ext=token-info:authz-search ovirt-ext=token-info:public-authz-search ovirt-ext=token-info:validate ovirt-ext=token:password-access", "exp": exp, "token_type": "bearer"})
}

func cut(userAtProfile string) (user, profile string, ok bool) {
	i := strings.LastIndexByte(userAtProfile, '@')
	if i <= 0 || i == len(userAtProfile)-1 {
		return userAtProfile, "", false
	}
	return userAtProfile[:i], userAtProfile[i+1:], true
}

func newToken() string {
	var b [48]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = alpha[int(c)%len(alpha)]
	}
	return string(out)
}

// ssoLogout revokes the form's token. An empty or unknown token revokes
// nothing and still answers 200 with an empty JSON object.
func (s *Server) ssoLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	_ = r.ParseForm()
	tok := r.Form.Get("token")
	s.mu.Lock()
	if _, ok := s.tokens[tok]; ok && tok != "" {
		delete(s.tokens, tok)
		s.logouts++
	} else {
		s.emptyLogouts++
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct{}{})
}

// authorized checks the bearer token and the headers go-ovirt sends. A
// missing, unknown, revoked or expired token is answered 401 with the
// HTML page the engine's servlet container writes.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if v := r.Header.Get("Version"); v != "" && v != "4" {
		writeFault(w, http.StatusBadRequest, "Operation Failed", "Version "+v+" of the API is not supported")
		return false
	}
	if a := r.Header.Get("Accept"); a != "" && !strings.Contains(a, "xml") && !strings.Contains(a, "*/*") {
		w.WriteHeader(http.StatusNotAcceptable)
		return false
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	s.mu.Lock()
	t := s.tokens[tok]
	now := s.now()
	expired := t != nil && (t.expired || (!t.expires.IsZero() && !now.Before(t.expires)) ||
		(s.opts.TokenIdle > 0 && !now.Before(t.lastUsed.Add(s.opts.TokenIdle))))
	if t != nil && !expired {
		t.lastUsed = now
	}
	s.mu.Unlock()
	if !ok || t == nil || expired {
		body := htmlUnauthorized
		if expired {
			body = htmlExpired
		}
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(body))
		return false
	}
	return true
}

// writeFault writes <fault><detail/><reason/></fault>. An empty reason
// and detail write an empty body, as the engine does for 404.
func writeFault(w http.ResponseWriter, status int, reason, detail string) {
	if reason == "" && detail == "" {
		w.WriteHeader(status)
		return
	}
	var b bytes.Buffer
	x := xw{&b}
	b.WriteString(xmlHeader)
	x.open("fault")
	x.opt("detail", detail)
	x.opt("reason", reason)
	x.close("fault")
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

const xmlHeader = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

func writeXML(w http.ResponseWriter, status int, b *bytes.Buffer) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xmlHeader)
	_, _ = w.Write(b.Bytes())
}
