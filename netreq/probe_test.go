package netreq_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/internal/fakes/rdpx224"
	"github.com/managedvm/managedvm/internal/fakes/smtprelay"
	"github.com/managedvm/managedvm/internal/fakes/sshserver"
	"github.com/managedvm/managedvm/netreq"
	"github.com/managedvm/managedvm/report"
)

// testCA is a throw-away authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netreq test CA"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a server certificate for names (and 127.0.0.1) valid from
// notBefore to notAfter.
func (ca *testCA) leaf(t *testing.T, notBefore, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: notBefore, NotAfter: notAfter, DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func tlsServer(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

func flowTo(t *testing.T, id string, kind netreq.Kind, addr string) netreq.Flow {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return netreq.Flow{ID: id, Service: "Test", Source: netreq.Orchestrator, Destination: id, Host: h,
		Protocol: "tcp", Ports: []uint16{uint16(n)}, Kind: kind, Required: true, Checkable: true}
}

// one probes a single flow and returns its one row.
func one(t *testing.T, f netreq.Flow, opts *netreq.ProbeOptions) report.Check {
	t.Helper()
	r := netreq.Probe(context.Background(), []netreq.Flow{f}, opts)
	if len(r.Checks) != 1 {
		t.Fatalf("%d rows, want 1:\n%s", len(r.Checks), r)
	}
	c := r.Checks[0]
	if c.Status != report.Pass && c.Fix == "" {
		t.Errorf("%s row without a fix: %+v", c.Status, c)
	}
	return c
}

func want(t *testing.T, c report.Check, status report.Status, detail ...string) {
	t.Helper()
	if c.Status != status {
		t.Errorf("status %s, want %s: %s -- fix: %s", c.Status, status, c.Detail, c.Fix)
	}
	for _, d := range detail {
		if !strings.Contains(c.Detail, d) {
			t.Errorf("detail %q does not say %q", c.Detail, d)
		}
	}
}

func TestProbeTLS(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	good := tlsServer(t, ca.leaf(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "svc.example"))
	soon := tlsServer(t, ca.leaf(t, now.Add(-time.Hour), now.Add(5*24*time.Hour), "svc.example"))
	expired := tlsServer(t, ca.leaf(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "svc.example"))
	trusted := &netreq.ProbeOptions{RootCAs: ca.pool}

	f := flowTo(t, "https", netreq.HTTPS, good)
	want(t, one(t, f, trusted), report.Pass, `"svc.example"`, "trusted", "expires "+now.Add(90*24*time.Hour).Format(time.DateOnly))
	f.ServerName = "svc.example"
	want(t, one(t, f, trusted), report.Pass, "trusted")

	t.Run("untrusted", func(t *testing.T) {
		c := one(t, flowTo(t, "https", netreq.HTTPS, good), nil) // system roots
		want(t, c, report.Fail, "not trusted", "unknown authority", "netreq test CA")
	})
	t.Run("wrong name", func(t *testing.T) {
		f := flowTo(t, "https", netreq.HTTPS, good)
		f.ServerName = "other.example"
		c := one(t, f, trusted)
		want(t, c, report.Fail, `certificate is for "svc.example", "127.0.0.1", not "other.example"`)
		if !strings.Contains(c.Fix, `"other.example"`) {
			t.Errorf("fix %q", c.Fix)
		}
	})
	t.Run("expired", func(t *testing.T) {
		want(t, one(t, flowTo(t, "https", netreq.HTTPS, expired), trusted), report.Fail, "expired on "+now.Add(-24*time.Hour).Format(time.DateOnly))
	})
	t.Run("expiring soon", func(t *testing.T) {
		c := one(t, flowTo(t, "https", netreq.HTTPS, soon), trusted)
		want(t, c, report.Warn, "trusted", "in 4 days")
		if !strings.Contains(c.Fix, "renew") {
			t.Errorf("fix %q", c.Fix)
		}
	})
	t.Run("not TLS", func(t *testing.T) {
		relay, err := smtprelay.Start(smtprelay.Options{Mode: smtprelay.Plain})
		if err != nil {
			t.Fatal(err)
		}
		defer relay.Close()
		want(t, one(t, flowTo(t, "https", netreq.HTTPS, relay.Addr), &netreq.ProbeOptions{RootCAs: ca.pool, Timeout: time.Second}), report.Fail, "TLS")
	})
}

func TestProbeRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := one(t, flowTo(t, "closed", netreq.TCP, addr), nil)
	want(t, c, report.Fail, "connection refused: nothing listens, or a firewall rejects")
	if !strings.Contains(c.Fix, "open TCP") {
		t.Errorf("fix %q", c.Fix)
	}
}

func TestProbeSMTP(t *testing.T) {
	starttls, err := smtprelay.Start(smtprelay.Options{Mode: smtprelay.StartTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer starttls.Close()
	implicit, err := smtprelay.Start(smtprelay.Options{Mode: smtprelay.ImplicitTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer implicit.Close()
	plain, err := smtprelay.Start(smtprelay.Options{Mode: smtprelay.Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	want(t, one(t, flowTo(t, "smtp", netreq.SMTP, starttls.Addr), &netreq.ProbeOptions{RootCAs: starttls.PKI.Pool, ExpiryWarning: time.Hour}),
		report.Pass, "greeting \"localhost", "STARTTLS offered", "trusted")
	want(t, one(t, flowTo(t, "smtp", netreq.SMTP, starttls.Addr), nil), report.Fail, "not trusted")
	want(t, one(t, flowTo(t, "smtps", netreq.SMTPS, implicit.Addr), &netreq.ProbeOptions{RootCAs: implicit.PKI.Pool, ExpiryWarning: time.Hour}),
		report.Pass, "greeting \"localhost", "trusted")
	want(t, one(t, flowTo(t, "smtp", netreq.SMTP, plain.Addr), nil), report.Fail, "does not offer STARTTLS")
	// SMTPS against a plain relay: the TLS handshake fails.
	want(t, one(t, flowTo(t, "smtps", netreq.SMTPS, plain.Addr), &netreq.ProbeOptions{Timeout: time.Second}), report.Fail)
}

func TestProbeSSHFake(t *testing.T) {
	s, err := sshserver.Start(sshserver.Config{Password: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want(t, one(t, flowTo(t, "ssh", netreq.SSH, s.Addr()), nil), report.Pass, `banner "SSH-2.0-`)
	// An SMTP server on the SSH port: no banner.
	relay, err := smtprelay.Start(smtprelay.Options{Mode: smtprelay.Plain})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	want(t, one(t, flowTo(t, "ssh", netreq.SSH, relay.Addr), &netreq.ProbeOptions{Timeout: time.Second}), report.Fail, "SSH identification banner")
}

func TestProbeNotCheckable(t *testing.T) {
	flows := []netreq.Flow{
		{ID: "agent", Service: "Agent", Source: netreq.ManagedVMs, Destination: "Portal", Host: "portal.example", Protocol: "tcp", Ports: []uint16{5671}},
		{ID: "vm", Service: "Service Orchestration", Source: netreq.Orchestrator, Destination: "Linux VMs", Protocol: "tcp", Ports: []uint16{22}, Checkable: true},
	}
	r := netreq.Probe(context.Background(), flows, nil)
	if len(r.Checks) != 2 {
		t.Fatalf("rows:\n%s", r)
	}
	for _, c := range r.Checks {
		if c.Status != report.Warn || c.Detail != netreq.NotCheckable || c.Fix == "" {
			t.Errorf("row %+v", c)
		}
	}
}

// A server that accepts and never speaks: each port is bounded by
// Timeout, the whole probe by Deadline, and Concurrency ports run at once.
func TestProbeDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	var flows []netreq.Flow
	for i := range 6 {
		f := flowTo(t, "silent"+strconv.Itoa(i), netreq.SSH, ln.Addr().String())
		flows = append(flows, f)
	}
	start := time.Now()
	r := netreq.Probe(context.Background(), flows, &netreq.ProbeOptions{Concurrency: 2, Timeout: 300 * time.Millisecond, Deadline: 450 * time.Millisecond})
	took := time.Since(start)
	if took > 2*time.Second {
		t.Fatalf("probe took %v", took)
	}
	var timedOut, cut, notStarted int
	for _, c := range r.Checks {
		if c.Status != report.Fail {
			t.Errorf("row %+v", c)
		}
		switch {
		case strings.Contains(c.Detail, "no SSH identification banner within 300ms"):
			timedOut++
		case strings.Contains(c.Detail, "cut by the deadline (450ms)"):
			cut++
		case strings.Contains(c.Detail, "not checked before the deadline (450ms)"):
			notStarted++
		}
	}
	// 2 at a time, 300 ms each, 450 ms in all: 2 time out, the next 2 are
	// cut by the deadline at 450 ms, the last 2 never start.
	if timedOut != 2 || cut != 2 || notStarted != 2 {
		t.Errorf("%d timed out, %d cut, %d not started:\n%s", timedOut, cut, notStarted, r)
	}
}

func TestProbeRDP(t *testing.T) {
	nla, err := rdpx224.Start(rdpx224.ProtocolHybrid)
	if err != nil {
		t.Fatal(err)
	}
	defer nla.Close()
	want(t, one(t, flowTo(t, "rdp", netreq.RDP, nla.Addr()), nil), report.Pass, "X.224 connection confirm, selected protocol CredSSP (NLA)")
	rdsOnly, err := rdpx224.Start(0x8) // RDSTLS, which the probe does not offer
	if err != nil {
		t.Fatal(err)
	}
	defer rdsOnly.Close()
	want(t, one(t, flowTo(t, "rdp", netreq.RDP, rdsOnly.Addr()), nil), report.Fail, "refused the negotiation (failure code 5)")
	disc, err := rdpx224.StartDisconnect()
	if err != nil {
		t.Fatal(err)
	}
	defer disc.Close()
	want(t, one(t, flowTo(t, "rdp", netreq.RDP, disc.Addr()), nil), report.Fail, "X.224 code 0x80, not a connection confirm")
	// An SSH server on the RDP port.
	s, err := sshserver.Start(sshserver.Config{Password: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want(t, one(t, flowTo(t, "rdp", netreq.RDP, s.Addr()), &netreq.ProbeOptions{Timeout: time.Second}), report.Fail, "RDP X.224 connection confirm")
}
