package pgstore_test

import (
	"testing"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/pgstore"
	"github.com/managedvm/managedvm/enroll/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) enroll.StoreDriver {
		_, pool := newStore(t, 8)
		return pgstore.NewDriver(pool, nil)
	})
}
