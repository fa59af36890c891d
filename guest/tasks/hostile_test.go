package tasks_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/guest/tasks"
	"github.com/managedvm/managedvm/internal/testkit"
)

var (
	big     = strings.Repeat("a", 100_000)
	hostile = strings.Repeat("x\n", 50_000) // 100 kB with raw newlines
)

// boundedDescription fails unless a description is short and has no control
// character.
func boundedDescription(t *testing.T, what, d string, max int) {
	t.Helper()
	if len(d) > max || strings.ContainsAny(d, "\n\r\x00") {
		t.Errorf("%s: description of %d bytes: %.100q", what, len(d), d)
	}
}

// TestHostileInput: a 100 kB value, or one with a raw newline, in any
// field of any task is InvalidArgument before anything runs, and neither
// the *TaskError's message nor the task's description grows with it.
func TestHostileInput(t *testing.T) {
	hostileInput(t, hostile, 300)
	// Control characters quote to 4 bytes each (\x00): longer, still
	// bounded.
	hostileInput(t, strings.Repeat("\x00", 100_000), 600)
}

func hostileInput(t *testing.T, hostile string, max int) {
	linux := map[string]tasks.Task{
		"user name":            tasks.User{Name: hostile},
		"user name big":        tasks.User{Name: big},
		"user group":           tasks.User{Name: "ok", Groups: []string{hostile}},
		"user shell":           tasks.User{Name: "ok", Shell: "/" + big},
		"user home":            tasks.User{Name: "ok", Home: "/" + hostile},
		"user absent":          tasks.UserAbsent{User: hostile},
		"key user":             tasks.AuthorizedKey{User: hostile, Key: validKey},
		"key text":             tasks.AuthorizedKey{User: "ok", Key: hostile},
		"key comment":          tasks.AuthorizedKey{User: "ok", Key: validKey + " " + big},
		"key absent":           tasks.AuthorizedKeyAbsent{User: "ok", Key: validKey + " " + big},
		"sudoers name":         tasks.SudoersDropIn{Name: hostile, Content: "x"},
		"package":              tasks.Package{Package: hostile},
		"package big":          tasks.Package{Package: big},
		"service":              tasks.Service{Service: hostile},
		"file path":            tasks.File{Path: "/" + hostile},
		"file path big":        tasks.File{Path: "/" + big},
		"file owner":           tasks.File{Path: "/x", Owner: hostile},
		"file absent":          tasks.FileAbsent{Path: "/" + big},
		"hostname":             tasks.Hostname{Hostname: hostile},
		"line":                 tasks.LineInFile{Path: "/x", Line: big},
		"line match":           tasks.LineInFile{Path: "/x", Line: "a", Match: big},
		"line path":            tasks.LineInFile{Path: "/" + big, Line: "a"},
		"line path newline":    tasks.LineInFile{Path: "/" + hostile, Line: "a"},
		"file path not UTF-8":  tasks.File{Path: "/a\xffb"},
		"key not one line":     tasks.AuthorizedKey{User: "ok", Key: validKey + "\n" + big},
		"user name with quote": tasks.User{Name: `"` + big},
	}
	windows := map[string]tasks.Task{
		"user":             tasks.WinUser{Name: hostile},
		"user description": tasks.WinUser{Name: "ops", Description: big},
		"user absent":      tasks.WinUserAbsent{User: hostile},
		"group":            tasks.WinGroupMember{Group: hostile, Member: "ops"},
		"member":           tasks.WinGroupMember{Group: "Administrators", Member: hostile},
		"service":          tasks.WinService{Service: hostile},
		"startup type":     tasks.WinService{Service: "WinRM", StartupType: hostile},
		"file":             tasks.WinFile{Path: `C:\` + big},
		"registry path":    tasks.RegistryValue{Path: hostile, Name: "n"},
		"registry name":    tasks.RegistryValue{Path: `HKLM:\SOFTWARE\X`, Name: big},
		"registry kind":    tasks.RegistryValue{Path: `HKLM:\SOFTWARE\X`, Name: "n", Kind: hostile},
	}
	for fam, cases := range map[guest.OSFamily]map[string]tasks.Task{guest.Linux: linux, guest.Windows: windows} {
		for name, task := range cases {
			what := string(fam) + " " + name
			boundedDescription(t, what, task.Describe(), max)
			ex := memguest.NewDriver(fam, nil)
			ex.HandleDefault(memguest.Reply("MANAGEDVM-TASK:changed\n"))
			_, err := tasks.NewSet([]tasks.Task{task}, nil).Apply(context.Background(), ex.Executor())
			testkit.WantCode(t, what, err, errs.InvalidArgument)
			testkit.Bounded(t, what, err, max)
			var te *tasks.TaskError
			if !errors.As(err, &te) {
				t.Errorf("%s: %v is not a *TaskError", what, err)
			} else {
				boundedDescription(t, what+" (TaskError.Task)", te.Task, max)
			}
			if n := len(ex.Commands()); n != 0 {
				t.Errorf("%s: %d commands ran", what, n)
			}
		}
	}
}

// TestLimits: each documented limit is inclusive.
func TestLimits(t *testing.T) {
	ok := func(what string, fam guest.OSFamily, task tasks.Task, want bool) {
		t.Helper()
		_, err := task.Command(fam, true)
		if (err == nil) != want {
			t.Errorf("%s: %v, want ok=%v", what, err, want)
		}
		if err != nil {
			testkit.WantCode(t, what, err, errs.InvalidArgument)
			testkit.Bounded(t, what, err, 300)
		}
	}
	path := func(n int) string { return "/" + strings.Repeat("p", n-1) }
	ok("path at MaxPath", guest.Linux, tasks.File{Path: path(tasks.MaxPath)}, true)
	ok("path over MaxPath", guest.Linux, tasks.File{Path: path(tasks.MaxPath + 1)}, false)
	ok("absent path over MaxPath", guest.Linux, tasks.FileAbsent{Path: path(tasks.MaxPath + 1)}, false)
	ok("shell over MaxPath", guest.Linux, tasks.User{Name: "ops", Shell: path(tasks.MaxPath + 1)}, false)
	ok("windows path at MaxPath", guest.Windows, tasks.WinFile{Path: `C:` + strings.Repeat("p", tasks.MaxPath-2)}, true)
	ok("windows path over MaxPath", guest.Windows, tasks.WinFile{Path: `C:` + strings.Repeat("p", tasks.MaxPath-1)}, false)
	key := func(n int) string { return validKey + " " + strings.Repeat("c", n-len(validKey)-1) }
	ok("key at MaxAuthorizedKey", guest.Linux, tasks.AuthorizedKey{User: "ops", Key: key(tasks.MaxAuthorizedKey)}, true)
	ok("key over MaxAuthorizedKey", guest.Linux, tasks.AuthorizedKey{User: "ops", Key: key(tasks.MaxAuthorizedKey + 1)}, false)
	line := strings.Repeat("l", tasks.MaxLine)
	ok("line at MaxLine", guest.Linux, tasks.LineInFile{Path: "/x", Line: line}, true)
	ok("line over MaxLine", guest.Linux, tasks.LineInFile{Path: "/x", Line: line + "l"}, false)
	ok("match over MaxLine", guest.Linux, tasks.LineInFile{Path: "/x", Line: "a", Match: line + "l"}, false)
	ok("description at MaxLine", guest.Windows, tasks.WinUser{Name: "ops", Description: line}, true)
	ok("description over MaxLine", guest.Windows, tasks.WinUser{Name: "ops", Description: line + "l"}, false)
	ok("registry name over MaxLine", guest.Windows, tasks.RegistryValue{Path: `HKLM:\X`, Name: line + "l"}, false)
	ok("user name at 32", guest.Linux, tasks.User{Name: strings.Repeat("u", 32)}, true)
	ok("user name at 33", guest.Linux, tasks.User{Name: strings.Repeat("u", 33)}, false)
	ok("package at 128", guest.Linux, tasks.Package{Package: strings.Repeat("p", 128)}, true)
	ok("package at 129", guest.Linux, tasks.Package{Package: strings.Repeat("p", 129)}, false)
	ok("service at 128", guest.Linux, tasks.Service{Service: strings.Repeat("s", 128)}, true)
	ok("service at 129", guest.Linux, tasks.Service{Service: strings.Repeat("s", 129)}, false)
}

// hostileTask is a host's own task whose description and error carry
// whatever it was given.
type hostileTask struct{}

func (hostileTask) Describe() string { return "mine " + hostile }
func (hostileTask) Command(guest.OSFamily, bool) (guest.Command, error) {
	return guest.Command{Script: "true"}, nil
}

// TestTaskErrorBounded: a task of the host's own with an unbounded
// description still gives a bounded *TaskError and Result, and so does a
// TaskError built by hand.
func TestTaskErrorBounded(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleDefault(memguest.Exit(3, "", "refused\n"))
	_, err := tasks.NewSet([]tasks.Task{hostileTask{}}, nil).Apply(context.Background(), ex.Executor())
	testkit.WantCode(t, "failing host task", err, errs.FailedPrecondition)
	testkit.Bounded(t, "failing host task", err, 300)
	var te *tasks.TaskError
	if !errors.As(err, &te) || !strings.HasPrefix(te.Task, `"mine x\nx`) {
		t.Fatalf("TaskError %#v", te)
	}
	ex = memguest.NewDriver(guest.Linux, nil)
	ex.HandleDefault(memguest.Reply("MANAGEDVM-TASK:ok\n"))
	rep, err := tasks.NewSet([]tasks.Task{hostileTask{}}, nil).Apply(context.Background(), ex.Executor())
	if err != nil || len(rep.Results) != 1 {
		t.Fatal(rep, err)
	}
	boundedDescription(t, "Result.Task", rep.Results[0].Task, 200)
	testkit.Bounded(t, "hand-made TaskError", &tasks.TaskError{Task: hostile, Err: errs.New(errs.Internal, "x", "y")}, 300)
	// Plain short values are shown as they are.
	if d := (tasks.User{Name: "mvm-ops"}).Describe(); d != "user mvm-ops" {
		t.Errorf("Describe = %q", d)
	}
	if d := (tasks.WinGroupMember{Group: "Remote Desktop Users", Member: `CORP\ops`}).Describe(); d != `windows group Remote Desktop Users with CORP\ops` {
		t.Errorf("Describe = %q", d)
	}
}
