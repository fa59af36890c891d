package winrm_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mzwinrm "github.com/masterzen/winrm"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

func lastRequest(t *testing.T, srv *winrmserver.Server) winrmserver.Request {
	t.Helper()
	reqs := srv.Requests()
	if len(reqs) == 0 {
		t.Fatal("the server received no command")
	}
	return reqs[len(reqs)-1]
}

func TestWrongPasswordIsUnauthenticated(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex, err := winrm.New(g.srv.Host(), guest.Password(testUser, "wrong-"+testPassword), g.options())
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	_, err = ex.Run(t.Context(), guest.Command{Script: "exit 0"})
	if got := errs.CodeOf(err); got != errs.Unauthenticated {
		t.Fatalf("wrong password: %v (code %v), want Unauthenticated", err, got)
	}
	msg := err.Error()
	if !strings.Contains(msg, "NTLM") || strings.Contains(msg, "invalid content type") {
		t.Fatalf("the error should say NTLM was refused: %q", msg)
	}
	if strings.Contains(fmt.Sprintf("%+v %#v", err, err), testPassword) {
		t.Fatal("the error shows the password")
	}
	st := g.srv.Stats()
	if st.AuthFailures == 0 || st.ShellsCreated != 0 || len(g.srv.Requests()) != 0 {
		t.Fatalf("stats after a refused login: %+v", st)
	}
	// Upload is refused the same way and writes nothing.
	dir := g.dir(t)
	err = ex.Upload(t.Context(), dir+`\f`, strings.NewReader("x"), guest.UploadOptions{})
	if errs.CodeOf(err) != errs.Unauthenticated {
		t.Fatalf("Upload with a wrong password: %v", err)
	}
	if ents, _ := os.ReadDir(g.host(t, dir)); len(ents) != 0 {
		t.Fatalf("a refused upload left %v", ents)
	}
}

func TestAccountSpellings(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	for _, user := range []string{testUser, "administrator", testDomain + `\` + testUser, strings.ToLower(testDomain) + `\` + testUser, testUser + "@" + testDomain} {
		t.Run(user, func(t *testing.T) {
			ex, err := winrm.New(g.srv.Host(), guest.Password(user, testPassword), g.options())
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			out, err := guest.Output(t.Context(), ex, guest.Command{Args: []string{"Write-Output", "hi"}})
			if err != nil || out != "hi" {
				t.Fatalf("login as %q: %q, %v", user, out, err)
			}
		})
	}
	for _, user := range []string{"OTHER\\" + testUser, "guest", testUser + "@other"} {
		ex, err := winrm.New(g.srv.Host(), guest.Password(user, testPassword), g.options())
		if err != nil {
			t.Fatal(err)
		}
		_, err = ex.Run(t.Context(), guest.Command{Script: "exit 0"})
		if errs.CodeOf(err) != errs.Unauthenticated {
			t.Errorf("login as %q: %v, want Unauthenticated", user, err)
		}
		ex.Close()
	}
}

func TestBasicAuth(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{AllowBasic: true})
	o := g.options()
	o.Basic = true
	ex := g.executor(t, o)
	if out, err := guest.Output(t.Context(), ex, guest.Command{Script: "Write-Output ok"}); err != nil || out != "ok" {
		t.Fatalf("Basic: %q, %v", out, err)
	}
	bad, err := winrm.New(g.srv.Host(), guest.Password(testUser, "nope"), o)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Run(t.Context(), guest.Command{Script: "exit 0"})
	if errs.CodeOf(err) != errs.Unauthenticated || !strings.Contains(err.Error(), "Basic") {
		t.Fatalf("Basic with a wrong password: %v", err)
	}
}

func TestTLSVerification(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	fp := g.srv.CertSHA256()
	wrong := sha256.Sum256([]byte("another certificate"))
	cases := []struct {
		name string
		opts winrm.Options
		ok   bool
	}{
		{"CA", winrm.Options{CACertPEM: g.srv.CACertPEM()}, true},
		{"system roots", winrm.Options{}, false},
		{"pinned", winrm.Options{PinnedCertSHA256: fp[:]}, true},
		{"wrong pin", winrm.Options{PinnedCertSHA256: wrong[:]}, false},
		{"wrong name", winrm.Options{CACertPEM: g.srv.CACertPEM(), TLSServerName: "other.example"}, false},
		{"name localhost", winrm.Options{CACertPEM: g.srv.CACertPEM(), TLSServerName: "localhost"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := g.srv.Stats()
			o := c.opts
			o.Port = g.srv.Port()
			ex := g.executor(t, &o)
			_, err := ex.Run(t.Context(), guest.Command{Script: "exit 0"})
			if c.ok {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			// A refused certificate is PermissionDenied, the code of SSH's
			// host-key mismatch: retrying cannot help.
			if errs.CodeOf(err) != errs.PermissionDenied || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("Run against an untrusted certificate: %v (code %v), want PermissionDenied naming the certificate", err, errs.CodeOf(err))
			}
			if errs.Is(err, errs.Unavailable) {
				t.Fatal("a refused certificate reads as retryable")
			}
			if after := g.srv.Stats(); after.Handshakes != before.Handshakes || after.ShellsCreated != before.ShellsCreated {
				t.Fatal("credentials reached a server whose certificate was refused")
			}
		})
	}
}

func TestExpiredCertificate(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{CertNotBefore: time.Now().Add(-48 * time.Hour), CertNotAfter: time.Now().Add(-24 * time.Hour)})
	ex := g.executor(t, nil)
	_, err := ex.Run(t.Context(), guest.Command{Script: "exit 0"})
	if errs.CodeOf(err) != errs.PermissionDenied || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired certificate: %v (code %v), want PermissionDenied", err, errs.CodeOf(err))
	}
	if g.srv.Stats().Handshakes != 0 {
		t.Fatal("NTLM went to a server with an expired certificate")
	}
}

func TestNewRejects(t *testing.T) {
	creds := guest.Password(testUser, testPassword)
	for name, c := range map[string]struct {
		host  string
		creds guest.Credentials
		opts  *winrm.Options
	}{
		"no host":          {"", creds, nil},
		"no user":          {"h", guest.Password("", "x"), nil},
		"no password":      {"h", guest.Credentials{Username: "u"}, nil},
		"short pin":        {"h", creds, &winrm.Options{PinnedCertSHA256: []byte{1, 2}}},
		"bad CA":           {"h", creds, &winrm.Options{CACertPEM: []byte("not pem")}},
		"CA with HTTP":     {"h", creds, &winrm.Options{HTTP: true, CACertPEM: []byte("x")}},
		"tiny envelope":    {"h", creds, &winrm.Options{EnvelopeSize: 100}},
		"negative timeout": {"h", creds, &winrm.Options{OperationTimeout: -1}},
	} {
		_, err := winrm.New(c.host, c.creds, c.opts)
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
		if err != nil && strings.Contains(err.Error(), testPassword) {
			t.Errorf("%s: the error shows the password", name)
		}
	}
}

func TestDefaultParametersUntouched(t *testing.T) {
	before := *mzwinrm.DefaultParameters
	g := newFakeGuest(t, winrmserver.Options{})
	o := g.options()
	o.OperationTimeout = 3 * time.Second
	o.EnvelopeSize = 65536
	ex := g.executor(t, o)
	if _, err := ex.Run(t.Context(), guest.Command{Script: "exit 0"}); err != nil {
		t.Fatal(err)
	}
	after := *mzwinrm.DefaultParameters
	if before.Timeout != after.Timeout || before.EnvelopeSize != after.EnvelopeSize || before.Locale != after.Locale ||
		after.TransportDecorator != nil || after.Dial != nil {
		t.Fatalf("winrm.DefaultParameters changed: %+v -> %+v", before, after)
	}
}

func TestExactPowerShellSent(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := g.executor(t, nil)
	cmd := guest.Command{Args: []string{"Write-Output", "it's", "$HOME", "a;b"}, Env: map[string]string{"MVM_X": "v"}}
	res, err := ex.Run(t.Context(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "it's\r\n$HOME\r\na;b\r\n" {
		t.Fatalf("stdout %q", got)
	}
	r := lastRequest(t, g.srv)
	want := "$ProgressPreference = 'SilentlyContinue'\n$ErrorActionPreference = 'Stop'\n$env:MVM_X = 'v'\n& 'Write-Output' 'it''s' '$HOME' 'a;b'\nexit $LASTEXITCODE\n"
	if !r.PowerShell || r.Script != want {
		t.Fatalf("decoded script %q, want %q", r.Script, want)
	}
	if r.ConsoleModeStdin {
		t.Fatal("standard input is sent as a console, not a pipe (WINRS_CONSOLEMODE_STDIN)")
	}
	line, err := winrm.CommandLine(cmd)
	if err != nil || r.CommandLine != line || !strings.HasPrefix(line, "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ") {
		t.Fatalf("command line %q (CommandLine gives %q, %v)", r.CommandLine, line, err)
	}
}

func TestScriptTooLong(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := g.executor(t, nil)
	_, err := ex.Run(t.Context(), guest.Command{Script: "Write-Output '" + strings.Repeat("x", 4000) + "'"})
	if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), "8191") {
		t.Fatalf("a script too long for a command line: %v", err)
	}
	if len(g.srv.Requests()) != 0 {
		t.Fatal("the too-long command was sent")
	}
}

func TestRunCmd(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := driverOf(t, g.executor(t, nil))
	res, err := ex.RunCmd(t.Context(), "echo hello", guest.Command{})
	if err != nil || string(res.Stdout) != "hello\r\n" {
		t.Fatalf("echo: %q, %v", res.Stdout, err)
	}
	res, err = ex.RunCmd(t.Context(), "echo a]]>b<&>", guest.Command{})
	if err != nil || string(res.Stdout) != "a]]>b<&>\r\n" {
		t.Fatalf("echo with XML specials: %q, %v", res.Stdout, err)
	}
	if r := lastRequest(t, g.srv); r.PowerShell || r.CommandLine != "echo a]]>b<&>" {
		t.Fatalf("request %+v", r)
	}
	_, err = ex.RunCmd(t.Context(), "exit /b 7", guest.Command{})
	var ee *guest.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("exit /b 7: %v", err)
	}
	n := len(g.srv.Requests())
	for _, bad := range []string{"", "a\nb", "a\x00"} {
		if _, err := ex.RunCmd(t.Context(), bad, guest.Command{}); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("RunCmd(%q): %v", bad, err)
		}
	}
	if _, err := ex.RunCmd(t.Context(), "echo", guest.Command{Script: "x"}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("RunCmd with a Script: %v", err)
	}
	if len(g.srv.Requests()) != n {
		t.Fatal("a rejected RunCmd reached the guest")
	}
}

func TestSudoUnimplemented(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := g.executor(t, nil)
	if _, err := ex.Run(t.Context(), guest.Command{Script: "exit 0", Sudo: true}); errs.CodeOf(err) != errs.Unimplemented {
		t.Fatalf("Sudo: %v", err)
	}
	if len(g.srv.Requests()) != 0 {
		t.Fatal("the Sudo command was sent")
	}
}

func TestShellReuse(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := g.executor(t, nil)
	for i := range 5 {
		if _, err := ex.Run(t.Context(), guest.Command{Script: fmt.Sprintf("exit %d", 0*i)}); err != nil {
			t.Fatal(err)
		}
	}
	if st := g.srv.Stats(); st.ShellsCreated != 1 || st.Commands != 5 {
		t.Fatalf("5 sequential commands: %+v, want one shell", st)
	}
	// A shell the guest forgot (idle timeout) is replaced, once.
	g.srv.ExpireShells()
	if out, err := guest.Output(t.Context(), ex, guest.Command{Script: "Write-Output again"}); err != nil || out != "again" {
		t.Fatalf("after the shells expired: %q, %v", out, err)
	}
	if st := g.srv.Stats(); st.ShellsCreated != 2 {
		t.Fatalf("after expiry: %+v, want a second shell", st)
	}
	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	if st := g.srv.Stats(); st.OpenShells != 0 {
		t.Fatalf("Close left %d shells open", st.OpenShells)
	}

	// Without reuse, every command has its own shell, deleted after it.
	g2 := newFakeGuest(t, winrmserver.Options{})
	o := g2.options()
	o.MaxIdleShells = -1
	ex2 := g2.executor(t, o)
	for range 3 {
		if _, err := ex2.Run(t.Context(), guest.Command{Script: "exit 0"}); err != nil {
			t.Fatal(err)
		}
	}
	if st := g2.srv.Stats(); st.ShellsCreated != 3 || st.ShellsDeleted != 3 || st.OpenShells != 0 {
		t.Fatalf("no reuse: %+v", st)
	}
}

func TestCancelSignalsAndDeletesShell(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := g.executor(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	out := &signalWriter{want: "started", seen: started}
	done := make(chan error, 1)
	go func() {
		_, err := ex.Run(ctx, guest.Command{Script: "Write-Output started\nStart-Sleep -Seconds 30", Stdout: out})
		done <- err
	}()
	<-started
	pid := lastRequest(t, g.srv).PID
	cancel()
	err := <-done
	if errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("canceled Run: %v", err)
	}
	st := g.srv.Stats()
	if st.Signals != 1 || st.OpenShells != 0 || st.ShellsDeleted != 1 {
		t.Fatalf("after cancel: %+v, want one Signal and the shell deleted", st)
	}
	// The fake process ended.
	if _, err := ex.Run(t.Context(), guest.Command{Script: fmt.Sprintf("if (Get-Process -Id %d -ErrorAction SilentlyContinue) { exit 0 } else { exit 1 }", pid)}); err == nil {
		t.Fatal("the remote process still runs")
	}
}

type signalWriter struct {
	buf  bytes.Buffer
	want string
	seen chan struct{}
	done bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}

func TestSessionLost(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := g.executor(t, nil)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := ex.Run(t.Context(), guest.Command{Script: "Write-Output started\nStart-Sleep -Seconds 30", Stdout: &signalWriter{want: "started", seen: started}})
		done <- err
	}()
	<-started
	if err := g.srv.WaitReceivePending(t.Context()); err != nil {
		t.Fatal(err)
	}
	g.srv.CloseClientConnections()
	err := <-done
	if !errors.Is(err, guest.ErrSessionLost) || errs.CodeOf(err) != errs.OutcomeUnknown {
		t.Fatalf("connection dropped mid-command: %v (code %v), want ErrSessionLost", err, errs.CodeOf(err))
	}
}

func TestLargeUploadChunked(t *testing.T) {
	const envelope = 32 << 10
	g := newFakeGuest(t, winrmserver.Options{MaxEnvelopeSize: envelope})
	o := g.options()
	o.EnvelopeSize = envelope
	ex := g.executor(t, o)
	content := make([]byte, 3<<20+12345)
	for i := range content {
		content[i] = byte(i*31) ^ byte(i>>9)
	}
	dir := g.dir(t)
	path := dir + `\big file.bin`
	if err := ex.Upload(t.Context(), path, bytes.NewReader(content), guest.UploadOptions{}); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	got, err := os.ReadFile(g.host(t, path))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("uploaded file: %d bytes, %v; want %d", len(got), err, len(content))
	}
	st := g.srv.Stats()
	if min := len(content) * 4 / 3 / envelope; st.Sends < min {
		t.Fatalf("%d Sends for %d bytes in %d-byte envelopes", st.Sends, len(content), envelope)
	}
	reqs := g.srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d commands for one upload, want 2 (stream, commit)", len(reqs))
	}
	sum := sha256.Sum256(content)
	if !strings.Contains(reqs[1].Script, fmt.Sprintf("if ($h -ne '%X')", sum[:])) || !strings.Contains(reqs[1].Script, "Get-FileHash") {
		t.Fatalf("the commit script does not check the SHA-256:\n%s", reqs[1].Script)
	}
	if ents, _ := os.ReadDir(g.host(t, dir)); len(ents) != 1 {
		t.Fatalf("directory holds %d entries after the upload", len(ents))
	}
}

func TestUploadHashMismatch(t *testing.T) {
	var in *winrmserver.Interpreter
	g := newFakeGuest(t, winrmserver.Options{Handler: func(ctx context.Context, r *winrmserver.Request) int {
		code := in.Handler(ctx, r)
		if strings.Contains(r.Script, "'CreateNew'") {
			// Damage the temporary file, as a faulty transfer would.
			p := strings.SplitN(strings.TrimPrefix(r.Script, "$ProgressPreference = 'SilentlyContinue'\n$ErrorActionPreference = 'Stop'\n$p = '"), "'", 2)[0]
			hp, _ := in.HostPath(p)
			f, _ := os.OpenFile(hp, os.O_APPEND|os.O_WRONLY, 0)
			_, _ = f.Write([]byte("!"))
			_ = f.Close()
		}
		return code
	}})
	in = g.in
	ex := g.executor(t, nil)
	dir := g.dir(t)
	target := dir + `\t.txt`
	if err := os.WriteFile(g.host(t, target), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := ex.Upload(t.Context(), target, strings.NewReader("new content"), guest.UploadOptions{})
	var ee *guest.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("Upload with a damaged transfer: %v", err)
	}
	if b, _ := os.ReadFile(g.host(t, target)); string(b) != "old" {
		t.Fatalf("target reads %q after a failed upload", b)
	}
	if ents, _ := os.ReadDir(g.host(t, dir)); len(ents) != 1 {
		t.Fatalf("a failed upload left %d entries", len(ents))
	}
}

func TestUploadRejects(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := g.executor(t, nil)
	dir := g.dir(t)
	if err := ex.Upload(t.Context(), dir+`\x`, strings.NewReader("x"), guest.UploadOptions{Owner: "bob"}); errs.CodeOf(err) != errs.Unimplemented {
		t.Fatalf("Owner: %v", err)
	}
	if err := ex.Upload(t.Context(), dir+"\\x\ny", strings.NewReader("x"), guest.UploadOptions{}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("newline in path: %v", err)
	}
	if len(g.srv.Requests()) != 0 {
		t.Fatal("a rejected upload reached the guest")
	}
}

func TestDetectFactsWindows(t *testing.T) {
	root := t.TempDir()
	in := winrmserver.NewInterpreter(winrmserver.InterpreterOptions{Root: root, Caption: "Microsoft Windows Server 2019 Standard", Version: "10.0.17763", BuildNumber: "17763", Arch: "ARM64", FreeBytes: 50 << 30, Commands: []string{"choco"}})
	g := newFakeGuest(t, winrmserver.Options{Handler: in.Handler})
	ex := g.executor(t, nil)
	f, err := guest.DetectFacts(t.Context(), ex)
	if err != nil {
		t.Fatal(err)
	}
	want := guest.Facts{Family: guest.Windows, Distribution: "windows", Name: "Microsoft Windows Server 2019 Standard", Version: "10.0.17763", Kernel: "17763", Arch: "ARM64",
		FreeDiskMiB: 50 << 10, PackageManager: "choco", InitSystem: "scm"}
	if f != want {
		t.Fatalf("facts %+v, want %+v", f, want)
	}
	script := lastRequest(t, g.srv).Script
	for _, s := range []string{"Get-CimInstance -ClassName Win32_OperatingSystem", `"NAME=" + $os.Caption`, `"ARCH=" + $env:PROCESSOR_ARCHITECTURE`} {
		if !strings.Contains(script, s) {
			t.Fatalf("the facts script lacks %q:\n%s", s, script)
		}
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	g := newFakeGuest(t, winrmserver.Options{})
	o := g.options()
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ex := g.executor(t, o)
	const canary = "s3cr3t-canary"
	_, _ = ex.Run(t.Context(), guest.Command{Args: []string{"Write-Output", canary}})
	_, _ = ex.Run(t.Context(), guest.Command{Script: "exit 2 # " + canary})
	bad, _ := winrm.New(g.srv.Host(), guest.Password(testUser, "bad-"+testPassword), o)
	_, _ = bad.Run(t.Context(), guest.Command{Script: "exit 0"})
	bad.Close()
	if logs.Len() == 0 {
		t.Fatal("no debug logs at all: the test proves nothing")
	}
	if s := logs.String(); strings.Contains(s, canary) || strings.Contains(s, testPassword) {
		t.Fatalf("logs show a secret:\n%s", s)
	}
}

func TestCloseTwice(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := g.executor(t, nil)
	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ex.Close(); !errors.Is(err, guest.ErrClosed) {
		t.Fatalf("second Close: %v, want guest.ErrClosed", err)
	}
	if _, err := driverOf(t, ex).RunCmd(t.Context(), "echo x", guest.Command{}); !errors.Is(err, guest.ErrClosed) {
		t.Fatalf("RunCmd after Close: %v", err)
	}
	_ = filepath.Join
}

func TestPowerShellErrorsReadable(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	ex := g.executor(t, nil)
	var raw bytes.Buffer
	res, err := ex.Run(t.Context(), guest.Command{Script: "[Console]::Error.WriteLine('raw first')\nGet-Content 'C:\\nope\\x_x41_.txt'", Stderr: &raw})
	var ee *guest.ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("failing cmdlet: %v", err)
	}
	want := "raw first\r\nGet-Content : Cannot find path 'C:\\nope\\x_x41_.txt' because it does not exist.\r\n"
	if string(res.Stderr) != want || string(ee.Stderr) != want {
		t.Fatalf("stderr %q / %q, want %q", res.Stderr, ee.Stderr, want)
	}
	if !strings.Contains(raw.String(), "#< CLIXML") {
		t.Fatalf("the Stderr writer should see the stream as sent: %q", raw.String())
	}
	if !strings.Contains(err.Error(), "raw first") {
		t.Fatalf("error text %q", err.Error())
	}
}

// Run sends standard input while it receives output, so the command's
// last Send can still be on the wire when its output is complete. Run
// returns only after that Send is answered: no request of a finished
// command reaches the guest later (to a shell the next command uses, or
// that Close deletes).
func TestRunLeavesNoRequestInFlight(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{SendDelay: 300 * time.Millisecond})
	ex := g.executor(t, nil)
	for i, cmd := range []guest.Command{
		{Script: "exit 0"},
		{Script: "exit 0", Stdin: strings.NewReader("unread input")},
		{Script: "exit 3", Stdin: strings.NewReader("unread input")},
	} {
		_, err := ex.Run(t.Context(), cmd)
		if i == 2 && errs.CodeOf(err) != errs.FailedPrecondition {
			t.Fatalf("command %d: %v", i, err)
		} else if i < 2 && err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if st := g.srv.Stats(); st.InFlight != 0 {
			t.Fatalf("command %d: Run returned with %d requests still in flight (%+v)", i, st.InFlight, st)
		}
	}
}

// A Send the guest does not answer is cancelled a few seconds after the
// command's output is complete, rather than holding Run.
func TestRunDoesNotWaitLongForSend(t *testing.T) {
	t.Parallel() // it waits out sendGrace (5 s)
	g := newFakeGuest(t, winrmserver.Options{SendDelay: time.Minute})
	ex := g.executor(t, nil)
	start := time.Now()
	if _, err := ex.Run(t.Context(), guest.Command{Script: "exit 0"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Run waited %v for an unanswered Send", d)
	}
}

// driverOf reaches the *winrm.Driver under ex (for RunCmd).
func driverOf(t testing.TB, ex *guest.Executor) *winrm.Driver {
	t.Helper()
	var d *winrm.Driver
	if !ex.As(&d) {
		t.Fatal("As does not reach the *winrm.Driver")
	}
	return d
}

// TestStdinEndRidesOnLastChunk: a stdin whose length is known ends with
// its last chunk (one Send for a short one, not a second Send carrying
// only the end); a reader of unknown length is never read ahead, so its
// end takes a Send of its own.
func TestStdinEndRidesOnLastChunk(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		stdin func() io.Reader
		sends int
	}{
		{"strings.Reader", func() io.Reader { return strings.NewReader("hello\n") }, 1},
		{"bytes.Buffer", func() io.Reader { return bytes.NewBufferString("hello\n") }, 1},
		{"unsized", func() io.Reader { return io.MultiReader(strings.NewReader("hello\n")) }, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newFakeGuest(t, winrmserver.Options{})
			ex := g.executor(t, nil)
			before := g.srv.Stats().Sends
			var out bytes.Buffer
			if _, err := ex.Run(t.Context(), guest.Command{Script: "$i = [Console]::OpenStandardInput(); $o = [Console]::OpenStandardOutput(); $i.CopyTo($o); $o.Flush()", Stdin: c.stdin(), Stdout: &out}); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(out.String()); got != "hello" {
				t.Fatalf("stdout %q, want the input back", got)
			}
			if n := g.srv.Stats().Sends - before; n != c.sends {
				t.Fatalf("%d Sends, want %d", n, c.sends)
			}
		})
	}
}
