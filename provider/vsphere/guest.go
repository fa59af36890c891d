package vsphere

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

// guestTarget checks that a VM can take guest operations and returns it.
func (p *Provider) guestTarget(ctx context.Context, opname, vmID string, cred guest.Credentials) (vmFacts, *types.NamePasswordAuthentication, error) {
	var m vmFacts
	if err := cred.Validate(); err != nil {
		return m, nil, err
	}
	if cred.Password.IsZero() || cred.Password.Reveal() == "" {
		return m, nil, errs.New(errs.InvalidArgument, opname, "guest operations need a user name and password")
	}
	if err := errs.FromContext(ctx, opname); err != nil {
		return m, nil, err
	}
	m, err := p.getFacts(ctx, vmID)
	if err != nil {
		return m, nil, mapErr(opname, err, false)
	}
	if m.power != types.VirtualMachinePowerStatePoweredOn {
		return m, nil, errs.Errorf(errs.FailedPrecondition, opname, "the VM is %s: guest operations need it powered on with VMware Tools running", m.power)
	}
	if m.toolsRunning != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
		return m, nil, errs.New(errs.FailedPrecondition, opname, "VMware Tools are not running in the guest: start them (or install open-vm-tools) to use guest operations")
	}
	return m, &types.NamePasswordAuthentication{Username: cred.Username, Password: cred.Password.Reveal()}, nil
}

func (p *Provider) guestManagers(ctx context.Context) (mo.GuestOperationsManager, error) {
	var gom mo.GuestOperationsManager
	ref := p.client.ServiceContent.GuestOperationsManager
	if ref == nil {
		return gom, errs.New(errs.Unimplemented, "", "this vCenter has no guest operations manager")
	}
	if err := p.retrieveOne(ctx, *ref, []string{"authManager", "processManager", "fileManager"}, &gom); err != nil {
		return gom, mapErr("", err, false)
	}
	if gom.AuthManager == nil || gom.ProcessManager == nil || gom.FileManager == nil {
		return gom, errs.New(errs.Unimplemented, "", "guest operations are not available on this vCenter")
	}
	return gom, nil
}

// ValidateCredentials checks cred in the guest with
// ValidateCredentialsInGuest: a refused login is Unauthenticated, tools not
// running (or a powered-off VM) FailedPrecondition.
func (p *Provider) ValidateCredentials(ctx context.Context, vmID string, cred guest.Credentials) error {
	const opname = "" // the portable *provider.GuestAccess names the call
	m, auth, err := p.guestTarget(ctx, opname, vmID, cred)
	if err != nil {
		return err
	}
	gom, err := p.guestManagers(ctx)
	if err != nil {
		return err
	}
	_, err = methods.ValidateCredentialsInGuest(ctx, p.client, &types.ValidateCredentialsInGuest{This: *gom.AuthManager, Vm: m.ref, Auth: auth})
	if err != nil {
		if isFault[*types.InvalidGuestLogin](err) {
			return errs.New(errs.Unauthenticated, opname, "the guest refused the user name or password")
		}
		return mapErr(opname, err, false)
	}
	return nil
}

// GuestExecutor returns a *guest.Executor over guest operations as cred's
// user (its driver, reachable with As, is an *Executor). The credentials
// are checked first.
func (p *Provider) GuestExecutor(ctx context.Context, vmID string, cred guest.Credentials) (*guest.Executor, error) {
	return p.guestExecutor(ctx, vmID, cred, &guest.Options{Logger: p.log})
}

func (p *Provider) guestExecutor(ctx context.Context, vmID string, cred guest.Credentials, opts *guest.Options) (*guest.Executor, error) {
	const opname = ""
	if err := p.ValidateCredentials(ctx, vmID, cred); err != nil {
		return nil, err
	}
	m, auth, err := p.guestTarget(ctx, opname, vmID, cred)
	if err != nil {
		return nil, err
	}
	gom, err := p.guestManagers(ctx)
	if err != nil {
		return nil, err
	}
	fam := guest.ParseFamily(m.family)
	if fam == guest.FamilyUnknown {
		fam = guest.ParseFamily(m.guestID)
	}
	if fam == guest.FamilyUnknown {
		fam = guest.Linux
	}
	return guest.New(&Executor{p: p, vm: m.ref, auth: auth, family: fam, pm: *gom.ProcessManager, fm: *gom.FileManager}, opts), nil
}

// Executor runs commands in a guest through VMware Tools guest operations:
// StartProgramInGuest with the output redirected to files in a temporary
// directory, ListProcessesInGuest until the program ends, and file
// transfers for the output and for uploads. Standard input is uploaded
// before the program starts, so a program cannot answer what it printed
// (guest operations have no pipes). It is safe for concurrent use.
type Executor struct {
	p      *Provider
	vm     types.ManagedObjectReference
	auth   *types.NamePasswordAuthentication
	family guest.OSFamily
	pm, fm types.ManagedObjectReference
	closed atomic.Bool
}

var _ guest.Driver = (*Executor)(nil)

// Family reports the guest's OS family.
func (e *Executor) Family() guest.OSFamily { return e.family }

// Close makes later calls fail with guest.ErrClosed (the *guest.Executor
// calls it once).
func (e *Executor) Close() error {
	e.closed.Store(true)
	return nil
}

func (e *Executor) mapErr(opname string, err error, mutating bool) error {
	if isFault[*types.InvalidGuestLogin](err) {
		return errs.New(errs.Unauthenticated, opname, "the guest refused the user name or password")
	}
	return mapErr(opname, err, mutating)
}

func (e *Executor) transferURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Hostname() == "*" {
		u.Host = e.p.soap.URL().Host
	}
	return u, nil
}

func (e *Executor) upload(ctx context.Context, dst string, data []byte, mode int64) error {
	res, err := methods.InitiateFileTransferToGuest(ctx, e.p.client, &types.InitiateFileTransferToGuest{
		This: e.fm, Vm: e.vm, Auth: e.auth, GuestFilePath: dst,
		FileAttributes: &types.GuestPosixFileAttributes{Permissions: mode}, FileSize: int64(len(data)), Overwrite: true,
	})
	if err != nil {
		return err
	}
	u, err := e.transferURL(res.Returnval)
	if err != nil {
		return err
	}
	p := soap.DefaultUpload
	p.Method = "PUT"
	p.ContentLength = int64(len(data))
	return e.p.soap.Upload(ctx, bytes.NewReader(data), u, &p)
}

func (e *Executor) download(ctx context.Context, src string, limit int64) ([]byte, error) {
	res, err := methods.InitiateFileTransferFromGuest(ctx, e.p.client, &types.InitiateFileTransferFromGuest{This: e.fm, Vm: e.vm, Auth: e.auth, GuestFilePath: src})
	if err != nil {
		return nil, err
	}
	u, err := e.transferURL(res.Returnval.Url)
	if err != nil {
		return nil, err
	}
	rc, _, err := e.p.soap.Download(ctx, u, &soap.DefaultDownload)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

// readAll reads r, giving up when ctx ends.
func readAll(ctx context.Context, r io.Reader) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		return res.b, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run runs cmd in the guest and waits for it.
func (e *Executor) Run(ctx context.Context, cmd guest.Command) (guest.Result, error) {
	if e.closed.Load() {
		return guest.Result{}, guest.ErrClosed
	}
	if cmd.Sudo {
		return guest.Result{}, errs.New(errs.Unimplemented, "", "guest operations run as the credentials' user: sudo is not supported")
	}
	start := time.Now()
	var stdin []byte
	if cmd.Stdin != nil {
		b, err := readAll(ctx, cmd.Stdin)
		if err != nil {
			return guest.Result{}, errs.Wrap(codeOr(ctx, errs.InvalidArgument), "", err)
		}
		stdin = b
	}
	c := e.p.client
	tmp, err := methods.CreateTemporaryDirectoryInGuest(ctx, c, &types.CreateTemporaryDirectoryInGuest{This: e.fm, Vm: e.vm, Auth: e.auth, Prefix: "managedvm-"})
	if err != nil {
		return guest.Result{}, e.mapErr("", err, false)
	}
	dir := tmp.Returnval
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = methods.DeleteDirectoryInGuest(cctx, c, &types.DeleteDirectoryInGuest{This: e.fm, Vm: e.vm, Auth: e.auth, DirectoryPath: dir, Recursive: true})
	}()
	win := e.family == guest.Windows
	join := func(name string) string {
		if win {
			return dir + `\` + name
		}
		return path.Join(dir, name)
	}
	in, out, errf := "/dev/null", join("stdout"), join("stderr")
	if cmd.Stdin != nil {
		in = join("stdin")
		if err := e.upload(ctx, in, stdin, 0o600); err != nil {
			return guest.Result{}, e.mapErr("", err, false)
		}
	}
	spec := &types.GuestProgramSpec{}
	if win {
		script := guest.PowerShellScript(cmd)
		spec.ProgramPath = `C:\Windows\System32\cmd.exe`
		spec.Arguments = `/c powershell.exe -NoProfile -NonInteractive -EncodedCommand ` + guest.EncodePowerShell(script)
		if cmd.Stdin != nil {
			spec.Arguments += ` < "` + in + `"`
		}
		spec.Arguments += ` > "` + out + `" 2> "` + errf + `"`
	} else {
		line := "exec <" + guest.ShellQuote(in) + " >" + guest.ShellQuote(out) + " 2>" + guest.ShellQuote(errf) + "; " + guest.ShellCommandLine(cmd)
		spec.ProgramPath = "/bin/sh"
		if xmlSafe(line) {
			spec.Arguments = "-c " + guest.ShellQuote(line)
		} else {
			// SOAP (XML) cannot carry control characters or invalid
			// UTF-8: send the command line as a file instead.
			script := join("command.sh")
			if err := e.upload(ctx, script, []byte(line+"\n"), 0o600); err != nil {
				return guest.Result{}, e.mapErr("", err, false)
			}
			spec.Arguments = guest.ShellQuote(script)
		}
	}
	started, err := methods.StartProgramInGuest(ctx, c, &types.StartProgramInGuest{This: e.pm, Vm: e.vm, Auth: e.auth, Spec: spec})
	if err != nil {
		return guest.Result{}, e.mapErr("", err, true)
	}
	pid := started.Returnval
	streams := []*outStream{{path: out, w: cmd.Stdout}, {path: errf, w: cmd.Stderr}}
	stream := cmd.Stdout != nil || cmd.Stderr != nil
	wait := 5 * time.Millisecond
	var exit int32
	for {
		if ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, _ = methods.TerminateProcessInGuest(cctx, c, &types.TerminateProcessInGuest{This: e.pm, Vm: e.vm, Auth: e.auth, Pid: pid})
			cancel()
			return guest.Result{}, ctx.Err()
		}
		res, err := methods.ListProcessesInGuest(ctx, c, &types.ListProcessesInGuest{This: e.pm, Vm: e.vm, Auth: e.auth, Pids: []int64{pid}})
		if err != nil && ctx.Err() == nil {
			return guest.Result{}, guest.SessionLost("", e.mapErr("", err, true))
		}
		if err == nil {
			if len(res.Returnval) == 0 {
				return guest.Result{}, guest.SessionLost("", errors.New("the guest no longer knows the process"))
			}
			if pi := res.Returnval[0]; pi.EndTime != nil {
				exit = pi.ExitCode
				break
			}
		}
		if stream {
			for _, s := range streams {
				s.pump(ctx, e)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(wait*2, e.p.opts.GuestPollInterval)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	for _, s := range streams {
		if err := s.finish(dctx, e); err != nil {
			return guest.Result{}, guest.SessionLost("", e.mapErr("", err, false))
		}
	}
	r := guest.Result{ExitCode: int(exit), Stdout: streams[0].data, Stderr: streams[1].data, Duration: time.Since(start)}
	if exit != 0 {
		return r, &guest.ExitError{Command: cmd.String(), Code: int(exit), Stdout: r.Stdout, Stderr: r.Stderr}
	}
	return r, nil
}

// xmlSafe reports whether s survives a SOAP string unchanged.
func xmlSafe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFD || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}

func codeOr(ctx context.Context, c errs.Code) errs.Code {
	if err := ctx.Err(); err != nil {
		return errs.CodeOf(err)
	}
	return c
}

// outStream is one output file: what was read of it and passed to w.
type outStream struct {
	path string
	w    io.Writer
	data []byte
	sent int
}

// pump forwards new output to the writer while the program runs.
func (s *outStream) pump(ctx context.Context, e *Executor) {
	if s.w == nil {
		return
	}
	b, err := e.download(ctx, s.path, guest.MaxOutput)
	if err != nil || len(b) <= s.sent {
		return
	}
	_, _ = s.w.Write(b[s.sent:])
	s.sent = len(b)
}

func (s *outStream) finish(ctx context.Context, e *Executor) error {
	b, err := e.download(ctx, s.path, guest.MaxOutput)
	if err != nil {
		return err
	}
	s.data = b
	if s.w != nil && len(b) > s.sent {
		_, _ = s.w.Write(b[s.sent:])
		s.sent = len(b)
	}
	return nil
}

// Upload writes r to path in the guest: the content goes to a temporary
// file beside path, which is then moved over it.
func (e *Executor) Upload(ctx context.Context, dst string, r io.Reader, opts guest.UploadOptions) error {
	if e.closed.Load() {
		return guest.ErrClosed
	}
	data, err := readAll(ctx, r)
	if err != nil {
		return errs.Wrap(codeOr(ctx, errs.InvalidArgument), "", err)
	}
	mode := int64(opts.Mode.Perm())
	if mode == 0 {
		mode = 0o644
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	dirOf, base := path.Split(dst)
	if e.family == guest.Windows {
		if i := strings.LastIndexAny(dst, `\/`); i >= 0 {
			dirOf, base = dst[:i+1], dst[i+1:]
		}
	}
	tmp := dirOf + "." + base + ".managedvm-" + hex.EncodeToString(rnd[:])
	c := e.p.client
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = methods.DeleteFileInGuest(cctx, c, &types.DeleteFileInGuest{This: e.fm, Vm: e.vm, Auth: e.auth, FilePath: tmp})
	}
	if err := e.upload(ctx, tmp, data, mode); err != nil {
		cleanup()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e.mapErr("", err, true)
	}
	if err := ctx.Err(); err != nil {
		cleanup()
		return err
	}
	if _, err := methods.MoveFileInGuest(ctx, c, &types.MoveFileInGuest{This: e.fm, Vm: e.vm, Auth: e.auth, SrcFilePath: tmp, DstFilePath: dst, Overwrite: true}); err != nil {
		cleanup()
		return e.mapErr("", err, true)
	}
	if opts.Owner != "" && e.family != guest.Windows {
		if _, err := e.Run(ctx, guest.Command{Args: []string{"chown", opts.Owner, dst}}); err != nil {
			return err
		}
	}
	return nil
}
