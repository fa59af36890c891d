package vsphere_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// observer logs in as another user to look at the server's sessions.
func observer(t *testing.T, sim *vspheresim.Sim, user, pass string) *govmomi.Client {
	t.Helper()
	u := *sim.URL
	u.User = url.UserPassword(user, pass)
	c, err := govmomi.NewClient(t.Context(), &u, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Logout(context.Background()) })
	return c
}

// sessionsOf returns the keys of the sessions user holds.
func sessionsOf(t *testing.T, c *govmomi.Client, user string) []string {
	t.Helper()
	var sm mo.SessionManager
	if err := c.RetrieveOne(t.Context(), *c.ServiceContent.SessionManager, []string{"sessionList"}, &sm); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range sm.SessionList {
		if s.UserName == user {
			keys = append(keys, s.Key)
		}
	}
	return keys
}

func TestOneSessionUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{Users: map[string]string{"observer": "obs-pass"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{Thumbprint: sim.Thumbprint})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	obs := observer(t, sim, "observer", "obs-pass")
	var vc *vim25.Client
	if !p.As(&vc) || vc == nil {
		t.Fatal("As(**vim25.Client) gave nothing")
	}

	load := func() {
		var wg sync.WaitGroup
		errc := make(chan error, 64)
		for i := range 64 {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					_, err = p.List(ctx, nil)
				} else {
					_, err = p.Zones(ctx)
				}
				if err != nil {
					errc <- err
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
	}
	load()
	keys := sessionsOf(t, obs, sim.Username)
	if len(keys) != 1 || driverOf(t, p).Logins() != 1 {
		t.Fatalf("after 64 concurrent calls: %d sessions (%v), %d logins; want exactly 1", len(keys), keys, driverOf(t, p).Logins())
	}
	// The session expires (an administrator terminates it): the next calls
	// log in again once, transparently.
	if _, err := methods.TerminateSession(ctx, obs.Client, &types.TerminateSession{This: *obs.ServiceContent.SessionManager, SessionId: keys}); err != nil {
		t.Fatal(err)
	}
	load()
	keys2 := sessionsOf(t, obs, sim.Username)
	if len(keys2) != 1 || keys2[0] == keys[0] || driverOf(t, p).Logins() != 2 {
		t.Fatalf("after the session was terminated and 64 concurrent calls: sessions %v (before %v), %d logins; want one new session, 2 logins", keys2, keys, driverOf(t, p).Logins())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if keys := sessionsOf(t, obs, sim.Username); len(keys) != 0 {
		t.Fatalf("after Close %d sessions remain", len(keys))
	}
}

func TestTLSAndLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	// conn is New's required arguments; mutate changes them and the
	// options.
	type conn struct {
		URL, Username string
		Password      guest.Secret
		vsphere.Options
	}
	base := conn{URL: sim.URL.String(), Username: sim.Username, Password: guest.NewSecret(sim.Password)}
	try := func(name string, mutate func(*conn), want errs.Code) {
		t.Run(name, func(t *testing.T) {
			o := base
			mutate(&o)
			p, err := vsphere.New(ctx, o.URL, o.Username, o.Password, &o.Options)
			if err == nil {
				defer p.Close()
			}
			if got := errs.CodeOf(err); got != want {
				t.Fatalf("New: %v (code %v), want %v", err, got, want)
			}
			if pw := o.Password.Reveal(); err != nil && (strings.Contains(err.Error(), sim.Password) || pw != "" && strings.Contains(err.Error(), pw)) {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
	// A refused certificate is PermissionDenied, as SSH's host-key
	// mismatch: retrying cannot help.
	try("DefaultVerifiesAndRefusesUnknownCA", func(o *conn) {}, errs.PermissionDenied)
	try("PinnedThumbprint", func(o *conn) { o.Thumbprint = sim.Thumbprint }, errs.OK)
	try("WrongThumbprint", func(o *conn) {
		o.Thumbprint = strings.Repeat("AB:", 31) + "AB"
	}, errs.PermissionDenied)
	try("CAPool", func(o *conn) { o.RootCAs = sim.CAs }, errs.OK)
	try("CAPoolWrongHostName", func(o *conn) {
		// The certificate names 127.0.0.1, not localhost.
		u := *sim.URL
		u.Host = "localhost:" + sim.URL.Port()
		o.URL, o.RootCAs = u.String(), sim.CAs
	}, errs.PermissionDenied)
	try("NothingListening", func(o *conn) {
		o.URL, o.RootCAs = closedURL(t), sim.CAs
	}, errs.Unavailable)
	try("ExplicitInsecure", func(o *conn) { o.Insecure = true }, errs.OK)
	try("WrongPassword", func(o *conn) {
		o.RootCAs = sim.CAs
		o.Password = guest.NewSecret("not-the-Pa55word")
	}, errs.Unauthenticated)
	try("MissingURL", func(o *conn) { o.URL = "" }, errs.InvalidArgument)
	try("MissingUsername", func(o *conn) { o.Username = "" }, errs.InvalidArgument)
	try("MissingPassword", func(o *conn) { o.Password = guest.Secret{} }, errs.InvalidArgument)
	try("NotHTTP", func(o *conn) { o.URL = "ftp://" + sim.URL.Host + "/sdk" }, errs.InvalidArgument)
}

// closedURL is an SDK URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "https://" + addr + "/sdk"
}

// TestCloseEndsStreams: Provider.Close ends its Watch streams (Next then
// says the stream is closed) and leaves no session behind: no stream call
// logs in again after the logout. Watch after Close is refused.
func TestCloseEndsStreams(t *testing.T) {
	t.Parallel() // mostly waiting for in-flight waits to end
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{Users: map[string]string{"observer": "obs-pass"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{RootCAs: sim.CAs})
	if err != nil {
		t.Fatal(err)
	}
	obs := observer(t, sim, "observer", "obs-pass")
	var streams []*provider.Stream
	for range 3 {
		st, err := p.Watch(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for i, st := range streams {
		nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := st.Next(nctx)
		cancel()
		if !errors.Is(err, provider.ErrStreamClosed) {
			t.Errorf("stream %d: Next after Provider.Close: %v, want ErrStreamClosed", i, err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // any wait still in flight has ended
	if keys := sessionsOf(t, obs, sim.Username); len(keys) != 0 || driverOf(t, p).Logins() != 1 {
		t.Fatalf("after Close: %d sessions of the driver's user, %d logins; want none, 1", len(keys), driverOf(t, p).Logins())
	}
	if _, err := p.Watch(ctx, ""); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("Watch after Close: %v, want FailedPrecondition", err)
	}
}
