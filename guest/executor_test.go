package guest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/internal/testkit"
)

// Nothing invalid, closed or canceled ever reaches the driver.
func TestExecutorChecksBeforeTheDriver(t *testing.T) {
	d := memguest.NewDriver(guest.Linux, &memguest.Options{Default: memguest.Reply("ran")})
	ex := d.Executor()
	ctx := t.Context()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for name, c := range map[string]struct {
		ctx  context.Context
		cmd  guest.Command
		code errs.Code
	}{
		"invalid":     {ctx, guest.Command{}, errs.InvalidArgument},
		"too big":     {ctx, guest.Command{Script: strings.Repeat("x", guest.MaxCommandBytes+1)}, errs.InvalidArgument},
		"many args":   {ctx, guest.Command{Args: make([]string, guest.MaxArgs+1)}, errs.InvalidArgument},
		"canceled":    {canceled, guest.Command{Args: []string{"true"}}, errs.Canceled},
		"bad env big": {ctx, guest.Command{Args: []string{"true"}, Env: map[string]string{strings.Repeat("A", 20000): ""}}, errs.InvalidArgument},
	} {
		_, err := ex.Run(c.ctx, c.cmd)
		testkit.WantCode(t, name, err, c.code)
		testkit.Bounded(t, name, err, 300)
		if err != nil && !strings.HasPrefix(err.Error(), "guest.Run: ") {
			t.Errorf("%s: %q does not name guest.Run once", name, err)
		}
	}
	if err := ex.Upload(canceled, "/tmp/x", strings.NewReader("x"), guest.UploadOptions{}); errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Upload on a canceled context: %v", err)
	}
	if n := len(d.Commands()); n != 0 {
		t.Fatalf("the driver saw %d rejected commands", n)
	}
	if len(d.FilePaths()) != 0 {
		t.Fatal("the driver saw a rejected upload")
	}
	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := ex.Run(ctx, guest.Command{Args: []string{"true"}})
	if !errors.Is(err, guest.ErrClosed) || errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := ex.Close(); !errors.Is(err, guest.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if n := len(d.Commands()); n != 0 {
		t.Fatalf("the driver saw %d commands after Close", n)
	}
}

// Options.Timeout is the default of Command.Timeout, given to the driver.
func TestExecutorDefaultTimeout(t *testing.T) {
	var seen time.Duration
	var deadline bool
	d := memguest.NewDriver(guest.Linux, &memguest.Options{
		Executor: &guest.Options{Timeout: 40 * time.Millisecond},
		Default: func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
			seen = cmd.Timeout
			_, deadline = ctx.Deadline()
			select {
			case <-ctx.Done():
				return guest.Result{}, ctx.Err()
			case <-time.After(5 * time.Second):
				return guest.Result{}, nil
			}
		},
	})
	_, err := d.Executor().Run(t.Context(), guest.Command{Args: []string{"sleep"}})
	testkit.WantCode(t, "Run past Options.Timeout", err, errs.DeadlineExceeded)
	if seen != 40*time.Millisecond || !deadline {
		t.Fatalf("the driver saw Timeout %v (deadline %v), want 40ms with a deadline", seen, deadline)
	}
}

// sharedDriver answers every command with the same output buffer, as a
// driver that reuses its buffers would.
type sharedDriver struct{ out []byte }

func (d *sharedDriver) Run(context.Context, guest.Command) (guest.Result, error) {
	return guest.Result{Stdout: d.out}, nil
}
func (d *sharedDriver) Upload(context.Context, string, io.Reader, guest.UploadOptions) error {
	return nil
}
func (d *sharedDriver) Family() guest.OSFamily { return guest.Linux }
func (d *sharedDriver) Close() error           { return nil }

// The Result belongs to the caller: changing it does not change what the
// driver keeps, and it never exceeds MaxOutput.
func TestExecutorCopiesResult(t *testing.T) {
	d := &sharedDriver{out: bytes.Repeat([]byte("s"), guest.MaxOutput+10)}
	res, err := guest.New(d, nil).Run(t.Context(), guest.Command{Args: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != guest.MaxOutput {
		t.Fatalf("Stdout of %d bytes, want MaxOutput", len(res.Stdout))
	}
	res.Stdout[0] = 'X'
	if d.out[0] != 's' {
		t.Fatal("the Result shares its bytes with the driver")
	}
}

func TestExecutorAs(t *testing.T) {
	d := memguest.NewDriver(guest.Windows, nil)
	var got *memguest.Driver
	if !d.Executor().As(&got) || got != d {
		t.Fatal("As does not reach the driver")
	}
	var drv guest.Driver
	if d.Executor().As(&drv) {
		t.Fatal("As hands out the driver as a guest.Driver, bypassing the Executor")
	}
	var s *strings.Builder
	if d.Executor().As(&s) || d.Executor().As(nil) {
		t.Fatal("As reports success for a foreign type")
	}
	if d.Executor().Family() != guest.Windows {
		t.Fatal("Family")
	}
}

func FuzzCommandValidate(f *testing.F) {
	f.Add("echo", "hi", "", "A", "v", "/tmp")
	f.Add("", "", "exit 0", "BAD NAME", "\x00", "")
	f.Add("x\x00", "", "", "", "", "\x00")
	f.Fuzz(func(t *testing.T, prog, arg, script, envK, envV, dir string) {
		cmd := guest.Command{Script: script, Dir: dir}
		if prog != "" || arg != "" {
			cmd.Args = []string{prog, arg}
		}
		if envK != "" {
			cmd.Env = map[string]string{envK: envV}
		}
		err := cmd.Validate()
		if err != nil {
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Fatalf("code %v: %v", errs.CodeOf(err), err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("message of %d bytes", len(err.Error()))
			}
			for _, r := range err.Error() {
				if r < 0x20 {
					t.Fatalf("control character in %q", err)
				}
			}
			return
		}
		// An accepted command is within every limit.
		size := len(cmd.Script)
		for _, a := range cmd.Args {
			size += len(a)
			if strings.IndexByte(a, 0) >= 0 {
				t.Fatal("NUL accepted in an argument")
			}
		}
		for k, v := range cmd.Env {
			size += len(k) + len(v)
			if strings.IndexByte(v, 0) >= 0 || strings.ContainsAny(k, "= \x00\n") {
				t.Fatal("bad environment accepted")
			}
		}
		if size > guest.MaxCommandBytes || strings.IndexByte(cmd.Dir, 0) >= 0 || strings.IndexByte(cmd.Script, 0) >= 0 {
			t.Fatal("a command beyond the limits accepted")
		}
		if (len(cmd.Args) == 0) == (cmd.Script == "") {
			t.Fatal("neither or both of Args and Script accepted")
		}
	})
}
