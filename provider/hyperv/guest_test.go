package hyperv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/provider/hyperv"
)

// directSkips are the guest suite's cases PowerShell Direct through a
// template cannot do, and why.
var directSkips = map[string]string{
	"Streaming":                "guest/1 answers a command's output when it ends: nothing streams while it runs",
	"StreamingBeforeExit":      "guest/1 answers a command's output when it ends: nothing streams while it runs",
	"LargeStdinThroughCat":     "standard input travels whole in the template's parameters (MaxDirectStdin), not as a stream of that size",
	"CancelMidCommand":         "the case cancels once the command's first line arrived: nothing streams while it runs",
	"DeadlineMidCommand":       "the case waits for the command's first line before its deadline: nothing streams while it runs",
	"CancelStopsRemoteCommand": "stopping the node's command ends Invoke-Command; whether the guest's powershell.exe dies with it is not established",
}

// TestGuestConformance runs the guest suite on executors of the
// provider's GuestAccess (PowerShell Direct into a running VM).
func TestGuestConformance(t *testing.T) {
	t.Parallel()
	w := newWorld(t, hypervsim.Options{}, nil)
	vm, root := guestWorld(t, w)
	var n atomic.Int64
	guesttest.Run(t, guesttest.Harness{
		Family: guest.Windows,
		Skip:   directSkips,
		New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
			pp := w.pp
			if opts != nil {
				// The executors' options come from hyperv.Options.Guest.
				p, err := hyperv.New(context.Background(), nodesOf(w.s), guest.Password(`CORP\`+testUser, testPassword),
					&hyperv.Options{Zone: "az1", TemplatesPath: `C:\ClusterStorage\Templates`, Guest: opts})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = p.Close() })
				pp = p
			}
			ga, ok := pp.GuestAccess()
			if !ok {
				t.Fatal("no GuestAccess")
			}
			ex, err := ga.GuestExecutor(context.Background(), vm, guest.Password("Administrator", guestPassword))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ex.Close() })
			name := fmt.Sprintf("case-%d", n.Add(1))
			if err := os.MkdirAll(filepath.Join(root, "C", "mvm", name), 0o755); err != nil {
				t.Fatal(err)
			}
			return ex, `C:\mvm\` + name
		},
	})
}
