package winrm_test

import (
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
)

// countingListener accepts TCP connections on loopback and counts them.
func countingListener(t *testing.T) (port int, accepts *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepts = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			_ = c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, accepts
}

// TestMalformedConfigIsInvalidArgumentBeforeIO: every malformed host,
// credential or option is InvalidArgument from New, quoting (and cutting)
// the bad value, and nothing connects to the guest. Where an old New let a
// value through, Run is tried too: it must not connect either.
func TestMalformedConfigIsInvalidArgumentBeforeIO(t *testing.T) {
	port, accepts := countingListener(t)
	pw := guest.Password(testUser, testPassword)
	long := strings.Repeat("a", 300)
	for _, c := range []struct {
		name, host string
		creds      guest.Credentials
		opts       winrm.Options
		shows      string // what the message must quote
	}{
		{"newline in host", "127.0.0.1\nX-Injected: 1", pw, winrm.Options{}, `"127.0.0.1\nX-Injected: 1"`},
		{"NUL in host", "127.0.0.1\x00", pw, winrm.Options{}, `"127.0.0.1\x00"`},
		{"space in host", "127.0.0.1 ", pw, winrm.Options{}, `"127.0.0.1 "`},
		{"port in host", "127.0.0.1:" + strconv.Itoa(port), pw, winrm.Options{}, "Options.Port"},
		{"path in host", "127.0.0.1/wsman", pw, winrm.Options{}, `'/'`},
		{"long host", long, pw, winrm.Options{}, `"` + long[:64] + `"…`},
		{"bad IPv4", "127.0.0.300", pw, winrm.Options{}, `"127.0.0.300"`},
		{"IPv6 zone", "fe80::1%eth0", pw, winrm.Options{}, "zone"},
		{"negative port", "127.0.0.1", pw, winrm.Options{Port: -1}, "-1"},
		{"port too big", "127.0.0.1", pw, winrm.Options{Port: 65536}, "65536"},
		{"NUL in user", "127.0.0.1", guest.Password("Admin\x00istrator", testPassword), winrm.Options{}, `"Admin\x00istrator"`},
		{"newline in user", "127.0.0.1", guest.Password("Administrator\r\n", testPassword), winrm.Options{}, `"Administrator\r\n"`},
		{"long user", "127.0.0.1", guest.Password(long, testPassword), winrm.Options{}, `"` + long[:64] + `"…`},
		{"colon in user", "127.0.0.1", guest.Password("a:b", testPassword), winrm.Options{}, `':'`},
		{"two domains", "127.0.0.1", guest.Password(`A\B\c`, testPassword), winrm.Options{}, `"A\\B\\c"`},
		{"empty domain", "127.0.0.1", guest.Password(`\ops`, testPassword), winrm.Options{}, "empty"},
		{"NUL in password", "127.0.0.1", guest.Password(testUser, "pa\x00ss"), winrm.Options{}, "NUL"},
		{"long password", "127.0.0.1", guest.Password(testUser, strings.Repeat("p", 2000)), winrm.Options{}, "1024"},
		{"bad CA PEM", "127.0.0.1", pw, winrm.Options{CACertPEM: []byte("not pem")}, "no PEM certificate"},
		{"key as CA", "127.0.0.1", pw, winrm.Options{CACertPEM: []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")}, `"RSA PRIVATE KEY"`},
		{"garbage certificate", "127.0.0.1", pw, winrm.Options{CACertPEM: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}, "not a valid certificate"},
		{"newline in TLSServerName", "127.0.0.1", pw, winrm.Options{TLSServerName: "a\nb"}, `"a\nb"`},
		{"skip-verify with a pin", "127.0.0.1", pw, winrm.Options{InsecureSkipVerify: true, PinnedCertSHA256: make([]byte, 32)}, "InsecureSkipVerify"},
		{"opt-in without Basic", "127.0.0.1", pw, winrm.Options{HTTP: true, InsecureUnencryptedBasic: true}, "InsecureUnencryptedBasic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts
			if o.Port == 0 {
				o.Port = port
			}
			o.Executor = &guest.Options{Timeout: 5 * time.Second}
			ex, err := winrm.New(c.host, c.creds, &o)
			if err == nil {
				_, err = ex.Run(t.Context(), guest.Command{Script: "exit 0"})
				_ = ex.Close()
			}
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Fatalf("%v (code %v), want InvalidArgument", err, errs.CodeOf(err))
			}
			if !strings.Contains(err.Error(), c.shows) {
				t.Errorf("the message %q does not show %s", err, c.shows)
			}
			if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "pa\\x00ss") {
				t.Error("the message shows the password")
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let any stray connection be accepted
	if n := accepts.Load(); n != 0 {
		t.Fatalf("malformed configurations made %d connections", n)
	}
}

// TestWellFormedConfigAccepted: the spellings New must keep accepting.
func TestWellFormedConfigAccepted(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1", "[::1]", "win-01.corp.example", "win_01", "host.example.", "localhost"} {
		for _, user := range []string{"Administrator", `CORP\ops`, "ops@corp.example", "first last"} {
			if _, err := winrm.New(host, guest.Password(user, testPassword), nil); err != nil {
				t.Errorf("New(%q, %q): %v", host, user, err)
			}
		}
	}
}
