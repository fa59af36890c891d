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
	base := ansible.Config{Playbook: "x.yml", Credentials: cred, InsecureAcceptAnyHostKey: true}
	for name, mod := range map[string]func(c *ansible.Config){
		"tag":       func(c *ansible.Config) { c.Tags = []string{hostile} },
		"long tag":  func(c *ansible.Config) { c.Tags = []string{strings.Repeat("t", 129)} },
		"skip tag":  func(c *ansible.Config) { c.SkipTags = []string{hostile} },
		"limit":     func(c *ansible.Config) { c.Limit = hostile },
		"big limit": func(c *ansible.Config) { c.Limit = strings.Repeat("h", 5000) },
		"user":      func(c *ansible.Config) { c.Credentials.Username = hostile },
		"env":       func(c *ansible.Config) { c.Env = []string{"K=" + hostile} },
		"playbook":  func(c *ansible.Config) { c.Playbook = "/" + strings.Repeat("p", ansible.MaxPath) },
	} {
		c := base
		mod(&c)
		_, err := ansible.New(c)
		testkit.WantCode(t, name, err, errs.InvalidArgument)
		testkit.Bounded(t, name, err, 300)
	}
	r, err := ansible.New(ansible.Config{Playbook: playbookFile(t), Binary: "managedvm-no-such-ansible-playbook", Credentials: cred, InsecureAcceptAnyHostKey: true})
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
	r, err := ansible.New(ansible.Config{Playbook: playbookFile(t), Binary: bin, Credentials: guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)},
		InsecureAcceptAnyHostKey: true, TempDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
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
	r, err := ansible.New(ansible.Config{Playbook: playbookFile(t), Binary: bin, Credentials: guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)},
		BecomePassword: guest.NewSecret(stubBecomePw), InsecureAcceptAnyHostKey: true, TempDir: t.TempDir()})
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
