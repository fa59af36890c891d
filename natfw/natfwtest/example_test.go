package natfwtest_test

import (
	"testing"

	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/natfw/natfwtest"
)

// A firewall driver's test runs the suite with a constructor of fresh,
// empty drivers; the suite puts natfw.New in front of each.
func ExampleRun() {
	_ = func(t *testing.T) {
		natfwtest.Run(t, natfwtest.Harness{New: func(t *testing.T) natfw.Driver { return memfw.NewDriver() }})
	}
}
