package vcd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/go-vcloud-director/v2/types/v56"
)

const cloudapiPrefix = "/cloudapi/1.0.0/"

// gateway is an NSX-T edge gateway.
type gateway struct {
	id, name   string
	vdc        *vdc
	subnet     netip.Prefix // gateway address / prefix length on the provider network
	primary    netip.Addr
	rangeStart netip.Addr
	rangeEnd   netip.Addr
	nat        []*types.NsxtNatRule
	fw         []*types.NsxtFirewallRule
	groups     []*types.NsxtFirewallGroup
	busy       *task
	busyOp     string
}

func (st *state) addGateway(v *vdc, name string, subnet netip.Prefix, primary, start, end netip.Addr) *gateway {
	g := &gateway{id: newUUID(), name: name, vdc: v, subnet: subnet, primary: primary, rangeStart: start, rangeEnd: end}
	st.gateways = append(st.gateways, g)
	return g
}

func (g *gateway) urn() string { return "urn:vcloud:gateway:" + g.id }

func (st *state) gatewayJSON(g *gateway) *types.OpenAPIEdgeGateway {
	total := 0
	for a := g.rangeStart; a.IsValid() && a.Compare(g.rangeEnd) <= 0; a = a.Next() {
		total++
	}
	used := len(st.usedIPs(g))
	f := false
	backing := "NSXT_TIER0"
	return &types.OpenAPIEdgeGateway{
		Status:      "REALIZED",
		ID:          g.urn(),
		Name:        g.name,
		Description: "",
		OwnerRef:    &types.OpenApiReference{Name: g.vdc.name, ID: "urn:vcloud:vdc:" + g.vdc.id},
		OrgVdc:      &types.OpenApiReference{Name: g.vdc.name, ID: "urn:vcloud:vdc:" + g.vdc.id},
		Org:         &types.OpenApiReference{Name: g.vdc.org.name, ID: "urn:vcloud:org:" + g.vdc.org.id},
		EdgeGatewayUplinks: []types.EdgeGatewayUplinks{{
			UplinkID:   "urn:vcloud:network:" + uuidFromName("uplink", g.id),
			UplinkName: "provider-external",
			Subnets: types.OpenAPIEdgeGatewaySubnets{Values: []types.OpenAPIEdgeGatewaySubnetValue{{
				Gateway:      g.subnet.Addr().String(),
				PrefixLength: g.subnet.Bits(),
				IPRanges: &types.OpenApiIPRanges{Values: []types.OpenApiIPRangeValues{{
					StartAddress: g.rangeStart.String(), EndAddress: g.rangeEnd.String(),
				}}},
				Enabled:      true,
				TotalIPCount: &total,
				UsedIPCount:  used,
				PrimaryIP:    g.primary.String(),
			}}},
			Connected:    true,
			Dedicated:    false,
			BackingType:  &backing,
			UsingIpSpace: &f,
		}},
		DistributedRoutingEnabled: &f,
		GatewayBacking: &types.OpenAPIEdgeGatewayBacking{
			BackingID:       uuidFromName("t1", g.id),
			GatewayType:     map[bool]string{true: "NSXV_BACKED", false: "NSXT_BACKED"}[st.opts.NetworkProvider == "NSX_V"],
			NetworkProvider: types.NetworkProvider{Name: "nsxt-manager", ID: "urn:vcloud:nsxtmanager:" + uuidFromName("nsxt")},
		},
		UsingIpSpace: &f,
	}
}

// usedIPs lists the gateway's used addresses: its primary IP and the
// external addresses of its NAT rules.
func (st *state) usedIPs(g *gateway) []types.GatewayUsedIpAddress {
	ref := types.OpenApiReference{Name: "provider-external", ID: "urn:vcloud:network:" + uuidFromName("uplink", g.id)}
	out := []types.GatewayUsedIpAddress{{Category: "PRIMARY_IP", IPAddress: g.primary.String(), NetworkRef: ref}}
	seen := map[string]bool{g.primary.String(): true}
	for _, r := range g.nat {
		if r.ExternalAddresses != "" && !seen[r.ExternalAddresses] {
			seen[r.ExternalAddresses] = true
			out = append(out, types.GatewayUsedIpAddress{Category: "NAT", IPAddress: r.ExternalAddresses, NetworkRef: ref})
		}
	}
	return out
}

// page is the OpenAPI paged list body.
type page struct {
	ResultTotal  int   `json:"resultTotal"`
	PageCount    int   `json:"pageCount"`
	Page         int   `json:"page"`
	PageSize     int   `json:"pageSize"`
	Associations []any `json:"associations"`
	Values       []any `json:"values"`
}

// listParams reads page, pageSize, filter, sortAsc/sortDesc.
type listParams struct {
	page, pageSize int
	filter         filter
	sortKey        string
	desc           bool
}

func (s *Server) openapiListParams(r *http.Request) (listParams, *apiError) {
	q := r.URL.Query()
	lp := listParams{page: 1, pageSize: 25}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return lp, newErr(400, "BAD_REQUEST", "Invalid page number: %s", v)
		}
		lp.page = n
	}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return lp, newErr(400, "BAD_REQUEST", "Invalid page size: %s", v)
		}
		lp.pageSize = n
	}
	if lp.pageSize > s.opts.MaxPageSize {
		lp.pageSize = s.opts.MaxPageSize
	}
	if f := q.Get("filter"); f != "" {
		var dec func(string) (string, error)
		if q.Get("filterEncoded") == "true" {
			dec = url.QueryUnescape
		}
		pf, err := parseFilter(f, dec)
		if err != nil {
			return lp, newErr(400, "BAD_REQUEST", "Invalid filter expression: %s", err)
		}
		lp.filter = pf
	}
	if v := q.Get("sortAsc"); v != "" {
		lp.sortKey = v
	}
	if v := q.Get("sortDesc"); v != "" {
		lp.sortKey, lp.desc = v, true
	}
	return lp, nil
}

// jsonGetter looks dotted keys up in an object's JSON form.
func jsonGetter(v any) func(string) (string, bool) {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return func(key string) (string, bool) {
		var cur any = m
		for _, k := range strings.Split(key, ".") {
			mm, ok := cur.(map[string]any)
			if !ok {
				return "", false
			}
			cur, ok = mm[k]
			if !ok {
				return "", false
			}
		}
		switch x := cur.(type) {
		case string:
			return x, true
		case bool:
			return strconv.FormatBool(x), true
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), true
		case nil:
			return "", false
		}
		return fmt.Sprint(cur), true
	}
}

// writePage filters, sorts and pages items and writes the body with a
// Link header for the next page, as VCD does.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, items []any, getter func(any) func(string) (string, bool)) {
	lp, e := s.openapiListParams(r)
	if e != nil {
		writeJSONError(w, e)
		return
	}
	if getter == nil {
		getter = jsonGetter
	}
	if lp.filter != nil {
		kept := items[:0:0]
		for _, it := range items {
			if lp.filter.match(getter(it)) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if lp.sortKey != "" {
		keys := make([]string, len(items))
		for i, it := range items {
			keys[i], _ = getter(it)(lp.sortKey)
		}
		idx := make([]int, len(items))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool {
			c := compareValues(keys[idx[a]], keys[idx[b]])
			if lp.desc {
				return c > 0
			}
			return c < 0
		})
		sorted := make([]any, len(items))
		for i, j := range idx {
			sorted[i] = items[j]
		}
		items = sorted
	}
	total := len(items)
	pages := (total + lp.pageSize - 1) / lp.pageSize
	if pages == 0 {
		pages = 1
	}
	if lp.page > pages {
		writeJSONError(w, newErr(400, "BAD_REQUEST", "Page number %d is out of range: the list has %d page(s)", lp.page, pages))
		return
	}
	from := (lp.page - 1) * lp.pageSize
	to := min(from+lp.pageSize, total)
	vals := items[from:to]
	if vals == nil {
		vals = []any{}
	}
	if lp.page < pages {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(lp.page+1))
		q.Set("pageSize", strconv.Itoa(lp.pageSize))
		next := s.ts.URL + r.URL.Path + "?" + q.Encode()
		w.Header().Add("Link", "<"+next+">;rel=\"nextPage\";type=\"application/json\";model=\"\"")
	}
	writeJSON(w, 200, page{ResultTotal: total, PageCount: pages, Page: lp.page, PageSize: lp.pageSize, Associations: []any{}, Values: vals})
}

func (s *Server) handleCloudAPI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.advance()
	p := strings.TrimPrefix(r.URL.Path, cloudapiPrefix)
	if p == r.URL.Path {
		writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "Unknown API path %s", r.URL.Path))
		return
	}
	p = strings.TrimSuffix(p, "/")
	if p == "sessions" || strings.HasPrefix(p, "sessions/") {
		s.handleSessions(w, r, strings.TrimPrefix(strings.TrimPrefix(p, "sessions"), "/"))
		return
	}
	ses, e := s.sessionOf(r)
	if e != nil {
		writeJSONError(w, e)
		return
	}
	if v := acceptVersion(r); v != "" && !versionSupported(v) {
		writeJSONError(w, newErr(406, "NOT_ACCEPTABLE", "The request has invalid accept header: Invalid API version requested"))
		return
	}
	segs := strings.Split(p, "/")
	switch {
	case segs[0] == "auditTrail" && len(segs) == 1 && r.Method == http.MethodGet:
		s.listAudit(w, r, ses)
	case segs[0] == "edgeGateways":
		s.handleGateways(w, r, ses, segs[1:])
	case segs[0] == "firewallGroups":
		s.handleFirewallGroups(w, r, ses, segs[1:])
	case segs[0] == "vdcs" && len(segs) == 3 && segs[2] == "capabilities" && r.Method == http.MethodGet:
		v := s.st.vdcByID(uuidOf(segs[1]))
		if v == nil || !canSee(ses, v.org) || !strings.HasPrefix(segs[1], "urn:vcloud:vdc:") {
			writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "[%s] does not exist or you do not have permission to access it.", segs[1]))
			return
		}
		s.writePage(w, r, []any{
			types.VdcCapability{Name: "networkProvider", Description: "Network provider of the VDC", Value: s.opts.NetworkProvider, Type: "String", Category: "General"},
			types.VdcCapability{Name: "vappNetworkRouted", Description: "Routed vApp networks", Value: true, Type: "Boolean", Category: "VappNetwork"},
			types.VdcCapability{Name: "orgVdcNetworkRouted", Description: "Routed organization VDC networks", Value: true, Type: "Boolean", Category: "OrgVdcNetwork"},
		}, nil)
	case segs[0] == "applicationPortProfiles":
		s.handleAppProfiles(w, r, ses, segs[1:])
	default:
		writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "Unknown API path %s", r.URL.Path))
	}
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, ses *session) {
	s.st.purgeAudit()
	items := make([]any, 0, len(s.st.audit))
	for i := range s.st.audit {
		ev := &s.st.audit[i]
		if ses.user.role != RoleSysAdmin && ev.OperatingOrg.ID != "urn:vcloud:org:"+ses.org.id {
			continue
		}
		items = append(items, ev)
	}
	s.writePage(w, r, items, auditGetter)
}

func auditGetter(v any) func(string) (string, bool) {
	ev := v.(*AuditEvent)
	return func(k string) (string, bool) {
		switch k {
		case "timestamp":
			return ev.Timestamp, true
		case "eventType":
			return ev.EventType, true
		case "eventId":
			return ev.EventID, true
		case "eventStatus":
			return ev.EventStatus, true
		case "eventEntity.id":
			return ev.EventEntity.ID, true
		case "eventEntity.name":
			return ev.EventEntity.Name, true
		case "operatingOrg.id":
			return ev.OperatingOrg.ID, true
		case "operatingOrg.name":
			return ev.OperatingOrg.Name, true
		case "user.name":
			return ev.User.Name, true
		}
		return "", false
	}
}

func (s *Server) visibleGateways(ses *session) []*gateway {
	var out []*gateway
	for _, g := range s.st.gateways {
		if ses.user.role == RoleSysAdmin || g.vdc.org == ses.org {
			out = append(out, g)
		}
	}
	return out
}

func readJSON(r *http.Request, v any) *apiError {
	b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return newErr(400, "BAD_REQUEST", "cannot read the request body")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return newErr(400, "BAD_REQUEST", "Unable to parse the request body: %s", err)
	}
	return nil
}

// gatewayWrite starts a write task on g, or reports BUSY_ENTITY when a
// write is still running on it.
func (s *Server) gatewayWrite(w http.ResponseWriter, g *gateway, ses *session, opName, busyOp string, owner types.Reference, effect func() *apiError) {
	if g.busy != nil && g.busy.status == "running" {
		writeJSONError(w, newErr(400, "BUSY_ENTITY",
			"The entity Ref: com.vmware.vcloud.entity.gateway:%s is busy completing an operation %s.", g.id, g.busyOp))
		return
	}
	st := s.st
	saved := st.taskDuration
	if s.opts.gatewayTaskDuration() > 0 {
		st.taskDuration = s.opts.gatewayTaskDuration()
	}
	t := st.newTask(opName, busyOp+" "+g.name, owner, ses, effect, nil)
	st.taskDuration = saved
	g.busy, g.busyOp = t, busyOp
	w.Header().Set("Location", st.href("task/"+t.id))
	w.WriteHeader(http.StatusAccepted)
}

func (o Options) gatewayTaskDuration() time.Duration {
	if o.GatewayTaskDuration > 0 {
		return o.GatewayTaskDuration
	}
	return o.TaskDuration
}

func (s *Server) handleGateways(w http.ResponseWriter, r *http.Request, ses *session, segs []string) {
	st := s.st
	if len(segs) == 0 {
		if r.Method != http.MethodGet {
			writeJSONError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
			return
		}
		var items []any
		for _, g := range s.visibleGateways(ses) {
			items = append(items, st.gatewayJSON(g))
		}
		s.writePage(w, r, items, nil)
		return
	}
	var g *gateway
	for _, x := range s.visibleGateways(ses) {
		if x.urn() == segs[0] || x.id == segs[0] {
			g = x
		}
	}
	if g == nil {
		writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "[%s] does not exist or you do not have permission to access it.", segs[0]))
		return
	}
	owner := types.Reference{ID: g.urn(), Name: g.name, Type: "application/vnd.vmware.vcloud.gateway+xml"}
	rest := strings.Join(segs[1:], "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		writeJSON(w, 200, st.gatewayJSON(g))
	case rest == "usedIpAddresses" && r.Method == http.MethodGet:
		var items []any
		for _, u := range st.usedIPs(g) {
			items = append(items, u)
		}
		s.writePage(w, r, items, nil)
	case rest == "nat/rules" && r.Method == http.MethodGet:
		items := make([]any, 0, len(g.nat))
		for _, n := range g.nat {
			items = append(items, n)
		}
		s.writePage(w, r, items, nil)
	case rest == "nat/rules" && r.Method == http.MethodPost:
		var rule types.NsxtNatRule
		if e := readJSON(r, &rule); e != nil {
			writeJSONError(w, e)
			return
		}
		if e := st.validNAT(&rule); e != nil {
			writeJSONError(w, e)
			return
		}
		rule.ID = ""
		s.gatewayWrite(w, g, ses, "natRuleCreate", "NAT_RULE_CREATE", owner, func() *apiError {
			rule.ID = newUUID()
			v := 0
			rule.Version = &struct {
				Version *int `json:"version,omitempty"`
			}{Version: &v}
			g.nat = append(g.nat, &rule)
			return nil
		})
	case len(segs) == 4 && segs[1] == "nat" && segs[2] == "rules":
		id := segs[3]
		idx := -1
		for i, n := range g.nat {
			if n.ID == id {
				idx = i
			}
		}
		if idx < 0 {
			writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "NAT rule %s does not exist.", id))
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, g.nat[idx])
		case http.MethodPut:
			var rule types.NsxtNatRule
			if e := readJSON(r, &rule); e != nil {
				writeJSONError(w, e)
				return
			}
			if e := st.validNAT(&rule); e != nil {
				writeJSONError(w, e)
				return
			}
			s.gatewayWrite(w, g, ses, "natRuleUpdate", "NAT_RULE_UPDATE", owner, func() *apiError {
				for i, n := range g.nat {
					if n.ID == id {
						rule.ID = id
						g.nat[i] = &rule
						return nil
					}
				}
				return newErr(404, "RESOURCE_NOT_FOUND", "NAT rule %s does not exist.", id)
			})
		case http.MethodDelete:
			s.gatewayWrite(w, g, ses, "natRuleDelete", "NAT_RULE_DELETE", owner, func() *apiError {
				for i, n := range g.nat {
					if n.ID == id {
						g.nat = append(g.nat[:i:i], g.nat[i+1:]...)
						return nil
					}
				}
				return nil
			})
		default:
			writeJSONError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
		}
	case rest == "firewall/rules":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, firewallJSON(g))
		case http.MethodPut:
			var c types.NsxtFirewallRuleContainer
			if e := readJSON(r, &c); e != nil {
				writeJSONError(w, e)
				return
			}
			for _, fr := range c.UserDefinedRules {
				if e := st.validFirewallRule(fr, g); e != nil {
					writeJSONError(w, e)
					return
				}
			}
			s.gatewayWrite(w, g, ses, "edgeFirewallUpdate", "EDGE_FIREWALL_RULES_UPDATE", owner, func() *apiError {
				rules := make([]*types.NsxtFirewallRule, 0, len(c.UserDefinedRules))
				for _, fr := range c.UserDefinedRules {
					if fr.ID == "" {
						fr.ID = newUUID()
					}
					rules = append(rules, fr)
				}
				g.fw = rules
				return nil
			})
		case http.MethodDelete:
			s.gatewayWrite(w, g, ses, "edgeFirewallUpdate", "EDGE_FIREWALL_RULES_UPDATE", owner, func() *apiError {
				g.fw = nil
				return nil
			})
		default:
			writeJSONError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
		}
	case len(segs) == 4 && segs[1] == "firewall" && segs[2] == "rules":
		id := segs[3]
		switch r.Method {
		case http.MethodGet:
			for _, fr := range g.fw {
				if fr.ID == id {
					writeJSON(w, 200, fr)
					return
				}
			}
			writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "Firewall rule %s does not exist.", id))
		case http.MethodDelete:
			s.gatewayWrite(w, g, ses, "edgeFirewallUpdate", "EDGE_FIREWALL_RULES_UPDATE", owner, func() *apiError {
				for i, fr := range g.fw {
					if fr.ID == id {
						g.fw = append(g.fw[:i:i], g.fw[i+1:]...)
					}
				}
				return nil
			})
		default:
			writeJSONError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
		}
	default:
		writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "Unknown API path %s", r.URL.Path))
	}
}

func firewallJSON(g *gateway) *types.NsxtFirewallRuleContainer {
	user := g.fw
	if user == nil {
		user = []*types.NsxtFirewallRule{}
	}
	return &types.NsxtFirewallRuleContainer{
		SystemRules: []*types.NsxtFirewallRule{},
		DefaultRules: []*types.NsxtFirewallRule{{
			ID: uuidFromName("default", g.id), Name: "Default Rule", ActionValue: "DROP", Enabled: true,
			IpProtocol: "IPV4_IPV6", Direction: "IN_OUT",
		}},
		UserDefinedRules: user,
	}
}

var natTypes = map[string]bool{"DNAT": true, "SNAT": true, "NO_DNAT": true, "NO_SNAT": true, "REFLEXIVE": true}

func (st *state) validNAT(r *types.NsxtNatRule) *apiError {
	if ap := r.ApplicationPortProfile; ap != nil && ap.ID != "" && st.appProfileByID(ap.ID) == nil {
		return newErr(400, "BAD_REQUEST", "Application port profile %s does not exist.", ap.ID)
	}
	typ := r.Type
	if typ == "" {
		typ = r.RuleType
	}
	if r.Name == "" {
		return newErr(400, "BAD_REQUEST", "NAT rule name is required.")
	}
	if !natTypes[typ] {
		return newErr(400, "BAD_REQUEST", "Invalid NAT rule type %q.", typ)
	}
	if r.Type == "" {
		r.Type = typ
	}
	if r.RuleType == "" && typ != "REFLEXIVE" {
		r.RuleType = typ
	}
	if (typ == "DNAT" || typ == "SNAT" || typ == "REFLEXIVE") && (r.ExternalAddresses == "" || r.InternalAddresses == "") {
		return newErr(400, "BAD_REQUEST", "External and internal addresses are required for a %s rule.", typ)
	}
	return nil
}

func (st *state) validFirewallRule(fr *types.NsxtFirewallRule, g *gateway) *apiError {
	for _, ref := range fr.ApplicationPortProfiles {
		if st.appProfileByID(ref.ID) == nil {
			return newErr(400, "BAD_REQUEST", "Application port profile %s does not exist.", ref.ID)
		}
	}
	if fr.Name == "" {
		return newErr(400, "BAD_REQUEST", "Firewall rule name is required.")
	}
	act := fr.ActionValue
	if act == "" {
		act = fr.Action
	}
	switch act {
	case "ALLOW", "DROP", "REJECT":
	default:
		return newErr(400, "BAD_REQUEST", "Invalid firewall rule action %q.", act)
	}
	switch fr.Direction {
	case "IN", "OUT", "IN_OUT":
	default:
		return newErr(400, "BAD_REQUEST", "Invalid firewall rule direction %q.", fr.Direction)
	}
	switch fr.IpProtocol {
	case "IPV4", "IPV6", "IPV4_IPV6":
	default:
		return newErr(400, "BAD_REQUEST", "Invalid firewall rule IP protocol %q.", fr.IpProtocol)
	}
	for _, ref := range append(append([]types.OpenApiReference{}, fr.SourceFirewallGroups...), fr.DestinationFirewallGroups...) {
		found := false
		for _, fg := range g.groups {
			if fg.ID == ref.ID {
				found = true
			}
		}
		if !found {
			return newErr(400, "BAD_REQUEST", "Firewall group %s does not exist.", ref.ID)
		}
	}
	return nil
}

// handleFirewallGroups serves /cloudapi/1.0.0/firewallGroups (IP sets of
// edge gateways): list (filter), POST (202 + task whose Owner is the new
// group), GET, DELETE.
func (s *Server) handleFirewallGroups(w http.ResponseWriter, r *http.Request, ses *session, segs []string) {
	if len(segs) == 1 && segs[0] == "summaries" && r.Method == http.MethodGet {
		segs = nil
	}
	if len(segs) == 0 {
		switch r.Method {
		case http.MethodGet:
			var items []any
			for _, g := range s.visibleGateways(ses) {
				for _, fg := range g.groups {
					items = append(items, fg)
				}
			}
			s.writePage(w, r, items, nil)
		case http.MethodPost:
			var fg types.NsxtFirewallGroup
			if e := readJSON(r, &fg); e != nil {
				writeJSONError(w, e)
				return
			}
			ref := fg.EdgeGatewayRef
			if ref == nil {
				ref = fg.OwnerRef
			}
			var g *gateway
			for _, x := range s.visibleGateways(ses) {
				if ref != nil && ref.ID == x.urn() {
					g = x
				}
			}
			if g == nil {
				writeJSONError(w, newErr(400, "BAD_REQUEST", "A firewall group needs the edge gateway it belongs to."))
				return
			}
			if fg.Name == "" {
				writeJSONError(w, newErr(400, "BAD_REQUEST", "Firewall group name is required."))
				return
			}
			if fg.Type == "" && fg.TypeValue == "" {
				fg.TypeValue = "IP_SET"
			}
			for _, x := range g.groups {
				if x.Name == fg.Name {
					writeJSONError(w, newErr(400, "DUPLICATE_NAME", "A firewall group with name %s already exists.", fg.Name))
					return
				}
			}
			fg.ID = "urn:vcloud:firewallGroup:" + newUUID()
			fg.EdgeGatewayRef = &types.OpenApiReference{ID: g.urn(), Name: g.name}
			fg.OwnerRef = &types.OpenApiReference{ID: g.urn(), Name: g.name}
			owner := types.Reference{ID: fg.ID, Name: fg.Name}
			s.gatewayWrite(w, g, ses, "firewallGroupCreate", "FIREWALL_GROUP_CREATE", owner, func() *apiError {
				g.groups = append(g.groups, &fg)
				return nil
			})
		default:
			writeJSONError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
		}
		return
	}
	for _, g := range s.visibleGateways(ses) {
		for _, fg := range g.groups {
			if fg.ID != segs[0] {
				continue
			}
			switch r.Method {
			case http.MethodGet:
				writeJSON(w, 200, fg)
			case http.MethodDelete:
				for _, fr := range g.fw {
					for _, ref := range append(append([]types.OpenApiReference{}, fr.SourceFirewallGroups...), fr.DestinationFirewallGroups...) {
						if ref.ID == fg.ID {
							writeJSONError(w, newErr(400, "BAD_REQUEST", "Firewall group %s is in use by firewall rule %s.", fg.Name, fr.Name))
							return
						}
					}
				}
				id := fg.ID
				owner := types.Reference{ID: id, Name: fg.Name}
				s.gatewayWrite(w, g, ses, "firewallGroupDelete", "FIREWALL_GROUP_DELETE", owner, func() *apiError {
					for i, x := range g.groups {
						if x.ID == id {
							g.groups = append(g.groups[:i:i], g.groups[i+1:]...)
						}
					}
					return nil
				})
			default:
				writeJSONError(w, newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed"))
			}
			return
		}
	}
	writeJSONError(w, newErr(404, "RESOURCE_NOT_FOUND", "[%s] does not exist or you do not have permission to access it.", segs[0]))
}
