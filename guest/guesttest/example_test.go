package guesttest_test

import (
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/guesttest"
)

// An executor driver's test runs the suite against a real guest: New
// returns an executor connected with the transport's constructor, given
// the suite's options, and a scratch directory in the guest.
func ExampleRun() {
	var dial func(t *testing.T, opts *guest.Options) *guest.Executor // the transport under test
	_ = func(t *testing.T) {
		guesttest.Run(t, guesttest.Harness{
			Family: guest.Linux,
			New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
				return dial(t, opts), t.TempDir()
			},
		})
	}
}
