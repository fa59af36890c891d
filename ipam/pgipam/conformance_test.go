package pgipam_test

import (
	"testing"

	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/ipamtest"
	"github.com/managedvm/managedvm/ipam/pgipam"
)

func TestConformance(t *testing.T) {
	ipamtest.Run(t, ipamtest.HarnessFunc(func(t *testing.T) ipam.Driver {
		return pgipam.NewDriver(migratedPool(t, 8), nil)
	}))
}
