package tasks_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/guest/tasks"
	"github.com/managedvm/managedvm/internal/testenv"
	xssh "golang.org/x/crypto/ssh"
)

const how = "set MANAGEDVM_SSHD_ADDR, _USER, _KEY and _KNOWN_HOSTS for an OpenSSH server (bash .ci/run starts one: .ci/components/30-sshd.sh)"

func hostKeys(t testing.TB) ssh.HostKeyPolicy {
	t.Helper()
	data, err := os.ReadFile(testenv.Env(t, "MANAGEDVM_SSHD_KNOWN_HOSTS", "OpenSSH sshd", how))
	if err != nil {
		t.Fatal(err)
	}
	hk, err := ssh.KnownHosts(data)
	if err != nil {
		t.Fatal(err)
	}
	return hk
}

func dialRoot(t testing.TB) *guest.Executor {
	t.Helper()
	addr := testenv.Env(t, "MANAGEDVM_SSHD_ADDR", "OpenSSH sshd", how)
	user := testenv.Env(t, "MANAGEDVM_SSHD_USER", "OpenSSH sshd", how)
	key, err := os.ReadFile(testenv.Env(t, "MANAGEDVM_SSHD_KEY", "OpenSSH sshd", how))
	if err != nil {
		t.Fatal(err)
	}
	return dial(t, addr, guest.Credentials{Username: user, PrivateKey: guest.NewSecret(string(key))})
}

func dial(t testing.TB, addr string, cred guest.Credentials) *guest.Executor {
	t.Helper()
	ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: addr, Credentials: cred, HostKeys: hostKeys(t)}, nil)
	if err != nil {
		t.Fatalf("Dial as %s: %v", cred.Username, err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	return ex
}

func newKey(t testing.TB) (private string, authorized string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := xssh.NewPublicKey(pub)
	return string(pem.EncodeToMemory(block)), strings.TrimSpace(string(xssh.MarshalAuthorizedKey(sp))) + " mvm-test"
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func out(t testing.TB, ex *guest.Executor, args ...string) string {
	t.Helper()
	s, err := guest.Output(context.Background(), ex, guest.Command{Args: args})
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return s
}

func exists(t testing.TB, ex *guest.Executor, args ...string) bool {
	t.Helper()
	_, err := ex.Run(context.Background(), guest.Command{Args: args})
	var ee *guest.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %v", args, err)
	}
	return err == nil
}

func wantChanged(t *testing.T, what string, rep tasks.Report, want []bool) {
	t.Helper()
	if len(rep.Results) != len(want) {
		t.Fatalf("%s: %d results, want %d: %+v", what, len(rep.Results), len(want), rep.Results)
	}
	for i, r := range rep.Results {
		if r.Changed != want[i] {
			t.Errorf("%s: task %q changed=%v, want %v", what, r.Task, r.Changed, want[i])
		}
	}
}

func TestEnrollmentTasksOpenSSH(t *testing.T) {
	ctx := context.Background()
	root := dialRoot(t)
	user := uniqueName("mvmop")
	opPriv, opKey := newKey(t)
	dir := out(t, root, "mktemp", "-d", "/tmp/mvm-tasks.XXXXXX")
	t.Cleanup(func() {
		_, _ = root.Run(ctx, guest.Command{Args: []string{"rm", "-rf", "--", dir}})
		_, _ = root.Run(ctx, guest.Command{Script: "userdel -r " + guest.ShellQuote(user) + " 2>/dev/null; rm -f /etc/sudoers.d/managedvm-" + user})
	})
	ts, err := tasks.Enrollment(tasks.Operator{User: user, Groups: []string{"users"}, Shell: "/bin/sh", AuthorizedKeys: []string{opKey}, Packages: []string{"openssh-server"}})
	if err != nil {
		t.Fatal(err)
	}
	file := dir + "/motd 'x'"
	ts = append(ts,
		tasks.File{Path: file, Content: []byte("managed by managedvm\n"), Mode: 0o640, Owner: user, Group: "users", RemoveOnReverse: true},
		tasks.LineInFile{Path: dir + "/conf", Line: "PermitX yes"},
		tasks.LineInFile{Path: dir + "/conf", Line: "Port 2222", Match: "^#?Port "},
	)
	if _, err := root.Run(ctx, guest.Command{Args: []string{"sh", "-c", `printf '#Port 22\nother\n' > "$1"`, "sh", dir + "/conf"}}); err != nil {
		t.Fatal(err)
	}
	set := tasks.NewSet(ts, nil)
	// user, key, sudoers, package (installed), file, line, line
	first := []bool{true, true, true, false, true, true, true}
	none := make([]bool, len(first))

	rep, err := set.Check(ctx, root)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	wantChanged(t, "check before", rep, first)
	if exists(t, root, "id", "-u", user) || exists(t, root, "test", "-e", file) || exists(t, root, "test", "-e", "/etc/sudoers.d/managedvm-"+user) {
		t.Fatal("check mode changed the guest")
	}
	if got := out(t, root, "cat", dir+"/conf"); got != "#Port 22\nother" {
		t.Fatalf("check mode changed the file: %q", got)
	}

	rep, err = set.Apply(ctx, root)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	wantChanged(t, "first apply", rep, first)
	t.Logf("first apply: %+v", rep.Results)
	if got := out(t, root, "getent", "passwd", user); !strings.HasSuffix(got, ":/bin/sh") {
		t.Fatalf("passwd entry %q", got)
	}
	if got := out(t, root, "id", "-nG", user); !strings.Contains(" "+got+" ", " users ") {
		t.Fatalf("groups %q", got)
	}
	if got := out(t, root, "passwd", "-S", user); strings.Fields(got)[1] != "L" {
		t.Fatalf("password not locked: %q", got)
	}
	if got := out(t, root, "stat", "-c", "%a %U:%G", file); got != "640 "+user+":users" {
		t.Fatalf("file stat %q", got)
	}
	if got := out(t, root, "stat", "-c", "%a %u:%g", "/etc/sudoers.d/managedvm-"+user); got != "440 0:0" {
		t.Fatalf("sudoers stat %q", got)
	}
	if got := out(t, root, "cat", dir+"/conf"); got != "Port 2222\nother\nPermitX yes" {
		t.Fatalf("conf %q", got)
	}
	// The operator can now log in with its key and use sudo without a
	// password.
	op := dial(t, testenv.Env(t, "MANAGEDVM_SSHD_ADDR", "OpenSSH sshd", how), guest.Credentials{Username: user, PrivateKey: guest.NewSecret(opPriv)})
	if got := out(t, op, "id", "-un"); got != user {
		t.Fatalf("logged in as %q", got)
	}
	res, err := op.Run(ctx, guest.Command{Args: []string{"id", "-u"}, Sudo: true})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "0" {
		t.Fatalf("sudo as the operator: %v %q", err, res.Stdout)
	}
	_ = op.Close()

	rep, err = set.Apply(ctx, root)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	wantChanged(t, "second apply", rep, none)
	t.Logf("second apply: %+v", rep.Results)
	rep, err = set.Check(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	wantChanged(t, "check after", rep, none)

	// Reverse: file, sudoers, key, user (packages and lines stay).
	rev := tasks.NewSet(ts, &tasks.Options{Check: true})
	rep, err = rev.Revert(ctx, root)
	if err != nil {
		t.Fatalf("Revert (check): %v", err)
	}
	wantChanged(t, "revert check", rep, []bool{true, true, true, true})
	if !exists(t, root, "id", "-u", user) || !exists(t, root, "test", "-e", file) {
		t.Fatal("a check-mode revert changed the guest")
	}
	rep, err = set.Revert(ctx, root)
	if err != nil {
		t.Fatalf("Revert: %v", err)
	}
	wantChanged(t, "revert", rep, []bool{true, true, true, true})
	if exists(t, root, "id", "-u", user) || exists(t, root, "test", "-e", file) || exists(t, root, "test", "-e", "/etc/sudoers.d/managedvm-"+user) {
		t.Fatal("revert left the user, the file or the sudoers drop-in")
	}
	rep, err = set.Revert(ctx, root)
	if err != nil {
		t.Fatalf("second Revert: %v", err)
	}
	wantChanged(t, "second revert", rep, []bool{false, false, false, false})
}

func TestSudoersRejectedByVisudo(t *testing.T) {
	ctx := context.Background()
	root := dialRoot(t)
	name := uniqueName("mvmbad")
	set := tasks.NewSet([]tasks.Task{tasks.SudoersDropIn{Name: name, Content: "this is not ( a sudoers rule\n"}}, nil)
	_, err := set.Apply(ctx, root)
	var te *tasks.TaskError
	if !errors.As(err, &te) || errs.CodeOf(err) != errs.FailedPrecondition || !strings.Contains(err.Error(), "visudo") {
		t.Fatalf("Apply of a broken rule: %v (code %v)", err, errs.CodeOf(err))
	}
	if exists(t, root, "test", "-e", "/etc/sudoers.d/"+name) {
		t.Fatal("a rule that fails visudo -c was installed")
	}
	if got := out(t, root, "sh", "-c", "ls -A /etc/sudoers.d | grep -c '^\\.mvm' || true"); got != "0" {
		t.Fatalf("temporary files left in /etc/sudoers.d: %s", got)
	}
}

// TestTasksThroughSudo runs tasks as a non-root user whose sudo needs the
// password (fed on stdin by the SSH executor).
func TestTasksThroughSudo(t *testing.T) {
	pwUser, pw := os.Getenv("MANAGEDVM_SSHD_PW_USER"), os.Getenv("MANAGEDVM_SSHD_PW_PASSWORD")
	if pwUser == "" {
		testenv.Missing(t, "sshd user with a password", "set MANAGEDVM_SSHD_PW_USER and MANAGEDVM_SSHD_PW_PASSWORD for a user with a password and sudo (bash .ci/run creates one)")
	}
	ctx := context.Background()
	ex := dial(t, testenv.Env(t, "MANAGEDVM_SSHD_ADDR", "OpenSSH sshd", how), guest.Password(pwUser, pw))
	path := "/etc/" + uniqueName("mvm-sudo-task-")
	t.Cleanup(func() { _, _ = dialRoot(t).Run(ctx, guest.Command{Args: []string{"rm", "-f", path}}) })
	set := tasks.NewSet([]tasks.Task{tasks.File{Path: path, Content: []byte("x\n"), Mode: 0o600, Owner: "root", RemoveOnReverse: true}}, nil)
	for i, want := range []bool{true, false} {
		rep, err := set.Apply(ctx, ex)
		if err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
		wantChanged(t, "apply", rep, []bool{want})
	}
	// Without sudo the same task fails: /etc is root's.
	_, err := tasks.NewSet([]tasks.Task{tasks.FileAbsent{Path: path}}, &tasks.Options{NoSudo: true}).Apply(ctx, ex)
	if err == nil {
		t.Fatal("a non-root user removed a file in /etc without sudo")
	}
	if _, err := set.Revert(ctx, ex); err != nil {
		t.Fatal(err)
	}
}

// TestServiceFallbackOpenSSH exercises the non-systemd path (this machine
// has no systemd as PID 1) with a throwaway init script.
func TestServiceFallbackOpenSSH(t *testing.T) {
	ctx := context.Background()
	root := dialRoot(t)
	if exists(t, root, "test", "-d", "/run/systemd/system") {
		t.Skip("systemd is PID 1 here: the fallback path is not taken")
	}
	if !exists(t, root, "sh", "-c", "command -v service && command -v update-rc.d") {
		testenv.Missing(t, "service and update-rc.d", "apt-get install init-system-helpers")
	}
	name := uniqueName("mvmsvc")
	script := `#!/bin/sh
### BEGIN INIT INFO
# Provides:          ` + name + `
# Required-Start:
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: managedvm test service
### END INIT INFO
state=/run/` + name + `.running
case "$1" in
  start) touch "$state" ;;
  stop) rm -f "$state" ;;
  status) [ -f "$state" ] ;;
  *) exit 3 ;;
esac
`
	if err := root.Upload(ctx, "/etc/init.d/"+name, strings.NewReader(script), guest.UploadOptions{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = root.Run(ctx, guest.Command{Script: "update-rc.d -f " + name + " remove >/dev/null 2>&1; rm -f /etc/init.d/" + name + " /run/" + name + ".running"})
	})
	set := tasks.NewSet([]tasks.Task{tasks.Service{Service: name}}, nil)
	rep, err := set.Check(ctx, root)
	if err != nil || rep.Changed() != 1 {
		t.Fatalf("check: %v %+v", err, rep)
	}
	if exists(t, root, "test", "-e", "/run/"+name+".running") {
		t.Fatal("check mode started the service")
	}
	for i, want := range []int{1, 0} {
		rep, err = set.Apply(ctx, root)
		if err != nil || rep.Changed() != want {
			t.Fatalf("apply %d: %v %+v", i, err, rep)
		}
	}
	if !exists(t, root, "test", "-e", "/run/"+name+".running") || !exists(t, root, "sh", "-c", "ls /etc/rc2.d/S*"+name) {
		t.Fatal("the service is not running and enabled")
	}
	// A service that does not exist fails with the reason.
	_, err = tasks.NewSet([]tasks.Task{tasks.Service{Service: name + "-none"}}, nil).Apply(ctx, root)
	if err == nil || !strings.Contains(err.Error(), "no such service") {
		t.Fatalf("missing service: %v", err)
	}
}

// TestHostnameCheckOpenSSH runs the hostname task in check mode only: this
// machine's name must not change.
func TestHostnameCheckOpenSSH(t *testing.T) {
	ctx := context.Background()
	root := dialRoot(t)
	cur := out(t, root, "hostname")
	before := out(t, root, "sh", "-c", "cat /etc/hostname 2>/dev/null || true")
	if before != "" && before != cur {
		t.Skipf("hostname %q and /etc/hostname %q differ already", cur, before)
	}
	rep, err := tasks.Run(ctx, root, []tasks.Task{tasks.Hostname{Hostname: cur}, tasks.Hostname{Hostname: "mvm-other-name"}}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantChanged(t, "hostname check", rep, []bool{false, true})
	if got := out(t, root, "hostname"); got != cur {
		t.Fatalf("check mode changed the host name to %q", got)
	}
}
