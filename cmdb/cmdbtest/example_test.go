package cmdbtest_test

import (
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/cmdbtest"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
)

// A CMDB driver's test runs the suite with a constructor of fresh
// drivers; the suite puts cmdb.New in front of each.
func ExampleRun() {
	_ = func(t *testing.T) {
		cmdbtest.Run(t, cmdbtest.Harness{New: func(t *testing.T) cmdb.Driver { return memcmdb.NewDriver(nil) }})
	}
}
