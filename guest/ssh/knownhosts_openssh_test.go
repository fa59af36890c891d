package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/internal/testenv"
)

// hostKeysSSHD is a private OpenSSH sshd with ed25519, ECDSA and RSA host
// keys, as Debian's servers have them, and (cert) its ed25519 key also
// certified (ssh-keygen -s -h) by an RSA host authority.
type hostKeysSSHD struct {
	dir, addr, port, user string
	clientKey             string // path
	cred                  guest.Credentials
	cert                  bool
}

func (s *hostKeysSSHD) path(name string) string { return filepath.Join(s.dir, name) }

// pub returns "type base64" of a public key file.
func (s *hostKeysSSHD) pub(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	return f[0] + " " + f[1]
}

func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func startHostKeysSSHD(t *testing.T, cert bool) *hostKeysSSHD {
	t.Helper()
	const how = "apt-get install openssh-server openssh-client (bash .ci/run installs them)"
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		testenv.Missing(t, "OpenSSH sshd", how)
	}
	for _, tool := range []string{"ssh", "ssh-keygen", "ssh-keyscan"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "OpenSSH client ("+tool+")", how)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "managedvm-hostkeys-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &hostKeysSSHD{dir: dir, user: u.Username, cert: cert}
	for _, k := range []struct{ name, typ string }{{"host_ed25519", "ed25519"}, {"host_ecdsa", "ecdsa"}, {"host_rsa", "rsa"}, {"ca", "rsa"}, {"ca_other", "ed25519"}, {"client", "ed25519"}} {
		args := []string{"-q", "-t", k.typ, "-N", "", "-C", "managedvm-test-" + k.name, "-f", s.path(k.name)}
		if k.typ == "rsa" {
			// 2048 bits: an RSA key all the same, made four times
			// faster than the default 3072.
			args = append(args, "-b", "2048")
		}
		runTool(t, "ssh-keygen", args...)
	}
	// The host certificate names 127.0.0.1, the address the tests dial.
	runTool(t, "ssh-keygen", "-q", "-s", s.path("ca"), "-h", "-I", "managedvm-test-host", "-n", "127.0.0.1", s.path("host_ed25519.pub"))
	pub, err := os.ReadFile(s.path("client.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path("authorized_keys"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(s.path("client"))
	if err != nil {
		t.Fatal(err)
	}
	s.clientKey = s.path("client")
	s.cred = guest.Credentials{Username: s.user, PrivateKey: guest.NewSecret(string(key))}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	_ = ln.Close()
	_, s.port, _ = net.SplitHostPort(s.addr)
	conf := "Port " + s.port + "\nListenAddress 127.0.0.1\n" +
		"HostKey " + s.path("host_ed25519") + "\nHostKey " + s.path("host_ecdsa") + "\nHostKey " + s.path("host_rsa") + "\n"
	if cert {
		conf += "HostCertificate " + s.path("host_ed25519-cert.pub") + "\n"
	}
	conf +=
		"PidFile " + s.path("sshd.pid") + "\nAuthorizedKeysFile " + s.path("authorized_keys") + "\n" +
			"StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n" +
			"PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nLogLevel ERROR\n" +
			// The cases run in parallel, each opening connections
			// that never authenticate: the default MaxStartups
			// (10:30:100) would drop some of them at random.
			"MaxStartups 200\n" +
			// bash run by sshd reads ~/.bashrc unless it is a nested
			// shell: SHLVL=1 makes it one, so that a heavy .bashrc of
			// the user running the tests (pyenv init, ...) does not
			// cost every connection of these tests half a second.
			"SetEnv SHLVL=1\n"
	if err := os.WriteFile(s.path("sshd_config"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	}
	runTool(t, sshd, "-t", "-f", s.path("sshd_config"))
	log, err := os.Create(s.path("sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshd, "-D", "-e", "-f", s.path("sshd_config"))
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.path("sshd.log"))
			t.Fatalf("sshd did not start: %v: %s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// write stores a known_hosts file and returns its path.
func (s *hostKeysSSHD) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := s.path(name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// opensshAccepts runs the real client as a control: does OpenSSH, with
// strict host key checking, accept the server with this known_hosts file?
func (s *hostKeysSSHD) opensshAccepts(t *testing.T, knownHostsFile string) (bool, string) {
	t.Helper()
	cmd := exec.Command("ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+knownHostsFile, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=10", "-i", s.clientKey, "-p", s.port, s.user+"@127.0.0.1", "true")
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ssh: %v", err)
	}
	return err == nil, string(out)
}

func (s *hostKeysSSHD) dial(t *testing.T, hk ssh.HostKeyPolicy) error {
	t.Helper()
	ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: s.addr, Credentials: s.cred, HostKeys: hk}, &ssh.Options{DialTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer ex.Close()
	out, err := guest.Output(context.Background(), ex, guest.Command{Args: []string{"echo", "ok"}})
	if err != nil || out != "ok" {
		t.Fatalf("run after dial: %q %v", out, err)
	}
	return nil
}

// knownHostsCases are known_hosts files as operators have them, written by
// the real tools, with what OpenSSH (and so KnownHosts) must conclude.
type knownHostsCase struct {
	name string
	data func(t *testing.T, s *hostKeysSSHD) []byte
	// want: "ok", "mismatch", "unknown" or "revoked", for the server
	// with a host certificate; wantNoCert for the one without (if it
	// differs).
	want, wantNoCert string
}

func (c knownHostsCase) wantFor(s *hostKeysSSHD) string {
	if !s.cert && c.wantNoCert != "" {
		return c.wantNoCert
	}
	return c.want
}

func knownHostsCases() []knownHostsCase {
	keyscan := func(args ...string) func(t *testing.T, s *hostKeysSSHD) []byte {
		return func(t *testing.T, s *hostKeysSSHD) []byte {
			return runTool(t, "ssh-keyscan", append(append([]string{"-p", s.port}, args...), "127.0.0.1")...)
		}
	}
	line := func(format string, keys ...string) func(t *testing.T, s *hostKeysSSHD) []byte {
		return func(t *testing.T, s *hostKeysSSHD) []byte {
			// Split before substituting: a key's base64 may itself
			// contain "KEY", so replacing in place could hit it.
			parts := strings.Split(strings.ReplaceAll(format, "PORT", s.port), "KEY")
			if len(parts) != len(keys)+1 {
				t.Fatalf("format %q has %d KEY placeholders for %d keys", format, len(parts)-1, len(keys))
			}
			var b strings.Builder
			for i, k := range keys {
				b.WriteString(parts[i])
				b.WriteString(s.pub(t, k+".pub"))
			}
			b.WriteString(parts[len(keys)])
			return []byte(b.String())
		}
	}
	keygenHashed := func(plain func(t *testing.T, s *hostKeysSSHD) []byte) func(t *testing.T, s *hostKeysSSHD) []byte {
		return func(t *testing.T, s *hostKeysSSHD) []byte {
			p := s.write(t, "to_hash_"+strings.ReplaceAll(t.Name(), "/", "_"), plain(t, s))
			runTool(t, "ssh-keygen", "-H", "-f", p)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("|1|")) {
				t.Fatalf("ssh-keygen -H wrote %q", b)
			}
			return b
		}
	}
	return []knownHostsCase{
		{"keyscan-hashed-ed25519", keyscan("-H", "-t", "ed25519"), "ok", ""},
		{"keyscan-hashed-ecdsa", keyscan("-H", "-t", "ecdsa"), "ok", ""},
		{"keyscan-hashed-rsa", keyscan("-H", "-t", "rsa"), "ok", ""},
		{"keyscan-hashed-all", keyscan("-H"), "ok", ""},
		{"keyscan-plain-ed25519", keyscan("-t", "ed25519"), "ok", ""},
		{"keygen-hashed-ed25519", keygenHashed(line("[127.0.0.1]:PORT KEY\n", "host_ed25519")), "ok", ""},
		{"keygen-hashed-rsa", keygenHashed(line("[127.0.0.1]:PORT KEY\n", "host_rsa")), "ok", ""},
		{"host-port", line("[127.0.0.1]:PORT KEY\n", "host_ecdsa"), "ok", ""},
		{"pattern", line("[127.0.0.*]:PORT KEY\n", "host_ed25519"), "ok", ""},
		{"pattern-question-mark", line("[127.0.0.?]:PORT KEY\n", "host_ed25519"), "ok", ""},
		{"pattern-among-names", line("db.example,[127.0.0.*]:PORT KEY\n", "host_rsa"), "ok", ""},
		{"pattern-negated", line("[127.0.0.*]:PORT,![127.0.0.1]:PORT KEY\n", "host_ed25519"), "unknown", ""},
		{"pattern-without-port", line("127.0.0.* KEY\n", "host_ed25519"), "ok", ""},
		{"host-without-port", line("127.0.0.1 KEY\n", "host_ed25519"), "ok", ""},
		{"host-without-port-other-key", line("127.0.0.1 KEY\n", "client"), "unknown", ""},
		{"cert-authority", line("@cert-authority [127.0.0.1]:PORT KEY\n", "ca"), "ok", "mismatch"},
		{"cert-authority-pattern", line("@cert-authority [127.0.0.*]:PORT KEY\n", "ca"), "ok", "mismatch"},
		{"cert-authority-and-key", line("@cert-authority [127.0.0.1]:PORT KEY\n[127.0.0.1]:PORT KEY\n", "ca", "host_rsa"), "ok", ""},
		{"cert-authority-other", line("@cert-authority [127.0.0.1]:PORT KEY\n", "ca_other"), "mismatch", ""},
		{"cert-authority-is-host-key", line("@cert-authority [127.0.0.1]:PORT KEY\n", "host_ed25519"), "mismatch", ""},
		{"mismatch", line("[127.0.0.1]:PORT KEY\n", "client"), "mismatch", ""},
		{"mismatch-hashed", keygenHashed(line("[127.0.0.1]:PORT KEY\n", "client")), "mismatch", ""},
		{"other-host", line("[127.0.0.2]:PORT KEY\n", "host_ed25519"), "unknown", ""},
		{"other-port", line("[127.0.0.1]:1 KEY\n", "host_ed25519"), "unknown", ""},
		{"empty", line(""), "unknown", ""},
		{"revoked", line("[127.0.0.1]:PORT KEY\n@revoked * KEY\n", "host_ed25519", "host_ed25519"), "revoked", ""},
		// A revoked key's type is not asked for: the server shows the other.
		{"revoked-one-of-two", line("[127.0.0.1]:PORT KEY\n[127.0.0.1]:PORT KEY\n@revoked * KEY\n", "host_ed25519", "host_rsa", "host_ed25519"), "ok", ""},
		{"revoked-authority", line("@cert-authority [127.0.0.1]:PORT KEY\n@revoked * KEY\n", "ca", "ca"), "revoked", "mismatch"},
		{"revoked-certified-key", line("@cert-authority [127.0.0.1]:PORT KEY\n@revoked * KEY\n", "ca", "host_ed25519"), "revoked", ""},
	}
}

// checkVerdict asserts that err is what want says.
func checkVerdict(t *testing.T, err error, want string) {
	t.Helper()
	if want == "ok" {
		if err != nil {
			t.Fatalf("refused a server OpenSSH accepts: %v", err)
		}
		return
	}
	var he *ssh.HostKeyError
	if !errors.As(err, &he) || errs.CodeOf(err) != errs.PermissionDenied || !errs.Is(err, errs.PermissionDenied) {
		t.Fatalf("want a *HostKeyError (PermissionDenied), got %v (code %v)", err, errs.CodeOf(err))
	}
	switch want {
	case "mismatch":
		if len(he.Known) == 0 || he.Revoked {
			t.Fatalf("want a mismatch, got %v %+v", err, he)
		}
	case "unknown":
		if len(he.Known) != 0 || he.Revoked {
			t.Fatalf("want an unknown host, got %v %+v", err, he)
		}
	case "revoked":
		if !he.Revoked || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("want a revoked key, got %v %+v", err, he)
		}
	default:
		t.Fatalf("bad want %q", want)
	}
}

// TestHostKeysOpenSSH runs the host key cases against two real sshd
// servers, started once each: one with three host keys, one that also has
// a host certificate. The cases of a server run in parallel.
func TestHostKeysOpenSSH(t *testing.T) {
	t.Parallel()
	for _, cert := range []bool{false, true} {
		name := "three-keys"
		if cert {
			name = "three-keys-and-certificate"
		}
		t.Run(name, func(t *testing.T) {
			s := startHostKeysSSHD(t, cert)
			t.Run("KnownHostsAsOpenSSHReadsIt", func(t *testing.T) {
				for _, c := range knownHostsCases() {
					t.Run(c.name, func(t *testing.T) {
						t.Parallel()
						knownHostsAsOpenSSHReadsIt(t, s, c)
					})
				}
			})
			t.Run("TrustOnFirstUse", func(t *testing.T) {
				for _, c := range knownHostsCases() {
					t.Run(c.name, func(t *testing.T) {
						t.Parallel()
						trustOnFirstUseOpenSSH(t, s, c)
					})
				}
			})
			if cert {
				t.Run("PinnedKey", func(t *testing.T) { pinnedKeyOpenSSH(t, s) })
			}
		})
	}
}

// knownHostsAsOpenSSHReadsIt judges a known_hosts file first by the real
// ssh client, then by KnownHosts.
func knownHostsAsOpenSSHReadsIt(t *testing.T, s *hostKeysSSHD, c knownHostsCase) {
	want := c.wantFor(s)
	data := c.data(t, s)
	file := s.write(t, "kh_"+c.name, data)
	accepted, out := s.opensshAccepts(t, file)
	if accepted != (want == "ok") {
		t.Fatalf("control: OpenSSH accepted=%v, the case expects %q; known_hosts:\n%s\nssh said:\n%s", accepted, want, data, out)
	}
	hk, err := ssh.KnownHosts(data)
	if err != nil {
		t.Fatalf("KnownHosts: %v", err)
	}
	checkVerdict(t, s.dial(t, hk), want)
}

// trustOnFirstUseOpenSSH: TrustOnFirstUse judges listed hosts as
// KnownHosts does, learns an unlisted one, and the line it learns is
// accepted by the real ssh with strict host key checking.
func trustOnFirstUseOpenSSH(t *testing.T, s *hostKeysSSHD, c knownHostsCase) {
	want := c.wantFor(s)
	data := c.data(t, s)
	var learned []string
	tofu, err := ssh.TrustOnFirstUse(data, func(host, line string) error {
		if host != s.addr {
			t.Errorf("learn(%q), want %q", host, s.addr)
		}
		learned = append(learned, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.dial(t, tofu)
	if want != "unknown" {
		checkVerdict(t, err, want)
		if len(learned) != 0 {
			t.Fatalf("learned %q for a listed host", learned)
		}
		return
	}
	if err != nil || len(learned) != 1 {
		t.Fatalf("first use: %v, learned %q", err, learned)
	}
	file := s.write(t, "tofu_"+c.name, append(append(data, '\n'), learned[0]+"\n"...))
	if ok, out := s.opensshAccepts(t, file); !ok {
		t.Fatalf("OpenSSH refuses the learned line %q: %s", learned[0], out)
	}
	// Persisted, the line makes the host known: nothing more is learned.
	again, _ := ssh.TrustOnFirstUse([]byte(learned[0]+"\n"), func(host, line string) error {
		t.Errorf("learn(%q, %q) for a known host", host, line)
		return nil
	})
	if err := s.dial(t, again); err != nil {
		t.Fatalf("with the learned line: %v", err)
	}
}

// pinnedKeyOpenSSH: a pinned key or fingerprint of any of the server's
// three keys is accepted (the server is asked for that type, and never for
// its certificate).
func pinnedKeyOpenSSH(t *testing.T, s *hostKeysSSHD) {
	for _, name := range []string{"host_ed25519", "host_ecdsa", "host_rsa"} {
		pub := s.pub(t, name+".pub")
		fp := strings.Fields(string(runTool(t, "ssh-keygen", "-l", "-E", "sha256", "-f", s.path(name+".pub"))))[1]
		for _, pin := range []string{pub, fp} {
			hk, err := ssh.PinnedKey(pin)
			if err != nil {
				t.Fatal(err)
			}
			err = s.dial(t, hk)
			if strings.HasPrefix(pin, "SHA256:") && name != "host_ed25519" {
				// By fingerprint the type is unknown: the server shows its
				// preferred key (ed25519), which is not the pinned one.
				var he *ssh.HostKeyError
				if !errors.As(err, &he) {
					t.Fatalf("pinned fingerprint of %s: %v", name, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("pinned %s (%s): %v", name, pin[:12], err)
			}
		}
	}
}
