package vcd_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmware/go-vcloud-director/v2/govcd"
	"github.com/vmware/go-vcloud-director/v2/types/v56"

	"github.com/managedvm/managedvm/internal/fakes/vcd"
)

// newClient builds an SDK client that verifies the fake's certificate.
func newClient(t testing.TB, s *vcd.Server) *govcd.VCDClient {
	t.Helper()
	u, err := url.Parse(s.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	// The SDK's default request-id function (VcloudRequestIdBuilderFunc)
	// races on its global counter when one client is shared by goroutines.
	var seq atomic.Uint64
	c := govcd.NewVCDClient(*u, false, govcd.WithAPIVersion("37.0"), govcd.WithHttpTimeout(30),
		govcd.WithVcloudRequestIdFunc(func() string { return fmt.Sprintf("mvm-%d", seq.Add(1)) }))
	c.Client.Http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12}}
	return c
}

func login(t testing.TB, s *vcd.Server) *govcd.VCDClient {
	t.Helper()
	c := newClient(t, s)
	o := s.Options()
	if err := c.Authenticate(o.User, o.Password, o.Org); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return c
}

func start(t testing.TB, o *vcd.Options) *vcd.Server {
	t.Helper()
	s := vcd.New(o)
	t.Cleanup(s.Close)
	return s
}

// wait polls a task every few milliseconds (the SDK's own wait sleeps 3 s).
func wait(t testing.TB, task govcd.Task) error {
	t.Helper()
	return task.WaitInspectTaskCompletion(nil, 5*time.Millisecond)
}

func TestLoginQueryLogout(t *testing.T) {
	s := start(t, nil)
	c := login(t, s)
	if got := s.SessionsCreated(); got != 1 {
		t.Fatalf("SessionsCreated = %d, want 1", got)
	}
	if s.Requests("GET /api/versions") != 1 || s.Requests("POST /cloudapi/1.0.0/sessions") != 1 {
		t.Fatalf("login requests: %v", s.RequestCounts())
	}
	org, err := c.GetOrgByName("acme")
	if err != nil {
		t.Fatalf("GetOrgByName: %v", err)
	}
	if org.Org.ID == "" || org.Org.Name != "acme" {
		t.Fatalf("org = %+v", org.Org)
	}
	vdc, err := org.GetVDCByName("vdc1", false)
	if err != nil {
		t.Fatalf("GetVDCByName: %v", err)
	}
	if len(vdc.Vdc.VdcStorageProfiles.VdcStorageProfile) != 1 || vdc.Vdc.VdcStorageProfiles.VdcStorageProfile[0].Name != "gold" {
		t.Fatalf("storage profiles: %+v", vdc.Vdc.VdcStorageProfiles)
	}
	if len(vdc.Vdc.AvailableNetworks) != 1 || vdc.Vdc.AvailableNetworks[0].Network[0].Name != "net1" {
		t.Fatalf("networks: %+v", vdc.Vdc.AvailableNetworks)
	}
	if _, err := c.GetOrgByName("nope"); !errors.Is(err, govcd.ErrorEntityNotFound) {
		t.Fatalf("GetOrgByName(nope) = %v", err)
	}
	if err := c.Disconnect(); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if n := s.ActiveSessions(); n != 0 {
		t.Fatalf("ActiveSessions after logout = %d", n)
	}
	_, err = c.GetOrgByName("acme")
	if err == nil {
		t.Fatal("call after logout succeeded")
	}
}

func TestLoginRefused(t *testing.T) {
	s := start(t, nil)
	c := newClient(t, s)
	if err := c.Authenticate("orgadmin", "wrong", "acme"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: %v", err)
	}
	if err := c.Authenticate("orgadmin", "Passw0rd-tenant", "other"); err == nil {
		t.Fatal("wrong org accepted")
	}
	// The tenant cannot use the provider endpoint (org System).
	if err := newClient(t, s).Authenticate("orgadmin", "Passw0rd-tenant", "System"); err == nil {
		t.Fatal("tenant logged in as provider")
	}
	// The provider logs in through /sessions/provider.
	if err := newClient(t, s).Authenticate("administrator", "Passw0rd-system", "System"); err != nil {
		t.Fatalf("provider login: %v", err)
	}
	if s.Requests("POST /cloudapi/1.0.0/sessions/provider") != 2 {
		t.Fatalf("provider logins: %v", s.RequestCounts())
	}
	if s.SessionsCreated() != 1 {
		t.Fatalf("SessionsCreated = %d, want 1", s.SessionsCreated())
	}
}

func TestTLSVerification(t *testing.T) {
	s := start(t, nil)
	u, _ := url.Parse(s.APIURL())
	c := govcd.NewVCDClient(*u, false) // system roots: the fake's certificate is not trusted
	err := c.Authenticate("orgadmin", "Passw0rd-tenant", "acme")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate accepted: %v", err)
	}
}

func TestAPIVersionNotSupported(t *testing.T) {
	s := start(t, nil)
	u, _ := url.Parse(s.APIURL())
	c := govcd.NewVCDClient(*u, false, govcd.WithAPIVersion("33.0"))
	c.Client.Http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool()}}
	err := c.Authenticate("orgadmin", "Passw0rd-tenant", "acme")
	if err == nil || !strings.Contains(err.Error(), "33.0 is not supported") {
		t.Fatalf("33.0: %v", err)
	}
	c = login(t, s)
	if !c.Client.APIVCDMaxVersionIs(">= 38.1") || c.Client.APIVCDMaxVersionIs(">= 39.0") {
		t.Fatal("max version should be 38.1")
	}
}

func TestAPIToken(t *testing.T) {
	s := start(t, &vcd.Options{APIToken: "api-token-of-orgadmin"})
	c := newClient(t, s)
	if err := c.SetToken("acme", govcd.ApiTokenHeader, "api-token-of-orgadmin"); err != nil {
		t.Fatalf("SetToken: %v", err)
	}
	if _, err := c.GetOrgByName("acme"); err != nil {
		t.Fatalf("after API token: %v", err)
	}
	if err := newClient(t, s).SetToken("acme", govcd.ApiTokenHeader, "wrong"); err == nil {
		t.Fatal("wrong API token accepted")
	}
}

func TestTokenExpiryAndRelogin(t *testing.T) {
	s := start(t, nil)
	c := login(t, s)
	s.ExpireSessions()
	_, err := c.GetOrgByName("acme")
	if err == nil {
		t.Fatal("expired token accepted")
	}
	if err := c.Authenticate("orgadmin", "Passw0rd-tenant", "acme"); err != nil {
		t.Fatalf("re-login: %v", err)
	}
	if _, err := c.GetOrgByName("acme"); err != nil {
		t.Fatalf("after re-login: %v", err)
	}
	if s.SessionsCreated() != 2 {
		t.Fatalf("SessionsCreated = %d", s.SessionsCreated())
	}

	// TTL-based expiry.
	s2 := start(t, &vcd.Options{TokenTTL: 500 * time.Millisecond})
	c2 := login(t, s2)
	if _, err := c2.GetOrgByName("acme"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	if _, err := c2.GetOrgByName("acme"); err == nil {
		t.Fatal("token used after its TTL")
	}
}

func queryVMs(t testing.TB, c *govcd.VCDClient, filter string) []*types.QueryResultVMRecordType {
	t.Helper()
	var out []*types.QueryResultVMRecordType
	for page := 1; ; page++ {
		p := map[string]string{"type": "vm", "format": "records", "pageSize": "128", "page": fmt.Sprint(page)}
		if filter != "" {
			p["filter"] = filter
			p["filterEncoded"] = "true"
		}
		res, err := c.Client.QueryWithNotEncodedParams(nil, p)
		if err != nil {
			t.Fatalf("query page %d: %v", page, err)
		}
		out = append(out, res.Results.VMRecord...)
		if len(out) >= int(res.Results.Total) {
			return out
		}
	}
}

func TestQueryServicePaging(t *testing.T) {
	s := start(t, &vcd.Options{MaxPageSize: 100})
	for i := range 250 {
		if _, err := s.AddVM(vcd.VMSpec{Name: fmt.Sprintf("vm-%03d", i), CPUs: 2, MemoryMB: 4096, PoweredOn: i%2 == 0, Tools: true}); err != nil {
			t.Fatal(err)
		}
	}
	c := login(t, s)
	res, err := c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "vm", "format": "records", "pageSize": "500"})
	if err != nil {
		t.Fatal(err)
	}
	// 250 VMs + the catalog's template VM; pageSize capped to the maximum.
	if res.Results.Total != 251 || res.Results.PageSize != 100 || len(res.Results.VMRecord) != 100 || res.Results.Page != 1 {
		t.Fatalf("total %v pageSize %d records %d", res.Results.Total, res.Results.PageSize, len(res.Results.VMRecord))
	}
	next := false
	for _, l := range res.Results.Link {
		next = next || l.Rel == "nextPage"
	}
	if !next {
		t.Fatal("no nextPage link")
	}
	before := s.Requests("GET /api/query")
	all := queryVMs(t, c, "isVAppTemplate==false")
	if len(all) != 250 {
		t.Fatalf("got %d VMs, want 250", len(all))
	}
	if n := s.Requests("GET /api/query") - before; n != 3 {
		t.Fatalf("%d query requests for 250 VMs at 100 per page, want 3", n)
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.ID] {
			t.Fatalf("duplicate %s", r.ID)
		}
		seen[r.ID] = true
		if r.Cpus != 2 || r.MemoryMB != 4096 || r.IpAddress == "" || r.VdcName != "vdc1" || r.ContainerName != r.Name || r.GuestOS != "Ubuntu Linux (64-bit)" {
			t.Fatalf("record %+v", r)
		}
	}
	on := queryVMs(t, c, "status==POWERED_ON;isVAppTemplate==false")
	if len(on) != 125 {
		t.Fatalf("POWERED_ON: %d", len(on))
	}
	one := queryVMs(t, c, "name==vm-042")
	if len(one) != 1 || one[0].Name != "vm-042" || one[0].VmToolsStatus != "toolsOk" {
		t.Fatalf("name==vm-042: %+v", one)
	}
	or := queryVMs(t, c, "(name==vm-001,name==vm-002);isDeployed==true")
	if len(or) != 0 {
		// vm-001 is powered off, vm-002 on: exactly one matches.
	}
	or = queryVMs(t, c, "(name==vm-001,name==vm-002);status==POWERED_ON")
	if len(or) != 1 || or[0].Name != "vm-002" {
		t.Fatalf("grouped filter: %+v", or)
	}
	tpl := queryVMs(t, c, "isVAppTemplate==true")
	if len(tpl) != 1 || tpl[0].CatalogName != "public" {
		t.Fatalf("template VMs: %+v", tpl)
	}
	// Sorting.
	res, err = c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "vm", "sortDesc": "name", "pageSize": "2"})
	if err != nil || res.Results.VMRecord[0].Name != "vm-249" {
		t.Fatalf("sortDesc: %v %+v", err, res.Results.VMRecord)
	}
	// Out of range page.
	_, err = c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "vm", "page": "99"})
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("page 99: %v", err)
	}
	// Admin query types are for the provider.
	_, err = c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "adminVM"})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("adminVM as tenant: %v", err)
	}
	admin := newClient(t, s)
	if err := admin.Authenticate("administrator", "Passw0rd-system", "System"); err != nil {
		t.Fatal(err)
	}
	res, err = admin.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "adminVM", "pageSize": "5"})
	if err != nil || len(res.Results.AdminVMRecord) != 5 || res.Results.Total != 251 {
		t.Fatalf("adminVM: %v %v", err, res.Results.Total)
	}
}

func TestQueryOtherTypes(t *testing.T) {
	s := start(t, nil)
	if _, err := s.AddVM(vcd.VMSpec{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	c := login(t, s)
	for typ, want := range map[string]int{"vApp": 1, "vAppTemplate": 1, "catalog": 1, "catalogItem": 1, "orgVdc": 1,
		"orgVdcStorageProfile": 1, "orgVdcNetwork": 1, "vAppNetwork": 1, "edgeGateway": 1} {
		res, err := c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": typ})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if int(res.Results.Total) != want {
			t.Fatalf("%s: total %v", typ, res.Results.Total)
		}
	}
	res, err := c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "orgVdcNetwork"})
	if err != nil || res.Results.OrgVdcNetworkRecord[0].Name != "net1" || res.Results.OrgVdcNetworkRecord[0].ConnectedTo != "edge1" {
		t.Fatalf("orgVdcNetwork: %v %+v", err, res.Results.OrgVdcNetworkRecord)
	}
	res, err = c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "orgVdcStorageProfile"})
	if err != nil || !res.Results.OrgVdcStorageProfileRecord[0].IsDefaultStorageProfile {
		t.Fatalf("storage profile: %v", err)
	}
	if _, err := c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "disk"}); err == nil {
		t.Fatal("unsupported query type accepted")
	}
	if _, err := c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "vm", "filter": "name=~x"}); err == nil {
		t.Fatal("bad filter accepted")
	}
}

func TestCatalogAndTemplateLookup(t *testing.T) {
	s := start(t, nil)
	if err := s.AddTemplate("public", "win2022", "windows2022srvNext_64Guest", 4, 8192, true); err != nil {
		t.Fatal(err)
	}
	c := login(t, s)
	org, err := c.GetOrgByName("acme")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := org.GetCatalogByName("public", false)
	if err != nil {
		t.Fatalf("GetCatalogByName: %v", err)
	}
	if len(cat.Catalog.CatalogItems) != 1 || len(cat.Catalog.CatalogItems[0].CatalogItem) != 2 {
		t.Fatalf("catalog items: %+v", cat.Catalog.CatalogItems)
	}
	tpl, err := cat.GetVAppTemplateByName("win2022")
	if err != nil {
		t.Fatalf("GetVAppTemplateByName: %v", err)
	}
	if tpl.VAppTemplate.Children == nil || len(tpl.VAppTemplate.Children.VM) != 1 {
		t.Fatalf("template children: %+v", tpl.VAppTemplate.Children)
	}
	item, err := cat.GetCatalogItemByName("ubuntu-22.04", false)
	if err != nil {
		t.Fatalf("GetCatalogItemByName: %v", err)
	}
	t2, err := item.GetVAppTemplate()
	if err != nil || t2.VAppTemplate.Name != "ubuntu-22.04" {
		t.Fatalf("item template: %v", err)
	}
	if _, err := cat.GetVAppTemplateByName("missing"); err == nil {
		t.Fatal("missing template found")
	}
	if _, err := org.GetCatalogByName("nope", false); !errors.Is(err, govcd.ErrorEntityNotFound) {
		t.Fatalf("missing catalog: %v", err)
	}
}

func TestSharedAndPrivateCatalogs(t *testing.T) {
	s := start(t, nil)
	if err := s.AddCatalog("vendor-public", true); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTemplate("vendor-public", "debian-12", "debian12_64Guest", 1, 1024, true); err != nil {
		t.Fatal(err)
	}
	f := setup(t, s)
	cat, err := f.org.GetCatalogByName("vendor-public", false)
	if err != nil {
		t.Fatalf("shared catalog: %v", err)
	}
	tpl, err := cat.GetVAppTemplateByName("debian-12")
	if err != nil {
		t.Fatalf("shared template: %v", err)
	}
	p := f.params("from-shared")
	p.Source.HREF = tpl.VAppTemplate.HREF
	p.SourcedItem.Source.HREF = tpl.VAppTemplate.Children.VM[0].HREF
	if _, err := f.vdc.CreateVappFromTemplate(p); err != nil {
		t.Fatalf("instantiate from a shared catalog: %v", err)
	}
	if info, _ := s.VM("from-shared"); info.Template != "debian-12" || info.GuestOS != "debian12_64Guest" {
		t.Fatalf("vm %+v", info)
	}
	// acme sees its own catalog and the shared one.
	res, err := f.c.Client.QueryWithNotEncodedParams(nil, map[string]string{"type": "catalog"})
	if err != nil || res.Results.Total != 2 {
		t.Fatalf("acme sees %v catalogs: %v", res.Results.Total, err)
	}
}

func TestSessionInfoAndNSXBacking(t *testing.T) {
	s := start(t, nil)
	f := setup(t, s)
	info, err := f.c.Client.GetSessionInfo()
	if err != nil {
		t.Fatalf("GetSessionInfo: %v", err)
	}
	if info.User.Name != "orgadmin" || info.Org.Name != "acme" || len(info.Roles) != 1 || info.Roles[0] != vcd.RoleOrgAdmin {
		t.Fatalf("session %+v", info)
	}
	if !f.vdc.IsNsxt() || f.vdc.IsNsxv() {
		t.Fatal("default VDC should be NSX-T backed")
	}
	if err := s.AddUser("acme", "viewer", "Passw0rd-viewer", vcd.RoleVAppUser); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s)
	if err := c.Authenticate("viewer", "Passw0rd-viewer", "acme"); err != nil {
		t.Fatal(err)
	}
	if info, err := c.Client.GetSessionInfo(); err != nil || info.Roles[0] != vcd.RoleVAppUser {
		t.Fatalf("viewer session %v %+v", err, info)
	}
	s2 := start(t, &vcd.Options{NetworkProvider: "NSX_V"})
	f2 := setup(t, s2)
	if !f2.vdc.IsNsxv() {
		t.Fatal("NSX_V option not reported")
	}
}
