package winrm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/go-ntlmssp"
	mzwinrm "github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/certerr"
	"github.com/managedvm/managedvm/internal/limit"
)

// Default ports of WinRM.
const (
	PortHTTPS = 5986
	PortHTTP  = 5985
)

// MaxCommandLine is the longest command line a WinRM shell runs: WinRM
// starts commands through cmd.exe, whose limit is 8191 characters. A
// PowerShell script is sent base64-encoded as UTF-16, so a script may be
// about 3,000 characters long.
const MaxCommandLine = 8191

// Options configure an Driver. The zero value (or nil) means HTTPS on
// port 5986, NTLM, and certificate verification against the system's
// roots.
type Options struct {
	// Port is the TCP port; zero means 5986 (HTTPS) or 5985 (HTTP).
	Port int
	// HTTP selects plain HTTP. With NTLM every message is then sealed
	// (MS-WSMV 2.2.9.1.1 message encryption: RC4 under keys from the
	// NTLMv2 handshake, each message signed with HMAC-MD5), which is what
	// a guest with Windows' default AllowUnencrypted=false requires. The
	// guest is not authenticated by a certificate: prefer HTTPS.
	HTTP bool
	// Basic uses HTTP Basic authentication instead of NTLM (local
	// accounts only, and WinRM's Auth/Basic must be enabled). Over HTTP it
	// needs InsecureUnencryptedBasic.
	Basic bool
	// InsecureUnencryptedBasic allows Basic authentication over plain
	// HTTP, which cannot be sealed: the password, every command and its
	// output cross the network readable and alterable by anyone on the
	// path, and the guest must have AllowUnencrypted=true. New refuses
	// Basic over HTTP without it, and it without both HTTP and Basic.
	InsecureUnencryptedBasic bool
	// CACertPEM holds the certificates that may sign the guest's
	// certificate; nil means the system's roots.
	CACertPEM []byte
	// PinnedCertSHA256 pins the guest's certificate by the SHA-256 of its
	// DER encoding; when set, it replaces CA verification.
	PinnedCertSHA256 []byte
	// TLSServerName is the name expected in the certificate; empty means
	// the host passed to New.
	TLSServerName string
	// InsecureSkipVerify accepts any certificate. For tests only.
	InsecureSkipVerify bool
	// OperationTimeout is how long the guest holds a Receive open when the
	// command prints nothing; zero means 20 s.
	OperationTimeout time.Duration
	// EnvelopeSize is the WS-Management MaxEnvelopeSize in bytes; zero
	// means 153600 (the WinRM default of 150 KiB). Standard input and
	// uploads are sent in chunks that fit.
	EnvelopeSize int
	// MaxIdleShells is how many shells are kept open for reuse between
	// commands; zero means 2, a negative value opens a new shell per
	// command.
	MaxIdleShells int
	// DialContext, if set, opens TCP connections (a proxy, a tunnel).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives the driver's debug records (program names and
	// durations, never arguments, scripts or secrets); nil discards them.
	Logger *slog.Logger
	// Executor holds the options of the *guest.Executor New returns: the
	// default command timeout (guest.Options.Timeout) and telemetry. nil
	// means none; when its Logger is nil, Logger is used.
	Executor *guest.Options
}

// Driver runs commands and PowerShell scripts in a Windows guest over
// WinRM. It is safe for concurrent use; each concurrent command has a
// shell of its own.
type Driver struct {
	url      string
	user     string
	password string
	params   *mzwinrm.Parameters
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	tls      *tls.Config
	opts     Options
	log      *slog.Logger
	maxSend  int
	sealed   bool // NTLM over plain HTTP: every message sealed

	mu     sync.Mutex
	idle   []string
	lanes  []*lane
	closed bool
}

// lane is an HTTP client with at most one connection (see Driver.lane).
type lane struct {
	hc *http.Client
	// seal is the NTLM session of the lane's connection when messages are
	// sealed (plain HTTP with NTLM); nil until the lane authenticates.
	seal *sealer
}

func (l *lane) close() {
	l.seal = nil
	l.hc.CloseIdleConnections()
}

// maxIdleLanes bounds the authenticated connections kept between requests.
const maxIdleLanes = 16

// lane returns an HTTP client with at most one connection. NTLM
// authenticates a connection, not a request: its three legs must travel on
// one connection, which a shared connection pool cannot promise while
// other requests run. A lane is used by one request at a time, so its
// handshake stays on its connection, and the authenticated connection
// serves the lane's next requests without a new handshake.
//
// Over plain HTTP with NTLM the lane also holds its connection's NTLM
// session, which seals its messages (see sealedPost).
func (e *Driver) lane() *lane {
	e.mu.Lock()
	if n := len(e.lanes); n > 0 {
		c := e.lanes[n-1]
		e.lanes = e.lanes[:n-1]
		e.mu.Unlock()
		return c
	}
	e.mu.Unlock()
	return e.newLane()
}

func (e *Driver) newLane() *lane {
	tr := &http.Transport{
		DialContext:         e.dial,
		TLSClientConfig:     e.tls,
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 30 * time.Second,
		// A Receive is held up to OperationTimeout: a guest silent for
		// much longer is gone.
		ResponseHeaderTimeout: e.opts.OperationTimeout + 60*time.Second,
	}
	var rt http.RoundTripper = tr
	if !e.opts.Basic && !e.sealed {
		// HTTPS: go-ntlmssp runs the handshake (no sealing needed).
		rt = ntlmssp.Negotiator{RoundTripper: tr}
	}
	return &lane{hc: &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (e *Driver) putLane(l *lane) {
	e.mu.Lock()
	if !e.closed && len(e.lanes) < maxIdleLanes {
		e.lanes = append(e.lanes, l)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	l.close()
}

var _ guest.Driver = (*Driver)(nil)

const opNew = "winrm.New"

// New returns an executor for the guest at host (a DNS name or an IP
// address, without a port). It does not connect: the first command does.
// A malformed host, credentials or options are errs.InvalidArgument (see
// the package documentation for the limits).
func New(host string, creds guest.Credentials, opts *Options) (*guest.Executor, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := validate(host, creds, &o); err != nil {
		return nil, err
	}
	if o.Port == 0 {
		o.Port = PortHTTPS
		if o.HTTP {
			o.Port = PortHTTP
		}
	}
	if o.OperationTimeout == 0 {
		o.OperationTimeout = 20 * time.Second
	}
	if o.EnvelopeSize == 0 {
		o.EnvelopeSize = 153600
	}
	if o.MaxIdleShells == 0 {
		o.MaxIdleShells = 2
	}
	scheme := "https"
	if o.HTTP {
		scheme = "http"
	}
	dial := o.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	var tc *tls.Config
	if !o.HTTP {
		var err error
		if tc, err = tlsConfig(host, o); err != nil {
			return nil, err
		}
	}
	secs := int(o.OperationTimeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	// Parameters are built per executor: winrm.DefaultParameters is a
	// shared pointer and is never touched.
	params := mzwinrm.NewParameters("PT"+strconv.Itoa(secs)+"S", "en-US", o.EnvelopeSize)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var eo guest.Options
	if o.Executor != nil {
		eo = *o.Executor
	}
	if eo.Logger == nil {
		eo.Logger = o.Logger
	}
	return guest.New(&Driver{
		url:      scheme + "://" + net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(o.Port)) + "/wsman",
		user:     creds.Username,
		password: creds.Password.Reveal(),
		params:   params,
		dial:     dial,
		tls:      tc,
		opts:     o,
		log:      log,
		maxSend:  (o.EnvelopeSize - 4096) / 4 * 3,
		sealed:   o.HTTP && !o.Basic,
	}, &eo), nil
}

func tlsConfig(host string, o Options) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.TLSServerName}
	if tc.ServerName == "" {
		tc.ServerName = strings.Trim(host, "[]")
	}
	switch {
	case o.PinnedCertSHA256 != nil:
		pin := append([]byte(nil), o.PinnedCertSHA256...)
		tc.InsecureSkipVerify = true // replaced by the pin check below
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &pinError{"the server sent no certificate"}
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return &pinError{"the server certificate does not match the pinned SHA-256 fingerprint"}
			}
			return nil
		}
	case o.InsecureSkipVerify:
		tc.InsecureSkipVerify = true
	case o.CACertPEM != nil:
		pool := x509.NewCertPool()
		certs, err := parseCACerts(o.CACertPEM)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// pinError is a certificate refused by PinnedCertSHA256.
type pinError struct{ msg string }

func (e *pinError) Error() string { return e.msg }

// Family returns guest.Windows.
func (e *Driver) Family() guest.OSFamily { return guest.Windows }

// Close deletes the idle shells. Calls after Close return guest.ErrClosed.
func (e *Driver) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	idle := e.idle
	e.idle = nil
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range idle {
		e.deleteShell(ctx, id)
	}
	e.mu.Lock()
	lanes := e.lanes
	e.lanes = nil
	e.mu.Unlock()
	for _, l := range lanes {
		l.close()
	}
	return nil
}

func (e *Driver) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// ---- transport ----

// fault is a WS-Management SOAP fault.
type fault struct {
	Subcode string
	Reason  string
}

func (f *fault) Error() string { return "WS-Management fault " + f.Subcode + ": " + f.Reason }

func (f *fault) timedOut() bool { return strings.HasSuffix(f.Subcode, "TimedOut") }

type faultEnvelope struct {
	Body struct {
		Fault *struct {
			Subcode string `xml:"Code>Subcode>Value"`
			Reason  string `xml:"Reason>Text"`
		} `xml:"Fault"`
	} `xml:"Body"`
}

// post sends one SOAP message and returns the response body.
func (e *Driver) post(ctx context.Context, op string, msg *soap.SoapMessage) ([]byte, error) {
	body := msg.String()
	msg.Free()
	var (
		status int
		soapCT bool
		data   []byte
	)
	// A 401 means the guest did not process the request, so it is safe to
	// send again: once, on a new lane, in case the handshake broke
	// (go-ntlmssp reports a failed handshake leg as the first 401).
	for attempt := 0; ; attempt++ {
		var l *lane
		if attempt == 0 {
			l = e.lane()
		} else {
			l = e.newLane()
		}
		var err error
		if e.sealed {
			status, data, err = e.sealedPost(ctx, op, l, body)
			soapCT = true
		} else {
			status, soapCT, data, err = e.plainPost(ctx, op, l, body)
		}
		if err != nil {
			l.close()
			return nil, err
		}
		if status == http.StatusUnauthorized && attempt == 0 && ctx.Err() == nil {
			l.close()
			continue
		}
		e.putLane(l)
		break
	}
	switch {
	case status == http.StatusOK:
		return data, nil
	case status == http.StatusUnauthorized:
		scheme := "NTLM"
		if e.opts.Basic {
			scheme = "Basic"
		}
		return nil, errs.Errorf(errs.Unauthenticated, op, "the guest refused %s authentication for user %s (HTTP 401): wrong user name or password, an account not allowed to use WinRM, or %s disabled in the WinRM service", scheme, quote(e.user), scheme)
	case soapCT:
		var fe faultEnvelope
		if xml.Unmarshal(data, &fe) == nil && fe.Body.Fault != nil {
			f := &fault{Subcode: strings.TrimSpace(fe.Body.Fault.Subcode), Reason: strings.TrimSpace(fe.Body.Fault.Reason)}
			code := errs.FailedPrecondition
			if strings.Contains(f.Subcode, "AccessDenied") {
				code = errs.PermissionDenied
			}
			return nil, &errs.Error{Code: code, Op: op, Err: f}
		}
	}
	return nil, errs.Errorf(errs.Unavailable, op, "unexpected HTTP status %d from the WinRM service", status)
}

// plainPost sends body unsealed (HTTPS, or Basic over HTTP); NTLM over
// HTTPS is go-ntlmssp's handshake on the lane's transport.
func (e *Driver) plainPost(ctx context.Context, op string, l *lane, body string) (status int, soapCT bool, data []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(body))
	if err != nil {
		return 0, false, nil, errs.Wrap(errs.Internal, op, err)
	}
	req.Header.Set("Content-Type", soapContentType)
	req.SetBasicAuth(e.user, e.password)
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0, false, nil, e.transportError(ctx, op, err)
	}
	data, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	_ = resp.Body.Close()
	if err != nil {
		return 0, false, nil, e.transportError(ctx, op, err)
	}
	return resp.StatusCode, strings.Contains(resp.Header.Get("Content-Type"), "soap+xml"), data, nil
}

// transportError maps a failed HTTP exchange to an error code.
func (e *Driver) transportError(ctx context.Context, op string, err error) error {
	if cerr := errs.FromContext(ctx, op); cerr != nil {
		return cerr
	}
	if refusedCertificate(err) {
		// Retrying cannot help: the same certificate comes back. This is
		// the code of SSH's host-key mismatch.
		return errs.Errorf(errs.PermissionDenied, op, "the guest's TLS certificate was refused: %w", err)
	}
	return errs.Wrap(errs.Unavailable, op, err)
}

// refusedCertificate reports whether err is a failed verification of the
// server's certificate (chain, name, validity, or pin).
func refusedCertificate(err error) bool {
	var perr *pinError
	return certerr.Refused(err) || errors.As(err, &perr)
}

// ---- shells ----

func (e *Driver) createShell(ctx context.Context) (string, error) {
	resp, err := e.post(ctx, "winrm.CreateShell", mzwinrm.NewOpenShellRequest(e.url, e.params))
	if err != nil {
		return "", err
	}
	id, err := mzwinrm.ParseOpenShellResponse(string(resp))
	if err != nil || id == "" {
		return "", errs.Errorf(errs.Unavailable, "winrm.CreateShell", "the WinRM service answered without a shell id")
	}
	return id, nil
}

func (e *Driver) deleteShell(ctx context.Context, id string) {
	if _, err := e.post(ctx, "winrm.DeleteShell", mzwinrm.NewDeleteShellRequest(e.url, id, e.params)); err != nil {
		e.log.Debug("winrm: deleting a shell failed", "err", err)
	}
}

// takeShell returns an idle shell, or creates one.
func (e *Driver) takeShell(ctx context.Context) (id string, reused bool, err error) {
	e.mu.Lock()
	if n := len(e.idle); n > 0 {
		id = e.idle[n-1]
		e.idle = e.idle[:n-1]
		e.mu.Unlock()
		return id, true, nil
	}
	e.mu.Unlock()
	id, err = e.createShell(ctx)
	return id, false, err
}

// putShell keeps a shell for reuse, or deletes it.
func (e *Driver) putShell(id string) {
	e.mu.Lock()
	if !e.closed && len(e.idle) < e.opts.MaxIdleShells {
		e.idle = append(e.idle, id)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.deleteShell(ctx, id)
}

// cleanupContext outlives the caller's cancellation, bounded.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// ---- commands ----

// prelude keeps PowerShell's progress records (CLIXML on stderr) away.
const prelude = "$ProgressPreference = 'SilentlyContinue'\n"

// CommandLine returns the command line Run sends for cmd: powershell.exe
// with the -EncodedCommand of guest.PowerShellScript(cmd), so that neither
// Args nor Script ever needs quoting by the caller. It fails with
// InvalidArgument when cmd is invalid or the line exceeds MaxCommandLine.
func CommandLine(cmd guest.Command) (string, error) {
	if err := cmd.Validate(); err != nil {
		return "", err
	}
	line := guest.PowerShellCommandLine(prelude + guest.PowerShellScript(cmd))
	if len(line) > MaxCommandLine {
		return "", errs.Errorf(errs.InvalidArgument, "winrm.CommandLine", "the encoded script is %d characters, more than the %d a WinRM command line holds: upload long scripts as files and run the file", len(line), MaxCommandLine)
	}
	return line, nil
}

// Run runs cmd in a PowerShell in the guest: Args with the call operator
// (each argument a literal, so cmdlets receive them as positional values,
// never as parameter names), Script as is. See guest.Executor.
func (e *Driver) Run(ctx context.Context, cmd guest.Command) (guest.Result, error) {
	if cmd.Sudo {
		return guest.Result{}, errs.New(errs.Unimplemented, "", "Sudo is not available over WinRM: connect as an administrator")
	}
	line, err := CommandLine(cmd)
	if err != nil {
		return guest.Result{}, err
	}
	return e.run(ctx, "", cmd.String(), line, cmd)
}

// RunCmd runs a cmd.exe command line as is: the caller quotes it for
// cmd.exe. Stdin, Stdout, Stderr and Timeout of opts apply; its Args,
// Script, Env and Dir must be empty.
func (e *Driver) RunCmd(ctx context.Context, commandLine string, opts guest.Command) (guest.Result, error) {
	const op = "winrm.RunCmd"
	switch {
	case commandLine == "" || strings.ContainsAny(commandLine, "\x00\r\n"):
		return guest.Result{}, errs.New(errs.InvalidArgument, op, "empty command line, or one with NUL or line breaks")
	case len(commandLine) > MaxCommandLine:
		return guest.Result{}, errs.Errorf(errs.InvalidArgument, op, "the command line is longer than %d characters", MaxCommandLine)
	case len(opts.Args) > 0 || opts.Script != "" || len(opts.Env) > 0 || opts.Dir != "" || opts.Sudo:
		return guest.Result{}, errs.New(errs.InvalidArgument, op, "RunCmd takes only Stdin, Stdout, Stderr and Timeout from its Command")
	case opts.Timeout < 0:
		return guest.Result{}, errs.New(errs.InvalidArgument, op, "negative timeout")
	}
	// RunCmd is reached through Executor.As, past the Executor's checks.
	if e.isClosed() {
		return guest.Result{}, errs.WrapOp(op, guest.ErrClosed)
	}
	if err := errs.FromContext(ctx, op); err != nil {
		return guest.Result{}, err
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	name := commandLine
	if i := strings.IndexByte(name, ' '); i >= 0 {
		name = name[:i]
	}
	return e.run(ctx, op, "cmd "+limit.Quote(name), commandLine, opts)
}

type limitedBuffer struct {
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) {
	if room := guest.MaxOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
}

func (e *Driver) run(ctx context.Context, op, desc, line string, cmd guest.Command) (guest.Result, error) {
	start := time.Now()
	shell, commandID, err := e.start(ctx, op, line)
	if err != nil {
		return guest.Result{}, err
	}
	e.log.Debug("winrm: command started", "command", desc)

	// Standard input flows while output is received. A failing Stdin
	// stops the command.
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	in := newStdinFeed(ctx)
	defer in.abort()
	go e.feed(runCtx, in, shell, commandID, cmd.Stdin, stop)

	var stdout, stderr limitedBuffer
	exit, err := e.receive(runCtx, op, shell, commandID, func(out, errb []byte) {
		stdout.Write(out)
		stderr.Write(errb)
		if cmd.Stdout != nil && len(out) > 0 {
			_, _ = cmd.Stdout.Write(out)
		}
		if cmd.Stderr != nil && len(errb) > 0 {
			_, _ = cmd.Stderr.Write(errb)
		}
	})
	in.finish(err == nil)
	res := guest.Result{ExitCode: exit, Stdout: stdout.buf.Bytes(), Stderr: decodeCLIXML(stderr.buf.Bytes()), Duration: time.Since(start)}
	if err != nil {
		// The command may still run: stop it and drop its shell.
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		e.signal(cctx, shell, commandID)
		e.deleteShell(cctx, shell)
		cause := context.Cause(runCtx)
		switch {
		case ctx.Err() != nil:
			err = errs.FromContext(ctx, op)
		case cause != nil && !errs.Is(cause, errs.Canceled):
			err = errs.Wrap(errs.CodeOf(cause), op, cause)
		}
		e.log.Debug("winrm: command failed", "command", desc, "err", err)
		res.ExitCode = 0
		return res, err
	}
	e.putShell(shell)
	e.log.Debug("winrm: command done", "command", desc, "exit", exit, "duration", res.Duration)
	if exit != 0 {
		return res, &guest.ExitError{Command: desc, Code: exit, Stdout: res.Stdout, Stderr: res.Stderr}
	}
	return res, nil
}

// start runs line in a shell. A reused shell that the guest no longer
// knows (its idle timeout passed) is replaced once: a fault to Command
// means the command did not start.
func (e *Driver) start(ctx context.Context, op, line string) (shell, commandID string, err error) {
	for attempt := 0; ; attempt++ {
		shell, reused, err := e.takeShell(ctx)
		if err != nil {
			return "", "", err
		}
		resp, err := e.post(ctx, op, e.commandRequest(shell, line))
		if err == nil {
			id, perr := mzwinrm.ParseExecuteCommandResponse(string(resp))
			if perr == nil && id != "" {
				return shell, id, nil
			}
			err = errs.New(errs.Unavailable, op, "the WinRM service answered Command without a command id")
		}
		var f *fault
		cctx, cancel := cleanupContext(ctx)
		e.deleteShell(cctx, shell)
		cancel()
		if reused && attempt == 0 && errors.As(err, &f) {
			continue
		}
		return "", "", err
	}
}

// commandRequest is masterzen/winrm's NewExecuteCommandRequest with
// standard input as a pipe (WINRS_CONSOLEMODE_STDIN=FALSE), as Ansible
// sends commands whose input it streams: a console would edit lines and
// code-page-convert the bytes. "]]>" in the line is split across CDATA
// sections.
func (e *Driver) commandRequest(shell, line string) *soap.SoapMessage {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	h := hex.EncodeToString(id[:])
	msg := soap.NewMessage()
	msg.Header().
		To(e.url).
		ReplyTo("http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous").
		MaxEnvelopeSize(e.params.EnvelopeSize).
		Id("uuid:" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]).
		Locale(e.params.Locale).
		Timeout(e.params.Timeout).
		Action("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command").
		ResourceURI("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd").
		ShellId(shell).
		AddOption(soap.NewHeaderOption("WINRS_CONSOLEMODE_STDIN", "FALSE")).
		AddOption(soap.NewHeaderOption("WINRS_SKIP_CMD_SHELL", "FALSE")).
		Build()
	body := msg.CreateBodyElement("CommandLine", soap.DOM_NS_WIN_SHELL)
	cmd := msg.CreateElement(body, "Command", soap.DOM_NS_WIN_SHELL)
	cmd.SetContent("<![CDATA[" + strings.ReplaceAll(line, "]]>", "]]]]><![CDATA[>") + "]]>")
	return msg
}

func (e *Driver) signal(ctx context.Context, shell, commandID string) {
	if _, err := e.post(ctx, "winrm.Signal", mzwinrm.NewSignalRequest(e.url, shell, commandID, e.params)); err != nil {
		e.log.Debug("winrm: signal failed", "err", err)
	}
}

// sendGrace is how long Run waits, once a command's output is complete,
// for a Send still on the wire before it cancels it.
const sendGrace = 5 * time.Second

// stdinFeed lets Run end a command's standard input: after finish, no Send
// is in flight and none starts.
type stdinFeed struct {
	ctx   context.Context // of the Sends
	abort context.CancelFunc
	mu    sync.Mutex // held while a Send is in flight
	ended bool
}

func newStdinFeed(ctx context.Context) *stdinFeed {
	f := &stdinFeed{}
	f.ctx, f.abort = context.WithCancel(ctx)
	return f
}

// send posts one Send unless the feed has ended.
func (f *stdinFeed) send(post func(context.Context) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return context.Canceled
	}
	return post(f.ctx)
}

// finish ends the feed. A Send in flight is let finish for up to sendGrace
// when the command completed (wait), and is cancelled at once otherwise.
func (f *stdinFeed) finish(wait bool) {
	if wait {
		defer time.AfterFunc(sendGrace, f.abort).Stop()
	} else {
		f.abort()
	}
	f.mu.Lock()
	f.ended = true
	f.mu.Unlock()
}

// feed sends stdin in chunks that fit the envelope, then its end, through
// in. A nil stdin is an empty one. It stops reading once ctx ends.
func (e *Driver) feed(ctx context.Context, in *stdinFeed, shell, commandID string, stdin io.Reader, stop context.CancelCauseFunc) {
	send := func(data []byte, eof bool) error {
		return in.send(func(ctx context.Context) error {
			_, err := e.post(ctx, "winrm.Send", mzwinrm.NewSendInputRequest(e.url, shell, commandID, data, eof, e.params))
			return err
		})
	}
	if stdin == nil {
		_ = send(nil, true) // the command may have ended already
		return
	}
	// A reader that knows what it has left (bytes.Reader, strings.Reader,
	// bytes.Buffer) lets the last chunk carry the end of input, saving a
	// Send; any other reader is never read ahead, so a stdin fed in
	// answer to the command's output cannot stall.
	sized, _ := stdin.(interface{ Len() int })
	buf := make([]byte, e.maxSend)
	for {
		n, rerr := stdin.Read(buf)
		if ctx.Err() != nil {
			return
		}
		last := rerr == io.EOF || (rerr == nil && sized != nil && sized.Len() == 0)
		if n > 0 {
			if err := send(buf[:n], last); err != nil {
				return // the command ended, or the receive loop reports the failure
			}
			if last {
				return
			}
		}
		switch {
		case last:
			_ = send(nil, true)
			return
		case rerr != nil:
			stop(fmt.Errorf("reading the command's standard input: %w", rerr))
			return
		}
	}
}

// receive polls output until the command is done.
func (e *Driver) receive(ctx context.Context, op, shell, commandID string, deliver func(out, errb []byte)) (int, error) {
	for {
		resp, err := e.post(ctx, op, mzwinrm.NewGetOutputRequest(e.url, shell, commandID, "stdout stderr", e.params))
		var f *fault
		switch {
		case errors.As(err, &f) && f.timedOut():
			continue // no output within OperationTimeout
		case err != nil && ctx.Err() != nil:
			return 0, err
		case err != nil && errs.CodeOf(err) == errs.Unavailable:
			return 0, guest.SessionLost(op, err)
		case err != nil:
			return 0, err
		}
		r, err := parseReceive(resp, commandID)
		if err != nil {
			return 0, guest.SessionLost(op, err)
		}
		deliver(r.stdout, r.stderr)
		if r.done {
			return r.exitCode, nil
		}
	}
}

// receiveResult is one ReceiveResponse.
type receiveResult struct {
	stdout, stderr []byte
	done           bool
	exitCode       int
}

type receiveEnvelope struct {
	Body struct {
		Response *struct {
			Streams []struct {
				Name      string `xml:"Name,attr"`
				CommandID string `xml:"CommandId,attr"`
				Value     string `xml:",chardata"`
			} `xml:"Stream"`
			State *struct {
				CommandID string `xml:"CommandId,attr"`
				State     string `xml:"State,attr"`
				ExitCode  string `xml:"ExitCode"`
			} `xml:"CommandState"`
		} `xml:"ReceiveResponse"`
	} `xml:"Body"`
}

const stateDone = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"

// parseReceive reads a ReceiveResponse for commandID: its base64 streams,
// and whether the command is done with which exit code.
func parseReceive(body []byte, commandID string) (receiveResult, error) {
	var env receiveEnvelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return receiveResult{}, fmt.Errorf("parsing a ReceiveResponse: %w", err)
	}
	rr := env.Body.Response
	if rr == nil {
		return receiveResult{}, errors.New("the response holds no ReceiveResponse")
	}
	var r receiveResult
	for _, s := range rr.Streams {
		if s.CommandID != "" && commandID != "" && s.CommandID != commandID {
			return receiveResult{}, errors.New("a ReceiveResponse stream names another command")
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Value))
		if err != nil {
			return receiveResult{}, fmt.Errorf("a ReceiveResponse stream is not base64: %w", err)
		}
		switch s.Name {
		case "stdout":
			r.stdout = append(r.stdout, data...)
		case "stderr":
			r.stderr = append(r.stderr, data...)
		default:
			return receiveResult{}, fmt.Errorf("a ReceiveResponse has an unknown stream %s", limit.Quote(s.Name))
		}
	}
	if st := rr.State; st != nil && strings.TrimSpace(st.State) == stateDone {
		r.done = true
		code := strings.TrimSpace(st.ExitCode)
		if code != "" {
			n, err := strconv.ParseInt(code, 10, 64)
			if err != nil {
				return receiveResult{}, fmt.Errorf("a ReceiveResponse has exit code %s", limit.Quote(code))
			}
			// Windows exit codes are 32-bit, often shown unsigned
			// (0xC000013A = 3221225786).
			r.exitCode = int(int32(uint32(n)))
			if n < -1<<31 || n > 1<<32-1 {
				return receiveResult{}, fmt.Errorf("a ReceiveResponse has exit code %s", limit.Quote(code))
			}
		}
	}
	return r, nil
}

// ---- upload ----

// chunkLine is how many bytes one base64 line of an upload carries.
const chunkLine = 48 << 10

// Upload writes r to path in the guest: the content is streamed as base64
// lines through the standard input of one PowerShell command that appends
// them to a temporary file beside path, whose SHA-256 is then checked in
// the guest before it replaces path (Move-Item -Force). On failure or
// cancellation the temporary file is removed. opts.Mode is ignored (files
// get their directory's ACL); opts.Owner is Unimplemented.
func (e *Driver) Upload(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error {
	if opts.Owner != "" {
		return errs.New(errs.Unimplemented, "", "UploadOptions.Owner is not supported on Windows")
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := path + ".mvm-" + hex.EncodeToString(rnd[:]) + ".tmp"

	h := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, chunkLine)
		line := make([]byte, base64.StdEncoding.EncodedLen(chunkLine)+1)
		for {
			n, err := io.ReadFull(r, buf)
			if n > 0 {
				h.Write(buf[:n])
				base64.StdEncoding.Encode(line, buf[:n])
				m := base64.StdEncoding.EncodedLen(n)
				line[m] = '\n'
				if _, werr := pw.Write(line[:m+1]); werr != nil {
					return
				}
			}
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				_ = pw.Close()
				return
			case err != nil:
				pw.CloseWithError(err)
				return
			}
		}
	}()
	defer pr.Close()

	_, err := e.Run(ctx, guest.Command{Script: UploadStreamScript(tmp), Stdin: pr})
	if err == nil {
		_, err = e.Run(ctx, guest.Command{Script: UploadCommitScript(tmp, path, strings.ToUpper(hex.EncodeToString(h.Sum(nil))))})
	}
	if err != nil {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		if _, cerr := e.Run(cctx, guest.Command{Script: UploadCleanupScript(tmp)}); cerr != nil {
			e.log.Debug("winrm: removing an upload's temporary file failed", "err", cerr)
		}
		return err
	}
	return nil
}

// UploadStreamScript is the script that Upload runs to write the base64
// lines of its standard input to tmp, which must not exist yet.
func UploadStreamScript(tmp string) string {
	return "$p = " + guest.PowerShellQuote(tmp) + "\n" +
		"$f = [IO.File]::Open($p, 'CreateNew', 'Write')\n" +
		"try { while ($null -ne ($l = [Console]::In.ReadLine())) { $b = [Convert]::FromBase64String($l); $f.Write($b, 0, $b.Length) } } finally { $f.Close() }\n"
}

// UploadCommitScript checks tmp's SHA-256 (upper-case hex) and moves it
// over dst; on a mismatch it removes tmp and exits 3.
func UploadCommitScript(tmp, dst, sha256Hex string) string {
	return "$t = " + guest.PowerShellQuote(tmp) + "\n" +
		"$d = " + guest.PowerShellQuote(dst) + "\n" +
		"$h = (Get-FileHash -LiteralPath $t -Algorithm SHA256).Hash\n" +
		"if ($h -ne " + guest.PowerShellQuote(sha256Hex) + ") { Remove-Item -LiteralPath $t -Force; [Console]::Error.WriteLine('managedvm: the uploaded file does not match its SHA-256'); exit 3 }\n" +
		"Move-Item -LiteralPath $t -Destination $d -Force\n"
}

// UploadCleanupScript removes an upload's temporary file if it exists.
func UploadCleanupScript(tmp string) string {
	return "Remove-Item -LiteralPath " + guest.PowerShellQuote(tmp) + " -Force -ErrorAction SilentlyContinue\n"
}
