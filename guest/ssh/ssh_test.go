package ssh_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/internal/fakes/sshserver"
	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dialErr(t *testing.T, cfg ssh.Config) error {
	t.Helper()
	ex, err := ssh.Dial(context.Background(), cfg, &ssh.Options{DialTimeout: 5 * time.Second})
	if err == nil {
		_ = ex.Close()
	}
	return err
}

func TestHostKeyPolicies(t *testing.T) {
	f := startFake(t, sshserver.Config{})
	other := startFake(t, sshserver.Config{})
	cfg := ssh.Config{Addr: f.srv.Addr(), Credentials: f.cred}

	// No policy at all is refused before any connection.
	if err := dialErr(t, cfg); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("no policy: %v", err)
	}
	// known_hosts with the right key.
	cfg.HostKeys, _ = ssh.KnownHosts(f.srv.KnownHosts())
	if err := dialErr(t, cfg); err != nil {
		t.Fatalf("known host: %v", err)
	}
	// known_hosts listing the address with another key: a mismatch that
	// names the host and both fingerprints.
	wrong := knownhosts.Line([]string{knownhosts.Normalize(f.srv.Addr())}, other.srv.HostKey()) + "\n"
	cfg.HostKeys, _ = ssh.KnownHosts([]byte(wrong))
	err := dialErr(t, cfg)
	var he *ssh.HostKeyError
	if !errors.As(err, &he) || errs.CodeOf(err) != errs.PermissionDenied {
		t.Fatalf("mismatch: %v (code %v)", err, errs.CodeOf(err))
	}
	got, want := xssh.FingerprintSHA256(f.srv.HostKey()), xssh.FingerprintSHA256(other.srv.HostKey())
	if he.Fingerprint != got || len(he.Known) != 1 || he.Known[0] != want || !strings.Contains(err.Error(), f.srv.Addr()) ||
		!strings.Contains(err.Error(), got) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "MISMATCH") {
		t.Fatalf("mismatch error %q %+v", err, he)
	}
	// An unknown host is refused too.
	cfg.HostKeys, _ = ssh.KnownHosts(other.srv.KnownHosts())
	err = dialErr(t, cfg)
	if !errors.As(err, &he) || len(he.Known) != 0 || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("unknown host: %v", err)
	}
	// Pinned keys: by key and by fingerprint.
	cfg.HostKeys, err = ssh.PinnedKey(string(xssh.MarshalAuthorizedKey(f.srv.HostKey())))
	if err != nil {
		t.Fatal(err)
	}
	if err := dialErr(t, cfg); err != nil {
		t.Fatalf("pinned key: %v", err)
	}
	cfg.HostKeys, _ = ssh.PinnedKey(want)
	if err := dialErr(t, cfg); !errors.As(err, &he) {
		t.Fatalf("wrong pinned fingerprint: %v", err)
	}
	if _, err := ssh.PinnedKey("not a key"); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("PinnedKey(garbage): %v", err)
	}
	// The explicitly insecure policy accepts anything.
	cfg.HostKeys = ssh.InsecureAcceptAnyHostKey()
	if err := dialErr(t, cfg); err != nil {
		t.Fatalf("insecure: %v", err)
	}
	if !strings.Contains(cfg.HostKeys.String(), "INSECURE") {
		t.Fatalf("insecure policy's name %q", cfg.HostKeys)
	}
}

func TestTrustOnFirstUse(t *testing.T) {
	f := startFake(t, sshserver.Config{})
	other := startFake(t, sshserver.Config{})
	var learned []string
	tofu, err := ssh.TrustOnFirstUse(nil, func(host, line string) error {
		learned = append(learned, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dialErr(t, ssh.Config{Addr: f.srv.Addr(), Credentials: f.cred, HostKeys: tofu}); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if len(learned) != 1 || strings.TrimSpace(learned[0]) != strings.TrimSpace(string(f.srv.KnownHosts())) {
		t.Fatalf("learned %q, want %q", learned, f.srv.KnownHosts())
	}
	// With the learned line persisted, the host is known; a different key
	// for it is refused and learn is not asked.
	tofu, _ = ssh.TrustOnFirstUse([]byte(learned[0]+"\n"), func(host, line string) error {
		t.Errorf("learn called for a known host %s", host)
		return nil
	})
	if err := dialErr(t, ssh.Config{Addr: f.srv.Addr(), Credentials: f.cred, HostKeys: tofu}); err != nil {
		t.Fatalf("known host: %v", err)
	}
	impostor := strings.Replace(learned[0], strings.Fields(learned[0])[2], strings.Fields(strings.TrimSpace(string(other.srv.KnownHosts())))[2], 1)
	tofu, _ = ssh.TrustOnFirstUse([]byte(impostor+"\n"), func(host, line string) error {
		t.Errorf("learn called for a host with a changed key")
		return nil
	})
	var he *ssh.HostKeyError
	if err := dialErr(t, ssh.Config{Addr: f.srv.Addr(), Credentials: f.cred, HostKeys: tofu}); !errors.As(err, &he) {
		t.Fatalf("changed key under TOFU: %v", err)
	}
	// learn refusing refuses the host.
	tofu, _ = ssh.TrustOnFirstUse(nil, func(string, string) error { return errors.New("store full") })
	if err := dialErr(t, ssh.Config{Addr: f.srv.Addr(), Credentials: f.cred, HostKeys: tofu}); errs.CodeOf(err) != errs.PermissionDenied {
		t.Fatalf("learn failing: %v", err)
	}
}

func TestAuthMethods(t *testing.T) {
	const pw = "pa55-w0rd canary"
	f := startFake(t, sshserver.Config{User: "alice", Password: pw})
	hk, _ := ssh.KnownHosts(f.srv.KnownHosts())
	try := func(cred guest.Credentials) error {
		return dialErr(t, ssh.Config{Addr: f.srv.Addr(), Credentials: cred, HostKeys: hk})
	}
	if err := try(guest.Password("alice", pw)); err != nil {
		t.Fatalf("password: %v", err)
	}
	err := try(guest.Password("alice", "wrong"))
	if errs.CodeOf(err) != errs.Unauthenticated {
		t.Fatalf("wrong password: %v (code %v)", err, errs.CodeOf(err))
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("the error shows the password: %v", err)
	}
	// Keys with a passphrase.
	key, pub := clientKey(t, "open sesame")
	f2 := startFake(t, sshserver.Config{User: "alice", AuthorizedKeys: []xssh.PublicKey{pub}})
	hk2, _ := ssh.KnownHosts(f2.srv.KnownHosts())
	cred := guest.Credentials{Username: "alice", PrivateKey: guest.NewSecret(key), Passphrase: guest.NewSecret("open sesame")}
	if err := dialErr(t, ssh.Config{Addr: f2.srv.Addr(), Credentials: cred, HostKeys: hk2}); err != nil {
		t.Fatalf("key with passphrase: %v", err)
	}
	cred.Passphrase = guest.Secret{}
	if err := dialErr(t, ssh.Config{Addr: f2.srv.Addr(), Credentials: cred, HostKeys: hk2}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("encrypted key without passphrase: %v", err)
	}
	cred.Passphrase = guest.NewSecret("wrong")
	err = dialErr(t, ssh.Config{Addr: f2.srv.Addr(), Credentials: cred, HostKeys: hk2})
	if errs.CodeOf(err) != errs.InvalidArgument || strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	// Key and password together: a server that only takes the password.
	other, _ := clientKey(t, "")
	both := guest.Credentials{Username: "alice", PrivateKey: guest.NewSecret(other), Password: guest.NewSecret(pw)}
	if err := try(both); err != nil {
		t.Fatalf("key+password against a password server: %v", err)
	}
}

func TestKeyboardInteractiveOnly(t *testing.T) {
	const pw = "kbd-secret"
	f := startFake(t, sshserver.Config{User: "bob", Password: pw, KeyboardInteractiveOnly: true})
	hk, _ := ssh.KnownHosts(f.srv.KnownHosts())
	if err := dialErr(t, ssh.Config{Addr: f.srv.Addr(), Credentials: guest.Password("bob", pw), HostKeys: hk}); err != nil {
		t.Fatalf("keyboard-interactive: %v", err)
	}
	methods := strings.Join(f.srv.AuthMethods(), ",")
	if !strings.Contains(methods, "keyboard-interactive") || strings.Contains(methods, "password") {
		t.Fatalf("methods tried: %s", methods)
	}
	if err := dialErr(t, ssh.Config{Addr: f.srv.Addr(), Credentials: guest.Password("bob", "nope"), HostKeys: hk}); errs.CodeOf(err) != errs.Unauthenticated {
		t.Fatalf("wrong keyboard-interactive password: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	f := startFake(t, sshserver.Config{})
	addr := f.srv.Addr()
	hk, _ := ssh.KnownHosts(f.srv.KnownHosts())
	_ = f.srv.Close()
	if err := dialErr(t, ssh.Config{Addr: addr, Credentials: f.cred, HostKeys: hk}); errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("closed port: %v (code %v)", err, errs.CodeOf(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ssh.Dial(ctx, ssh.Config{Addr: addr, Credentials: f.cred, HostKeys: hk}, nil); errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("canceled dial: %v", err)
	}
}

func TestSessionLostAndReconnect(t *testing.T) {
	f := startFake(t, sshserver.Config{})
	ex := f.dial(t, nil)
	ctx := context.Background()
	out := &startedWriter{seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := ex.Run(ctx, guest.Command{Script: "echo started; exec sleep 30", Stdout: out})
		done <- err
	}()
	<-out.seen
	f.srv.DropConnections()
	select {
	case err := <-done:
		if !errors.Is(err, guest.ErrSessionLost) || errs.CodeOf(err) != errs.OutcomeUnknown {
			t.Fatalf("dropped connection: %v (code %v)", err, errs.CodeOf(err))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the connection dropped")
	}
	// The next call dials again.
	res, err := ex.Run(ctx, guest.Command{Args: []string{"echo", "back"}})
	if err != nil || string(res.Stdout) != "back\n" {
		t.Fatalf("after reconnect: %v %q", err, res.Stdout)
	}
}

// A server that does not answer a session open holds Run and Upload only
// until their context ends (x/crypto/ssh alone waits for the answer
// forever), and the executor works again once the server answers.
func TestUnansweredSessionOpen(t *testing.T) {
	f := startFake(t, sshserver.Config{})
	ex := f.dial(t, nil)
	echo := guest.Command{Args: []string{"echo", "ok"}}
	if _, err := ex.Run(t.Context(), echo); err != nil {
		t.Fatal(err)
	}
	f.srv.StallChannelOpens(true)
	dir := t.TempDir()
	for name, call := range map[string]func(context.Context) error{
		"Run": func(ctx context.Context) error { _, err := ex.Run(ctx, echo); return err },
		"Upload": func(ctx context.Context) error {
			return ex.Upload(ctx, dir+"/f", strings.NewReader("data"), guest.UploadOptions{})
		},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- call(ctx) }()
		select {
		case err := <-done:
			if errs.CodeOf(err) != errs.DeadlineExceeded {
				t.Fatalf("%s against a server that does not answer: %v (code %v), want DeadlineExceeded", name, err, errs.CodeOf(err))
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s against a server that does not answer did not return when its context ended", name)
		}
		cancel()
	}
	f.srv.StallChannelOpens(false)
	if res, err := ex.Run(t.Context(), echo); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("once the server answers again: %v %q", err, res.Stdout)
	}
}

type startedWriter struct {
	once sync.Once
	seen chan struct{}
}

func (w *startedWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "started") {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func TestSignalError(t *testing.T) {
	f := startFake(t, sshserver.Config{})
	ex := f.dial(t, nil)
	_, err := ex.Run(context.Background(), guest.Command{Script: "kill -KILL $$"})
	var se *ssh.SignalError
	if !errors.As(err, &se) || se.Signal != "KILL" || errs.CodeOf(err) != errs.OutcomeUnknown {
		t.Fatalf("command killed by a signal: %v (%T)", err, err)
	}
}

func TestSudoPasswordNeverOnCommandLine(t *testing.T) {
	// The fake runs commands as the current user; a sudo stand-in on PATH
	// checks the protocol: prompt on stderr, password on stdin.
	if os.Geteuid() != 0 {
		t.Skip("needs root to place a sudo stand-in")
	}
	const pw = "sudo-canary-pw"
	dir := t.TempDir()
	stub := `#!/bin/sh
# sudo -H -S -p PROMPT -- /bin/sh -c LINE
prompt=$4; shift 5
printf '%s' "$prompt" >&2
IFS= read -r got
[ "$got" = "` + pw + `" ] || { echo "Sorry, try again." >&2; printf '%s' "$prompt" >&2; IFS= read -r got; echo "sudo: 1 incorrect password attempt" >&2; exit 1; }
exec "$@"
`
	if err := os.WriteFile(dir+"/sudo", []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	key, pub := clientKey(t, "")
	srv, err := sshserver.Start(sshserver.Config{AuthorizedKeys: []xssh.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hk, _ := ssh.KnownHosts(srv.KnownHosts())
	dialAs := func(pass string) *guest.Executor {
		ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: srv.Addr(), HostKeys: hk,
			Credentials: guest.Credentials{Username: "operator", PrivateKey: guest.NewSecret(key), Password: guest.NewSecret(pass)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ex.Close() })
		return ex
	}
	ex := dialAs(pw)
	res, err := ex.Run(context.Background(), guest.Command{Args: []string{"cat"}, Sudo: true, Stdin: strings.NewReader("payload\n")})
	if err != nil || string(res.Stdout) != "payload\n" || len(res.Stderr) != 0 {
		t.Fatalf("sudo cat: %v stdout %q stderr %q", err, res.Stdout, res.Stderr)
	}
	_, err = dialAs("wrong-pw").Run(context.Background(), guest.Command{Args: []string{"true"}, Sudo: true})
	if errs.CodeOf(err) != errs.PermissionDenied || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("wrong sudo password: %v (code %v)", err, errs.CodeOf(err))
	}
	for _, line := range srv.Execs() {
		if strings.Contains(line, pw) || strings.Contains(line, "wrong-pw") {
			t.Fatalf("a password reached a command line: %q", line)
		}
	}
}

func TestPasswordLoginOpenSSH(t *testing.T) {
	r := sshdEnv(t)
	ex := r.dialPassword(t)
	res, err := ex.Run(context.Background(), guest.Command{Args: []string{"id", "-un"}, Sudo: true})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "root" {
		t.Fatalf("sudo id: %v %q", err, res.Stdout)
	}
	_, err = ssh.Dial(context.Background(), ssh.Config{Addr: r.addr, HostKeys: r.hostKeys(t), Credentials: guest.Password(r.pwUser, "not-it")}, &ssh.Options{DialTimeout: 20 * time.Second})
	if errs.CodeOf(err) != errs.Unauthenticated || strings.Contains(err.Error(), "not-it") {
		t.Fatalf("wrong login password: %v (code %v)", err, errs.CodeOf(err))
	}
}

func TestDialer(t *testing.T) {
	f := startFake(t, sshserver.Config{})
	ap := netip.MustParseAddrPort(f.srv.Addr())
	d := ssh.Dialer(ssh.DialerConfig{
		Port: ap.Port(),
		HostKeys: func(ctx context.Context, tg guest.Target) (ssh.HostKeyPolicy, error) {
			return ssh.KnownHosts(f.srv.KnownHosts())
		},
	})
	ex, err := d.Dial(context.Background(), guest.Target{Family: guest.Linux, PublicIP: ap.Addr()}, f.cred)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer ex.Close()
	if out, err := guest.Output(context.Background(), ex, guest.Command{Args: []string{"echo", "hi"}}); err != nil || out != "hi" {
		t.Fatalf("Run: %v %q", err, out)
	}
	if _, err := d.Dial(context.Background(), guest.Target{Family: guest.Windows, PublicIP: ap.Addr()}, f.cred); errs.CodeOf(err) != errs.Unimplemented {
		t.Fatalf("Windows target: %v", err)
	}
	if _, err := d.Dial(context.Background(), guest.Target{Family: guest.Linux}, f.cred); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("no public IP: %v", err)
	}
}

func checkOwnerUpload(t *testing.T, ex *guest.Executor, dir string) {
	t.Helper()
	ctx := context.Background()
	p := dir + "/owned file"
	if err := ex.Upload(ctx, p, strings.NewReader("data"), guest.UploadOptions{Mode: 0o640, Owner: "nobody:nogroup"}); err != nil {
		t.Fatalf("Upload with owner: %v", err)
	}
	got, err := guest.Output(ctx, ex, guest.Command{Args: []string{"stat", "-c", "%U:%G %a", p}})
	if err != nil || got != "nobody:nogroup 640" {
		t.Fatalf("owner and mode %q %v", got, err)
	}
	// A bad owner is refused before anything happens; an unknown one
	// fails and leaves nothing behind.
	if err := ex.Upload(ctx, dir+"/x", strings.NewReader("data"), guest.UploadOptions{Owner: "a;b"}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("malformed owner: %v", err)
	}
	if err := ex.Upload(ctx, dir+"/y", strings.NewReader("data"), guest.UploadOptions{Owner: "managedvm-no-such-user"}); err == nil {
		t.Fatal("unknown owner accepted")
	}
	if got, _ := guest.Output(ctx, ex, guest.Command{Args: []string{"ls", "-A", dir}}); got != "owned file" {
		t.Fatalf("directory holds %q", got)
	}
}

func TestUploadOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	for _, noSFTP := range []bool{false, true} {
		f := startFake(t, sshserver.Config{NoSFTP: noSFTP})
		checkOwnerUpload(t, f.dial(t, nil), t.TempDir())
	}
}

func TestUploadOwnerOpenSSH(t *testing.T) {
	r := sshdEnv(t)
	for _, noSFTP := range []bool{false, true} {
		ex := r.dialRoot(t, &ssh.Options{NoSFTP: noSFTP})
		checkOwnerUpload(t, ex, guestTempDir(t, ex))
	}
}

// TestCancelSudoCommandOpenSSH: canceling a command that runs through sudo
// (as root, started by a non-root login) stops the root process too.
func TestCancelSudoCommandOpenSSH(t *testing.T) {
	r := sshdEnv(t)
	if r.pwUser == "" {
		t.Skip("no MANAGEDVM_SSHD_PW_USER")
	}
	ex := r.dialPassword(t)
	root := r.dialRoot(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &startedWriter{seen: make(chan struct{})}
	var buf strings.Builder
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		buf.Write(p)
		mu.Unlock()
		return out.Write(p)
	})
	done := make(chan error, 1)
	go func() {
		_, err := ex.Run(ctx, guest.Command{Script: "echo $$; id -u; echo started; exec sleep 60", Sudo: true, Stdout: w})
		done <- err
	}()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("the command ended early: %v", err)
	}
	cancel()
	start := time.Now()
	if err := <-done; errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("canceled sudo command: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Run took %v to return after cancel", took)
	}
	mu.Lock()
	lines := strings.Fields(buf.String())
	mu.Unlock()
	if len(lines) < 2 || lines[1] != "0" {
		t.Fatalf("the command did not run as root: %q", lines)
	}
	pid := lines[0]
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := root.Run(context.Background(), guest.Command{Args: []string{"kill", "-0", pid}})
		var ee *guest.ExitError
		if errors.As(err, &ee) {
			return // gone
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("root process %s still runs 10 s after its Run was canceled", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestLogsAndErrorsHoldNoSecrets(t *testing.T) {
	const pw, argCanary = "pw-canary-1234", "arg-canary-5678"
	key, pub := clientKey(t, "")
	srv, err := sshserver.Start(sshserver.Config{User: "carol", Password: pw, AuthorizedKeys: []xssh.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	hk, _ := ssh.KnownHosts(srv.KnownHosts())
	cred := guest.Credentials{Username: "carol", Password: guest.NewSecret(pw), PrivateKey: guest.NewSecret(key)}
	ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: srv.Addr(), Credentials: cred, HostKeys: hk}, &ssh.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	_, _ = ex.Run(context.Background(), guest.Command{Args: []string{"sh", "-c", "exit 3", argCanary}})
	_, _ = ex.Run(context.Background(), guest.Command{Script: "echo " + argCanary})
	_ = ex.Upload(context.Background(), t.TempDir()+"/f", strings.NewReader(argCanary), guest.UploadOptions{})
	_, errBad := ssh.Dial(context.Background(), ssh.Config{Addr: srv.Addr(), Credentials: guest.Password("carol", "bad-"+pw), HostKeys: hk}, &ssh.Options{Logger: logger})
	mu.Lock()
	text := logs.String()
	mu.Unlock()
	if !strings.Contains(text, "ssh run") {
		t.Fatalf("no debug logs at all, so this test proves nothing:\n%s", text)
	}
	keyLine := strings.Split(key, "\n")[1]
	for _, secret := range []string{pw, argCanary, keyLine} {
		if strings.Contains(text, secret) || strings.Contains(errBad.Error(), secret) || strings.Contains(fmt.Sprintf("%+v %#v", ex, ex), secret) {
			t.Fatalf("a secret (%q) shows in logs, errors or the executor's printed form", secret[:6])
		}
	}
}
