package main

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticRoot embed.FS

var staticFS = func() fs.FS { return staticRoot }()

var pages = template.Must(template.New("").ParseFS(templateFS, "templates/*.html"))

// page is what every template sees.
type page struct {
	Title   string
	Session *pageSession
	CSRF    string
	Error   string
	Demo    bool

	Devices   []Device
	Device    *Device
	Query     deviceQuery
	RawQuery  string
	Providers []string
	States    []string
	Columns   []column
	Profiles  []string

	CanEnroll, CanUnenroll bool
	Op                     *opView
	Rows                   []preflightRow
	Flows                  any
	Audit                  []AuditEntry
}

type pageSession struct{ User, Role string }

type column struct{ Label, Href, Arrow string }

func (s *server) portalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginPost)
	mux.Handle("POST /logout", s.authed(s.csrf(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.sessions.destroy(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	}))))
	mux.Handle("GET /{$}", s.authed(http.RedirectHandler("/devices", http.StatusSeeOther)))
	mux.Handle("GET /devices", s.authed(http.HandlerFunc(s.devicesPage)))
	mux.Handle("GET /devices/rows", s.authed(http.HandlerFunc(s.devicesRows)))
	mux.Handle("GET /devices/{provider}/{id}", s.authed(http.HandlerFunc(s.devicePage)))
	mux.Handle("GET /devices/{provider}/{id}/rdp", s.authed(http.HandlerFunc(s.rdpFile)))
	mux.Handle("POST /devices/{provider}/{id}/enroll", s.authed(s.csrf(s.operator(http.HandlerFunc(s.formStart("enroll"))))))
	mux.Handle("POST /devices/{provider}/{id}/unenroll", s.authed(s.csrf(s.operator(http.HandlerFunc(s.formStart("unenroll"))))))
	mux.Handle("GET /ops/{op}", s.authed(http.HandlerFunc(s.opPage)))
	mux.Handle("GET /preflight", s.authed(http.HandlerFunc(s.preflightPage)))
	mux.Handle("GET /netreq", s.authed(http.HandlerFunc(s.netreqPage)))
	mux.Handle("GET /audit", s.authed(http.HandlerFunc(s.auditPage)))
}

// render writes a page; the whole page is rendered first, so a template
// error is a 500, not half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if ss := sessionOf(r); ss != nil {
		p.Session = &pageSession{User: ss.user, Role: string(ss.role)}
		if p.CSRF == "" {
			p.CSRF = ss.csrf
		}
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, p); err != nil {
		s.log.Error("template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *server) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	s.render(w, r, httpStatus(err), "error.html", &page{Title: "Error", Error: err.Error()})
}

const loginCookie = "mvm_login"

// loginPage sets a login CSRF token (double-submit cookie: there is no
// session yet).
func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, "")
}

func (s *server) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := randomToken(24)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	s.render(w, r, status, "login.html", &page{Title: "Log in", CSRF: tok, Error: msg, Demo: s.demo != nil})
}

func (s *server) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	c, err := r.Cookie(loginCookie)
	if err != nil || !validCSRF(c.Value, r.PostFormValue("csrf")) || !sameOrigin(r) {
		s.log.Warn("login refused: CSRF token missing or wrong", "client", clientAddr(r))
		s.renderLogin(w, r, http.StatusForbidden, "The form's security token is missing or stale: try again.")
		return
	}
	if _, err := s.login(w, r, r.PostFormValue("user"), r.PostFormValue("password")); err != nil {
		msg := "Wrong user name or password."
		switch errs.CodeOf(err) {
		case errs.ResourceExhausted:
			msg = "Too many failed logins: wait a few minutes."
		case errs.PermissionDenied:
			msg = "The directory's certificate was refused: ask an administrator to check ldap.ca_file."
			if errors.Is(err, errNoGroup) {
				msg = "You are in none of the portal's groups."
			}
		case errs.Unavailable:
			msg = "The directory cannot be reached: try again later."
		}
		s.renderLogin(w, r, httpStatus(err), msg)
		return
	}
	http.Redirect(w, r, "/devices", http.StatusSeeOther)
}

var allStates = []string{string(cmdb.Available), string(cmdb.Enrolling), string(cmdb.Enrolled), string(cmdb.Unenrolling), string(cmdb.Failed)}

// sortKeys are the Devices columns one can sort by.
var sortKeys = []struct{ key, label string }{
	{"provider", "Provider"}, {"name", "Name"}, {"power", "Power"}, {"os", "OS"},
	{"local_ip", "Local IP"}, {"state", "State"}, {"public_ip", "Public IP"}, {"changed", "Last change"},
}

func (s *server) devicesPage(w http.ResponseWriter, r *http.Request) {
	q := queryOf(r)
	devs, err := s.devices(r.Context(), q)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	p := &page{Title: "Devices", Devices: devs, Query: q, RawQuery: r.URL.RawQuery, Providers: s.stack.ProviderNames(), States: allStates}
	for _, k := range sortKeys {
		v := r.URL.Query()
		v.Set("sort", k.key)
		v.Del("desc")
		arrow := ""
		if q.Sort == k.key || (q.Sort == "" && k.key == "provider") {
			arrow = " ▲"
			if q.Desc {
				arrow = " ▼"
			} else {
				v.Set("desc", "1")
			}
		}
		p.Columns = append(p.Columns, column{Label: k.label, Href: "/devices?" + v.Encode(), Arrow: arrow})
	}
	s.render(w, r, http.StatusOK, "devices.html", p)
}

// devicesRows is the table body alone, for the page's live updates.
func (s *server) devicesRows(w http.ResponseWriter, r *http.Request) {
	devs, err := s.devices(r.Context(), queryOf(r))
	if err != nil {
		http.Error(w, err.Error(), httpStatus(err))
		return
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "rows", &page{Devices: devs}); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// filterSort applies the search and the sort of the Devices page.
func filterSort(devs []Device, q deviceQuery) []Device {
	if q.Q != "" {
		needle := strings.ToLower(q.Q)
		out := devs[:0:0]
		for _, d := range devs {
			hay := strings.ToLower(strings.Join([]string{d.Name, d.ID, d.LocalIP, d.PublicIP, d.OS, d.Zone}, "\x00"))
			if strings.Contains(hay, needle) {
				out = append(out, d)
			}
		}
		devs = out
	}
	field := func(d Device) string {
		switch q.Sort {
		case "name":
			return d.Name
		case "power":
			return d.Power
		case "os":
			return d.OS
		case "local_ip":
			return sortableIP(d.LocalIP)
		case "state":
			return d.State
		case "public_ip":
			return sortableIP(d.PublicIP)
		case "changed":
			return d.Changed.Format("20060102150405.000000000")
		}
		return d.Provider + "\x00" + d.Name
	}
	// Each key once per device, not once per comparison.
	type keyed struct {
		key string
		d   Device
	}
	ks := make([]keyed, len(devs))
	for i, d := range devs {
		ks[i] = keyed{field(d), d}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		c := cmp.Compare(a.key, b.key)
		if q.Desc {
			return -c
		}
		return c
	})
	out := make([]Device, len(ks))
	for i, k := range ks {
		out[i] = k.d
	}
	return out
}

// sortableIP pads IPv4 octets so addresses sort numerically as strings.
func sortableIP(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	b := a.As16()
	return string(b[:])
}

func (s *server) devicePage(w http.ResponseWriter, r *http.Request) {
	d, err := s.device(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	ss := sessionOf(r)
	p := &page{Title: d.Name, Device: &d, Profiles: sortedKeys(s.stack.Profiles)}
	if ss.role == Operator {
		p.CanEnroll = d.State == string(cmdb.Available) || d.State == string(cmdb.Failed)
		p.CanUnenroll = d.State == string(cmdb.Enrolled) || d.State == string(cmdb.Failed)
	}
	s.render(w, r, http.StatusOK, "device.html", p)
}

// rdpFile is a Remote Desktop connection file for an enrolled VM's public
// address.
func (s *server) rdpFile(w http.ResponseWriter, r *http.Request) {
	d, err := s.device(r)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	var addr string
	if d.Access != nil {
		for _, ep := range d.Access.Endpoints {
			if ep.Protocol == "rdp" {
				addr = ep.Address
			}
		}
	}
	if addr == "" {
		s.errorPage(w, r, errs.New(errs.FailedPrecondition, "", "this VM has no RDP endpoint"))
		return
	}
	w.Header().Set("Content-Type", "application/x-rdp")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", url.PathEscape(d.Name)+".rdp"))
	fmt.Fprintf(w, "full address:s:%s\r\nprompt for credentials:i:1\r\nauthentication level:i:2\r\n", addr)
}

// formStart starts an enrollment or unenrollment from the device page and
// sends the browser to the operation's page.
func (s *server) formStart(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in := enrollJSON{User: r.PostFormValue("user"), Password: r.PostFormValue("password"), Profile: r.PostFormValue("profile")}
		o, err := s.start(r, kind, in)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		http.Redirect(w, r, "/ops/"+o.ID, http.StatusSeeOther)
	}
}

func (s *server) opPage(w http.ResponseWriter, r *http.Request) {
	o := s.hub.op(r.PathValue("op"))
	if o == nil {
		s.errorPage(w, r, errs.New(errs.NotFound, "", "no such operation"))
		return
	}
	v := o.view()
	title := strings.ToUpper(v.Kind[:1]) + v.Kind[1:] + " " + v.Device.Name
	s.render(w, r, http.StatusOK, "op.html", &page{Title: title, Op: &v})
}

func (s *server) preflightPage(w http.ResponseWriter, r *http.Request) {
	rows, err := s.preflight(r.Context())
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "preflight.html", &page{Title: "Preflight", Rows: rows})
}

func (s *server) netreqPage(w http.ResponseWriter, r *http.Request) {
	m, err := s.stack.NetworkRequirements()
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "netreq.html", &page{Title: "Network requirements", Flows: m.Flows})
}

func (s *server) auditPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "audit.html", &page{Title: "Audit", Audit: s.hub.auditTrail()})
}
