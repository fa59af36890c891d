package winrmserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/managedvm/managedvm/guest"
)

// Request is one command the client asked the server to run.
type Request struct {
	// ShellID and CommandID name the WinRM shell and command.
	ShellID, CommandID string
	// CommandLine is the command line as sent (rsp:Command), Arguments the
	// rsp:Arguments elements.
	CommandLine string
	Arguments   []string
	// PowerShell is true when the command line runs powershell.exe with
	// -EncodedCommand; Script is then the decoded script.
	PowerShell bool
	Script     string
	// ConsoleModeStdin is the WINRS_CONSOLEMODE_STDIN option: true means
	// the command's standard input is a console, false a pipe.
	ConsoleModeStdin bool
	// PID is the fake process id of this command.
	PID int
	// Stdin delivers what the client sends (Send); it returns io.EOF after
	// the client's End, or an error once the command is terminated.
	Stdin io.Reader
	// Stdout and Stderr go back to the client through Receive.
	Stdout, Stderr io.Writer
	// Alive reports whether the fake process pid is still running.
	Alive func(pid int) bool
}

// Handler runs one command and returns its exit code. ctx is canceled when
// the client signals terminate or deletes the shell.
type Handler func(ctx context.Context, r *Request) (exitCode int)

// Options configure a Server.
type Options struct {
	// User, Domain and Password are the one account the server knows.
	// NTLM logins as "user", "DOMAIN\user" and "user@domain" are
	// accepted when the NTLMv2 proof matches Password.
	User, Domain, Password string
	// Handler runs commands; nil uses a new Interpreter's Handler.
	Handler Handler
	// PlainHTTP serves http:// instead of https://. Over plain HTTP the
	// server behaves as Windows does with its default service setting
	// AllowUnencrypted=false: a message must be NTLM-sealed (MS-WSMV
	// 2.2.9.1.1); an unsealed one, or a Basic login, is answered HTTP 401
	// and not processed.
	PlainHTTP bool
	// AllowUnencrypted accepts unsealed messages and Basic logins over
	// plain HTTP, as a guest whose WinRM service has AllowUnencrypted=true
	// does.
	AllowUnencrypted bool
	// AllowBasic accepts HTTP Basic authentication as well as NTLM.
	AllowBasic bool
	// CertNotBefore and CertNotAfter bound the server certificate's
	// validity; zero values mean "valid now" (an hour ago to a day ahead).
	CertNotBefore, CertNotAfter time.Time
	// OperationTimeout is the longest a Receive waits for output before
	// answering with a w:TimedOut fault; zero means 2 s.
	OperationTimeout time.Duration
	// Delay is added before every WS-Management answer, to make round
	// trips cost what they cost across a network.
	Delay time.Duration
	// SendDelay is added before answering each Send (standard input), on
	// top of Delay.
	SendDelay time.Duration
	// MaxEnvelopeSize is the largest request accepted (bytes); zero means
	// 153600, WinRM's default MaxEnvelopeSizekb of 150.
	MaxEnvelopeSize int
}

// Stats count what the server saw.
type Stats struct {
	ShellsCreated, ShellsDeleted, Commands, Signals, Sends, Receives int
	AuthFailures, Handshakes                                         int
	// SealedRequests counts messages unsealed with a valid signature;
	// SealFailures sealed messages refused (bad signature, no session);
	// UnencryptedRefused unsealed messages or Basic logins refused over
	// plain HTTP.
	SealedRequests, SealFailures, UnencryptedRefused int
	OpenShells                                       int
	// InFlight is the number of HTTP requests being handled now.
	InFlight int
}

// Server is an in-process WS-Management (WinRM) endpoint.
type Server struct {
	opts Options
	hs   *httptest.Server
	pki  *testPKI

	mu       sync.Mutex
	shells   map[string]*shell
	procs    map[int]*command
	requests []Request
	stats    Stats
	waiting  int           // Receives waiting for output
	waitChg  chan struct{} // closed when waiting changes
	nextPID  atomic.Int64
}

type shell struct {
	id       string
	commands map[string]*command
}

type connKey struct{}

// connState is the NTLM state of one TCP connection: NTLM authenticates
// connections, not requests.
type connState struct {
	mu      sync.Mutex
	hs      handshake
	pending bool
	authed  bool
	// session seals and unseals this connection's messages once an NTLM
	// handshake negotiated sealing.
	session *ntlmSession
}

func (cs *connState) reset() {
	cs.pending, cs.authed, cs.session = false, false, nil
}

// New starts a server. Close it when done.
func New(opts Options) (*Server, error) {
	if opts.OperationTimeout == 0 {
		opts.OperationTimeout = 2 * time.Second
	}
	if opts.MaxEnvelopeSize == 0 {
		opts.MaxEnvelopeSize = 153600
	}
	s := &Server{opts: opts, shells: map[string]*shell{}, procs: map[int]*command{}, waitChg: make(chan struct{})}
	s.nextPID.Store(4000)
	if s.opts.Handler == nil {
		s.opts.Handler = NewInterpreter(InterpreterOptions{}).Handler
	}
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.hs.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected in tests
	s.hs.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, &connState{})
	}
	if opts.PlainHTTP {
		s.hs.Start()
		return s, nil
	}
	nb, na := opts.CertNotBefore, opts.CertNotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = time.Now().Add(24 * time.Hour)
	}
	pki, err := newPKI(nb, na)
	if err != nil {
		return nil, err
	}
	s.pki = pki
	s.hs.TLS = &tls.Config{Certificates: []tls.Certificate{pki.leaf}, MinVersion: tls.VersionTLS12}
	s.hs.StartTLS()
	return s, nil
}

// Close stops the server and every running command.
func (s *Server) Close() {
	s.mu.Lock()
	for _, sh := range s.shells {
		for _, c := range sh.commands {
			c.cancel()
		}
	}
	s.mu.Unlock()
	s.hs.CloseClientConnections()
	s.hs.Close()
}

// CloseClientConnections drops every open connection, as a network failure
// or a rebooting guest would.
func (s *Server) CloseClientConnections() { s.hs.CloseClientConnections() }

// Host and Port are where the server listens.
func (s *Server) Host() string {
	host, _, _ := net.SplitHostPort(s.hs.Listener.Addr().String())
	return host
}

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.hs.Listener.Addr().(*net.TCPAddr).Port }

// URL is the server's base URL.
func (s *Server) URL() string { return s.hs.URL }

// CACertPEM is the PEM certificate of the CA that signed the server's
// certificate (nil for PlainHTTP).
func (s *Server) CACertPEM() []byte {
	if s.pki == nil {
		return nil
	}
	return append([]byte(nil), s.pki.caPEM...)
}

// CertSHA256 is the SHA-256 fingerprint of the server certificate (DER).
func (s *Server) CertSHA256() [32]byte {
	if s.pki == nil {
		return [32]byte{}
	}
	return s.pki.fingerprint()
}

// Requests returns every command the server received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.OpenShells = len(s.shells)
	return st
}

// ExpireShells forgets every shell, as a guest does when a shell's idle
// timeout passes: later requests naming them get a fault.
func (s *Server) ExpireShells() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sh := range s.shells {
		for _, c := range sh.commands {
			c.cancel()
		}
		delete(s.shells, id)
	}
}

// WaitReceivePending blocks until a Receive is waiting for output (a long
// poll in flight), or ctx ends.
func (s *Server) WaitReceivePending(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, ch := s.waiting, s.waitChg
		s.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Server) addWaiting(d int) {
	s.mu.Lock()
	s.waiting += d
	close(s.waitChg)
	s.waitChg = make(chan struct{})
	s.mu.Unlock()
}

// alive reports whether a fake process runs.
func (s *Server) alive(pid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.procs[pid]
	return ok
}

// ---- HTTP and authentication ----

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.InFlight++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stats.InFlight--
		s.mu.Unlock()
	}()
	if r.Method != http.MethodPost || r.URL.Path != "/wsman" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	// A sealed envelope adds its MIME parts and signature (under 300
	// bytes) to the envelope.
	limit := int64(s.opts.MaxEnvelopeSize) + 1024
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return
	}
	cs, _ := r.Context().Value(connKey{}).(*connState)
	if cs == nil {
		cs = &connState{}
	}
	if !s.authenticate(w, r, cs) {
		return
	}
	var sess *ntlmSession
	ct := r.Header.Get("Content-Type")
	switch {
	case isSealed(ct):
		var ok bool
		if body, ct, ok = s.unseal(w, cs, body); !ok {
			return
		}
		cs.mu.Lock()
		sess = cs.session
		cs.mu.Unlock()
	case len(body) == 0:
		// The empty message that completes a handshake (pywinrm and
		// masterzen/winrm send one before their first sealed message).
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	case s.opts.PlainHTTP && !s.opts.AllowUnencrypted:
		// Windows with AllowUnencrypted=false answers an unsealed message
		// over HTTP with 401, even right after a valid handshake (seen
		// with go-ntlmssp clients: hashicorp/packer#6205).
		s.mu.Lock()
		s.stats.UnencryptedRefused++
		s.mu.Unlock()
		cs.mu.Lock()
		cs.reset()
		cs.mu.Unlock()
		s.challengeAnew(w)
		return
	}
	if sess != nil {
		sw := &sealingWriter{header: http.Header{}, status: http.StatusOK}
		defer sw.flush(r.Context(), w, cs)
		w = sw
	}
	if len(body) > s.opts.MaxEnvelopeSize {
		s.fault(w, "w:EncodingLimit", "The WS-Management service cannot process the request because the request exceeds the maximum envelope size.")
		return
	}
	if !strings.Contains(ct, "application/soap+xml") {
		http.Error(w, "unsupported media type", http.StatusUnsupportedMediaType)
		return
	}
	if !sleep(r.Context(), s.opts.Delay) {
		return
	}
	s.dispatch(w, r.Context(), body)
}

// unseal opens a sealed message with the connection's NTLM session. A
// message that cannot be opened is answered 400 and its connection must
// authenticate again.
func (s *Server) unseal(w http.ResponseWriter, cs *connState, body []byte) (msg []byte, contentType string, ok bool) {
	fail := func(why string) ([]byte, string, bool) {
		s.mu.Lock()
		s.stats.SealFailures++
		s.mu.Unlock()
		cs.reset()
		http.Error(w, "bad request: "+why, http.StatusBadRequest)
		return nil, "", false
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.session == nil {
		return fail("a sealed message on a connection without an NTLM session that negotiated sealing")
	}
	origType, sig, sealed, err := parseSealed(body)
	if err != nil {
		return fail(err.Error())
	}
	msg, err = cs.session.unseal(sealed, sig)
	if err != nil {
		return fail(err.Error())
	}
	s.mu.Lock()
	s.stats.SealedRequests++
	s.mu.Unlock()
	return msg, origType, true
}

// sealingWriter holds an answer until the handler is done, then sends it
// sealed with the connection's session.
type sealingWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (sw *sealingWriter) Header() http.Header         { return sw.header }
func (sw *sealingWriter) WriteHeader(code int)        { sw.status = code }
func (sw *sealingWriter) Write(p []byte) (int, error) { return sw.body.Write(p) }

func (sw *sealingWriter) flush(ctx context.Context, w http.ResponseWriter, cs *connState) {
	if ctx.Err() != nil {
		return // the client is gone (a Receive it gave up on)
	}
	cs.mu.Lock()
	sess := cs.session
	var sealed, sig []byte
	if sess != nil {
		sealed, sig = sess.seal(sw.body.Bytes())
	}
	cs.mu.Unlock()
	if sess == nil {
		http.Error(w, "the NTLM session ended", http.StatusInternalServerError)
		return
	}
	origType := sw.header.Get("Content-Type")
	if origType == "" {
		origType = "application/soap+xml;charset=UTF-8"
	}
	out := buildSealed(origType, sig, sealed)
	w.Header().Set("Content-Type", sealContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(sw.status)
	_, _ = w.Write(out)
}

// sleep waits d, or until ctx is done (then it reports false).
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// authenticate answers the NTLM handshake and reports whether the request
// may be processed.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, cs *connState) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	h := r.Header.Get("Authorization")
	if h == "" && cs.authed {
		return true
	}
	if u, p, ok := r.BasicAuth(); ok && s.opts.AllowBasic {
		if s.opts.PlainHTTP && !s.opts.AllowUnencrypted {
			// Basic cannot be sealed: Windows refuses it over HTTP
			// unless AllowUnencrypted is true (diyan/pywinrm#59, #258).
			s.mu.Lock()
			s.stats.UnencryptedRefused++
			s.mu.Unlock()
			s.challengeAnew(w)
			return false
		}
		if s.lookupBasic(u, p) {
			return true
		}
		s.countAuthFailure()
		s.challengeAnew(w)
		return false
	}
	scheme, tok, ok := parseAuthorization(h)
	if !ok || (!strings.EqualFold(scheme, "Negotiate") && !strings.EqualFold(scheme, "NTLM")) {
		s.challengeAnew(w)
		return false
	}
	switch ntlmMessageType(tok) {
	case ntlmNegotiate:
		msg, ch, err := newChallenge(strings.ToUpper(s.opts.Domain), tok)
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return false
		}
		cs.reset()
		cs.hs = handshake{negotiate: tok, challenge: msg, serverChallenge: ch}
		cs.pending = true
		w.Header().Set("WWW-Authenticate", scheme+" "+base64.StdEncoding.EncodeToString(msg))
		w.WriteHeader(http.StatusUnauthorized)
		s.mu.Lock()
		s.stats.Handshakes++
		s.mu.Unlock()
		return false
	case ntlmAuthenticate:
		if !cs.pending {
			s.countAuthFailure()
			s.challengeAnew(w)
			return false
		}
		cs.pending = false
		a, err := verifyAuthenticate(tok, cs.hs, s.lookupNTLM)
		if err != nil {
			s.countAuthFailure()
			s.challengeAnew(w)
			return false
		}
		cs.authed = true
		if a.Flags&flagSeal != 0 {
			if cs.session, err = newServerSession(a); err != nil {
				cs.reset()
				s.countAuthFailure()
				s.challengeAnew(w)
				return false
			}
		}
		return true
	}
	s.challengeAnew(w)
	return false
}

func (s *Server) countAuthFailure() {
	s.mu.Lock()
	s.stats.AuthFailures++
	s.mu.Unlock()
}

func (s *Server) challengeAnew(w http.ResponseWriter) {
	w.Header().Add("WWW-Authenticate", "Negotiate")
	if s.opts.AllowBasic {
		w.Header().Add("WWW-Authenticate", `Basic realm="WSMAN"`)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusUnauthorized)
}

func (s *Server) lookupNTLM(user, domain string) (string, bool) {
	o := s.opts
	switch {
	case strings.EqualFold(user, o.User) && (domain == "" || strings.EqualFold(domain, o.Domain)):
		return o.Password, true
	case o.Domain != "" && strings.EqualFold(user, o.User+"@"+o.Domain) && domain == "":
		return o.Password, true
	}
	return "", false
}

func (s *Server) lookupBasic(user, password string) bool {
	o := s.opts
	ok := strings.EqualFold(user, o.User) ||
		(o.Domain != "" && (strings.EqualFold(user, o.Domain+`\`+o.User) || strings.EqualFold(user, o.User+"@"+o.Domain)))
	return ok && password == o.Password
}

// ---- WS-Management ----

const (
	nsSoap    = "http://www.w3.org/2003/05/soap-envelope"
	nsAddr    = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsWsman   = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsShell   = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsTrans   = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	actCreate = nsTrans + "/Create"
	actDelete = nsTrans + "/Delete"
	actCmd    = nsShell + "/Command"
	actRecv   = nsShell + "/Receive"
	actSend   = nsShell + "/Send"
	actSignal = nsShell + "/Signal"
	stateDone = nsShell + "/CommandState/Done"
	stateRun  = nsShell + "/CommandState/Running"
	sigTerm   = nsShell + "/signal/terminate"
	sigCtrlC  = nsShell + "/signal/ctrl_c"
)

type envelope struct {
	Header struct {
		Action    string `xml:"Action"`
		MessageID string `xml:"MessageID"`
		Selectors []struct {
			Name  string `xml:"Name,attr"`
			Value string `xml:",chardata"`
		} `xml:"SelectorSet>Selector"`
		Options []struct {
			Name  string `xml:"Name,attr"`
			Value string `xml:",chardata"`
		} `xml:"OptionSet>Option"`
	} `xml:"Header"`
	Body struct {
		CommandLine *struct {
			Command   string   `xml:"Command"`
			Arguments []string `xml:"Arguments"`
		} `xml:"CommandLine"`
		Receive *struct {
			DesiredStream struct {
				CommandID string `xml:"CommandId,attr"`
			} `xml:"DesiredStream"`
		} `xml:"Receive"`
		Send *struct {
			Streams []struct {
				Name      string `xml:"Name,attr"`
				CommandID string `xml:"CommandId,attr"`
				End       string `xml:"End,attr"`
				Value     string `xml:",chardata"`
			} `xml:"Stream"`
		} `xml:"Send"`
		Signal *struct {
			CommandID string `xml:"CommandId,attr"`
			Code      string `xml:"Code"`
		} `xml:"Signal"`
	} `xml:"Body"`
}

func (e *envelope) option(name string) string {
	for _, o := range e.Header.Options {
		if o.Name == name {
			return strings.TrimSpace(o.Value)
		}
	}
	return ""
}

func (e *envelope) shellID() string {
	for _, s := range e.Header.Selectors {
		if s.Name == "ShellId" {
			return strings.TrimSpace(s.Value)
		}
	}
	return ""
}

func (s *Server) dispatch(w http.ResponseWriter, ctx context.Context, body []byte) {
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil {
		s.fault(w, "w:SchemaValidationError", "The SOAP XML in the message does not match the corresponding XML schema definition.")
		return
	}
	switch strings.TrimSpace(env.Header.Action) {
	case actCreate:
		s.create(w, &env)
	case actDelete:
		s.delete(w, &env)
	case actCmd:
		s.command(w, &env)
	case actSend:
		if sleep(ctx, s.opts.SendDelay) {
			s.send(w, &env)
		}
	case actRecv:
		s.receive(w, ctx, &env)
	case actSignal:
		s.signal(w, &env)
	default:
		s.fault(w, "a:ActionNotSupported", "The action is not supported by the service.")
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) reply(w http.ResponseWriter, env *envelope, action, body string) {
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xml:lang="en-US" xmlns:s="%s" xmlns:a="%s" xmlns:x="%s" xmlns:w="%s" xmlns:rsp="%s"><s:Header><a:Action>%s</a:Action><a:MessageID>uuid:%s</a:MessageID><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To><a:RelatesTo>%s</a:RelatesTo></s:Header><s:Body>%s</s:Body></s:Envelope>`,
		nsSoap, nsAddr, nsTrans, nsWsman, nsShell, action, newID(), xmlEscape(env.Header.MessageID), body)
}

// fault answers with a SOAP fault (HTTP 500), as WinRM does.
func (s *Server) fault(w http.ResponseWriter, subcode, text string) {
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="%s" xmlns:a="%s" xmlns:w="%s"><s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`,
		nsSoap, nsAddr, nsWsman, subcode, xmlEscape(text))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (s *Server) create(w http.ResponseWriter, env *envelope) {
	id := newID()
	s.mu.Lock()
	s.shells[id] = &shell{id: id, commands: map[string]*command{}}
	s.stats.ShellsCreated++
	s.mu.Unlock()
	s.reply(w, env, nsTrans+"/CreateResponse", fmt.Sprintf(
		`<x:ResourceCreated><a:Address>%s</a:Address><a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated><rsp:Shell><rsp:ShellId>%s</rsp:ShellId><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`,
		xmlEscape(s.hs.URL+"/wsman"), id, id))
}

func (s *Server) shellFault(w http.ResponseWriter) {
	s.fault(w, "w:InvalidSelectors", "The request for the Windows Remote Shell failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server.")
}

func (s *Server) delete(w http.ResponseWriter, env *envelope) {
	s.mu.Lock()
	sh, ok := s.shells[env.shellID()]
	if ok {
		delete(s.shells, sh.id)
		s.stats.ShellsDeleted++
		for _, c := range sh.commands {
			c.cancel()
		}
	}
	s.mu.Unlock()
	if !ok {
		s.shellFault(w)
		return
	}
	s.reply(w, env, nsTrans+"/DeleteResponse", "")
}

func (s *Server) lookup(env *envelope, commandID string) (*shell, *command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shells[env.shellID()]
	if sh == nil {
		return nil, nil
	}
	return sh, sh.commands[commandID]
}

func (s *Server) command(w http.ResponseWriter, env *envelope) {
	cl := env.Body.CommandLine
	if cl == nil {
		s.fault(w, "w:SchemaValidationError", "no CommandLine")
		return
	}
	s.mu.Lock()
	sh := s.shells[env.shellID()]
	if sh == nil {
		s.mu.Unlock()
		s.shellFault(w)
		return
	}
	c := newCommand(newID(), int(s.nextPID.Add(4)))
	sh.commands[c.id] = c
	s.procs[c.pid] = c
	s.stats.Commands++
	req := Request{ShellID: sh.id, CommandID: c.id, CommandLine: strings.TrimSpace(cl.Command), Arguments: cl.Arguments, PID: c.pid,
		ConsoleModeStdin: !strings.EqualFold(env.option("WINRS_CONSOLEMODE_STDIN"), "FALSE")}
	if script, ok := encodedCommand(req.CommandLine); ok {
		req.PowerShell, req.Script = true, script
	}
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	req.Stdin = c.stdin
	req.Stdout = streamWriter{c, false}
	req.Stderr = streamWriter{c, true}
	req.Alive = s.alive
	handler := s.opts.Handler
	if len(req.CommandLine) > 8191 {
		// WinRM starts commands through cmd.exe.
		handler = func(_ context.Context, r *Request) int {
			_, _ = io.WriteString(r.Stderr, "The command line is too long.\r\n")
			return 1
		}
	}
	go func() {
		code := handler(c.ctx, &req)
		s.mu.Lock()
		delete(s.procs, c.pid)
		s.mu.Unlock()
		c.finish(code)
	}()
	s.reply(w, env, nsShell+"/CommandResponse", "<rsp:CommandResponse><rsp:CommandId>"+c.id+"</rsp:CommandId></rsp:CommandResponse>")
}

// encodedCommand decodes the script of a "powershell.exe ... -EncodedCommand
// X" command line.
func encodedCommand(line string) (string, bool) {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(strings.ToLower(f[0]), "powershell") {
		return "", false
	}
	for i := 1; i+1 < len(f); i++ {
		switch strings.ToLower(f[i]) {
		case "-encodedcommand", "-enc", "-e", "-ec":
			script, err := guest.DecodePowerShell(f[i+1])
			if err != nil {
				return "", false
			}
			return script, true
		}
	}
	return "", false
}

func (s *Server) send(w http.ResponseWriter, env *envelope) {
	if env.Body.Send == nil {
		s.fault(w, "w:SchemaValidationError", "no Send")
		return
	}
	s.mu.Lock()
	s.stats.Sends++
	s.mu.Unlock()
	for _, st := range env.Body.Send.Streams {
		sh, c := s.lookup(env, st.CommandID)
		if sh == nil {
			s.shellFault(w)
			return
		}
		if c == nil || c.isDone() {
			s.fault(w, "w:InvalidParameter", "The command was not found or has ended.")
			return
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Value))
		if err != nil {
			s.fault(w, "w:SchemaValidationError", "stream content is not base64")
			return
		}
		c.stdin.write(data, st.End == "true" || st.End == "True")
	}
	s.reply(w, env, nsShell+"/SendResponse", "<rsp:SendResponse/>")
}

// maxChunk is how much of each stream one ReceiveResponse carries.
const maxChunk = 64 << 10

func (s *Server) receive(w http.ResponseWriter, ctx context.Context, env *envelope) {
	if env.Body.Receive == nil {
		s.fault(w, "w:SchemaValidationError", "no Receive")
		return
	}
	s.mu.Lock()
	s.stats.Receives++
	s.mu.Unlock()
	id := env.Body.Receive.DesiredStream.CommandID
	sh, c := s.lookup(env, id)
	if sh == nil {
		s.shellFault(w)
		return
	}
	if c == nil {
		s.fault(w, "w:InvalidParameter", "The command was not found.")
		return
	}
	timer := time.NewTimer(s.opts.OperationTimeout)
	defer timer.Stop()
	for {
		out, errb, done, exit, changed := c.take(maxChunk)
		if len(out) > 0 || len(errb) > 0 || done {
			var b strings.Builder
			b.WriteString("<rsp:ReceiveResponse>")
			writeStream(&b, "stdout", id, out, done)
			writeStream(&b, "stderr", id, errb, done)
			if done {
				fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, id, stateDone, exit)
				s.mu.Lock()
				delete(sh.commands, id)
				s.mu.Unlock()
			} else {
				fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"/>`, id, stateRun)
			}
			b.WriteString("</rsp:ReceiveResponse>")
			s.reply(w, env, nsShell+"/ReceiveResponse", b.String())
			return
		}
		s.addWaiting(1)
		select {
		case <-changed:
			s.addWaiting(-1)
		case <-timer.C:
			s.addWaiting(-1)
			s.fault(w, "w:TimedOut", "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.")
			return
		case <-ctx.Done():
			s.addWaiting(-1)
			return
		}
	}
}

func writeStream(b *strings.Builder, name, id string, data []byte, end bool) {
	if len(data) == 0 && !end {
		return
	}
	if end {
		if len(data) > 0 {
			fmt.Fprintf(b, `<rsp:Stream Name="%s" CommandId="%s">%s</rsp:Stream>`, name, id, base64.StdEncoding.EncodeToString(data))
		}
		fmt.Fprintf(b, `<rsp:Stream Name="%s" CommandId="%s" End="true"></rsp:Stream>`, name, id)
		return
	}
	fmt.Fprintf(b, `<rsp:Stream Name="%s" CommandId="%s">%s</rsp:Stream>`, name, id, base64.StdEncoding.EncodeToString(data))
}

func (s *Server) signal(w http.ResponseWriter, env *envelope) {
	if env.Body.Signal == nil {
		s.fault(w, "w:SchemaValidationError", "no Signal")
		return
	}
	s.mu.Lock()
	s.stats.Signals++
	s.mu.Unlock()
	sh, c := s.lookup(env, env.Body.Signal.CommandID)
	if sh == nil {
		s.shellFault(w)
		return
	}
	if c != nil {
		switch strings.TrimSpace(env.Body.Signal.Code) {
		case sigTerm, sigCtrlC:
			c.cancel()
			s.mu.Lock()
			delete(sh.commands, c.id)
			s.mu.Unlock()
		}
	}
	s.reply(w, env, nsShell+"/SignalResponse", "<rsp:SignalResponse/>")
}

// ---- commands ----

type command struct {
	id     string
	pid    int
	ctx    context.Context
	cancel context.CancelFunc
	stdin  *inputPipe

	mu      sync.Mutex
	out     []byte
	errb    []byte
	done    bool
	exit    int
	changed chan struct{}
}

func newCommand(id string, pid int) *command {
	ctx, cancel := context.WithCancel(context.Background())
	c := &command{id: id, pid: pid, ctx: ctx, cancel: cancel, changed: make(chan struct{})}
	c.stdin = &inputPipe{ctx: ctx, changed: make(chan struct{})}
	return c
}

func (c *command) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *command) write(p []byte, stderr bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stderr {
		c.errb = append(c.errb, p...)
	} else {
		c.out = append(c.out, p...)
	}
	c.notifyLocked()
}

func (c *command) finish(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done, c.exit = true, code
	c.notifyLocked()
}

func (c *command) isDone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// take removes up to max bytes of each stream; done is true only once both
// are drained.
func (c *command) take(max int) (out, errb []byte, done bool, exit int, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(c.out), max)
	out, c.out = append([]byte(nil), c.out[:n]...), c.out[n:]
	n = min(len(c.errb), max)
	errb, c.errb = append([]byte(nil), c.errb[:n]...), c.errb[n:]
	return out, errb, c.done && len(c.out) == 0 && len(c.errb) == 0, c.exit, c.changed
}

type streamWriter struct {
	c      *command
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	if w.c.ctx.Err() != nil {
		return 0, errors.New("winrmserver: the command was terminated")
	}
	w.c.write(p, w.stderr)
	return len(p), nil
}

// inputPipe buffers stdin without bound, as WinRM does.
type inputPipe struct {
	ctx     context.Context
	mu      sync.Mutex
	buf     []byte
	eof     bool
	changed chan struct{}
}

func (p *inputPipe) write(b []byte, end bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	if end {
		p.eof = true
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *inputPipe) Read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		if len(p.buf) > 0 {
			n := copy(b, p.buf)
			p.buf = p.buf[n:]
			p.mu.Unlock()
			return n, nil
		}
		if p.eof {
			p.mu.Unlock()
			return 0, io.EOF
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.ctx.Done():
			return 0, errors.New("winrmserver: the command was terminated")
		}
	}
}
