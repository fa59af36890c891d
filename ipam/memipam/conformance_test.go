package memipam_test

import (
	"testing"

	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/ipamtest"
	"github.com/managedvm/managedvm/ipam/memipam"
)

func TestConformance(t *testing.T) {
	ipamtest.Run(t, ipamtest.HarnessFunc(func(t *testing.T) ipam.Driver {
		return memipam.NewDriver(nil)
	}))
}

// TestConformanceCollidingHashes runs the suite with an owner hash that
// collides all the time, so that the slow path of the owner index is
// checked as thoroughly as the fast one.
func TestConformanceCollidingHashes(t *testing.T) {
	ipamtest.Run(t, ipamtest.HarnessFunc(func(t *testing.T) ipam.Driver {
		return memipam.NewColliding(nil)
	}))
}
