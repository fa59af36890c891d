package e2e_test

import (
	"os"
	"testing"

	"github.com/managedvm/managedvm/internal/testenv"
)

// TestMain prints, after the benchmarks, a line per missing real
// component that made them skip (see internal/testenv).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
