package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/managedvm/managedvm/errs"
)

// Role is what a user may do: operators enroll and unenroll, viewers look.
type Role string

const (
	Operator Role = "operator"
	Viewer   Role = "viewer"
)

// Authenticator checks a user name and password and says the user's role.
// A refusal is Unauthenticated; a user in no portal group
// PermissionDenied; a directory that cannot be reached Unavailable.
type Authenticator interface {
	Authenticate(ctx context.Context, user, password string) (Role, error)
}

// demoAuth is the local demo accounts of the embedded defaults.
type demoAuth map[string]demoAccount

type demoAccount struct {
	password string
	role     Role
}

func (d demoAuth) Authenticate(_ context.Context, user, password string) (Role, error) {
	a, ok := d[user]
	// Compare even for unknown users, so timing does not tell them apart.
	want := a.password
	if !ok {
		want = "\x00unknown"
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 || !ok {
		return "", errs.New(errs.Unauthenticated, "", "wrong user name or password")
	}
	return a.role, nil
}

// chain tries each authenticator in turn; the first that knows the user
// decides.
type chain []Authenticator

func (c chain) Authenticate(ctx context.Context, user, password string) (Role, error) {
	var last error = errs.New(errs.Unauthenticated, "", "wrong user name or password")
	for _, a := range c {
		role, err := a.Authenticate(ctx, user, password)
		if err == nil {
			return role, nil
		}
		if errs.CodeOf(err) != errs.Unauthenticated {
			return "", err
		}
		last = err
	}
	return "", last
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// session is one logged-in user.
type session struct {
	id, user string
	role     Role
	csrf     string
	expires  time.Time
}

// sessions keeps the sessions in memory: a restart logs everyone out.
type sessions struct {
	mu   sync.Mutex
	m    map[string]*session
	ttl  time.Duration
	now  func() time.Time
	name string
}

const sessionCookie = "mvm_session"

func newSessions(ttl time.Duration) *sessions {
	return &sessions{m: map[string]*session{}, ttl: ttl, now: time.Now, name: sessionCookie}
}

func (s *sessions) create(w http.ResponseWriter, user string, role Role) *session {
	ss := &session{id: randomToken(32), user: user, role: role, csrf: randomToken(32), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	for id, old := range s.m { // drop expired sessions as new ones come
		if s.now().After(old.expires) {
			delete(s.m, id)
		}
	}
	s.m[ss.id] = ss
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: s.name, Value: ss.id, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Expires: ss.expires})
	return ss
}

// get returns the request's live session, or nil.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(s.name)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[c.Value]
	if ss == nil || s.now().After(ss.expires) {
		return nil
	}
	return ss
}

func (s *sessions) destroy(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.name); err == nil {
		s.mu.Lock()
		delete(s.m, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: s.name, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// validCSRF compares a presented token with the session's in constant
// time.
func validCSRF(want, got string) bool {
	return want != "" && len(got) == len(want) && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// limiter refuses logins after too many failures per key (a user name, a
// client address) within a window.
type limiter struct {
	mu     sync.Mutex
	fails  map[string][]time.Time
	max    int
	window time.Duration
	now    func() time.Time
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{fails: map[string][]time.Time{}, max: max, window: window, now: time.Now}
}

// allowed reports whether every key is under its limit.
func (l *limiter) allowed(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if len(l.recent(k)) >= l.max {
			return false
		}
	}
	return true
}

func (l *limiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.fails[k] = append(l.recent(k), l.now())
	}
	if len(l.fails) > 100000 { // bound the memory an attacker can make us use
		for k := range l.fails {
			if len(l.recent(k)) == 0 {
				delete(l.fails, k)
			}
		}
	}
}

func (l *limiter) recent(k string) []time.Time {
	ts := l.fails[k]
	cut := l.now().Add(-l.window)
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, k)
		return nil
	}
	l.fails[k] = ts
	return ts
}
