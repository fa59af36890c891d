package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// needComponent skips a test whose real component is missing, and fails
// it under CI=true (where .ci/run installs it).
func needComponent(t *testing.T, path, component, howToGetIt string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	msg := "MISSING COMPONENT " + component + ": " + howToGetIt
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true)")
	}
	t.Skip(msg)
}

// testCA makes a CA and a server certificate for 127.0.0.1; it returns
// the CA's PEM file and the server's certificate and key files.
func testCA(t *testing.T, dir, prefix string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: prefix + " test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, prefix+name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "PRIVATE KEY", keyDER)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const (
	ldapSuffix  = "dc=example,dc=com"
	ldapAdmin   = "cn=admin,dc=example,dc=com"
	ldapAdminPW = "admin-secret"
)

// startSlapd runs Debian's slapd on loopback (ldap:// with StartTLS and
// ldaps://), with a directory of three users: alice an operator, bob a
// viewer, carol in no group.
func startSlapd(t *testing.T) (ldapURL, ldapsURL, caFile string) {
	t.Helper()
	needComponent(t, "/usr/sbin/slapd", "slapd", "apt-get install slapd (bash .ci/run installs it)")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	caFile, cert, key := testCA(t, dir, "ldap-")
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile %[2]s
TLSCertificateFile %[3]s
TLSCertificateKeyFile %[4]s
database mdb
suffix "%[5]s"
rootdn "%[6]s"
rootpw %[7]s
directory %[1]s/db
`, dir, caFile, cert, key, ldapSuffix, ldapAdmin, ldapAdminPW)
	cfg := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	plain, secure := freePort(t), freePort(t)
	cmd := exec.Command("/usr/sbin/slapd", "-d", "0", "-h", "ldap://"+plain+"/ ldaps://"+secure+"/", "-f", cfg)
	logf, _ := os.Create(filepath.Join(dir, "slapd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	var conn *ldap.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		conn, err = ldap.DialURL("ldap://" + plain)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
			t.Fatalf("slapd did not start: %v\n%s", err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer conn.Close()
	if err := conn.Bind(ldapAdmin, ldapAdminPW); err != nil {
		t.Fatal(err)
	}
	add := func(dn string, attrs map[string][]string) {
		req := ldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			req.Attribute(k, v)
		}
		if err := conn.Add(req); err != nil {
			t.Fatalf("adding %s: %v", dn, err)
		}
	}
	add(ldapSuffix, map[string][]string{"objectClass": {"dcObject", "organization"}, "o": {"Example"}, "dc": {"example"}})
	add("ou=people,"+ldapSuffix, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}})
	add("ou=groups,"+ldapSuffix, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"groups"}})
	for _, u := range []string{"alice", "bob", "carol"} {
		add("uid="+u+",ou=people,"+ldapSuffix, map[string][]string{"objectClass": {"inetOrgPerson"}, "uid": {u}, "cn": {u}, "sn": {u},
			"userPassword": {u + "-pw"}})
	}
	add("cn=operators,ou=groups,"+ldapSuffix, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"operators"}, "member": {"uid=alice,ou=people," + ldapSuffix}})
	add("cn=viewers,ou=groups,"+ldapSuffix, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"viewers"}, "member": {"uid=bob,ou=people," + ldapSuffix}})
	return "ldap://" + plain, "ldaps://" + secure, caFile
}

// ldapPortal starts serve with LDAP log-in and no demo accounts.
func ldapPortal(t *testing.T, url, caFile string) *portal {
	pw := filepath.Join(t.TempDir(), "bind-pw")
	if err := os.WriteFile(pw, []byte(ldapAdminPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startPortal(t, func(y string) string {
		y = strings.Replace(y, "demo_login: true", "demo_login: false", 1)
		return y + fmt.Sprintf(`ldap:
  url: %s
  ca_file: %s
  bind_dn: %s
  bind_password_file: %s
  base_dn: ou=people,%s
  operator_group: cn=operators,ou=groups,%s
  viewer_group: cn=viewers,ou=groups,%s
`, url, caFile, ldapAdmin, pw, ldapSuffix, ldapSuffix, ldapSuffix)
	})
}

func (p *portal) formLogin(c *http.Client, user, password string) resp {
	p.t.Helper()
	page := p.get(c, "/login")
	return p.postForm(c, "/login", url.Values{"csrf": {csrfOf(p.t, page.body)}, "user": {user}, "password": {password}})
}

func TestLDAPLogin(t *testing.T) {
	plain, secure, caFile := startSlapd(t)
	for name, u := range map[string]string{"StartTLS": plain, "LDAPS": secure} {
		t.Run(name, func(t *testing.T) {
			p := ldapPortal(t, u, caFile)
			for _, tc := range []struct {
				user, password string
				status         int
				role, msg      string
			}{
				{"alice", "alice-pw", http.StatusSeeOther, "alice (operator)", ""},
				{"bob", "bob-pw", http.StatusSeeOther, "bob (viewer)", ""},
				{"carol", "carol-pw", http.StatusForbidden, "", "none of the portal&#39;s groups"},
				{"alice", "bob-pw", http.StatusUnauthorized, "", "Wrong user name or password"},
				{"nobody", "x", http.StatusUnauthorized, "", "Wrong user name or password"},
				// LDAP injection: a filter that matches every entry.
				{"*)(uid=*", "alice-pw", http.StatusUnauthorized, "", "Wrong user name or password"},
				{"*", "alice-pw", http.StatusUnauthorized, "", "Wrong user name or password"},
				{"alice)(|(uid=*", "alice-pw", http.StatusUnauthorized, "", "Wrong user name or password"},
			} {
				c := p.client()
				r := p.formLogin(c, tc.user, tc.password)
				if r.status != tc.status {
					t.Errorf("%s: %d, want %d\n%s", tc.user, r.status, tc.status, r.body)
					continue
				}
				if tc.role != "" {
					if page := p.get(c, "/devices"); !strings.Contains(page.body, tc.role) {
						t.Errorf("%s: the page does not say %q", tc.user, tc.role)
					}
				} else if !strings.Contains(r.body, tc.msg) {
					t.Errorf("%s: the page lacks %q:\n%s", tc.user, tc.msg, r.body)
				}
				p.srv.limit = newLimiter(5, 5*time.Minute) // one client address for every case
			}
		})
	}
}

// The escaping of the filter is the second wall: even a name that the
// first check would pass reaches the directory escaped.
func TestLDAPFilterEscaped(t *testing.T) {
	plain, _, caFile := startSlapd(t)
	a, err := newLDAPAuth(&LDAPConfig{URL: plain, CAFile: caFile, BaseDN: "ou=people," + ldapSuffix, UserAttribute: "uid",
		OperatorGroup: "cn=operators,ou=groups," + ldapSuffix}, newTestLogger(os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	if role, err := a.Authenticate(t.Context(), "alice", "alice-pw"); err != nil || role != Operator {
		t.Fatalf("alice: %v %v", role, err)
	}
	if validLogin("*)(uid=*") || validLogin("a*") || validLogin("a\x00") {
		t.Fatal("validLogin passes filter syntax")
	}
}

func TestLDAPRefusesAnUntrustedCertificate(t *testing.T) {
	plain, secure, _ := startSlapd(t)
	other, _, _ := testCA(t, t.TempDir(), "other-")
	for _, u := range []string{plain, secure} {
		p := ldapPortal(t, u, other)
		r := p.formLogin(p.client(), "alice", "alice-pw")
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "certificate was refused") {
			t.Errorf("%s with another CA: %d\n%s", u, r.status, r.body)
		}
	}
}
