package vcd

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmware/go-vcloud-director/v2/types/v56"
)

// appProfile is an NSX-T application port profile; ctx is the VDC or
// gateway URN a TENANT profile belongs to.
type appProfile struct {
	p   *types.NsxtAppPortProfile
	org *org // nil for SYSTEM profiles
}

func (st *state) seedAppProfiles() {
	for _, x := range []struct {
		name, proto, port string
	}{{"SSH", "TCP", "22"}, {"RDP", "TCP", "3389"}, {"HTTP", "TCP", "80"}, {"HTTPS", "TCP", "443"}} {
		st.appProfiles = append(st.appProfiles, &appProfile{p: &types.NsxtAppPortProfile{
			ID: "urn:vcloud:applicationPortProfile:" + uuidFromName("app", x.name), Name: x.name, Scope: "SYSTEM",
			ApplicationPorts: []types.NsxtAppPortProfilePort{{Protocol: x.proto, DestinationPorts: []string{x.port}}},
		}})
	}
}

func (st *state) appProfileByID(id string) *appProfile {
	for _, a := range st.appProfiles {
		if a.p.ID == id {
			return a
		}
	}
	return nil
}

var contextFilter = regexp.MustCompile(`(^|[;,])_context==([^;,)]*)`)

// handleAppProfiles serves /cloudapi/1.0.0/applicationPortProfiles: GET
// (list; filter on name, scope, and the _context==VDC-or-gateway-id
// pseudo-key), POST (TENANT scope; 202 + task whose Owner is the new
// profile), GET/DELETE /{id} (refused while a NAT or firewall rule uses it).
func (s *Server) handleAppProfiles(w http.ResponseWriter, r *http.Request, ses *session, segs []string) {
	st := s.st
	visible := func(a *appProfile) bool { return a.org == nil || canSee(ses, a.org) }
	if len(segs) == 0 {
		switch r.Method {
		case http.MethodGet:
			ctx := ""
			q := r.URL.Query()
			if f := q.Get("filter"); f != "" {
				if m := contextFilter.FindStringSubmatch(f); m != nil {
					ctx = m[2]
					f = strings.TrimPrefix(contextFilter.ReplaceAllString(f, "$1"), ";")
					f = strings.TrimSuffix(strings.ReplaceAll(f, ";;", ";"), ";")
					q.Set("filter", f)
					if f == "" {
						q.Del("filter")
					}
					r.URL.RawQuery = q.Encode()
				}
			}
			var items []any
			for _, a := range st.appProfiles {
				if !visible(a) {
					continue
				}
				if ctx != "" && a.p.Scope == "TENANT" && a.p.ContextEntityId != ctx && !st.sameContext(a.p.ContextEntityId, ctx) {
					continue
				}
				items = append(items, a.p)
			}
			s.writePage(w, r, items, nil)
		case http.MethodPost:
			var p types.NsxtAppPortProfile
			if e := readJSON(r, &p); e != nil {
				writeJSONError(w, e)
				return
			}
			if e := st.validAppProfile(&p, ses); e != nil {
				writeJSONError(w, e)
				return
			}
			p.ID = "urn:vcloud:applicationPortProfile:" + newUUID()
			p.OrgRef = &types.OpenApiReference{Name: ses.org.name, ID: "urn:vcloud:org:" + ses.org.id}
			a := &appProfile{p: &p, org: ses.org}
			t := st.newTask("applicationPortProfileCreate", "Creating application port profile "+p.Name,
				types.Reference{ID: p.ID, Name: p.Name}, ses, func() *apiError {
					st.appProfiles = append(st.appProfiles, a)
					return nil
				}, nil)
			w.Header().Set("Location", st.href("task/"+t.id))
			w.WriteHeader(http.StatusAccepted)
		default:
			writeJSONError(w, methodNotAllowed())
		}
		return
	}
	a := st.appProfileByID(segs[0])
	if a == nil || !visible(a) {
		writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "[%s] does not exist or you do not have permission to access it.", segs[0]))
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, 200, a.p)
	case http.MethodDelete:
		if a.p.Scope != "TENANT" {
			writeJSONError(w, newErr(403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "System application port profiles cannot be deleted."))
			return
		}
		if user := st.profileUser(a.p.ID); user != "" {
			writeJSONError(w, newErr(400, "BAD_REQUEST", "Application port profile %s is in use by %s.", a.p.Name, user))
			return
		}
		t := st.newTask("applicationPortProfileDelete", "Deleting application port profile "+a.p.Name,
			types.Reference{ID: a.p.ID, Name: a.p.Name}, ses, func() *apiError {
				for i, x := range st.appProfiles {
					if x == a {
						st.appProfiles = append(st.appProfiles[:i:i], st.appProfiles[i+1:]...)
					}
				}
				return nil
			}, nil)
		w.Header().Set("Location", st.href("task/"+t.id))
		w.WriteHeader(http.StatusAccepted)
	default:
		writeJSONError(w, methodNotAllowed())
	}
}

// sameContext: a profile made for a VDC is usable on that VDC's gateways.
func (st *state) sameContext(profileCtx, ctx string) bool {
	for _, g := range st.gateways {
		vdcURN := "urn:vcloud:vdc:" + g.vdc.id
		if (profileCtx == vdcURN && ctx == g.urn()) || (profileCtx == g.urn() && ctx == vdcURN) {
			return true
		}
	}
	return false
}

func (st *state) validAppProfile(p *types.NsxtAppPortProfile, ses *session) *apiError {
	if p.Name == "" {
		return newErr(400, "BAD_REQUEST", "Application port profile name is required.")
	}
	if p.Scope == "" {
		p.Scope = "TENANT"
	}
	if p.Scope != "TENANT" {
		return newErr(403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "Only TENANT application port profiles can be created here.")
	}
	if p.ContextEntityId == "" {
		return newErr(400, "BAD_REQUEST", "A TENANT application port profile needs contextEntityId (a VDC or edge gateway).")
	}
	ok := false
	for _, g := range st.gateways {
		if canSee(ses, g.vdc.org) && (p.ContextEntityId == g.urn() || p.ContextEntityId == "urn:vcloud:vdc:"+g.vdc.id) {
			ok = true
		}
	}
	if !ok {
		return newErr(400, "BAD_REQUEST", "Invalid contextEntityId %s.", p.ContextEntityId)
	}
	if len(p.ApplicationPorts) == 0 {
		return newErr(400, "BAD_REQUEST", "An application port profile needs at least one application port.")
	}
	for _, ap := range p.ApplicationPorts {
		switch ap.Protocol {
		case "TCP", "UDP":
			if len(ap.DestinationPorts) == 0 {
				return newErr(400, "BAD_REQUEST", "Destination ports are required for protocol %s.", ap.Protocol)
			}
			for _, port := range ap.DestinationPorts {
				if !validPortSpec(port) {
					return newErr(400, "BAD_REQUEST", "Invalid destination port %q.", port)
				}
			}
		case "ICMPv4", "ICMPv6":
		default:
			return newErr(400, "BAD_REQUEST", "Invalid protocol %q.", ap.Protocol)
		}
	}
	for _, a := range st.appProfiles {
		if a.p.Scope == "TENANT" && a.p.Name == p.Name && a.p.ContextEntityId == p.ContextEntityId {
			return newErr(400, "DUPLICATE_NAME", "An application port profile named %s already exists.", p.Name)
		}
	}
	return nil
}

// validPortSpec accepts "N" and "N-M" with 1 <= N <= M <= 65535.
func validPortSpec(s string) bool {
	lo, hi, rng := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 || a > 65535 {
		return false
	}
	if !rng {
		return true
	}
	b, err := strconv.Atoi(hi)
	return err == nil && b >= a && b <= 65535
}

// profileUser names a rule that refers to the profile, or "".
func (st *state) profileUser(id string) string {
	for _, g := range st.gateways {
		for _, n := range g.nat {
			if n.ApplicationPortProfile != nil && n.ApplicationPortProfile.ID == id {
				return "NAT rule " + n.Name
			}
		}
		for _, f := range g.fw {
			for _, ref := range f.ApplicationPortProfiles {
				if ref.ID == id {
					return "firewall rule " + f.Name
				}
			}
		}
	}
	return ""
}
