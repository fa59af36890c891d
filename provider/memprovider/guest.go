package memprovider

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// GuestRequest is one command run in a guest through a GuestExecutor.
type GuestRequest struct {
	// VM is the VM as it is when the command runs.
	VM provider.VM
	// User is the user the command runs as.
	User string
	// Command is the command, already validated. The handler reads
	// Command.Stdin itself if it wants the input and decides what
	// Command.Sudo means; the executor copies the Result's output to
	// Command.Stdout and Command.Stderr and applies Command.Timeout to ctx.
	Command guest.Command
}

// GuestHandler plays the guest: it answers a command with a Result (a
// non-zero ExitCode becomes a *guest.ExitError) or an error, which the
// executor returns as is. It must honour ctx when it blocks. It may be
// called from many goroutines at once.
type GuestHandler func(ctx context.Context, req GuestRequest) (guest.Result, error)

// DefaultGuestHandler answers what managedvm itself asks a new guest: the
// OS facts probe of guest.DetectFacts. It is the handler of every VM unless
// Options.GuestHandler or SetGuestHandler says otherwise, and a custom
// handler can fall back to it.
//
// For a Linux guest, a command that mentions "os-release" prints an
// os-release(5) built from the VM's guest info (PRETTY_NAME and NAME are
// Guest.OSName; ID is derived from it: debian, ubuntu, rhel, centos, rocky,
// almalinux, ol, sles, else its first word in lower case; VERSION_ID is
// Guest.OSVersion, else the first number in the OS name); the facts script
// also gets the kernel release "6.1.0-memprovider" and the architecture
// "x86_64". For a Windows guest, a script that reads
// Win32_OperatingSystem prints NAME, VERSION, BUILD (the last part of the
// version) and ARCH=AMD64. Any other command exits with code 127 and says
// on standard error that no handler answers it.
func DefaultGuestHandler(ctx context.Context, req GuestRequest) (guest.Result, error) {
	if err := errs.FromContext(ctx, "memprovider.DefaultGuestHandler"); err != nil {
		return guest.Result{}, err
	}
	text := req.Command.Script + " " + strings.Join(req.Command.Args, " ")
	g := req.VM.Guest
	switch {
	case g.Family == guest.Windows && strings.Contains(text, "Win32_OperatingSystem"):
		build := g.OSVersion
		if i := strings.LastIndexByte(build, '.'); i >= 0 {
			build = build[i+1:]
		}
		out := fmt.Sprintf("NAME=%s\r\nVERSION=%s\r\nBUILD=%s\r\nARCH=AMD64\r\n", g.OSName, g.OSVersion, build)
		return guest.Result{Stdout: []byte(out)}, nil
	case g.Family != guest.Windows && strings.Contains(text, "os-release"):
		out := osRelease(g)
		if strings.Contains(text, "__MANAGEDVM_UNAME__") {
			out += "__MANAGEDVM_UNAME__\n6.1.0-memprovider\nx86_64\n"
		}
		return guest.Result{Stdout: []byte(out)}, nil
	}
	return guest.Result{
		ExitCode: 127,
		Stderr:   fmt.Appendf(nil, "memprovider: no guest handler answers %s; set Options.GuestHandler or SetGuestHandler\n", req.Command),
	}, nil
}

func osRelease(g provider.GuestInfo) string {
	name := g.OSName
	if name == "" {
		name = "Linux"
	}
	version := g.OSVersion
	if version == "" {
		version = firstNumber(name)
	}
	return fmt.Sprintf("PRETTY_NAME=%q\nNAME=%q\nID=%s\nVERSION_ID=%q\n", name, name, osID(name), version)
}

func osID(name string) string {
	l := strings.ToLower(name)
	for _, m := range []struct{ match, id string }{
		{"red hat", "rhel"}, {"debian", "debian"}, {"ubuntu", "ubuntu"}, {"centos", "centos"},
		{"rocky", "rocky"}, {"alma", "almalinux"}, {"oracle", "ol"}, {"suse", "sles"},
	} {
		if strings.Contains(l, m.match) {
			return m.id
		}
	}
	if f := strings.Fields(l); len(f) > 0 {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, f[0])
	}
	return "linux"
}

func firstNumber(s string) string {
	for _, f := range strings.Fields(s) {
		if f[0] >= '0' && f[0] <= '9' {
			return strings.TrimRight(f, ",;")
		}
	}
	return ""
}

// checkAccess checks that cred may run commands in the guest of VM id:
// NotFound, FailedPrecondition (template, not powered on, tools not
// running) or Unauthenticated. Call with p.mu held.
func (p *Provider) checkAccess(op, id string, cred guest.Credentials) (*record, error) {
	r, ok := p.vms[id]
	if !ok {
		return nil, notFound(op, id)
	}
	vm := r.vm
	switch {
	case vm.Template:
		return nil, errs.Errorf(errs.FailedPrecondition, op, "%s is a template: guest operations need a running VM", limit.Quote(id))
	case vm.Power != provider.PoweredOn:
		return nil, errs.Errorf(errs.FailedPrecondition, op, "VM %s is not powered on (%s): power it on, let the guest boot, and retry", limit.Quote(vm.Name), powerName(vm.Power))
	case !vm.Guest.ToolsRunning:
		return nil, errs.Errorf(errs.FailedPrecondition, op, "VMware Tools are not running in the guest of VM %s: install or start them (or wait for the guest to finish booting) and retry", limit.Quote(vm.Name))
	}
	want, ok := r.accounts[cred.Username]
	if !ok && vm.Guest.Family == guest.Windows {
		for u, pw := range r.accounts {
			if strings.EqualFold(u, cred.Username) {
				want, ok = pw, true
				break
			}
		}
	}
	if !ok || want != cred.Password.Reveal() {
		return nil, errs.Errorf(errs.Unauthenticated, op, "the guest OS of VM %s refused the user name or password for %s: check both (and that the account is not locked or expired) and retry", limit.Quote(vm.Name), limit.Quote(cred.Username))
	}
	return r, nil
}

func powerName(s provider.PowerState) string {
	if s == provider.PowerUnknown {
		return "power state unknown"
	}
	return string(s)
}

// checkCredentials rejects credentials guest operations cannot use.
func checkCredentials(op string, cred guest.Credentials) error {
	if err := cred.Validate(); err != nil {
		return errs.WrapOp(op, err)
	}
	if cred.Password.IsZero() {
		return errs.New(errs.InvalidArgument, op, "guest operations sign in with a password: these credentials have only a private key")
	}
	return nil
}

// ValidateCredentials checks cred against the VM's guest accounts (see
// SetGuestAccount). Credentials without a user or password are
// InvalidArgument; an unknown VM is NotFound; a template, a VM not powered
// on, or a guest whose tools do not run is FailedPrecondition; a wrong
// user name or password is Unauthenticated. User names are compared
// exactly, ignoring case for Windows guests. Error messages never contain
// the password.
func (p *Provider) ValidateCredentials(ctx context.Context, vmID string, cred guest.Credentials) error {
	const op = "memprovider.ValidateCredentials"
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	if err := checkCredentials(op, cred); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.checkAccess(op, vmID, cred)
	return err
}

// GuestExecutor checks cred as ValidateCredentials does and returns an
// executor that runs commands in the guest through the VM's GuestHandler.
// Every Run and Upload checks the VM and credentials again, as guest
// operations do, so powering the VM off or changing the password makes
// later calls fail. Uploaded files are kept per VM (see GuestFile).
func (p *Provider) GuestExecutor(ctx context.Context, vmID string, cred guest.Credentials) (*guest.Executor, error) {
	const op = "memprovider.GuestExecutor"
	if err := errs.FromContext(ctx, op); err != nil {
		return nil, err
	}
	if err := checkCredentials(op, cred); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, err := p.checkAccess(op, vmID, cred)
	if err != nil {
		return nil, err
	}
	return guest.New(&executor{p: p, vmID: vmID, cred: cred, family: r.vm.Guest.Family}, &guest.Options{Logger: p.log}), nil
}

// executor is the guest.Driver over a VM of p.
type executor struct {
	p      *Provider
	vmID   string
	cred   guest.Credentials
	family guest.OSFamily
	closed atomic.Bool
}

var _ guest.Driver = (*executor)(nil)

func (e *executor) Family() guest.OSFamily { return e.family }

func (e *executor) Close() error {
	if e.closed.Swap(true) {
		return guest.ErrClosed
	}
	return nil
}

// begin checks access, as guest operations do on every call, and returns
// the VM and its handler.
func (e *executor) begin() (provider.VM, GuestHandler, error) {
	if e.closed.Load() {
		return provider.VM{}, nil, guest.ErrClosed
	}
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	r, err := e.p.checkAccess("", e.vmID, e.cred)
	if err != nil {
		return provider.VM{}, nil, err
	}
	h := r.handler
	if h == nil {
		h = e.p.defaultHandler
	}
	return r.vm.Clone(), h, nil
}

func (e *executor) Run(ctx context.Context, cmd guest.Command) (guest.Result, error) {
	vm, h, err := e.begin()
	if err != nil {
		return guest.Result{}, err
	}
	start := time.Now()
	res, err := h(ctx, GuestRequest{VM: vm, User: e.cred.Username, Command: cmd})
	if res.Duration == 0 {
		res.Duration = time.Since(start)
	}
	res.Stdout = truncate(res.Stdout)
	res.Stderr = truncate(res.Stderr)
	if cmd.Stdout != nil && len(res.Stdout) > 0 {
		_, _ = cmd.Stdout.Write(res.Stdout)
	}
	if cmd.Stderr != nil && len(res.Stderr) > 0 {
		_, _ = cmd.Stderr.Write(res.Stderr)
	}
	if err != nil {
		if errs.CodeOf(err) == errs.Unknown && ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, err
	}
	if res.ExitCode != 0 {
		return res, &guest.ExitError{Command: cmd.String(), Code: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr}
	}
	return res, nil
}

func truncate(b []byte) []byte {
	if len(b) > guest.MaxOutput {
		return b[:guest.MaxOutput]
	}
	return b
}

func (e *executor) Upload(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error {
	if _, _, err := e.begin(); err != nil {
		return err
	}
	data, err := readAll(ctx, r)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return err
	}
	mode := opts.Mode
	if mode == 0 {
		mode = 0o644
	}
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	rec, ok := e.p.vms[e.vmID]
	if !ok {
		return notFound("", e.vmID)
	}
	if rec.files == nil {
		rec.files = make(map[string]GuestFile)
	}
	rec.files[path] = GuestFile{Data: data, Mode: mode, Owner: opts.Owner}
	return nil
}

// readAll reads r, stopping early when ctx ends.
func readAll(ctx context.Context, r io.Reader) ([]byte, error) {
	var buf []byte
	chunk := make([]byte, 32*1024)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the upload: %w", err)
		}
	}
}
