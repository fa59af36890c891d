package winrm_test

import (
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
	"github.com/managedvm/managedvm/report"
)

// TestCheckRequirementsOverWinRM runs enrollment's OS requirement checks
// (facts, Get-PSDrive free space, Get-Command) through the executor
// against the interpreter: their PowerShell really runs.
func TestCheckRequirementsOverWinRM(t *testing.T) {
	in := winrmserver.NewInterpreter(winrmserver.InterpreterOptions{Root: t.TempDir(), FreeBytes: 3 << 30, Commands: []string{"choco"}})
	g := newFakeGuest(t, winrmserver.Options{Handler: in.Handler})
	ex := g.executor(t, nil)
	rep, err := guest.CheckRequirements(t.Context(), ex, guest.Windows, guest.Requirements{
		Distributions:  map[string]string{"windows": "10.0.17763"},
		MinFreeDiskMiB: 2048,
		Commands:       []string{"choco", "Get-ChildItem", "git"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]report.Status{"os.distribution": report.Pass, "os.disk": report.Pass, "os.commands": report.Fail}
	for _, c := range rep.Checks {
		if s, ok := want[c.ID]; ok {
			if c.Status != s {
				t.Errorf("%s: %s (%s), want %s", c.ID, c.Status, c.Detail, s)
			}
			delete(want, c.ID)
		}
		if c.ID == "os.commands" && c.Detail != "missing: git" {
			t.Errorf("commands row: %q, want only git missing", c.Detail)
		}
		if c.ID == "os.disk" && c.Detail != "3072 MiB free" {
			t.Errorf("disk row: %q", c.Detail)
		}
	}
	if len(want) != 0 {
		t.Fatalf("rows missing: %v\n%s", want, rep)
	}
	// Not enough space fails the row.
	rep, err = guest.CheckRequirements(t.Context(), ex, guest.Windows, guest.Requirements{MinFreeDiskMiB: 4096})
	if err != nil || rep.OK() {
		t.Fatalf("4 GiB needed, 3 free: %v\n%s", err, rep)
	}
}
