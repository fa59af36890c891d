package ansible_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ansible"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/internal/testenv"
)

const how = "set MANAGEDVM_SSHD_ADDR, _USER, _KEY and _KNOWN_HOSTS for an OpenSSH server (bash .ci/run starts one: .ci/components/30-sshd.sh)"

type env struct {
	addr, user, key string
	knownHosts      []byte
}

func realEnv(t *testing.T) env {
	t.Helper()
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		testenv.Missing(t, "ansible-playbook", "apt-get install ansible-core (bash .ci/run installs it)")
	}
	e := env{
		addr: testenv.Env(t, "MANAGEDVM_SSHD_ADDR", "OpenSSH sshd", how),
		user: testenv.Env(t, "MANAGEDVM_SSHD_USER", "OpenSSH sshd", how),
	}
	key, err := os.ReadFile(testenv.Env(t, "MANAGEDVM_SSHD_KEY", "OpenSSH sshd", how))
	if err != nil {
		t.Fatal(err)
	}
	e.key = string(key)
	e.knownHosts, err = os.ReadFile(testenv.Env(t, "MANAGEDVM_SSHD_KNOWN_HOSTS", "OpenSSH sshd", how))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e env) exec(t *testing.T) *guest.Executor {
	t.Helper()
	hk, err := ssh.KnownHosts(e.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: e.addr, HostKeys: hk, Credentials: guest.Credentials{Username: e.user, PrivateKey: guest.NewSecret(e.key)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	return ex
}

func (e env) host(t *testing.T) ansible.Host {
	t.Helper()
	h, err := ansible.HostFromAddr("target", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// noLeftovers fails if dir (the runs' TempDir) holds anything.
func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	names, _ := os.ReadDir(dir)
	if len(names) != 0 {
		t.Fatalf("the run left %d entries in its temporary directory (key file?): %v", len(names), names[0].Name())
	}
}

func TestPlaybookTwiceOpenSSH(t *testing.T) {
	e := realEnv(t)
	ctx := context.Background()
	ex := e.exec(t)
	user := unique("mvmans")
	dir, err := guest.Output(ctx, ex, guest.Command{Args: []string{"mktemp", "-d", "/tmp/mvm-ansible.XXXXXX"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ex.Run(ctx, guest.Command{Script: "rm -rf " + guest.ShellQuote(dir) + "; userdel -r " + guest.ShellQuote(user) + " 2>/dev/null || true"})
	})
	tmp := t.TempDir()
	playbook := "testdata/enroll.yml"
	cred := guest.Credentials{Username: e.user, PrivateKey: guest.NewSecret(e.key)}
	hk := ansible.KnownHosts(e.knownHosts)
	cfg := ansible.Options{
		ExtraVars: map[string]any{"mvm_user": user, "mvm_dir": dir},
		TempDir:   tmp,
		Timeout:   5 * time.Minute,
	}

	// Check mode first: it reports changes and makes none.
	check := cfg
	check.Check = true
	r, err := ansible.New(playbook, cred, hk, &check)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(ctx, e.host(t))
	if err != nil {
		t.Fatalf("check run: %v", err)
	}
	if rep.Changed() == 0 {
		t.Fatalf("check mode reported no changes: %+v", rep)
	}
	if _, err := ex.Run(ctx, guest.Command{Args: []string{"id", "-u", user}}); err == nil {
		t.Fatal("check mode created the user")
	}
	noLeftovers(t, tmp)

	r, err = ansible.New(playbook, cred, hk, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = r.Run(ctx, e.host(t))
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if got := rep.Hosts["target"].Changed; got != 2 {
		t.Fatalf("first run changed %d, want 2: %+v", got, rep)
	}
	if len(rep.Tasks) != 3 || rep.Tasks[0].Task != "operator account" || !rep.Tasks[0].Changed || rep.Tasks[2].Status != "skipped" {
		t.Fatalf("task results %+v", rep.Tasks)
	}
	if got, err := guest.Output(ctx, ex, guest.Command{Args: []string{"stat", "-c", "%a", dir + "/managed.txt"}}); err != nil || got != "640" {
		t.Fatalf("file mode %q %v", got, err)
	}
	noLeftovers(t, tmp)

	rep, err = r.Run(ctx, e.host(t))
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if s := rep.Hosts["target"]; s.Changed != 0 || s.OK != 2 {
		t.Fatalf("second run: %+v, want changed=0 ok=2", s)
	}

	// Tags select tasks.
	tagged := cfg
	tagged.Tags = []string{"file"}
	r, _ = ansible.New(playbook, cred, hk, &tagged)
	rep, err = r.Run(ctx, e.host(t))
	if err != nil || len(rep.Tasks) != 1 || rep.Tasks[0].Task != "marker file" {
		t.Fatalf("tagged run: %v %+v", err, rep)
	}

	// A failing task: its name and message are in the error.
	failing := cfg
	failing.ExtraVars = map[string]any{"mvm_user": user, "mvm_dir": dir, "mvm_fail": true}
	r, _ = ansible.New(playbook, cred, hk, &failing)
	rep, err = r.Run(ctx, e.host(t))
	var pe *ansible.PlaybookError
	if !errors.As(err, &pe) || pe.Task != "might fail" || pe.Status != "failed" || errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("failing run: %v (code %v)", err, errs.CodeOf(err))
	}
	if !strings.Contains(err.Error(), "might fail") || rep == nil || rep.ExitCode != 2 {
		t.Fatalf("failing run error %q, report %+v", err, rep)
	}
	noLeftovers(t, tmp)
}

func TestHostKeyMismatchIsUnreachable(t *testing.T) {
	e := realEnv(t)
	// known_hosts naming the address with some other key.
	other := []byte(strings.SplitN(string(e.knownHosts), " ", 2)[0] + " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
	r, err := ansible.New("testdata/enroll.yml", guest.Credentials{Username: e.user, PrivateKey: guest.NewSecret(e.key)}, ansible.KnownHosts(other), &ansible.Options{ExtraVars: map[string]any{"mvm_user": "nobody", "mvm_dir": "/nonexistent"}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Run(context.Background(), e.host(t))
	var pe *ansible.PlaybookError
	if !errors.As(err, &pe) || pe.Status != "unreachable" || errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("run against a host with another key: %v (code %v)", err, errs.CodeOf(err))
	}
	if !strings.Contains(strings.ToLower(pe.Msg), "host key") {
		t.Fatalf("message does not mention the host key: %q", pe.Msg)
	}
}

func TestCancelKillsAnsible(t *testing.T) {
	e := realEnv(t)
	tmp := t.TempDir()
	r, err := ansible.New("testdata/sleep.yml", guest.Credentials{Username: e.user, PrivateKey: guest.NewSecret(e.key)}, ansible.KnownHosts(e.knownHosts), &ansible.Options{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	start := time.Now()
	_, err = r.Run(ctx, e.host(t))
	if errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Fatalf("run past its deadline: %v (code %v)", err, errs.CodeOf(err))
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("Run returned %v after start (deadline 4s)", took)
	}
	noLeftovers(t, tmp)
	// No ansible-playbook of this run is left: its process group was killed.
	outb, _ := exec.Command("pgrep", "-f", filepath.Join(tmp, "managedvm-ansible-")).Output()
	if len(strings.TrimSpace(string(outb))) != 0 {
		t.Fatalf("processes of the canceled run remain: %s", outb)
	}
}

func TestBecomePasswordOpenSSH(t *testing.T) {
	e := realEnv(t)
	pwUser, pw := os.Getenv("MANAGEDVM_SSHD_PW_USER"), os.Getenv("MANAGEDVM_SSHD_PW_PASSWORD")
	if pwUser == "" {
		testenv.Missing(t, "sshd user with a password", "set MANAGEDVM_SSHD_PW_USER and MANAGEDVM_SSHD_PW_PASSWORD for a user with a password and sudo (bash .ci/run creates one)")
	}
	ctx := context.Background()
	root := e.exec(t)
	// Give the password user the CI client key for this test.
	home, err := guest.Output(ctx, root, guest.Command{Script: "getent passwd " + guest.ShellQuote(pwUser) + " | cut -d: -f6"})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(testenv.Env(t, "MANAGEDVM_SSHD_KEY", "OpenSSH sshd", how) + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Upload(ctx, home+"/.ssh/authorized_keys", strings.NewReader(string(pub)), guest.UploadOptions{Mode: 0o600, Owner: pwUser}); err != nil {
		if _, merr := root.Run(ctx, guest.Command{Args: []string{"install", "-d", "-m", "700", "-o", pwUser, home + "/.ssh"}}); merr != nil {
			t.Fatal(merr)
		}
		if err := root.Upload(ctx, home+"/.ssh/authorized_keys", strings.NewReader(string(pub)), guest.UploadOptions{Mode: 0o600, Owner: pwUser}); err != nil {
			t.Fatal(err)
		}
	}
	path := "/etc/" + unique("mvm-become-")
	t.Cleanup(func() {
		_, _ = root.Run(ctx, guest.Command{Args: []string{"rm", "-rf", "--", path, home + "/.ssh"}})
	})
	r, err := ansible.New("testdata/become.yml", guest.Credentials{Username: pwUser, PrivateKey: guest.NewSecret(e.key)}, ansible.KnownHosts(e.knownHosts), &ansible.Options{BecomePassword: guest.NewSecret(pw), ExtraVars: map[string]any{"mvm_path": path}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(ctx, e.host(t))
	if err != nil {
		t.Fatalf("become run: %v", err)
	}
	if rep.Changed() != 1 {
		t.Fatalf("become run: %+v", rep)
	}
	if got, err := guest.Output(ctx, root, guest.Command{Args: []string{"stat", "-c", "%U %a", path}}); err != nil || got != "root 600" {
		t.Fatalf("file %q %v", got, err)
	}
}
