package ansible_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ansible"
	"github.com/managedvm/managedvm/internal/testkit"
)

var hostile = strings.Repeat("x\n", 50_000) // 100 kB with raw newlines

// jsonHostile is hostile as a JSON string body.
var jsonHostile = strings.Repeat(`x\n`, 50_000)

// TestHostileConfig: 100 kB or multi-line values in the configuration or
// the host are InvalidArgument with a bounded message, before anything
// runs.
func TestHostileConfig(t *testing.T) {
	cred := guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)}
	// args are New's arguments.
	type args struct {
		playbook string
		cred     guest.Credentials
		opts     ansible.Options
	}
	base := args{playbook: "x.yml", cred: cred}
	for name, mod := range map[string]func(c *args){
		"tag":       func(c *args) { c.opts.Tags = []string{hostile} },
		"long tag":  func(c *args) { c.opts.Tags = []string{strings.Repeat("t", 129)} },
		"skip tag":  func(c *args) { c.opts.SkipTags = []string{hostile} },
		"limit":     func(c *args) { c.opts.Limit = hostile },
		"big limit": func(c *args) { c.opts.Limit = strings.Repeat("h", 5000) },
		"user":      func(c *args) { c.cred.Username = hostile },
		"env":       func(c *args) { c.opts.Env = []string{"K=" + hostile} },
		"playbook":  func(c *args) { c.playbook = "/" + strings.Repeat("p", ansible.MaxPath) },
	} {
		c := base
		mod(&c)
		_, err := ansible.New(c.playbook, c.cred, ansible.InsecureAcceptAnyHostKey(), &c.opts)
		testkit.WantCode(t, name, err, errs.InvalidArgument)
		testkit.Bounded(t, name, err, 300)
	}
	r, err := ansible.New(playbookFile(t), cred, ansible.InsecureAcceptAnyHostKey(), &ansible.Options{Binary: "managedvm-no-such-ansible-playbook"})
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]ansible.Host{
		"address":      {Addr: hostile},
		"long address": {Addr: strings.Repeat("a", 254)},
		"name":         {Name: hostile, Addr: "203.0.113.7"},
	} {
		_, err := r.Run(context.Background(), h)
		testkit.WantCode(t, name, err, errs.InvalidArgument)
		testkit.Bounded(t, name, err, 300)
	}
}

// TestHostilePlaybookOutput: whatever the playbook names and prints (a
// 100 kB task name, host and message with raw newlines), the
// *PlaybookError's message and the log lines stay bounded, while its
// fields keep what Ansible reported.
func TestHostilePlaybookOutput(t *testing.T) {
	bin, _ := stub(t, `{"event":"task","host":"`+jsonHostile+`","task":"`+jsonHostile+`","status":"failed","changed":false,"msg":"`+jsonHostile+`"}`, 2)
	var logs strings.Builder
	r, err := ansible.New(playbookFile(t), guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)}, ansible.InsecureAcceptAnyHostKey(), &ansible.Options{Binary: bin, TempDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background(), ansible.Host{Addr: "203.0.113.7"})
	var pe *ansible.PlaybookError
	if !errors.As(err, &pe) {
		t.Fatalf("run: %v", err)
	}
	if pe.Task != hostile || pe.Msg != hostile {
		t.Errorf("the fields lost what Ansible reported: task of %d bytes, message of %d", len(pe.Task), len(pe.Msg))
	}
	testkit.Bounded(t, "PlaybookError with a failed task", pe, 400)
	if n := len(logs.String()); n > 600 || !strings.Contains(logs.String(), "ansible task") {
		t.Errorf("log of %d bytes: %.300s", n, logs.String())
	}
	testkit.Bounded(t, "PlaybookError without a task", &ansible.PlaybookError{ExitCode: 4, Msg: hostile}, 300)
}

// TestRedactBeforeCut: a secret that straddles the 600-byte cut of
// ansible-playbook's output is redacted whole, never left in part.
func TestRedactBeforeCut(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "ansible-playbook")
	script := "#!/bin/sh\nprintf '%s' '" + strings.Repeat("y", 590) + stubBecomePw + "' >&2\n: > \"$MANAGEDVM_ANSIBLE_EVENTS\"\nexit 4\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := ansible.New(playbookFile(t), guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)}, ansible.InsecureAcceptAnyHostKey(), &ansible.Options{Binary: bin, BecomePassword: guest.NewSecret(stubBecomePw), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background(), ansible.Host{Addr: "203.0.113.7"})
	var pe *ansible.PlaybookError
	if !errors.As(err, &pe) || pe.ExitCode != 4 {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(pe.Msg, stubBecomePw[:6]) {
		t.Fatalf("part of the secret is in the message: %q", pe.Msg[len(pe.Msg)-30:])
	}
}
