package vcd

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/go-vcloud-director/v2/types/v56"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/httpapi"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/natfw"
)

// FirewallOptions configure NewFirewall. Every field is optional.
type FirewallOptions struct {
	// CACertPEM, RootCAs and Insecure: as in Options.
	CACertPEM []byte
	RootCAs   *x509.CertPool
	Insecure  bool
	// TaskPoll is the longest wait between two reads of a running task
	// (default 1 s).
	TaskPoll time.Duration
	// BusyTimeout bounds how long one write is retried while the
	// gateway answers BUSY_ENTITY (another client's write runs); default
	// 2 minutes, and never past the call's context.
	BusyTimeout time.Duration
	// Logger, TracerProvider and MeterProvider are handed to the
	// portable *natfw.Firewall; nil records nothing.
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Edge is the natfw.Driver of one NSX-T edge gateway. Hosts hold the
// *natfw.Firewall NewFirewall returns (its As reaches a **vcd.Edge). It
// is safe for concurrent use: its writes to the gateway are serialized.
type Edge struct {
	c    *conn
	hc   *http.Client
	poll time.Duration
	busy time.Duration
	log  *slog.Logger

	gwID, gwName string

	mu sync.Mutex // one writer per gateway in this process

	closeOnce sync.Once
	closeErr  error
}

var _ natfw.Driver = (*Edge)(nil)

// NewFirewall logs in to VCD at endpoint, finds the NSX-T edge gateway
// named gateway and returns the portable Firewall in front of its driver.
// Close logs out.
func NewFirewall(ctx context.Context, endpoint string, cred Credentials, gateway string, opts *FirewallOptions) (*natfw.Firewall, error) {
	e, err := newEdge(ctx, endpoint, cred, gateway, opts)
	if err != nil {
		return nil, err
	}
	var o FirewallOptions
	if opts != nil {
		o = *opts
	}
	return natfw.New(e, &natfw.Options{Logger: o.Logger, TracerProvider: o.TracerProvider, MeterProvider: o.MeterProvider}), nil
}

func newEdge(ctx context.Context, endpoint string, cred Credentials, gateway string, opts *FirewallOptions) (*Edge, error) {
	const opNew = op + ".NewFirewall"
	if err := errs.FromContext(ctx, opNew); err != nil {
		return nil, err
	}
	var o FirewallOptions
	if opts != nil {
		o = *opts
	}
	if cred.Org == "" || (cred.APIToken.IsZero() && (cred.User == "" || cred.Password.IsZero())) {
		return nil, errs.New(errs.InvalidArgument, opNew, "Credentials need Org and either User and Password or APIToken")
	}
	if err := limit.Name(opNew, "gateway", gateway); err != nil {
		return nil, err
	}
	base, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, errs.WrapOp(opNew, err)
	}
	roots := o.RootCAs
	if roots == nil && len(o.CACertPEM) > 0 {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(o.CACertPEM) {
			return nil, errs.New(errs.InvalidArgument, opNew, "CACertPEM holds no PEM certificate")
		}
	}
	if o.TaskPoll <= 0 {
		o.TaskPoll = time.Second
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 2 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := httpapi.NewClient(roots, o.Insecure, 8)
	e := &Edge{c: newConn(base, hc, cred), hc: hc, poll: o.TaskPoll, busy: o.BusyTimeout, log: log, gwName: gateway}
	var pg struct {
		Values []types.OpenAPIEdgeGateway `json:"values"`
	}
	err = e.c.getJSON(ctx, "/cloudapi/1.0.0/edgeGateways", url.Values{"filter": {"name==" + gateway}}, &pg)
	if err == nil {
		for _, g := range pg.Values {
			if g.Name == gateway {
				e.gwID = g.ID
				if g.GatewayBacking != nil && g.GatewayBacking.GatewayType != "NSXT_BACKED" {
					err = errs.Errorf(errs.FailedPrecondition, "", "edge gateway %s is %s: the driver needs NSX-T", limit.Quote(gateway), limit.Quote(g.GatewayBacking.GatewayType))
				}
			}
		}
		if e.gwID == "" && err == nil {
			err = errs.Errorf(errs.NotFound, "", "no edge gateway %s", limit.Quote(gateway))
		}
	}
	if err != nil {
		_ = e.c.logout(ctx)
		hc.CloseIdleConnections()
		return nil, errs.WrapOp(opNew, err)
	}
	return e, nil
}

// Close logs out. It is idempotent.
func (e *Edge) Close() error {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.c.logout(ctx); err != nil {
			e.closeErr = errs.WrapOp(op+".Edge.Close", err)
		}
		e.hc.CloseIdleConnections()
	})
	return e.closeErr
}

// As reaches the driver's *http.Client (a **http.Client target).
func (e *Edge) As(target any) bool {
	if t, ok := target.(**http.Client); ok {
		*t = e.hc
		return true
	}
	return false
}

// ---- names ----

// Objects of an owner are named "mvm-<h>" (h: 12 hex digits of SHA-256
// of the owner): the REFLEXIVE NAT rule and the firewall rule. The IP
// sets and the port profile are named after their content as well
// ("mvm-<h>-s-<c>", "-d-", "-p-"), so a changed rule makes new ones and
// the old ones are removed once no rule uses them.
const namePrefix = "mvm-"

func short(s string, n int) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:n]
}

func ownerName(owner string) string { return namePrefix + short(owner, 12) }

// natMeta is the JSON the NAT rule's description holds: the owner and
// the rule's description, which the gateway has no other place for.
type natMeta struct {
	V     int    `json:"managedvm"`
	Owner string `json:"owner"`
	Desc  string `json:"description,omitempty"`
}

func portsKey(ps []natfw.Port) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func prefixesKey(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// ---- gateway state ----

type gwState struct {
	nat    []*types.NsxtNatRule
	fw     []*types.NsxtFirewallRule
	groups map[string]*types.NsxtFirewallGroup  // by id
	apps   map[string]*types.NsxtAppPortProfile // by id, TENANT profiles of the gateway
}

func (e *Edge) gwPath(rest string) string {
	return "/cloudapi/1.0.0/edgeGateways/" + e.gwID + rest
}

// listAll reads every page of a cloudapi list into out.
func listAll[T any](ctx context.Context, c *conn, path string, q url.Values) ([]T, error) {
	var out []T
	for page := 1; ; page++ {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("page", strconv.Itoa(page))
		qq.Set("pageSize", "128")
		var pg struct {
			PageCount int `json:"pageCount"`
			Values    []T `json:"values"`
		}
		if err := c.getJSON(ctx, path, qq, &pg); err != nil {
			return nil, err
		}
		out = append(out, pg.Values...)
		if len(pg.Values) == 0 || page >= pg.PageCount {
			return out, nil
		}
	}
}

// read reads the gateway's NAT rules, firewall rules, IP sets and port
// profiles.
func (e *Edge) read(ctx context.Context) (*gwState, error) {
	st := &gwState{groups: map[string]*types.NsxtFirewallGroup{}, apps: map[string]*types.NsxtAppPortProfile{}}
	var err error
	if st.nat, err = listAll[*types.NsxtNatRule](ctx, e.c, e.gwPath("/nat/rules"), nil); err != nil {
		return nil, err
	}
	var fc types.NsxtFirewallRuleContainer
	if err := e.c.getJSON(ctx, e.gwPath("/firewall/rules"), nil, &fc); err != nil {
		return nil, err
	}
	st.fw = fc.UserDefinedRules
	gs, err := listAll[*types.NsxtFirewallGroup](ctx, e.c, "/cloudapi/1.0.0/firewallGroups", nil)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		if g.EdgeGatewayRef != nil && g.EdgeGatewayRef.ID == e.gwID || g.OwnerRef != nil && g.OwnerRef.ID == e.gwID {
			st.groups[g.ID] = g
		}
	}
	as, err := listAll[*types.NsxtAppPortProfile](ctx, e.c, "/cloudapi/1.0.0/applicationPortProfiles",
		url.Values{"filter": {"scope==TENANT;_context==" + e.gwID}})
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		st.apps[a.ID] = a
	}
	return st, nil
}

// ruleOf rebuilds an owner's rule from its NAT rule, its firewall rule,
// IP sets and port profile; ok is false when a piece is missing or not
// ours.
func (st *gwState) ruleOf(n *types.NsxtNatRule) (natfw.Rule, bool) {
	var m natMeta
	if !strings.HasPrefix(n.Name, namePrefix) || json.Unmarshal([]byte(n.Description), &m) != nil || m.V != 1 || ownerName(m.Owner) != n.Name {
		return natfw.Rule{}, false
	}
	pub, err1 := netip.ParseAddr(n.ExternalAddresses)
	loc, err2 := netip.ParseAddr(n.InternalAddresses)
	if err1 != nil || err2 != nil {
		return natfw.Rule{}, false
	}
	r := natfw.Rule{Owner: m.Owner, Public: pub, Local: loc, Description: m.Desc}
	fr := st.fwRule(n.Name)
	if fr == nil {
		return r, true // NAT without its firewall rule: half made
	}
	for _, ref := range fr.SourceFirewallGroups {
		if g := st.groups[ref.ID]; g != nil {
			for _, a := range g.IpAddresses {
				if p, err := netip.ParsePrefix(a); err == nil {
					r.Sources = append(r.Sources, p)
				} else if ad, err := netip.ParseAddr(a); err == nil {
					r.Sources = append(r.Sources, netip.PrefixFrom(ad, ad.BitLen()))
				}
			}
		}
	}
	for _, ref := range fr.ApplicationPortProfiles {
		if a := st.apps[ref.ID]; a != nil {
			for _, ap := range a.ApplicationPorts {
				proto := natfw.Protocol(strings.ToLower(ap.Protocol))
				for _, dp := range ap.DestinationPorts {
					if n, err := strconv.ParseUint(dp, 10, 16); err == nil {
						r.Ports = append(r.Ports, natfw.Port{Protocol: proto, Number: uint16(n)})
					}
				}
			}
		}
	}
	return r.Normalize(), true
}

func (st *gwState) fwRule(name string) *types.NsxtFirewallRule {
	for _, f := range st.fw {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func (st *gwState) natRule(name string) *types.NsxtNatRule {
	for _, n := range st.nat {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// ---- writes ----

// write sends one gateway write and waits for its task. BUSY_ENTITY
// (another write of the gateway runs, ours from another process or
// another client's) is retried with backoff for at most BusyTimeout.
// It returns the task's Owner id (the new object, for firewall groups and
// port profiles).
func (e *Edge) write(ctx context.Context, method, path string, body any) (string, error) {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return "", errs.New(errs.Internal, "", "request does not render")
		}
		raw = b
	}
	deadline := time.Now().Add(e.busy)
	delay := 20 * time.Millisecond
	for {
		id, _, err := e.writeOnce(ctx, method, path, raw)
		if isBusy(err) && time.Now().Before(deadline) {
			if err := backoff(ctx, &delay); err != nil {
				return "", err
			}
			continue
		}
		return id, err
	}
}

// backoff sleeps *delay plus jitter and doubles it (at most 1 s).
func backoff(ctx context.Context, delay *time.Duration) error {
	d := *delay + time.Duration(time.Now().UnixNano()%int64(*delay)) // jitter
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errs.FromContext(ctx, "")
	case <-t.C:
	}
	*delay = min(*delay*2, time.Second)
	return nil
}

// writeOnce sends one gateway write and waits for its task: the task's
// Owner id and how long the task ran as the driver saw it.
func (e *Edge) writeOnce(ctx context.Context, method, path string, raw []byte) (string, time.Duration, error) {
	start := time.Now()
	a, err := e.c.do(ctx, request{method: method, path: path, body: raw, ctype: "application/json"})
	if err != nil {
		return "", 0, err
	}
	loc := a.header.Get("Location")
	if loc == "" {
		return "", time.Since(start), nil
	}
	var t types.Task
	if err := e.c.getXML(ctx, loc, nil, &t); err != nil {
		return "", 0, err
	}
	if err := e.c.waitTask(ctx, &t, e.poll); err != nil {
		return "", 0, err
	}
	if t.Owner != nil {
		return t.Owner.ID, time.Since(start), nil
	}
	return "", time.Since(start), nil
}

// ensureGroup returns the id of the IP set named name holding addrs,
// creating it when missing.
func (e *Edge) ensureGroup(ctx context.Context, st *gwState, name string, addrs []string) (string, error) {
	for id, g := range st.groups {
		if g.Name == name {
			return id, nil
		}
	}
	id, err := e.write(ctx, http.MethodPost, "/cloudapi/1.0.0/firewallGroups", &types.NsxtFirewallGroup{
		Name: name, Description: "managedvm", IpAddresses: addrs, TypeValue: "IP_SET",
		OwnerRef: &types.OpenApiReference{ID: e.gwID}, EdgeGatewayRef: &types.OpenApiReference{ID: e.gwID}})
	if err != nil {
		return "", err
	}
	st.groups[id] = &types.NsxtFirewallGroup{ID: id, Name: name, IpAddresses: addrs}
	return id, nil
}

// ensureApp returns the id of the port profile named name with ports.
func (e *Edge) ensureApp(ctx context.Context, st *gwState, name string, ports []natfw.Port) (string, error) {
	for id, a := range st.apps {
		if a.Name == name {
			return id, nil
		}
	}
	byProto := map[natfw.Protocol][]string{}
	for _, p := range ports {
		byProto[p.Protocol] = append(byProto[p.Protocol], strconv.Itoa(int(p.Number)))
	}
	var aps []types.NsxtAppPortProfilePort
	for _, proto := range []natfw.Protocol{natfw.TCP, natfw.UDP} {
		if ps := byProto[proto]; len(ps) > 0 {
			aps = append(aps, types.NsxtAppPortProfilePort{Protocol: strings.ToUpper(string(proto)), DestinationPorts: ps})
		}
	}
	id, err := e.write(ctx, http.MethodPost, "/cloudapi/1.0.0/applicationPortProfiles", &types.NsxtAppPortProfile{
		Name: name, Description: "managedvm", ApplicationPorts: aps, ContextEntityId: e.gwID, Scope: "TENANT"})
	if err != nil {
		return "", err
	}
	st.apps[id] = &types.NsxtAppPortProfile{ID: id, Name: name, ApplicationPorts: aps}
	return id, nil
}

// conflict reports another owner's NAT rule using r's addresses.
func (st *gwState) conflict(r natfw.Rule) error {
	mine := ownerName(r.Owner)
	for _, n := range st.nat {
		if n.Name == mine {
			continue
		}
		for _, a := range []string{n.ExternalAddresses, n.InternalAddresses} {
			for _, x := range []netip.Addr{r.Public, r.Local} {
				if a == x.String() {
					return errs.Errorf(errs.AlreadyExists, "", "address %s is used by NAT rule %s of the gateway", x, limit.Quote(n.Name))
				}
			}
		}
	}
	return nil
}

// EnsureNAT makes the owner's rule exactly r: the IP sets of its sources
// and local address and the port profile of its ports (made when
// missing), the REFLEXIVE NAT rule (created or updated), then the
// firewall rule in one whole-list PUT; objects no longer used are
// removed. A rule already in place costs only the reads.
func (e *Edge) EnsureNAT(ctx context.Context, r natfw.Rule) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := e.read(ctx)
	if err != nil {
		return err
	}
	name := ownerName(r.Owner)
	if n := st.natRule(name); n != nil {
		if cur, ok := st.ruleOf(n); ok && cur.Equal(r) && st.fwRule(name) != nil {
			return nil
		}
	}
	if err := st.conflict(r); err != nil {
		return err
	}
	src, err := e.ensureGroup(ctx, st, name+"-s-"+short(prefixesKey(r.Sources), 8), prefixStrings(r.Sources))
	if err != nil {
		return err
	}
	dst, err := e.ensureGroup(ctx, st, name+"-d-"+short(r.Local.String(), 8), []string{r.Local.String()})
	if err != nil {
		return err
	}
	app, err := e.ensureApp(ctx, st, name+"-p-"+short(portsKey(r.Ports), 8), r.Ports)
	if err != nil {
		return err
	}
	meta, _ := json.Marshal(natMeta{V: 1, Owner: r.Owner, Desc: r.Description})
	nat := &types.NsxtNatRule{Name: name, Description: string(meta), Enabled: true, Type: "REFLEXIVE",
		ExternalAddresses: r.Public.String(), InternalAddresses: r.Local.String()}
	if old := st.natRule(name); old != nil {
		nat.ID = old.ID
		if _, err := e.write(ctx, http.MethodPut, e.gwPath("/nat/rules/"+old.ID), nat); err != nil {
			return err
		}
	} else if _, err := e.write(ctx, http.MethodPost, e.gwPath("/nat/rules"), nat); err != nil {
		return err
	}
	fw := &types.NsxtFirewallRule{Name: name, ActionValue: "ALLOW", Enabled: true, Direction: "IN", IpProtocol: "IPV4",
		SourceFirewallGroups:      []types.OpenApiReference{{ID: src}},
		DestinationFirewallGroups: []types.OpenApiReference{{ID: dst}},
		ApplicationPortProfiles:   []types.OpenApiReference{{ID: app}}}
	if err := e.putFirewall(ctx, st, name, fw); err != nil {
		return err
	}
	e.collect(ctx, st, name)
	return nil
}

// putFirewall makes the owner's rule of the gateway's user-defined
// firewall list fw (nil: no rule of that name). VCD (API 37.0) creates
// and changes edge firewall rules only with one PUT of the whole list,
// with no version or precondition, and applies it when the write's task
// ends; a writer in another process whose list was read before that
// drops this rule. So:
//
//   - the list is read right before each PUT, and again after a
//     BUSY_ENTITY answer (another write runs): a list is never sent
//     staler than one round trip;
//   - once the PUT's task ended, and again after the other writes that
//     may have started from an older read had time to end (a write
//     task's duration plus two reads', at least 10 ms: such a write was
//     sent at most a round trip after ours ended), the list is read
//     back; a missing (or, for a removal, returning) rule is written
//     again, for at most FirewallOptions.BusyTimeout;
//   - a removal deletes the one rule (DELETE .../firewall/rules/{id},
//     which drops no other rule) and is checked the same way.
//
// st.fw is left as the last list read.
func (e *Edge) putFirewall(ctx context.Context, st *gwState, name string, fw *types.NsxtFirewallRule) error {
	deadline := time.Now().Add(e.busy)
	delay := 20 * time.Millisecond
	settle := 20 * time.Millisecond
	wrote := false
	for {
		readStart := time.Now()
		var fc types.NsxtFirewallRuleContainer
		if err := e.c.getJSON(ctx, e.gwPath("/firewall/rules"), nil, &fc); err != nil {
			return err
		}
		rtt := time.Since(readStart)
		st.fw = fc.UserDefinedRules
		cur := st.fwRule(name)
		if fw == nil && cur == nil || fw != nil && cur != nil && sameFirewallRule(cur, fw) {
			if !wrote {
				return nil
			}
			// Written and seen: look once more after the writes that
			// may have read an older list had time to end.
			wrote = false
			if err := sleepCtx(ctx, settle); err != nil {
				return err
			}
			continue
		}
		if wrote {
			e.log.Debug("vcd: another writer's whole-list PUT replaced the edge firewall rule; writing it again", "rule", name)
		}
		if time.Now().After(deadline) {
			return errs.Errorf(errs.Unavailable, "", "the edge firewall rule %s did not stay in place: other writers kept replacing the list", limit.Quote(name))
		}
		var (
			took time.Duration
			err  error
		)
		if fw == nil {
			_, took, err = e.writeOnce(ctx, http.MethodDelete, e.gwPath("/firewall/rules/"+cur.ID), nil)
			if errs.Is(err, errs.NotFound) {
				err = nil
			}
		} else {
			rules := make([]*types.NsxtFirewallRule, 0, len(st.fw)+1)
			for _, f := range st.fw {
				if f.Name != name {
					rules = append(rules, f)
				}
			}
			raw, jerr := json.Marshal(&types.NsxtFirewallRuleContainer{UserDefinedRules: append(rules, fw)})
			if jerr != nil {
				return errs.New(errs.Internal, "", "request does not render")
			}
			_, took, err = e.writeOnce(ctx, http.MethodPut, e.gwPath("/firewall/rules"), raw)
			if errs.Is(err, errs.InvalidArgument) && !isBusy(err) && time.Now().Before(deadline) {
				// A list read just before another writer removed an IP
				// set or profile it names: read it again.
				e.log.Debug("vcd: the edge firewall list was refused; reading it again", "rule", name, "err", err)
				err = errBusyRetry
			}
		}
		if err == errBusyRetry || isBusy(err) {
			if err := backoff(ctx, &delay); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		wrote = true
		settle = max(took+2*rtt, 10*time.Millisecond)
	}
}

// errBusyRetry marks a write to redo from a fresh read.
var errBusyRetry = errs.New(errs.Unavailable, "", "retry")

// sameFirewallRule compares what the driver writes of a rule.
func sameFirewallRule(a, b *types.NsxtFirewallRule) bool {
	refs := func(rs []types.OpenApiReference) string {
		ids := make([]string, len(rs))
		for i, r := range rs {
			ids[i] = r.ID
		}
		return strings.Join(ids, ",")
	}
	act := func(r *types.NsxtFirewallRule) string {
		if r.ActionValue != "" {
			return r.ActionValue
		}
		return r.Action
	}
	return a.Name == b.Name && act(a) == act(b) && a.Enabled == b.Enabled && a.Direction == b.Direction &&
		a.IpProtocol == b.IpProtocol && refs(a.SourceFirewallGroups) == refs(b.SourceFirewallGroups) &&
		refs(a.DestinationFirewallGroups) == refs(b.DestinationFirewallGroups) &&
		refs(a.ApplicationPortProfiles) == refs(b.ApplicationPortProfiles)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errs.FromContext(ctx, "")
	case <-t.C:
		return nil
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.Bits() == 32 {
			out[i] = p.Addr().String()
		} else {
			out[i] = p.String()
		}
	}
	return out
}

// collect removes the owner's IP sets and port profiles that no firewall
// rule uses any more (best effort: a leftover is removed next time).
func (e *Edge) collect(ctx context.Context, st *gwState, name string) {
	used := map[string]bool{}
	for _, f := range st.fw {
		for _, ref := range slices.Concat(f.SourceFirewallGroups, f.DestinationFirewallGroups, f.ApplicationPortProfiles) {
			used[ref.ID] = true
		}
	}
	var ids []string
	for id, g := range st.groups {
		if strings.HasPrefix(g.Name, name+"-") && !used[id] {
			ids = append(ids, "/cloudapi/1.0.0/firewallGroups/"+id)
		}
	}
	for id, a := range st.apps {
		if strings.HasPrefix(a.Name, name+"-") && !used[id] {
			ids = append(ids, "/cloudapi/1.0.0/applicationPortProfiles/"+id)
		}
	}
	sort.Strings(ids)
	for _, p := range ids {
		if _, err := e.write(ctx, http.MethodDelete, p, nil); err != nil && !errs.Is(err, errs.NotFound) {
			e.log.Warn("vcd: an unused object of the edge gateway was not removed", "path", limit.Quote(p), "err", err)
		}
	}
}

// RemoveNAT removes the owner's firewall rule (its own DELETE, checked
// as putFirewall says), NAT rule, IP sets and port profile.
func (e *Edge) RemoveNAT(ctx context.Context, owner string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := e.read(ctx)
	if err != nil {
		return err
	}
	name := ownerName(owner)
	if st.fwRule(name) != nil {
		if err := e.putFirewall(ctx, st, name, nil); err != nil {
			return err
		}
	}
	for _, n := range st.nat {
		if n.Name == name {
			if _, err := e.write(ctx, http.MethodDelete, e.gwPath("/nat/rules/"+n.ID), nil); err != nil && !errs.Is(err, errs.NotFound) {
				return err
			}
		}
	}
	e.collect(ctx, st, name)
	return nil
}

// Get rebuilds the owner's rule from the gateway.
func (e *Edge) Get(ctx context.Context, owner string) (natfw.Rule, error) {
	st, err := e.read(ctx)
	if err != nil {
		return natfw.Rule{}, err
	}
	if n := st.natRule(ownerName(owner)); n != nil {
		if r, ok := st.ruleOf(n); ok && r.Owner == owner {
			return r, nil
		}
	}
	return natfw.Rule{}, errs.Errorf(errs.NotFound, "", "no NAT rule for owner %s", limit.Quote(owner))
}

// List rebuilds every rule of this driver from the gateway, by owner.
func (e *Edge) List(ctx context.Context) ([]natfw.Rule, error) {
	st, err := e.read(ctx)
	if err != nil {
		return nil, err
	}
	out := []natfw.Rule{}
	for _, n := range st.nat {
		if r, ok := st.ruleOf(n); ok {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Owner < out[j].Owner })
	return out, nil
}
