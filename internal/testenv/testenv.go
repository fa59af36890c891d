package testenv

import (
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing stops the test because component is not available: t.Skip with
// the message "MISSING COMPONENT <component>: <howToGetIt>" normally,
// t.Fatal under CI. howToGetIt is one sentence saying how to get the
// component ("set MANAGEDVM_PG_URL to a PostgreSQL URL (bash .ci/run
// starts a server)"). The skip is counted for [Main]'s summary.
func Missing(t testing.TB, component, howToGetIt string) {
	t.Helper()
	msg := "MISSING COMPONENT " + component + ": " + howToGetIt
	if InCI() {
		t.Fatal(msg + " (CI=true: level-3 tests must run)")
	}
	skips.add(component, howToGetIt)
	t.Skip(msg)
}

// Env returns the value of the environment variable name, or stops the
// test through Missing when it is empty; howToGetIt should name the
// variable (Env adds nothing to it).
func Env(t testing.TB, name, component, howToGetIt string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, component, howToGetIt)
	}
	return v
}

// tally counts the tests Missing skipped, per component.
type tally struct {
	mu    sync.Mutex
	count map[string]int
	how   map[string]string
}

// skips is the test binary's tally: one process runs one package's
// tests, and Missing is called from many of them, in parallel.
var skips tally

func (s *tally) add(component, how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count == nil {
		s.count, s.how = map[string]int{}, map[string]string{}
	}
	if _, ok := s.count[component]; !ok {
		s.how[component] = how // the first test's words
	}
	s.count[component]++
}

// lines returns one line per missing component, sorted by component:
// "pgcmdb: 14 tests skipped: no PostgreSQL; set MANAGEDVM_PG_URL ...".
func (s *tally) lines(pkg string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range slices.Sorted(maps.Keys(s.count)) {
		n := s.count[c]
		tests := "tests"
		if n == 1 {
			tests = "test"
		}
		out = append(out, pkg+": "+strconv.Itoa(n)+" "+tests+" skipped: no "+c+"; "+strings.TrimSuffix(s.how[c], ".")+".")
	}
	return out
}

// Parallel lets up to n parallel tests of the package run at once, unless
// the command line chose (-parallel, -test.parallel); call it from
// TestMain before [Main]. Without it, go test runs GOMAXPROCS parallel
// tests at a time: two on a 2-core machine. That bound suits tests that
// use the CPU; it serialises tests that wait on a clock, a guest command or
// a server, such as a conformance case checking that a 1 s timeout fires.
// Use it only in packages whose parallel tests mostly wait.
func Parallel(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	chosen := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			chosen = true
		}
	})
	f := flag.Lookup("test.parallel")
	if chosen || f == nil {
		return
	}
	if cur, err := strconv.Atoi(f.Value.String()); err == nil && cur < n {
		_ = f.Value.Set(strconv.Itoa(n))
	}
}

// Main runs the package's tests and returns the exit code for os.Exit;
// call it from the package's TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// After the tests it prints one line per component whose absence made
// tests skip (through Missing or Env), naming the package, how many tests
// skipped and how to get the component:
//
//	pgcmdb: 14 tests skipped: no PostgreSQL; set MANAGEDVM_PG_URL to a PostgreSQL URL (...).
//
// go test shows a passing package's output only with -v; so that a plain
// `go test ./...` shows the line next to the package's "ok", Main also
// writes it to the standard output of the go command that runs the test
// binary, where the platform lets it find it (Linux: /proc/PPID/fd/1, when
// the parent process is go and its output is a terminal or a pipe; not
// with -v or -json, whose output is already shown or parsed; not into a
// regular file). A result go test replays from its cache ("(cached)")
// prints no line: the line comes with every run that ran the tests.
func Main(m *testing.M) int {
	code := m.Run()
	lines := skips.lines(packageName(os.Args[0]))
	if len(lines) == 0 {
		return code
	}
	text := strings.Join(lines, "\n") + "\n"
	_, _ = io.WriteString(os.Stdout, text)
	if !testing.Verbose() {
		if w := goStdout(); w != nil {
			_, _ = io.WriteString(w, text)
			_ = w.Close()
		}
	}
	return code
}

// packageName turns a test binary's path ("/tmp/go-build.../pgcmdb.test")
// into the package's name ("pgcmdb").
func packageName(binary string) string {
	name := strings.TrimSuffix(filepath.Base(binary), ".exe")
	return strings.TrimSuffix(name, ".test")
}

// goStdout opens the standard output of the parent process if it is the go
// command (Linux only), or returns nil.
func goStdout() io.WriteCloser {
	if runtime.GOOS != "linux" {
		return nil
	}
	ppid := strconv.Itoa(os.Getppid())
	comm, err := os.ReadFile("/proc/" + ppid + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return nil
	}
	// Not into a regular file (go test > log): the go command writes at
	// its own offset and would overwrite the line.
	if fi, err := os.Stat("/proc/" + ppid + "/fd/1"); err != nil || fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.OpenFile("/proc/"+ppid+"/fd/1", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil
	}
	return f
}
