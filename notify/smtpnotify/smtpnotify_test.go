package smtpnotify_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/fakes/smtprelay"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/notify"
	"github.com/managedvm/managedvm/notify/internal/notifytest"
	"github.com/managedvm/managedvm/notify/smtpnotify"
)

const (
	guestPW = "CANARY-guest-pw-7f3a"
	relayPW = "CANARY-relay-pw-c41d"
	from    = "managedvm@example.com"
	ops     = "ops@example.com"
	gold    = "gold-team@example.com"
)

func startRelay(t *testing.T, opts smtprelay.Options) *smtprelay.Relay {
	t.Helper()
	r, err := smtprelay.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

type mailMsg struct {
	subject, body string
	header        mail.Header
	raw           string
}

func parse(t *testing.T, m smtprelay.Message) mailMsg {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("message: %v\n%s", err, m.Data)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	return mailMsg{subject: subj, body: string(body), header: msg.Header, raw: string(m.Data)}
}

func newNotifier(t *testing.T, relay smtpnotify.Relay, opts *smtpnotify.Options) *smtpnotify.Notifier {
	t.Helper()
	if opts == nil {
		opts = &smtpnotify.Options{Recipients: []string{ops}}
	}
	if opts.Backoff == 0 {
		opts.Backoff = 10 * time.Millisecond
	}
	n, err := smtpnotify.New(relay, from, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

// TestModes delivers a real enrollment's mail over the three ways a relay
// is reached: STARTTLS without AUTH (port 25 style), STARTTLS with AUTH
// PLAIN (587 style) and implicit TLS with AUTH (465 style).
func TestModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode smtprelay.Mode
		sec  smtpnotify.Security
		auth bool
	}{
		{"25-starttls", smtprelay.StartTLS, smtpnotify.STARTTLS, false},
		{"587-starttls-auth", smtprelay.StartTLS, smtpnotify.STARTTLS, true},
		{"465-implicit-tls-auth", smtprelay.ImplicitTLS, smtpnotify.ImplicitTLS, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro := smtprelay.Options{Mode: tc.mode}
			relay := smtpnotify.Relay{Security: tc.sec}
			if tc.auth {
				ro.Username, ro.Password = "mailer", relayPW
				relay.Username, relay.Password = "mailer", guest.NewSecret(relayPW)
			}
			r := startRelay(t, ro)
			relay.Addr, relay.RootCAs = r.Addr, r.PKI.Pool
			rec := obstest.New(t)
			n := newNotifier(t, relay, &smtpnotify.Options{Recipients: []string{ops}, MeterProvider: rec.MP})
			w := notifytest.New(t, 1, guestPW, n)
			if _, err := w.O.Enroll(context.Background(), w.Request(0, guestPW, "")); err != nil {
				t.Fatal(err)
			}
			msgs := r.Wait(1, 10*time.Second)
			if len(msgs) != 1 {
				t.Fatalf("%d messages, stats %+v", len(msgs), n.Stats())
			}
			m := msgs[0]
			if !m.TLS || m.From != from || len(m.To) != 1 || m.To[0] != ops {
				t.Fatalf("message %+v", m)
			}
			if tc.auth && m.User != "mailer" {
				t.Fatalf("authenticated as %q", m.User)
			}
			p := parse(t, m)
			vm := notifytest.Provider + "/" + w.IDs[0]
			if p.subject != "[managedvm] VM "+vm+" enrolled" || !strings.Contains(p.body, "Addresses: public 100.64.") {
				t.Fatalf("subject %q body %q", p.subject, p.body)
			}
			if p.header.Get("X-Managedvm-Outcome") != "enrolled" {
				t.Fatalf("header %v", p.header)
			}
			if err := n.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if s := n.Stats(); s.Sent != 1 || s.Queued != 1 || s.Failed != 0 || s.Dropped != 0 {
				t.Fatalf("stats %+v", s)
			}
			if got := rec.Sum("managedvm.notify.sent", map[string]string{"notifier": "smtp"}); got != 1 {
				t.Fatalf("managedvm.notify.sent = %d", got)
			}
		})
	}
}

// TestOutcomesProfilesAndSecrets runs every outcome through a real
// orchestrator, routes by profile, and searches every mail, log line and
// error for the guest and relay passwords.
func TestOutcomesProfilesAndSecrets(t *testing.T) {
	r := startRelay(t, smtprelay.Options{Mode: smtprelay.StartTLS, Username: "mailer", Password: relayPW})
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{&logs, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := newNotifier(t, smtpnotify.Relay{Addr: r.Addr, RootCAs: r.PKI.Pool, Username: "mailer", Password: guest.NewSecret(relayPW)},
		&smtpnotify.Options{Recipients: []string{ops}, ProfileRecipients: map[string][]string{notifytest.Profile: {gold, ops}}, Logger: logger})
	w := notifytest.New(t, 3, guestPW, n)
	ctx := context.Background()
	var texts []string
	if _, err := w.O.Enroll(ctx, w.Request(0, guestPW, notifytest.Profile)); err != nil {
		t.Fatal(err)
	}
	_, err := w.O.Enroll(ctx, w.Request(1, guestPW+"-wrong", ""))
	testkit.WantCode(t, "wrong password", err, errs.Unauthenticated)
	texts = append(texts, err.Error())
	if _, err := w.O.Unenroll(ctx, enroll.UnenrollRequest{Provider: notifytest.Provider, VMID: w.IDs[0], Credentials: guest.Password(notifytest.User, guestPW)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.O.Enroll(ctx, w.Request(2, guestPW, "")); err != nil {
		t.Fatal(err)
	}
	if err := w.HV.RemoveVM(w.IDs[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.O.Cleanup(ctx, notifytest.Provider, w.IDs[2]); err != nil {
		t.Fatal(err)
	}
	msgs := r.Wait(5, 10*time.Second)
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 5 {
		t.Fatalf("%d messages (want enrolled, failed, unenrolled, enrolled, cleaned up), stats %+v", len(msgs), n.Stats())
	}
	got := map[string]smtprelay.Message{}
	for _, m := range msgs {
		p := parse(t, m)
		got[p.header.Get("X-Managedvm-Outcome")+" "+p.header.Get("X-Managedvm-Journal")] = m
		texts = append(texts, p.raw, p.subject, p.body)
		out := notify.Outcome(p.header.Get("X-Managedvm-Outcome"))
		vm0 := notifytest.Provider + "/" + w.IDs[0]
		switch {
		case out == notify.Enrolled && strings.Contains(p.subject, vm0):
			if len(m.To) != 2 || m.To[0] != gold || !strings.Contains(p.body, "(profile gold)") {
				t.Fatalf("profile mail to %v: %q", m.To, p.body)
			}
		case out == notify.Failed:
			if len(m.To) != 1 || m.To[0] != ops || p.subject != "[managedvm] enroll of VM "+notifytest.Provider+"/"+w.IDs[1]+" failed" ||
				!strings.Contains(p.body, "Reason (Unauthenticated): ") || !strings.Contains(p.body, "at step credentials") {
				t.Fatalf("failure mail to %v: %q %q", m.To, p.subject, p.body)
			}
		case out == notify.Unenrolled:
			if p.subject != "[managedvm] VM "+vm0+" unenrolled" {
				t.Fatalf("unenrolled: %q", p.subject)
			}
		case out == notify.CleanedUp:
			if p.subject != "[managedvm] VM "+notifytest.Provider+"/"+w.IDs[2]+" cleaned up after deletion" {
				t.Fatalf("cleaned up: %q", p.subject)
			}
		case out == notify.Enrolled:
			if len(m.To) != 1 || m.To[0] != ops {
				t.Fatalf("default profile mail to %v", m.To)
			}
		default:
			t.Fatalf("unexpected mail %q", p.subject)
		}
	}
	if len(got) != 5 {
		t.Fatalf("outcomes %v", got)
	}
	// A refused relay login, so that its error and log line are searched too.
	bad := newNotifier(t, smtpnotify.Relay{Addr: r.Addr, RootCAs: r.PKI.Pool, Username: "mailer", Password: guest.NewSecret(relayPW + "x")},
		&smtpnotify.Options{Recipients: []string{ops}, Logger: logger, Retries: -1})
	err = bad.Send(ctx, msgEvent(enroll.JournalSucceeded, enroll.OpEnroll))
	testkit.WantCode(t, "wrong relay password", err, errs.Unauthenticated)
	bad.Observe(msgEvent(enroll.JournalSucceeded, enroll.OpEnroll))
	_ = bad.Close(ctx)
	if s := bad.Stats(); s.Failed != 1 || s.LastCode != errs.Unauthenticated {
		t.Fatalf("stats %+v", s)
	}
	texts = append(texts, err.Error(), bad.Stats().LastError, n.Stats().LastError)
	relay := smtpnotify.Relay{Addr: r.Addr, Username: "mailer", Password: guest.NewSecret(relayPW)}
	texts = append(texts, fmt.Sprintf("%v %+v %#v %s", relay, relay, relay, relay))
	logger.Info("relay", "relay", relay)
	logMu.Lock()
	texts = append(texts, logs.String())
	logMu.Unlock()
	for _, text := range texts {
		for _, canary := range []string{guestPW, relayPW} {
			if strings.Contains(text, canary) {
				t.Fatalf("secret %q leaked in: %.400s", canary, text)
			}
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func msgEvent(kind enroll.EventKind, op enroll.Op) enroll.Event {
	e := enroll.Event{Time: time.Now(), Kind: kind, Op: op, Journal: "j1"}
	e.VM.Provider, e.VM.VMID = "vc1", "vm-9"
	return e
}

// TestCertificates: a certificate from an unknown authority, or for
// another name, is refused with PermissionDenied and not retried; the
// loudly named option accepts it.
func TestCertificates(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []smtprelay.Mode{smtprelay.StartTLS, smtprelay.ImplicitTLS} {
		r := startRelay(t, smtprelay.Options{Mode: mode})
		sec := smtpnotify.STARTTLS
		if mode == smtprelay.ImplicitTLS {
			sec = smtpnotify.ImplicitTLS
		}
		other, err := smtprelay.NewPKI("localhost")
		if err != nil {
			t.Fatal(err)
		}
		for what, relay := range map[string]smtpnotify.Relay{
			"unknown authority": {Addr: r.Addr, Security: sec, RootCAs: other.Pool},
			"system pool":       {Addr: r.Addr, Security: sec},
			"wrong name":        {Addr: r.Addr, Security: sec, RootCAs: r.PKI.Pool, ServerName: "relay.example.com"},
		} {
			n := newNotifier(t, relay, nil)
			err := n.Send(ctx, msgEvent(enroll.JournalSucceeded, enroll.OpEnroll))
			testkit.WantCode(t, what, err, errs.PermissionDenied)
			testkit.Bounded(t, what, err, 400)
			n.Observe(msgEvent(enroll.JournalSucceeded, enroll.OpEnroll))
			_ = n.Close(ctx)
			if s := n.Stats(); s.Failed != 1 || s.Retries != 0 || s.LastCode != errs.PermissionDenied {
				t.Fatalf("%s: stats %+v", what, s)
			}
		}
		n := newNotifier(t, smtpnotify.Relay{Addr: r.Addr, Security: sec, RootCAs: other.Pool, DangerouslySkipCertificateVerification: true}, nil)
		if err := n.Send(ctx, msgEvent(enroll.JournalSucceeded, enroll.OpEnroll)); err != nil {
			t.Fatal(err)
		}
		if len(r.Messages()) != 1 {
			t.Fatalf("messages %d", len(r.Messages()))
		}
	}
}

// TestNeverPlainText: a relay without STARTTLS gets nothing.
func TestNeverPlainText(t *testing.T) {
	r := startRelay(t, smtprelay.Options{Mode: smtprelay.Plain})
	n := newNotifier(t, smtpnotify.Relay{Addr: r.Addr}, nil)
	err := n.Send(context.Background(), msgEvent(enroll.JournalSucceeded, enroll.OpEnroll))
	testkit.WantCode(t, "no STARTTLS", err, errs.FailedPrecondition)
	if !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("error %v", err)
	}
	if len(r.Messages()) != 0 {
		t.Fatal("a message was sent in plain text")
	}
}

// TestRetries: 451 replies are retried with backoff until accepted.
func TestRetries(t *testing.T) {
	r := startRelay(t, smtprelay.Options{TempFail: 2})
	n := newNotifier(t, smtpnotify.Relay{Addr: r.Addr, RootCAs: r.PKI.Pool}, &smtpnotify.Options{Recipients: []string{ops}, Retries: 3})
	n.Observe(msgEvent(enroll.JournalFailed, enroll.OpEnroll))
	if msgs := r.Wait(1, 10*time.Second); len(msgs) != 1 {
		t.Fatalf("%d messages, stats %+v", len(msgs), n.Stats())
	}
	_ = n.Close(context.Background())
	if s := n.Stats(); s.Sent != 1 || s.Retries != 2 || s.LastCode != errs.Unavailable {
		t.Fatalf("stats %+v", s)
	}
	// Retries exhausted: counted as failed.
	r2 := startRelay(t, smtprelay.Options{TempFail: 10})
	n2 := newNotifier(t, smtpnotify.Relay{Addr: r2.Addr, RootCAs: r2.PKI.Pool}, &smtpnotify.Options{Recipients: []string{ops}, Retries: 2})
	n2.Observe(msgEvent(enroll.JournalFailed, enroll.OpEnroll))
	_ = n2.Close(context.Background())
	if s := n2.Stats(); s.Sent != 0 || s.Failed != 1 || s.Retries != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// hungRelay accepts connections and never says a word.
func hungRelay(t *testing.T) string {
	t.Helper()
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
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestHungRelayNeverDelaysEnrollment: with a relay that accepts and never
// answers, enrollments take their normal time, the overflow is dropped
// and counted, and Close gives up at its deadline.
func TestHungRelayNeverDelaysEnrollment(t *testing.T) {
	const vms = 40
	ctx := context.Background()
	// Normal time: the same enrollments without an observer.
	base := notifytest.New(t, vms, guestPW, enroll.ObserverFunc(func(enroll.Event) {}))
	t0 := time.Now()
	for i := 0; i < vms; i++ {
		if _, err := base.O.Enroll(ctx, base.Request(i, guestPW, "")); err != nil {
			t.Fatal(err)
		}
	}
	normal := time.Since(t0)

	rec := obstest.New(t)
	n, err := smtpnotify.New(smtpnotify.Relay{Addr: hungRelay(t)}, from,
		&smtpnotify.Options{Recipients: []string{ops}, QueueSize: 4, Workers: 1, Timeout: time.Minute, MeterProvider: rec.MP})
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
	t.Logf("%d enrollments: %v without observer, %v with a hung relay (slowest %v)", vms, normal, withHung, slowest)
	if withHung > 3*normal+time.Second || slowest > time.Second {
		t.Fatalf("a hung relay delayed enrollments: %v vs %v, slowest %v", withHung, normal, slowest)
	}
	s := n.Stats()
	// One in the worker (if it took it already), QueueSize waiting, the
	// rest dropped.
	if s.Queued < 4 || s.Queued > 5 || s.Dropped != vms-s.Queued || s.Sent != 0 {
		t.Fatalf("stats %+v", s)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	err = n.Close(cctx)
	testkit.WantCode(t, "close", err, errs.DeadlineExceeded)
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if s := n.Stats(); s.Dropped != vms || s.Pending != 0 {
		t.Fatalf("after close: %+v", s)
	}
	n.Observe(msgEvent(enroll.JournalSucceeded, enroll.OpEnroll))
	if s := n.Stats(); s.Dropped != vms+1 {
		t.Fatalf("observed after close: %+v", s)
	}
	if got := rec.Sum("managedvm.notify.dropped", map[string]string{"notifier": "smtp"}); got != vms+1 {
		t.Fatalf("managedvm.notify.dropped = %d", got)
	}
	if got := rec.Sum("managedvm.notify.sent", map[string]string{"notifier": "smtp"}); got != 0 {
		t.Fatalf("managedvm.notify.sent = %d", got)
	}
}

// TestRelayDown: a relay that refuses connections is retried with
// backoff in the background; enrollments do not wait, and Close gives up
// at its deadline even in the middle of a backoff.
func TestRelayDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now: connection refused
	n, err := smtpnotify.New(smtpnotify.Relay{Addr: addr}, from,
		&smtpnotify.Options{Recipients: []string{ops}, Retries: 100, Backoff: 20 * time.Millisecond, MaxBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := notifytest.New(t, 3, guestPW, n)
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		if _, err := w.O.Enroll(context.Background(), w.Request(i, guestPW, "")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("enrollment took %v", d)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.Stats().Retries < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s := n.Stats()
	if s.Retries < 3 || s.LastCode != errs.Unavailable || s.Sent != 0 {
		t.Fatalf("stats %+v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	testkit.WantCode(t, "close", n.Close(ctx), errs.DeadlineExceeded)
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if s := n.Stats(); s.Dropped != 3 || s.Failed != 0 || s.Pending != 0 {
		t.Fatalf("after close %+v", s)
	}
}
