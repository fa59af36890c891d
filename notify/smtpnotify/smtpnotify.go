package smtpnotify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"text/template"
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

// Security says how the connection to the relay is protected. Mail is
// never sent over an unprotected connection.
type Security int

const (
	// STARTTLS: connect in plain text (port 25 or 587) and upgrade with
	// STARTTLS before anything else; a relay that does not offer it is
	// refused (FailedPrecondition).
	STARTTLS Security = iota
	// ImplicitTLS: TLS from the first byte (port 465, "SMTPS").
	ImplicitTLS
)

// The limits (values beyond them are InvalidArgument).
const (
	MaxAddress    = 254       // bytes of one address (RFC 5321 path limit)
	MaxRecipients = 100       // addresses per recipient list
	MaxTemplate   = 16 << 10  // bytes of one template's source
	MaxSubject    = 512       // bytes of a rendered subject (longer ones are cut)
	MaxBody       = 256 << 10 // bytes of a rendered body
)

// Relay is the SMTP relay and how to reach it. Printing a Relay never
// shows the password (it is a guest.Secret).
type Relay struct {
	// Addr is host:port.
	Addr     string
	Security Security
	// Username and Password, when Username is set, authenticate with
	// AUTH PLAIN, always inside TLS.
	Username string
	Password guest.Secret
	// ServerName is the name the relay's certificate must hold; empty
	// means the host of Addr.
	ServerName string
	// RootCAs verifies the relay's certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// DangerouslySkipCertificateVerification accepts any certificate the
	// relay shows, so that anyone on the path can read the mail and the
	// relay password. Never set it outside a test; New logs a warning
	// when it is set.
	DangerouslySkipCertificateVerification bool
}

// Template is one outcome's mail, two text/template sources over
// notify.Data.
type Template struct {
	Subject string
	Body    string
}

// Options tune a Notifier; the zero value (or nil) takes every default.
type Options struct {
	// Recipients receive the mail of events whose profile has no entry
	// in ProfileRecipients (and of the default profile, "").
	Recipients []string
	// ProfileRecipients replace Recipients for the events of a profile
	// (enroll.Event.Profile). An empty list sends nothing for that
	// profile.
	ProfileRecipients map[string][]string
	// Outcomes are the outcomes mailed; nil means all four.
	Outcomes []notify.Outcome
	// Templates replace the default template of an outcome; an empty
	// Subject or Body keeps the default one.
	Templates map[notify.Outcome]Template
	// Hello is the name sent in EHLO; default "localhost".
	Hello string
	// QueueSize bounds the events waiting for delivery (default 1024);
	// an event arriving when it is full is dropped and counted.
	QueueSize int
	// Workers deliver in parallel (default 2).
	Workers int
	// Retries after a retryable failure (default 5; negative: none), with
	// a backoff starting at Backoff (default 1 s), doubling up to
	// MaxBackoff (default 1 min).
	Retries    int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one delivery attempt (default 30 s).
	Timeout time.Duration
	// Logger receives failed deliveries (Warn) and retries (Debug); nil
	// discards.
	Logger *slog.Logger
	// MeterProvider counts managedvm.notify.{sent,failed,dropped,retries}
	// with attribute notifier="smtp"; nil records nothing.
	MeterProvider metric.MeterProvider
}

// Notifier is an enroll.Observer that mails the outcomes of operations.
type Notifier struct {
	relay      Relay
	host       string
	from       string
	hello      string
	recipients []string
	profiles   map[string][]string
	outcomes   map[notify.Outcome]bool
	tmpl       map[notify.Outcome]*template.Template
	tls        *tls.Config
	q          *queue.Queue[enroll.Event]
}

var _ enroll.Observer = (*Notifier)(nil)

// New returns a Notifier mailing from the address from through relay. It
// validates everything first (InvalidArgument): the relay address, every
// address against MaxAddress (bare addresses, "user@domain", printable
// ASCII), the lists against MaxRecipients, each template parses, is at
// most MaxTemplate bytes and renders a sample event within MaxSubject and
// MaxBody. It does not connect; [Notifier.Send] does, for a test mail.
func New(relay Relay, from string, opts *Options) (*Notifier, error) {
	const op = "smtpnotify.New"
	var o Options
	if opts != nil {
		o = *opts
	}
	host, port, err := net.SplitHostPort(relay.Addr)
	if err != nil || host == "" || port == "" || limit.Label(op, "relay address", relay.Addr) != nil {
		return nil, errs.Errorf(errs.InvalidArgument, op, "relay address %s is not host:port", limit.Quote(relay.Addr))
	}
	if relay.Security != STARTTLS && relay.Security != ImplicitTLS {
		return nil, errs.Errorf(errs.InvalidArgument, op, "unknown relay security %d", relay.Security)
	}
	if relay.Username != "" {
		if err := limit.Label(op, "relay username", relay.Username); err != nil {
			return nil, err
		}
	}
	if err := checkAddress(op, "from", from); err != nil {
		return nil, err
	}
	if err := checkList(op, "recipients", o.Recipients); err != nil {
		return nil, err
	}
	profiles := make(map[string][]string, len(o.ProfileRecipients))
	for p, l := range o.ProfileRecipients {
		if err := limit.Name(op, "profile", p); err != nil {
			return nil, err
		}
		if err := checkList(op, "recipients of profile "+limit.Quote(p), l); err != nil {
			return nil, err
		}
		profiles[p] = append([]string(nil), l...)
	}
	n := &Notifier{relay: relay, host: host, from: from, hello: o.Hello, recipients: append([]string(nil), o.Recipients...),
		profiles: profiles, outcomes: map[notify.Outcome]bool{}, tmpl: map[notify.Outcome]*template.Template{}}
	if n.hello == "" {
		n.hello = "localhost"
	} else if err := limit.Label(op, "hello", n.hello); err != nil || strings.ContainsAny(n.hello, " <>") {
		return nil, errs.Errorf(errs.InvalidArgument, op, "hello %s is not a host name", limit.Quote(n.hello))
	}
	outs := o.Outcomes
	if outs == nil {
		outs = notify.Outcomes()
	}
	for _, out := range outs {
		if _, ok := defaults[out]; !ok {
			return nil, errs.Errorf(errs.InvalidArgument, op, "unknown outcome %s", limit.Quote(string(out)))
		}
		n.outcomes[out] = true
	}
	for out, t := range o.Templates {
		if _, ok := defaults[out]; !ok {
			return nil, errs.Errorf(errs.InvalidArgument, op, "template for unknown outcome %s", limit.Quote(string(out)))
		}
		_ = t
	}
	for out, d := range defaults {
		t := o.Templates[out]
		if t.Subject == "" {
			t.Subject = d.Subject
		}
		if t.Body == "" {
			t.Body = d.Body
		}
		if len(t.Subject) > MaxTemplate || len(t.Body) > MaxTemplate {
			return nil, errs.Errorf(errs.InvalidArgument, op, "template of %s is longer than %d bytes", out, MaxTemplate)
		}
		tt, err := template.New("subject").Option("missingkey=error").Parse(t.Subject)
		if err == nil {
			_, err = tt.New("body").Parse(t.Body)
		}
		if err != nil {
			return nil, errs.Errorf(errs.InvalidArgument, op, "template of %s: %s", out, limit.Quote(err.Error()))
		}
		n.tmpl[out] = tt
		if _, _, err := n.render(op, sample(out)); err != nil {
			return nil, err
		}
	}
	if relay.ServerName == "" {
		relay.ServerName = host
		n.relay.ServerName = host
	}
	n.tls = &tls.Config{ServerName: relay.ServerName, RootCAs: relay.RootCAs, MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: relay.DangerouslySkipCertificateVerification} //nolint:gosec // explicit, loudly named option
	if relay.DangerouslySkipCertificateVerification && o.Logger != nil {
		o.Logger.Warn("smtpnotify: certificate verification of the relay is OFF (DangerouslySkipCertificateVerification)", "relay", relay.Addr)
	}
	qo := queue.Options{Name: "smtp", Size: o.QueueSize, Workers: o.Workers, Retries: o.Retries, Backoff: o.Backoff,
		MaxBackoff: o.MaxBackoff, Timeout: o.Timeout, Logger: o.Logger, Meter: o.MeterProvider}
	qo.Defaults(30 * time.Second)
	n.q = queue.New(qo, func(ctx context.Context, e enroll.Event) error { return n.send(ctx, "smtpnotify.deliver", e) })
	return n, nil
}

func sample(out notify.Outcome) enroll.Event {
	e := enroll.Event{Time: time.Unix(0, 0), Kind: enroll.JournalSucceeded, Op: enroll.OpEnroll, Journal: "sample",
		Profile: "sample", Message: "public 203.0.113.7 <-> local 10.0.0.7"}
	e.VM.Provider, e.VM.VMID = "provider", "vm-1"
	switch out {
	case notify.Failed:
		e.Kind, e.Step, e.Code, e.Message = enroll.JournalFailed, enroll.StepCredentials, errs.Unauthenticated, "credentials refused"
	case notify.Unenrolled:
		e.Op = enroll.OpUnenroll
	case notify.CleanedUp:
		e.Op = enroll.OpCleanup
	}
	return e
}

func checkAddress(op, field, a string) error {
	if a == "" || len(a) > MaxAddress || !limit.PrintableASCII(a) {
		return errs.Errorf(errs.InvalidArgument, op, "%s address %s is empty, longer than %d bytes or not printable ASCII", field, limit.Quote(a), MaxAddress)
	}
	p, err := mail.ParseAddress(a)
	if err != nil || p.Address != a || p.Name != "" || strings.ContainsAny(a, " <>") {
		return errs.Errorf(errs.InvalidArgument, op, "%s address %s is not a bare address user@domain", field, limit.Quote(a))
	}
	return nil
}

func checkList(op, field string, l []string) error {
	if len(l) > MaxRecipients {
		return errs.Errorf(errs.InvalidArgument, op, "%s: %d addresses, more than %d", field, len(l), MaxRecipients)
	}
	for _, a := range l {
		if err := checkAddress(op, field, a); err != nil {
			return err
		}
	}
	return nil
}

// Observe queues the mail of e if e is one of the chosen outcomes and has
// recipients. It never waits: when the queue is full the event is dropped
// and counted (Stats.Dropped).
func (n *Notifier) Observe(e enroll.Event) {
	out, ok := notify.OutcomeOf(e)
	if !ok || !n.outcomes[out] || len(n.to(e)) == 0 {
		return
	}
	n.q.Offer(e)
}

func (n *Notifier) to(e enroll.Event) []string {
	if l, ok := n.profiles[e.Profile]; ok {
		return l
	}
	return n.recipients
}

// Send mails e now, once, without the queue and its retries, and returns
// the result: for a test mail from a host's set-up, or a host that wants
// its own delivery policy. An event that is not an outcome is
// InvalidArgument; one without recipients is sent to nobody (nil).
func (n *Notifier) Send(ctx context.Context, e enroll.Event) error {
	const op = "smtpnotify.Send"
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	if _, ok := notify.OutcomeOf(e); !ok {
		return errs.Errorf(errs.InvalidArgument, op, "event %s is not an outcome", limit.Quote(string(e.Kind)))
	}
	if len(n.to(e)) == 0 {
		return nil
	}
	return n.send(ctx, op, e)
}

// Stats returns the delivery counters.
func (n *Notifier) Stats() notify.Stats { return n.q.Stats() }

// Close stops accepting events and delivers those queued until ctx is
// done; what is left then is dropped (counted) and Close returns
// DeadlineExceeded or Canceled. Events observed after Close are dropped.
func (n *Notifier) Close(ctx context.Context) error { return n.q.Close(ctx, "smtpnotify.Close") }

// render executes the templates of e's outcome.
func (n *Notifier) render(op string, e enroll.Event) (subject string, body []byte, err error) {
	out, _ := notify.OutcomeOf(e)
	t := n.tmpl[out]
	d := notify.DataOf(e)
	var s, b bytes.Buffer
	if err := t.ExecuteTemplate(&capped{&s, MaxSubject * 4}, "subject", d); err != nil {
		return "", nil, errs.Errorf(errs.InvalidArgument, op, "subject template of %s: %s", out, limit.Quote(err.Error()))
	}
	if err := t.ExecuteTemplate(&capped{&b, MaxBody}, "body", d); err != nil {
		if errors.Is(err, errTooLong) {
			return "", nil, errs.Errorf(errs.InvalidArgument, op, "body of %s is longer than %d bytes", out, MaxBody)
		}
		return "", nil, errs.Errorf(errs.InvalidArgument, op, "body template of %s: %s", out, limit.Quote(err.Error()))
	}
	return headerValue(s.String(), MaxSubject), b.Bytes(), nil
}

var errTooLong = errors.New("output too long")

// capped is a writer that refuses to grow past max bytes.
type capped struct {
	b   *bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if c.b.Len()+len(p) > c.max {
		return 0, errTooLong
	}
	return c.b.Write(p)
}

// headerValue makes s one safe header line: control characters become
// spaces, the result is cut at max bytes and encoded (RFC 2047) when it is
// not ASCII.
func headerValue(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }), " ")
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = limit.Cut(s, max)
	return mime.QEncoding.Encode("utf-8", s)
}

func (n *Notifier) message(e enroll.Event, to []string, subject string, body []byte) []byte {
	var m bytes.Buffer
	h := func(k, v string) { m.WriteString(k + ": " + v + "\r\n") }
	h("From", n.from)
	h("To", strings.Join(to, ", "))
	h("Subject", subject)
	h("Date", e.Time.Format(time.RFC1123Z))
	h("Message-ID", "<"+randomID()+"@managedvm>")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	out, _ := notify.OutcomeOf(e)
	h("X-Managedvm-Outcome", string(out))
	if e.Journal != "" {
		h("X-Managedvm-Journal", headerValue(e.Journal, 255))
	}
	m.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&m)
	_, _ = qp.Write(body)
	_ = qp.Close()
	return m.Bytes()
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// send is one delivery attempt.
func (n *Notifier) send(ctx context.Context, op string, e enroll.Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	to := n.to(e)
	subject, body, err := n.render(op, e)
	if err != nil {
		return err
	}
	msg := n.message(e, to, subject, body)
	c, err := n.dial(ctx, op)
	if err != nil {
		return err
	}
	defer c.Close()
	stage := func(what string, err error) error { return n.wrap(ctx, op, what, err) }
	if n.relay.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errs.Errorf(errs.FailedPrecondition, op, "relay %s: AUTH is not offered (inside TLS)", limit.Quote(n.relay.Addr))
		}
		if err := c.Auth(smtp.PlainAuth("", n.relay.Username, n.relay.Password.Reveal(), n.host)); err != nil {
			return stage("AUTH", err)
		}
	}
	if err := c.Mail(n.from); err != nil {
		return stage("MAIL FROM", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return stage("RCPT TO "+limit.Quote(r), err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return stage("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		// The relay may have taken part of the message.
		return errs.Errorf(errs.OutcomeUnknown, op, "relay %s: DATA: %s", limit.Quote(n.relay.Addr), limit.Quote(err.Error()))
	}
	if err := w.Close(); err != nil {
		return stage("end of DATA", err)
	}
	_ = c.Quit()
	return nil
}

// dial connects and secures the connection (TLS at once or STARTTLS),
// with the deadline of ctx on every read and write.
func (n *Notifier) dial(ctx context.Context, op string) (*smtp.Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", n.relay.Addr)
	if err != nil {
		return nil, n.wrap(ctx, op, "connect", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if n.relay.Security == ImplicitTLS {
		tc := tls.Client(conn, n.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, n.wrap(ctx, op, "TLS handshake", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, n.host)
	if err != nil {
		_ = conn.Close()
		return nil, n.wrap(ctx, op, "greeting", err)
	}
	if err := c.Hello(n.hello); err != nil {
		_ = c.Close()
		return nil, n.wrap(ctx, op, "EHLO", err)
	}
	if n.relay.Security == STARTTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			_ = c.Close()
			return nil, errs.Errorf(errs.FailedPrecondition, op, "relay %s does not offer STARTTLS; mail is never sent in plain text", limit.Quote(n.relay.Addr))
		}
		if err := c.StartTLS(n.tls); err != nil {
			_ = c.Close()
			return nil, n.wrap(ctx, op, "STARTTLS", err)
		}
	}
	return c, nil
}

// wrap gives a relay error its code: a refused certificate is
// PermissionDenied, refused credentials Unauthenticated, a 4xx reply or a
// network failure Unavailable (retried), another 5xx FailedPrecondition.
// The relay's reply text is quoted; the password is never part of it.
func (n *Notifier) wrap(ctx context.Context, op, stage string, err error) error {
	where := "relay " + limit.Quote(n.relay.Addr) + ": " + stage
	if ctxErr := errs.FromContext(ctx, op); ctxErr != nil {
		return errs.Errorf(errs.CodeOf(ctxErr), op, "%s: %s", where, ctx.Err())
	}
	if certerr.Refused(err) {
		return errs.Errorf(errs.PermissionDenied, op, "%s: certificate of %s refused: %s", where, limit.Quote(n.relay.ServerName), limit.Quote(err.Error()))
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		reply := strconv.Itoa(te.Code) + " " + limit.Quote(te.Msg)
		switch {
		case te.Code == 535 || te.Code == 534 || te.Code == 530:
			return errs.Errorf(errs.Unauthenticated, op, "%s: relay refused the credentials of %s: %s", where, limit.Quote(n.relay.Username), reply)
		case te.Code >= 400 && te.Code < 500:
			return errs.Errorf(errs.Unavailable, op, "%s: %s", where, reply)
		default:
			return errs.Errorf(errs.FailedPrecondition, op, "%s: %s", where, reply)
		}
	}
	return errs.Errorf(errs.Unavailable, op, "%s: %s", where, limit.Quote(err.Error()))
}

var defaults = map[notify.Outcome]Template{
	notify.Enrolled: {
		Subject: `[managedvm] VM {{.VM}} enrolled`,
		Body: `The VM {{.VM}} is now enrolled in the Guest OS Services{{with .Profile}} (profile {{.}}){{end}}.
{{with .Message}}
Addresses: {{.}}
{{end}}
Journal: {{.Journal}}
Time:    {{.Time.UTC.Format "2006-01-02 15:04:05 UTC"}}
`},
	notify.Failed: {
		Subject: `[managedvm] {{.Op}} of VM {{.VM}} failed`,
		Body: `The {{.Op}} of VM {{.VM}}{{with .Profile}} (profile {{.}}){{end}} failed{{with .Step}} at step {{.}}{{end}}; what was done has been undone.

Reason ({{.Code}}): {{.Message}}

Journal: {{.Journal}}
Time:    {{.Time.UTC.Format "2006-01-02 15:04:05 UTC"}}
`},
	notify.Unenrolled: {
		Subject: `[managedvm] VM {{.VM}} unenrolled`,
		Body: `The VM {{.VM}} is no longer enrolled: its NAT rule and public IP are released.

Journal: {{.Journal}}
Time:    {{.Time.UTC.Format "2006-01-02 15:04:05 UTC"}}
`},
	notify.CleanedUp: {
		Subject: `[managedvm] VM {{.VM}} cleaned up after deletion`,
		Body: `The VM {{.VM}} was deleted from its provider; its NAT rule and public IP are released and its record retired.

Journal: {{.Journal}}
Time:    {{.Time.UTC.Format "2006-01-02 15:04:05 UTC"}}
`},
}

// String describes the relay without the password.
func (r Relay) String() string {
	s := fmt.Sprintf("smtp relay %s", r.Addr)
	if r.Username != "" {
		s += " as " + r.Username
	}
	return s
}
