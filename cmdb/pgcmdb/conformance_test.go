package pgcmdb_test

import (
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/cmdbtest"
)

func TestConformance(t *testing.T) {
	cmdbtest.Run(t, cmdbtest.Harness{New: func(t *testing.T) cmdb.CMDB {
		c, _ := newCMDB(t, 8)
		return c
	}})
}
