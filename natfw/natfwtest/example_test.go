package natfwtest_test

import (
	"testing"

	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/natfw/natfwtest"
)

// A Firewall driver's test runs the suite with a constructor of fresh,
// empty firewalls.
func ExampleRun() {
	_ = func(t *testing.T) {
		natfwtest.Run(t, natfwtest.Harness{New: func(t *testing.T) natfw.Firewall { return memfw.New(nil) }})
	}
}
