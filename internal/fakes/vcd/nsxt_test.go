package vcd_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/go-vcloud-director/v2/govcd"
	"github.com/vmware/go-vcloud-director/v2/types/v56"

	"github.com/managedvm/managedvm/internal/fakes/vcd"
)

func edge(t testing.TB, c *govcd.VCDClient) *govcd.NsxtEdgeGateway {
	t.Helper()
	org, err := c.GetOrgByName("acme")
	if err != nil {
		t.Fatal(err)
	}
	g, err := org.GetNsxtEdgeGatewayByName("edge1")
	if err != nil {
		t.Fatalf("GetNsxtEdgeGatewayByName: %v", err)
	}
	return g
}

func dnat(name, ext, internal string) *types.NsxtNatRule {
	return &types.NsxtNatRule{Name: name, Enabled: true, Type: "DNAT", RuleType: "DNAT",
		ExternalAddresses: ext, InternalAddresses: internal, FirewallMatch: "MATCH_EXTERNAL_ADDRESS"}
}

func natURL(t testing.TB, c *govcd.VCDClient, g *govcd.NsxtEdgeGateway) *url.URL {
	t.Helper()
	u, err := c.Client.OpenApiBuildEndpoint(fmt.Sprintf(types.OpenApiPathVersion1_0_0+types.OpenApiEndpointNsxtNatRules, g.EdgeGateway.ID))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestEdgeGatewayAndUsedIPs(t *testing.T) {
	s := start(t, nil)
	c := login(t, s)
	g := edge(t, c)
	up := g.EdgeGateway.EdgeGatewayUplinks[0]
	sub := up.Subnets.Values[0]
	if g.EdgeGateway.GatewayBacking.GatewayType != "NSXT_BACKED" || sub.PrimaryIP != "203.0.113.2" ||
		sub.IPRanges.Values[0].StartAddress != "203.0.113.10" || *sub.TotalIPCount != 31 || g.EdgeGateway.OrgVdc.Name != "vdc1" {
		t.Fatalf("gateway %+v", g.EdgeGateway)
	}
	used, err := g.GetUsedIpAddresses(nil)
	if err != nil {
		t.Fatalf("GetUsedIpAddresses: %v", err)
	}
	if len(used) != 1 || used[0].IPAddress != "203.0.113.2" {
		t.Fatalf("used %+v", used)
	}
	if _, err := (func() (*govcd.NsxtEdgeGateway, error) {
		org, _ := c.GetOrgByName("acme")
		return org.GetNsxtEdgeGatewayByName("nope")
	})(); err == nil {
		t.Fatal("unknown gateway found")
	}
}

func TestNATCreateTaskListDelete(t *testing.T) {
	s := start(t, nil)
	c := login(t, s)
	g := edge(t, c)

	// The SDK's own create: 202 + Location task, then a list to find it.
	r, err := g.CreateNatRule(dnat("mvm-owner-1-dnat", "203.0.113.10", "10.10.1.5"))
	if err != nil {
		t.Fatalf("CreateNatRule: %v", err)
	}
	if r.NsxtNatRule.ID == "" || r.NsxtNatRule.Type != "DNAT" {
		t.Fatalf("rule %+v", r.NsxtNatRule)
	}

	// The raw exchange: 202, a Location header, and no rule id anywhere.
	task, err := c.Client.OpenApiPostItemAsync("37.0", natURL(t, c, g), nil, dnat("mvm-owner-2-dnat", "203.0.113.11", "10.10.1.6"))
	if err != nil {
		t.Fatalf("OpenApiPostItemAsync: %v", err)
	}
	if !strings.Contains(task.Task.HREF, "/api/task/") {
		t.Fatalf("Location %q", task.Task.HREF)
	}
	if err := task.WaitInspectTaskCompletion(nil, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if task.Task.Owner == nil || task.Task.Owner.ID != g.EdgeGateway.ID {
		t.Fatalf("task owner %+v, want the gateway", task.Task.Owner)
	}
	// Names are not unique: a second rule with the same name is accepted.
	if _, err := c.Client.OpenApiPostItemAsync("37.0", natURL(t, c, g), nil, dnat("mvm-owner-2-dnat", "203.0.113.12", "10.10.1.7")); err != nil {
		t.Fatal(err)
	}
	all, err := g.GetAllNatRules(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("%d rules", len(all))
	}
	if _, err := g.GetNatRuleByName("mvm-owner-2-dnat"); err == nil || !strings.Contains(err.Error(), "found 2") {
		t.Fatalf("duplicate names: %v", err)
	}
	used, _ := g.GetUsedIpAddresses(nil)
	if len(used) != 4 {
		t.Fatalf("used IPs %+v", used)
	}
	// Paging of the list: 3 rules at 2 per page.
	var pages []*types.NsxtNatRule
	if err := c.Client.OpenApiGetAllItems("37.0", natURL(t, c, g), url.Values{"pageSize": {"2"}}, &pages, nil); err != nil || len(pages) != 3 {
		t.Fatalf("paged list: %v %d", err, len(pages))
	}
	if err := r.Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := s.NATRules("edge1"); len(got) != 2 {
		t.Fatalf("after delete %d rules", len(got))
	}
	// A rule without addresses is refused with VCD's JSON error.
	_, err = c.Client.OpenApiPostItemAsync("37.0", natURL(t, c, g), nil, &types.NsxtNatRule{Name: "x", Type: "DNAT"})
	if err == nil || !strings.Contains(err.Error(), "BAD_REQUEST") {
		t.Fatalf("invalid rule: %v", err)
	}
	// A failed task leaves nothing.
	s.FailNextTask("natRuleCreate", "NSX-T Manager unreachable")
	if _, err := g.CreateNatRule(dnat("mvm-owner-3-dnat", "203.0.113.13", "10.10.1.8")); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("failed create: %v", err)
	}
	if got := s.NATRules("edge1"); len(got) != 2 {
		t.Fatalf("failed create left %d rules", len(got))
	}
}

func TestFirewallWholeListPut(t *testing.T) {
	s := start(t, nil)
	c := login(t, s)
	g := edge(t, c)
	grp, err := g.CreateNsxtFirewallGroup(&types.NsxtFirewallGroup{Name: "mvm-owner-1-src", TypeValue: "IP_SET",
		IpAddresses: []string{"198.51.100.0/24"}, OwnerRef: &types.OpenApiReference{ID: g.EdgeGateway.ID}})
	if err != nil {
		t.Fatalf("CreateNsxtFirewallGroup: %v", err)
	}
	if grp.NsxtFirewallGroup.ID == "" || len(s.FirewallGroups("edge1")) != 1 {
		t.Fatalf("group %+v", grp.NsxtFirewallGroup)
	}
	rules := &types.NsxtFirewallRuleContainer{UserDefinedRules: []*types.NsxtFirewallRule{
		{Name: "mvm-owner-1-ssh", ActionValue: "ALLOW", Enabled: true, IpProtocol: "IPV4", Direction: "IN",
			SourceFirewallGroups: []types.OpenApiReference{{ID: grp.NsxtFirewallGroup.ID}}},
		{Name: "mvm-owner-2-rdp", ActionValue: "ALLOW", Enabled: true, IpProtocol: "IPV4", Direction: "IN"},
	}}
	fw, err := g.UpdateNsxtFirewall(rules)
	if err != nil {
		t.Fatalf("UpdateNsxtFirewall: %v", err)
	}
	if len(fw.NsxtFirewallRuleContainer.UserDefinedRules) != 2 || fw.NsxtFirewallRuleContainer.UserDefinedRules[0].ID == "" {
		t.Fatalf("after PUT %+v", fw.NsxtFirewallRuleContainer)
	}
	// The PUT replaces the whole list.
	rules.UserDefinedRules = rules.UserDefinedRules[1:]
	if _, err := g.UpdateNsxtFirewall(rules); err != nil {
		t.Fatal(err)
	}
	got, err := g.GetNsxtFirewall()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.NsxtFirewallRuleContainer.UserDefinedRules) != 1 || got.NsxtFirewallRuleContainer.UserDefinedRules[0].Name != "mvm-owner-2-rdp" ||
		len(got.NsxtFirewallRuleContainer.DefaultRules) != 1 {
		t.Fatalf("GET %+v", got.NsxtFirewallRuleContainer)
	}
	// Unknown groups and invalid actions are refused.
	bad := &types.NsxtFirewallRuleContainer{UserDefinedRules: []*types.NsxtFirewallRule{{Name: "x", ActionValue: "ALLOW",
		IpProtocol: "IPV4", Direction: "IN", SourceFirewallGroups: []types.OpenApiReference{{ID: "urn:vcloud:firewallGroup:nope"}}}}}
	if _, err := g.UpdateNsxtFirewall(bad); err == nil {
		t.Fatal("unknown firewall group accepted")
	}
	bad.UserDefinedRules[0].SourceFirewallGroups, bad.UserDefinedRules[0].ActionValue = nil, "PERMIT"
	if _, err := g.UpdateNsxtFirewall(bad); err == nil {
		t.Fatal("invalid action accepted")
	}
	if err := got.DeleteAllRules(); err != nil {
		t.Fatal(err)
	}
	if len(s.FirewallRules("edge1")) != 0 {
		t.Fatal("rules left after DeleteAllRules")
	}
	if err := grp.Delete(); err != nil {
		t.Fatalf("group delete: %v", err)
	}
}

// TestBusyEntityOnConcurrentWrites: while one write runs on the gateway,
// the others are refused with BUSY_ENTITY; with retries all succeed.
func TestBusyEntityOnConcurrentWrites(t *testing.T) {
	s := start(t, &vcd.Options{GatewayTaskDuration: 400 * time.Millisecond})
	c := login(t, s)
	g := edge(t, c)
	u := natURL(t, c, g)

	var mu sync.Mutex
	var wg sync.WaitGroup
	accepted, busy := 0, 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Client.OpenApiPostItemAsync("37.0", u, nil, dnat(fmt.Sprintf("first-%d", i), "203.0.113.20", "10.10.2.1"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case strings.Contains(err.Error(), "BUSY_ENTITY") && strings.Contains(err.Error(), "is busy completing an operation NAT_RULE_CREATE"):
				busy++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if accepted != 1 || busy != 7 {
		t.Fatalf("accepted %d busy %d, want 1 and 7", accepted, busy)
	}
	// A firewall PUT meanwhile is busy too.
	s.SetGatewayBusy("edge1", 50*time.Millisecond)
	if _, err := g.UpdateNsxtFirewall(&types.NsxtFirewallRuleContainer{UserDefinedRules: []*types.NsxtFirewallRule{}}); err == nil || !strings.Contains(err.Error(), "BUSY_ENTITY") {
		t.Fatalf("firewall PUT on a busy gateway: %v", err)
	}
	for s.RunningTasks() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	s.SetGatewayTaskDuration(5 * time.Millisecond)

	// 16 writers retrying on BUSY all get their rule.
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; ; attempt++ {
				task, err := c.Client.OpenApiPostItemAsync("37.0", u, nil, dnat(fmt.Sprintf("owner-%02d", i), fmt.Sprintf("203.0.113.%d", 10+i), "10.10.3.1"))
				if err != nil {
					if strings.Contains(err.Error(), "BUSY_ENTITY") && attempt < 500 {
						time.Sleep(time.Duration(2+attempt%5) * time.Millisecond)
						continue
					}
					t.Errorf("owner %d: %v", i, err)
					return
				}
				if err := task.WaitInspectTaskCompletion(nil, 5*time.Millisecond); err != nil {
					t.Errorf("owner %d task: %v", i, err)
				}
				return
			}
		}()
	}
	wg.Wait()
	if got := len(s.NATRules("edge1")); got != 17 {
		t.Fatalf("%d NAT rules, want 17", got)
	}
}

func TestRawErrorShapes(t *testing.T) {
	s := start(t, nil)
	c := login(t, s)
	hc := &http.Client{Transport: c.Client.Http.Transport}
	get := func(path string, hdr map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		_, _ = fmt.Fprint(b, readAll(resp))
		return resp, b.String()
	}
	tok := map[string]string{"X-Vmware-Vcloud-Access-Token": c.Client.VCDToken, "Accept": "application/*+xml;version=37.0"}
	resp, body := get("/api/vApp/vapp-00000000-0000-0000-0000-000000000000", tok)
	if resp.StatusCode != 403 || !strings.Contains(body, `<Error`) || !strings.Contains(body, `minorErrorCode="ACCESS_TO_RESOURCE_IS_FORBIDDEN"`) || !strings.Contains(body, `majorErrorCode="403"`) {
		t.Fatalf("/api error: %d %s", resp.StatusCode, body)
	}
	resp, body = get("/api/org", nil)
	if resp.StatusCode != 401 || !strings.Contains(body, `minorErrorCode="UNAUTHORIZED"`) {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	resp, body = get("/cloudapi/1.0.0/edgeGateways/urn:vcloud:gateway:00000000-0000-0000-0000-000000000000",
		map[string]string{"X-Vmware-Vcloud-Access-Token": c.Client.VCDToken, "Accept": "application/json;version=37.0"})
	if resp.StatusCode != 404 || !strings.Contains(body, `"minorErrorCode":"RESOURCE_NOT_FOUND"`) || !strings.Contains(body, `"stackTrace"`) {
		t.Fatalf("/cloudapi error: %d %s", resp.StatusCode, body)
	}
	resp, _ = get("/api/org", map[string]string{"X-Vmware-Vcloud-Access-Token": c.Client.VCDToken, "Accept": "application/*+xml;version=30.0"})
	if resp.StatusCode != 406 {
		t.Fatalf("unsupported version: %d", resp.StatusCode)
	}
}

func TestLatencyAndCounts(t *testing.T) {
	s := start(t, nil)
	c := login(t, s)
	s.ResetCounts()
	s.SetLatency(30 * time.Millisecond)
	t0 := time.Now()
	if _, err := c.GetOrgByName("acme"); err != nil {
		t.Fatal(err)
	}
	// GetOrgByName is two requests: the org list, then the org.
	if d := time.Since(t0); d < 60*time.Millisecond {
		t.Fatalf("took %v with 30 ms per request", d)
	}
	if s.Requests("GET /api/org") != 1 || s.Requests("GET /api/org/{id}") != 1 || s.TotalRequests() != 2 {
		t.Fatalf("counts %v", s.RequestCounts())
	}
	s.SetLatency(0)
}

// TestConcurrentClients runs many goroutines against one server (-race).
func TestConcurrentClients(t *testing.T) {
	s := start(t, nil)
	for i := range 50 {
		if _, err := s.AddVM(vcd.VMSpec{Name: fmt.Sprintf("c-%02d", i), PoweredOn: true, Tools: true}); err != nil {
			t.Fatal(err)
		}
	}
	c := login(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0:
				res, err := c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "vm", "pageSize": "10"})
				if err == nil && res.Results.Total < 40 {
					err = fmt.Errorf("total %v", res.Results.Total)
				}
				errs <- err
			case 1:
				errs <- s.RenameVM(fmt.Sprintf("c-%02d", i), fmt.Sprintf("r-%02d", i))
			case 2:
				_, err := s.AddVM(vcd.VMSpec{Name: fmt.Sprintf("n-%02d", i)})
				errs <- err
			case 3:
				var ev []map[string]any
				errs <- c.Client.OpenApiGetAllItems("37.0", mustURL(t, s.URL()+"/cloudapi/1.0.0/auditTrail/"), url.Values{"pageSize": {"40"}}, &ev, nil)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func readAll(resp *http.Response) string {
	b := new(strings.Builder)
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestApplicationPortProfiles(t *testing.T) {
	s := start(t, nil)
	f := setup(t, s)
	g := edge(t, f.c)
	ssh, err := f.org.GetNsxtAppPortProfileByName("SSH", types.ApplicationPortProfileScopeSystem)
	if err != nil {
		t.Fatalf("system SSH profile: %v", err)
	}
	if ssh.NsxtAppPortProfile.ApplicationPorts[0].DestinationPorts[0] != "22" {
		t.Fatalf("SSH %+v", ssh.NsxtAppPortProfile)
	}
	winrm, err := f.org.CreateNsxtAppPortProfile(&types.NsxtAppPortProfile{Name: "mvm-winrm", Scope: types.ApplicationPortProfileScopeTenant,
		ContextEntityId: f.vdc.Vdc.ID, OrgRef: &types.OpenApiReference{ID: f.org.Org.ID},
		ApplicationPorts: []types.NsxtAppPortProfilePort{{Protocol: "TCP", DestinationPorts: []string{"5985-5986"}}}})
	if err != nil {
		t.Fatalf("CreateNsxtAppPortProfile: %v", err)
	}
	byName, err := f.vdc.GetNsxtAppPortProfileByName("mvm-winrm", types.ApplicationPortProfileScopeTenant)
	if err != nil || byName.NsxtAppPortProfile.ID != winrm.NsxtAppPortProfile.ID {
		t.Fatalf("lookup in VDC context: %v", err)
	}
	if _, err := f.org.CreateNsxtAppPortProfile(&types.NsxtAppPortProfile{Name: "bad", Scope: "TENANT", ContextEntityId: f.vdc.Vdc.ID,
		ApplicationPorts: []types.NsxtAppPortProfilePort{{Protocol: "TCP", DestinationPorts: []string{"70000"}}}}); err == nil {
		t.Fatal("port 70000 accepted")
	}
	rule := dnat("mvm-owner-1-dnat", "203.0.113.10", "10.10.1.5")
	rule.ApplicationPortProfile = &types.OpenApiReference{ID: winrm.NsxtAppPortProfile.ID}
	if _, err := g.CreateNatRule(rule); err != nil {
		t.Fatalf("DNAT with a profile: %v", err)
	}
	rule = dnat("x", "203.0.113.11", "10.10.1.6")
	rule.ApplicationPortProfile = &types.OpenApiReference{ID: "urn:vcloud:applicationPortProfile:nope"}
	if _, err := g.CreateNatRule(rule); err == nil {
		t.Fatal("unknown profile accepted")
	}
	if _, err := g.UpdateNsxtFirewall(&types.NsxtFirewallRuleContainer{UserDefinedRules: []*types.NsxtFirewallRule{{Name: "r", ActionValue: "ALLOW",
		IpProtocol: "IPV4", Direction: "IN", ApplicationPortProfiles: []types.OpenApiReference{{ID: ssh.NsxtAppPortProfile.ID}}}}}); err != nil {
		t.Fatalf("firewall with a profile: %v", err)
	}
	if err := winrm.Delete(); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("delete a profile in use: %v", err)
	}
}
