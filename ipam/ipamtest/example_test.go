package ipamtest_test

import (
	"testing"

	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/ipamtest"
	"github.com/managedvm/managedvm/ipam/memipam"
)

// An IPAM driver's test runs the suite with a constructor of fresh drivers.
func ExampleRun() {
	_ = func(t *testing.T) {
		ipamtest.Run(t, ipamtest.HarnessFunc(func(t *testing.T) ipam.Driver { return memipam.NewDriver(nil) }))
	}
}
