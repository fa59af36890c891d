// Package smtprelay is an SMTP relay for tests: a real SMTP server
// (github.com/emersion/go-smtp) on a loopback port that keeps every
// message it accepts in memory. It speaks the real wire protocol, with
// STARTTLS (port 25/587 style), implicit TLS (465 style) and AUTH PLAIN
// inside TLS, so a client is tested as it talks to postfix, without a
// system daemon.
package smtprelay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mode is how clients secure the connection.
type Mode int

const (
	// StartTLS: plain greeting, STARTTLS offered (and required before
	// MAIL when RequireTLS).
	StartTLS Mode = iota
	// ImplicitTLS: TLS from the first byte.
	ImplicitTLS
	// Plain: no TLS at all (STARTTLS is not offered).
	Plain
)

// Options configure a relay.
type Options struct {
	Mode Mode
	// Username and Password, when set, are required (AUTH PLAIN) before MAIL.
	Username, Password string
	// PKI signs the server certificate; nil makes a fresh one for
	// "localhost" and 127.0.0.1.
	PKI *PKI
	// TempFail makes the first TempFail MAIL commands fail with 451.
	TempFail int
}

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Data []byte
	// TLS says the message came over TLS; User is the authenticated user.
	TLS  bool
	User string
}

// Relay is a running relay.
type Relay struct {
	Addr string
	PKI  *PKI
	srv  *smtp.Server
	ln   net.Listener

	mu       sync.Mutex
	msgs     []Message
	tempFail int
	arrived  chan struct{}
}

// Start listens on 127.0.0.1 and serves until Close.
func Start(opts Options) (*Relay, error) {
	if opts.PKI == nil {
		p, err := NewPKI("localhost")
		if err != nil {
			return nil, err
		}
		opts.PKI = p
	}
	r := &Relay{PKI: opts.PKI, tempFail: opts.TempFail, arrived: make(chan struct{}, 1024)}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{r: r, c: c, opts: &opts}, nil
	}))
	r.srv.Domain = "localhost"
	r.srv.ReadTimeout = 10 * time.Second
	r.srv.WriteTimeout = 10 * time.Second
	r.srv.MaxMessageBytes = 1 << 20
	r.srv.ErrorLog = nopLogger{}
	tc := &tls.Config{Certificates: []tls.Certificate{opts.PKI.Leaf}, MinVersion: tls.VersionTLS12}
	if opts.Mode == StartTLS {
		r.srv.TLSConfig = tc
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.Mode == ImplicitTLS {
		ln = tls.NewListener(ln, tc)
	}
	r.ln, r.Addr = ln, ln.Addr().String()
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Close stops the relay.
func (r *Relay) Close() error { return r.srv.Close() }

// Messages returns what was accepted so far.
func (r *Relay) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

// Wait waits until n messages were accepted or the timeout passes.
func (r *Relay) Wait(n int, timeout time.Duration) []Message {
	deadline := time.After(timeout)
	for {
		if m := r.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-r.arrived:
		case <-deadline:
			return r.Messages()
		}
	}
}

type session struct {
	r    *Relay
	c    *smtp.Conn
	opts *Options
	user string
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string {
	if s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.opts.Username || password != s.opts.Password {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.opts.Username != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	if _, ok := s.c.TLSConnectionState(); !ok && s.opts.Mode != Plain {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	s.r.mu.Lock()
	fail := s.r.tempFail > 0
	if fail {
		s.r.tempFail--
	}
	s.r.mu.Unlock()
	if fail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, Message{From: s.from, To: s.to, Data: b, TLS: isTLS, User: s.user})
	s.r.mu.Unlock()
	select {
	case s.r.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}
func (nopLogger) Println(...interface{})        {}

// PKI is a throw-away certificate authority and a server certificate.
type PKI struct {
	// Pool trusts the authority.
	Pool *x509.CertPool
	Leaf tls.Certificate
}

// NewPKI makes an authority and a certificate for names (DNS names) and
// 127.0.0.1, valid for a day.
func NewPKI(names ...string) (*PKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtprelay test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	lt := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "smtprelay"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: names,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, lt, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("smtprelay: no names")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &PKI{Pool: pool, Leaf: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}, nil
}
