package vsphere_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
)

// TestGuestConformance runs the guest executor conformance suite over
// guest operations on the simulator, whose guest processes run here with
// /bin/sh (vspheresim without a GuestHandler).
func TestGuestConformance(t *testing.T) {
	t.Parallel() // mostly waiting out the suite's timeouts
	w := newWorld(t, nil)
	guesttest.Run(t, guesttest.Harness{
		Family: guest.Linux,
		New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
			ex, err := w.p.GuestExecutorWith(t.Context(), w.guestVM, guest.Password(guestUser, guestPass), opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ex.Close() })
			dir, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return ex, dir
		},
		Skip: map[string]string{
			"StreamingBeforeExit": "guest operations have no pipes: standard input is uploaded before the program starts, so a program cannot get an answer to what it printed",
		},
	})
}

// TestGuestCredentialLimits holds guest operations to the credential
// limits every transport shares.
func TestGuestCredentialLimits(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	guesttest.RunCredentials(t, guest.Password(guestUser, guestPass), func(ctx context.Context, cred guest.Credentials) (*guest.Executor, error) {
		return w.p.GuestExecutor(ctx, w.guestVM, cred)
	})
}

// TestGuestTempFilesRemoved checks that a Run leaves no temporary
// directory in the guest.
func TestGuestTempFilesRemoved(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	ctx := context.Background()
	ex, err := w.p.GuestExecutor(ctx, w.guestVM, guest.Password(guestUser, guestPass))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "managedvm-*"))
	out, err := guest.Output(ctx, ex, guest.Command{Args: []string{"sh", "-c", "echo $0; echo err >&2", "hello"}, Stdin: nil})
	if err != nil || out != "hello" {
		t.Fatalf("Run: %q, %v", out, err)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "managedvm-*"))
	if len(after) > len(before) {
		t.Errorf("Run left temporary directories: before %v, after %v", before, after)
	}
	// Tools stopped: FailedPrecondition with a clear message.
	ref, _ := w.sim.VMByUUID(ctx, w.guestVM)
	if err := w.sim.SetGuest(ref.Reference(), vcsimNoTools()); err != nil {
		t.Fatal(err)
	}
	err = w.p.ValidateCredentials(ctx, w.guestVM, guest.Password(guestUser, guestPass))
	if errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("tools not running: %v (code %v), want FailedPrecondition", err, errs.CodeOf(err))
	}
}
