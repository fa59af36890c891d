package smtpnotify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes/smtprelay"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/notify"
	"github.com/managedvm/managedvm/notify/smtpnotify"
)

func TestLimits(t *testing.T) {
	relay := smtpnotify.Relay{Addr: "127.0.0.1:25"}
	long := strings.Repeat("a", smtpnotify.MaxAddress) + "@example.com"
	many := make([]string, smtpnotify.MaxRecipients+1)
	for i := range many {
		many[i] = ops
	}
	for what, c := range map[string]struct {
		relay smtpnotify.Relay
		from  string
		opts  smtpnotify.Options
	}{
		"relay without port":     {smtpnotify.Relay{Addr: "relay.example.com"}, from, smtpnotify.Options{}},
		"relay with newline":     {smtpnotify.Relay{Addr: "relay\n.example.com:25"}, from, smtpnotify.Options{}},
		"unknown security":       {smtpnotify.Relay{Addr: "127.0.0.1:25", Security: 7}, from, smtpnotify.Options{}},
		"empty from":             {relay, "", smtpnotify.Options{}},
		"from with CRLF":         {relay, "a@example.com\r\nBcc: x@example.com", smtpnotify.Options{}},
		"from with display name": {relay, "Ops <ops@example.com>", smtpnotify.Options{}},
		"from not ASCII":         {relay, "opé@example.com", smtpnotify.Options{}},
		"from too long":          {relay, long, smtpnotify.Options{}},
		"recipient NUL":          {relay, from, smtpnotify.Options{Recipients: []string{"o\x00ps@example.com"}}},
		"recipient no domain":    {relay, from, smtpnotify.Options{Recipients: []string{"ops"}}},
		"too many recipients":    {relay, from, smtpnotify.Options{Recipients: many}},
		"profile recipient":      {relay, from, smtpnotify.Options{ProfileRecipients: map[string][]string{"gold": {"x\ny@example.com"}}}},
		"profile name":           {relay, from, smtpnotify.Options{ProfileRecipients: map[string][]string{"go\nld": {ops}}}},
		"unknown outcome":        {relay, from, smtpnotify.Options{Outcomes: []notify.Outcome{"exploded"}}},
		"template syntax":        {relay, from, smtpnotify.Options{Templates: map[notify.Outcome]smtpnotify.Template{notify.Enrolled: {Subject: "{{.VM"}}}},
		"template unknown field": {relay, from, smtpnotify.Options{Templates: map[notify.Outcome]smtpnotify.Template{notify.Failed: {Body: "{{.Password}}"}}}},
		"template too long":      {relay, from, smtpnotify.Options{Templates: map[notify.Outcome]smtpnotify.Template{notify.Enrolled: {Body: strings.Repeat("x", smtpnotify.MaxTemplate+1)}}}},
		"hello with space":       {relay, from, smtpnotify.Options{Hello: "a b"}},
	} {
		_, err := smtpnotify.New(c.relay, c.from, &c.opts)
		testkit.WantCode(t, what, err, errs.InvalidArgument)
		testkit.Bounded(t, what, err, 300)
	}
}

// TestUntrustedOutput: a subject rendered with line breaks stays one
// header line (no injected header), and a body over MaxBody is refused.
func TestUntrustedOutput(t *testing.T) {
	r := startRelay(t, smtprelay.Options{})
	n := newNotifier(t, smtpnotify.Relay{Addr: r.Addr, RootCAs: r.PKI.Pool}, &smtpnotify.Options{
		Recipients: []string{ops},
		Templates:  map[notify.Outcome]smtpnotify.Template{notify.Failed: {Subject: "failed: {{.Message}}", Body: "{{.Message}}\n"}},
	})
	ctx := context.Background()
	e := msgEvent(enroll.JournalFailed, enroll.OpEnroll)
	e.Message = "boom\r\nBcc: attacker@example.net\r\n\r\nfake body ünïcode"
	if err := n.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	msgs := r.Wait(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatal("no message")
	}
	p := parse(t, msgs[0])
	if p.header.Get("Bcc") != "" || len(msgs[0].To) != 1 || strings.Contains(strings.SplitN(p.raw, "\r\n\r\n", 2)[0], "\r\nBcc:") {
		t.Fatalf("header injected:\n%s", p.raw)
	}
	if p.subject != "failed: boom Bcc: attacker@example.net fake body ünïcode" {
		t.Fatalf("subject %q", p.subject)
	}
	if !strings.Contains(p.body, "fake body ünïcode") {
		t.Fatalf("body %q", p.body)
	}
	e.Message = strings.Repeat("x", smtpnotify.MaxBody)
	err := n.Send(ctx, e)
	testkit.WantCode(t, "body too long", err, errs.InvalidArgument)
	testkit.Bounded(t, "body too long", err, 300)
	e.Message = strings.Repeat("y", 2*smtpnotify.MaxSubject)
	if err := n.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	msgs = r.Wait(2, 5*time.Second)
	if len(msgs) != 2 {
		t.Fatal("no second message")
	}
	if p := parse(t, msgs[1]); len(p.subject) > smtpnotify.MaxSubject {
		t.Fatalf("subject of %d bytes", len(p.subject))
	}
	// Not an outcome.
	testkit.WantCode(t, "step event", n.Send(ctx, msgEvent(enroll.StepStarted, enroll.OpEnroll)), errs.InvalidArgument)
}
