package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	xssh "golang.org/x/crypto/ssh"
)

// Config says where and as whom to connect. Addr, Credentials and HostKeys
// are required. Dial checks every field before any network I/O (see
// "Limits" in the package documentation).
type Config struct {
	// Addr is "host", "host:port", "[ipv6]" or "[ipv6]:port" (port 22 by
	// default; a bare IPv6 address is also accepted). The host is an IP
	// address (IPv6 with an optional zone of letters, digits, '.', '_',
	// '-') or a DNS name of at most MaxHostLen bytes, labels of 1 to 63
	// letters, digits, '-' or '_' not beginning or ending with '-'; the
	// port is decimal, 1 to 65535.
	Addr string
	// Credentials: a password (password and keyboard-interactive
	// authentication, and sudo), a private key (with its passphrase), or
	// both (the key is tried first). The user name is 1 to
	// MaxUsernameLen bytes of UTF-8 without control or white space
	// characters; a password or passphrase at most MaxPasswordLen bytes
	// without NUL, CR or LF (sudo -S reads it as a line); a private key
	// at most MaxPrivateKeyLen bytes, and it must parse (with the
	// passphrase, if encrypted).
	Credentials guest.Credentials
	// HostKeys decides which host keys are trusted (KnownHosts, PinnedKey,
	// TrustOnFirstUse, or the explicitly insecure InsecureAcceptAnyHostKey).
	HostKeys HostKeyPolicy
}

// Options tune the driver. The zero value is usable.
type Options struct {
	// Logger receives the driver's own debug logs (connects, reconnects;
	// never arguments, scripts or secrets); nil discards them.
	Logger *slog.Logger
	// Executor holds the options of the *guest.Executor Dial returns:
	// the default command timeout (guest.Options.Timeout) and telemetry.
	// nil means none; when its Logger is nil, Logger is used.
	Executor *guest.Options
	// DialTimeout bounds connecting and the SSH handshake (default 15s;
	// negative is InvalidArgument).
	DialTimeout time.Duration
	// MaxSessions is how many commands run at once over the connection
	// (default 10, OpenSSH's MaxSessions; at most MaxMaxSessions); more
	// wait their turn.
	MaxSessions int
	// NoSFTP makes Upload use exec (sh and cat) even when the server offers
	// the sftp subsystem.
	NoSFTP bool
	// KillGrace is how long a canceled command has between SIGTERM and
	// SIGKILL (default 1s; negative is InvalidArgument).
	KillGrace time.Duration
}

// Driver runs commands in a Linux guest over one SSH connection, reused
// for every command: the guest.Driver under the *guest.Executor Dial
// returns (reach it with Executor.As). It is safe for concurrent use. If the connection drops, the commands running on it fail
// with an error wrapping guest.ErrSessionLost and the next call dials
// again.
type Driver struct {
	cfg  Config
	opts Options
	log  *slog.Logger
	addr string
	auth []xssh.AuthMethod
	sem  chan struct{}

	mu     sync.Mutex
	client *xssh.Client
	gone   chan struct{} // closed when client's connection has ended
	dead   bool          // client's connection is gone
	closed bool
	noSFTP bool
}

var _ guest.Driver = (*Driver)(nil)

// SignalError reports a command that was ended by a signal (exit-signal).
// Its code is errs.OutcomeUnknown: the command ran, but not to its end.
type SignalError struct {
	// Command describes the command (guest.Command.String).
	Command string
	// Signal is the signal's name without "SIG" ("KILL", "TERM").
	Signal string
	// Stdout and Stderr are the captured output.
	Stdout, Stderr []byte
}

func (e *SignalError) Error() string {
	return fmt.Sprintf("%s was killed by signal %s", e.Command, e.Signal)
}

// ErrorCode makes errs.CodeOf give OutcomeUnknown.
func (e *SignalError) ErrorCode() errs.Code { return errs.OutcomeUnknown }

// Is makes errors.Is(err, errs.OutcomeUnknown) true.
func (e *SignalError) Is(target error) bool { return target == errs.OutcomeUnknown }

// Dial connects and authenticates. A malformed Config or Options is
// errs.InvalidArgument, found before any network I/O (no name lookup, no
// connection), with the offending value quoted and cut to 64 bytes
// (secrets are never quoted). A refused login is errs.Unauthenticated; an
// untrusted host key a *HostKeyError (errs.PermissionDenied); an
// unreachable host errs.Unavailable.
func Dial(ctx context.Context, cfg Config, opts *Options) (*guest.Executor, error) {
	const op = "ssh.Dial"
	if opts == nil {
		opts = &Options{}
	}
	o := *opts
	addr, err := validate(op, cfg, o)
	if err != nil {
		return nil, err
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 15 * time.Second
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = 10
	}
	if o.KillGrace == 0 {
		o.KillGrace = time.Second
	}
	// The private key (and its passphrase) must be usable before a
	// connection is made.
	auth, err := authMethods(cfg.Credentials)
	if err != nil {
		return nil, err
	}
	e := &Driver{cfg: cfg, opts: o, log: o.Logger, addr: addr, auth: auth, sem: make(chan struct{}, o.MaxSessions), noSFTP: o.NoSFTP}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	c, err := e.dial(ctx)
	if err != nil {
		return nil, err
	}
	e.setClient(c)
	var eo guest.Options
	if o.Executor != nil {
		eo = *o.Executor
	}
	if eo.Logger == nil {
		eo.Logger = o.Logger
	}
	return guest.New(e, &eo), nil
}

// authMethods turns the credentials into authentication methods (the key
// first), parsing the private key.
func authMethods(cred guest.Credentials) ([]xssh.AuthMethod, error) {
	const op = "ssh.Dial"
	var methods []xssh.AuthMethod
	if !cred.PrivateKey.IsZero() {
		var signer xssh.Signer
		var err error
		if cred.Passphrase.IsZero() {
			signer, err = xssh.ParsePrivateKey([]byte(cred.PrivateKey.Reveal()))
		} else {
			signer, err = xssh.ParsePrivateKeyWithPassphrase([]byte(cred.PrivateKey.Reveal()), []byte(cred.Passphrase.Reveal()))
		}
		if err != nil {
			var missing *xssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, errs.New(errs.InvalidArgument, op, "the private key is encrypted and no passphrase was given")
			}
			return nil, errs.New(errs.InvalidArgument, op, "cannot use the private key (malformed, or a wrong passphrase)")
		}
		methods = append(methods, xssh.PublicKeys(signer))
	}
	if !cred.Password.IsZero() {
		pw := cred.Password.Reveal()
		methods = append(methods, xssh.Password(pw), xssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = pw
			}
			return answers, nil
		}))
	}
	return methods, nil
}

func (e *Driver) clientConfig(hostErr *error) *xssh.ClientConfig {
	cred := e.cfg.Credentials
	policy := e.cfg.HostKeys
	cc := &xssh.ClientConfig{
		User: cred.Username,
		Auth: e.auth,
		HostKeyCallback: func(host string, remote net.Addr, key xssh.PublicKey) error {
			err := policy.callback(host, remote, key)
			if err != nil {
				*hostErr = err
			}
			return err
		},
		Timeout: e.opts.DialTimeout,
	}
	if policy.algos != nil {
		cc.HostKeyAlgorithms = policy.algos(e.addr)
	}
	return cc
}

func (e *Driver) dial(ctx context.Context) (*xssh.Client, error) {
	const op = "ssh.Dial"
	var hostErr error
	cc := e.clientConfig(&hostErr)
	if err := errs.FromContext(ctx, op); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(e.opts.DialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		if cerr := errs.FromContext(ctx, op); cerr != nil {
			return nil, cerr
		}
		return nil, errs.Wrap(errs.Unavailable, op, err)
	}
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	conn, chans, reqs, err := xssh.NewClientConn(nc, e.addr, cc)
	stopped := stop()
	if err != nil {
		_ = nc.Close()
		switch {
		case hostErr != nil:
			return nil, errs.WrapOp(op, hostErr)
		case !stopped || ctx.Err() != nil:
			return nil, errs.FromContext(ctx, op)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, errs.Errorf(errs.Unauthenticated, op, "%s refused the credentials of %s", limit.Quote(e.addr), limit.Quote(e.cfg.Credentials.Username))
		}
		return nil, errs.Wrap(errs.Unavailable, op, err)
	}
	_ = nc.SetDeadline(time.Time{})
	e.log.Debug("ssh connected", "addr", e.addr, "user", e.cfg.Credentials.Username, "hostkeys", e.cfg.HostKeys.String())
	return xssh.NewClient(conn, chans, reqs), nil
}

func (e *Driver) setClient(c *xssh.Client) {
	gone := make(chan struct{})
	e.mu.Lock()
	e.client, e.gone, e.dead = c, gone, false
	e.mu.Unlock()
	go func() {
		_ = c.Wait()
		close(gone)
		e.mu.Lock()
		if e.client == c {
			e.dead = true
		}
		e.mu.Unlock()
	}()
}

// goneOf returns a channel closed when c's connection has ended (already
// closed if c is no longer the executor's client).
func (e *Driver) goneOf(c *xssh.Client) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client == c {
		return e.gone
	}
	closed := make(chan struct{})
	close(closed)
	return closed
}

// markDead records that c's connection is gone.
func (e *Driver) markDead(c *xssh.Client) {
	e.mu.Lock()
	if e.client == c {
		e.dead = true
	}
	e.mu.Unlock()
}

// connection returns the live client, dialing again if the last one died.
func (e *Driver) connection(ctx context.Context) (*xssh.Client, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, guest.ErrClosed
	}
	c, dead := e.client, e.dead
	e.mu.Unlock()
	if !dead {
		return c, nil
	}
	e.log.Debug("ssh reconnecting", "addr", e.addr)
	nc, err := e.dial(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = nc.Close()
		return nil, guest.ErrClosed
	}
	if !e.dead { // someone else reconnected first
		c = e.client
		e.mu.Unlock()
		_ = nc.Close()
		return c, nil
	}
	e.mu.Unlock()
	_ = c.Close()
	e.setClient(nc)
	return nc, nil
}

func (e *Driver) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// acquire takes a session slot.
func (e *Driver) acquire(ctx context.Context) (func(), error) {
	select {
	case e.sem <- struct{}{}:
		return func() { <-e.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Family returns guest.Linux.
func (e *Driver) Family() guest.OSFamily { return guest.Linux }

// Addr returns the host:port the executor connects to.
func (e *Driver) Addr() string { return e.addr }

// Close closes the connection; commands running on it fail. The
// Executor calls it once.
func (e *Driver) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return guest.ErrClosed
	}
	e.closed = true
	if e.client != nil {
		_ = e.client.Close()
	}
	return nil
}

// capped keeps up to guest.MaxOutput bytes and forwards everything to w.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	w   io.Writer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := guest.MaxOutput - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	if c.w != nil {
		if _, err := c.w.Write(p); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *capped) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

// sudoFilter swallows sudo's own output (lecture, prompts, "Sorry, try
// again") until the marker the wrapped shell prints first, answering each
// prompt through onPrompt; after the marker it passes output on.
type sudoFilter struct {
	mu       sync.Mutex
	marker   string
	prompt   string
	pre      bytes.Buffer
	prompts  int
	passed   bool
	next     io.Writer
	onPrompt func(n int)
	onReady  func()
}

func (f *sudoFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	if f.passed {
		f.mu.Unlock()
		return f.next.Write(p)
	}
	f.pre.Write(p)
	s := f.pre.String()
	if n := strings.Count(s, f.prompt); n > f.prompts {
		f.prompts = n
		f.onPrompt(n)
	}
	i := strings.Index(s, f.marker+"\n")
	if i < 0 {
		f.mu.Unlock()
		return len(p), nil
	}
	f.passed = true
	rest := []byte(s[i+len(f.marker)+1:])
	f.pre.Truncate(i)
	f.mu.Unlock()
	f.onReady()
	if len(rest) > 0 {
		if _, err := f.next.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// sudoMessage is what sudo said before failing, without its prompts.
func (f *sudoFilter) sudoMessage() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := strings.TrimSpace(strings.ReplaceAll(f.pre.String(), f.prompt, ""))
	return msg, f.passed
}

func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run runs cmd through the user's login shell (the line
// guest.ShellCommandLine builds). With cmd.Sudo and a user other than root
// the line runs under "sudo -S": the password, if the credentials have
// one, is written to the command's standard input when sudo prompts for it
// (never on the command line), and the caller's Stdin is only fed once the
// command itself runs. A refused sudo is errs.PermissionDenied.
func (e *Driver) Run(ctx context.Context, cmd guest.Command) (guest.Result, error) {
	release, err := e.acquire(ctx)
	if err != nil {
		return guest.Result{}, err
	}
	defer release()
	client, err := e.connection(ctx)
	if err != nil {
		return guest.Result{}, err
	}
	sess, err := e.newSession(ctx, client)
	var oce *xssh.OpenChannelError
	if err != nil && !e.isClosed() && ctx.Err() == nil && !errors.As(err, &oce) {
		// The connection is gone (nothing ran): dial again, once.
		e.markDead(client)
		if client, err = e.connection(ctx); err != nil {
			return guest.Result{}, err
		}
		sess, err = e.newSession(ctx, client)
	}
	if err != nil {
		if e.isClosed() {
			return guest.Result{}, guest.ErrClosed
		}
		if cerr := ctx.Err(); cerr != nil {
			return guest.Result{}, cerr
		}
		// Nothing ran.
		return guest.Result{}, errs.Wrap(errs.Unavailable, "", err)
	}
	defer sess.Close()
	return e.runSession(ctx, client, sess, cmd)
}

// newSession opens a session, retrying while the server refuses the
// channel for lack of room (OpenSSH frees a session's slot only after the
// channel is fully closed, a moment after the previous command ended).
func (e *Driver) newSession(ctx context.Context, client *xssh.Client) (*xssh.Session, error) {
	delay := 5 * time.Millisecond
	gone := e.goneOf(client)
	for {
		sess, err := openSession(ctx, client, gone)
		var oce *xssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || (oce.Reason != xssh.ConnectionFailed && oce.Reason != xssh.ResourceShortage) {
			return sess, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// errConnectionGone reports a channel open that got no answer because the
// connection ended.
var errConnectionGone = errors.New("ssh: the connection ended while a session was being opened")

// openSession is client.NewSession bounded by ctx and by the end of the
// connection (gone). x/crypto/ssh waits for the answer to a channel open
// without either: an open sent in the moment between the connection's
// reader stopping and the connection being closed is never answered, and
// a server that does not answer holds it forever. The goroutine left
// waiting then stays blocked; a session it may still get is closed.
func openSession(ctx context.Context, client *xssh.Client, gone <-chan struct{}) (*xssh.Session, error) {
	type opened struct {
		sess *xssh.Session
		err  error
	}
	c := make(chan opened, 1)
	go func() {
		sess, err := client.NewSession()
		c <- opened{sess, err}
	}()
	abandon := func() {
		go func() {
			if o := <-c; o.sess != nil {
				_ = o.sess.Close()
			}
		}()
	}
	select {
	case o := <-c:
		return o.sess, o.err
	case <-gone:
		abandon()
		return nil, errConnectionGone
	case <-ctx.Done():
		abandon()
		return nil, ctx.Err()
	}
}

func (e *Driver) runSession(ctx context.Context, client *xssh.Client, sess *xssh.Session, cmd guest.Command) (guest.Result, error) {
	start := time.Now()
	line := guest.ShellCommandLine(cmd)
	stdout := &capped{w: cmd.Stdout}
	stderr := &capped{w: cmd.Stderr}
	sess.Stdout = stdout
	// The login shell first prints its process id (sshd made it a process
	// group leader): cancellation signals that group, for servers that
	// refuse "signal" requests (OpenSSH does for root logins).
	pids := &pidFilter{prefix: pidPrefix, next: stderr}
	sess.Stderr = pids
	stdin, err := sess.StdinPipe()
	if err != nil {
		return guest.Result{}, errs.Wrap(errs.Unavailable, "", err)
	}
	ready := make(chan struct{}) // closed when the caller's stdin may flow
	var filter *sudoFilter
	var writeMu sync.Mutex
	badPassword := make(chan struct{})
	if cmd.Sudo && e.cfg.Credentials.Username != "root" {
		marker, prompt := "MANAGEDVM-SUDO-OK-"+randomToken(), "managedvm-sudo-password-"+randomToken()+":"
		flags := "-n"
		if !e.cfg.Credentials.Password.IsZero() {
			flags = "-S -p " + guest.ShellQuote(prompt)
		}
		// -H: root's HOME. The inner shell prints the marker to stderr, then
		// runs the command line.
		line = "sudo -H " + flags + " -- /bin/sh -c " + guest.ShellQuote("echo "+marker+" >&2; "+line)
		var once sync.Once
		filter = &sudoFilter{marker: marker, prompt: prompt, next: stderr,
			onPrompt: func(n int) {
				if n > 1 { // the password was refused
					once.Do(func() { close(badPassword) })
					return
				}
				writeMu.Lock()
				_, _ = io.WriteString(stdin, e.cfg.Credentials.Password.Reveal()+"\n")
				writeMu.Unlock()
			},
			onReady: func() { close(ready) },
		}
		pids.next = filter
	} else {
		close(ready)
	}
	line = "echo " + pidPrefix + "$$ >&2; " + line
	if err := sess.Start(line); err != nil {
		return guest.Result{}, errs.Wrap(errs.Unavailable, "", err)
	}
	if e.log.Enabled(ctx, slog.LevelDebug) {
		e.log.DebugContext(ctx, "ssh run", "addr", e.addr, "command", cmd.String(), "sudo", cmd.Sudo)
	}
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
		if cmd.Stdin != nil {
			_, _ = io.Copy(stdin, cmd.Stdin)
		}
		_ = stdin.Close()
	}()
	waitc := make(chan error, 1)
	go func() { waitc <- sess.Wait() }()
	var werr error
	select {
	case werr = <-waitc:
	case <-ctx.Done():
		e.stop(client, sess, pids, waitc)
		res := guest.Result{Stdout: stdout.bytes(), Stderr: stderr.bytes(), Duration: time.Since(start)}
		return res, ctx.Err()
	case <-badPassword:
		e.stop(client, sess, pids, waitc)
		return guest.Result{Duration: time.Since(start)}, errs.Errorf(errs.PermissionDenied, "", "sudo refused the password of %s", limit.Quote(e.cfg.Credentials.Username))
	}
	res := guest.Result{Stdout: stdout.bytes(), Stderr: stderr.bytes(), Duration: time.Since(start)}
	if filter != nil {
		if msg, passed := filter.sudoMessage(); !passed {
			if msg == "" {
				msg = "no output"
			}
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i]
			}
			return res, errs.Errorf(errs.PermissionDenied, "", "sudo failed for %s: %s", limit.Quote(e.cfg.Credentials.Username), limit.Quote(msg))
		}
	}
	var ee *xssh.ExitError
	var missing *xssh.ExitMissingError
	switch {
	case werr == nil:
		return res, nil
	case errors.As(werr, &ee) && ee.Signal() != "":
		return res, &SignalError{Command: cmd.String(), Signal: ee.Signal(), Stdout: res.Stdout, Stderr: res.Stderr}
	case errors.As(werr, &ee):
		res.ExitCode = ee.ExitStatus()
		return res, &guest.ExitError{Command: cmd.String(), Code: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr}
	case e.isClosed():
		return res, guest.ErrClosed
	case errors.As(werr, &missing), errors.Is(werr, io.EOF):
		return res, guest.SessionLost("", errors.New("the connection closed before the command reported its exit status"))
	}
	return res, guest.SessionLost("", werr)
}

const pidPrefix = "MANAGEDVM-PGID:"

// pidFilter takes the line with the process group id the command line
// prints first on stderr, and passes everything else on (a login shell's
// start-up files may print before it).
type pidFilter struct {
	mu     sync.Mutex
	prefix string
	head   []byte
	done   bool
	pgid   int
	next   io.Writer
}

func (f *pidFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	if f.done {
		f.mu.Unlock()
		return f.next.Write(p)
	}
	f.head = append(f.head, p...)
	var out []byte
	for !f.done {
		i := bytes.IndexByte(f.head, '\n')
		if i < 0 {
			if len(f.head) > 4096 { // no marker: give up looking
				out = append(out, f.head...)
				f.head, f.done = nil, true
			}
			break
		}
		line := f.head[:i]
		if rest, ok := bytes.CutPrefix(line, []byte(f.prefix)); ok {
			f.pgid, _ = strconv.Atoi(string(rest))
			f.done = true
		} else {
			out = append(out, f.head[:i+1]...)
		}
		f.head = f.head[i+1:]
	}
	if f.done {
		out = append(out, f.head...)
		f.head = nil
	}
	f.mu.Unlock()
	if len(out) > 0 {
		if _, err := f.next.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (f *pidFilter) id() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pgid
}

// stop ends a running command: SIGTERM, then SIGKILL after the grace
// period, then the session is closed. Each signal goes both as an SSH
// "signal" request and as a kill of the command's process group from a
// second session.
func (e *Driver) stop(client *xssh.Client, sess *xssh.Session, pids *pidFilter, waitc <-chan error) {
	signal := func(sig xssh.Signal) {
		_ = sess.Signal(sig)
		if pgid := pids.id(); pgid > 1 {
			ctx, cancel := context.WithTimeout(context.Background(), e.opts.KillGrace)
			defer cancel()
			if ks, err := e.newSession(ctx, client); err == nil {
				_ = ks.Run("kill -" + string(sig) + " -- -" + strconv.Itoa(pgid) + " 2>/dev/null")
				_ = ks.Close()
			}
		}
	}
	signal(xssh.SIGTERM)
	t := time.NewTimer(e.opts.KillGrace)
	defer t.Stop()
	select {
	case <-waitc:
		return
	case <-t.C:
	}
	signal(xssh.SIGKILL)
	t.Reset(e.opts.KillGrace / 2)
	select {
	case <-waitc:
	case <-t.C:
	}
	_ = sess.Close()
}
