package hyperv_test

import (
	"os"
	"testing"

	"github.com/managedvm/managedvm/internal/testenv"
)

// TestMain lets more parallel tests run at once than the default
// GOMAXPROCS: they mostly wait on the simulated nodes and on timeouts.
func TestMain(m *testing.M) {
	testenv.Parallel(16)
	os.Exit(testenv.Main(m))
}
