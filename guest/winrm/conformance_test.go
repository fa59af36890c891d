package winrm_test

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

// TestConformance runs the guest suite against the executor talking to the
// wire-level fake WinRM server, whose PowerShell interpreter runs the
// suite's commands for real over a temporary directory.
func TestConformance(t *testing.T) {
	t.Parallel() // the suite mostly waits out deadlines
	g := newFakeGuest(t, winrmserver.Options{})
	guesttest.Run(t, guesttest.Harness{
		Family: guest.Windows,
		New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
			o := g.options()
			o.Executor = opts
			return g.executor(t, o), g.dir(t)
		},
	})
}

// TestCredentialLimits holds winrm.New to the credential limits every
// transport shares.
func TestCredentialLimits(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	guesttest.RunCredentials(t, guest.Password(testUser, testPassword), func(ctx context.Context, cred guest.Credentials) (*guest.Executor, error) {
		ex, err := winrm.New(g.srv.Host(), cred, g.options())
		if err == nil {
			_, err = ex.Run(ctx, guest.Command{Script: "exit 0"})
		}
		return ex, err
	})
}
