package tasks_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/guest/tasks"
)

const validKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl op@example"

func TestInvalidTasksRunNothing(t *testing.T) {
	bad := map[string]tasks.Task{
		"user name with space":   tasks.User{Name: "bad name"},
		"user name injection":    tasks.User{Name: "x;reboot"},
		"group with comma":       tasks.User{Name: "ok", Groups: []string{"a,b"}},
		"relative shell":         tasks.User{Name: "ok", Shell: "bin/sh"},
		"remove root":            tasks.UserAbsent{User: "root"},
		"two-line key":           tasks.AuthorizedKey{User: "ok", Key: validKey + "\n" + validKey},
		"not a key":              tasks.AuthorizedKey{User: "ok", Key: "hello"},
		"sudoers name with dot":  tasks.SudoersDropIn{Name: "a.b", Content: "x"},
		"sudoers path traversal": tasks.SudoersDropIn{Name: "../x", Content: "x"},
		"package option":         tasks.Package{Package: "-oDpkg::x"},
		"service option":         tasks.Service{Service: "--now"},
		"relative file":          tasks.File{Path: "etc/x"},
		"file owner":             tasks.File{Path: "/x", Owner: "a b"},
		"hostname":               tasks.Hostname{Hostname: "a_b;c"},
		"line with newline":      tasks.LineInFile{Path: "/x", Line: "a\nb"},
		"bad regexp":             tasks.LineInFile{Path: "/x", Line: "a", Match: "("},
		"file absent relative":   tasks.FileAbsent{Path: "x"},
	}
	for name, task := range bad {
		ex := memguest.NewDriver(guest.Linux, nil)
		ex.HandleDefault(memguest.Reply("MANAGEDVM-TASK:changed\n"))
		set := tasks.NewSet([]tasks.Task{tasks.Package{Package: "curl"}, task}, nil)
		_, err := set.Apply(context.Background(), ex.Executor())
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("%s: %v (code %v), want InvalidArgument", name, err, errs.CodeOf(err))
		}
		if n := len(ex.Commands()); n != 0 {
			t.Errorf("%s: %d commands ran before the bad task was rejected", name, n)
		}
	}
	if _, err := tasks.Enrollment(tasks.Operator{User: "Root!"}); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("Enrollment with a bad user: %v", err)
	}
}

func TestFamilyMismatch(t *testing.T) {
	for _, c := range []struct {
		fam  guest.OSFamily
		task tasks.Task
	}{
		{guest.Windows, tasks.User{Name: "ops"}},
		{guest.Linux, tasks.WinUser{Name: "ops"}},
		{guest.Linux, tasks.RegistryValue{Path: `HKLM:\SOFTWARE\X`, Name: "v", Value: "1"}},
	} {
		ex := memguest.NewDriver(c.fam, nil)
		_, err := tasks.NewSet([]tasks.Task{c.task}, nil).Apply(context.Background(), ex.Executor())
		if errs.CodeOf(err) != errs.Unimplemented || len(ex.Commands()) != 0 {
			t.Errorf("%s on %s: %v (code %v), %d commands", c.task.Describe(), c.fam, err, errs.CodeOf(err), len(ex.Commands()))
		}
	}
}

func TestSetPlumbing(t *testing.T) {
	ctx := context.Background()
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("pkg=curl", memguest.Reply("installing...\nMANAGEDVM-TASK:changed\n"))
	ex.HandleScript("pkg=jq", memguest.Reply("MANAGEDVM-TASK:ok\n"))
	ex.HandleScript("pkg=broken", memguest.Exit(3, "", "apt-get install failed\n"))
	ex.HandleScript("pkg=silent", memguest.Reply("nothing\n"))
	var seen []tasks.Result
	set := tasks.NewSet([]tasks.Task{tasks.Package{Package: "curl"}, tasks.Package{Package: "jq"}}, &tasks.Options{OnResult: func(r tasks.Result) { seen = append(seen, r) }})
	rep, err := set.Apply(ctx, ex.Executor())
	if err != nil || rep.Changed() != 1 || !rep.Results[0].Changed || rep.Results[1].Changed || len(seen) != 2 || rep.String() != "2 tasks, 1 changed" {
		t.Fatalf("Apply: %v %+v", err, rep)
	}
	cmds := ex.Commands()
	if !cmds[0].Sudo || !strings.HasPrefix(cmds[0].Script, "MVM_CHECK=0\n") {
		t.Fatalf("apply command: sudo=%v script starts %q", cmds[0].Sudo, cmds[0].Script[:12])
	}
	rep, err = set.Check(ctx, ex.Executor())
	if err != nil || !rep.Results[0].Check {
		t.Fatal(err)
	}
	if c := ex.Commands()[2]; !strings.HasPrefix(c.Script, "MVM_CHECK=1\n") {
		t.Fatalf("check mode script starts %q", c.Script[:12])
	}
	// NoSudo.
	if _, err := tasks.NewSet([]tasks.Task{tasks.Package{Package: "jq"}}, &tasks.Options{NoSudo: true}).Apply(ctx, ex.Executor()); err != nil {
		t.Fatal(err)
	}
	if c := ex.Commands()[len(ex.Commands())-1]; c.Sudo {
		t.Fatal("NoSudo ran with Sudo")
	}
	// A failing task stops the run and is named.
	rep, err = tasks.NewSet([]tasks.Task{tasks.Package{Package: "jq"}, tasks.Package{Package: "broken"}, tasks.Package{Package: "curl"}}, nil).Apply(ctx, ex.Executor())
	var te *tasks.TaskError
	if !errors.As(err, &te) || te.Task != "package broken" || errs.CodeOf(err) != errs.FailedPrecondition || len(rep.Results) != 1 {
		t.Fatalf("failing task: %v (code %v), %d results", err, errs.CodeOf(err), len(rep.Results))
	}
	if !strings.Contains(err.Error(), "apt-get install failed") {
		t.Fatalf("error lacks the reason: %v", err)
	}
	// A script that prints no result is an internal error.
	_, err = tasks.NewSet([]tasks.Task{tasks.Package{Package: "silent"}}, nil).Apply(ctx, ex.Executor())
	if errs.CodeOf(err) != errs.Internal {
		t.Fatalf("no result: %v", err)
	}
}

func TestWindowsTasksPlumbing(t *testing.T) {
	ex := memguest.NewDriver(guest.Windows, nil)
	ex.HandleDefault(memguest.Reply("MANAGEDVM-TASK:changed\r\n"))
	ts := []tasks.Task{
		tasks.WinUser{Name: "mvm-ops", Description: "managed by managedvm", Groups: []string{"Administrators", "Remote Management Users"}},
		tasks.WinGroupMember{Group: "Administrators", Member: `CORP\ops`},
		tasks.WinService{Service: "WinRM", Running: true},
		tasks.WinFile{Path: `C:\ProgramData\mvm\id.txt`, Content: []byte("x")},
		tasks.RegistryValue{Path: `HKLM:\SOFTWARE\managedvm`, Name: "Enrolled", Kind: "DWord", Value: "1"},
	}
	set := tasks.NewSet(ts, nil)
	rep, err := set.Apply(context.Background(), ex.Executor())
	if err != nil || rep.Changed() != len(ts) {
		t.Fatalf("Apply: %v %+v", err, rep)
	}
	for _, c := range ex.Commands() {
		if c.Sudo || !strings.HasPrefix(c.Script, "$MvmCheck = $false\n") || !strings.Contains(c.Script, tasks.PsPrelude) {
			t.Fatalf("windows script: sudo=%v\n%s", c.Sudo, c.Script)
		}
	}
	// Reverse: registry and service have none; group member, user.
	if rev := set.Reversed(); len(rev) != 2 || rev[0].Describe() != `windows group Administrators without CORP\ops` || rev[1].Describe() != "windows user mvm-ops absent" {
		t.Fatalf("reversed: %v", rev)
	}
	for _, bad := range []tasks.Task{
		tasks.WinUser{Name: "a*b"},
		tasks.WinService{Service: "x", StartupType: "Sometimes"},
		tasks.RegistryValue{Path: `HKLM:\X`, Name: "v", Kind: "DWord", Value: "many"},
		tasks.RegistryValue{Path: `C:\X`, Name: "v"},
		tasks.WinFile{Path: `C:\a|b`},
	} {
		if _, err := bad.Command(guest.Windows, false); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("%s: %v", bad.Describe(), err)
		}
	}
}

// localShell runs the scripts with this machine's /bin/sh (no sudo: the
// tasks here touch only a temporary directory).
func localShell(t *testing.T) *memguest.Driver {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleDefault(func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
		c := exec.CommandContext(ctx, "/bin/sh", "-c", guest.ShellCommandLine(cmd))
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		res := guest.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			res.ExitCode = ee.ExitCode()
			return res, &guest.ExitError{Command: cmd.String(), Code: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr}
		}
		return res, err
	})
	return ex
}

func TestFileAndLineTasksLocally(t *testing.T) {
	ex := localShell(t)
	ctx := context.Background()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte("#PasswordAuthentication yes\nPort 22\nPasswordAuthentication yes\nX 1"), 0o600); err != nil {
		t.Fatal(err)
	}
	weird := filepath.Join(dir, "we'ird $(touch pwned) `x`")
	ts := []tasks.Task{
		tasks.LineInFile{Path: conf, Line: "PasswordAuthentication no", Match: "^#?PasswordAuthentication "},
		tasks.LineInFile{Path: conf, Line: "AllowUsers ops $(touch pwned)"},
		tasks.LineInFile{Path: conf, Line: "Port 22", Absent: true},
		tasks.File{Path: weird, Content: []byte("line1\n\x00binary\xff"), Mode: 0o600},
	}
	set := tasks.NewSet(ts, &tasks.Options{NoSudo: true})
	rep, err := set.Check(ctx, ex.Executor())
	if err != nil || rep.Changed() != 4 {
		t.Fatalf("check: %v %+v", err, rep)
	}
	if b, _ := os.ReadFile(conf); string(b) != "#PasswordAuthentication yes\nPort 22\nPasswordAuthentication yes\nX 1" {
		t.Fatalf("check mode changed the file: %q", b)
	}
	rep, err = set.Apply(ctx, ex.Executor())
	if err != nil || rep.Changed() != 4 {
		t.Fatalf("apply: %v %+v", err, rep)
	}
	if b, _ := os.ReadFile(conf); string(b) != "PasswordAuthentication no\nPasswordAuthentication no\nX 1\nAllowUsers ops $(touch pwned)\n" {
		t.Fatalf("conf after apply: %q", b)
	}
	if b, err := os.ReadFile(weird); err != nil || string(b) != "line1\n\x00binary\xff" {
		t.Fatalf("file: %q %v", b, err)
	}
	if st, _ := os.Stat(weird); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Fatal("an input ran as a command")
	}
	rep, err = set.Apply(ctx, ex.Executor())
	if err != nil || rep.Changed() != 0 {
		t.Fatalf("second apply: %v %+v", err, rep)
	}
	// Mode drift is repaired; removal works.
	_ = os.Chmod(weird, 0o644)
	rep, _ = tasks.NewSet(ts[3:], &tasks.Options{NoSudo: true}).Apply(ctx, ex.Executor())
	if rep.Changed() != 1 {
		t.Fatalf("mode drift not repaired: %+v", rep)
	}
	rep, err = tasks.NewSet([]tasks.Task{tasks.FileAbsent{Path: weird}, tasks.FileAbsent{Path: weird}}, &tasks.Options{NoSudo: true}).Apply(ctx, ex.Executor())
	if err != nil || !rep.Results[0].Changed || rep.Results[1].Changed {
		t.Fatalf("FileAbsent: %v %+v", err, rep)
	}
}
