package guesttest_test

import (
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
)

// An executor driver's test runs the suite against a real guest: New
// returns a connected executor and a scratch directory in the guest.
func ExampleRun() {
	var dial func(t *testing.T) guest.Executor // the driver under test
	_ = func(t *testing.T) {
		guesttest.Run(t, guesttest.Harness{
			Family: guest.Linux,
			New: func(t *testing.T) (guest.Executor, string) {
				return dial(t), t.TempDir()
			},
		})
	}
}
