package ssh_test

import (
	"os"
	"testing"

	"github.com/managedvm/managedvm/internal/testenv"
)

// TestMain prints, after the tests, a line per missing real component
// that made tests skip (see internal/testenv). The parallel tests mostly
// wait on sshd, ssh and ssh-keygen processes and on timeouts, so more of
// them run at once than the default GOMAXPROCS.
func TestMain(m *testing.M) {
	testenv.Parallel(16)
	os.Exit(testenv.Main(m))
}
