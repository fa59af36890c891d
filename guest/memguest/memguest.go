package memguest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/managedvm/managedvm/guest"
)

// Handler answers one command. It returns the command's Result (a non-zero
// ExitCode makes Run return an *guest.ExitError) or an error that Run
// returns as is (its code kept).
//
// cmd.Stdin, if not nil, is the caller's standard input; cmd.Stdout and
// cmd.Stderr are never nil: what a handler writes there reaches the
// caller's writers at once and is kept in Run's Result, ahead of the
// Stdout and Stderr the handler returns. ctx is done when the caller's
// context is, when the command's Timeout passes, or when the executor is
// closed; Run does not wait for a handler that ignores it.
type Handler func(ctx context.Context, cmd guest.Command) (guest.Result, error)

// UploadHandler sees every upload before it is captured; an error fails the
// Upload (its code kept) and nothing is captured. opts.Mode is already
// defaulted. Use it to inject upload failures or to write uploads
// somewhere real.
type UploadHandler func(ctx context.Context, path string, content []byte, opts guest.UploadOptions) error

// Options configure a Driver. The zero value is usable.
type Options struct {
	// Default answers commands no registered handler matches. Nil means
	// they exit with code 127 and "command not found" on standard error,
	// as sh does.
	Default Handler
	// Upload, if not nil, sees every upload first (see UploadHandler).
	Upload UploadHandler
	// Logger receives debug records of commands and uploads (program names
	// and sizes only); nil discards them.
	Logger *slog.Logger
	// Executor holds the options of the *guest.Executor over the driver
	// (default Timeout, telemetry); nil means none. When its Logger is nil,
	// Logger is used.
	Executor *guest.Options
}

// File is an uploaded file as the executor captured it.
type File struct {
	Content []byte
	// Mode is the mode asked for, 0644 when the upload gave none on a
	// Linux guest.
	Mode fs.FileMode
	// Owner is UploadOptions.Owner.
	Owner string
}

func (f File) clone() File {
	f.Content = bytes.Clone(f.Content)
	if f.Content == nil {
		f.Content = []byte{}
	}
	return f
}

// Driver is a scripted, in-memory guest.Driver: the control side of a
// memguest guest (handlers, simulated failures, what ran, what was
// uploaded). Create it with NewDriver; Executor gives the *guest.Executor
// callers use.
type Driver struct {
	ex     *guest.Executor
	family guest.OSFamily
	log    *slog.Logger
	upload UploadHandler

	closing chan struct{} // closed by Close

	mu      sync.Mutex
	closed  bool
	exact   []argsRoute
	prefix  []argsRoute
	scripts []scriptRoute
	def     Handler
	losses  []bool // pending simulated session losses: true = after running
	calls   []*call
	files   map[string]File
}

var _ guest.Driver = (*Driver)(nil)

type argsRoute struct {
	args []string
	h    Handler
}

type scriptRoute struct {
	substr string
	re     *regexp.Regexp
	h      Handler
}

type call struct {
	cmd      guest.Command
	hasStdin bool
	stdin    []byte
}

// New returns the executor of a new memguest guest of the given family:
// NewDriver(family, opts).Executor(). opts may be nil.
func New(family guest.OSFamily, opts *Options) *guest.Executor {
	return NewDriver(family, opts).Executor()
}

// NewDriver returns a driver for a guest of the given family, and with it
// (Executor) the *guest.Executor over it. opts may be nil.
func NewDriver(family guest.OSFamily, opts *Options) *Driver {
	if opts == nil {
		opts = &Options{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{
		family:  family,
		log:     log,
		upload:  opts.Upload,
		def:     opts.Default,
		closing: make(chan struct{}),
		files:   make(map[string]File),
	}
	var eo guest.Options
	if opts.Executor != nil {
		eo = *opts.Executor
	}
	if eo.Logger == nil {
		eo.Logger = opts.Logger
	}
	d.ex = guest.New(d, &eo)
	return d
}

// Executor returns the *guest.Executor over d (the same one every call).
// Closing it closes d.
func (e *Driver) Executor() *guest.Executor { return e.ex }

// HandleArgs makes h answer commands whose Args equal args exactly.
// Registering the same args again replaces the handler.
func (e *Driver) HandleArgs(args []string, h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, r := range e.exact {
		if slices.Equal(r.args, args) {
			e.exact[i].h = h
			return
		}
	}
	e.exact = append(e.exact, argsRoute{slices.Clone(args), h})
}

// HandleArgsPrefix makes h answer commands whose Args start with prefix.
// Registering the same prefix again replaces the handler.
func (e *Driver) HandleArgsPrefix(prefix []string, h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, r := range e.prefix {
		if slices.Equal(r.args, prefix) {
			e.prefix[i].h = h
			return
		}
	}
	e.prefix = append(e.prefix, argsRoute{slices.Clone(prefix), h})
}

// HandleScript makes h answer scripts that contain substr.
func (e *Driver) HandleScript(substr string, h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scripts = append(e.scripts, scriptRoute{substr: substr, h: h})
}

// HandleScriptRegexp makes h answer scripts that re matches.
func (e *Driver) HandleScriptRegexp(re *regexp.Regexp, h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scripts = append(e.scripts, scriptRoute{re: re, h: h})
}

// HandleDefault makes h answer the commands no other handler matches
// (nil restores the "command not found" default).
func (e *Driver) HandleDefault(h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.def = h
}

// route picks the handler for cmd: an exact Args match, else the longest
// matching Args prefix, else the first registered script match, else the
// default. The caller holds e.mu.
func (e *Driver) route(cmd guest.Command) Handler {
	if len(cmd.Args) > 0 {
		for _, r := range e.exact {
			if slices.Equal(r.args, cmd.Args) {
				return r.h
			}
		}
		var best *argsRoute
		for i, r := range e.prefix {
			if len(r.args) <= len(cmd.Args) && slices.Equal(r.args, cmd.Args[:len(r.args)]) &&
				(best == nil || len(r.args) > len(best.args)) {
				best = &e.prefix[i]
			}
		}
		if best != nil {
			return best.h
		}
	} else {
		for _, r := range e.scripts {
			if (r.re != nil && r.re.MatchString(cmd.Script)) || (r.re == nil && strings.Contains(cmd.Script, r.substr)) {
				return r.h
			}
		}
	}
	if e.def != nil {
		return e.def
	}
	return notFound
}

func notFound(_ context.Context, cmd guest.Command) (guest.Result, error) {
	name := "script"
	if len(cmd.Args) > 0 {
		name = cmd.Args[0]
	}
	return guest.Result{ExitCode: 127, Stderr: []byte("memguest: " + name + ": command not found\n")}, nil
}

// Reply returns a handler that prints stdout and exits 0.
func Reply(stdout string) Handler {
	return func(context.Context, guest.Command) (guest.Result, error) {
		return guest.Result{Stdout: []byte(stdout)}, nil
	}
}

// Exit returns a handler that prints stdout and stderr and exits with code.
func Exit(code int, stdout, stderr string) Handler {
	return func(context.Context, guest.Command) (guest.Result, error) {
		return guest.Result{ExitCode: code, Stdout: []byte(stdout), Stderr: []byte(stderr)}, nil
	}
}

// Fail returns a handler whose commands fail with err, as a transport
// failure would.
func Fail(err error) Handler {
	return func(context.Context, guest.Command) (guest.Result, error) {
		return guest.Result{}, err
	}
}

// SimulateSessionLoss makes the next Run fail with an error wrapping
// guest.ErrSessionLost (code OutcomeUnknown), as if the connection dropped
// while the command ran. With afterRun the command's handler runs first
// (its side effects happen, its result is lost); without it the handler
// never runs. Either way the command is recorded. Calls queue up: two calls
// make the next two Runs fail. Later Runs work again.
func (e *Driver) SimulateSessionLoss(afterRun bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.losses = append(e.losses, afterRun)
}

// Commands returns a copy of every command Run accepted, in the order Run
// was called. Stdout and Stderr are nil; Stdin, if the command had one,
// reads what the handler consumed of it.
func (e *Driver) Commands() []guest.Command {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]guest.Command, len(e.calls))
	for i, c := range e.calls {
		out[i] = copyCommand(c.cmd)
		if c.hasStdin {
			out[i].Stdin = bytes.NewReader(bytes.Clone(c.stdin))
		}
	}
	return out
}

func copyCommand(c guest.Command) guest.Command {
	c.Args = slices.Clone(c.Args)
	c.Env = maps.Clone(c.Env)
	c.Stdin, c.Stdout, c.Stderr = nil, nil, nil
	return c
}

// Files returns a copy of every file uploaded (or set with SetFile), by
// path.
func (e *Driver) Files() map[string]File {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]File, len(e.files))
	for p, f := range e.files {
		out[p] = f.clone()
	}
	return out
}

// File returns a copy of the file uploaded to path.
func (e *Driver) File(path string) (File, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f, ok := e.files[path]
	if !ok {
		return File{}, false
	}
	return f.clone(), true
}

// FilePaths returns the paths of the captured files, sorted.
func (e *Driver) FilePaths() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	paths := make([]string, 0, len(e.files))
	for p := range e.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// SetFile puts a file in place as if it had been uploaded, without calling
// the upload handler; handlers can read it with File.
func (e *Driver) SetFile(path string, f File) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.files[path] = f.clone()
}

// RemoveFile forgets the file at path, if any.
func (e *Driver) RemoveFile(path string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.files, path)
}

// Family returns the family New was given.
func (e *Driver) Family() guest.OSFamily { return e.family }

// Close makes commands still running fail with an error wrapping both
// guest.ErrSessionLost and guest.ErrClosed (the Executor refuses every
// later call with guest.ErrClosed). The Executor calls it; hosts close the
// Executor.
func (e *Driver) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return guest.ErrClosed
	}
	e.closed = true
	close(e.closing)
	return nil
}

// Run runs cmd through its handler (the Executor has checked it and
// applied its timeout to ctx). See the package documentation.
func (e *Driver) Run(ctx context.Context, cmd guest.Command) (guest.Result, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return guest.Result{}, guest.ErrClosed
	}
	h := e.route(cmd)
	rec := &call{cmd: copyCommand(cmd), hasStdin: cmd.Stdin != nil}
	e.calls = append(e.calls, rec)
	lose, afterRun := false, false
	if len(e.losses) > 0 {
		lose, afterRun = true, e.losses[0]
		e.losses = e.losses[1:]
	}
	e.mu.Unlock()

	if e.log.Enabled(ctx, slog.LevelDebug) {
		e.log.DebugContext(ctx, "memguest: run", "command", cmd.String())
	}
	if lose && !afterRun {
		return guest.Result{ExitCode: -1}, guest.SessionLost("", errors.New("memguest: simulated session loss"))
	}

	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()

	rs := &runState{}
	stdout := &capture{rs: rs, w: cmd.Stdout}
	stderr := &capture{rs: rs, w: cmd.Stderr}
	hcmd := cmd
	hcmd.Args = slices.Clone(cmd.Args)
	hcmd.Env = maps.Clone(cmd.Env)
	hcmd.Stdout, hcmd.Stderr = stdout, stderr
	if cmd.Stdin != nil {
		hcmd.Stdin = &stdinRecorder{rs: rs, r: cmd.Stdin, e: e, rec: rec}
	}

	type outcome struct {
		res   guest.Result
		err   error
		panic any
		ok    bool
	}
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		var o outcome
		defer func() {
			if !o.ok {
				o.panic = recover()
				if o.panic == nil {
					o.panic = "memguest: handler called runtime.Goexit"
				}
			}
			done <- o
		}()
		o.res, o.err = h(hctx, hcmd)
		o.ok = true
	}()

	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		res := rs.finish(stdout, stderr, nil, nil)
		res.ExitCode, res.Duration = -1, time.Since(start)
		return res, ctx.Err()
	case <-e.closing:
		res := rs.finish(stdout, stderr, nil, nil)
		res.ExitCode, res.Duration = -1, time.Since(start)
		return res, guest.SessionLost("", guest.ErrClosed)
	}
	if !o.ok {
		panic(o.panic)
	}
	res := rs.finish(stdout, stderr, o.res.Stdout, o.res.Stderr)
	res.ExitCode, res.Duration = o.res.ExitCode, o.res.Duration
	if res.Duration == 0 {
		res.Duration = time.Since(start)
	}
	switch {
	case lose:
		res.ExitCode = -1
		return res, guest.SessionLost("", errors.New("memguest: simulated session loss"))
	case o.err != nil:
		if ctx.Err() != nil && (errors.Is(o.err, context.Canceled) || errors.Is(o.err, context.DeadlineExceeded)) {
			return res, ctx.Err()
		}
		return res, o.err
	case res.ExitCode != 0:
		return res, &guest.ExitError{
			Command: cmd.String(),
			Code:    res.ExitCode,
			Stdout:  bytes.Clone(res.Stdout),
			Stderr:  bytes.Clone(res.Stderr),
		}
	}
	return res, nil
}

// runState guards one Run's output and input once Run has returned: a
// handler still running after that can no longer reach the caller's
// readers and writers.
type runState struct {
	mu   sync.Mutex
	over bool
}

var errRunOver = errors.New("memguest: the command's Run has returned")

// finish appends the handler's returned output, writes it to the caller's
// writers and closes the run. It returns the output kept.
func (rs *runState) finish(stdout, stderr *capture, outTail, errTail []byte) guest.Result {
	_, _ = stdout.Write(outTail)
	_, _ = stderr.Write(errTail)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.over = true
	return guest.Result{Stdout: nonNil(stdout.buf), Stderr: nonNil(stderr.buf)}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

type capture struct {
	rs  *runState
	w   io.Writer
	buf []byte
}

func (c *capture) Write(p []byte) (int, error) {
	c.rs.mu.Lock()
	defer c.rs.mu.Unlock()
	if c.rs.over {
		return 0, errRunOver
	}
	if room := guest.MaxOutput - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	if c.w != nil && len(p) > 0 {
		if _, err := c.w.Write(p); err != nil {
			return 0, fmt.Errorf("memguest: caller's writer: %w", err)
		}
	}
	return len(p), nil
}

type stdinRecorder struct {
	rs  *runState
	r   io.Reader
	e   *Driver
	rec *call
}

func (s *stdinRecorder) Read(p []byte) (int, error) {
	s.rs.mu.Lock()
	over := s.rs.over
	s.rs.mu.Unlock()
	if over {
		return 0, errRunOver
	}
	n, err := s.r.Read(p)
	if n > 0 {
		s.e.mu.Lock()
		s.rec.stdin = append(s.rec.stdin, p[:n]...)
		s.e.mu.Unlock()
	}
	return n, err
}

// Upload captures the content of r as the file at path. See the package
// documentation.
func (e *Driver) Upload(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(ctxReader{ctx, r}); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return err
	}
	if opts.Mode == 0 && e.family != guest.Windows {
		opts.Mode = 0o644
	}
	content := buf.Bytes()
	if e.upload != nil {
		if err := e.upload(ctx, path, bytes.Clone(content), opts); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return guest.ErrClosed
	}
	e.files[path] = File{Content: content, Mode: opts.Mode, Owner: opts.Owner}
	e.log.DebugContext(ctx, "memguest: upload", "bytes", len(content))
	return nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
