package winrm_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

// httpOptions are executor options for a plain-HTTP fake.
func httpOptions(g *fakeGuest) *winrm.Options {
	return &winrm.Options{Port: g.srv.Port(), HTTP: true}
}

// TestPlainHTTPIsSealed runs commands, standard input and an upload over
// plain HTTP against a fake that, like Windows by default
// (AllowUnencrypted=false), answers any unsealed message with 401: every
// message must have been sealed under the NTLM session keys and carried a
// valid signature, and every answer was unsealed by the executor.
func TestPlainHTTPIsSealed(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{PlainHTTP: true})
	ex := g.executor(t, httpOptions(g))
	out, err := guest.Output(t.Context(), ex, guest.Command{Script: "Write-Output plain"})
	if err != nil || out != "plain" {
		t.Fatalf("over sealed HTTP: %q, %v", out, err)
	}
	dir := g.dir(t)
	if err := ex.Upload(t.Context(), dir+`\f.txt`, strings.NewReader("sealed content"), guest.UploadOptions{}); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if out, err := guest.Output(t.Context(), ex, guest.Command{Args: []string{"Get-Content", dir + `\f.txt`}}); err != nil || out != "sealed content" {
		t.Fatalf("read back: %q, %v", out, err)
	}
	st := g.srv.Stats()
	if st.UnencryptedRefused != 0 || st.SealFailures != 0 || st.AuthFailures != 0 {
		t.Fatalf("the fake refused messages: %+v", st)
	}
	// Create, Command, Send, Receive, Delete... all sealed.
	if st.SealedRequests < st.ShellsCreated+st.Commands+st.Sends+st.Receives {
		t.Fatalf("not every message was sealed: %+v", st)
	}
	// HTTPS against a plain-HTTP server fails; it never falls back.
	https := g.executor(t, &winrm.Options{Port: g.srv.Port()})
	if _, err := https.Run(t.Context(), guest.Command{Script: "exit 0"}); err == nil {
		t.Fatal("HTTPS to a plain HTTP server succeeded")
	}
}

// TestConformanceOverSealedHTTP runs the guest suite over plain HTTP with
// every message sealed.
func TestConformanceOverSealedHTTP(t *testing.T) {
	t.Parallel() // the suite mostly waits out deadlines
	g := newFakeGuest(t, winrmserver.Options{PlainHTTP: true})
	guesttest.Run(t, guesttest.Harness{
		Family: guest.Windows,
		New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
			o := httpOptions(g)
			o.Executor = opts
			return g.executor(t, o), g.dir(t)
		},
	})
	if st := g.srv.Stats(); st.UnencryptedRefused != 0 || st.SealFailures != 0 {
		t.Fatalf("the fake refused messages: %+v", st)
	}
}

// tap records the bytes of every connection and can alter one byte of
// the next sealed message in either direction.
type tap struct {
	mu            sync.Mutex
	sent, recv    bytes.Buffer
	corruptSend   atomic.Bool
	corruptAnswer atomic.Bool
	// conns counts connections opened, closed those whose Read has
	// returned an error (the peer closed them).
	conns, closed atomic.Int64
}

func (tp *tap) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tp.conns.Add(1)
	return &tapConn{Conn: c, tp: tp}, nil
}

type tapConn struct {
	net.Conn
	tp   *tap
	done atomic.Bool
}

var octet = []byte("application/octet-stream\r\n")

// flip alters a byte 24 bytes into the sealed message after the octet
// stream header (past the signature length and signature), if p holds it.
func flip(p []byte, armed *atomic.Bool) {
	if i := bytes.Index(p, octet); i >= 0 && i+len(octet)+24 < len(p) && armed.CompareAndSwap(true, false) {
		p[i+len(octet)+24] ^= 0x01
	}
}

func (c *tapConn) Write(p []byte) (int, error) {
	q := append([]byte(nil), p...)
	flip(q, &c.tp.corruptSend)
	c.tp.mu.Lock()
	c.tp.sent.Write(q)
	c.tp.mu.Unlock()
	return c.Conn.Write(q)
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	flip(p[:n], &c.tp.corruptAnswer)
	c.tp.mu.Lock()
	c.tp.recv.Write(p[:n])
	c.tp.mu.Unlock()
	if err != nil && c.done.CompareAndSwap(false, true) {
		c.tp.closed.Add(1)
	}
	return n, err
}

// TestSealedWireHoldsNoPlainText looks at the bytes on the wire: no SOAP,
// no command line, no output, no password, only sealed parts.
func TestSealedWireHoldsNoPlainText(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{PlainHTTP: true})
	tp := &tap{}
	o := httpOptions(g)
	o.DialContext = tp.dial
	ex := g.executor(t, o)
	const marker = "marker-6f1d-output"
	out, err := guest.Output(t.Context(), ex, guest.Command{Script: "Write-Output '" + marker + "'", Stdin: strings.NewReader("stdin-secret-4411\n")})
	if err != nil || out != marker {
		t.Fatalf("Run: %q, %v", out, err)
	}
	tp.mu.Lock()
	sent, recv := tp.sent.String(), tp.recv.String()
	tp.mu.Unlock()
	if !strings.Contains(sent, "multipart/encrypted") || !strings.Contains(recv, "multipart/encrypted") {
		t.Fatal("the messages were not sent as multipart/encrypted")
	}
	for _, plain := range []string{"Envelope", "schemas.xmlsoap.org", "powershell", "CommandLine", "stdin-secret", base64.StdEncoding.EncodeToString([]byte("stdin-secret-4411\n")), testPassword} {
		if strings.Contains(sent, plain) {
			t.Errorf("the client sent %q in plain text", plain)
		}
	}
	for _, plain := range []string{"Envelope", "ReceiveResponse", marker, base64.StdEncoding.EncodeToString([]byte(marker))[:16]} {
		if strings.Contains(recv, plain) {
			t.Errorf("the server answered %q in plain text", plain)
		}
	}
}

// TestSealedTamperingDetected alters one byte of a sealed message on the
// wire: the fake refuses an altered request (nothing runs), the executor
// refuses an altered answer.
func TestSealedTamperingDetected(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{PlainHTTP: true})
	tp := &tap{}
	o := httpOptions(g)
	o.DialContext = tp.dial
	o.MaxIdleShells = -1
	ex := g.executor(t, o)
	if _, err := ex.Run(t.Context(), guest.Command{Script: "exit 0"}); err != nil {
		t.Fatal(err)
	}

	before := g.srv.Stats()
	tp.corruptSend.Store(true)
	_, err := ex.Run(t.Context(), guest.Command{Script: "Write-Output altered"})
	after := g.srv.Stats()
	if err == nil || after.SealFailures != before.SealFailures+1 {
		t.Fatalf("an altered request: %v, seal failures %d -> %d", err, before.SealFailures, after.SealFailures)
	}
	if after.Commands != before.Commands {
		t.Fatal("a command ran although its request failed the signature check")
	}
	if _, err := ex.Run(t.Context(), guest.Command{Script: "exit 0"}); err != nil {
		t.Fatalf("after a refused request, a new connection must authenticate again: %v", err)
	}

	tp.corruptAnswer.Store(true)
	_, err = ex.Run(t.Context(), guest.Command{Script: "Write-Output x"})
	if errs.CodeOf(err) != errs.OutcomeUnknown || !strings.Contains(err.Error(), "NTLM") {
		t.Fatalf("an altered answer: %v (code %v), want OutcomeUnknown naming the NTLM check", err, errs.CodeOf(err))
	}
	if _, err := ex.Run(t.Context(), guest.Command{Script: "exit 0"}); err != nil {
		t.Fatalf("after a refused answer: %v", err)
	}
}

// TestSealedSessionReauthenticates drops every connection between
// commands: the next message goes out on a new connection, which the
// guest does not know (401), and the executor authenticates it and sends
// the message again.
func TestSealedSessionReauthenticates(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{PlainHTTP: true})
	tp := &tap{}
	o := httpOptions(g)
	o.DialContext = tp.dial
	ex := g.executor(t, o)
	for i := range 3 {
		if out, err := guest.Output(t.Context(), ex, guest.Command{Script: "Write-Output again"}); err != nil || out != "again" {
			t.Fatalf("command %d: %q, %v", i, out, err)
		}
		g.srv.CloseClientConnections()
		// Wait until the client has seen every connection close, so that
		// the next message goes out on a new one (a POST on a connection
		// closed under it is never sent again: it may have run).
		deadline := time.Now().Add(5 * time.Second)
		for tp.closed.Load() < tp.conns.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // the transport drops the closed connection
	}
	if st := g.srv.Stats(); st.Handshakes < 3 || st.SealFailures != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestWrongPasswordOverSealedHTTP: a refused NTLM login over HTTP is
// Unauthenticated, as over HTTPS.
func TestWrongPasswordOverSealedHTTP(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{PlainHTTP: true})
	ex, err := winrm.New(g.srv.Host(), guest.Password(testUser, "wrong"), httpOptions(g))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	_, err = ex.Run(t.Context(), guest.Command{Script: "exit 0"})
	if errs.CodeOf(err) != errs.Unauthenticated || !strings.Contains(err.Error(), "NTLM") {
		t.Fatalf("wrong password over HTTP: %v (code %v)", err, errs.CodeOf(err))
	}
	if st := g.srv.Stats(); st.AuthFailures == 0 || st.ShellsCreated != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestBasicOverHTTPIsAnExplicitOptIn: Basic cannot be sealed, so over
// HTTP it needs InsecureUnencryptedBasic, and a guest with the default
// AllowUnencrypted=false still refuses it.
func TestBasicOverHTTPIsAnExplicitOptIn(t *testing.T) {
	creds := guest.Password(testUser, testPassword)
	strict := newFakeGuest(t, winrmserver.Options{PlainHTTP: true, AllowBasic: true})
	o := &winrm.Options{Port: strict.srv.Port(), HTTP: true, Basic: true}
	if _, err := winrm.New(strict.srv.Host(), creds, o); errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), "InsecureUnencryptedBasic") {
		t.Fatalf("Basic over HTTP without the opt-in: %v", err)
	}
	o.InsecureUnencryptedBasic = true
	ex := strict.executor(t, o)
	if _, err := ex.Run(t.Context(), guest.Command{Script: "exit 0"}); errs.CodeOf(err) != errs.Unauthenticated {
		t.Fatalf("Basic over HTTP to a guest refusing unencrypted traffic: %v", err)
	}
	if st := strict.srv.Stats(); st.UnencryptedRefused == 0 || st.ShellsCreated != 0 {
		t.Fatalf("stats: %+v", st)
	}

	lax := newFakeGuest(t, winrmserver.Options{PlainHTTP: true, AllowBasic: true, AllowUnencrypted: true})
	o.Port = lax.srv.Port()
	ex = lax.executor(t, o)
	if out, err := guest.Output(t.Context(), ex, guest.Command{Script: "Write-Output basic"}); err != nil || out != "basic" {
		t.Fatalf("Basic over HTTP with AllowUnencrypted=true: %q, %v", out, err)
	}
}
