package winrm_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
	"github.com/managedvm/managedvm/internal/testkit"
)

// redirect is a DialContext that records the address the executor asked
// for and connects to the fake guest instead, so that the port the
// Dialer chose from the target can be checked.
type redirect struct {
	to    string
	mu    sync.Mutex
	addrs []string
}

func (r *redirect) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.addrs = append(r.addrs, addr)
	r.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, network, r.to)
}

func (r *redirect) asked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...)
}

func newRedirect(g *fakeGuest) *redirect {
	return &redirect{to: net.JoinHostPort(g.srv.Host(), strconv.Itoa(g.srv.Port()))}
}

func windowsTarget(t *testing.T, g *fakeGuest, ports ...guest.Port) guest.Target {
	t.Helper()
	ip, err := netip.ParseAddr(g.srv.Host())
	if err != nil {
		t.Fatal(err)
	}
	return guest.Target{VM: "vc/vm-1", Provider: "vc", VMID: "vm-1", Family: guest.Windows, PublicIP: ip, Ports: ports}
}

var winPorts = []guest.Port{{Protocol: "tcp", Number: 5985}, {Protocol: "tcp", Number: 5986}, {Protocol: "tcp", Number: 3389}}

// TestDialer: the Dialer reaches a Windows target at its public IP over
// HTTPS with NTLM on port 5986 by default, authenticates before it
// returns, and the executor it returns runs commands.
func TestDialer(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	r := newRedirect(g)
	var got []guest.Target
	d := winrm.Dialer(winrm.DialerConfig{OptionsFor: func(_ context.Context, tg guest.Target) (*winrm.Options, error) {
		got = append(got, tg)
		return &winrm.Options{CACertPEM: g.srv.CACertPEM(), DialContext: r.dial}, nil
	}})
	tg := windowsTarget(t, g, winPorts...)
	ex, err := d.Dial(t.Context(), tg, guest.Password(testUser, testPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	if len(got) != 1 || got[0].VM != "vc/vm-1" {
		t.Fatalf("OptionsFor saw %+v", got)
	}
	if a := r.asked(); len(a) == 0 || a[0] != net.JoinHostPort(g.srv.Host(), "5986") {
		t.Fatalf("dialed %v, want the target's public IP on 5986", a)
	}
	if st := g.srv.Stats(); st.Handshakes == 0 || st.Commands != 1 {
		t.Fatalf("Dial did not authenticate with one command: %+v", st)
	}
	out, err := guest.Output(t.Context(), ex, guest.Command{Args: []string{"Write-Output", "dialed"}})
	if err != nil || out != "dialed" {
		t.Fatalf("Run through the dialed executor: %q, %v", out, err)
	}

	// A target that lists no ports gets the default too; an unknown
	// family is tried.
	tg.Ports, tg.Family = nil, guest.FamilyUnknown
	ex2, err := d.Dial(t.Context(), tg, guest.Password(testUser, testPassword))
	if err != nil {
		t.Fatal(err)
	}
	_ = ex2.Close()
}

// TestDialerPort: Options.Port wins; Options.HTTP picks 5985; a target
// whose NAT does not open the port is refused before any connection.
func TestDialerPort(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{PlainHTTP: true})
	r := newRedirect(g)
	cred := guest.Password(testUser, testPassword)
	d := winrm.Dialer(winrm.DialerConfig{Options: &winrm.Options{HTTP: true, DialContext: r.dial}})
	ex, err := d.Dial(t.Context(), windowsTarget(t, g, winPorts...), cred)
	if err != nil {
		t.Fatal(err)
	}
	_ = ex.Close()
	if a := r.asked(); len(a) == 0 || !strings.HasSuffix(a[0], ":5985") {
		t.Fatalf("dialed %v, want port 5985 for HTTP", a)
	}

	// Only RDP open: HTTP's 5985 is not reachable, and HTTPS's 5986
	// neither.
	rdp := windowsTarget(t, g, guest.Port{Protocol: "tcp", Number: 3389}, guest.Port{Protocol: "udp", Number: 5985})
	n := len(r.asked())
	_, err = d.Dial(t.Context(), rdp, cred)
	testkit.WantCode(t, "HTTP dial with 5985 closed", err, errs.FailedPrecondition)
	if err == nil || !strings.Contains(err.Error(), "tcp/5985") {
		t.Errorf("message %v does not name the port", err)
	}
	_, err = winrm.Dialer(winrm.DialerConfig{Options: &winrm.Options{DialContext: r.dial}}).Dial(t.Context(), rdp, cred)
	testkit.WantCode(t, "HTTPS dial with 5986 closed", err, errs.FailedPrecondition)
	if len(r.asked()) != n {
		t.Fatal("a refused port was dialed")
	}

	// An explicit port is used as is, whatever the target lists.
	ex, err = winrm.Dialer(winrm.DialerConfig{Options: &winrm.Options{HTTP: true, Port: 15985, DialContext: r.dial}}).Dial(t.Context(), rdp, cred)
	if err != nil {
		t.Fatal(err)
	}
	_ = ex.Close()
	if a := r.asked(); !strings.HasSuffix(a[len(a)-1], ":15985") {
		t.Fatalf("dialed %v, want the configured port", a)
	}
}

// TestDialerRefusedCredentials: refused credentials are Unauthenticated
// from Dial itself (the guest.Dialer contract), no shell is left open,
// and the message stays bounded.
func TestDialerRefusedCredentials(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	d := winrm.Dialer(winrm.DialerConfig{Options: &winrm.Options{Port: g.srv.Port(), CACertPEM: g.srv.CACertPEM()}})
	tg := windowsTarget(t, g, winPorts...)
	ex, err := d.Dial(t.Context(), tg, guest.Password(testUser, "wrong"))
	testkit.WantCode(t, "wrong password", err, errs.Unauthenticated)
	testkit.Bounded(t, "wrong password", err, 300)
	if ex != nil {
		t.Fatal("an executor came back with the error")
	}
	if st := g.srv.Stats(); st.AuthFailures == 0 || st.OpenShells != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A hostile user name is refused before any network I/O, quoted and
	// cut.
	before := g.srv.Stats()
	_, err = d.Dial(t.Context(), tg, guest.Password(strings.Repeat("u\n", 50000), testPassword))
	testkit.WantCode(t, "100 kB user name", err, errs.InvalidArgument)
	testkit.Bounded(t, "100 kB user name", err, 300)
	if after := g.srv.Stats(); after.Handshakes != before.Handshakes || after.AuthFailures != before.AuthFailures {
		t.Fatal("a malformed user name reached the guest")
	}
	// A refused certificate is PermissionDenied, from Dial.
	_, err = winrm.Dialer(winrm.DialerConfig{Options: &winrm.Options{Port: g.srv.Port()}}).Dial(t.Context(), tg, guest.Password(testUser, testPassword))
	testkit.WantCode(t, "system roots", err, errs.PermissionDenied)
}

// TestDialerRefuses: targets the Dialer cannot reach, and OptionsFor
// errors.
func TestDialerRefuses(t *testing.T) {
	g := newFakeGuest(t, winrmserver.Options{})
	cred := guest.Password(testUser, testPassword)
	d := winrm.Dialer(winrm.DialerConfig{Options: &winrm.Options{Port: g.srv.Port(), CACertPEM: g.srv.CACertPEM()}})
	tg := windowsTarget(t, g)
	tg.Family = guest.Linux
	_, err := d.Dial(t.Context(), tg, cred)
	testkit.WantCode(t, "Linux target", err, errs.Unimplemented)
	tg.Family, tg.PublicIP = guest.Windows, netip.Addr{}
	_, err = d.Dial(t.Context(), tg, cred)
	testkit.WantCode(t, "no public IP", err, errs.InvalidArgument)

	denied := errs.New(errs.NotFound, "store", "no certificate pin stored for the VM")
	_, err = winrm.Dialer(winrm.DialerConfig{OptionsFor: func(context.Context, guest.Target) (*winrm.Options, error) { return nil, denied }}).
		Dial(t.Context(), windowsTarget(t, g), cred)
	testkit.WantCode(t, "OptionsFor error", err, errs.NotFound)
	if st := g.srv.Stats(); st.Handshakes != 0 {
		t.Fatalf("refused dials reached the guest: %+v", st)
	}
}
