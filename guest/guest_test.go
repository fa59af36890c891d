package guest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
)

func TestCommandValidate(t *testing.T) {
	cases := []struct {
		name string
		cmd  guest.Command
		want errs.Code
	}{
		{"args", guest.Command{Args: []string{"ls", "-l"}}, errs.OK},
		{"script", guest.Command{Script: "ls -l"}, errs.OK},
		{"full", guest.Command{Args: []string{"x"}, Env: map[string]string{"_A1": "v", "b": ""}, Dir: "/", Timeout: time.Second, Sudo: true}, errs.OK},
		{"empty arg after program", guest.Command{Args: []string{"x", ""}}, errs.OK},
		{"nothing", guest.Command{}, errs.InvalidArgument},
		{"both", guest.Command{Args: []string{"ls"}, Script: "ls"}, errs.InvalidArgument},
		{"empty program", guest.Command{Args: []string{""}}, errs.InvalidArgument},
		{"negative timeout", guest.Command{Script: "x", Timeout: -1}, errs.InvalidArgument},
		{"env name with space", guest.Command{Script: "x", Env: map[string]string{"A B": "v"}}, errs.InvalidArgument},
		{"env name with =", guest.Command{Script: "x", Env: map[string]string{"A=B": "v"}}, errs.InvalidArgument},
		{"env name starting with a digit", guest.Command{Script: "x", Env: map[string]string{"1A": "v"}}, errs.InvalidArgument},
		{"empty env name", guest.Command{Script: "x", Env: map[string]string{"": "v"}}, errs.InvalidArgument},
		{"env name with a dash", guest.Command{Script: "x", Env: map[string]string{"A-B": "v"}}, errs.InvalidArgument},
		{"env name unicode", guest.Command{Script: "x", Env: map[string]string{"Ä": "v"}}, errs.InvalidArgument},
		{"NUL in argument", guest.Command{Args: []string{"x", "a\x00"}}, errs.InvalidArgument},
		{"NUL in program", guest.Command{Args: []string{"x\x00"}}, errs.InvalidArgument},
		{"NUL in script", guest.Command{Script: "echo \x00"}, errs.InvalidArgument},
		{"NUL in dir", guest.Command{Script: "x", Dir: "/tmp\x00"}, errs.InvalidArgument},
		{"NUL in env value", guest.Command{Script: "x", Env: map[string]string{"A": "\x00"}}, errs.InvalidArgument},
	}
	for _, c := range cases {
		if got := errs.CodeOf(c.cmd.Validate()); got != c.want {
			t.Errorf("%s: Validate() code %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCommandStringHidesArguments(t *testing.T) {
	c := guest.Command{Args: []string{"chpasswd", "root:" + canaryPassword}}
	if got := c.String(); got != `command "chpasswd" (1 args)` {
		t.Fatalf("String() = %s", got)
	}
	s := guest.Command{Script: "echo " + canaryPassword}
	if got := fmt.Sprint(s); strings.Contains(got, canaryPassword) || got != fmt.Sprintf("script (%d bytes)", len(s.Script)) {
		t.Fatalf("String() = %s", got)
	}
}

func TestExitError(t *testing.T) {
	ee := &guest.ExitError{Command: `command "false" (0 args)`, Code: 3, Stdout: []byte("out"), Stderr: []byte("\n  first line  \nsecond\n")}
	if got := ee.Error(); got != `command "false" (0 args) exited with code 3: first line` {
		t.Fatalf("Error() = %q", got)
	}
	long := &guest.ExitError{Command: "c", Code: 1, Stderr: []byte(strings.Repeat("x", 500))}
	if got := long.Error(); len(got) > 260 || !strings.HasSuffix(got, "...") {
		t.Fatalf("long stderr not cut: %d bytes", len(got))
	}
	if got := (&guest.ExitError{Command: "c", Code: 2}).Error(); got != "c exited with code 2" {
		t.Fatalf("no stderr: %q", got)
	}

	err := fmt.Errorf("step: %w", errs.WrapOp("ssh.Run", ee))
	var got *guest.ExitError
	if !errors.As(err, &got) || got.Code != 3 {
		t.Fatal("errors.As lost the ExitError")
	}
	if errs.CodeOf(err) != errs.FailedPrecondition || !errors.Is(err, errs.FailedPrecondition) || errors.Is(err, errs.NotFound) {
		t.Fatalf("code %v", errs.CodeOf(err))
	}
}

func TestSentinels(t *testing.T) {
	cause := errors.New("connection reset by peer")
	err := guest.SessionLost("ssh.Run", cause)
	if !errors.Is(err, guest.ErrSessionLost) || !errors.Is(err, cause) || errs.CodeOf(err) != errs.OutcomeUnknown {
		t.Fatalf("SessionLost: %v (code %v)", err, errs.CodeOf(err))
	}
	if errors.Is(err, guest.ErrClosed) {
		t.Fatal("a lost session is not a closed executor")
	}
	closed := errs.WrapOp("winrm.Run", guest.ErrClosed)
	if !errors.Is(closed, guest.ErrClosed) || errs.CodeOf(closed) != errs.FailedPrecondition || errors.Is(closed, guest.ErrSessionLost) {
		t.Fatalf("ErrClosed: %v", closed)
	}
}

func TestParseFamily(t *testing.T) {
	cases := map[string]guest.OSFamily{
		"linux": guest.Linux, "Linux": guest.Linux, " linuxGuest ": guest.Linux, "otherLinux64Guest": guest.Linux,
		"other_linux": guest.Linux, "rhel9_64Guest": guest.Linux, "ubuntu64Guest": guest.Linux, "debian12_64Guest": guest.Linux,
		"centos8_64Guest": guest.Linux, "sles15_64Guest": guest.Linux, "rhel_9x64": guest.Linux, "Red Hat Enterprise Linux 9": guest.Linux,
		"windows": guest.Windows, "Windows": guest.Windows, "windowsGuest": guest.Windows, "win": guest.Windows,
		"windows2019srv_64Guest": guest.Windows, "windows_2022": guest.Windows, "Microsoft Windows Server 2022": guest.Windows,
		"": guest.FamilyUnknown, "solaris11_64Guest": guest.FamilyUnknown, "darwin": guest.FamilyUnknown, "freebsd13_64Guest": guest.FamilyUnknown,
	}
	for in, want := range cases {
		if got := guest.ParseFamily(in); got != want {
			t.Errorf("ParseFamily(%q) = %v, want %v", in, got, want)
		}
	}
	if guest.FamilyUnknown.String() != "unknown" || guest.Linux.String() != "linux" || guest.Windows.String() != "windows" {
		t.Fatal("OSFamily.String")
	}
}

func TestOutput(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleArgs([]string{"hostname"}, memguest.Reply("  web-01 \n"))
	ex.HandleArgs([]string{"false"}, memguest.Exit(1, "partial", ""))
	ctx := context.Background()
	if got, err := guest.Output(ctx, ex.Executor(), guest.Command{Args: []string{"hostname"}}); err != nil || got != "web-01" {
		t.Fatalf("Output = %q, %v", got, err)
	}
	if got, err := guest.Output(ctx, ex.Executor(), guest.Command{Args: []string{"false"}}); got != "" || errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("Output of a failing command = %q, %v", got, err)
	}
}
