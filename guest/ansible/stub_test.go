package ansible_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ansible"
	"github.com/managedvm/managedvm/internal/testkit"
)

const (
	stubKey      = "-----BEGIN OPENSSH PRIVATE KEY-----\nstub-key-canary-material\n-----END OPENSSH PRIVATE KEY-----\n"
	stubBecomePw = "become-canary-pw"
)

// stub writes a stand-in for ansible-playbook that records what it was
// given (argv, environment, the modes of the files it was pointed at) and
// reports the events the test asks for.
func stub(t *testing.T, events string, exit int) (bin, record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "record")
	script := `#!/bin/sh
rec=` + record + `
{ echo "ARGV:$*"; env | sed 's/^/ENV:/'; } > "$rec"
while [ $# -gt 0 ]; do
  case "$1" in
    -i) inv=$2; shift ;;
    -e) vars=${2#@}; shift ;;
  esac
  shift
done
key=$(grep -o '"ansible_ssh_private_key_file":"[^"]*"' "$inv" | cut -d'"' -f4)
echo "KEYMODE:$(stat -c %a "$key")" >> "$rec"
echo "KEY:$(cat "$key")" >> "$rec"
echo "INVMODE:$(stat -c %a "$inv")" >> "$rec"
[ -n "${vars:-}" ] && { echo "VARSMODE:$(stat -c %a "$vars")"; echo "VARS:$(cat "$vars")"; } >> "$rec"
echo "DIRMODE:$(stat -c %a "$(dirname "$key")")" >> "$rec"
echo "INV:$(cat "$inv")" >> "$rec"
cat <<'EV' > "$MANAGEDVM_ANSIBLE_EVENTS"
` + events + `
EV
exit ` + string(rune('0'+exit)) + `
`
	bin = filepath.Join(dir, "ansible-playbook")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, record
}

func playbookFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "site.yml")
	if err := os.WriteFile(p, []byte("- hosts: all\n  tasks: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecretsStayOutOfArgvAndEnv(t *testing.T) {
	bin, record := stub(t, `{"event":"task","host":"target","task":"t1","action":"copy","status":"ok","changed":true,"msg":""}
{"event":"stats","hosts":{"target":{"ok":1,"changed":1,"failures":0,"unreachable":0,"skipped":0,"rescued":0,"ignored":0}}}`, 0)
	tmp := t.TempDir()
	opts := &ansible.Options{Binary: bin, BecomePassword: guest.NewSecret(stubBecomePw), Become: true,
		ExtraVars: map[string]any{"x": "y"}, Tags: []string{"a", "b"}, Check: true, TempDir: tmp}
	r, err := ansible.New(playbookFile(t), guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)}, ansible.KnownHosts([]byte("[203.0.113.7]:2222 ssh-ed25519 AAAA\n")), opts)
	if err != nil {
		t.Fatal(err)
	}
	// The Runner keeps its own copy of the options.
	opts.Tags[0], opts.ExtraVars["x"] = "changed", "changed"
	rep, err := r.Run(context.Background(), ansible.Host{Addr: "203.0.113.7", Port: 2222})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Changed() != 1 || len(rep.Tasks) != 1 || rep.Tasks[0].Task != "t1" || !rep.Tasks[0].Changed {
		t.Fatalf("report %+v", rep)
	}
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	rec := string(b)
	for _, line := range strings.Split(rec, "\n") {
		if (strings.HasPrefix(line, "ARGV:") || strings.HasPrefix(line, "ENV:")) && (strings.Contains(line, "canary")) {
			t.Fatalf("a secret is on the command line or in the environment: %q", line)
		}
	}
	for _, want := range []string{"KEYMODE:600", "INVMODE:600", "VARSMODE:600", "DIRMODE:700", "KEY:" + strings.Split(stubKey, "\n")[0],
		`"ansible_become_password":"` + stubBecomePw + `"`, `"x":"y"`, "--check", "--become", "--tags a,b",
		`"ansible_port":2222`, `"ansible_user":"ops"`, "StrictHostKeyChecking=yes", "ENV:ANSIBLE_STDOUT_CALLBACK=managedvm"} {
		if !strings.Contains(rec, want) {
			t.Errorf("the stub did not see %q", want)
		}
	}
	noLeftovers(t, tmp)
}

func TestFailureNamesTaskAndRedacts(t *testing.T) {
	bin, _ := stub(t, `{"event":"task","host":"target","task":"ok one","status":"ok","changed":false,"msg":""}
{"event":"task","host":"target","task":"ignored","status":"failed","changed":false,"ignored":true,"msg":"never mind"}
{"event":"task","host":"target","task":"install agent","status":"failed","changed":false,"msg":"sudo: password `+stubBecomePw+` refused"}`, 2)
	r, err := ansible.New(playbookFile(t), guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)}, ansible.InsecureAcceptAnyHostKey(), &ansible.Options{Binary: bin, BecomePassword: guest.NewSecret(stubBecomePw), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), ansible.Host{Addr: "203.0.113.7"})
	var pe *ansible.PlaybookError
	if !errors.As(err, &pe) || pe.Task != "install agent" || errs.CodeOf(err) != errs.FailedPrecondition || rep.ExitCode != 2 {
		t.Fatalf("failed run: %v (code %v)", err, errs.CodeOf(err))
	}
	if strings.Contains(err.Error(), stubBecomePw) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("the error shows the password: %v", err)
	}
	for _, task := range rep.Tasks {
		if strings.Contains(task.Msg, stubBecomePw) {
			t.Fatalf("a task message shows the password: %q", task.Msg)
		}
	}
}

func TestConfigureTarget(t *testing.T) {
	bin, record := stub(t, `{"event":"stats","hosts":{}}`, 0)
	var asked netip.Addr
	r, err := ansible.New(playbookFile(t), guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)}, ansible.KnownHostsFor(func(ctx context.Context, tg guest.Target) ([]byte, error) {
		asked = tg.PublicIP
		return []byte("[198.51.100.9]:2200 ssh-ed25519 AAAA\n"), nil
	}), &ansible.Options{Binary: bin, Port: 2200, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.51.100.9")
	if err := r.Configure(context.Background(), guest.Target{PublicIP: ip, Family: guest.Linux}, nil); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	b, _ := os.ReadFile(record)
	if asked != ip || !strings.Contains(string(b), `"ansible_host":"198.51.100.9"`) || !strings.Contains(string(b), `"ansible_port":2200`) {
		t.Fatalf("asked for %v; stub saw:\n%s", asked, b)
	}
	// Run has no target to ask KnownHostsFor about.
	_, err = r.Run(context.Background(), ansible.Host{Addr: "198.51.100.9"})
	testkit.WantCode(t, "Run with KnownHostsFor", err, errs.InvalidArgument)
}

func TestNotInstalledAndBadConfig(t *testing.T) {
	cred := guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)}
	r, err := ansible.New(playbookFile(t), cred, ansible.InsecureAcceptAnyHostKey(), &ansible.Options{Binary: "managedvm-no-such-ansible-playbook"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background(), ansible.Host{Addr: "203.0.113.7"})
	if !errors.Is(err, ansible.ErrNotInstalled) || errs.CodeOf(err) != errs.FailedPrecondition || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("missing binary: %v", err)
	}
	insecure := ansible.InsecureAcceptAnyHostKey()
	for name, c := range map[string]struct {
		playbook string
		cred     guest.Credentials
		hk       ansible.HostKeys
		opts     *ansible.Options
		code     errs.Code
	}{
		"no playbook":       {"", cred, insecure, nil, errs.InvalidArgument},
		"no host keys":      {"x.yml", cred, ansible.HostKeys{}, nil, errs.InvalidArgument},
		"empty known_hosts": {"x.yml", cred, ansible.KnownHosts(nil), nil, errs.InvalidArgument},
		"password only":     {"x.yml", guest.Password("ops", "pw"), insecure, nil, errs.Unimplemented},
		"bad tag":           {"x.yml", cred, insecure, &ansible.Options{Tags: []string{"a,b"}}, errs.InvalidArgument},
		"encrypted key":     {"x.yml", guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey), Passphrase: guest.NewSecret("p")}, insecure, nil, errs.Unimplemented},
		"injected username": {"x.yml", guest.Credentials{Username: "ops -oProxyCommand=x", PrivateKey: guest.NewSecret(stubKey)}, insecure, nil, errs.InvalidArgument},
	} {
		if _, err := ansible.New(c.playbook, c.cred, c.hk, c.opts); errs.CodeOf(err) != c.code {
			t.Errorf("%s: %v (code %v), want %v", name, err, errs.CodeOf(err), c.code)
		}
	}
	r, _ = ansible.New(playbookFile(t), cred, ansible.InsecureAcceptAnyHostKey(), nil)
	if _, err := r.Run(context.Background(), ansible.Host{Addr: "a b"}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("bad address: %v", err)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	bin, _ := stub(t, `{"event":"task","host":"target","task":"t","status":"failed","changed":false,"msg":"pw is `+stubBecomePw+`"}`, 2)
	var logs strings.Builder
	r, err := ansible.New(playbookFile(t), guest.Credentials{Username: "ops", PrivateKey: guest.NewSecret(stubKey)}, ansible.InsecureAcceptAnyHostKey(), &ansible.Options{Binary: bin, BecomePassword: guest.NewSecret(stubBecomePw), TempDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background(), ansible.Host{Addr: "203.0.113.7"})
	if err == nil || !strings.Contains(logs.String(), "ansible task") {
		t.Fatalf("run: %v; logs:\n%s", err, logs.String())
	}
	for _, s := range []string{stubBecomePw, "stub-key-canary-material"} {
		if strings.Contains(logs.String(), s) || strings.Contains(err.Error(), s) {
			t.Fatalf("a secret is in the logs or the error")
		}
	}
}
