// Package httpapi holds what the provider drivers that speak a vendor's
// HTTP API over their own client (provider/ovirt, provider/vcd) share:
// the keep-alive, TLS-verifying client and the one session token every
// concurrent call of a driver uses.
package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/managedvm/managedvm/errs"
)

// NewClient is a driver's HTTP client: TLS verified against roots (nil:
// the system pool) unless insecure, at least TLS 1.2, HTTP/1.1 keep-alive
// with at most maxConns connections to the server, proxies from the
// environment, and redirects not followed (a driver sees them as they are).
func NewClient(roots *x509.CertPool, insecure bool, maxConns int) *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: roots, InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12}, //nolint:gosec // insecure only when asked
		TLSHandshakeTimeout: 30 * time.Second,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		MaxConnsPerHost:     maxConns,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Session is the one token a driver's calls share. The zero value is not
// usable: make it with NewSession.
type Session struct {
	loginCh chan struct{} // one login at a time; held while logging in

	mu    sync.Mutex
	token string // "" before login, after a refusal and after Take
}

// NewSession returns a session with no token.
func NewSession() *Session { return &Session{loginCh: make(chan struct{}, 1)} }

// Token returns the token, calling login when there is none. Under
// concurrent calls one goroutine logs in and the others wait for its
// token (or for their context).
func (s *Session) Token(ctx context.Context, login func(context.Context) (string, error)) (string, error) {
	if t := s.current(); t != "" {
		return t, nil
	}
	select {
	case s.loginCh <- struct{}{}:
	case <-ctx.Done():
		return "", errs.FromContext(ctx, "")
	}
	defer func() { <-s.loginCh }()
	if t := s.current(); t != "" {
		return t, nil
	}
	t, err := login(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.token = t
	s.mu.Unlock()
	return t, nil
}

func (s *Session) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// Drop forgets t if it is still the current token (a refused token is
// dropped once however many calls saw the refusal).
func (s *Session) Drop(t string) {
	s.mu.Lock()
	if s.token == t {
		s.token = ""
	}
	s.mu.Unlock()
}

// Take returns the current token and forgets it ("" when there is none),
// for a logout.
func (s *Session) Take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.token
	s.token = ""
	return t
}
