package vcd

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	fakevcd "github.com/managedvm/managedvm/internal/fakes/vcd"
	"github.com/managedvm/managedvm/internal/httpapi"
	"github.com/managedvm/managedvm/internal/testkit"
)

func testConn(t *testing.T, s *fakevcd.Server, cred Credentials) *conn {
	t.Helper()
	base, err := parseEndpoint(s.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	return newConn(base, httpapi.NewClient(s.CertPool(), false, 16), cred)
}

func tenant(s *fakevcd.Server) Credentials {
	o := s.Options()
	return Credentials{Org: o.Org, User: o.User, Password: guest.NewSecret(o.Password)}
}

func currentUser(ctx context.Context, c *conn) (string, error) {
	var cur struct {
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	err := c.getJSON(ctx, "/cloudapi/1.0.0/sessions/current", nil, &cur)
	return cur.User.Name, err
}

func TestSessionSharedUnderConcurrency(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	c := testConn(t, s, tenant(s))
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := currentUser(ctx, c)
			if err == nil && u != s.Options().User {
				err = errors.New("wrong user " + u)
			}
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.SessionsCreated(); n != 1 {
		t.Fatalf("64 concurrent calls opened %d sessions, want 1", n)
	}
	if n := s.Requests("POST /cloudapi/1.0.0/sessions"); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
	if err := c.logout(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.ActiveSessions(); n != 0 {
		t.Fatalf("after logout %d sessions active", n)
	}
	if err := c.logout(ctx); err != nil {
		t.Fatalf("second logout: %v", err)
	}
}

func TestSessionRenewedOnExpiry(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	c := testConn(t, s, tenant(s))
	ctx := context.Background()
	if _, err := currentUser(ctx, c); err != nil {
		t.Fatal(err)
	}
	s.ExpireSessions()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := currentUser(ctx, c); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.SessionsCreated(); n != 2 {
		t.Fatalf("%d sessions after one expiry, want 2", n)
	}
}

func TestLoginAPIToken(t *testing.T) {
	s := fakevcd.New(&fakevcd.Options{APIToken: "canary-api-token-7f3e"})
	defer s.Close()
	o := s.Options()
	c := testConn(t, s, Credentials{Org: o.Org, APIToken: guest.NewSecret("canary-api-token-7f3e")})
	u, err := currentUser(context.Background(), c)
	if err != nil || u != o.User {
		t.Fatalf("user %q, %v", u, err)
	}
	bad := testConn(t, s, Credentials{Org: o.Org, APIToken: guest.NewSecret("canary-wrong-token-91")})
	_, err = currentUser(context.Background(), bad)
	testkit.WantCode(t, "", err, errs.Unauthenticated)
	if strings.Contains(err.Error(), "canary") {
		t.Fatalf("error shows the token: %v", err)
	}
}

func TestLoginProvider(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	c := testConn(t, s, Credentials{Org: "System", User: "administrator", Password: guest.NewSecret(s.Options().SysAdminPassword)})
	u, err := currentUser(context.Background(), c)
	if err != nil || u != "administrator" {
		t.Fatalf("user %q, %v", u, err)
	}
	if n := s.Requests("POST /cloudapi/1.0.0/sessions/provider"); n != 1 {
		t.Fatalf("%d provider logins", n)
	}
}

func TestLoginWrongPassword(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	cred := tenant(s)
	cred.Password = guest.NewSecret("canary-pw-4411")
	_, err := currentUser(context.Background(), testConn(t, s, cred))
	testkit.WantCode(t, "", err, errs.Unauthenticated)
	if strings.Contains(err.Error(), "canary") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestTLSVerified(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	base, _ := parseEndpoint(s.URL())
	c := newConn(base, httpapi.NewClient(nil, false, 4), tenant(s)) // system pool: the fake's CA is unknown
	_, err := currentUser(context.Background(), c)
	testkit.WantCode(t, "", err, errs.PermissionDenied)
	if s.SessionsCreated() != 0 {
		t.Fatal("a session was opened over an unverified connection")
	}
	if _, err := c.supportedVersions(context.Background()); !errs.Is(err, errs.PermissionDenied) {
		t.Fatalf("versions: %v", err)
	}
}

func TestVersions(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	vs, err := testConn(t, s, tenant(s)).supportedVersions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if dep, ok := vs[APIVersion]; !ok || dep {
		t.Fatalf("versions %v: %s missing or deprecated", vs, APIVersion)
	}
}

func TestErrorMapping(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	c := testConn(t, s, tenant(s))
	ctx := context.Background()
	var v struct{}
	// /api: an unknown object is 403 ACCESS_TO_RESOURCE_IS_FORBIDDEN.
	err := c.getXML(ctx, "/api/vApp/vm-00000000-0000-0000-0000-000000000000", nil, &v)
	testkit.WantCode(t, "", err, errs.NotFound)
	var a *APIError
	if !errors.As(err, &a) || a.Status != 403 || a.Minor != "ACCESS_TO_RESOURCE_IS_FORBIDDEN" || strings.HasPrefix(a.Message, "[") {
		t.Fatalf("APIError %+v", a)
	}
	// /cloudapi: 404 RESOURCE_NOT_FOUND.
	err = c.getJSON(ctx, "/cloudapi/1.0.0/edgeGateways/urn:vcloud:gateway:00000000-0000-0000-0000-000000000000", nil, &v)
	testkit.WantCode(t, "", err, errs.NotFound)
	// Provider-only query as a tenant: 403, PermissionDenied.
	_, err = c.do(ctx, request{method: http.MethodGet, path: "/api/query", query: map[string][]string{"type": {"adminVM"}}})
	testkit.WantCode(t, "", err, errs.PermissionDenied)
	// BUSY_ENTITY from the cloudapi JSON body.
	busy := statusErr(http.MethodPost, "/cloudapi/1.0.0/edgeGateways/x/nat/rules", 400, "application/json",
		[]byte(`{"minorErrorCode":"BUSY_ENTITY","message":"[ abc ] The entity Ref: com.vmware.vcloud.entity.gateway:1 is busy completing an operation NAT_RULE_CREATE."}`))
	testkit.WantCode(t, "", busy, errs.Unavailable)
	if !isBusy(busy) {
		t.Fatal("BUSY_ENTITY not recognised")
	}
	// BUSY on /api, where only the message says it.
	busy = statusErr(http.MethodPost, "/api/vApp/vapp-1/action/undeploy", 400, "application/vnd.vmware.vcloud.error+xml",
		[]byte(`<Error majorErrorCode="400" minorErrorCode="BAD_REQUEST" message="[ x ] The entity Ref: com.vmware.vcloud.entity.vapp:1 is busy completing an operation VDC_INSTANTIATE_VAPP."/>`))
	if !isBusy(busy) || !errs.Is(busy, errs.Unavailable) {
		t.Fatalf("vApp BUSY: %v", busy)
	}
	testkit.WantCode(t, "", statusErr(http.MethodPost, "/api/x", 400, "", []byte(`<Error minorErrorCode="DUPLICATE_NAME" message="dup"/>`)), errs.AlreadyExists)
	testkit.WantCode(t, "", statusErr(http.MethodPost, "/api/x", 500, "", nil), errs.OutcomeUnknown)
	testkit.WantCode(t, "", statusErr(http.MethodGet, "/api/x", 500, "", nil), errs.Unavailable)
}

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"https://vcd.example":           "https://vcd.example",
		"https://vcd.example/api":       "https://vcd.example",
		"https://vcd.example:8443/api/": "https://vcd.example:8443",
		"https://vcd.example/cloudapi":  "https://vcd.example",
	} {
		if got, err := parseEndpoint(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"", "vcd.example", "ftp://x", "https://u:p@vcd.example", "https://vcd.example/other", "https://x/api?x=1"} {
		_, err := parseEndpoint(in)
		testkit.WantCode(t, "", err, errs.InvalidArgument)
	}
}

func TestForeignHrefRefused(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	c := testConn(t, s, tenant(s))
	var v struct{}
	err := c.getXML(context.Background(), "https://attacker.example/api/task/1", nil, &v)
	testkit.WantCode(t, "", err, errs.FailedPrecondition)
	err = c.getXML(context.Background(), s.URL()+".attacker.example/api/task/1", nil, &v)
	testkit.WantCode(t, "", err, errs.FailedPrecondition) // not Unavailable: nothing was dialled
}
