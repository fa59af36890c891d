package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/notify/internal/notifytest"
	"github.com/managedvm/managedvm/notify/webhook"
)

const (
	key     = "CANARY-webhook-key-0123456789"
	guestPW = "CANARY-guest-pw-55e1"
)

// receiver is an httptest TLS server that verifies every POST as a real
// receiver would, and keeps the payloads.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	payloads []webhook.Payload
	raw      []string
	refused  atomic.Int64
	status   atomic.Int64 // reply status for the next posts when nonzero
	fails    atomic.Int64 // this many posts get 503 first
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
		if err != nil || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ts, sig := req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature)
		// As the package doc tells a receiver in any language to do,
		// and through Verify.
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(ts + "." + string(body)))
		manual := hmac.Equal([]byte(sig), []byte("v1="+hex.EncodeToString(m.Sum(nil))))
		if err := webhook.Verify([]byte(key), ts, sig, body, time.Now(), 0); err != nil || !manual {
			r.refused.Add(1)
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		if r.fails.Add(-1) >= 0 {
			http.Error(w, "later", http.StatusServiceUnavailable)
			return
		}
		if s := r.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil || p.ID != req.Header.Get(webhook.HeaderDelivery) || p.Kind != req.Header.Get(webhook.HeaderEvent) {
			http.Error(w, "payload", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.payloads = append(r.payloads, p)
		r.raw = append(r.raw, string(body))
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) wait(n int) []webhook.Payload {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		if len(r.payloads) >= n {
			p := append([]webhook.Payload(nil), r.payloads...)
			r.mu.Unlock()
			return p
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhook.Payload(nil), r.payloads...)
}

func newNotifier(t *testing.T, urls []string, k string, opts *webhook.Options) *webhook.Notifier {
	t.Helper()
	if opts.Backoff == 0 {
		opts.Backoff = 5 * time.Millisecond
	}
	n, err := webhook.New(urls, guest.NewSecret(k), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

func (r *receiver) opts() *webhook.Options {
	return &webhook.Options{RootCAs: poolOf(r.srv)}
}

func poolOf(s *httptest.Server) *x509CertPool {
	return s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

// TestSignedPosts: a real orchestrator's outcomes reach two receivers,
// each verifying the signature; no secret is in any body.
func TestSignedPosts(t *testing.T) {
	r1, r2 := newReceiver(t), newReceiver(t)
	// Both servers show httptest's one certificate.
	opts := r1.opts()
	n := newNotifier(t, []string{r1.srv.URL + "/hook", r2.srv.URL + "/hook?token=abc"}, key, opts)
	w := notifytest.New(t, 2, guestPW, n)
	ctx := context.Background()
	if _, err := w.O.Enroll(ctx, w.Request(0, guestPW, notifytest.Profile)); err != nil {
		t.Fatal(err)
	}
	_, err := w.O.Enroll(ctx, w.Request(1, guestPW+"-wrong", ""))
	testkit.WantCode(t, "wrong password", err, errs.Unauthenticated)
	for _, r := range []*receiver{r1, r2} {
		ps := r.wait(2)
		if len(ps) != 2 || r.refused.Load() != 0 {
			t.Fatalf("payloads %+v refused %d, stats %+v", ps, r.refused.Load(), n.Stats())
		}
		byOutcome := map[string]webhook.Payload{}
		for _, p := range ps {
			byOutcome[p.Outcome] = p
		}
		if p := byOutcome["enrolled"]; p.VMID != w.IDs[0] || p.Profile != notifytest.Profile || p.Code != "OK" || !strings.HasPrefix(p.Message, "public ") {
			t.Fatalf("enrolled %+v", p)
		}
		if p := byOutcome["failed"]; p.VMID != w.IDs[1] || p.Code != "Unauthenticated" || p.Step != enroll.StepCredentials || p.Op != "enroll" {
			t.Fatalf("failed %+v", p)
		}
		r.mu.Lock()
		for _, b := range r.raw {
			if strings.Contains(b, guestPW) || strings.Contains(b, key) {
				t.Fatalf("secret in %s", b)
			}
		}
		r.mu.Unlock()
	}
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := n.Stats(); s.Sent != 4 || s.Queued != 4 || s.Failed+s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestWrongKeyRefused: the receiver refuses a signature made with another
// key (401, PermissionDenied, not retried).
func TestWrongKeyRefused(t *testing.T) {
	r := newReceiver(t)
	n := newNotifier(t, []string{r.srv.URL}, key+"-other", r.opts())
	err := n.Send(context.Background(), event())
	testkit.WantCode(t, "wrong key", err, errs.PermissionDenied)
	if r.refused.Load() != 1 {
		t.Fatalf("refused %d", r.refused.Load())
	}
	if strings.Contains(err.Error(), key) {
		t.Fatal("key in error")
	}
}

func event() enroll.Event {
	e := enroll.Event{Time: time.Now(), Kind: enroll.JournalSucceeded, Op: enroll.OpEnroll, Journal: "j1"}
	e.VM.Provider, e.VM.VMID = "vc1", "vm-9"
	return e
}

// TestCertificates: an untrusted certificate is PermissionDenied, without
// retry; the loudly named option accepts it.
func TestCertificates(t *testing.T) {
	r := newReceiver(t)
	n := newNotifier(t, []string{r.srv.URL}, key, &webhook.Options{})
	err := n.Send(context.Background(), event())
	testkit.WantCode(t, "system pool", err, errs.PermissionDenied)
	testkit.Bounded(t, "system pool", err, 300)
	n.Observe(event())
	_ = n.Close(context.Background())
	if s := n.Stats(); s.Failed != 1 || s.Retries != 0 || s.LastCode != errs.PermissionDenied {
		t.Fatalf("stats %+v", s)
	}
	n = newNotifier(t, []string{r.srv.URL}, key, &webhook.Options{DangerouslySkipCertificateVerification: true})
	if err := n.Send(context.Background(), event()); err != nil {
		t.Fatal(err)
	}
}

// TestRetries: 503 twice then accepted; a 400 is not retried.
func TestRetries(t *testing.T) {
	r := newReceiver(t)
	r.fails.Store(2)
	n := newNotifier(t, []string{r.srv.URL}, key, &webhook.Options{RootCAs: poolOf(r.srv), Retries: 3})
	n.Observe(event())
	if ps := r.wait(1); len(ps) != 1 {
		t.Fatalf("stats %+v", n.Stats())
	}
	_ = n.Close(context.Background())
	if s := n.Stats(); s.Sent != 1 || s.Retries != 2 {
		t.Fatalf("stats %+v", s)
	}
	r.status.Store(http.StatusBadRequest)
	n = newNotifier(t, []string{r.srv.URL}, key, &webhook.Options{RootCAs: poolOf(r.srv), Retries: 3})
	n.Observe(event())
	_ = n.Close(context.Background())
	if s := n.Stats(); s.Failed != 1 || s.Retries != 0 || s.LastCode != errs.FailedPrecondition {
		t.Fatalf("stats %+v", s)
	}
}

// TestHungReceiverNeverDelaysEnrollment: a receiver that accepts and never
// answers does not slow enrollments; the overflow is dropped and counted;
// Close gives up at its deadline.
func TestHungReceiverNeverDelaysEnrollment(t *testing.T) {
	const vms = 40
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	ctx := context.Background()
	base := notifytest.New(t, vms, guestPW, enroll.ObserverFunc(func(enroll.Event) {}))
	t0 := time.Now()
	for i := 0; i < vms; i++ {
		if _, err := base.O.Enroll(ctx, base.Request(i, guestPW, "")); err != nil {
			t.Fatal(err)
		}
	}
	normal := time.Since(t0)
	n, err := webhook.New([]string{"https://" + ln.Addr().String() + "/hook"}, guest.NewSecret(key),
		&webhook.Options{QueueSize: 4, Workers: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	w := notifytest.New(t, vms, guestPW, n)
	t0 = time.Now()
	var slowest time.Duration
	for i := 0; i < vms; i++ {
		t1 := time.Now()
		if _, err := w.O.Enroll(ctx, w.Request(i, guestPW, "")); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(t1))
	}
	withHung := time.Since(t0)
	t.Logf("%d enrollments: %v without observer, %v with a hung receiver (slowest %v)", vms, normal, withHung, slowest)
	if withHung > 3*normal+time.Second || slowest > time.Second {
		t.Fatalf("a hung receiver delayed enrollments: %v vs %v, slowest %v", withHung, normal, slowest)
	}
	if s := n.Stats(); s.Queued < 4 || s.Queued > 5 || s.Dropped != vms-s.Queued {
		t.Fatalf("stats %+v", s)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	testkit.WantCode(t, "close", n.Close(cctx), errs.DeadlineExceeded)
	if s := n.Stats(); s.Dropped != vms {
		t.Fatalf("after close %+v", s)
	}
}

func TestLimits(t *testing.T) {
	good := []string{"https://hooks.example.com/managedvm"}
	many := make([]string, webhook.MaxURLs+1)
	for i := range many {
		many[i] = good[0]
	}
	for what, c := range map[string]struct {
		urls []string
		key  string
		opts webhook.Options
	}{
		"no URL":        {nil, key, webhook.Options{}},
		"too many URLs": {many, key, webhook.Options{}},
		"plain http":    {[]string{"http://hooks.example.com/"}, key, webhook.Options{}},
		"relative":      {[]string{"/hook"}, key, webhook.Options{}},
		"user info":     {[]string{"https://u:p@hooks.example.com/"}, key, webhook.Options{}},
		"newline":       {[]string{"https://hooks.example.com/\nx"}, key, webhook.Options{}},
		"too long":      {[]string{"https://hooks.example.com/" + strings.Repeat("a", webhook.MaxURL)}, key, webhook.Options{}},
		"ftp":           {[]string{"ftp://hooks.example.com/"}, key, webhook.Options{}},
		"short secret":  {good, "short", webhook.Options{}},
		"long secret":   {good, strings.Repeat("k", webhook.MaxSecret+1), webhook.Options{}},
		"kind with NUL": {good, key, webhook.Options{Kinds: []enroll.EventKind{"a\x00"}}},
		"empty kind":    {good, key, webhook.Options{Kinds: []enroll.EventKind{""}}},
	} {
		_, err := webhook.New(c.urls, guest.NewSecret(c.key), &c.opts)
		testkit.WantCode(t, what, err, errs.InvalidArgument)
		testkit.Bounded(t, what, err, 300)
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "u:p@") {
			t.Fatalf("%s: secret in %v", what, err)
		}
	}
	if _, err := webhook.New([]string{"http://127.0.0.1:8080/"}, guest.NewSecret(key), &webhook.Options{AllowPlainHTTP: true}); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"kind":"journal.succeeded"}`)
	ts := "1800000000"
	sig := webhook.Sign([]byte(key), ts, body)
	if err := webhook.Verify([]byte(key), ts, sig, body, now, 0); err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]struct {
		ts, sig string
		body    []byte
		now     time.Time
	}{
		"other body":      {ts, sig, []byte(`{"kind":"journal.failed"}`), now},
		"other timestamp": {"1800000001", sig, body, now},
		"stale":           {ts, sig, body, now.Add(webhook.DefaultSkew + time.Second)},
		"future":          {ts, sig, body, now.Add(-webhook.DefaultSkew - time.Second)},
		"malformed ts":    {"18e8", sig, body, now},
		"no v1 prefix":    {ts, strings.TrimPrefix(sig, "v1="), body, now},
		"empty":           {"", "", body, now},
	} {
		err := webhook.Verify([]byte(key), c.ts, c.sig, c.body, c.now, 0)
		testkit.WantCode(t, what, err, errs.PermissionDenied)
		if !errorsIs(err, webhook.ErrSignature) {
			t.Fatalf("%s: %v is not ErrSignature", what, err)
		}
	}
}
