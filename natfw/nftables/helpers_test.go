//go:build linux

package nftables_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/managedvm/managedvm/internal/testenv"
)

const component = "root + network namespaces (nftables)"

var (
	probeOnce sync.Once
	probeErr  string
)

// needNetNS stops the test unless this process can create network
// namespaces (root, iproute2, a kernel with nf_tables).
func needNetNS(t testing.TB) {
	t.Helper()
	probeOnce.Do(func() {
		if os.Geteuid() != 0 {
			probeErr = "not root"
			return
		}
		if _, err := exec.LookPath("ip"); err != nil {
			probeErr = "no ip (iproute2) on PATH"
			return
		}
		name := "mvmprobe-" + randHex()
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			probeErr = "ip netns add: " + strings.TrimSpace(string(out))
			return
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	if probeErr != "" {
		testenv.Missing(t, component, "run as root with iproute2 ("+probeErr+"); .ci/run does")
	}
}

func randHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newNS creates a throwaway network namespace, deleted when the test ends,
// and returns its name; its path is /run/netns/NAME.
func newNS(t testing.TB, role string) string {
	t.Helper()
	needNetNS(t)
	name := "mvm" + role + "-" + randHex()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func nsPath(name string) string { return "/run/netns/" + name }

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// addWAN gives ns an interface wan0 (one end of a veth pair; the kernel
// may lack the dummy driver).
func addWAN(t testing.TB, ns string) {
	t.Helper()
	run(t, "ip", "-n", ns, "link", "add", "wan0", "type", "veth", "peer", "name", "wan0p")
	run(t, "ip", "-n", ns, "link", "set", "wan0", "up")
}

// testLockDir holds the change-lock files of the Firewalls the tests make,
// so the throwaway namespaces leave nothing behind in /run/lock.
var testLockDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "managedvm-nftables-locks-")
	if err != nil {
		panic(err)
	}
	testLockDir = dir
	code := testenv.Main(m)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
