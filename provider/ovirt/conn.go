package ovirt

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	ovirtsdk "github.com/ovirt/go-ovirt"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/certerr"
	"github.com/managedvm/managedvm/internal/httpapi"
	"github.com/managedvm/managedvm/internal/limit"
)

// maxBody bounds what one answer may hold (a page of VMs with their
// reported devices is well under it).
const maxBody = 64 << 20

// conn is the engine connection: one keep-alive, context-aware HTTP
// client and one SSO token shared by every call, renewed once when the
// engine refuses it (401, which the engine answers with an HTML page).
type conn struct {
	base    string // scheme://host[:port]
	api     string // base + API path ("/ovirt-engine/api")
	hc      *http.Client
	user    string
	pass    guest.Secret
	session *httpapi.Session
}

func newConn(base, apiPath string, hc *http.Client, user string, pass guest.Secret) *conn {
	return &conn{base: base, api: base + apiPath, hc: hc, user: user, pass: pass, session: httpapi.NewSession()}
}

type ssoAnswer struct {
	AccessToken string `json:"access_token"`
	Error       string `json:"error"`
	ErrorCode   string `json:"error_code"`
}

// login asks the engine's SSO for a token (grant_type=password, scope
// ovirt-app-api). The password only goes in the form body.
func (c *conn) login(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type": {"password"},
		"scope":      {"ovirt-app-api"},
		"username":   {c.user},
		"password":   {c.pass.Reveal()},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/ovirt-engine/sso/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", errs.New(errs.InvalidArgument, "", "engine URL is not usable")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		// A login changes nothing on the engine: retrying is safe.
		return "", transportErr(ctx, err, false)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", transportErr(ctx, err, false)
	}
	var a ssoAnswer
	jerr := json.Unmarshal(body, &a)
	switch {
	case resp.StatusCode == http.StatusOK && jerr == nil && a.AccessToken != "":
		return a.AccessToken, nil
	case resp.StatusCode >= 500:
		return "", errs.Errorf(errs.Unavailable, "", "engine SSO answered %d", resp.StatusCode)
	case jerr == nil && a.ErrorCode == "access_denied":
		return "", errs.Errorf(errs.Unauthenticated, "", "engine SSO refused the login of %s: %s", limit.Quote(c.user), limit.Quote(a.Error))
	case jerr == nil && (a.ErrorCode != "" || a.Error != ""):
		return "", errs.Errorf(errs.Unauthenticated, "", "engine SSO refused the login of %s: %s: %s", limit.Quote(c.user), limit.Quote(a.ErrorCode), limit.Quote(a.Error))
	}
	return "", errs.Errorf(errs.Unavailable, "", "engine SSO answered %d without a token", resp.StatusCode)
}

// logout revokes the current token at the engine's SSO (go-ovirt's
// Connection.Close sends an empty token and so revokes nothing).
func (c *conn) logout(ctx context.Context) error {
	t := c.session.Take()
	if t == "" {
		return nil
	}
	form := url.Values{"token": {t}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/ovirt-engine/services/sso-logout", strings.NewReader(form.Encode()))
	if err != nil {
		return errs.New(errs.Internal, "", "logout request")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportErr(ctx, err, false)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errs.Errorf(errs.Unavailable, "", "engine SSO logout answered %d", resp.StatusCode)
	}
	return nil
}

// request is one API call.
type request struct {
	method string
	path   string // under the API path, "/vms/{id}"
	query  url.Values
	body   []byte // XML, nil for none
}

// mutates reports whether the call may change the engine's state.
func (r request) mutates() bool { return r.method != http.MethodGet && r.method != http.MethodHead }

// do sends r with the shared token. A 401 (the engine's HTML page for an
// unknown, revoked or expired token) drops the token, logs in again and
// resends once: a refused request did nothing. The answer's body is
// returned for 2xx; other answers become *errs.Error values.
func (c *conn) do(ctx context.Context, r request) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.session.Token(ctx, c.login)
		if err != nil {
			return nil, err
		}
		status, body, err := c.send(ctx, r, tok)
		if err != nil {
			return nil, err
		}
		if status == http.StatusUnauthorized {
			c.session.Drop(tok)
			if attempt == 0 {
				continue
			}
			return nil, errs.New(errs.Unauthenticated, "", "engine refused a fresh token")
		}
		if status >= 200 && status < 300 {
			return body, nil
		}
		return nil, statusErr(r, status, body)
	}
}

func (c *conn) send(ctx context.Context, r request, tok string) (int, []byte, error) {
	u := c.api + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return 0, nil, errs.New(errs.Internal, "", "request could not be built")
	}
	req.Header.Set("Version", "4")
	req.Header.Set("Accept", "application/xml")
	req.Header.Set("Authorization", "Bearer "+tok)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/xml")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, transportErr(ctx, err, r.mutates())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, transportErr(ctx, err, r.mutates())
	}
	return resp.StatusCode, body, nil
}

// transportErr maps a failed round trip: the context's own code; a
// refused certificate PermissionDenied; a connection that was never made
// is Unavailable; a lost answer to a call
// that changes state is OutcomeUnknown (the engine may have done it).
func transportErr(ctx context.Context, err error, mutates bool) error {
	if ctx.Err() != nil {
		return errs.FromContext(ctx, "")
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return errs.New(errs.Unavailable, "", "engine unreachable: "+limit.Quote(op.Err.Error()))
	}
	if certerr.Refused(err) {
		// Retrying cannot make the certificate trusted: PermissionDenied,
		// as the other TLS drivers say. Nothing was sent.
		return errs.New(errs.PermissionDenied, "", "engine certificate not trusted: give Options.CACertPEM (the engine CA from its pki-resource URL)")
	}
	if mutates {
		return errs.New(errs.OutcomeUnknown, "", "connection to the engine lost before its answer: the change may have happened")
	}
	return errs.New(errs.Unavailable, "", "connection to the engine lost")
}

// fault is the engine's <fault><reason/><detail/></fault>.
type fault struct {
	Reason string `xml:"reason"`
	Detail string `xml:"detail"`
}

// Texts of the engine's retryable refusals.
const (
	textLocked     = "is locked" // "VM is locked", "Template is locked"
	textInProgress = "Related operation is currently in progress"
)

// statusErr maps a non-2xx answer to an errs code. The engine's refusals
// "VM is locked" and "Related operation is currently in progress" are
// Unavailable: the engine did nothing and a retry later may pass.
func statusErr(r request, status int, body []byte) error {
	var f fault
	if len(body) > 0 && bytes.HasPrefix(bytes.TrimSpace(body), []byte("<")) {
		_ = xml.Unmarshal(body, &f)
	}
	msg := strings.TrimSpace(f.Detail)
	if msg == "" {
		msg = strings.TrimSpace(f.Reason)
	}
	what := r.method + " " + limit.Quote(r.path)
	detail := ""
	if msg != "" {
		detail = ": " + limit.Quote(strings.Trim(msg, "[]"))
	}
	code := errs.Unknown
	switch {
	case status == http.StatusNotFound:
		code = errs.NotFound
	case status == http.StatusForbidden:
		code = errs.PermissionDenied
	case strings.Contains(msg, textLocked) || strings.Contains(msg, textInProgress):
		code = errs.Unavailable
	case status == http.StatusConflict && strings.Contains(strings.ToLower(msg), "name") && strings.Contains(strings.ToLower(msg), "in use"):
		code = errs.AlreadyExists
	case status == http.StatusConflict:
		code = errs.FailedPrecondition
	case status == http.StatusBadRequest:
		code = errs.InvalidArgument
	case status == http.StatusServiceUnavailable || status == http.StatusBadGateway:
		// The proxy answers while the engine is down: nothing was done.
		code = errs.Unavailable
	case status >= 500 && r.mutates():
		code = errs.OutcomeUnknown
	case status >= 500:
		code = errs.Unavailable
	}
	return errs.Errorf(code, "", "engine answered %d to %s%s", status, what, detail)
}

// readXML reads the first element of body with one of go-ovirt's
// exported readers. The start element is found here: go-ovirt's
// FindStartElement prints to standard output when there is none.
func readXML[T any](body []byte, read func(*ovirtsdk.XMLReader, *xml.StartElement) (T, error)) (T, error) {
	var zero T
	r := ovirtsdk.NewXMLReader(body)
	for {
		tok, err := r.Token()
		if err != nil {
			return zero, errs.New(errs.Internal, "", "engine answer is not XML")
		}
		if st, ok := tok.(xml.StartElement); ok {
			st = xml.CopyToken(st).(xml.StartElement)
			v, err := read(r, &st)
			if err != nil {
				return zero, errs.New(errs.Internal, "", "engine answer does not parse: "+limit.Quote(err.Error()))
			}
			return v, nil
		}
	}
}

// writeXML renders v with one of go-ovirt's exported writers.
func writeXML[T any](v T, tag string, write func(*ovirtsdk.XMLWriter, T, string) error) ([]byte, error) {
	var b bytes.Buffer
	w := ovirtsdk.NewXMLWriter(&b)
	if err := write(w, v, tag); err != nil {
		return nil, errs.New(errs.Internal, "", "request does not render: "+limit.Quote(err.Error()))
	}
	if err := w.Flush(); err != nil {
		return nil, errs.New(errs.Internal, "", "request does not render")
	}
	return b.Bytes(), nil
}

// parseEngineURL splits the engine's API URL
// ("https://engine.example/ovirt-engine/api") into its base and API path.
func parseEngineURL(raw string) (base, apiPath string, err error) {
	u, perr := url.Parse(raw)
	if perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return "", "", errs.New(errs.InvalidArgument, op+".New", "engine URL must be https://HOST/ovirt-engine/api")
	}
	p := strings.TrimRight(u.Path, "/")
	if p == "" {
		p = "/ovirt-engine/api"
	}
	return u.Scheme + "://" + u.Host, p, nil
}
