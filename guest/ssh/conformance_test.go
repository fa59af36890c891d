package ssh_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/internal/fakes/sshserver"
	"github.com/managedvm/managedvm/internal/testenv"
	xssh "golang.org/x/crypto/ssh"
)

// clientKey returns a fresh PEM private key and its public key.
func clientKey(t testing.TB, passphrase string) (string, xssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = xssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = xssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	sp, err := xssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block)), sp
}

type fakeEnv struct {
	srv  *sshserver.Server
	cred guest.Credentials
}

func startFake(t testing.TB, cfg sshserver.Config) *fakeEnv {
	t.Helper()
	key, pub := clientKey(t, "")
	cfg.AuthorizedKeys = append(cfg.AuthorizedKeys, pub)
	srv, err := sshserver.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	// The fake runs commands as the current user; "root" tells the
	// executor that Sudo needs no escalation when that user is root.
	user := "tester"
	if os.Geteuid() == 0 {
		user = "root"
	}
	return &fakeEnv{srv: srv, cred: guest.Credentials{Username: user, PrivateKey: guest.NewSecret(key)}}
}

func (f *fakeEnv) dial(t testing.TB, opts *ssh.Options) *guest.Executor {
	t.Helper()
	hk, err := ssh.KnownHosts(f.srv.KnownHosts())
	if err != nil {
		t.Fatal(err)
	}
	ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: f.srv.Addr(), Credentials: f.cred, HostKeys: hk}, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	return ex
}

func TestConformanceFake(t *testing.T) {
	for _, c := range []struct {
		name   string
		noSFTP bool
	}{{"sftp", false}, {"exec-upload", true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // the suite mostly waits out deadlines
			f := startFake(t, sshserver.Config{NoSFTP: c.noSFTP, MaxSessions: 10})
			guesttest.Run(t, guesttest.Harness{
				Family: guest.Linux,
				Sudo:   os.Geteuid() == 0,
				New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
					return f.dial(t, &ssh.Options{Executor: opts}), t.TempDir()
				},
			})
		})
	}
}

// realSSHD reads the environment .ci/components/30-sshd.sh exports.
type realSSHD struct {
	addr, user, knownHosts string
	key                    string
	pwUser, pwPassword     string
}

func sshdEnv(t testing.TB) realSSHD {
	t.Helper()
	const how = "set MANAGEDVM_SSHD_ADDR, _USER, _KEY and _KNOWN_HOSTS for an OpenSSH server (bash .ci/run starts one: .ci/components/30-sshd.sh)"
	r := realSSHD{
		addr:       testenv.Env(t, "MANAGEDVM_SSHD_ADDR", "OpenSSH sshd", how),
		user:       testenv.Env(t, "MANAGEDVM_SSHD_USER", "OpenSSH sshd", how),
		knownHosts: testenv.Env(t, "MANAGEDVM_SSHD_KNOWN_HOSTS", "OpenSSH sshd", how),
		pwUser:     os.Getenv("MANAGEDVM_SSHD_PW_USER"),
		pwPassword: os.Getenv("MANAGEDVM_SSHD_PW_PASSWORD"),
	}
	key, err := os.ReadFile(testenv.Env(t, "MANAGEDVM_SSHD_KEY", "OpenSSH sshd", how))
	if err != nil {
		t.Fatal(err)
	}
	r.key = string(key)
	return r
}

func (r realSSHD) hostKeys(t testing.TB) ssh.HostKeyPolicy {
	t.Helper()
	data, err := os.ReadFile(r.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := ssh.KnownHosts(data)
	if err != nil {
		t.Fatal(err)
	}
	return hk
}

func (r realSSHD) dialRoot(t testing.TB, opts *ssh.Options) *guest.Executor {
	t.Helper()
	ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: r.addr, HostKeys: r.hostKeys(t),
		Credentials: guest.Credentials{Username: r.user, PrivateKey: guest.NewSecret(r.key)}}, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	return ex
}

func (r realSSHD) dialPassword(t testing.TB, opts ...*guest.Options) *guest.Executor {
	t.Helper()
	if r.pwUser == "" {
		testenv.Missing(t, "sshd user with a password", "set MANAGEDVM_SSHD_PW_USER and MANAGEDVM_SSHD_PW_PASSWORD for a user with a password and sudo (bash .ci/run creates one)")
	}
	o := &ssh.Options{}
	if len(opts) > 0 {
		o.Executor = opts[0]
	}
	ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: r.addr, HostKeys: r.hostKeys(t),
		Credentials: guest.Password(r.pwUser, r.pwPassword)}, o)
	if err != nil {
		t.Fatalf("Dial with a password: %v", err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	return ex
}

// guestTempDir makes a directory in the guest, removed afterwards.
func guestTempDir(t *testing.T, ex *guest.Executor) string {
	t.Helper()
	dir, err := guest.Output(context.Background(), ex, guest.Command{Args: []string{"mktemp", "-d", "/tmp/mvm-ssh-test.XXXXXX"}})
	if err != nil {
		t.Fatalf("mktemp: %v", err)
	}
	t.Cleanup(func() {
		// The case may have closed ex: clean up over a new connection.
		_, _ = ex.Run(context.Background(), guest.Command{Args: []string{"rm", "-rf", "--", dir}})
	})
	if !strings.HasPrefix(dir, "/tmp/mvm-ssh-test.") {
		t.Fatalf("mktemp printed %q", dir)
	}
	return dir
}

func TestConformanceOpenSSH(t *testing.T) {
	r := sshdEnv(t)
	t.Run("root-key", func(t *testing.T) {
		guesttest.Run(t, guesttest.Harness{
			Family: guest.Linux,
			Sudo:   true,
			New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
				ex := r.dialRoot(t, &ssh.Options{Executor: opts})
				return ex, guestTempDir(t, r.dialRoot(t, nil))
			},
		})
	})
	t.Run("root-key-exec-upload", func(t *testing.T) {
		guesttest.Run(t, guesttest.Harness{
			Family: guest.Linux,
			Sudo:   true,
			New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
				ex := r.dialRoot(t, &ssh.Options{NoSFTP: true, Executor: opts})
				return ex, guestTempDir(t, r.dialRoot(t, nil))
			},
		})
	})
	t.Run("password-sudo", func(t *testing.T) {
		if r.pwUser == "" {
			testenv.Missing(t, "sshd user with a password", "set MANAGEDVM_SSHD_PW_USER and MANAGEDVM_SSHD_PW_PASSWORD for a user with a password and sudo (bash .ci/run creates one)")
		}
		guesttest.Run(t, guesttest.Harness{
			Family: guest.Linux,
			Sudo:   true,
			New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
				ex := r.dialPassword(t, opts)
				return ex, guestTempDir(t, r.dialPassword(t))
			},
		})
	})
}

// TestCredentialLimits holds ssh.Dial to the credential limits every
// transport shares.
func TestCredentialLimits(t *testing.T) {
	f := startFake(t, sshserver.Config{MaxSessions: 10})
	hk, err := ssh.KnownHosts(f.srv.KnownHosts())
	if err != nil {
		t.Fatal(err)
	}
	guesttest.RunCredentials(t, f.cred, func(ctx context.Context, cred guest.Credentials) (*guest.Executor, error) {
		return ssh.Dial(ctx, ssh.Config{Addr: f.srv.Addr(), Credentials: cred, HostKeys: hk}, nil)
	})
}
