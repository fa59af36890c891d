package ovirt

import (
	"context"
	"crypto/x509"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	ovirtsdk "github.com/ovirt/go-ovirt"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	fakeovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
	"github.com/managedvm/managedvm/internal/httpapi"
	"github.com/managedvm/managedvm/internal/testkit"
)

func testConn(t testing.TB, s *fakeovirt.Server) *conn {
	t.Helper()
	base, apiPath, err := parseEngineURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	return newConn(base, apiPath, httpapi.NewClient(s.CertPool(), false, 64), s.User(), guest.NewSecret(s.Password()))
}

func getAPI(ctx context.Context, c *conn) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/"})
	return err
}

// 64 concurrent calls on a fresh connection log in once.
func TestConnOneLoginUnder64Calls(t *testing.T) {
	t.Parallel()
	s := fakeovirt.New(nil)
	defer s.Close()
	c := testConn(t, s)
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- getAPI(context.Background(), c)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Stats().Logins; n != 1 {
		t.Fatalf("logins = %d, want 1", n)
	}
}

// An expired token (HTML 401) and an engine restart (tokens forgotten)
// each cost one login, however many calls see the refusal.
func TestConnRenewsOnce(t *testing.T) {
	t.Parallel()
	s := fakeovirt.New(nil)
	defer s.Close()
	c := testConn(t, s)
	ctx := context.Background()
	if err := getAPI(ctx, c); err != nil {
		t.Fatal(err)
	}
	for round, fault := range []func(){s.ExpireTokens, func() { s.Restart(0) }} {
		fault()
		var wg sync.WaitGroup
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := getAPI(ctx, c); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if n := s.Stats().Logins; n != round+2 {
			t.Fatalf("round %d: logins = %d, want %d", round, n, round+2)
		}
	}
}

// go-ovirt itself returns the HTML 401 as a *ResponseParseError, not an
// *AuthError: the reason this driver renews on the status, not on the SDK
// error type.
func TestSDKExpiredTokenIsParseError(t *testing.T) {
	t.Parallel()
	s := fakeovirt.New(nil)
	defer s.Close()
	sdk, err := ovirtsdk.NewConnectionBuilder().URL(s.URL()).Username(s.User()).Password(s.Password()).CACert(s.CACertPEM()).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.SystemService().Get().Send(); err != nil {
		t.Fatal(err)
	}
	s.ExpireTokens()
	_, err = sdk.SystemService().Get().Send()
	if _, ok := err.(*ovirtsdk.ResponseParseError); !ok {
		t.Fatalf("go-ovirt after expiry: %T %v, want *ResponseParseError", err, err)
	}
}

func TestConnLogout(t *testing.T) {
	t.Parallel()
	s := fakeovirt.New(nil)
	defer s.Close()
	c := testConn(t, s)
	ctx := context.Background()
	if err := getAPI(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := c.logout(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Logouts != 1 || st.EmptyLogouts != 0 {
		t.Fatalf("stats %+v, want one logout revoking a token", st)
	}
	// A second logout has nothing to revoke and sends nothing.
	if err := c.logout(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Logouts != 1 || st.EmptyLogouts != 0 {
		t.Fatalf("stats %+v after a second logout", st)
	}
}

func TestConnBadPassword(t *testing.T) {
	t.Parallel()
	s := fakeovirt.New(nil)
	defer s.Close()
	c := testConn(t, s)
	c.pass = guest.NewSecret("canary-Pa55word")
	err := getAPI(context.Background(), c)
	testkit.WantCode(t, "case 1", err, errs.Unauthenticated)
	if strings.Contains(err.Error(), "canary") {
		t.Fatalf("password in error: %v", err)
	}
	c.user = "admin@nosuchprofile"
	testkit.WantCode(t, "case 2", getAPI(context.Background(), c), errs.Unauthenticated)
}

// TLS is verified: a client without the engine CA is refused before any
// login is sent.
func TestConnVerifiesTLS(t *testing.T) {
	t.Parallel()
	s := fakeovirt.New(nil)
	defer s.Close()
	base, apiPath, _ := parseEngineURL(s.URL())
	c := newConn(base, apiPath, httpapi.NewClient(x509.NewCertPool(), false, 4), s.User(), guest.NewSecret(s.Password()))
	err := getAPI(context.Background(), c)
	testkit.WantCode(t, "untrusted certificate", err, errs.PermissionDenied)
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("error %v does not name the certificate", err)
	}
	if n := s.Stats().Logins; n != 0 {
		t.Fatalf("logins = %d, want 0", n)
	}
}

func TestConnErrorCodes(t *testing.T) {
	t.Parallel()
	s := fakeovirt.New(nil)
	defer s.Close()
	c := testConn(t, s)
	ctx := context.Background()
	id, err := s.AddVM(fakeovirt.VMSpec{Name: "codes"})
	if err != nil {
		t.Fatal(err)
	}
	start := request{method: http.MethodPost, path: "/vms/" + id + "/start", body: []byte("<action/>")}
	stop := request{method: http.MethodPost, path: "/vms/" + id + "/stop", body: []byte("<action/>")}

	_, err = c.do(ctx, request{method: http.MethodGet, path: "/vms/no-such-vm"})
	testkit.WantCode(t, "case 4", err, errs.NotFound)

	s.FaultVMLocked("POST", "/vms/*/start", "run", 1)
	_, err = c.do(ctx, start)
	testkit.WantCode(t, "case 5", err, errs.Unavailable)

	s.FaultInProgress("POST", "/vms/*/start", "run", 1)
	_, err = c.do(ctx, start)
	testkit.WantCode(t, "case 6", err, errs.Unavailable)

	_, err = c.do(ctx, stop) // not running
	testkit.WantCode(t, "case 7", err, errs.FailedPrecondition)

	_, err = c.do(ctx, request{method: http.MethodGet, path: "/vms", query: map[string][]string{"follow": {"bogus"}}})
	testkit.WantCode(t, "case 8", err, errs.InvalidArgument)

	// A lost answer to a change is OutcomeUnknown, to a read Unavailable.
	s.AddRule(fakeovirt.Rule{Method: "POST", Path: "/vms/*/start", Times: 1, Drop: fakeovirt.DropAfter})
	_, err = c.do(ctx, start)
	testkit.WantCode(t, "case 9", err, errs.OutcomeUnknown)
	s.AddRule(fakeovirt.Rule{Method: "GET", Path: "/vms/*", Times: 1, Drop: fakeovirt.DropBefore})
	_, err = c.do(ctx, request{method: http.MethodGet, path: "/vms/" + id})
	testkit.WantCode(t, "case 10", err, errs.Unavailable)

	// The proxy's 503 while the engine restarts: nothing was done.
	s.Restart(time.Hour)
	_, err = c.do(ctx, request{method: http.MethodGet, path: "/"})
	testkit.WantCode(t, "case 11", err, errs.Unavailable)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.do(cctx, request{method: http.MethodGet, path: "/"})
	testkit.WantCode(t, "case 12", err, errs.Canceled)
}
