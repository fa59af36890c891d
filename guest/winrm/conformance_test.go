package winrm_test

import (
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

// TestConformance runs the guest suite against the executor talking to the
// wire-level fake WinRM server, whose PowerShell interpreter runs the
// suite's commands for real over a temporary directory.
func TestConformance(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	guesttest.Run(t, guesttest.Harness{
		Family: guest.Windows,
		New: func(t *testing.T) (guest.Executor, string) {
			return g.executor(t, nil), g.dir(t)
		},
	})
}
