package vcd

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vmware/go-vcloud-director/v2/types/v56"
)

// Options configure a Server. The zero value (or nil) gives the default
// fixture described in the package documentation.
type Options struct {
	// Org, VDC, StorageProfile, Network, EdgeGateway, Catalog and Template
	// name the objects of the default fixture. Defaults: "acme", "vdc1",
	// "gold", "net1", "edge1", "public", "ubuntu-22.04".
	Org, VDC, StorageProfile, Network, EdgeGateway, Catalog, Template string
	// User and Password: the tenant Organization Administrator of Org.
	// Defaults "orgadmin" / "Passw0rd-tenant".
	User, Password string
	// SysAdminPassword is the password of "administrator" in org System.
	// Default "Passw0rd-system".
	SysAdminPassword string
	// APIToken, when set, is accepted as an API (refresh) token for User
	// at /oauth/tenant/{Org}/token.
	APIToken string
	// TaskDuration is how long a task runs before it completes (its
	// Progress grows linearly). Zero: a task is reported "running" in the
	// answer that starts it and completes before the next request.
	TaskDuration time.Duration
	// GatewayTaskDuration is how long an edge gateway write (NAT rule,
	// firewall, firewall group) runs; while it runs, other writes to the
	// gateway fail with BUSY_ENTITY. Zero: TaskDuration.
	GatewayTaskDuration time.Duration
	// TokenTTL is the lifetime of a session token; zero means no expiry.
	TokenTTL time.Duration
	// NetworkProvider is the VDC's network backing, "NSX_T" (default) or
	// "NSX_V": reported by the VDC capabilities, the orgVdc query record
	// and the edge gateway's gatewayType (NSXT_BACKED or NSXV_BACKED).
	NetworkProvider string
	// MaxPageSize caps pageSize for the query service and the cloudapi
	// lists. Default 128 (VCD's default maximum).
	MaxPageSize int
	// AuditRetention, when set, is how long the audit trail keeps an
	// event: older events are purged, oldest first, as VCD purges audit
	// events past its retention setting (days on a real VCD). Zero keeps
	// every event.
	AuditRetention time.Duration
}

func (o *Options) withDefaults() Options {
	var v Options
	if o != nil {
		v = *o
	}
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&v.Org, "acme")
	def(&v.VDC, "vdc1")
	def(&v.StorageProfile, "gold")
	def(&v.Network, "net1")
	def(&v.EdgeGateway, "edge1")
	def(&v.Catalog, "public")
	def(&v.Template, "ubuntu-22.04")
	def(&v.User, "orgadmin")
	def(&v.Password, "Passw0rd-tenant")
	def(&v.SysAdminPassword, "Passw0rd-system")
	def(&v.NetworkProvider, "NSX_T")
	if v.MaxPageSize <= 0 {
		v.MaxPageSize = 128
	}
	return v
}

// Server is an in-process VMware Cloud Director (API 37.0-38.1) over TLS.
type Server struct {
	ts   *httptest.Server
	opts Options
	pool *x509.CertPool

	mu sync.Mutex
	st *state

	statMu   sync.Mutex
	requests map[string]int
	latency  time.Duration
}

// New starts a server with the default fixture. Close it when done.
func New(opts *Options) *Server {
	o := opts.withDefaults()
	s := &Server{opts: o, requests: map[string]int{}}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected in tests
	s.ts.StartTLS()
	s.pool = x509.NewCertPool()
	s.pool.AddCert(s.ts.Certificate())
	s.st = newState(s.ts.URL, o)
	s.st.seed(o)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// URL is the server's base address (https://127.0.0.1:port).
func (s *Server) URL() string { return s.ts.URL }

// APIURL is the endpoint given to govcd.NewVCDClient: URL()+"/api".
func (s *Server) APIURL() string { return s.ts.URL + "/api" }

// CertPool holds the server's certificate, for a verifying TLS client.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// CACertPEM is the server's certificate in PEM.
func (s *Server) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
}

// Options returns the effective options (defaults filled, durations as
// last set).
func (s *Server) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

// supported API versions, as VCD 10.5.1 lists them (the ones below 37.0
// marked deprecated).
var apiVersions = []string{"35.0", "36.0", "36.1", "36.2", "36.3", "37.0", "37.1", "37.2", "37.3", "38.0", "38.1"}

func versionSupported(v string) bool {
	for _, s := range apiVersions {
		if s == v {
			return true
		}
	}
	return false
}

// ---- errors as VCD sends them ----

// apiError is an error answered to a client.
type apiError struct {
	status int
	minor  string
	msg    string
}

func (e *apiError) Error() string { return e.minor + ": " + e.msg }

func newErr(status int, minor, format string, a ...any) *apiError {
	return &apiError{status: status, minor: minor, msg: fmt.Sprintf(format, a...)}
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// writeXMLError writes <Error> as /api does.
func writeXMLError(w http.ResponseWriter, e *apiError) {
	body := types.Error{
		Message:        "[ " + requestID() + " ] " + e.msg,
		MajorErrorCode: e.status,
		MinorErrorCode: e.minor,
		StackTrace:     "com.vmware.vcloud.api.presentation.service." + e.minor,
	}
	w.Header().Set("Content-Type", types.MimeError+";version=37.0")
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(xml.Header))
	enc := xml.NewEncoder(w)
	_ = enc.EncodeElement(body, xml.StartElement{Name: xml.Name{Local: "Error"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: types.XMLNamespaceVCloud}}})
}

// writeJSONError writes the cloudapi error body.
func writeJSONError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json;version=37.0")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"minorErrorCode": e.minor,
		"message":        "[ " + requestID() + " ] " + e.msg,
		"stackTrace":     "com.vmware.vcloud.api.presentation.service." + e.minor,
	})
}

func writeXML(w http.ResponseWriter, status int, mime, root string, v any) {
	w.Header().Set("Content-Type", mime+";version=37.0")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).EncodeElement(v, xml.StartElement{Name: xml.Name{Local: root}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;version=37.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ---- request plumbing ----

// SetLatency adds d to the handling of every request (0 removes it).
func (s *Server) SetLatency(d time.Duration) {
	s.statMu.Lock()
	s.latency = d
	s.statMu.Unlock()
}

// Requests returns how many requests matched key, "METHOD /path" with
// identifiers replaced by {id} (for example "GET /api/query",
// "POST /cloudapi/1.0.0/edgeGateways/{id}/nat/rules").
func (s *Server) Requests(key string) int {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	return s.requests[key]
}

// RequestCounts returns a copy of all request counts by key.
func (s *Server) RequestCounts() map[string]int {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	m := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		m[k] = v
	}
	return m
}

// TotalRequests is the number of requests served.
func (s *Server) TotalRequests() int {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	n := 0
	for _, v := range s.requests {
		n += v
	}
	return n
}

// ResetCounts zeroes the request counts (not the session counts).
func (s *Server) ResetCounts() {
	s.statMu.Lock()
	s.requests = map[string]int{}
	s.statMu.Unlock()
}

// pathKey replaces identifiers in p by {id}.
func pathKey(p string) string {
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for i, sg := range segs {
		if isIDSegment(sg) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

func isIDSegment(sg string) bool {
	if strings.HasPrefix(sg, "urn:vcloud:") {
		return true
	}
	if i := strings.IndexByte(sg, '-'); i > 0 && i < len(sg)-36 {
		sg = sg[i+1:] // vapp-UUID, vm-UUID, vappTemplate-UUID
	}
	return len(sg) == 36 && sg[8] == '-' && sg[13] == '-'
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.statMu.Lock()
	s.requests[r.Method+" "+pathKey(r.URL.Path)]++
	lat := s.latency
	s.statMu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	rid := requestID()
	if c := r.Header.Get("X-Vmware-Vcloud-Client-Request-Id"); c != "" {
		if len(c) > 128 {
			c = c[:128]
		}
		rid = c + "-" + rid
	}
	w.Header().Set("X-VMWARE-VCLOUD-REQUEST-ID", rid)
	p := r.URL.Path
	switch {
	case p == "/api/versions":
		s.handleVersions(w, r)
	case strings.HasPrefix(p, "/oauth/"):
		s.handleOAuth(w, r)
	case strings.HasPrefix(p, "/cloudapi/"):
		s.handleCloudAPI(w, r)
	case strings.HasPrefix(p, "/api/"):
		s.handleAPI(w, r)
	default:
		writeXMLError(w, newErr(404, "RESOURCE_NOT_FOUND", "The requested resource was not found: %s", p))
	}
}

// acceptVersion extracts the version= of the Accept header(s); "" when
// none is given.
func acceptVersion(r *http.Request) string {
	for _, a := range r.Header.Values("Accept") {
		for _, part := range strings.Split(a, ";") {
			part = strings.TrimSpace(part)
			if v, ok := strings.CutPrefix(part, "version="); ok {
				return v
			}
		}
	}
	return ""
}

func (s *Server) handleVersions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeXMLError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
		return
	}
	type versionInfo struct {
		Deprecated       bool   `xml:"deprecated,attr"`
		Version          string `xml:"Version"`
		LoginUrl         string `xml:"LoginUrl"`
		ProviderLoginUrl string `xml:"ProviderLoginUrl,omitempty"`
	}
	type supported struct {
		Xmlns string        `xml:"xmlns,attr"`
		Infos []versionInfo `xml:"VersionInfo"`
	}
	out := supported{Xmlns: "http://www.vmware.com/vcloud/versions"}
	for _, v := range apiVersions {
		out.Infos = append(out.Infos, versionInfo{
			Deprecated:       v < "37.0",
			Version:          v,
			LoginUrl:         s.ts.URL + "/cloudapi/1.0.0/sessions",
			ProviderLoginUrl: s.ts.URL + "/cloudapi/1.0.0/sessions/provider",
		})
	}
	writeXML(w, 200, "application/*+xml", "SupportedVersions", out)
}

// ---- helpers shared by the handlers ----

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// uuidOf returns the UUID at the end of an id, URN or HREF.
func uuidOf(s string) string {
	s = strings.TrimSuffix(s, "/")
	if len(s) >= 36 {
		return s[len(s)-36:]
	}
	return s
}

func vcdTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
