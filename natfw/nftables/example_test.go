//go:build linux

package nftables_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/nftables"
)

// A malformed rule is refused before the kernel is touched, so this runs
// without root.
func Example() {
	fw, err := nftables.New(&nftables.Options{
		Table:        "managedvm",
		NetNSPath:    "", // the caller's namespace; "/run/netns/router" for another
		WANInterface: "eth0",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fw.Close()

	rule := natfw.Rule{
		Owner:   "vsphere-prod/4213-aa",
		Public:  netip.MustParseAddr("2001:db8::10"), // IPv6 in an IPv4 table
		Local:   netip.MustParseAddr("192.0.2.10"),
		Ports:   natfw.LinuxPorts(),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}
	fmt.Println(errs.CodeOf(fw.EnsureNAT(context.Background(), rule)))
	rule.Public = netip.MustParseAddr("203.0.113.10")
	rule.Ports = []natfw.Port{{Protocol: natfw.TCP, Number: 0}}
	fmt.Println(errs.CodeOf(fw.EnsureNAT(context.Background(), rule)))
	// Output:
	// InvalidArgument
	// InvalidArgument
}
