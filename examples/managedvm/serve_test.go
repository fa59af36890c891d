package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const xssName = `<img src=x onerror=alert(1)>`

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// portal is a running serve on the embedded defaults (on a free port,
// with one more VM whose name is hostile), logging at debug level.
type portal struct {
	t    testing.TB
	base string
	srv  *server
	out  *syncBuffer // stdout and stderr (the log)
	root *x509.CertPool
}

func startPortal(t testing.TB, edit func(yaml string) string) *portal {
	t.Helper()
	y := strings.Replace(string(defaultsYAML), "listen: 127.0.0.1:8443", "listen: 127.0.0.1:0", 1)
	y = strings.Replace(y, "        - {name: app-01, ip: 192.168.10.13}\n",
		"        - {name: app-01, ip: 192.168.10.13}\n        - {name: '"+xssName+"', ip: 192.168.10.66}\n", 1)
	y = strings.Replace(y, "resume_every: 30s", "resume_every: 200ms", 1)
	if edit != nil {
		y = edit(y)
	}
	cfg, err := ParseConfig("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	p := &portal{t: t, out: out}
	ready := make(chan struct{})
	done := make(chan error, 1)
	c := &call{env: &env{stdout: out, stderr: out, getenv: func(string) string { return "" }}, cfg: cfg,
		log: newTestLogger(out)}
	go func() {
		done <- serve(ctx, c, serveOptions{listening: func(addr string, s *server) {
			p.base, p.srv = "https://"+addr, s
			p.root = x509.NewCertPool()
			p.root.AddCert(s.cert)
			close(ready)
		}})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve ended: %v\n%s", err, out)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
		if strings.Contains(out.String(), canary) {
			t.Errorf("the guest password appears in the log:\n%s", out)
		}
	})
	return p
}

// client is a browser: a cookie jar, the portal's certificate trusted, no
// redirects followed.
func (p *portal) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.root}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (p *portal) do(c *http.Client, method, path string, body io.Reader, hdr ...string) resp {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if strings.Contains(string(b), canary) {
		p.t.Fatalf("%s %s: the guest password appears in the response:\n%s", method, path, b)
	}
	return resp{res.StatusCode, string(b), res.Header}
}

func (p *portal) get(c *http.Client, path string) resp { return p.do(c, "GET", path, nil) }

func (p *portal) postForm(c *http.Client, path string, v url.Values) resp {
	return p.do(c, "POST", path, strings.NewReader(v.Encode()), "Content-Type", "application/x-www-form-urlencoded")
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, html string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no CSRF field in:\n%s", html)
	}
	return m[1]
}

// login logs in through the login form and returns the session's CSRF
// token (from the Devices page).
func (p *portal) login(c *http.Client, user string) string {
	p.t.Helper()
	page := p.get(c, "/login")
	r := p.postForm(c, "/login", url.Values{"csrf": {csrfOf(p.t, page.body)}, "user": {user}, "password": {p.srv.demo[user]}})
	if r.status != http.StatusSeeOther {
		p.t.Fatalf("login as %s: %d\n%s", user, r.status, r.body)
	}
	return csrfOf(p.t, p.get(c, "/devices").body)
}

func (p *portal) device(c *http.Client, name string) Device {
	p.t.Helper()
	var devs []Device
	if err := json.Unmarshal([]byte(p.get(c, "/api/devices").body), &devs); err != nil {
		p.t.Fatal(err)
	}
	for _, d := range devs {
		if d.Name == name {
			return d
		}
	}
	p.t.Fatalf("no device %q", name)
	return Device{}
}

func TestServeRefusesWithoutSession(t *testing.T) {
	p := startPortal(t, nil)
	c := p.client()
	if r := p.get(c, "/healthz"); r.status != 200 || !strings.Contains(r.body, `"ok"`) {
		t.Errorf("/healthz: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/api/devices", "/api/audit", "/api/preflight", "/api/netreq", "/api/events", "/metrics"} {
		if r := p.get(c, path); r.status != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d, want 401", path, r.status)
		}
	}
	for _, path := range []string{"/devices", "/audit", "/preflight", "/netreq", "/"} {
		if r := p.get(c, path); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
			t.Errorf("GET %s without a session: %d to %q, want 303 to /login", path, r.status, r.header.Get("Location"))
		}
	}
	if r := p.postForm(c, "/devices/vcenter-lab/x/enroll", url.Values{"user": {"root"}, "password": {canary}}); r.status != http.StatusUnauthorized {
		t.Errorf("POST enroll without a session: %d, want 401", r.status)
	}
	// A forged cookie is no session either.
	u, _ := url.Parse(p.base)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "forged"}})
	if r := p.get(c, "/api/devices"); r.status != http.StatusUnauthorized {
		t.Errorf("a forged session cookie: %d, want 401", r.status)
	}
}

func TestServeSessionCookie(t *testing.T) {
	p := startPortal(t, nil)
	c := p.client()
	page := p.get(c, "/login")
	r := p.postForm(c, "/login", url.Values{"csrf": {csrfOf(t, page.body)}, "user": {"demo"}, "password": {p.srv.demo["demo"]}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("login: %d", r.status)
	}
	var cookie string
	for _, sc := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, sessionCookie+"=") {
			cookie = sc
		}
	}
	for _, attr := range []string{"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
	dev := p.get(c, "/devices")
	if csp := dev.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// Logging out ends the session.
	tok := csrfOf(t, dev.body)
	if r := p.postForm(c, "/logout", url.Values{"csrf": {tok}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if r := p.get(c, "/api/devices"); r.status != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", r.status)
	}
}

func TestServeLoginCSRFAndRateLimit(t *testing.T) {
	p := startPortal(t, nil)
	c := p.client()
	p.get(c, "/login")
	r := p.postForm(c, "/login", url.Values{"user": {"demo"}, "password": {p.srv.demo["demo"]}})
	if r.status != http.StatusForbidden {
		t.Fatalf("login without its CSRF token: %d, want 403", r.status)
	}
	for i := range 5 {
		page := p.get(c, "/login")
		r := p.postForm(c, "/login", url.Values{"csrf": {csrfOf(t, page.body)}, "user": {"demo"}, "password": {"wrong"}})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, r.status)
		}
	}
	page := p.get(c, "/login")
	r = p.postForm(c, "/login", url.Values{"csrf": {csrfOf(t, page.body)}, "user": {"demo"}, "password": {p.srv.demo["demo"]}})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed logins") {
		t.Fatalf("the right password after 5 failures: %d, want 429\n%s", r.status, r.body)
	}
	// The API login shares the limit.
	body := `{"user":"viewer","password":"` + p.srv.demo["viewer"] + `"}`
	if r := p.do(p.client(), "POST", "/api/login", strings.NewReader(body), "Content-Type", "application/json"); r.status != http.StatusTooManyRequests {
		t.Errorf("API login from the same address: %d, want 429", r.status)
	}
}

func TestServeHostileVMNameIsInert(t *testing.T) {
	p := startPortal(t, nil)
	c := p.client()
	p.login(c, "demo")
	d := p.device(c, xssName)
	for _, path := range []string{"/devices", "/devices/rows", "/devices/vcenter-lab/" + d.ID, "/devices?q=" + url.QueryEscape(xssName)} {
		r := p.get(c, path)
		if r.status != 200 {
			t.Fatalf("GET %s: %d", path, r.status)
		}
		if strings.Contains(r.body, xssName) || strings.Contains(r.body, "<img") {
			t.Errorf("GET %s renders the VM name as markup:\n%s", path, r.body)
		}
		if !strings.Contains(r.body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("GET %s does not show the name escaped", path)
		}
	}
}

func TestServeEnrollNeedsCSRFAndOperator(t *testing.T) {
	p := startPortal(t, nil)
	op := p.client()
	tok := p.login(op, "demo")
	d := p.device(op, "web-01")
	path := "/devices/vcenter-lab/" + d.ID + "/enroll"
	for name, v := range map[string]url.Values{
		"no token":    {"user": {"root"}, "password": {canary}},
		"wrong token": {"csrf": {tok[:len(tok)-2] + "xx"}, "user": {"root"}, "password": {canary}},
	} {
		if r := p.postForm(op, path, v); r.status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, r.status)
		}
	}
	// A token from another origin's page is refused too.
	r := p.do(op, "POST", path, strings.NewReader(url.Values{"csrf": {tok}, "user": {"root"}, "password": {canary}}.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example")
	if r.status != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d, want 403", r.status)
	}

	viewer := p.client()
	vtok := p.login(viewer, "viewer")
	if page := p.get(viewer, "/devices/vcenter-lab/"+d.ID); strings.Contains(page.body, "/enroll") {
		t.Errorf("a viewer sees the enroll form")
	}
	if r := p.postForm(viewer, path, url.Values{"csrf": {vtok}, "user": {"root"}, "password": {canary}}); r.status != http.StatusForbidden {
		t.Errorf("a viewer's enroll: %d, want 403", r.status)
	}
	if r := p.do(viewer, "POST", "/api/devices/vcenter-lab/"+d.ID+"/enroll", strings.NewReader(`{"user":"root","password":"`+canary+`"}`),
		"Content-Type", "application/json", "X-CSRF-Token", vtok); r.status != http.StatusForbidden {
		t.Errorf("a viewer's API enroll: %d, want 403", r.status)
	}
	// Nothing of it started anything.
	if got := p.device(op, "web-01"); got.State != "available" {
		t.Errorf("web-01 is %s after refused requests", got.State)
	}
	if strings.Contains(p.get(op, "/api/audit").body, "enroll") {
		t.Error("a refused request reached the orchestrator")
	}
}

// sse reads an operation's server-sent events until "done".
func (p *portal) sse(c *http.Client, path string) (steps []opEvent, done resultJSON, raw string) {
	p.t.Helper()
	req, _ := http.NewRequest("GET", p.base+path, nil)
	res, err := c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		p.t.Fatalf("%s: content type %q", path, ct)
	}
	var all strings.Builder
	sc := bufio.NewScanner(res.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			if event == "done" {
				if err := json.Unmarshal(data, &done); err != nil {
					p.t.Fatal(err)
				}
				raw = all.String()
				if strings.Contains(raw, canary) {
					p.t.Fatalf("the password appears in the event stream:\n%s", raw)
				}
				return steps, done, raw
			}
			var e opEvent
			if err := json.Unmarshal(data, &e); err != nil {
				p.t.Fatal(err)
			}
			steps = append(steps, e)
		}
	}
	p.t.Fatalf("the stream ended without done:\n%s", all.String())
	return
}

func (p *portal) enroll(c *http.Client, tok, kind, name, password string) ([]opEvent, resultJSON, string) {
	p.t.Helper()
	d := p.device(c, name)
	r := p.postForm(c, "/devices/vcenter-lab/"+d.ID+"/"+kind, url.Values{"csrf": {tok}, "user": {"root"}, "password": {password}})
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/ops/") {
		p.t.Fatalf("%s %s: %d %q\n%s", kind, name, r.status, loc, r.body)
	}
	page := p.get(c, loc)
	if page.status != 200 || !strings.Contains(page.body, `id="steps"`) {
		p.t.Fatalf("operation page: %d\n%s", page.status, page.body)
	}
	steps, done, _ := p.sse(c, "/api"+loc+"/events")
	return steps, done, loc
}

func lines(evs []opEvent) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Line + "\n")
	}
	return b.String()
}

func TestServeEnrollLive(t *testing.T) {
	p := startPortal(t, nil)
	c := p.client()
	tok := p.login(c, "demo")

	// A wrong password: refused at the credentials step, nothing to undo.
	steps, done, _ := p.enroll(c, tok, "enroll", "app-01", "not-the-password")
	if done.Code != "Unauthenticated" || done.FailedStep != "credentials" {
		t.Errorf("wrong password: %+v\n%s", done, lines(steps))
	}
	// A guest that fails after the IP and NAT exist: both undone, live.
	steps, done, _ = p.enroll(c, tok, "enroll", "db-01", canary)
	got := lines(steps)
	for _, want := range []string{"ok   ipam", "ok   firewall", "FAIL configure", "undo firewall", "undo ipam"} {
		if !strings.Contains(got, want) {
			t.Errorf("db-01's steps lack %q:\n%s", want, got)
		}
	}
	if done.State != "failed" || done.Code != "FailedPrecondition" {
		t.Errorf("db-01: %+v", done)
	}
	// The right password: enrolled, with its public IP and access.
	steps, done, loc := p.enroll(c, tok, "enroll", "web-01", canary)
	if done.State != "enrolled" || done.PublicIP == "" || done.Error != "" {
		t.Fatalf("web-01: %+v\n%s", done, lines(steps))
	}
	if page := p.get(c, loc); !strings.Contains(page.body, "public IP "+done.PublicIP) {
		t.Errorf("the finished operation page lacks the public IP:\n%s", page.body)
	}
	d := p.device(c, "web-01")
	dp := p.get(c, "/devices/vcenter-lab/"+d.ID)
	if !strings.Contains(dp.body, done.PublicIP+":22") || !strings.Contains(dp.body, "198.51.100.0/24") || !strings.Contains(dp.body, "/unenroll") {
		t.Errorf("the device page lacks the ssh endpoint, the sources or the unenroll form:\n%s", dp.body)
	}
	// Unenroll, live too.
	steps, done, _ = p.enroll(c, tok, "unenroll", "web-01", canary)
	if done.State != "available" || !strings.Contains(lines(steps), "ok   release-ip") {
		t.Errorf("unenroll: %+v\n%s", done, lines(steps))
	}
	// The audit says who did what, with the outcome; never the password.
	audit := p.get(c, "/audit").body
	for _, want := range []string{"demo", "app-01", "db-01", "web-01", "Unauthenticated", "unenroll"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit page lacks %q:\n%s", want, audit)
		}
	}
	var entries []AuditEntry
	if err := json.Unmarshal([]byte(p.get(c, "/api/audit").body), &entries); err != nil || len(entries) != 4 {
		t.Fatalf("audit: %v, %d entries (want 4)", err, len(entries))
	}
	if entries[0].Op != "unenroll" || entries[0].Outcome != "succeeded" || entries[0].User != "demo" {
		t.Errorf("newest audit entry %+v", entries[0])
	}
}

func TestServeDevicesUpdateLive(t *testing.T) {
	p := startPortal(t, nil)
	c := p.client()
	p.login(c, "demo")
	d := p.device(c, "web-02")
	req, _ := http.NewRequest("GET", p.base+"/api/events", nil)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if sc.Text() == "event: devices" {
				got <- sc.Text()
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	if err := p.srv.stack.Sims["vcenter-lab"].Rename(context.Background(), d.ID, "web-02-renamed"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no devices event after a rename in the vCenter")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.get(c, "/devices/rows").body, "web-02-renamed") {
		if time.Now().After(deadline) {
			t.Fatal("the rows do not show the new name")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeAPI(t *testing.T) {
	p := startPortal(t, nil)
	c := p.client()
	r := p.do(c, "POST", "/api/login", strings.NewReader(`{"user":"demo","password":"`+p.srv.demo["demo"]+`"}`), "Content-Type", "application/json")
	var login struct{ CSRF, Role string }
	if err := json.Unmarshal([]byte(r.body), &login); err != nil || login.Role != "operator" || login.CSRF == "" {
		t.Fatalf("API login: %d %s", r.status, r.body)
	}
	d := p.device(c, "web-01")
	path := "/api/devices/vcenter-lab/" + d.ID + "/enroll"
	if r := p.do(c, "POST", path, strings.NewReader(`{"user":"root","password":"`+canary+`"}`), "Content-Type", "application/json"); r.status != http.StatusForbidden {
		t.Errorf("API enroll without X-CSRF-Token: %d", r.status)
	}
	r = p.do(c, "POST", path, strings.NewReader(`{"user":"root","password":"`+canary+`"}`), "Content-Type", "application/json", "X-CSRF-Token", login.CSRF)
	var started struct{ Op, Events string }
	if err := json.Unmarshal([]byte(r.body), &started); err != nil || r.status != http.StatusAccepted {
		t.Fatalf("API enroll: %d %s", r.status, r.body)
	}
	_, done, _ := p.sse(c, started.Events)
	if done.State != "enrolled" {
		t.Fatalf("API enroll: %+v", done)
	}
	var got Device
	if err := json.Unmarshal([]byte(p.get(c, "/api/devices/vcenter-lab/"+d.ID).body), &got); err != nil || got.Access == nil || got.Access.Endpoints[0].Protocol != "ssh" {
		t.Errorf("device after enroll: %v %+v", err, got)
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/api/devices/nope/x", 404}, {"/api/devices/vcenter-lab/nope", 404},
		{"/api/devices?state=happy", 400}, {"/api/ops/nope", 404},
	} {
		r := p.get(c, tc.path)
		var e struct{ Code string }
		if r.status != tc.code || json.Unmarshal([]byte(r.body), &e) != nil || e.Code == "" {
			t.Errorf("GET %s: %d %s, want %d with a code", tc.path, r.status, r.body, tc.code)
		}
	}
	var rows []preflightRow
	if err := json.Unmarshal([]byte(p.get(c, "/api/preflight").body), &rows); err != nil || len(rows) == 0 {
		t.Errorf("preflight: %v", err)
	}
	checkMetrics(t, p.get(c, "/metrics"))
}

// checkMetrics parses a /metrics answer as the Prometheus text format and
// wants the orchestrator's call counter with the provider's List in it.
func checkMetrics(t *testing.T, m resp) {
	t.Helper()
	if m.status != http.StatusOK {
		t.Fatalf("/metrics: %d %s", m.status, m.body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(m.body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v\n%s", err, m.body)
	}
	calls := fams["managedvm_calls_total"]
	if calls == nil || calls.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("/metrics has no managedvm_calls_total counter:\n%s", m.body)
	}
	for _, mt := range calls.GetMetric() {
		for _, l := range mt.GetLabel() {
			if l.GetName() == "op" && l.GetValue() == "provider.List" && mt.GetCounter().GetValue() >= 1 {
				return
			}
		}
	}
	t.Errorf("managedvm_calls_total has no op=provider.List count:\n%s", m.body)
}

// TestMetricsScrapeToken: a scraper with the configured bearer token reads
// /metrics without a session; a wrong or missing token is refused like a
// request without a session, and the token never reaches the log.
func TestMetricsScrapeToken(t *testing.T) {
	const token = "scrape-token-canary-5521-abcdef"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startPortal(t, func(y string) string {
		return strings.Replace(y, "  demo_login: true\n", "  demo_login: true\n  metrics_token_file: "+file+"\n", 1)
	})
	c := p.client()
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong-token-0000000000"}, {"Authorization", token}, {"Authorization", "Bearer " + token + "x"}} {
		if r := p.do(c, "GET", "/metrics", nil, h...); r.status != http.StatusUnauthorized {
			t.Errorf("GET /metrics with %q: %d, want 401", h, r.status)
		}
	}
	checkMetrics(t, p.do(c, "GET", "/metrics", nil, "Authorization", "Bearer "+token))
	// The token opens /metrics only.
	if r := p.do(c, "GET", "/api/devices", nil, "Authorization", "Bearer "+token); r.status != http.StatusUnauthorized {
		t.Errorf("GET /api/devices with the scrape token: %d, want 401", r.status)
	}
	if strings.Contains(p.out.String(), token) {
		t.Errorf("the scrape token appears in the log")
	}
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestFilterSort(t *testing.T) {
	devs := []Device{
		{Provider: "b", Name: "web-10", LocalIP: "10.0.0.10", State: "enrolled"},
		{Provider: "a", Name: "web-9", LocalIP: "10.0.0.9", State: "available"},
		{Provider: "a", Name: "db-1", LocalIP: "10.0.1.1", State: "failed", OS: "Debian"},
	}
	names := func(ds []Device) string {
		var n []string
		for _, d := range ds {
			n = append(n, d.Name)
		}
		return strings.Join(n, ",")
	}
	for _, tc := range []struct {
		q    deviceQuery
		want string
	}{
		{deviceQuery{}, "db-1,web-9,web-10"},
		{deviceQuery{Sort: "local_ip"}, "web-9,web-10,db-1"},
		{deviceQuery{Sort: "local_ip", Desc: true}, "db-1,web-10,web-9"},
		{deviceQuery{Sort: "name"}, "db-1,web-10,web-9"},
		{deviceQuery{Sort: "state", Desc: true}, "db-1,web-10,web-9"},
		{deviceQuery{Q: "WEB"}, "web-9,web-10"},
		{deviceQuery{Q: "debian"}, "db-1"},
		{deviceQuery{Q: "10.0.0.1"}, "web-10"},
	} {
		if got := names(filterSort(slices.Clone(devs), tc.q)); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.q, got, tc.want)
		}
	}
}
