package winrm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/tasks"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

// taskGuest answers task scripts like a guest where nothing is configured
// yet: every task reports a change (or, with fail, exits 3 with a message).
type taskGuest struct {
	mu      sync.Mutex
	scripts []string
	fail    string // a script containing this fails
}

func (g *taskGuest) handle(_ context.Context, r *winrmserver.Request) int {
	g.mu.Lock()
	g.scripts = append(g.scripts, r.Script)
	fail := g.fail != "" && strings.Contains(r.Script, g.fail)
	g.mu.Unlock()
	if !r.PowerShell {
		return 1
	}
	if fail {
		fmt.Fprint(r.Stderr, "Access is denied.\r\n")
		return 3
	}
	fmt.Fprint(r.Stdout, "MANAGEDVM-TASK:changed\r\n")
	return 0
}

// TestWindowsTasksOverWinRM runs the Windows native tasks (local user,
// group membership, service, file, registry value, and the reverses)
// through the executor and asserts the exact PowerShell the guest
// received, decoded from -EncodedCommand.
func TestWindowsTasksOverWinRM(t *testing.T) {
	tg := &taskGuest{}
	g := newFakeGuest(t, winrmserver.Options{Handler: tg.handle})
	ex := g.executor(t, nil)
	list := []tasks.Task{
		tasks.WinUser{Name: "mvm-op", Description: "managedvm operator's account", Groups: []string{"Administrators", "Remote Management Users"}},
		tasks.WinGroupMember{Group: "Remote Desktop Users", Member: "mvm-op"},
		tasks.WinService{Service: "WinRM", StartupType: "Automatic", Running: true},
		tasks.WinFile{Path: `C:\ProgramData\managedvm\agent.conf`, Content: []byte("endpoint = 'https://mgmt.example'\r\n$not = expanded\r\n")},
		tasks.RegistryValue{Path: `HKLM:\SOFTWARE\managedvm`, Name: "Enrolled", Kind: "DWord", Value: "1"},
	}
	for _, check := range []bool{true, false} {
		tg.mu.Lock()
		tg.scripts = nil
		tg.mu.Unlock()
		rep, err := tasks.Run(t.Context(), ex, list, check, nil)
		if err != nil {
			t.Fatalf("check=%v: %v", check, err)
		}
		if len(rep.Results) != len(list) || rep.Changed() != len(list) {
			t.Fatalf("check=%v: report %+v", check, rep)
		}
		for i, task := range list {
			cmd, err := task.Command(guest.Windows, check)
			if err != nil {
				t.Fatal(err)
			}
			want := "$ProgressPreference = 'SilentlyContinue'\n" + guest.PowerShellScript(cmd)
			if got := tg.scripts[i]; got != want {
				t.Fatalf("%s (check=%v): the guest received\n%s\nwant\n%s", task.Describe(), check, got, want)
			}
			if line, err := winrm.CommandLine(cmd); err != nil || len(line) > winrm.MaxCommandLine {
				t.Fatalf("%s: command line %d characters, %v", task.Describe(), len(line), err)
			}
		}
	}
	// Values reach the scripts only as quoted literals in the header.
	tg.mu.Lock()
	scripts := strings.Join(tg.scripts, "\n")
	tg.mu.Unlock()
	for _, s := range []string{
		"$MvmCheck = $false\n",
		"$name = 'mvm-op'\n",
		"$desc = 'managedvm operator''s account'\n",
		"New-LocalUser",
		"Add-LocalGroupMember",
	} {
		if !strings.Contains(scripts, s) {
			t.Errorf("the task scripts lack %q", s)
		}
	}

	// The reverses run too.
	tg.mu.Lock()
	tg.scripts = nil
	tg.mu.Unlock()
	rev := []tasks.Task{list[0].(tasks.WinUser).Reverse()}
	if _, err := tasks.Run(t.Context(), ex, rev, false, nil); err != nil {
		t.Fatal(err)
	}
	cmd, _ := rev[0].Command(guest.Windows, false)
	if tg.scripts[0] != "$ProgressPreference = 'SilentlyContinue'\n"+guest.PowerShellScript(cmd) {
		t.Fatalf("reverse script:\n%s", tg.scripts[0])
	}

	// A task that fails in the guest is a TaskError carrying the exit.
	tg.mu.Lock()
	tg.fail = "New-LocalUser"
	tg.mu.Unlock()
	_, err := tasks.Run(t.Context(), ex, list[:1], false, nil)
	var te *tasks.TaskError
	var ee *guest.ExitError
	if !errors.As(err, &te) || !errors.As(err, &ee) || ee.Code != 3 || errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("failing task: %v", err)
	}
}
