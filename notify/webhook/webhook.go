package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/certerr"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/notify"
	"github.com/managedvm/managedvm/notify/internal/queue"
)

// The headers of every POST.
const (
	// HeaderTimestamp is the time of signing, decimal Unix seconds.
	HeaderTimestamp = "X-Managedvm-Timestamp"
	// HeaderSignature is "v1=" and the lower-case hex HMAC-SHA256, keyed
	// by the shared secret, of the timestamp, a ".", and the body.
	HeaderSignature = "X-Managedvm-Signature"
	// HeaderEvent is the event's kind ("journal.succeeded", ...).
	HeaderEvent = "X-Managedvm-Event"
	// HeaderDelivery is a random ID of the event, the same on every retry
	// and for every URL: a receiver deduplicates by it.
	HeaderDelivery = "X-Managedvm-Delivery"
)

// The limits (values beyond them are InvalidArgument).
const (
	MaxURL       = 2048 // bytes of one URL
	MaxURLs      = 16   // URLs
	MinSecret    = 16   // bytes of the secret, at least
	MaxSecret    = 1024 // bytes of the secret, at most
	MaxBody      = 64 << 10
	MaxMessage   = 4096 // bytes of an event's Message put in the body (longer ones are cut)
	DefaultSkew  = 5 * time.Minute
	maxReplyRead = 4 << 10
)

// Payload is the JSON body of a POST.
type Payload struct {
	// ID is the delivery ID (also HeaderDelivery).
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Outcome is set for the events that end an operation (notify.OutcomeOf).
	Outcome  string `json:"outcome,omitempty"`
	Journal  string `json:"journal,omitempty"`
	Op       string `json:"op,omitempty"`
	Provider string `json:"provider,omitempty"`
	VMID     string `json:"vm_id,omitempty"`
	Profile  string `json:"profile,omitempty"`
	Step     string `json:"step,omitempty"`
	// Code is the errs code name, "OK" when there is no error.
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
}

// Options tune a Notifier; nil takes every default.
type Options struct {
	// Kinds are the event kinds posted; nil means the four outcomes'
	// events (enroll.JournalSucceeded and enroll.JournalFailed); set
	// them to post step progress too.
	Kinds []enroll.EventKind
	// RootCAs verifies the receivers' certificates; nil: the system pool.
	RootCAs *x509.CertPool
	// DangerouslySkipCertificateVerification accepts any certificate: the
	// signature still proves the sender, but anyone on the path reads the
	// events. Never set it outside a test; New logs a warning.
	DangerouslySkipCertificateVerification bool
	// AllowPlainHTTP accepts http:// URLs (for receivers on loopback or a
	// trusted network); by default only https:// is accepted.
	AllowPlainHTTP bool
	// Queue, retries and timeout, as in smtpnotify: QueueSize (default
	// 1024) bounds the waiting posts (one per event and URL), Workers
	// (default 2) post in parallel, Retries (default 5; negative: none)
	// after a network failure, a 5xx or a 429, with a backoff from Backoff
	// (1 s) doubling to MaxBackoff (1 min); Timeout (10 s) bounds one POST.
	QueueSize  int
	Workers    int
	Retries    int
	Backoff    time.Duration
	MaxBackoff time.Duration
	Timeout    time.Duration
	// Logger receives failed posts (Warn) and retries (Debug); nil discards.
	Logger *slog.Logger
	// MeterProvider counts managedvm.notify.{sent,failed,dropped,retries}
	// with attribute notifier="webhook".
	MeterProvider metric.MeterProvider
	// Now is the clock of the timestamps (tests); nil is time.Now.
	Now func() time.Time
}

// Notifier is an enroll.Observer that posts events as signed JSON.
type Notifier struct {
	urls   []string
	secret guest.Secret
	kinds  map[enroll.EventKind]bool
	client *http.Client
	now    func() time.Time
	q      *queue.Queue[post]
}

var _ enroll.Observer = (*Notifier)(nil)

type post struct {
	url string
	p   Payload
}

// New returns a Notifier posting to urls, signing with secret (at least
// MinSecret bytes). URLs must be absolute https:// URLs (or http:// with
// Options.AllowPlainHTTP) without user information, at most MaxURL bytes,
// at most MaxURLs of them; anything else is InvalidArgument.
func New(urls []string, secret guest.Secret, opts *Options) (*Notifier, error) {
	const op = "webhook.New"
	var o Options
	if opts != nil {
		o = *opts
	}
	if len(urls) == 0 || len(urls) > MaxURLs {
		return nil, errs.Errorf(errs.InvalidArgument, op, "%d URLs: want 1 to %d", len(urls), MaxURLs)
	}
	for i, s := range urls {
		if len(s) > MaxURL || !limit.PrintableASCII(s) {
			return nil, errs.Errorf(errs.InvalidArgument, op, "URL %d %s is longer than %d bytes or not printable ASCII", i, limit.Quote(redact(s)), MaxURL)
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" ||
			!(u.Scheme == "https" || (u.Scheme == "http" && o.AllowPlainHTTP)) {
			return nil, errs.Errorf(errs.InvalidArgument, op, "URL %d %s is not an absolute https URL without user information or fragment", i, limit.Quote(redact(s)))
		}
	}
	if n := len(secret.Reveal()); n < MinSecret || n > MaxSecret {
		return nil, errs.Errorf(errs.InvalidArgument, op, "secret of %d bytes: want %d to %d", n, MinSecret, MaxSecret)
	}
	n := &Notifier{urls: append([]string(nil), urls...), secret: secret, kinds: map[enroll.EventKind]bool{}, now: o.Now}
	if n.now == nil {
		n.now = time.Now
	}
	kinds := o.Kinds
	if kinds == nil {
		kinds = []enroll.EventKind{enroll.JournalSucceeded, enroll.JournalFailed}
	}
	for _, k := range kinds {
		if err := limit.Name(op, "kind", string(k)); err != nil {
			return nil, err
		}
		n.kinds[k] = true
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: o.DangerouslySkipCertificateVerification} //nolint:gosec // explicit, loudly named option
	if o.DangerouslySkipCertificateVerification && o.Logger != nil {
		o.Logger.Warn("webhook: certificate verification of the receivers is OFF (DangerouslySkipCertificateVerification)")
	}
	n.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	qo := queue.Options{Name: "webhook", Size: o.QueueSize, Workers: o.Workers, Retries: o.Retries, Backoff: o.Backoff,
		MaxBackoff: o.MaxBackoff, Timeout: o.Timeout, Logger: o.Logger, Meter: o.MeterProvider}
	qo.Defaults(10 * time.Second)
	n.q = queue.New(qo, func(ctx context.Context, p post) error { return n.post(ctx, "webhook.deliver", p) })
	return n, nil
}

// PayloadOf builds the body of e (a fresh delivery ID, Message cut at
// MaxMessage bytes).
func PayloadOf(e enroll.Event) Payload {
	out, _ := notify.OutcomeOf(e)
	d := notify.DataOf(e)
	var id [16]byte
	_, _ = rand.Read(id[:])
	return Payload{ID: hex.EncodeToString(id[:]), Time: e.Time.UTC(), Kind: d.Kind, Outcome: string(out), Journal: d.Journal, Op: d.Op,
		Provider: d.Provider, VMID: d.VMID, Profile: d.Profile, Step: d.Step, Code: d.Code,
		Message: limit.Cut(strings.ToValidUTF8(d.Message, "\uFFFD"), MaxMessage), Attempt: d.Attempt}
}

// Observe queues one POST of e per URL if its kind is chosen. It never
// waits: a post that finds the queue full is dropped and counted.
func (n *Notifier) Observe(e enroll.Event) {
	if !n.kinds[e.Kind] {
		return
	}
	if e.Time.IsZero() {
		e.Time = n.now()
	}
	p := PayloadOf(e)
	for _, u := range n.urls {
		n.q.Offer(post{url: u, p: p})
	}
}

// Send posts e to every URL now, once each, without the queue, and joins
// the errors (for a test delivery from a host's set-up).
func (n *Notifier) Send(ctx context.Context, e enroll.Event) error {
	const op = "webhook.Send"
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = n.now()
	}
	p := PayloadOf(e)
	var all []error
	for _, u := range n.urls {
		if err := n.post(ctx, op, post{url: u, p: p}); err != nil {
			all = append(all, err)
		}
	}
	return errs.Join(all...)
}

// Stats returns the delivery counters (one per event and URL).
func (n *Notifier) Stats() notify.Stats { return n.q.Stats() }

// Close stops accepting events and posts those queued until ctx is done;
// what is left is dropped (counted) and Close returns DeadlineExceeded or
// Canceled.
func (n *Notifier) Close(ctx context.Context) error {
	err := n.q.Close(ctx, "webhook.Close")
	n.client.CloseIdleConnections()
	return err
}

// Sign returns the HeaderSignature value of body signed at timestamp ts
// (the HeaderTimestamp value).
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// ErrSignature is the cause of every failed Verify.
var ErrSignature = errors.New("webhook signature refused")

// Verify checks a received POST: ts and sig are the HeaderTimestamp and
// HeaderSignature values, body the raw body. It fails (PermissionDenied,
// wrapping ErrSignature) when the signature does not match or the
// timestamp is more than skew (DefaultSkew when 0) away from now: a
// receiver should also drop a repeated HeaderDelivery ID within that
// window.
func Verify(secret []byte, ts, sig string, body []byte, now time.Time, skew time.Duration) error {
	const op = "webhook.Verify"
	if skew <= 0 {
		skew = DefaultSkew
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(ts) > 20 {
		return errs.Wrap(errs.PermissionDenied, op, errors.Join(ErrSignature, errors.New("malformed timestamp "+limit.Quote(ts))))
	}
	if d := now.Sub(time.Unix(sec, 0)); d > skew || d < -skew {
		return errs.Wrap(errs.PermissionDenied, op, errors.Join(ErrSignature, errors.New("timestamp "+ts+" is "+d.Round(time.Second).String()+" away from now")))
	}
	if !hmac.Equal([]byte(sig), []byte(Sign(secret, ts, body))) {
		return errs.Wrap(errs.PermissionDenied, op, errors.Join(ErrSignature, errors.New("signature does not match")))
	}
	return nil
}

// post is one POST attempt.
func (n *Notifier) post(ctx context.Context, op string, p post) error {
	body, err := json.Marshal(p.p)
	if err != nil {
		return errs.Errorf(errs.Internal, op, "encode event: %v", err)
	}
	if len(body) > MaxBody {
		return errs.Errorf(errs.InvalidArgument, op, "body of %d bytes, more than %d", len(body), MaxBody)
	}
	ts := strconv.FormatInt(n.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return errs.Errorf(errs.InvalidArgument, op, "URL %s: %s", limit.Quote(redact(p.url)), limit.Quote(certReason(err)))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "managedvm-webhook/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign([]byte(n.secret.Reveal()), ts, body))
	req.Header.Set(HeaderEvent, p.p.Kind)
	req.Header.Set(HeaderDelivery, p.p.ID)
	where := "POST " + limit.Quote(redact(p.url))
	resp, err := n.client.Do(req)
	if err != nil {
		if ctxErr := errs.FromContext(ctx, op); ctxErr != nil {
			return errs.Errorf(errs.CodeOf(ctxErr), op, "%s: %s", where, ctx.Err())
		}
		if certerr.Refused(err) {
			return errs.Errorf(errs.PermissionDenied, op, "%s: certificate refused: %s", where, limit.Quote(certReason(err)))
		}
		return errs.Errorf(errs.Unavailable, op, "%s: %s", where, limit.Quote(certReason(err)))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyRead))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusTooManyRequests || c >= 500:
		return errs.Errorf(errs.Unavailable, op, "%s: status %d", where, c)
	case c == http.StatusUnauthorized || c == http.StatusForbidden:
		return errs.Errorf(errs.PermissionDenied, op, "%s: status %d (signature refused?)", where, c)
	default:
		return errs.Errorf(errs.FailedPrecondition, op, "%s: status %d", where, c)
	}
}

// certReason is err's message without the URL net/http puts in front
// (it may carry a query token).
func certReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// redact drops the user information and the query of a URL for messages
// (they may carry a password or a token).
func redact(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?…"
	}
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.LastIndex(s[i+3:], "@"); j >= 0 {
			s = s[:i+3] + "…@" + s[i+3+j+1:]
		}
	}
	return s
}
