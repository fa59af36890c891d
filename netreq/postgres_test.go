package netreq_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/netreq"
	"github.com/managedvm/managedvm/report"
)

// The shared server of .ci/run runs without TLS: the probe says so.
func TestProbePostgresWithoutTLS(t *testing.T) {
	raw := testenv.Env(t, "MANAGEDVM_PG_URL", "PostgreSQL", "set MANAGEDVM_PG_URL to a PostgreSQL URL (bash .ci/run starts a server)")
	m, err := netreq.Derive(netreq.Config{PostgreSQL: []string{raw}})
	if err != nil {
		t.Fatal(err)
	}
	c := one(t, m.Flows[0], &netreq.ProbeOptions{Timeout: 2 * time.Second})
	if c.Status == report.Pass {
		t.Skip("the server offers TLS") // a developer's own server
	}
	want(t, c, report.Fail, "does not offer TLS")
}

// A private PostgreSQL with ssl = on and a certificate from ca.
func TestProbePostgresTLS(t *testing.T) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		testenv.Missing(t, "PostgreSQL server binaries", "apt-get install postgresql")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	var asPG func(args ...string) *exec.Cmd
	dir, err := os.MkdirTemp("", "netreq-pg-") // t.TempDir's parent is closed to the postgres user
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Missing(t, "the postgres user", "apt-get install postgresql")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		asPG = func(args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
	} else {
		asPG = func(args ...string) *exec.Cmd { return exec.Command(args[0], args[1:]...) }
	}
	data := filepath.Join(dir, "data")
	if out, err := asPG(bin+"/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-locale", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	ca := newCA(t)
	now := time.Now()
	leaf := ca.leaf(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "db.example")
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	for name, b := range map[string][]byte{
		"server.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		// Written by the data directory's owner, mode 0600 (PostgreSQL refuses a readable key).
		cmd := asPG("sh", "-c", "umask 077 && cat > "+filepath.Join(data, name))
		stdin, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_, _ = stdin.Write(b)
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	opts := fmt.Sprintf("-c ssl=on -c listen_addresses=127.0.0.1 -c port=%s -c unix_socket_directories=%s", port, dir)
	if out, err := asPG(bin+"/pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o", opts, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("pg_ctl start: %v: %s %s", err, out, log)
	}
	t.Cleanup(func() { _ = asPG(bin+"/pg_ctl", "-D", data, "-m", "immediate", "stop").Run() })

	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", "not-a-secret"), Host: addr, Path: "/postgres"}
	m, err := netreq.Derive(netreq.Config{PostgreSQL: []string{u.String()}})
	if err != nil {
		t.Fatal(err)
	}
	f := m.Flows[0]
	f.ServerName = "db.example"
	want(t, one(t, f, &netreq.ProbeOptions{RootCAs: ca.pool}), report.Pass, "SSLRequest accepted", `"db.example"`, "trusted")
	want(t, one(t, m.Flows[0], nil), report.Fail, "not trusted")
}
