package pgsql_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/pgsql"
)

// tlsServer answers PostgreSQL's SSLRequest with 'S' and completes the TLS
// handshake with cert, as a server with ssl=on does, then closes: enough
// for the client's certificate verification to run for real.
func tlsServer(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				var req [8]byte
				if _, err := io.ReadFull(c, req[:]); err != nil {
					return
				}
				if _, err := c.Write([]byte{'S'}); err != nil {
					return
				}
				_ = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// selfSigned makes a CA-less certificate for names, and its PEM.
func selfSigned(t *testing.T, names ...string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: names, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(names[0]); ip != nil {
		tmpl.IPAddresses, tmpl.DNSNames = []net.IP{ip}, names[1:]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestRefusedCertificateIsPermissionDenied: a server certificate that
// sslmode=verify-full refuses (unknown authority, wrong name) is
// PermissionDenied, not the retryable Unavailable; a server that is simply
// not there stays Unavailable.
func TestRefusedCertificateIsPermissionDenied(t *testing.T) {
	ctx := context.Background()
	good, goodPEM := selfSigned(t, "127.0.0.1")
	_, otherPEM := selfSigned(t, "127.0.0.1")
	wrongName, wrongNamePEM := selfSigned(t, "db.example.test")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodAddr, wrongNameAddr := tlsServer(t, good), tlsServer(t, wrongName)
	cases := []struct {
		name, addr, root string
		want             errs.Code
	}{
		{"unknown authority", goodAddr, write("other.pem", otherPEM), errs.PermissionDenied},
		{"wrong name", wrongNameAddr, write("wrong.pem", wrongNamePEM), errs.PermissionDenied},
		// Verification passes; the fake then hangs up: an ordinary
		// connection failure.
		{"trusted", goodAddr, write("good.pem", goodPEM), errs.Unavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			url := fmt.Sprintf("postgres://u@%s/db?sslmode=verify-full&sslrootcert=%s&connect_timeout=5", c.addr, c.root)
			_, err := pgconn.Connect(cctx, url)
			if err == nil {
				t.Fatal("connected")
			}
			got := pgsql.Classify(cctx, "test.Connect", err, true)
			if errs.CodeOf(got) != c.want {
				t.Fatalf("code %v, want %v: %v", errs.CodeOf(got), c.want, got)
			}
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = pgconn.Connect(ctx, "postgres://u@"+addr+"/db?sslmode=verify-full&connect_timeout=5")
	if got := pgsql.Classify(ctx, "test.Connect", err, true); errs.CodeOf(got) != errs.Unavailable {
		t.Fatalf("nobody listening: %v", got)
	}
}
