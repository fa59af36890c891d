package testenv_test

import (
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const childEnv = "TESTENV_TEST_CHILD"

// TestChild is the child side of TestSummary: it stands for a package
// whose tests miss two components. It does nothing in a normal run.
func TestChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("only run as a child of TestSummary")
	}
	for _, name := range []string{"a", "b", "c"} {
		t.Run("pg-"+name, func(t *testing.T) {
			t.Parallel()
			testenv.Env(t, "TESTENV_TEST_NO_SUCH_VARIABLE", "PostgreSQL", "set TESTENV_TEST_NO_SUCH_VARIABLE to a PostgreSQL URL (bash .ci/run starts a server)")
			t.Error("Env returned for an unset variable")
		})
	}
	t.Run("sshd", func(t *testing.T) {
		testenv.Missing(t, "OpenSSH sshd", "apt-get install openssh-server.")
		t.Error("Missing returned")
	})
	t.Run("runs", func(t *testing.T) {})
}

func runChild(t *testing.T, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(append(os.Environ(), childEnv+"=1", "TESTENV_TEST_NO_SUCH_VARIABLE="), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSummary: after the tests, Main prints one line per missing
// component with the number of tests it skipped and how to get it, and
// nothing for components that were there.
func TestSummary(t *testing.T) {
	out, err := runChild(t, "CI=")
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := []string{
		"testenv: 1 test skipped: no OpenSSH sshd; apt-get install openssh-server.",
		"testenv: 3 tests skipped: no PostgreSQL; set TESTENV_TEST_NO_SUCH_VARIABLE to a PostgreSQL URL (bash .ci/run starts a server).",
	}
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "testenv: ") {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("summary lines:\n%s\nwant:\n%s\nwhole output:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out)
	}
	if !strings.Contains(out, "--- SKIP: TestChild/pg-a") || !strings.Contains(out, "MISSING COMPONENT PostgreSQL: set TESTENV_TEST_NO_SUCH_VARIABLE") {
		t.Fatalf("the skip message is not the one-sentence one:\n%s", out)
	}
}

// TestMissingFailsInCI: under CI=true a missing component fails the test
// instead of skipping it.
func TestMissingFailsInCI(t *testing.T) {
	out, err := runChild(t, "CI=true")
	if err == nil {
		t.Fatalf("the child passed under CI=true:\n%s", out)
	}
	for _, want := range []string{"--- FAIL: TestChild/pg-a", "--- FAIL: TestChild/sshd", "CI=true: level-3 tests must run"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "tests skipped") || strings.Contains(out, "test skipped") {
		t.Fatalf("failures counted as skips:\n%s", out)
	}
}

// TestParallel runs a child test binary with and without -test.parallel:
// Parallel raises the bound only when the command line left it alone, and
// never lowers it.
func TestParallel(t *testing.T) {
	if os.Getenv(parallelChildEnv) != "" {
		return
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "parallel=13"},
		{[]string{"-test.parallel=3"}, "parallel=3"},
		{[]string{"-test.parallel=40"}, "parallel=40"},
	} {
		args := append([]string{"-test.run=^TestParallelChild$", "-test.v"}, c.args...)
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), parallelChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child %v: %v\n%s", c.args, err, out)
		}
		if !strings.Contains(string(out), c.want) {
			t.Errorf("child %v: want %q in its output:\n%s", c.args, c.want, out)
		}
	}
}

const parallelChildEnv = "TESTENV_PARALLEL_CHILD"

// TestParallelChild is TestParallel's child: it calls Parallel as a
// TestMain would (the flags are parsed already, as after flag.Parse) and
// prints the bound.
func TestParallelChild(t *testing.T) {
	if os.Getenv(parallelChildEnv) == "" {
		t.Skip("only run as a child of TestParallel")
	}
	testenv.Parallel(13)
	testenv.Parallel(2) // never lowers it
	t.Logf("parallel=%s", flag.Lookup("test.parallel").Value.String())
}
