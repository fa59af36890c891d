package template_test

import (
	"os"
	"testing"

	"github.com/managedvm/managedvm/internal/testenv"
)

// TestMain prints, after the tests, a line per missing real component
// that made tests skip (see internal/testenv).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
