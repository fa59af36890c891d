package hyperv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

var _ provider.GuestAccessDriver = (*Provider)(nil)

// MaxDirectStdin is the most standard input (and so the largest upload)
// one PowerShell Direct command takes: the input travels whole in the
// template's parameters, not as a stream.
const MaxDirectStdin = 16 << 20

// maxDirectScript bounds a guest script: powershell.exe in the guest is
// started with its -EncodedCommand, and a Windows command line holds
// 32,767 characters.
const maxDirectScript = 32000

// ValidateCredentials checks cred in the guest of VM vmID over PowerShell
// Direct (a session opened with them runs "exit 0"): Unauthenticated when
// the guest refuses them, FailedPrecondition when the VM is not running
// or its guest does not answer, NotFound for an unknown VM.
func (d *Provider) ValidateCredentials(ctx context.Context, vmID string, cred guest.Credentials) error {
	g, err := d.direct(ctx, vmID, cred)
	if err != nil {
		return err
	}
	_, err = g.Run(ctx, guest.Command{Script: "exit 0"})
	return err
}

// GuestExecutor returns an executor that runs commands in the guest of
// VM vmID over PowerShell Direct, on the node that holds the VM, after
// checking cred as ValidateCredentials does. See the package
// documentation for what it cannot do.
func (d *Provider) GuestExecutor(ctx context.Context, vmID string, cred guest.Credentials) (*guest.Executor, error) {
	g, err := d.direct(ctx, vmID, cred)
	if err != nil {
		return nil, err
	}
	if _, err := g.Run(ctx, guest.Command{Script: "exit 0"}); err != nil {
		return nil, err
	}
	return guest.New(g, d.guestOpts), nil
}

// direct is the guest.Driver of PowerShell Direct into one VM.
func (d *Provider) direct(ctx context.Context, vmID string, cred guest.Credentials) (*directGuest, error) {
	if cred.Password.IsZero() {
		return nil, errs.New(errs.InvalidArgument, "", "hyperv: PowerShell Direct needs a user name and password")
	}
	if d.isTemplateID(vmID) {
		return nil, errs.Errorf(errs.FailedPrecondition, "", "hyperv: %s is a template, not a running VM", limit.Quote(vmID))
	}
	if _, _, err := d.locate(ctx, vmID); err != nil {
		return nil, err
	}
	return &directGuest{d: d, id: strings.ToLower(vmID), cred: cred, closed: make(chan struct{})}, nil
}

// directGuest runs guest commands with the guest/1 template on the node
// that holds the VM (found again if the VM moved).
type directGuest struct {
	d    *Provider
	id   string
	cred guest.Credentials

	once   sync.Once
	closed chan struct{}
}

func (g *directGuest) Family() guest.OSFamily { return guest.Windows }

func (g *directGuest) Close() error {
	g.once.Do(func() { close(g.closed) })
	return nil
}

// Run runs cmd in the guest: its PowerShell script (guest.PowerShellScript)
// is started by powershell.exe inside the guest with the whole of
// cmd.Stdin on its standard input; output comes back when it ends.
func (g *directGuest) Run(ctx context.Context, cmd guest.Command) (guest.Result, error) {
	if cmd.Sudo {
		return guest.Result{}, errs.New(errs.Unimplemented, "", "Sudo is not available over PowerShell Direct: use an administrator account")
	}
	script := "$ProgressPreference = 'SilentlyContinue'\n" + guest.PowerShellScript(cmd)
	if n := len(guest.EncodePowerShell(script)); n > maxDirectScript {
		return guest.Result{}, errs.Errorf(errs.InvalidArgument, "", "the encoded script is %d characters, more than the %d a guest command line holds", n, maxDirectScript)
	}
	var in []byte
	if cmd.Stdin != nil {
		b, err := io.ReadAll(io.LimitReader(cmd.Stdin, MaxDirectStdin+1))
		if err != nil {
			if cerr := errs.FromContext(ctx, ""); cerr != nil {
				return guest.Result{}, cerr
			}
			return guest.Result{}, errs.Wrap(errs.Internal, "", errors.New("reading the command's standard input: "+err.Error()))
		}
		if len(b) > MaxDirectStdin {
			return guest.Result{}, errs.Errorf(errs.InvalidArgument, "", "standard input over PowerShell Direct is at most %d bytes", MaxDirectStdin)
		}
		in = b
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-g.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	a, err := g.call(ctx, guestParams{ID: g.id, User: g.cred.Username, Password: g.cred.Password.Reveal(), Script: script,
		Stdin: base64.StdEncoding.EncodeToString(in)})
	if err != nil {
		select {
		case <-g.closed:
			return guest.Result{}, errs.Wrap(errs.FailedPrecondition, "", guest.ErrClosed)
		default:
		}
		return guest.Result{}, err
	}
	out, err1 := base64.StdEncoding.DecodeString(a.Out)
	errb, err2 := base64.StdEncoding.DecodeString(a.Err)
	code, err3 := strconv.Atoi(a.Code)
	if err1 != nil || err2 != nil || err3 != nil {
		return guest.Result{}, errs.New(errs.Internal, "", "hyperv: guest/1 answered output that is not base64, or no exit code")
	}
	if cmd.Stdout != nil {
		_, _ = cmd.Stdout.Write(out)
	}
	if cmd.Stderr != nil {
		_, _ = cmd.Stderr.Write(errb)
	}
	res := guest.Result{ExitCode: code, Stdout: out, Stderr: errb, Duration: time.Since(start)}
	if code != 0 {
		return res, &guest.ExitError{Command: cmd.String(), Code: code, Stdout: out, Stderr: errb}
	}
	return res, nil
}

// call runs guest/1 on the VM's node, following a move once, and maps
// the session's failures.
func (g *directGuest) call(ctx context.Context, p guestParams) (guestAnswer, error) {
	for range 2 {
		n, _, err := g.d.locate(ctx, g.id)
		if err != nil {
			return guestAnswer{}, err
		}
		var a guestAnswer
		if err := run(ctx, n.ex, n.name, scriptGuest, p, &a); err != nil {
			return guestAnswer{}, err
		}
		switch {
		case a.Found != "True":
			g.d.mu.Lock()
			delete(g.d.owner, g.id)
			g.d.mu.Unlock()
			continue
		case a.State != "Running":
			return guestAnswer{}, errs.Errorf(errs.FailedPrecondition, "", "hyperv: VM %s is %s: PowerShell Direct needs it running", limit.Quote(g.id), limit.Quote(a.State))
		case a.Error != "":
			low := strings.ToLower(a.Error)
			if strings.Contains(low, "credential is invalid") || strings.Contains(low, "user name or password is incorrect") || strings.Contains(low, "logon failure") {
				return guestAnswer{}, errs.Errorf(errs.Unauthenticated, "", "hyperv: the guest of VM %s refused the credentials of %s", limit.Quote(g.id), limit.Quote(p.User))
			}
			return guestAnswer{}, errs.Errorf(errs.FailedPrecondition, "", "hyperv: PowerShell Direct into VM %s failed (integration services running? a Windows guest?): %s", limit.Quote(g.id), limit.Quote(a.Error))
		}
		return a, nil
	}
	return guestAnswer{}, errs.Errorf(errs.Unavailable, "", "hyperv: VM %s moved twice during a guest command: try again", limit.Quote(g.id))
}

// Upload streams r as guest/winrm's Upload does (base64 lines into a
// temporary file beside path, its SHA-256 checked in the guest before it
// replaces path), within MaxDirectStdin.
func (g *directGuest) Upload(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error {
	if opts.Owner != "" {
		return errs.New(errs.Unimplemented, "", "UploadOptions.Owner is not supported on Windows")
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path + ".mvm-" + hex.EncodeToString(rnd[:]) + ".tmp"
	h := sha256.New()
	var lines bytes.Buffer
	buf := make([]byte, 48<<10)
	total := 0
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			total += n
			if total > MaxDirectStdin*3/4 {
				return errs.Errorf(errs.InvalidArgument, "", "an upload over PowerShell Direct is at most %d bytes", MaxDirectStdin*3/4)
			}
			h.Write(buf[:n])
			lines.WriteString(base64.StdEncoding.EncodeToString(buf[:n]))
			lines.WriteByte('\n')
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			if cerr := errs.FromContext(ctx, ""); cerr != nil {
				return cerr
			}
			return errs.Wrap(errs.Internal, "", errors.New("reading the upload: "+err.Error()))
		}
	}
	_, err := g.Run(ctx, guest.Command{Script: winrm.UploadStreamScript(tmp), Stdin: &lines})
	if err == nil {
		_, err = g.Run(ctx, guest.Command{Script: winrm.UploadCommitScript(tmp, path, strings.ToUpper(hex.EncodeToString(h.Sum(nil))))})
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, cerr := g.Run(cctx, guest.Command{Script: winrm.UploadCleanupScript(tmp)}); cerr != nil {
			g.d.log.Debug("hyperv: removing an upload's temporary file failed", "err", cerr)
		}
		return err
	}
	return nil
}
