package memguest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
	"github.com/managedvm/managedvm/guest/memguest"
)

// runLocally is a memguest handler that runs each command for real on this
// machine: Args directly (exec, no shell), Scripts with /bin/sh -c. It lets
// the conformance suite check memguest against real POSIX semantics.
func runLocally(ctx context.Context, cmd guest.Command) (guest.Result, error) {
	if cmd.Sudo {
		return guest.Result{}, errs.New(errs.Unimplemented, "runLocally", "no sudo in tests")
	}
	var c *exec.Cmd
	if len(cmd.Args) > 0 {
		c = exec.CommandContext(ctx, cmd.Args[0], cmd.Args[1:]...)
	} else {
		c = exec.CommandContext(ctx, "/bin/sh", "-c", cmd.Script)
	}
	c.Env = os.Environ()
	for k, v := range cmd.Env {
		c.Env = append(c.Env, k+"="+v)
	}
	c.Dir = cmd.Dir
	return runProcess(ctx, c, cmd)
}

// runThroughShell is a memguest handler that runs each command the way an
// SSH executor does: the line guest.ShellCommandLine builds, run by shell
// with -c. It checks the library's quoting against real shells.
func runThroughShell(shell string) memguest.Handler {
	return func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
		if cmd.Sudo {
			return guest.Result{}, errs.New(errs.Unimplemented, "runThroughShell", "no sudo in tests")
		}
		return runProcess(ctx, exec.CommandContext(ctx, shell, "-c", guest.ShellCommandLine(cmd)), cmd)
	}
}

func runProcess(ctx context.Context, c *exec.Cmd, cmd guest.Command) (guest.Result, error) {
	c.Stdin, c.Stdout, c.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
	c.WaitDelay = time.Second
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return guest.Result{}, nil
	case ctx.Err() != nil:
		return guest.Result{}, ctx.Err()
	case errors.Is(err, exec.ErrNotFound):
		_, _ = cmd.Stderr.Write([]byte(c.Args[0] + ": not found\n"))
		return guest.Result{ExitCode: 127}, nil
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return guest.Result{ExitCode: ee.ExitCode()}, nil
	}
	return guest.Result{}, err
}

// writeLocally writes an upload to disk atomically: a temporary file in
// the same directory, then a rename.
func writeLocally(_ context.Context, path string, content []byte, opts guest.UploadOptions) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(opts.Mode.Perm()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func localHarness(h memguest.Handler) guesttest.Harness {
	return guesttest.Harness{
		Family: guest.Linux,
		New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
			ex := memguest.New(guest.Linux, &memguest.Options{Default: h, Upload: writeLocally, Executor: opts})
			t.Cleanup(func() { _ = ex.Close() })
			return ex, t.TempDir()
		},
	}
}

// resolve returns the file a shell's name runs, symbolic links followed.
func resolve(shell string) string {
	p, err := exec.LookPath(shell)
	if err != nil {
		return shell
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

func needShell(t *testing.T, shell string) {
	t.Helper()
	if _, err := exec.LookPath(shell); err != nil {
		t.Skipf("this conformance run needs %s: %v", shell, err)
	}
}

// TestConformance runs the suite with the commands executed for real, as
// argument vectors (no shell).
func TestConformance(t *testing.T) {
	t.Parallel()
	needShell(t, "/bin/sh")
	guesttest.Run(t, localHarness(runLocally))
}

// TestConformanceShellCommandLine runs the suite with every command turned
// into a guest.ShellCommandLine and run by dash, then by bash.
func TestConformanceShellCommandLine(t *testing.T) {
	seen := map[string]string{} // resolved program -> the name it was run as
	for _, shell := range []string{"dash", "bash", "/bin/sh"} {
		t.Run(shell, func(t *testing.T) {
			needShell(t, shell)
			if other, ok := seen[resolve(shell)]; ok {
				// On Debian /bin/sh is dash: the same program twice
				// checks nothing more.
				t.Skipf("%s is %s, which ran already", shell, other)
			}
			seen[resolve(shell)] = shell
			t.Parallel()
			guesttest.Run(t, localHarness(runThroughShell(shell)))
		})
	}
}
