package netreq_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/netreq"
	"github.com/managedvm/managedvm/report"
)

// startSlapd runs Debian's slapd on two free loopback ports (ldap:// and
// ldaps://) with a throwaway configuration; withTLS gives it a
// certificate from ca for "ldap.example" and 127.0.0.1.
func startSlapd(t *testing.T, ca *testCA, withTLS bool) (ldapAddr, ldapsAddr string) {
	t.Helper()
	slapd := "/usr/sbin/slapd"
	if _, err := os.Stat(slapd); err != nil {
		testenv.Missing(t, "slapd", "apt-get install slapd (bash .ci/run installs it)")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("include /etc/ldap/schema/core.schema\npidfile %s/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n", dir)
	if withTLS {
		now := time.Now()
		leaf := ca.leaf(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "ldap.example")
		keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		write := func(name, typ string, der []byte) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		conf += fmt.Sprintf("TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n",
			write("ca.pem", "CERTIFICATE", ca.cert.Raw), write("cert.pem", "CERTIFICATE", leaf.Certificate[0]),
			write("key.pem", "PRIVATE KEY", keyDER))
	}
	conf += fmt.Sprintf("database mdb\nsuffix \"dc=example,dc=com\"\ndirectory %s/db\n", dir)
	cfg := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ldapAddr, ldapsAddr = freeAddr(t), freeAddr(t)
	urls := "ldap://" + ldapAddr + "/"
	if withTLS {
		urls += " ldaps://" + ldapsAddr + "/"
	}
	cmd := exec.Command(slapd, "-d", "0", "-h", urls, "-f", cfg)
	out, _ := os.Create(filepath.Join(dir, "slapd.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); out.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ldapAddr, time.Second)
		if err == nil {
			c.Close()
			return ldapAddr, ldapsAddr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
			t.Fatalf("slapd did not listen on %s: %s", ldapAddr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestProbeSlapd(t *testing.T) {
	ca := newCA(t)
	ldap, ldaps := startSlapd(t, ca, true)
	trusted := &netreq.ProbeOptions{RootCAs: ca.pool}
	f := flowTo(t, "ldap", netreq.LDAP, ldap)
	f.ServerName = "ldap.example"
	want(t, one(t, f, trusted), report.Pass, "StartTLS accepted", `"ldap.example"`, "trusted")
	want(t, one(t, flowTo(t, "ldap", netreq.LDAP, ldap), nil), report.Fail, "not trusted")
	want(t, one(t, flowTo(t, "ldaps", netreq.LDAPS, ldaps), trusted), report.Pass, "trusted")
	f = flowTo(t, "ldaps", netreq.LDAPS, ldaps)
	f.ServerName = "dc.example"
	want(t, one(t, f, trusted), report.Fail, `not "dc.example"`)

	t.Run("no TLS configured", func(t *testing.T) {
		plain, _ := startSlapd(t, ca, false)
		c := one(t, flowTo(t, "ldap", netreq.LDAP, plain), trusted)
		want(t, c, report.Fail, "refused StartTLS (LDAP result code")
	})
}
