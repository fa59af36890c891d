package guesttest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/internal/testkit"
)

// maxMessage bounds every rejection's message: no message grows with its
// input.
const maxMessage = 300

// probe returns a command that creates marker when it runs.
func (s *session) probe(marker string) guest.Command {
	if s.windows() {
		return guest.Command{Args: []string{"Set-Content", marker, "ran"}}
	}
	return guest.Command{Args: []string{"sh", "-c", `echo ran > "$1"`, "sh", marker}}
}

func testLimits(t *testing.T, s *session) {
	marker := s.join(s.dir, "ran")
	probe := s.probe(marker)
	with := func(f func(c *guest.Command)) guest.Command {
		c := probe
		c.Args = append([]string(nil), probe.Args...)
		f(&c)
		return c
	}
	big := strings.Repeat("x", 16<<10)
	env := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m["V"+strings.Repeat("A", i%7)+string(rune('A'+i%26))+strings.Repeat("B", i/26)] = "x"
		}
		return m
	}
	bad := map[string]guest.Command{
		"too many args":         with(func(c *guest.Command) { c.Args = append(c.Args, make([]string, guest.MaxArgs)...) }),
		"command too large":     with(func(c *guest.Command) { c.Args = append(c.Args, strings.Repeat("y", guest.MaxCommandBytes)) }),
		"script too large":      {Script: strings.Repeat("#", guest.MaxCommandBytes+1)},
		"script with NUL":       {Script: "exit 0\x00"},
		"too many env vars":     with(func(c *guest.Command) { c.Env = env(guest.MaxEnv + 1) }),
		"16 kB env name":        with(func(c *guest.Command) { c.Env = map[string]string{"A" + big: "x"} }),
		"env name with newline": with(func(c *guest.Command) { c.Env = map[string]string{"A\nB": "x"} }),
		"env value too large":   with(func(c *guest.Command) { c.Env = map[string]string{"A": strings.Repeat("v", guest.MaxEnvValue+1)} }),
		"env value with NUL":    with(func(c *guest.Command) { c.Env = map[string]string{"A": "a\x00"} }),
		"16 kB dir":             with(func(c *guest.Command) { c.Dir = "/" + big }),
		"dir with NUL":          with(func(c *guest.Command) { c.Dir = s.dir + "\x00" }),
	}
	for name, cmd := range bad {
		_, err := s.ex.Run(s.ctx, cmd)
		wantCode(t, name, err, errs.InvalidArgument)
		testkit.Bounded(t, name, err, maxMessage)
	}
	if s.exists(t, marker) {
		t.Fatal("a command beyond the limits ran")
	}
	// At the limit: MaxEnv variables are accepted (the command runs).
	ok := with(func(c *guest.Command) { c.Env = env(guest.MaxEnv) })
	if s.windows() {
		ok = probe // 256 variables do not fit a WinRM command line
	}
	if _, err := s.ex.Run(s.ctx, ok); err != nil {
		t.Fatalf("a command with %d environment variables: %v", guest.MaxEnv, err)
	}
	if !s.exists(t, marker) {
		t.Fatal("the probe does not create its marker, so this case proves nothing")
	}
}

func testUploadLimits(t *testing.T, s *session) {
	big := strings.Repeat("p", 16<<10)
	sep := "/"
	if s.windows() {
		sep = `\`
	}
	bad := map[string]struct {
		path string
		opts guest.UploadOptions
	}{
		"empty path":        {"", guest.UploadOptions{}},
		"path with NUL":     {s.join(s.dir, "a\x00b"), guest.UploadOptions{}},
		"path with newline": {s.join(s.dir, "a\nb"), guest.UploadOptions{}},
		"path not UTF-8":    {s.join(s.dir, "a\xffb"), guest.UploadOptions{}},
		"16 kB path":        {s.join(s.dir, big), guest.UploadOptions{}},
		"path too long":     {s.join(s.dir, strings.Repeat("q", guest.MaxPath)), guest.UploadOptions{}},
		"directory path":    {s.dir + sep, guest.UploadOptions{}},
		"mode not a perm":   {s.join(s.dir, "m"), guest.UploadOptions{Mode: fs.ModeDir | 0o755}},
		"malformed owner":   {s.join(s.dir, "o"), guest.UploadOptions{Owner: "root; rm -rf /"}},
		"16 kB owner":       {s.join(s.dir, "o"), guest.UploadOptions{Owner: big}},
	}
	for name, c := range bad {
		err := s.ex.Upload(s.ctx, c.path, strings.NewReader("x"), c.opts)
		wantCode(t, name, err, errs.InvalidArgument)
		testkit.Bounded(t, name, err, maxMessage)
	}
	err := s.ex.Upload(s.ctx, s.join(s.dir, "r"), nil, guest.UploadOptions{})
	wantCode(t, "nil reader", err, errs.InvalidArgument)
	if names := s.list(t, s.dir); len(names) != 0 {
		t.Fatalf("rejected uploads left %q in the directory", names)
	}
}

func testDefaultTimeout(t *testing.T, s *session) {
	s.open(&guest.Options{Timeout: 500 * time.Millisecond})
	start := time.Now()
	_, err := s.ex.Run(s.ctx, s.sleepCmd(false))
	wantCode(t, "a command longer than Options.Timeout", err, errs.DeadlineExceeded)
	if d := time.Since(start); d > 500*time.Millisecond+CancelGrace {
		t.Fatalf("Run returned %v after it started, more than Options.Timeout + CancelGrace", d)
	}
	// Command.Timeout wins over Options.Timeout.
	quick := guest.Command{Args: []string{"sh", "-c", "sleep 1"}, Timeout: 20 * time.Second}
	if s.windows() {
		quick = guest.Command{Script: "Start-Sleep -Seconds 1", Timeout: 20 * time.Second}
	}
	if _, err := s.ex.Run(s.ctx, quick); err != nil {
		t.Fatalf("a 1 s command with Command.Timeout 20 s under Options.Timeout 500 ms: %v", err)
	}
}

func testTelemetry(t *testing.T, s *session) {
	r := obstest.New(t)
	logs := new(bytes.Buffer)
	s.open(&guest.Options{TracerProvider: r.TP, MeterProvider: r.MP, Logger: newLogger(logs)})
	ok := guest.Command{Args: []string{"echo", "hi"}}
	fail := guest.Command{Script: "exit 3"}
	if s.windows() {
		ok = guest.Command{Script: "Write-Output hi"}
	}
	if _, err := s.ex.Run(s.ctx, ok); err != nil {
		t.Fatalf("Run: %v", err)
	}
	_, err := s.ex.Run(s.ctx, fail)
	var ee *guest.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit 3: %v, want an *guest.ExitError", err)
	}
	_, err = s.ex.Run(s.ctx, guest.Command{})
	wantCode(t, "an empty command", err, errs.InvalidArgument)
	if err := s.ex.Upload(s.ctx, s.join(s.dir, "f"), strings.NewReader("x"), guest.UploadOptions{}); err != nil {
		t.Fatalf("Upload: %v", err)
	}

	runs := r.SpansNamed("guest.Run")
	if len(runs) != 3 {
		t.Fatalf("%d guest.Run spans for 3 Runs, want 3 (spans: %v)", len(runs), r.Spans())
	}
	wantSpan := []string{"", errs.FailedPrecondition.String(), errs.InvalidArgument.String()}
	for i, sp := range runs {
		if sp.Code != wantSpan[i] || sp.Error != (wantSpan[i] != "") {
			t.Errorf("guest.Run span %d: error.type %q (error status %v), want %q", i, sp.Code, sp.Error, wantSpan[i])
		}
	}
	if n := len(r.SpansNamed("guest.Upload")); n != 1 {
		t.Errorf("%d guest.Upload spans for one Upload, want 1", n)
	}
	if n := r.Sum("managedvm.calls", map[string]string{"op": "guest.Run"}); n != 3 {
		t.Errorf("managedvm.calls{op=guest.Run} = %d, want 3", n)
	}
	if n := r.Sum("managedvm.errors", map[string]string{"op": "guest.Run", "code": "FailedPrecondition"}); n != 1 {
		t.Errorf("managedvm.errors{op=guest.Run,code=FailedPrecondition} = %d, want 1", n)
	}
	if n := r.Sum("managedvm.errors", map[string]string{"op": "guest.Run"}); n != 2 {
		t.Errorf("managedvm.errors{op=guest.Run} = %d, want 2", n)
	}
	if n := r.Sum("managedvm.calls", map[string]string{"op": "guest.Upload", "code": "OK"}); n != 1 {
		t.Errorf("managedvm.calls{op=guest.Upload,code=OK} = %d, want 1", n)
	}
	if n := r.HistogramCount("managedvm.call.duration", map[string]string{"op": "guest.Run"}); n != 3 {
		t.Errorf("managedvm.call.duration{op=guest.Run} count = %d, want 3", n)
	}
	// The debug log: one line per call, with the shared keys, never the
	// command's arguments.
	out := logs.String()
	if n := strings.Count(out, "op=guest.Run"); n != 3 {
		t.Errorf("%d debug lines with op=guest.Run, want 3:\n%s", n, out)
	}
	if !strings.Contains(out, "code=FailedPrecondition") || !strings.Contains(out, "duration=") {
		t.Errorf("the debug log lacks the code or duration keys:\n%s", out)
	}
	if strings.Contains(out, "hi") {
		t.Errorf("the debug log shows a command's argument:\n%s", out)
	}
}

// RunCredentials checks that a transport refuses malformed credentials
// the same way every transport does (see guest.Credentials.Validate):
// connect is the transport's constructor for the guest the suite would
// reach; every malformed credential must give InvalidArgument before any
// connection, with a message of at most 300 bytes that never shows the
// password. good are credentials connect accepts (the control case).
func RunCredentials(t *testing.T, good guest.Credentials, connect func(ctx context.Context, cred guest.Credentials) (*guest.Executor, error)) {
	t.Helper()
	t.Run("Credentials", func(t *testing.T) {
		for _, c := range BadCredentials(good) {
			ex, err := connect(t.Context(), c.Credentials)
			if err == nil {
				_ = ex.Close()
				t.Errorf("%s: accepted", c.Name)
				continue
			}
			if got := errs.CodeOf(err); got != errs.InvalidArgument {
				t.Errorf("%s: %v (code %v), want InvalidArgument", c.Name, err, got)
			}
			testkit.Bounded(t, c.Name, err, maxMessage)
			if pw := c.Credentials.Password.Reveal(); len(pw) >= 8 && strings.Contains(err.Error(), pw[:8]) {
				t.Errorf("%s: the message shows the password: %v", c.Name, err)
			}
		}
		ex, err := connect(t.Context(), good)
		if err != nil {
			t.Fatalf("the good credentials are refused, so this case proves nothing: %v", err)
		}
		_ = ex.Close()
	})
}

// BadCredential is one malformed credential of BadCredentials.
type BadCredential struct {
	Name        string
	Credentials guest.Credentials
}

// BadCredentials returns good with each limit of guest.Credentials.Validate
// broken in turn.
func BadCredentials(good guest.Credentials) []BadCredential {
	user := func(u string) guest.Credentials { c := good; c.Username = u; return c }
	pass := func(p string) guest.Credentials { c := good; c.Password = guest.NewSecret(p); return c }
	return []BadCredential{
		{"empty user", user("")},
		{"user too long", user(strings.Repeat("u", guest.MaxUsername+1))},
		{"100 kB user", user(strings.Repeat("u", 100<<10))},
		{"user with NUL", user("ad\x00min")},
		{"user with newline", user("ad\nmin")},
		{"user not UTF-8", user("ad\xffmin")},
		{"user with leading space", user(" admin")},
		{"no secret", guest.Credentials{Username: good.Username}},
		{"password too long", pass("secretpw" + strings.Repeat("p", guest.MaxPassword))},
		{"password with NUL", pass("secretpw\x00x")},
		{"password with newline", pass("secretpw\nx")},
		{"password not UTF-8", pass("secretpw\xff")},
	}
}

func newLogger(w *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
