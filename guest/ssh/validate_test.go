package ssh_test

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/internal/fakes/sshserver"
	xssh "golang.org/x/crypto/ssh"
)

// countingListener accepts TCP connections on loopback and records where
// each came from.
type countingListener struct {
	ln     net.Listener
	mu     sync.Mutex
	from   []string        // remote address of each accepted connection
	probes map[string]bool // those connectionsSoFar made
}

func listenCounting(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &countingListener{ln: ln, probes: map[string]bool{}}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.from = append(c.from, nc.RemoteAddr().String())
			c.mu.Unlock()
			_ = nc.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return c
}

// connectionsSoFar returns how many connections others made so far: it
// connects once itself and waits until that connection is accepted
// (connections are accepted in order, so every earlier one is in too),
// and leaves its own probes out of the count.
func (c *countingListener) connectionsSoFar(t *testing.T) int {
	t.Helper()
	nc, err := net.Dial("tcp", c.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	probe := nc.LocalAddr().String()
	_ = nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		c.probes[probe] = true
		seen, others := false, 0
		for _, f := range c.from {
			if f == probe {
				seen = true
			} else if !c.probes[f] {
				others++
			}
		}
		c.mu.Unlock()
		if seen {
			return others
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe connection was not accepted")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMalformedConfigBeforeNetwork: a malformed Config or Options is
// InvalidArgument, with the value quoted, and no connection is made.
func TestMalformedConfigBeforeNetwork(t *testing.T) {
	l := listenCounting(t)
	addr := l.ln.Addr().String()
	key, _ := clientKey(t, "")
	good := func() (ssh.Config, *ssh.Options) {
		return ssh.Config{Addr: addr, HostKeys: ssh.InsecureAcceptAnyHostKey(),
			Credentials: guest.Credentials{Username: "root", PrivateKey: guest.NewSecret(key)}}, &ssh.Options{}
	}
	long := strings.Repeat("u", ssh.MaxUsernameLen+1)
	cases := []struct {
		name   string
		change func(*ssh.Config, *ssh.Options)
		quoted string // must appear in the message ("" : nothing quoted)
	}{
		{"addr-newline-after-port", func(c *ssh.Config, _ *ssh.Options) { c.Addr = addr + "\n" }, strconv.Quote(addr + "\n")},
		{"addr-newline-in-host", func(c *ssh.Config, _ *ssh.Options) { c.Addr = "127.0.0.1\n:" + addr[strings.LastIndex(addr, ":")+1:] }, `"127.0.0.1\n:`},
		{"user-nul", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.Username = "ro\x00ot" }, `"ro\x00ot"`},
		{"user-newline", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.Username = "root\n" }, `"root\n"`},
		{"user-space", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.Username = "ro ot" }, `"ro ot"`},
		{"user-escape", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.Username = "root\x1b[2J" }, `"root\x1b[2J"`},
		{"user-not-utf8", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.Username = "ro\xffot" }, `"ro\xffot"`},
		{"user-too-long", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.Username = long }, strconv.Quote(long[:64]) + "…"},
		{"user-empty", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.Username = "" }, ""},
		{"no-secret", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.PrivateKey = guest.Secret{} }, ""},
		{"password-newline", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.Password = guest.NewSecret("pw\nsecret") }, ""},
		{"password-too-long", func(c *ssh.Config, _ *ssh.Options) {
			c.Credentials.Password = guest.NewSecret(strings.Repeat("p", ssh.MaxPasswordLen+1))
		}, ""},
		{"passphrase-nul", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.Passphrase = guest.NewSecret("a\x00b") }, ""},
		{"key-malformed", func(c *ssh.Config, _ *ssh.Options) { c.Credentials.PrivateKey = guest.NewSecret("not a key") }, ""},
		{"key-too-large", func(c *ssh.Config, _ *ssh.Options) {
			c.Credentials.PrivateKey = guest.NewSecret(key + strings.Repeat("#", ssh.MaxPrivateKeyLen))
		}, ""},
		{"no-host-keys", func(c *ssh.Config, _ *ssh.Options) { c.HostKeys = ssh.HostKeyPolicy{} }, ""},
		{"dial-timeout-negative", func(_ *ssh.Config, o *ssh.Options) { o.DialTimeout = -time.Second }, ""},
		{"kill-grace-negative", func(_ *ssh.Config, o *ssh.Options) { o.KillGrace = -1 }, ""},
		{"max-sessions-negative", func(_ *ssh.Config, o *ssh.Options) { o.MaxSessions = -1 }, ""},
		{"max-sessions-huge", func(_ *ssh.Config, o *ssh.Options) { o.MaxSessions = 1 << 40 }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, opts := good()
			c.change(&cfg, opts)
			ex, err := ssh.Dial(context.Background(), cfg, opts)
			if err == nil {
				_ = ex.Close()
			}
			if errs.CodeOf(err) != errs.InvalidArgument || !errs.Is(err, errs.InvalidArgument) {
				t.Fatalf("got %v (code %v), want InvalidArgument", err, errs.CodeOf(err))
			}
			if c.quoted != "" && !strings.Contains(err.Error(), c.quoted) {
				t.Fatalf("message %q does not quote %s", err, c.quoted)
			}
			for _, secret := range []string{"pw\nsecret", "a\x00b", key[40:80]} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("message %q holds a secret", err)
				}
			}
			if n := l.connectionsSoFar(t); n != 0 {
				t.Fatalf("%d connection(s) made for a malformed config", n)
			}
		})
	}
	// The well-formed config does connect: the listener is the one Dial
	// would have reached.
	cfg, opts := good()
	opts.DialTimeout = 5 * time.Second
	if _, err := ssh.Dial(context.Background(), cfg, opts); errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("well-formed config against a listener that hangs up: %v", err)
	}
	if n := l.connectionsSoFar(t); n != 1 {
		t.Fatalf("the well-formed config made %d connections, want 1", n)
	}
}

// TestMalformedAddr: addresses that would need a name lookup (or could
// never be dialed) are refused as InvalidArgument, quoting the address.
func TestMalformedAddr(t *testing.T) {
	key, _ := clientKey(t, "")
	cred := guest.Credentials{Username: "root", PrivateKey: guest.NewSecret(key)}
	long := strings.Repeat("a.", 130) + "example"
	for _, addr := range []string{
		"", "guest\n.example", "guest.example\n", "gu est.example:22", "guest.example:22\r\n",
		"guest.example:", "guest.example:0", "guest.example:65536", "guest.example:-1", "guest.example:+22",
		"guest.example:ssh", ":22", "[::1", "[::1]x", "[::1]:", "[127.0.0.1]:22", "[guest.example]:22",
		"a..example", "-guest.example", "guest-.example", strings.Repeat("l", 64) + ".example", long,
		"999.1.1.1", "1.2.3", "fe80::1%eth\n0", "fe80::1%eth 0", "guest.example/22", "user@guest.example",
		"guest\x00.example", "gu\xffest.example",
	} {
		ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: addr, Credentials: cred, HostKeys: ssh.InsecureAcceptAnyHostKey()}, nil)
		if err == nil {
			_ = ex.Close()
		}
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Addr %q: got %v (code %v), want InvalidArgument", addr, err, errs.CodeOf(err))
			continue
		}
		want := strconv.Quote(addr)
		if len(addr) > 64 {
			want = strconv.Quote(addr[:64]) + "…"
		}
		if addr != "" && !strings.Contains(err.Error(), want) {
			t.Errorf("Addr %q: message %q does not quote it as %s", addr, err, want)
		}
	}
}

// TestWellFormedAddrs: every accepted form reaches the server.
func TestWellFormedAddrs(t *testing.T) {
	f := startFake(t, sshserver.Config{})
	_, port, _ := net.SplitHostPort(f.srv.Addr())
	hk, err := ssh.PinnedKey(string(xssh.MarshalAuthorizedKey(f.srv.HostKey())))
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1:" + port, "localhost:" + port, "127.000.0.1:" + port} {
		ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: addr, Credentials: f.cred, HostKeys: hk}, &ssh.Options{DialTimeout: 5 * time.Second})
		if addr == "127.000.0.1:"+port {
			// Leading zeros are not an IPv4 address, and not a name either.
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Errorf("Addr %q: %v, want InvalidArgument", addr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Addr %q: %v", addr, err)
			continue
		}
		var d *ssh.Driver
		if !ex.As(&d) {
			t.Fatal("As does not reach the *ssh.Driver")
		}
		if !strings.HasSuffix(d.Addr(), ":"+port) {
			t.Errorf("Addr %q: executor dials %q", addr, d.Addr())
		}
		_ = ex.Close()
	}
}

// TestMalformedKnownHosts: known_hosts data that OpenSSH's format does not
// allow, or too much of it, is InvalidArgument naming the line.
func TestMalformedKnownHosts(t *testing.T) {
	big := bytes.Repeat([]byte("# a comment line of known_hosts data\n"), ssh.MaxKnownHosts/37+1)
	for _, c := range []struct {
		data []byte
		want string
	}{
		{[]byte("# fine\n\nnot a known_hosts line\n"), `line 3 is malformed: "not a known_hosts line"`},
		{[]byte("@trusted 127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), "line 1"},
		{[]byte("127.0.0.1 ssh-ed25519 AAAA\x00\n"), `line 1 is malformed: "127.0.0.1 ssh-ed25519 AAAA\x00"`},
		{big, "more than the"},
	} {
		for _, policy := range []func([]byte) error{
			func(d []byte) error { _, err := ssh.KnownHosts(d); return err },
			func(d []byte) error {
				_, err := ssh.TrustOnFirstUse(d, func(string, string) error { return nil })
				return err
			},
		} {
			err := policy(c.data)
			if errs.CodeOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), c.want) {
				t.Errorf("known_hosts %.40q: %v, want InvalidArgument with %q", c.data, err, c.want)
			}
		}
	}
}
