package pgipam_test

import (
	"testing"

	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/ipamtest"
)

func TestConformance(t *testing.T) {
	ipamtest.Run(t, ipamtest.HarnessFunc(func(t *testing.T) ipam.IPAM {
		m, _ := newIPAM(t, 8)
		return m
	}))
}
