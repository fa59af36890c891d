package vcd

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
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/certerr"
	"github.com/managedvm/managedvm/internal/httpapi"
	"github.com/managedvm/managedvm/internal/limit"
)

// APIVersion is the vCloud API version the driver speaks (VCD 10.4 and
// later serve it).
const APIVersion = "37.0"

// maxBody bounds one answer (a query page of 128 VM records is far below).
const maxBody = 32 << 20

// Credentials log the driver in. Either User and Password, or APIToken
// (a VCD API token, exchanged at /oauth for an access token), is
// required. Org "System" logs in as a provider (system administrator).
type Credentials struct {
	Org      string
	User     string
	Password guest.Secret
	APIToken guest.Secret
}

func (c Credentials) provider() bool { return strings.EqualFold(c.Org, "System") }

// APIError is an error answer of VCD: the HTTP status, the
// minorErrorCode (BUSY_ENTITY, DUPLICATE_NAME, ...) and the message, as
// /api (XML Error) and /cloudapi (JSON) send them. Driver errors wrap it:
// errors.As reaches it. The message is quoted with limit.Quote.
type APIError struct {
	Status  int
	Minor   string
	Message string
}

func (e *APIError) Error() string {
	s := "VCD answered " + strconv.Itoa(e.Status)
	if e.Minor != "" {
		s += " " + limit.Quote(e.Minor)
	}
	if e.Message != "" {
		s += ": " + limit.Quote(e.Message)
	}
	return s
}

// Busy reports whether the answer is VCD's BUSY_ENTITY: the entity (a
// vApp, an edge gateway) is completing another operation; nothing was
// done and a later retry may pass.
func (e *APIError) Busy() bool {
	return e.Minor == "BUSY_ENTITY" || strings.Contains(e.Message, "is busy completing an operation")
}

// isBusy reports whether err holds a BUSY_ENTITY answer.
func isBusy(err error) bool {
	var a *APIError
	return errors.As(err, &a) && a.Busy()
}

// conn is the VCD connection: one keep-alive, context-aware HTTP client
// and one session token shared by every call, renewed when VCD refuses
// it (401) and deleted by logout.
type conn struct {
	base    string // scheme://host[:port]
	hc      *http.Client
	cred    Credentials
	reqID   atomic.Uint64
	session *httpapi.Session
}

func newConn(base string, hc *http.Client, cred Credentials) *conn {
	return &conn{base: base, hc: hc, cred: cred, session: httpapi.NewSession()}
}

// parseEndpoint accepts "https://vcd.example", with or without "/api"
// or "/cloudapi".
func parseEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return "", errs.New(errs.InvalidArgument, "", "endpoint must be https://HOST (the VCD public URL)")
	}
	p := strings.TrimRight(u.Path, "/")
	if p != "" && p != "/api" && p != "/cloudapi" {
		return "", errs.New(errs.InvalidArgument, "", "endpoint must be https://HOST, HOST/api or HOST/cloudapi")
	}
	return u.Scheme + "://" + u.Host, nil
}

// supportedVersions reads GET /api/versions (no login needed): the
// versions VCD serves and whether each is deprecated.
func (c *conn) supportedVersions(ctx context.Context) (map[string]bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/versions", nil)
	if err != nil {
		return nil, errs.New(errs.Internal, "", "request could not be built")
	}
	req.Header.Set("Accept", "application/*+xml")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportErr(ctx, err, false)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, transportErr(ctx, err, false)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusErr(http.MethodGet, "/api/versions", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var sv struct {
		Infos []struct {
			Deprecated bool   `xml:"deprecated,attr"`
			Version    string `xml:"Version"`
		} `xml:"VersionInfo"`
	}
	if err := xml.Unmarshal(body, &sv); err != nil || len(sv.Infos) == 0 {
		return nil, errs.New(errs.Unavailable, "", "GET /api/versions is not VCD's SupportedVersions document")
	}
	out := make(map[string]bool, len(sv.Infos))
	for _, v := range sv.Infos {
		out[v.Version] = v.Deprecated
	}
	return out, nil
}

// login opens a session: POST /cloudapi/1.0.0/sessions (or
// /sessions/provider for org System) with Basic user@org, the token in
// X-VMWARE-VCLOUD-ACCESS-TOKEN; or, with an API token, POST
// /oauth/tenant/{org}/token (/oauth/provider/token) with
// grant_type=refresh_token. Secrets go only in the request.
func (c *conn) login(ctx context.Context) (string, error) {
	var req *http.Request
	var err error
	if !c.cred.APIToken.IsZero() {
		p := "/oauth/tenant/" + url.PathEscape(c.cred.Org) + "/token"
		if c.cred.provider() {
			p = "/oauth/provider/token"
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.cred.APIToken.Reveal()}}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.base+p, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
		}
	} else {
		p := "/cloudapi/1.0.0/sessions"
		if c.cred.provider() {
			p += "/provider"
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.base+p, nil)
		if err == nil {
			req.SetBasicAuth(c.cred.User+"@"+c.cred.Org, c.cred.Password.Reveal())
			req.Header.Set("Accept", "application/json;version="+APIVersion)
		}
	}
	if err != nil {
		return "", errs.New(errs.Internal, "", "login request could not be built")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", transportErr(ctx, err, false) // a login changes nothing
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", transportErr(ctx, err, false)
	}
	who := limit.Quote(c.cred.User + "@" + c.cred.Org)
	if !c.cred.APIToken.IsZero() {
		who = "API token of org " + limit.Quote(c.cred.Org)
		var a struct {
			AccessToken string `json:"access_token"`
			Error       string `json:"error"`
		}
		jerr := json.Unmarshal(body, &a)
		switch {
		case resp.StatusCode == http.StatusOK && jerr == nil && a.AccessToken != "":
			return a.AccessToken, nil
		case resp.StatusCode >= 500:
			return "", errs.Errorf(errs.Unavailable, "", "VCD answered %d to the login of the %s", resp.StatusCode, who)
		case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized:
			return "", errs.Errorf(errs.Unauthenticated, "", "VCD refused the %s: %s", who, limit.Quote(a.Error))
		}
		return "", errs.Errorf(errs.Unavailable, "", "VCD answered %d to the login of the %s without a token", resp.StatusCode, who)
	}
	switch t := resp.Header.Get("X-Vmware-Vcloud-Access-Token"); {
	case resp.StatusCode == http.StatusOK && t != "":
		return t, nil
	case resp.StatusCode == http.StatusUnauthorized:
		return "", errs.Errorf(errs.Unauthenticated, "", "VCD refused the login of %s", who)
	case resp.StatusCode == http.StatusNotAcceptable:
		return "", errs.Errorf(errs.FailedPrecondition, "", "VCD does not serve API version %s (VCD 10.4 or later needed)", APIVersion)
	case resp.StatusCode >= 400:
		return "", statusErr(http.MethodPost, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return "", errs.Errorf(errs.Unavailable, "", "VCD answered %d to the login of %s without a token", resp.StatusCode, who)
}

// logout deletes the session (DELETE /cloudapi/1.0.0/sessions/current).
func (c *conn) logout(ctx context.Context) error {
	t := c.session.Take()
	if t == "" {
		return nil
	}
	status, _, _, err := c.send(ctx, request{method: http.MethodDelete, path: "/cloudapi/1.0.0/sessions/current"}, t)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent && status != http.StatusOK && status != http.StatusUnauthorized {
		return errs.Errorf(errs.Unavailable, "", "VCD answered %d to the logout", status)
	}
	return nil
}

// request is one API call.
type request struct {
	method string
	path   string // "/api/..." or "/cloudapi/..."
	query  url.Values
	// filter is a FIQL filter for /api/query whose values are already
	// URL-encoded (fiqlValue): it is sent with filterEncoded=true and
	// its separators raw, as VCD reads it.
	filter string
	body   []byte
	ctype  string // Content-Type of body
}

func (r request) mutates() bool { return r.method != http.MethodGet && r.method != http.MethodHead }

func (r request) cloudAPI() bool { return strings.HasPrefix(r.path, "/cloudapi/") }

// answer is a 2xx answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends r with the shared token. A 401 drops the token, logs in again
// and resends once: a refused request did nothing. Other non-2xx answers
// become *errs.Error values wrapping an *APIError.
func (c *conn) do(ctx context.Context, r request) (answer, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.session.Token(ctx, c.login)
		if err != nil {
			return answer{}, err
		}
		status, hdr, body, err := c.send(ctx, r, tok)
		if err != nil {
			return answer{}, err
		}
		if status == http.StatusUnauthorized {
			c.session.Drop(tok)
			if attempt == 0 {
				continue
			}
			return answer{}, errs.New(errs.Unauthenticated, "", "VCD refused a fresh session token")
		}
		if status >= 200 && status < 300 {
			return answer{status: status, header: hdr, body: body}, nil
		}
		return answer{}, statusErr(r.method, r.path, status, hdr.Get("Content-Type"), body)
	}
}

func (c *conn) send(ctx context.Context, r request, tok string) (int, http.Header, []byte, error) {
	u := r.path
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		u = c.base + u
	} else if !strings.HasPrefix(u, c.base+"/") {
		// An href or Location of another host: the token goes nowhere
		// but to the endpoint.
		return 0, nil, nil, errs.Errorf(errs.FailedPrecondition, "", "VCD linked to %s, outside the endpoint %s: check the public URL settings of VCD", limit.Quote(pathHost(u)), limit.Quote(c.base))
	}
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	if r.filter != "" {
		sep := "?"
		if len(r.query) > 0 {
			sep = "&"
		}
		u += sep + "filterEncoded=true&filter=" + r.filter
	}
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return 0, nil, nil, errs.New(errs.Internal, "", "request could not be built")
	}
	if r.cloudAPI() {
		req.Header.Set("Accept", "application/json;version="+APIVersion)
	} else {
		req.Header.Set("Accept", "application/*+xml;version="+APIVersion)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-VMWARE-VCLOUD-CLIENT-REQUEST-ID", "managedvm-"+strconv.FormatUint(c.reqID.Add(1), 10))
	if r.body != nil {
		req.Header.Set("Content-Type", r.ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, transportErr(ctx, err, r.mutates())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, transportErr(ctx, err, r.mutates())
	}
	return resp.StatusCode, resp.Header, body, nil
}

// getXML reads an /api object into v.
func (c *conn) getXML(ctx context.Context, path string, q url.Values, v any) error {
	return c.getXMLFiltered(ctx, path, q, "", v)
}

// getXMLFiltered is getXML with a FIQL filter (see request.filter).
func (c *conn) getXMLFiltered(ctx context.Context, path string, q url.Values, filter string, v any) error {
	a, err := c.do(ctx, request{method: http.MethodGet, path: path, query: q, filter: filter})
	if err != nil {
		return err
	}
	if err := xml.Unmarshal(a.body, v); err != nil {
		return errs.Errorf(errs.Internal, "", "GET %s: the answer does not parse", limit.Quote(path))
	}
	return nil
}

// getJSON reads a /cloudapi object into v.
func (c *conn) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	a, err := c.do(ctx, request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		return errs.Errorf(errs.Internal, "", "GET %s: the answer does not parse", limit.Quote(path))
	}
	return nil
}

// transportErr maps a failed round trip: the context's own code; a
// refused certificate PermissionDenied; no connection Unavailable; a
// lost answer to a change OutcomeUnknown.
func transportErr(ctx context.Context, err error, mutates bool) error {
	if ctx.Err() != nil {
		return errs.FromContext(ctx, "")
	}
	if certerr.Refused(err) {
		return errs.New(errs.PermissionDenied, "", "VCD certificate not trusted: give Options.CACertPEM or Options.RootCAs")
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return errs.New(errs.Unavailable, "", "VCD unreachable: "+limit.Quote(op.Err.Error()))
	}
	if mutates {
		return errs.New(errs.OutcomeUnknown, "", "connection to VCD lost before its answer: the change may have happened")
	}
	return errs.New(errs.Unavailable, "", "connection to VCD lost")
}

// statusErr maps a non-2xx answer to an errs code, keeping VCD's minor
// code and message in an *APIError.
//
//   - BUSY_ENTITY (any status): Unavailable, nothing was done;
//   - 403 ACCESS_TO_RESOURCE_IS_FORBIDDEN on an /api object: NotFound,
//     VCD's answer for an object that does not exist or that the user
//     cannot see (on /api/query it is a refused query type);
//     other 403: PermissionDenied; 404: NotFound;
//   - DUPLICATE_NAME: AlreadyExists; 400: InvalidArgument; 409:
//     FailedPrecondition; 406: FailedPrecondition (API version);
//   - 502/503/504: Unavailable; other 5xx OutcomeUnknown for a change,
//     else Unavailable.
func statusErr(method, path string, status int, ctype string, body []byte) error {
	a := &APIError{Status: status}
	b := bytes.TrimSpace(body)
	switch {
	case bytes.HasPrefix(b, []byte("<")):
		var e struct {
			Minor   string `xml:"minorErrorCode,attr"`
			Message string `xml:"message,attr"`
		}
		if xml.Unmarshal(b, &e) == nil {
			a.Minor, a.Message = e.Minor, e.Message
		}
	case bytes.HasPrefix(b, []byte("{")):
		var e struct {
			Minor   string `json:"minorErrorCode"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) == nil {
			a.Minor, a.Message = e.Minor, e.Message
		}
	}
	a.Message = trimRequestID(a.Message)
	_ = ctype
	mut := method != http.MethodGet && method != http.MethodHead
	code := errs.Unknown
	switch {
	case a.Busy():
		code = errs.Unavailable
	case status == http.StatusForbidden && a.Minor == "ACCESS_TO_RESOURCE_IS_FORBIDDEN" && !strings.HasPrefix(path, "/cloudapi/") && pathOnly(path) != "/api/query":
		code = errs.NotFound
	case status == http.StatusForbidden:
		code = errs.PermissionDenied
	case status == http.StatusNotFound:
		code = errs.NotFound
	case status == http.StatusUnauthorized:
		code = errs.Unauthenticated
	case a.Minor == "DUPLICATE_NAME":
		code = errs.AlreadyExists
	case status == http.StatusBadRequest:
		code = errs.InvalidArgument
	case status == http.StatusConflict, status == http.StatusNotAcceptable:
		code = errs.FailedPrecondition
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		code = errs.Unavailable
	case status >= 500 && mut:
		code = errs.OutcomeUnknown
	case status >= 500:
		code = errs.Unavailable
	}
	return errs.Errorf(code, "", "%s %s: %w", method, limit.Quote(pathOnly(path)), a)
}

// trimRequestID removes VCD's "[ request-id ] " prefix.
func trimRequestID(m string) string {
	if strings.HasPrefix(m, "[ ") {
		if i := strings.Index(m, " ] "); i > 0 {
			return m[i+3:]
		}
	}
	return m
}

func pathHost(p string) string {
	if u, err := url.Parse(p); err == nil {
		return u.Scheme + "://" + u.Host
	}
	return "?"
}

func pathOnly(p string) string {
	if u, err := url.Parse(p); err == nil && u.Host != "" {
		return u.Path
	}
	return p
}

// sortedKeys returns m's keys in order.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
