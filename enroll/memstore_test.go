package enroll_test

import (
	"testing"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) enroll.StoreDriver { return enroll.NewMemoryStoreDriver(nil) })
}
