package vspheresim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// scriptedWorld is a Sim with a scripted guest on two VMs and the vsphere
// driver connected to it.
type scriptedWorld struct {
	sim      *vspheresim.Sim
	p        *provider.Provider
	ids      map[string]string // VM name -> ID
	cred     guest.Credentials
	scripted *memguest.Driver
}

func newScripted(t *testing.T, h vspheresim.GuestHandler) *scriptedWorld {
	t.Helper()
	ctx := context.Background()
	w := &scriptedWorld{ids: map[string]string{}, cred: guest.Password("root", "pw")}
	if h == nil {
		w.scripted = memguest.NewDriver(guest.Linux, nil)
		t.Cleanup(func() { _ = w.scripted.Executor().Close() })
		h = vspheresim.ExecutorHandler(func(vspheresim.GuestVM) *guest.Executor { return w.scripted.Executor() })
	}
	sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1, GuestAccounts: map[string]string{"root": "pw"}, GuestHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	w.sim = sim
	refs, err := sim.CreateNamedVMs(ctx, []string{"web-01", "db-01"}, vspheresim.Placement{}, func(name string) *vspheresim.GuestState {
		return &vspheresim.GuestState{ToolsRunning: true, IP: "192.0.2.10", Family: "linuxGuest"}
	})
	if err != nil {
		t.Fatal(err)
	}
	w.ids["web-01"], w.ids["db-01"] = sim.UUID(refs[0]), sim.UUID(refs[1])
	w.p, err = vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{RootCAs: sim.CAs, GuestPollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.p.Close() })
	return w
}

func (w *scriptedWorld) executor(t *testing.T, vm string) *guest.Executor {
	t.Helper()
	ga, ok := w.p.GuestAccess()
	if !ok {
		t.Fatal("no guest access")
	}
	ex, err := ga.GuestExecutor(context.Background(), w.ids[vm], w.cred)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	return ex
}

// TestGuestHandlerAnswersCommands: with a GuestHandler, the driver's
// commands reach memguest tables with their Args, Env, Dir and Stdin, and
// come back with the scripted output and exit status; nothing runs on this
// machine (a command the tables do not know is "not found", and its side
// effect does not happen).
func TestGuestHandlerAnswersCommands(t *testing.T) {
	w := newScripted(t, nil)
	ctx := context.Background()
	d := w.scripted
	d.HandleArgs([]string{"id", "-u"}, memguest.Reply("0\n"))
	d.HandleArgsPrefix([]string{"systemctl", "is-active"}, memguest.Exit(3, "inactive\n", "unit not active\n"))
	d.HandleArgs([]string{"cat"}, func(_ context.Context, cmd guest.Command) (guest.Result, error) {
		b, err := io.ReadAll(cmd.Stdin)
		return guest.Result{Stdout: bytes.ToUpper(b)}, err
	})
	d.HandleScript("echo streamed", func(_ context.Context, cmd guest.Command) (guest.Result, error) {
		_, _ = io.WriteString(cmd.Stdout, "streamed\n")
		_, _ = io.WriteString(cmd.Stderr, "and an error line\n")
		return guest.Result{Stdout: []byte("then returned\n")}, nil
	})
	ex := w.executor(t, "web-01")

	out, err := guest.Output(ctx, ex, guest.Command{Args: []string{"id", "-u"}})
	if err != nil || out != "0" {
		t.Fatalf("id -u: %q, %v; want 0", out, err)
	}
	res, err := ex.Run(ctx, guest.Command{Args: []string{"systemctl", "is-active", "nginx"}})
	var exit *guest.ExitError
	if !errors.As(err, &exit) || exit.Code != 3 || string(res.Stdout) != "inactive\n" || string(res.Stderr) != "unit not active\n" {
		t.Fatalf("systemctl: %+v, %v; want exit 3 with the scripted output", res, err)
	}
	res, err = ex.Run(ctx, guest.Command{Args: []string{"cat"}, Stdin: strings.NewReader("it's \"quoted\"\n"), Env: map[string]string{"LANG": "C", "X": "a b'c"}, Dir: "/srv/app"})
	if err != nil || string(res.Stdout) != "IT'S \"QUOTED\"\n" {
		t.Fatalf("cat: %q, %v", res.Stdout, err)
	}
	res, err = ex.Run(ctx, guest.Command{Script: "echo streamed"})
	if err != nil || string(res.Stdout) != "streamed\nthen returned\n" || string(res.Stderr) != "and an error line\n" {
		t.Fatalf("script: %q %q, %v", res.Stdout, res.Stderr, err)
	}

	marker := filepath.Join(t.TempDir(), "created")
	res, err = ex.Run(ctx, guest.Command{Args: []string{"touch", marker}})
	if !errors.As(err, &exit) || exit.Code != 127 {
		t.Fatalf("an unscripted command: %+v, %v; want exit 127", res, err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("touch ran on this machine: %v", err)
	}

	cmds := d.Commands()
	if len(cmds) != 5 {
		t.Fatalf("the handler saw %d commands, want 5: %+v", len(cmds), cmds)
	}
	cat := cmds[2]
	if strings.Join(cat.Args, " ") != "cat" || cat.Dir != "/srv/app" || cat.Env["LANG"] != "C" || cat.Env["X"] != "a b'c" {
		t.Fatalf("cat reached the handler as %+v", cat)
	}
	if cmds[3].Script != "echo streamed" || cmds[3].Args != nil {
		t.Fatalf("the script reached the handler as %+v", cmds[3])
	}
}

// TestGuestHandlerSeesTheVM: the handler is told which VM and account a
// program runs in, so a test can make one VM's guest differ.
func TestGuestHandlerSeesTheVM(t *testing.T) {
	var mu sync.Mutex
	var seen []vspheresim.GuestVM
	w := newScripted(t, func(_ context.Context, vm vspheresim.GuestVM, cmd guest.Command) (guest.Result, error) {
		mu.Lock()
		seen = append(seen, vm)
		mu.Unlock()
		if vm.Name == "db-01" {
			return guest.Result{ExitCode: 1, Stderr: []byte("useradd: cannot lock /etc/passwd\n")}, nil
		}
		return guest.Result{}, nil
	})
	ctx := context.Background()
	if _, err := w.executor(t, "web-01").Run(ctx, guest.Command{Args: []string{"useradd", "svc"}}); err != nil {
		t.Fatalf("web-01: %v", err)
	}
	_, err := w.executor(t, "db-01").Run(ctx, guest.Command{Args: []string{"useradd", "svc"}})
	var exit *guest.ExitError
	if !errors.As(err, &exit) || exit.Code != 1 || !strings.Contains(string(exit.Stderr), "cannot lock") {
		t.Fatalf("db-01: %v; want exit 1 with the scripted error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []vspheresim.GuestVM{{Name: "web-01", UUID: w.ids["web-01"], User: "root"}, {Name: "db-01", UUID: w.ids["db-01"], User: "root"}}
	if len(seen) != 2 || seen[0] != want[0] || seen[1] != want[1] {
		t.Fatalf("the handler saw %+v, want %+v", seen, want)
	}
}

// TestGuestHandlerErrorAndTermination: a handler error is status 255 with
// its text on stderr; a program whose caller gives up is terminated: the
// handler's context ends and the driver returns the context's error.
func TestGuestHandlerErrorAndTermination(t *testing.T) {
	canceled := make(chan struct{})
	w := newScripted(t, func(ctx context.Context, _ vspheresim.GuestVM, cmd guest.Command) (guest.Result, error) {
		if cmd.Args[0] == "fail" {
			return guest.Result{}, errors.New("scripted failure")
		}
		<-ctx.Done()
		close(canceled)
		return guest.Result{}, ctx.Err()
	})
	ex := w.executor(t, "web-01")
	_, err := ex.Run(context.Background(), guest.Command{Args: []string{"fail"}})
	var exit *guest.ExitError
	if !errors.As(err, &exit) || exit.Code != 255 || !strings.Contains(string(exit.Stderr), "scripted failure") {
		t.Fatalf("a handler error: %v; want exit 255 with its text", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = ex.Run(ctx, guest.Command{Args: []string{"sleep", "inf"}})
	testkit.WantCode(t, "a terminated program", err, errs.DeadlineExceeded)
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context did not end after the program was terminated")
	}
}

// TestControlCalls: power, IP and tools changes made with the Sim reach
// the driver.
func TestControlCalls(t *testing.T) {
	w := newScripted(t, nil)
	ctx := context.Background()
	id := w.ids["web-01"]
	get := func() provider.VM {
		t.Helper()
		vm, err := w.p.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return vm
	}
	if err := w.sim.SetIP(ctx, id, "192.0.2.99"); err != nil {
		t.Fatal(err)
	}
	if ip, _ := get().PrimaryIP(); ip.String() != "192.0.2.99" {
		t.Fatalf("after SetIP: %v", ip)
	}
	if err := w.sim.SetToolsRunning(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if vm := get(); vm.Guest.ToolsRunning {
		t.Fatal("tools still running after SetToolsRunning(false)")
	}
	ga, _ := w.p.GuestAccess()
	testkit.WantCode(t, "guest operations with the tools stopped", ga.ValidateCredentials(ctx, id, w.cred), errs.FailedPrecondition)
	if err := w.sim.SetToolsRunning(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if err := w.sim.PowerOff(ctx, id); err != nil {
		t.Fatal(err)
	}
	if vm := get(); vm.Power != provider.PoweredOff {
		t.Fatalf("after PowerOff: %s", vm.Power)
	}
	testkit.WantCode(t, "PowerOff of a VM off", w.sim.PowerOff(ctx, id), errs.FailedPrecondition)
	if err := w.sim.PowerOn(ctx, id); err != nil {
		t.Fatal(err)
	}
	if vm := get(); vm.Power != provider.PoweredOn {
		t.Fatalf("after PowerOn: %s", vm.Power)
	}
	if err := w.sim.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	testkit.WantCode(t, "PowerOn of a deleted VM", w.sim.PowerOn(ctx, id), errs.NotFound)
	testkit.WantCode(t, "SetIP of a deleted VM", w.sim.SetIP(ctx, id, "192.0.2.1"), errs.NotFound)
	if _, err := w.p.Get(ctx, id); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("Get after Delete: %v", err)
	}
}
