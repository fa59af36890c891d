package nftables_test

import (
	"testing"

	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/natfwtest"
	"github.com/managedvm/managedvm/natfw/nftables"
)

func newFirewall(t testing.TB, opts nftables.Options) *nftables.Firewall {
	t.Helper()
	if opts.LockDir == "" {
		opts.LockDir = testLockDir
	}
	fw, err := nftables.New(&opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = fw.Close() })
	return fw
}

func TestConformance(t *testing.T) {
	needNetNS(t)
	natfwtest.Run(t, natfwtest.Harness{New: func(t *testing.T) natfw.Firewall {
		return newFirewall(t, nftables.Options{NetNSPath: nsPath(newNS(t, "conf"))})
	}})
}

// The suite again with the rules bound to a WAN interface whose public
// addresses the driver manages.
func TestConformanceWithWAN(t *testing.T) {
	needNetNS(t)
	natfwtest.Run(t, natfwtest.Harness{New: func(t *testing.T) natfw.Firewall {
		ns := newNS(t, "confw")
		addWAN(t, ns)
		return newFirewall(t, nftables.Options{NetNSPath: nsPath(ns), WANInterface: "wan0", ManagePublicAddress: true})
	}})
}
