package pgcmdb_test

import (
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/cmdbtest"
	"github.com/managedvm/managedvm/cmdb/pgcmdb"
)

func TestConformance(t *testing.T) {
	cmdbtest.Run(t, cmdbtest.Harness{New: func(t *testing.T) cmdb.Driver {
		_, pool := newCMDB(t, 8)
		return pgcmdb.NewDriver(pool)
	}})
}
