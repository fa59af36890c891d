package memguest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
)

func TestRouting(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleArgs([]string{"systemctl", "is-active", "sshd"}, memguest.Reply("exact\n"))
	ex.HandleArgsPrefix([]string{"systemctl"}, memguest.Reply("prefix-1\n"))
	ex.HandleArgsPrefix([]string{"systemctl", "is-active"}, memguest.Reply("prefix-2\n"))
	ex.HandleScript("useradd", memguest.Reply("substring\n"))
	ex.HandleScriptRegexp(regexp.MustCompile(`^id -u \w+$`), memguest.Reply("regexp\n"))
	ex.HandleScript("id", memguest.Reply("later substring\n"))

	cases := []struct {
		cmd  guest.Command
		want string
	}{
		{guest.Command{Args: []string{"systemctl", "is-active", "sshd"}}, "exact"},
		{guest.Command{Args: []string{"systemctl", "is-active", "nginx"}}, "prefix-2"},
		{guest.Command{Args: []string{"systemctl", "restart"}}, "prefix-1"},
		{guest.Command{Script: "useradd -m bob"}, "substring"},
		{guest.Command{Script: "id -u bob"}, "regexp"},
		{guest.Command{Script: "id -un"}, "later substring"},
	}
	ctx := t.Context()
	for _, c := range cases {
		got, err := guest.Output(ctx, ex.Executor(), c.cmd)
		if err != nil || got != c.want {
			t.Errorf("%v: %q, %v; want %q", c.cmd, got, err, c.want)
		}
	}

	// Re-registering replaces.
	ex.HandleArgs([]string{"systemctl", "is-active", "sshd"}, memguest.Reply("replaced\n"))
	if got, _ := guest.Output(ctx, ex.Executor(), guest.Command{Args: []string{"systemctl", "is-active", "sshd"}}); got != "replaced" {
		t.Errorf("after re-registering: %q", got)
	}

	// Args never match script handlers and vice versa; unmatched is 127.
	_, err := ex.Executor().Run(ctx, guest.Command{Args: []string{"useradd"}})
	var ee *guest.ExitError
	if !errors.As(err, &ee) || ee.Code != 127 || !strings.Contains(string(ee.Stderr), "not found") {
		t.Fatalf("unmatched command: %v", err)
	}

	// A default handler catches the rest.
	ex.HandleDefault(memguest.Reply("default\n"))
	if got, _ := guest.Output(ctx, ex.Executor(), guest.Command{Args: []string{"useradd"}}); got != "default" {
		t.Errorf("default: %q", got)
	}
	ex.HandleDefault(nil)
	if _, err := ex.Executor().Run(ctx, guest.Command{Args: []string{"useradd"}}); !errors.As(err, &ee) || ee.Code != 127 {
		t.Errorf("default removed: %v", err)
	}
}

func TestExitAndHandlerErrors(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleArgs([]string{"fail"}, memguest.Exit(3, "partial\n", "boom\nsecond line\n"))
	ex.HandleArgs([]string{"denied"}, memguest.Fail(errs.New(errs.PermissionDenied, "test", "no")))
	ex.HandleArgs([]string{"plain"}, memguest.Fail(errors.New("plain failure")))
	ctx := t.Context()

	res, err := ex.Executor().Run(ctx, guest.Command{Args: []string{"fail"}})
	var ee *guest.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("not an ExitError: %v", err)
	}
	if ee.Code != 3 || res.ExitCode != 3 || string(ee.Stdout) != "partial\n" || string(res.Stderr) != "boom\nsecond line\n" {
		t.Fatalf("ExitError %+v, Result %+v", ee, res)
	}
	if errs.CodeOf(err) != errs.FailedPrecondition || err.Error() != `guest.Run: command "fail" (0 args) exited with code 3: boom` {
		t.Fatalf("err %q code %v", err, errs.CodeOf(err))
	}

	_, err = ex.Executor().Run(ctx, guest.Command{Args: []string{"denied"}})
	if errs.CodeOf(err) != errs.PermissionDenied {
		t.Fatalf("handler error code lost: %v", err)
	}
	_, err = ex.Executor().Run(ctx, guest.Command{Args: []string{"plain"}})
	if errs.CodeOf(err) != errs.Unknown || !strings.Contains(err.Error(), "plain failure") {
		t.Fatalf("plain handler error: %v", err)
	}
}

func TestRecordsCommands(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleDefault(func(_ context.Context, cmd guest.Command) (guest.Result, error) {
		if cmd.Stdin != nil {
			b, _ := io.ReadAll(cmd.Stdin)
			return guest.Result{Stdout: b}, nil
		}
		return guest.Result{}, nil
	})
	ctx := t.Context()
	args := []string{"echo", "a"}
	env := map[string]string{"K": "v"}
	if _, err := ex.Executor().Run(ctx, guest.Command{Args: args, Env: env, Dir: "/tmp", Sudo: true, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Executor().Run(ctx, guest.Command{Script: "cat", Stdin: strings.NewReader("fed")}); err != nil {
		t.Fatal(err)
	}
	// Rejected commands are not recorded.
	if _, err := ex.Executor().Run(ctx, guest.Command{}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("empty command: %v", err)
	}
	args[1], env["K"] = "changed", "changed" // the record is a copy

	cmds := ex.Commands()
	if len(cmds) != 2 {
		t.Fatalf("%d commands recorded, want 2", len(cmds))
	}
	c := cmds[0]
	if fmt.Sprint(c.Args) != "[echo a]" || c.Env["K"] != "v" || c.Dir != "/tmp" || !c.Sudo || c.Timeout != time.Minute || c.Stdin != nil {
		t.Fatalf("record %+v", c)
	}
	b, _ := io.ReadAll(cmds[1].Stdin)
	if cmds[1].Script != "cat" || string(b) != "fed" {
		t.Fatalf("record %+v stdin %q", cmds[1], b)
	}
	cmds[0].Args[0] = "mutated"
	if ex.Commands()[0].Args[0] != "echo" {
		t.Fatal("Commands returned the executor's own slice")
	}
}

func TestStreamsAndStdin(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleArgs([]string{"tee"}, func(_ context.Context, cmd guest.Command) (guest.Result, error) {
		in, err := io.ReadAll(cmd.Stdin)
		if err != nil {
			return guest.Result{}, err
		}
		fmt.Fprintf(cmd.Stdout, "streamed:%s;", in)
		fmt.Fprint(cmd.Stderr, "warn;")
		return guest.Result{Stdout: []byte("returned"), Stderr: []byte("more")}, nil
	})
	var out, errb bytes.Buffer
	res, err := ex.Executor().Run(t.Context(), guest.Command{Args: []string{"tee"}, Stdin: strings.NewReader("in"), Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "streamed:in;returned" || out.String() != string(res.Stdout) {
		t.Fatalf("stdout: result %q, writer %q", res.Stdout, out.String())
	}
	if string(res.Stderr) != "warn;more" || errb.String() != string(res.Stderr) {
		t.Fatalf("stderr: result %q, writer %q", res.Stderr, errb.String())
	}
}

func TestOutputCappedAtMaxOutput(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	big := bytes.Repeat([]byte("x"), guest.MaxOutput+10)
	ex.HandleArgs([]string{"big"}, func(_ context.Context, cmd guest.Command) (guest.Result, error) {
		_, _ = cmd.Stdout.Write(big)
		return guest.Result{}, nil
	})
	var w bytes.Buffer
	res, err := ex.Executor().Run(t.Context(), guest.Command{Args: []string{"big"}, Stdout: &w})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != guest.MaxOutput || w.Len() != len(big) {
		t.Fatalf("kept %d (want %d), streamed %d (want %d)", len(res.Stdout), guest.MaxOutput, w.Len(), len(big))
	}
}

func TestContext(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	started := make(chan struct{})
	release := make(chan struct{})
	// A handler that ignores its context entirely.
	ex.HandleArgs([]string{"stuck"}, func(_ context.Context, cmd guest.Command) (guest.Result, error) {
		close(started)
		<-release
		_, err := cmd.Stdout.Write([]byte("too late"))
		if err == nil {
			return guest.Result{}, errors.New("a write after Run returned succeeded")
		}
		return guest.Result{}, nil
	})
	defer close(release)
	ex.HandleArgs([]string{"polite"}, func(ctx context.Context, _ guest.Command) (guest.Result, error) {
		<-ctx.Done()
		return guest.Result{}, ctx.Err()
	})

	// Already canceled: the handler never runs, nothing is recorded.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ex.Executor().Run(ctx, guest.Command{Args: []string{"polite"}}); errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("canceled context: %v", err)
	}
	if n := len(ex.Commands()); n != 0 {
		t.Fatalf("%d commands recorded", n)
	}

	// Canceled while a context-ignoring handler runs: Run returns anyway.
	ctx, cancel = context.WithCancel(t.Context())
	var w syncWriter
	done := make(chan error, 1)
	go func() {
		_, err := ex.Executor().Run(ctx, guest.Command{Args: []string{"stuck"}, Stdout: &w})
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("canceled mid-run: %v", err)
	}

	// Command.Timeout gives DeadlineExceeded.
	res, err := ex.Executor().Run(t.Context(), guest.Command{Args: []string{"polite"}, Timeout: 10 * time.Millisecond})
	if errs.CodeOf(err) != errs.DeadlineExceeded || res.ExitCode != -1 {
		t.Fatalf("timeout: %v, exit %d", err, res.ExitCode)
	}
}

type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestSessionLoss(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	var ran int
	var mu sync.Mutex
	ex.HandleArgs([]string{"touch", "/x"}, func(context.Context, guest.Command) (guest.Result, error) {
		mu.Lock()
		ran++
		mu.Unlock()
		return guest.Result{}, nil
	})
	ctx := t.Context()
	cmd := guest.Command{Args: []string{"touch", "/x"}}
	ex.SimulateSessionLoss(false)
	ex.SimulateSessionLoss(true)
	for i, wantRan := range []int{0, 1} {
		_, err := ex.Executor().Run(ctx, cmd)
		if !errors.Is(err, guest.ErrSessionLost) || errs.CodeOf(err) != errs.OutcomeUnknown {
			t.Fatalf("run %d: %v (code %v), want ErrSessionLost", i, err, errs.CodeOf(err))
		}
		mu.Lock()
		got := ran
		mu.Unlock()
		if got != wantRan {
			t.Fatalf("run %d: handler ran %d times, want %d", i, got, wantRan)
		}
	}
	if _, err := ex.Executor().Run(ctx, cmd); err != nil {
		t.Fatalf("after the simulated losses: %v", err)
	}
	if n := len(ex.Commands()); n != 3 {
		t.Fatalf("%d commands recorded, want 3", n)
	}
}

func TestCloseWhileRunning(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	started := make(chan struct{})
	ex.HandleDefault(func(ctx context.Context, _ guest.Command) (guest.Result, error) {
		close(started)
		<-ctx.Done()
		return guest.Result{}, ctx.Err()
	})
	done := make(chan error, 1)
	go func() {
		_, err := ex.Executor().Run(t.Context(), guest.Command{Args: []string{"sleep"}})
		done <- err
	}()
	<-started
	if err := ex.Executor().Close(); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if !errors.Is(err, guest.ErrSessionLost) || !errors.Is(err, guest.ErrClosed) || errs.CodeOf(err) != errs.OutcomeUnknown {
		t.Fatalf("Run interrupted by Close: %v (code %v)", err, errs.CodeOf(err))
	}
	if err := ex.Executor().Close(); !errors.Is(err, guest.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := ex.Executor().Upload(t.Context(), "/f", strings.NewReader("x"), guest.UploadOptions{}); !errors.Is(err, guest.ErrClosed) {
		t.Fatalf("Upload after Close: %v", err)
	}
}

func TestHandlerPanicPropagates(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleDefault(func(context.Context, guest.Command) (guest.Result, error) { panic("handler bug") })
	defer func() {
		if r := recover(); r != "handler bug" {
			t.Fatalf("recovered %v", r)
		}
	}()
	_, _ = ex.Executor().Run(t.Context(), guest.Command{Args: []string{"x"}})
	t.Fatal("Run did not panic")
}

func TestUploads(t *testing.T) {
	var hooked []string
	var mu sync.Mutex
	ex := memguest.NewDriver(guest.Linux, &memguest.Options{Upload: func(_ context.Context, path string, content []byte, opts guest.UploadOptions) error {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, fmt.Sprintf("%s:%d:%o", path, len(content), opts.Mode))
		if path == "/denied" {
			return errs.New(errs.PermissionDenied, "hook", "read-only")
		}
		return nil
	}})
	ctx := t.Context()
	if err := ex.Executor().Upload(ctx, "/etc/motd", strings.NewReader("hello"), guest.UploadOptions{Owner: "root:root"}); err != nil {
		t.Fatal(err)
	}
	f, ok := ex.File("/etc/motd")
	if !ok || string(f.Content) != "hello" || f.Mode != 0o644 || f.Owner != "root:root" {
		t.Fatalf("File = %+v, %v", f, ok)
	}
	f.Content[0] = 'J'
	if g, _ := ex.File("/etc/motd"); string(g.Content) != "hello" {
		t.Fatal("File returned the executor's own bytes")
	}
	if err := ex.Executor().Upload(ctx, "/etc/motd", strings.NewReader("v2"), guest.UploadOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if g, _ := ex.File("/etc/motd"); string(g.Content) != "v2" || g.Mode != 0o600 {
		t.Fatalf("overwritten file %+v", g)
	}
	err := ex.Executor().Upload(ctx, "/denied", strings.NewReader("x"), guest.UploadOptions{})
	if errs.CodeOf(err) != errs.PermissionDenied {
		t.Fatalf("hook error: %v", err)
	}
	if _, ok := ex.File("/denied"); ok {
		t.Fatal("a refused upload was captured")
	}
	bad := []struct {
		path string
		r    io.Reader
		mode guest.UploadOptions
	}{
		{"", strings.NewReader("x"), guest.UploadOptions{}},
		{"/a\x00b", strings.NewReader("x"), guest.UploadOptions{}},
		{"/nil-reader", nil, guest.UploadOptions{}},
		{"/dir-mode", strings.NewReader("x"), guest.UploadOptions{Mode: 0o755 | 1<<31}},
	}
	for _, b := range bad {
		if err := ex.Executor().Upload(ctx, b.path, b.r, b.mode); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Upload(%q): %v, want InvalidArgument", b.path, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := ex.Executor().Upload(cctx, "/canceled", strings.NewReader("x"), guest.UploadOptions{}); errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("canceled upload: %v", err)
	}
	if got := ex.FilePaths(); fmt.Sprint(got) != "[/etc/motd]" {
		t.Fatalf("FilePaths = %v", got)
	}
	if fmt.Sprint(hooked) != "[/etc/motd:5:644 /etc/motd:2:600 /denied:1:644]" {
		t.Fatalf("hook saw %v", hooked)
	}
	ex.SetFile("/seed", memguest.File{Content: []byte("s")})
	if len(ex.Files()) != 2 {
		t.Fatalf("Files = %v", ex.Files())
	}
	ex.RemoveFile("/seed")
	if _, ok := ex.File("/seed"); ok {
		t.Fatal("RemoveFile left the file")
	}

	win := memguest.NewDriver(guest.Windows, nil)
	if err := win.Executor().Upload(ctx, `C:\x.txt`, strings.NewReader("x"), guest.UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	if f, _ := win.File(`C:\x.txt`); f.Mode != 0 {
		t.Fatalf("Windows upload mode defaulted to %v", f.Mode)
	}
}

func TestConcurrentUse(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleArgsPrefix([]string{"echo"}, func(_ context.Context, cmd guest.Command) (guest.Result, error) {
		return guest.Result{Stdout: []byte(strings.Join(cmd.Args[1:], " "))}, nil
	})
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			want := fmt.Sprint("worker ", i)
			got, err := guest.Output(ctx, ex.Executor(), guest.Command{Args: []string{"echo", want}})
			if err != nil || got != want {
				t.Errorf("worker %d: %q, %v", i, got, err)
			}
			p := fmt.Sprintf("/f%d", i)
			if err := ex.Executor().Upload(ctx, p, strings.NewReader(want), guest.UploadOptions{}); err != nil {
				t.Error(err)
			}
			ex.HandleArgs([]string{"noop", p}, memguest.Reply(""))
			_ = ex.Commands()
			_ = ex.Files()
		})
	}
	wg.Wait()
	if len(ex.Commands()) != 32 || len(ex.Files()) != 32 {
		t.Fatalf("%d commands, %d files", len(ex.Commands()), len(ex.Files()))
	}
}

func TestDetectFactsThroughMemguest(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("os-release", memguest.Reply("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n__MANAGEDVM_UNAME__\n6.1.0-18-amd64\nx86_64\n"))
	f, err := guest.DetectFacts(t.Context(), ex.Executor())
	if err != nil {
		t.Fatal(err)
	}
	want := guest.Facts{Family: guest.Linux, Distribution: "debian", Name: "Debian GNU/Linux 12 (bookworm)", Version: "12", Kernel: "6.1.0-18-amd64", Arch: "x86_64"}
	if f != want {
		t.Fatalf("facts %+v, want %+v", f, want)
	}
}
