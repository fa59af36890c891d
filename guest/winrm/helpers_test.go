package winrm_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

const (
	testUser     = "Administrator"
	testDomain   = "CORP"
	testPassword = "Pa55w0rd!-not-a-real-one"
)

// fakeGuest is a WinRM server backed by the PowerShell interpreter over a
// temporary directory.
type fakeGuest struct {
	srv  *winrmserver.Server
	in   *winrmserver.Interpreter
	root string
	n    atomic.Int64
}

func newFakeGuest(t testing.TB, opts winrmserver.Options) *fakeGuest {
	t.Helper()
	g := &fakeGuest{root: t.TempDir()}
	g.in = winrmserver.NewInterpreter(winrmserver.InterpreterOptions{Root: g.root})
	if opts.User == "" {
		opts.User, opts.Domain, opts.Password = testUser, testDomain, testPassword
	}
	if opts.Handler == nil {
		opts.Handler = g.in.Handler
	}
	srv, err := winrmserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	g.srv = srv
	return g
}

// options are executor options that trust the fake's CA.
func (g *fakeGuest) options() *winrm.Options {
	return &winrm.Options{Port: g.srv.Port(), CACertPEM: g.srv.CACertPEM()}
}

func (g *fakeGuest) executor(t testing.TB, opts *winrm.Options) *guest.Executor {
	t.Helper()
	if opts == nil {
		opts = g.options()
	}
	ex, err := winrm.New(g.srv.Host(), guest.Password(testUser, testPassword), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ex.Close() })
	return ex
}

// dir makes a fresh guest directory and returns its guest path.
func (g *fakeGuest) dir(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("case-%d", g.n.Add(1))
	if err := os.MkdirAll(filepath.Join(g.root, "C", "mvm", name), 0o755); err != nil {
		t.Fatal(err)
	}
	return `C:\mvm\` + name
}

func (g *fakeGuest) host(t testing.TB, guestPath string) string {
	t.Helper()
	p, err := g.in.HostPath(guestPath)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
