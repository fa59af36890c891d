//go:build linux

package nftables_test

import (
	"testing"

	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/natfwtest"
	"github.com/managedvm/managedvm/natfw/nftables"
)

// newFirewall returns the portable Firewall over a new Driver, closed
// when the test ends.
func newFirewall(t testing.TB, opts nftables.Options) *natfw.Firewall {
	t.Helper()
	return natfw.New(newDriver(t, opts), nil)
}

func newDriver(t testing.TB, opts nftables.Options) *nftables.Driver {
	t.Helper()
	if opts.LockDir == "" {
		opts.LockDir = testLockDir
	}
	d, err := nftables.NewDriver(&opts)
	if err != nil {
		t.Fatalf("NewDriver: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	needNetNS(t)
	natfwtest.Run(t, natfwtest.Harness{New: func(t *testing.T) natfw.Driver {
		return newDriver(t, nftables.Options{NetNSPath: nsPath(newNS(t, "conf"))})
	}})
}

// The suite again with the rules bound to a WAN interface whose public
// addresses the driver manages.
func TestConformanceWithWAN(t *testing.T) {
	needNetNS(t)
	natfwtest.Run(t, natfwtest.Harness{New: func(t *testing.T) natfw.Driver {
		ns := newNS(t, "confw")
		addWAN(t, ns)
		return newDriver(t, nftables.Options{NetNSPath: nsPath(ns), WANInterface: "wan0", ManagePublicAddress: true})
	}})
}
