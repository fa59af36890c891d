package memguest_test

import (
	"os"
	"testing"

	"github.com/managedvm/managedvm/internal/testenv"
)

// The conformance cases that run in parallel wait on timeouts and on
// local sleep commands, not on the CPU.
func TestMain(m *testing.M) {
	testenv.Parallel(16)
	os.Exit(testenv.Main(m))
}
