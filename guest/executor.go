package guest

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/obs"
)

// Driver is what a transport implements (SSH, WinRM, vSphere guest
// operations, memguest). Callers never hold a Driver: they hold the
// *Executor that New builds over it, which does everything transports
// share (see "How to write a transport" in the package documentation).
//
// The Executor calls a Driver only with an open executor, a live context,
// a valid Command whose Timeout is set to the one that applies (zero: no
// bound but the context, which then already carries that deadline) and
// a valid path, reader and options. A Driver's errors carry an errs code
// and no operation name (the Executor adds it); a non-zero exit is an
// *ExitError, a lost connection an error from SessionLost.
type Driver interface {
	// Run runs cmd and waits for it (see Executor.Run).
	Run(ctx context.Context, cmd Command) (Result, error)
	// Upload writes r to path (see Executor.Upload).
	Upload(ctx context.Context, path string, r io.Reader, opts UploadOptions) error
	// Family reports the guest's OS family. It is called once, by New.
	Family() OSFamily
	// Close releases the connection and makes Runs still in flight
	// return (with an error wrapping ErrSessionLost or ErrClosed). The
	// Executor calls it once.
	Close() error
}

// Options configure an Executor. The zero value (or nil) is usable.
type Options struct {
	// Timeout bounds every command whose Command.Timeout is zero; zero
	// means no bound but the context's. Negative values are treated as
	// zero.
	Timeout time.Duration
	// Logger receives one debug record per call (keys op, code, err,
	// duration; never arguments, scripts or secrets); nil discards them.
	Logger *slog.Logger
	// TracerProvider, if set, records a span per Run and Upload.
	TracerProvider trace.TracerProvider
	// MeterProvider, if set, records the call metrics.
	MeterProvider metric.MeterProvider
}

// Executor runs commands in one guest over a Driver. It is the type every
// caller holds: it checks, bounds and defaults every call the same way for
// every transport, wraps errors once with the operation's name ("guest.Run",
// "guest.Upload", "guest.Close"), and records logs, spans and metrics. It
// is safe for concurrent use when its Driver is (every driver of this
// module is).
type Executor struct {
	d       Driver
	family  OSFamily
	timeout time.Duration
	in      *obs.Instrument
	closed  obs.Closed
}

// New returns the Executor over d. opts may be nil. Transport packages
// call it in their constructors (ssh.Dial, winrm.New, memguest.New, ...),
// so hosts rarely do.
func New(d Driver, opts *Options) *Executor {
	var o Options
	if opts != nil {
		o = *opts
	}
	return &Executor{
		d:       d,
		family:  d.Family(),
		timeout: max(o.Timeout, 0),
		in:      obs.New("guest", obs.DriverName(d), obs.Options{Logger: o.Logger, TracerProvider: o.TracerProvider, MeterProvider: o.MeterProvider}),
	}
}

// check is the opening of every call: closed, then the context.
func (e *Executor) check(ctx context.Context, op string) error {
	if e.closed.Check(op) != nil {
		return errs.WrapOp(op, ErrClosed)
	}
	return errs.FromContext(ctx, op)
}

// Run runs cmd and waits for it. A command that exits non-zero returns its
// Result and an *ExitError. A connection lost mid-command is an error
// wrapping ErrSessionLost. Canceling ctx, or passing cmd.Timeout (or
// Options.Timeout when cmd.Timeout is zero), stops the remote command and
// Run returns promptly with a Canceled or DeadlineExceeded error. A
// malformed command (see Command.Validate) is InvalidArgument and never
// reaches the guest. After Close, Run returns an error wrapping ErrClosed.
//
// The Result's byte slices belong to the caller.
func (e *Executor) Run(ctx context.Context, cmd Command) (Result, error) {
	const op = "guest.Run"
	err := e.check(ctx, op)
	if err == nil {
		err = cmd.Validate()
	}
	if cmd.Timeout == 0 {
		cmd.Timeout = e.timeout
	}
	ctx, c := e.in.Start(ctx, op)
	if err != nil {
		return Result{}, c.End(ctx, err)
	}
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	res, err := e.d.Run(ctx, cmd)
	res.Stdout, res.Stderr = clip(res.Stdout), clip(res.Stderr)
	return res, c.End(ctx, err)
}

// clip copies b, keeping at most MaxOutput bytes; nil stays nil.
func clip(b []byte) []byte {
	if b == nil {
		return nil
	}
	return bytes.Clone(b[:min(len(b), MaxOutput)])
}

// Upload writes the content of r to path in the guest, atomically where
// the transport allows (temporary file, then rename). path is 1 to MaxPath
// bytes of valid UTF-8 without control characters, not ending in a path
// separator; opts.Mode holds permission bits only; opts.Owner is empty,
// "user" or "user:group" (letters, digits, '_', '-', '.', '$', at most
// MaxOwner bytes). Anything else is InvalidArgument and nothing is
// written. After Close, Upload returns an error wrapping ErrClosed.
func (e *Executor) Upload(ctx context.Context, path string, r io.Reader, opts UploadOptions) error {
	const op = "guest.Upload"
	err := e.check(ctx, op)
	if err == nil {
		err = validUpload(op, path, r, opts)
	}
	ctx, c := e.in.Start(ctx, op)
	if err != nil {
		return c.End(ctx, err)
	}
	return c.End(ctx, e.d.Upload(ctx, path, r, opts))
}

func validUpload(op, path string, r io.Reader, opts UploadOptions) error {
	if why := limit.Why(path, 1, MaxPath, true); why != "" {
		if path == "" {
			return errs.New(errs.InvalidArgument, op, "the path is empty")
		}
		return errs.Errorf(errs.InvalidArgument, op, "the path %s %s", limit.Quote(path), why)
	}
	switch {
	case strings.HasSuffix(path, "/") || strings.HasSuffix(path, `\`):
		return errs.Errorf(errs.InvalidArgument, op, "the path %s names a directory", limit.Quote(path))
	case r == nil:
		return errs.New(errs.InvalidArgument, op, "nil reader")
	case opts.Mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0:
		return errs.Errorf(errs.InvalidArgument, op, "mode %v is not a permission mode", opts.Mode)
	case opts.Owner != "" && !validOwner(opts.Owner):
		return errs.Errorf(errs.InvalidArgument, op, "malformed owner %s (want user or user:group)", limit.Quote(opts.Owner))
	}
	return nil
}

func validOwner(s string) bool {
	if len(s) > MaxOwner || strings.HasPrefix(s, "-") || strings.Count(s, ":") > 1 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.', c == ':', c == '$':
		default:
			return false
		}
	}
	for _, part := range strings.Split(s, ":") {
		if part == "" {
			return false
		}
	}
	return true
}

// Family reports the guest's OS family, which decides what Script means.
func (e *Executor) Family() OSFamily { return e.family }

// Close releases the connection; commands still running fail with an
// error wrapping ErrSessionLost or ErrClosed. Calls after Close, a second
// Close included, return an error wrapping ErrClosed.
func (e *Executor) Close() error {
	const op = "guest.Close"
	ctx := context.Background()
	ctx, c := e.in.Start(ctx, op)
	if !e.closed.Close() {
		return c.End(ctx, errs.WrapOp(op, ErrClosed))
	}
	return c.End(ctx, e.d.Close())
}

// As sets target to the driver, or to what the driver's own As method
// offers (its vendor client, see each transport's documentation), and
// reports whether it did. target is a non-nil pointer to the driver's
// type (for example **ssh.Driver) or to what the driver offers.
func (e *Executor) As(target any) bool { return obs.As(e.d, target, false) }
