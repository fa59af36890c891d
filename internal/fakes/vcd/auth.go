package vcd

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

const tokenHeader = "X-Vmware-Vcloud-Access-Token"

// sessionOf returns the live session of the request's token. Caller holds s.mu.
func (s *Server) sessionOf(r *http.Request) (*session, *apiError) {
	tok := r.Header.Get(tokenHeader)
	if tok == "" {
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			tok = a[7:]
		}
	}
	if tok == "" {
		return nil, newErr(401, "UNAUTHORIZED", "Either no authentication token was supplied, or the token is not valid.")
	}
	ses := s.st.sessions[tok]
	if ses == nil {
		return nil, newErr(401, "UNAUTHORIZED", "Either no authentication token was supplied, or the token is not valid.")
	}
	if !ses.expires.IsZero() && !s.st.now().Before(ses.expires) {
		delete(s.st.sessions, tok)
		s.st.sessionsEnded++
		return nil, newErr(401, "UNAUTHORIZED", "Either no authentication token was supplied, or the token is not valid.")
	}
	return ses, nil
}

func newToken() string {
	var b [96]byte
	_, _ = rand.Read(b[:])
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b[:])
}

func (st *state) newSession(u *user) *session {
	ses := &session{token: newToken(), id: newUUID(), org: u.org, user: u}
	if st.opts.TokenTTL > 0 {
		ses.expires = st.now().Add(st.opts.TokenTTL)
	}
	st.sessions[ses.token] = ses
	st.sessionsCreated++
	return ses
}

func (st *state) sessionJSON(ses *session) map[string]any {
	return map[string]any{
		"id":                        "urn:vcloud:session:" + ses.id,
		"site":                      map[string]string{"name": "fake-vcd", "id": "urn:vcloud:site:00000000-0000-0000-0000-000000000001"},
		"user":                      map[string]string{"name": ses.user.name, "id": "urn:vcloud:user:" + uuidFromName(ses.user.org.id, ses.user.name)},
		"org":                       map[string]string{"name": ses.org.name, "id": "urn:vcloud:org:" + ses.org.id},
		"operatingOrg":              map[string]string{"name": ses.org.name, "id": "urn:vcloud:org:" + ses.org.id},
		"location":                  "urn:vcloud:location:00000000-0000-0000-0000-000000000001",
		"roles":                     []string{ses.user.role},
		"roleRefs":                  []map[string]string{{"name": ses.user.role, "id": "urn:vcloud:role:" + uuidFromName("role", ses.user.role)}},
		"sessionIdleTimeoutMinutes": 30,
	}
}

// uuidFromName derives a stable UUID-shaped id from strings.
func uuidFromName(parts ...string) string {
	var h [16]byte
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h[i%16] = h[i%16]*31 + p[i]
		}
	}
	const hx = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, b := range h {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hx[b>>4], hx[b&15])
	}
	return string(out)
}

// handleSessions serves /cloudapi/1.0.0/sessions[/provider|/current|/{id}].
func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request, rest string) {
	switch r.Method {
	case http.MethodPost:
		if rest != "" && rest != "provider" {
			writeJSONError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
			return
		}
		if v := acceptVersion(r); v != "" && !versionSupported(v) {
			writeJSONError(w, newErr(406, "NOT_ACCEPTABLE", "The request has invalid accept header: Invalid API version requested"))
			return
		}
		login, pass, ok := r.BasicAuth()
		at := strings.LastIndexByte(login, '@')
		if !ok || at <= 0 {
			writeJSONError(w, newErr(401, "UNAUTHORIZED", "Authentication failed"))
			return
		}
		name, orgName := login[:at], login[at+1:]
		var u *user
		for _, x := range s.st.users {
			if x.name == name && strings.EqualFold(x.org.name, orgName) && x.password == pass {
				u = x
			}
		}
		provider := rest == "provider"
		if u == nil || provider != (u.role == RoleSysAdmin) {
			writeJSONError(w, newErr(401, "UNAUTHORIZED", "Authentication failed"))
			return
		}
		ses := s.st.newSession(u)
		w.Header().Set("X-VMWARE-VCLOUD-ACCESS-TOKEN", ses.token)
		w.Header().Set("X-VMWARE-VCLOUD-TOKEN-TYPE", "Bearer")
		writeJSON(w, 200, s.st.sessionJSON(ses))
	case http.MethodGet:
		ses, e := s.sessionOf(r)
		if e != nil {
			writeJSONError(w, e)
			return
		}
		if rest != "current" && rest != "urn:vcloud:session:"+ses.id && rest != ses.id {
			writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "Session not found"))
			return
		}
		writeJSON(w, 200, s.st.sessionJSON(ses))
	case http.MethodDelete:
		ses, e := s.sessionOf(r)
		if e != nil {
			writeJSONError(w, e)
			return
		}
		if rest != "" && rest != "provider" && rest != "current" && rest != "urn:vcloud:session:"+ses.id && rest != ses.id {
			writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "Session not found"))
			return
		}
		delete(s.st.sessions, ses.token)
		s.st.sessionsEnded++
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSONError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
	}
}

// handleOAuth serves /oauth/tenant/{org}/token and /oauth/provider/token
// with grant_type=refresh_token (API tokens).
func (s *Server) handleOAuth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/oauth/")
	var orgName string
	switch {
	case p == "provider/token":
		orgName = "System"
	case strings.HasPrefix(p, "tenant/") && strings.HasSuffix(p, "/token"):
		orgName = strings.TrimSuffix(strings.TrimPrefix(p, "tenant/"), "/token")
	default:
		writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "not found"))
		return
	}
	if r.Method != http.MethodPost {
		writeJSONError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
		return
	}
	_ = r.ParseForm()
	if r.PostForm.Get("grant_type") != "refresh_token" || s.opts.APIToken == "" ||
		r.PostForm.Get("refresh_token") != s.opts.APIToken || !strings.EqualFold(orgName, s.opts.Org) {
		writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "Invalid refresh token"})
		return
	}
	var u *user
	for _, x := range s.st.users {
		if x.name == s.opts.User && strings.EqualFold(x.org.name, s.opts.Org) {
			u = x
		}
	}
	ses := s.st.newSession(u)
	exp := 0
	if s.opts.TokenTTL > 0 {
		exp = int(s.opts.TokenTTL / time.Second)
	}
	writeJSON(w, 200, map[string]any{"access_token": ses.token, "token_type": "Bearer", "expires_in": exp, "refresh_token": nil})
}
