package guesttest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/testkit"
)

// Harness connects the suite to one executor implementation.
type Harness struct {
	// Family is the guest's OS family, guest.Linux or guest.Windows: it
	// decides which commands the suite sends (POSIX commands and sh
	// scripts, or PowerShell).
	Family guest.OSFamily
	// New returns a fresh executor for one subtest, built by the
	// transport's constructor with opts (nil for most cases; the Telemetry
	// and DefaultTimeout cases pass a logger, providers or a Timeout, which
	// the harness must hand to the constructor), and an empty directory in
	// the guest that the subtest may write in (an absolute path in the
	// guest's syntax). New registers its own clean-up with t.Cleanup; the
	// suite may already have closed the executor by then.
	New func(t *testing.T, opts *guest.Options) (ex *guest.Executor, dir string)
	// Skip names cases the executor cannot support, each with the reason
	// (see Cases); they are skipped with that reason. A name that is not a
	// case fails the suite.
	Skip map[string]string
	// Sudo says the executor can run commands as root (Command.Sudo). The
	// Sudo case is skipped without it.
	Sudo bool
	// Patience is how long a case waits for what a correct executor does
	// at once before it fails: a command without Stdin to end, the first
	// line of a running command to reach the Stdout writer, a canceled
	// command's process to die. Zero means DefaultPatience. A harness
	// whose guest answers within milliseconds (an in-memory executor, the
	// suite's own mutant tests) may shorten it: the verdicts stay the
	// same, only a broken executor fails sooner.
	Patience time.Duration
	// Serial runs every case one after another. Without it, the cases that
	// mostly wait on a clock (CancelMidCommand, DeadlineMidCommand,
	// CommandTimeout, CancelStopsRemoteCommand, DefaultTimeout) run at once,
	// as parallel subtests after the others, so New must be safe to call
	// from several goroutines. Set Serial when it is not.
	Serial bool
}

// DefaultPatience is Harness.Patience when it is zero.
const DefaultPatience = 10 * time.Second

func (h Harness) patience() time.Duration {
	if h.Patience > 0 {
		return h.Patience
	}
	return DefaultPatience
}

// CancelGrace is how long Run may take to return once its context is done.
const CancelGrace = 3 * time.Second

// perCase bounds every case, so that an executor that hangs fails the case
// instead of the whole test binary.
const perCase = 60 * time.Second

type testCase struct {
	name string
	fn   func(t *testing.T, s *session)
	own  bool // the case calls s.open itself, with its options
	// waits: the case spends its time waiting on a clock (a deadline, a
	// timeout), so it runs in parallel with the other waiting cases
	// unless Harness.Serial.
	waits bool
}

func cases() []testCase {
	return []testCase{
		{name: "Family", fn: testFamily},
		{name: "ArgsEcho", fn: testArgsEcho},
		{name: "ArgsVerbatim", fn: testArgsVerbatim},
		{name: "Script", fn: testScript},
		{name: "ExitCode", fn: testExitCode},
		{name: "ErrorsHideArguments", fn: testErrorsHideArguments},
		{name: "EmptyOutput", fn: testEmptyOutput},
		{name: "StdoutStderrSeparated", fn: testSeparated},
		{name: "Stdin", fn: testStdin},
		{name: "NoStdinDoesNotHang", fn: testNoStdin},
		{name: "LargeStdinThroughCat", fn: testLargeStdin},
		{name: "Streaming", fn: testStreaming},
		{name: "StreamingBeforeExit", fn: testStreamingBeforeExit},
		{name: "Env", fn: testEnv},
		{name: "Dir", fn: testDir},
		{name: "DirMissingDoesNotRun", fn: testDirMissing},
		{name: "LargeOutput", fn: testLargeOutput},
		{name: "LargeStdoutAndStderr", fn: testLargeBoth},
		{name: "Upload", fn: testUpload},
		{name: "UploadEmptyFile", fn: testUploadEmpty},
		{name: "UploadOverwriteAtomic", fn: testUploadAtomic},
		{name: "UploadCanceled", fn: testUploadCanceled},
		{name: "UploadCanceledMidway", fn: testUploadCanceledMidway},
		{name: "UploadReaderFails", fn: testUploadReaderFails},
		{name: "UploadMissingDir", fn: testUploadMissingDir},
		{name: "CancelMidCommand", fn: testCancel, waits: true},
		{name: "DeadlineMidCommand", fn: testDeadline, waits: true},
		{name: "CommandTimeout", fn: testCommandTimeout, waits: true},
		{name: "CancelStopsRemoteCommand", fn: testCancelStops, waits: true},
		{name: "InvalidCommand", fn: testInvalid},
		{name: "Limits", fn: testLimits},
		{name: "UploadLimits", fn: testUploadLimits},
		{name: "DefaultTimeout", fn: testDefaultTimeout, own: true, waits: true},
		{name: "Telemetry", fn: testTelemetry, own: true},
		{name: "NonexistentProgram", fn: testNonexistent},
		{name: "ConcurrentRuns", fn: testConcurrent},
		{name: "DetectFacts", fn: testDetectFacts},
		{name: "Sudo", fn: testSudo},
		{name: "CloseThenRun", fn: testClose},
	}
}

// Cases lists the names of the suite's cases, in the order Run runs them.
func Cases() []string {
	var names []string
	for _, c := range cases() {
		names = append(names, c.name)
	}
	return names
}

// Run runs the conformance suite against the executor h builds. Each case
// is a subtest with its own executor and directory. The cases that mostly
// wait on a clock run in parallel after the others (see Harness.Serial).
//
// On Linux the suite sends real POSIX commands (echo, printf, cat, sh -c,
// sleep, test, ls, stat, mkdir, kill) and sh scripts; on Windows,
// PowerShell scripts and cmdlets. A command that names no existing program
// must give an *guest.ExitError with code 127 on Linux (any non-zero code
// on Windows) or an error with code errs.NotFound.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Family != guest.Linux && h.Family != guest.Windows {
		t.Fatalf("guesttest: Harness.Family must be guest.Linux or guest.Windows, not %v", h.Family)
	}
	if h.New == nil {
		t.Fatal("guesttest: Harness.New is nil")
	}
	known := Cases()
	for name := range h.Skip {
		if !slices.Contains(known, name) {
			t.Errorf("guesttest: Harness.Skip names %q, which is not a case (cases: %s)", name, strings.Join(known, ", "))
		}
	}
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			if reason, ok := h.Skip[c.name]; ok {
				t.Skipf("harness: %s", reason)
			}
			if c.waits && !h.Serial {
				t.Parallel()
			}
			ctx, cancel := context.WithTimeout(t.Context(), perCase)
			defer cancel()
			s := &session{h: h, t: t, ctx: ctx}
			if !c.own {
				s.open(nil)
			}
			c.fn(t, s)
		})
	}
}

// session is one case's executor, directory and context, with helpers
// that speak the guest's dialect.
type session struct {
	h   Harness
	t   *testing.T
	ex  *guest.Executor
	dir string
	ctx context.Context
}

// open builds the case's executor through the harness.
func (s *session) open(opts *guest.Options) {
	s.t.Helper()
	s.ex, s.dir = s.h.New(s.t, opts)
	if s.ex == nil {
		s.t.Fatal("Harness.New returned a nil executor")
	}
}

func (s *session) windows() bool { return s.h.Family == guest.Windows }

// join joins a name to a guest directory.
func (s *session) join(dir, name string) string {
	if s.windows() {
		return strings.TrimRight(dir, `\`) + `\` + name
	}
	return strings.TrimRight(dir, "/") + "/" + name
}

// norm turns Windows line ends into "\n"; Linux output is compared as is.
func (s *session) norm(b []byte) string {
	if s.windows() {
		return strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	return string(b)
}

// run runs cmd and fails the test on any error.
func (s *session) run(t *testing.T, cmd guest.Command) guest.Result {
	t.Helper()
	res, err := s.ex.Run(s.ctx, cmd)
	if err != nil {
		t.Fatalf("Run(%v): %v (code %v; stdout %q; stderr %q)", cmd, err, errs.CodeOf(err), clip(res.Stdout), clip(res.Stderr))
	}
	if res.ExitCode != 0 {
		t.Fatalf("Run(%v): nil error but ExitCode %d", cmd, res.ExitCode)
	}
	return res
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// readFile reads a guest file back through the executor.
func (s *session) readFile(t *testing.T, path string) []byte {
	t.Helper()
	if s.windows() {
		res := s.run(t, guest.Command{Script: "[Convert]::ToBase64String([IO.File]::ReadAllBytes(" + guest.PowerShellQuote(path) + "))"})
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(res.Stdout)))
		if err != nil {
			t.Fatalf("reading %s back: %v", path, err)
		}
		return b
	}
	return s.run(t, guest.Command{Args: []string{"cat", "--", path}}).Stdout
}

// exists reports whether path exists in the guest.
func (s *session) exists(t *testing.T, path string) bool {
	t.Helper()
	cmd := guest.Command{Args: []string{"test", "-e", path}}
	if s.windows() {
		cmd = guest.Command{Script: "if (Test-Path -LiteralPath " + guest.PowerShellQuote(path) + ") { exit 0 } else { exit 1 }"}
	}
	_, err := s.ex.Run(s.ctx, cmd)
	var ee *guest.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &ee) && ee.Code == 1:
		return false
	}
	t.Fatalf("checking whether %s exists: %v", path, err)
	return false
}

// list returns the names in a guest directory, hidden ones included, sorted.
func (s *session) list(t *testing.T, dir string) []string {
	t.Helper()
	cmd := guest.Command{Args: []string{"ls", "-A", "--", dir}}
	if s.windows() {
		cmd = guest.Command{Script: "Get-ChildItem -Force -Name -LiteralPath " + guest.PowerShellQuote(dir)}
	}
	var names []string
	for _, l := range strings.Split(s.norm(s.run(t, cmd).Stdout), "\n") {
		if l != "" {
			names = append(names, l)
		}
	}
	slices.Sort(names)
	return names
}

// mkdir makes a guest directory.
func (s *session) mkdir(t *testing.T, dir string) {
	t.Helper()
	if s.windows() {
		s.run(t, guest.Command{Script: "$null = New-Item -ItemType Directory -Path " + guest.PowerShellQuote(dir)})
		return
	}
	s.run(t, guest.Command{Args: []string{"mkdir", "--", dir}})
}

// sleepCmd returns a command that prints "started" (and, with pid, its
// process id on the first line), then sleeps for 30 s.
func (s *session) sleepCmd(pid bool) guest.Command {
	if s.windows() {
		if pid {
			return guest.Command{Script: "Write-Output $PID\nWrite-Output started\nStart-Sleep -Seconds 30"}
		}
		return guest.Command{Script: "Write-Output started\nStart-Sleep -Seconds 30"}
	}
	if pid {
		return guest.Command{Script: "echo $$; echo started; exec sleep 30"}
	}
	return guest.Command{Script: "echo started; exec sleep 30"}
}

func wantCode(t *testing.T, what string, err error, want errs.Code) {
	t.Helper()
	testkit.MustCode(t, what, err, want)
}

// ---- cases ----

func testFamily(t *testing.T, s *session) {
	if got := s.ex.Family(); got != s.h.Family {
		t.Fatalf("Family() = %v, want %v", got, s.h.Family)
	}
}

// trickyEcho are arguments the echo program prints unchanged: none starts
// with a dash. The backslashes stay as they are because Args run the
// program /bin/echo, never a shell's builtin echo (dash's interprets them).
var trickyEcho = []string{
	"hello world", "it's", `"double"`, "$HOME", "${PATH}", "a;b", "x|y&z", "`id`", "$(id)",
	"new\nline", "tab\there", "ünïcødé ✓ 日本", "*", "?", "[a]", "#hash", "a  b", `back\slash`, `a\tb`, `\c`,
}

func testArgsEcho(t *testing.T, s *session) {
	if s.windows() {
		res := s.run(t, guest.Command{Args: append([]string{"Write-Output"}, trickyEcho...)})
		if got, want := s.norm(res.Stdout), strings.Join(trickyEcho, "\n")+"\n"; got != want {
			t.Fatalf("Write-Output printed %q, want %q", got, want)
		}
		return
	}
	res := s.run(t, guest.Command{Args: append([]string{"echo"}, trickyEcho...)})
	if got, want := string(res.Stdout), strings.Join(trickyEcho, " ")+"\n"; got != want {
		t.Fatalf("echo printed %q, want %q", got, want)
	}
}

// trickyVerbatim are arguments printf '%s\n' must print unchanged: a
// program that receives exactly its argv.
var trickyVerbatim = []string{
	"", " ", "-n", "--", "-e", `back\slash`, `\n`, `\\`, "a=b", "~", "~root", "{a,b}", "!x", "!!",
	"'", `'\''`, `"'"`, "%s %d", " lead", "trail ", "\r", "\t", "semi;colon", "and&&or||",
	"<in", ">out", "2>&1", "$((1+1))", "$'x'", "if", "then", "fi", "=", "x=$(id)",
	"\x01\x7f", "é", "\xff\xfe invalid utf-8",
}

func testArgsVerbatim(t *testing.T, s *session) {
	if s.windows() {
		// Write-Output prints each argument on a line of its own; leave
		// out what PowerShell reads as parameters or line ends.
		var args []string
		for _, a := range trickyVerbatim {
			if strings.HasPrefix(a, "-") || strings.ContainsAny(a, "\r\n\x01\x7f") || !utf8.ValidString(a) {
				continue
			}
			args = append(args, a)
		}
		res := s.run(t, guest.Command{Args: append([]string{"Write-Output"}, args...)})
		if got, want := s.norm(res.Stdout), strings.Join(args, "\n")+"\n"; got != want {
			t.Fatalf("Write-Output printed %q, want %q", got, want)
		}
		return
	}
	res := s.run(t, guest.Command{Args: append([]string{"printf", `%s\n`}, trickyVerbatim...)})
	if got, want := string(res.Stdout), strings.Join(trickyVerbatim, "\n")+"\n"; got != want {
		t.Fatalf("printf printed %q, want %q", got, want)
	}
	// The program name itself goes through quoting too.
	res = s.run(t, guest.Command{Args: []string{"/bin/sh", "-c", `printf '%s|' "$0" "$@"`, "zero", "a b", "", "c'd"}})
	if got, want := string(res.Stdout), "zero|a b||c'd|"; got != want {
		t.Fatalf("sh -c printed %q, want %q", got, want)
	}
}

func testScript(t *testing.T, s *session) {
	script := "x=41\necho \"$((x + 1))\"\nfor w in a b; do printf '%s' \"$w\"; done\necho\n"
	if s.windows() {
		script = "$x = 41\nWrite-Output ($x + 1)\nWrite-Output ('a' + 'b')\n"
	}
	res := s.run(t, guest.Command{Script: script})
	if got := s.norm(res.Stdout); got != "42\nab\n" {
		t.Fatalf("script printed %q, want %q", got, "42\nab\n")
	}
}

func testExitCode(t *testing.T, s *session) {
	for _, code := range []int{1, 3, 42, 255} {
		script := fmt.Sprintf("echo out\necho boom >&2\nexit %d", code)
		if s.windows() {
			script = fmt.Sprintf("Write-Output out\n[Console]::Error.WriteLine('boom')\nexit %d", code)
		}
		res, err := s.ex.Run(s.ctx, guest.Command{Script: script})
		var ee *guest.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("exit %d: error %v (%T) is not an *guest.ExitError", code, err, err)
		}
		if ee.Code != code || res.ExitCode != code {
			t.Fatalf("exit %d: ExitError.Code %d, Result.ExitCode %d", code, ee.Code, res.ExitCode)
		}
		wantCode(t, fmt.Sprintf("exit %d", code), err, errs.FailedPrecondition)
		if !errors.Is(err, errs.FailedPrecondition) {
			t.Fatalf("exit %d: errors.Is(err, errs.FailedPrecondition) is false", code)
		}
		if !strings.Contains(string(ee.Stderr), "boom") || !strings.Contains(string(res.Stderr), "boom") {
			t.Fatalf("exit %d: stderr not captured: ExitError %q, Result %q", code, ee.Stderr, res.Stderr)
		}
		if !strings.Contains(string(ee.Stdout), "out") || !strings.Contains(string(res.Stdout), "out") {
			t.Fatalf("exit %d: stdout not captured: ExitError %q, Result %q", code, ee.Stdout, res.Stdout)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(code)) {
			t.Fatalf("exit %d: error text %q does not name the code", code, err.Error())
		}
	}
	// Args, not only scripts.
	cmd := guest.Command{Args: []string{"sh", "-c", "exit 4"}}
	if s.windows() {
		cmd = guest.Command{Args: []string{"cmd.exe", "/c", "exit 4"}}
	}
	_, err := s.ex.Run(s.ctx, cmd)
	var ee *guest.ExitError
	if !errors.As(err, &ee) || ee.Code != 4 {
		t.Fatalf("Args exiting 4: %v", err)
	}
}

func testErrorsHideArguments(t *testing.T, s *session) {
	const canary = "s3cr3t-canary-arg"
	cmd := guest.Command{Args: []string{"sh", "-c", "exit 5", canary}}
	if s.windows() {
		cmd = guest.Command{Args: []string{"cmd.exe", "/c", "exit 5", canary}}
	}
	_, err := s.ex.Run(s.ctx, cmd)
	if err == nil {
		t.Fatal("command exiting 5 gave no error")
	}
	if strings.Contains(err.Error(), canary) || strings.Contains(fmt.Sprintf("%+v", err), canary) {
		t.Fatalf("the error shows the command's arguments (they may be secrets): %v", err)
	}
	_, err = s.ex.Run(s.ctx, guest.Command{Script: "exit 6 # " + canary}) // a comment in sh and PowerShell
	if err == nil || strings.Contains(err.Error(), canary) {
		t.Fatalf("the error shows the script (it may hold secrets): %v", err)
	}
}

func testEmptyOutput(t *testing.T, s *session) {
	cmd := guest.Command{Args: []string{"true"}}
	if s.windows() {
		cmd = guest.Command{Script: "$null = 1"}
	}
	res := s.run(t, cmd)
	if len(res.Stdout) != 0 || len(res.Stderr) != 0 {
		t.Fatalf("stdout %q, stderr %q, want both empty", res.Stdout, res.Stderr)
	}
}

func testSeparated(t *testing.T, s *session) {
	script := "printf 'to-out\\n'\nprintf 'to-err\\n' >&2\nprintf 'more-out\\n'\n"
	if s.windows() {
		script = "Write-Output to-out\n[Console]::Error.WriteLine('to-err')\nWrite-Output more-out\n"
	}
	res := s.run(t, guest.Command{Script: script})
	if got := s.norm(res.Stdout); got != "to-out\nmore-out\n" {
		t.Fatalf("stdout %q, want %q", got, "to-out\nmore-out\n")
	}
	if got := s.norm(res.Stderr); got != "to-err\n" {
		t.Fatalf("stderr %q, want %q", got, "to-err\n")
	}
}

// catCmd copies standard input to standard output, byte for byte.
func (s *session) catCmd() guest.Command {
	if s.windows() {
		return guest.Command{Script: "$i = [Console]::OpenStandardInput(); $o = [Console]::OpenStandardOutput(); $i.CopyTo($o); $o.Flush()"}
	}
	return guest.Command{Args: []string{"cat"}}
}

// pattern returns n deterministic bytes covering every byte value.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ byte(i>>8) ^ seed
	}
	return b
}

func testStdin(t *testing.T, s *session) {
	in := append([]byte("line one\nline two\r\n\x00NUL and high bytes \xff\xfe\n"), pattern(10000, 1)...)
	cmd := s.catCmd()
	cmd.Stdin = bytes.NewReader(in)
	res := s.run(t, cmd)
	if !bytes.Equal(res.Stdout, in) {
		t.Fatalf("cat returned %d bytes, want the %d fed (first difference at %d)", len(res.Stdout), len(in), firstDiff(res.Stdout, in))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testNoStdin(t *testing.T, s *session) {
	ctx, cancel := context.WithTimeout(s.ctx, s.h.patience())
	defer cancel()
	res, err := s.ex.Run(ctx, s.catCmd())
	if errs.Is(err, errs.DeadlineExceeded) {
		t.Fatal("a command reading standard input hung: with Stdin nil the executor must give it an empty, closed standard input")
	}
	if err != nil {
		t.Fatalf("cat with no stdin: %v", err)
	}
	if len(res.Stdout) != 0 {
		t.Fatalf("cat with no stdin printed %q", res.Stdout)
	}
}

func testLargeStdin(t *testing.T, s *session) {
	// Both directions at once: an executor that writes all of stdin
	// before reading stdout deadlocks once the pipes fill.
	in := pattern(768<<10, 3)
	cmd := s.catCmd()
	cmd.Stdin = bytes.NewReader(in)
	res := s.run(t, cmd)
	if !bytes.Equal(res.Stdout, in) {
		t.Fatalf("cat returned %d bytes, want %d (first difference at %d)", len(res.Stdout), len(in), firstDiff(res.Stdout, in))
	}
}

// syncBuffer is a goroutine-safe writer that can signal when its content
// first contains a string.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   string
	seen   chan struct{}
	closed bool
}

func newSyncBuffer(want string) *syncBuffer {
	return &syncBuffer{want: want, seen: make(chan struct{})}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.want != "" && !b.closed && strings.Contains(b.buf.String(), b.want) {
		b.closed = true
		close(b.seen)
	}
	return len(p), nil
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func testStreaming(t *testing.T, s *session) {
	script := "printf 'a\\n'\nprintf 'b\\n' >&2\nprintf 'c\\n'\n"
	if s.windows() {
		script = "Write-Output a\n[Console]::Error.WriteLine('b')\nWrite-Output c\n"
	}
	out, errw := newSyncBuffer(""), newSyncBuffer("")
	res := s.run(t, guest.Command{Script: script, Stdout: out, Stderr: errw})
	if !bytes.Equal(out.Bytes(), res.Stdout) || s.norm(res.Stdout) != "a\nc\n" {
		t.Fatalf("stdout writer got %q, Result.Stdout %q, want both %q", out.Bytes(), res.Stdout, "a\nc\n")
	}
	if !bytes.Equal(errw.Bytes(), res.Stderr) || s.norm(res.Stderr) != "b\n" {
		t.Fatalf("stderr writer got %q, Result.Stderr %q, want both %q", errw.Bytes(), res.Stderr, "b\n")
	}
}

func testStreamingBeforeExit(t *testing.T, s *session) {
	// The command cannot finish before the caller has seen its first line
	// and answered on stdin: output must stream while the command runs,
	// and stdin must be fed as it comes.
	script := "echo first\nread line\necho \"got $line\"\n"
	if s.windows() {
		script = "[Console]::Out.WriteLine('first'); [Console]::Out.Flush()\n$line = [Console]::In.ReadLine()\n[Console]::Out.WriteLine(\"got $line\")\n"
	}
	pr, pw := io.Pipe()
	out := newSyncBuffer("first\n")
	if s.windows() {
		out.want = "first"
	}
	type result struct {
		res guest.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.ex.Run(s.ctx, guest.Command{Script: script, Stdin: pr, Stdout: out})
		done <- result{res, err}
	}()
	timer := time.NewTimer(s.h.patience())
	defer timer.Stop()
	select {
	case <-out.seen:
		if _, err := io.WriteString(pw, "second\n"); err != nil {
			t.Errorf("writing stdin: %v", err)
		}
		_ = pw.Close()
	case r := <-done:
		_ = pw.Close()
		t.Fatalf("Run returned before the caller answered: %v (stdout %q)", r.err, r.res.Stdout)
	case <-timer.C:
		_ = pw.CloseWithError(errors.New("guesttest: gave up"))
		r := <-done
		t.Fatalf("the first line never reached the Stdout writer while the command ran (Run: %v)", r.err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if got := s.norm(r.res.Stdout); got != "first\ngot second\n" {
		t.Fatalf("stdout %q, want %q", got, "first\ngot second\n")
	}
}

func testEnv(t *testing.T, s *session) {
	env := map[string]string{
		"MVM_A":     "a b'c\"$d`e`\\f;g|h",
		"MVM_B":     "x=y\nz",
		"MVM_EMPTY": "",
		"MVM_UNI":   "ünï ✓",
	}
	if s.windows() {
		delete(env, "MVM_EMPTY") // Windows deletes a variable set to ""
		res := s.run(t, guest.Command{Env: env, Script: "Write-Output ($env:MVM_A + '|' + $env:MVM_B + '|' + $env:MVM_UNI)"})
		if got, want := s.norm(res.Stdout), env["MVM_A"]+"|"+env["MVM_B"]+"|"+env["MVM_UNI"]+"\n"; got != want {
			t.Fatalf("script saw %q, want %q", got, want)
		}
		return
	}
	const show = `printf '%s|%s|%s|%s|%s' "$MVM_A" "$MVM_B" "${MVM_EMPTY-unset}" "$MVM_UNI" "${MVM_NOT_SET-unset}"`
	want := env["MVM_A"] + "|" + env["MVM_B"] + "||" + env["MVM_UNI"] + "|unset"
	res := s.run(t, guest.Command{Env: env, Args: []string{"sh", "-c", show}})
	if got := string(res.Stdout); got != want {
		t.Fatalf("Args saw %q, want %q", got, want)
	}
	res = s.run(t, guest.Command{Env: env, Script: show})
	if got := string(res.Stdout); got != want {
		t.Fatalf("Script saw %q, want %q", got, want)
	}
	// Env reaches the program as its environment, not only the shell's.
	res = s.run(t, guest.Command{Env: map[string]string{"MVM_A": "v"}, Args: []string{"env"}})
	if !slices.Contains(strings.Split(string(res.Stdout), "\n"), "MVM_A=v") {
		t.Fatalf("env did not list MVM_A=v:\n%s", res.Stdout)
	}
}

func testDir(t *testing.T, s *session) {
	sub := s.join(s.dir, "sub dir 'q' $x")
	s.mkdir(t, sub)
	if s.windows() {
		s.run(t, guest.Command{Dir: sub, Script: "Set-Content -NoNewline -Path marker.txt -Value X"})
		if got := string(s.readFile(t, s.join(sub, "marker.txt"))); got != "X" {
			t.Fatalf("marker written in Dir reads %q, want %q", got, "X")
		}
		// Args reach a cmdlet as quoted literals, so they bind as
		// positional values, never as parameter names ("-Raw" would be
		// a path): pass only positional arguments.
		res := s.run(t, guest.Command{Dir: sub, Args: []string{"Get-Content", "marker.txt"}})
		if got := strings.TrimSpace(s.norm(res.Stdout)); got != "X" {
			t.Fatalf("Get-Content in Dir printed %q", got)
		}
		return
	}
	s.run(t, guest.Command{Dir: sub, Args: []string{"sh", "-c", "printf X > marker.txt"}})
	if got := string(s.readFile(t, s.join(sub, "marker.txt"))); got != "X" {
		t.Fatalf("marker written in Dir reads %q, want %q", got, "X")
	}
	if got := string(s.run(t, guest.Command{Dir: sub, Script: "cat marker.txt"}).Stdout); got != "X" {
		t.Fatalf("script in Dir printed %q", got)
	}
	if got := string(s.run(t, guest.Command{Dir: sub, Args: []string{"cat", "marker.txt"}}).Stdout); got != "X" {
		t.Fatalf("cat in Dir printed %q", got)
	}
	// Dir and Env together.
	res := s.run(t, guest.Command{Dir: sub, Env: map[string]string{"MVM_F": "marker.txt"}, Script: `cat "$MVM_F"`})
	if string(res.Stdout) != "X" {
		t.Fatalf("Dir+Env printed %q", res.Stdout)
	}
}

func testDirMissing(t *testing.T, s *session) {
	marker := s.join(s.dir, "ran")
	missing := s.join(s.dir, "no-such-dir")
	cmd := guest.Command{Dir: missing, Args: []string{"sh", "-c", `echo ran > "$1"`, "sh", marker}}
	if s.windows() {
		cmd = guest.Command{Dir: missing, Script: "Set-Content -Path " + guest.PowerShellQuote(marker) + " -Value ran"}
	}
	_, err := s.ex.Run(s.ctx, cmd)
	if err == nil {
		t.Fatal("a command with a missing Dir succeeded")
	}
	if s.exists(t, marker) {
		t.Fatal("a command with a missing Dir ran anyway (in some other directory)")
	}
}

// numbered returns n lines of 64 bytes: prefix, a zero-padded number, "\n".
func numbered(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s%0*d\n", prefix, 63-len(prefix), i)
	}
	return b.String()
}

func (s *session) numberedScript(prefix string, n int, stderr bool) string {
	if s.windows() {
		stream := "Out"
		if stderr {
			stream = "Error"
		}
		return fmt.Sprintf("$sb = [Text.StringBuilder]::new(); for ($i = 0; $i -lt %d; $i++) { [void]$sb.Append(%s).Append($i.ToString('D%d')).Append(\"`n\") }; [Console]::%s.Write($sb.ToString()); [Console]::%s.Flush()\n",
			n, guest.PowerShellQuote(prefix), 63-len(prefix), stream, stream)
	}
	redir := ""
	if stderr {
		redir = " >&2"
	}
	return fmt.Sprintf("i=0; while [ $i -lt %d ]; do printf '%s%%0%dd\\n' $i%s; i=$((i+1)); done\n", n, prefix, 63-len(prefix), redir)
}

func testLargeOutput(t *testing.T, s *session) {
	const lines = 4096 // 256 KiB
	res := s.run(t, guest.Command{Script: s.numberedScript("", lines, false)})
	if want := numbered("", lines); string(res.Stdout) != want {
		t.Fatalf("got %d bytes of output, want %d (first difference at %d)", len(res.Stdout), len(want), firstDiff(res.Stdout, []byte(want)))
	}
}

func testLargeBoth(t *testing.T, s *session) {
	// 256 KiB to stderr first, then 256 KiB to stdout: an executor that
	// reads stdout to the end before reading stderr deadlocks.
	const lines = 4096
	res := s.run(t, guest.Command{Script: s.numberedScript("E", lines, true) + s.numberedScript("O", lines, false)})
	if want := numbered("O", lines); string(res.Stdout) != want {
		t.Fatalf("stdout: %d bytes, want %d (first difference at %d)", len(res.Stdout), len(want), firstDiff(res.Stdout, []byte(want)))
	}
	if want := numbered("E", lines); string(res.Stderr) != want {
		t.Fatalf("stderr: %d bytes, want %d (first difference at %d)", len(res.Stderr), len(want), firstDiff(res.Stderr, []byte(want)))
	}
}

func (s *session) mode(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(string(s.run(t, guest.Command{Args: []string{"stat", "-c", "%a", "--", path}}).Stdout))
}

func testUpload(t *testing.T, s *session) {
	content := pattern(200<<10, 5)
	path := s.join(s.dir, "up load 'file'.bin")
	if err := s.ex.Upload(s.ctx, path, bytes.NewReader(content), guest.UploadOptions{Mode: 0o600}); err != nil {
		t.Fatalf("Upload: %v (code %v)", err, errs.CodeOf(err))
	}
	if got := s.readFile(t, path); !bytes.Equal(got, content) {
		t.Fatalf("read back %d bytes, want %d (first difference at %d)", len(got), len(content), firstDiff(got, content))
	}
	if s.windows() {
		return
	}
	if m := s.mode(t, path); m != "600" {
		t.Fatalf("mode %s, want 600", m)
	}
	for _, c := range []struct {
		mode fs.FileMode
		want string
	}{{0, "644"}, {0o755, "755"}, {0o640, "640"}} {
		p := s.join(s.dir, "mode-"+c.want)
		if err := s.ex.Upload(s.ctx, p, strings.NewReader("#!/bin/sh\n"), guest.UploadOptions{Mode: c.mode}); err != nil {
			t.Fatalf("Upload mode %v: %v", c.mode, err)
		}
		if m := s.mode(t, p); m != c.want {
			t.Fatalf("upload with Mode %v: mode %s, want %s", c.mode, m, c.want)
		}
	}
	// Re-uploading with another mode changes the mode.
	if err := s.ex.Upload(s.ctx, path, bytes.NewReader(content), guest.UploadOptions{Mode: 0o640}); err != nil {
		t.Fatal(err)
	}
	if m := s.mode(t, path); m != "640" {
		t.Fatalf("mode after re-upload %s, want 640", m)
	}
}

func testUploadEmpty(t *testing.T, s *session) {
	path := s.join(s.dir, "empty")
	if err := s.ex.Upload(s.ctx, path, strings.NewReader(""), guest.UploadOptions{}); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if !s.exists(t, path) {
		t.Fatal("an empty upload created no file")
	}
	if got := s.readFile(t, path); len(got) != 0 {
		t.Fatalf("empty upload reads back %q", got)
	}
}

// gateReader returns first, then blocks until release is closed (or ctx
// is done), then returns rest or fails.
type gateReader struct {
	first, rest []byte
	readFirst   chan struct{} // closed once first has been returned
	release     <-chan struct{}
	ctx         context.Context
	failWith    error // returned after release instead of rest
	stage       int
}

func (g *gateReader) Read(p []byte) (int, error) {
	switch g.stage {
	case 0:
		n := copy(p, g.first)
		g.first = g.first[n:]
		if len(g.first) == 0 {
			g.stage = 1
			close(g.readFirst)
		}
		return n, nil
	case 1:
		select {
		case <-g.release:
		case <-g.ctx.Done():
			return 0, errors.New("guesttest: reader interrupted")
		}
		if g.failWith != nil {
			return 0, g.failWith
		}
		g.stage = 2
		fallthrough
	default:
		if len(g.rest) == 0 {
			return 0, io.EOF
		}
		n := copy(p, g.rest)
		g.rest = g.rest[n:]
		return n, nil
	}
}

// uploadDir makes a subdirectory holding target with content old.
func (s *session) uploadDir(t *testing.T, old []byte) (dir, target string) {
	t.Helper()
	dir = s.join(s.dir, "atomic")
	s.mkdir(t, dir)
	target = s.join(dir, "target")
	if err := s.ex.Upload(s.ctx, target, bytes.NewReader(old), guest.UploadOptions{}); err != nil {
		t.Fatalf("first Upload: %v", err)
	}
	return dir, target
}

func (s *session) checkUnchanged(t *testing.T, dir, target string, old []byte) {
	t.Helper()
	if got := s.readFile(t, target); !bytes.Equal(got, old) {
		t.Fatalf("the old content was damaged: read %d bytes, want the %d of the old file", len(got), len(old))
	}
	if names := s.list(t, dir); !slices.Equal(names, []string{"target"}) {
		t.Fatalf("directory holds %q, want only the target (a temporary file was left behind?)", names)
	}
}

func testUploadAtomic(t *testing.T, s *session) {
	old := pattern(64<<10, 7)
	dir, target := s.uploadDir(t, old)
	next := pattern(300<<10, 9)
	release := make(chan struct{})
	g := &gateReader{first: next[:100<<10], rest: next[100<<10:], readFirst: make(chan struct{}), release: release, ctx: s.ctx}
	done := make(chan error, 1)
	go func() { done <- s.ex.Upload(s.ctx, target, g, guest.UploadOptions{}) }()
	select {
	case <-g.readFirst:
	case err := <-done:
		t.Fatalf("Upload returned before reading its input: %v", err)
	case <-s.ctx.Done():
		t.Fatal("Upload never read its input")
	}
	// Half-way through the upload the old content is still whole.
	if got := s.readFile(t, target); !bytes.Equal(got, old) {
		close(release)
		<-done
		t.Fatalf("during an upload the target reads %d bytes, not the %d of the old content: the upload is not atomic", len(got), len(old))
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("second Upload: %v", err)
	}
	if got := s.readFile(t, target); !bytes.Equal(got, next) {
		t.Fatalf("after the upload the target reads %d bytes, want %d", len(got), len(next))
	}
	if names := s.list(t, dir); !slices.Equal(names, []string{"target"}) {
		t.Fatalf("directory holds %q, want only the target", names)
	}
}

func testUploadCanceled(t *testing.T, s *session) {
	path := s.join(s.dir, "never")
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	err := s.ex.Upload(ctx, path, strings.NewReader("content"), guest.UploadOptions{})
	wantCode(t, "Upload with a canceled context", err, errs.Canceled)
	if s.exists(t, path) {
		t.Fatal("Upload with a canceled context created the file")
	}
	if names := s.list(t, s.dir); len(names) != 0 {
		t.Fatalf("Upload with a canceled context left %q", names)
	}
}

func testUploadCanceledMidway(t *testing.T, s *session) {
	old := []byte("old content\n")
	dir, target := s.uploadDir(t, old)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	next := pattern(200<<10, 11)
	g := &gateReader{first: next[:64<<10], rest: next[64<<10:], readFirst: make(chan struct{}), release: make(chan struct{}), ctx: ctx}
	done := make(chan error, 1)
	go func() { done <- s.ex.Upload(ctx, target, g, guest.UploadOptions{}) }()
	select {
	case <-g.readFirst:
	case err := <-done:
		t.Fatalf("Upload returned before reading its input: %v", err)
	}
	cancel()
	canceledAt := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(CancelGrace + 5*time.Second):
		t.Fatal("Upload did not return after its context was canceled")
	}
	if d := time.Since(canceledAt); d > CancelGrace {
		t.Errorf("Upload took %v to return after cancel, want at most %v", d, CancelGrace)
	}
	wantCode(t, "Upload canceled midway", err, errs.Canceled)
	s.checkUnchanged(t, dir, target, old)
}

func testUploadReaderFails(t *testing.T, s *session) {
	old := []byte("old content\n")
	dir, target := s.uploadDir(t, old)
	release := make(chan struct{})
	close(release)
	boom := errors.New("guesttest: source failed")
	g := &gateReader{first: pattern(64<<10, 13), readFirst: make(chan struct{}), release: release, ctx: s.ctx, failWith: boom}
	err := s.ex.Upload(s.ctx, target, g, guest.UploadOptions{})
	if err == nil {
		t.Fatal("Upload from a failing reader succeeded")
	}
	if !errors.Is(err, boom) && errs.CodeOf(err) == errs.OK {
		t.Fatalf("Upload error %v", err)
	}
	s.checkUnchanged(t, dir, target, old)
}

func testUploadMissingDir(t *testing.T, s *session) {
	path := s.join(s.join(s.dir, "no-such-dir"), "file")
	err := s.ex.Upload(s.ctx, path, strings.NewReader("x"), guest.UploadOptions{})
	if err == nil {
		t.Fatal("Upload into a missing directory succeeded")
	}
	if c := errs.CodeOf(err); c == errs.Canceled || c == errs.DeadlineExceeded {
		t.Fatalf("Upload into a missing directory: %v (code %v)", err, c)
	}
	if names := s.list(t, s.dir); len(names) != 0 {
		t.Fatalf("failed Upload left %q", names)
	}
}

// runUntilStarted starts cmd, waits until its stdout shows "started", calls stop,
// and returns Run's error and how long Run took after stop.
func (s *session) runUntilStarted(t *testing.T, ctx context.Context, cmd guest.Command, stop func()) (string, time.Duration, error) {
	t.Helper()
	out := newSyncBuffer("started")
	cmd.Stdout = out
	type result struct {
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		_, err := s.ex.Run(ctx, cmd)
		done <- result{err, time.Now()}
	}()
	select {
	case <-out.seen:
	case r := <-done:
		t.Fatalf("the command ended before it was stopped: %v (stdout %q)", r.err, out.Bytes())
	case <-s.ctx.Done():
		t.Fatal("the command never printed \"started\"")
	}
	stopped := time.Now()
	if stop != nil {
		stop()
	}
	select {
	case r := <-done:
		return string(out.Bytes()), r.at.Sub(stopped), r.err
	case <-time.After(CancelGrace + 10*time.Second):
		t.Fatalf("Run did not return %v after its context was done", CancelGrace+10*time.Second)
	}
	return "", 0, nil
}

func testCancel(t *testing.T, s *session) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	_, took, err := s.runUntilStarted(t, ctx, s.sleepCmd(false), cancel)
	wantCode(t, "Run canceled mid-command", err, errs.Canceled)
	if took > CancelGrace {
		t.Fatalf("Run took %v to return after cancel, want at most %v", took, CancelGrace)
	}
	// The executor still works.
	s.run(t, guest.Command{Script: "exit 0"})
}

func testDeadline(t *testing.T, s *session) {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, _, err := s.runUntilStarted(t, ctx, s.sleepCmd(false), nil)
	wantCode(t, "Run past its deadline", err, errs.DeadlineExceeded)
	if late := time.Since(deadline); late > CancelGrace {
		t.Fatalf("Run returned %v after its deadline, want at most %v", late, CancelGrace)
	}
}

func testCommandTimeout(t *testing.T, s *session) {
	cmd := s.sleepCmd(false)
	cmd.Timeout = time.Second
	start := time.Now()
	_, err := s.ex.Run(s.ctx, cmd)
	wantCode(t, "Run past Command.Timeout", err, errs.DeadlineExceeded)
	if took := time.Since(start); took > time.Second+CancelGrace {
		t.Fatalf("Run with a 1 s Timeout took %v", took)
	}
	if s.ctx.Err() != nil {
		t.Fatal("the test's own context ended")
	}
}

func testCancelStops(t *testing.T, s *session) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	out, _, err := s.runUntilStarted(t, ctx, s.sleepCmd(true), cancel)
	wantCode(t, "Run canceled mid-command", err, errs.Canceled)
	pid, perr := strconv.Atoi(strings.TrimSpace(strings.SplitN(s.norm([]byte(out)), "\n", 2)[0]))
	if perr != nil {
		t.Fatalf("the command printed no process id: %q", out)
	}
	alive := guest.Command{Args: []string{"kill", "-0", strconv.Itoa(pid)}}
	if s.windows() {
		alive = guest.Command{Script: fmt.Sprintf("if (Get-Process -Id %d -ErrorAction SilentlyContinue) { exit 0 } else { exit 1 }", pid)}
	}
	// The remote process may take a moment to die: poll, within a bound.
	deadline := time.Now().Add(s.h.patience())
	for {
		_, err := s.ex.Run(s.ctx, alive)
		var ee *guest.ExitError
		if errors.As(err, &ee) {
			return // gone
		}
		if err != nil {
			t.Fatalf("checking process %d: %v", pid, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs %v after its Run was canceled: cancellation must stop the remote command", pid, s.h.patience())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testInvalid(t *testing.T, s *session) {
	marker := s.join(s.dir, "ran")
	probe := []string{"sh", "-c", `echo ran > "$1"`, "sh", marker}
	if s.windows() {
		// Positional: quoted "-Path" would be a value, not a parameter.
		probe = []string{"Set-Content", marker, "ran"}
	}
	bad := map[string]guest.Command{
		"empty":            {},
		"args and script":  {Args: probe, Script: "exit 0"},
		"empty program":    {Args: []string{"", "x"}},
		"bad env name":     {Args: probe, Env: map[string]string{"BAD NAME": "x"}},
		"env name =":       {Args: probe, Env: map[string]string{"A=B": "x"}},
		"negative timeout": {Args: probe, Timeout: -time.Second},
		"NUL in argument":  {Args: append(slices.Clone(probe), "a\x00b")},
	}
	for name, cmd := range bad {
		_, err := s.ex.Run(s.ctx, cmd)
		wantCode(t, name, err, errs.InvalidArgument)
	}
	if s.exists(t, marker) {
		t.Fatal("a rejected command ran")
	}
	if _, err := s.ex.Run(s.ctx, guest.Command{Args: probe}); err != nil {
		t.Fatalf("the probe itself fails: %v", err)
	}
	if !s.exists(t, marker) {
		t.Fatal("the probe does not create its marker, so this case proves nothing")
	}
	// Upload arguments.
	if err := s.ex.Upload(s.ctx, "", strings.NewReader("x"), guest.UploadOptions{}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("Upload to an empty path: %v (code %v), want InvalidArgument", err, errs.CodeOf(err))
	}
}

func testNonexistent(t *testing.T, s *session) {
	_, err := s.ex.Run(s.ctx, guest.Command{Args: []string{"managedvm-no-such-program-4b1e", "arg"}})
	var ee *guest.ExitError
	switch {
	case errors.As(err, &ee):
		if !s.windows() && ee.Code != 127 {
			t.Fatalf("a missing program exited %d, want 127", ee.Code)
		}
		if ee.Code == 0 {
			t.Fatal("ExitError with code 0")
		}
	case errs.CodeOf(err) == errs.NotFound:
	default:
		t.Fatalf("a missing program: %v (code %v), want an *guest.ExitError or NotFound", err, errs.CodeOf(err))
	}
}

func testConcurrent(t *testing.T, s *session) {
	const n = 16
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("worker-%02d:%s", i, strings.Repeat(strconv.Itoa(i%10), 4096*(i+1)))
			var cmd guest.Command
			switch {
			case i%2 == 0 && !s.windows():
				cmd = guest.Command{Args: []string{"printf", "%s", want}}
			case i%2 == 0:
				// The script builds the output: a 64 KiB literal would not
				// fit a WinRM command line (8191 characters).
				cmd = guest.Command{Script: fmt.Sprintf("[Console]::Out.Write('worker-%02d:' + ('%d' * %d))", i, i%10, 4096*(i+1))}
			default:
				cmd = s.catCmd()
				cmd.Stdin = strings.NewReader(want)
			}
			res, err := s.ex.Run(s.ctx, cmd)
			switch {
			case err != nil:
				errc <- fmt.Errorf("worker %d: %w", i, err)
			case string(res.Stdout) != want:
				errc <- fmt.Errorf("worker %d: got %d bytes starting %q, want %d starting %q", i, len(res.Stdout), clip(res.Stdout[:min(len(res.Stdout), 20)]), len(want), want[:20])
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func testDetectFacts(t *testing.T, s *session) {
	f, err := guest.DetectFacts(s.ctx, s.ex)
	if err != nil {
		t.Fatalf("DetectFacts: %v", err)
	}
	if f.Family != s.h.Family {
		t.Fatalf("facts family %v, want %v", f.Family, s.h.Family)
	}
	if s.windows() {
		if f.Name == "" || f.Version == "" {
			t.Fatalf("facts without name or version: %+v", f)
		}
		return
	}
	if f.Kernel == "" || f.Arch == "" {
		t.Fatalf("facts without kernel or architecture: %+v", f)
	}
}

func testSudo(t *testing.T, s *session) {
	if !s.h.Sudo {
		t.Skip("the harness says the executor cannot run commands as root (Harness.Sudo)")
	}
	if s.windows() {
		t.Skip("Sudo is a Linux feature")
	}
	res := s.run(t, guest.Command{Args: []string{"id", "-u"}, Sudo: true})
	if got := strings.TrimSpace(string(res.Stdout)); got != "0" {
		t.Fatalf("id -u with Sudo printed %q, want 0", got)
	}
	in := "through sudo\n"
	res = s.run(t, guest.Command{Args: []string{"cat"}, Sudo: true, Stdin: strings.NewReader(in)})
	if string(res.Stdout) != in {
		t.Fatalf("cat with Sudo printed %q, want %q (the password must not reach the command's stdin)", res.Stdout, in)
	}
}

func testClose(t *testing.T, s *session) {
	s.run(t, guest.Command{Script: "exit 0"})
	if err := s.ex.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := s.ex.Run(s.ctx, guest.Command{Script: "exit 0"})
	if !errors.Is(err, guest.ErrClosed) {
		t.Fatalf("Run after Close: %v, want guest.ErrClosed", err)
	}
	wantCode(t, "Run after Close", err, errs.FailedPrecondition)
	err = s.ex.Upload(s.ctx, s.join(s.dir, "after-close"), strings.NewReader("x"), guest.UploadOptions{})
	if !errors.Is(err, guest.ErrClosed) {
		t.Fatalf("Upload after Close: %v, want guest.ErrClosed", err)
	}
	if err := s.ex.Close(); !errors.Is(err, guest.ErrClosed) {
		t.Fatalf("second Close: %v, want guest.ErrClosed", err)
	}
}
