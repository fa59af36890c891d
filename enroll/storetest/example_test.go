package storetest_test

import (
	"testing"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/storetest"
)

// A Store driver's test runs the suite with a function that returns a
// fresh, empty store.
func ExampleRun() {
	_ = func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) enroll.StoreDriver { return enroll.NewMemoryStoreDriver(nil) })
	}
}
