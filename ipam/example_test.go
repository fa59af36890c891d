package ipam_test

import (
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
)

// A /24 loses its network and broadcast addresses, its gateway and its
// reserved ranges; overlapping reservations count once.
func ExamplePool_Size() {
	p := ipam.Pool{
		Name:    "zone-a",
		Prefix:  netip.MustParsePrefix("203.0.113.0/24"),
		Gateway: netip.MustParseAddr("203.0.113.1"),
		Reserved: []ipam.Range{
			{From: netip.MustParseAddr("203.0.113.2"), To: netip.MustParseAddr("203.0.113.9")},
			{From: netip.MustParseAddr("203.0.113.5"), To: netip.MustParseAddr("203.0.113.12")},
		},
	}
	fmt.Println(p.Size())
	fmt.Println(ipam.Pool{Name: "p2p", Prefix: netip.MustParsePrefix("198.51.100.4/31")}.Size())
	// Output:
	// 242
	// 2
}

func ExamplePool_Excluded() {
	p := ipam.Pool{
		Name:    "zone-a",
		Prefix:  netip.MustParsePrefix("203.0.113.0/24"),
		Gateway: netip.MustParseAddr("203.0.113.1"),
	}
	for _, a := range []string{"203.0.113.0", "203.0.113.1", "203.0.113.2", "203.0.113.255", "192.0.2.1"} {
		fmt.Println(a, p.Excluded(netip.MustParseAddr(a)))
	}
	// Output:
	// 203.0.113.0 true
	// 203.0.113.1 true
	// 203.0.113.2 false
	// 203.0.113.255 true
	// 192.0.2.1 true
}

func ExamplePool_Validate() {
	p := ipam.Pool{Name: "zone-a", Prefix: netip.MustParsePrefix("203.0.113.7/24")}
	err := p.Validate()
	fmt.Println(errs.CodeOf(err))
	fmt.Println(err)
	// Output:
	// InvalidArgument
	// ipam.Pool: pool "zone-a": prefix 203.0.113.7/24 has host bits set (did you mean 203.0.113.0/24?)
}

// The excluded addresses as merged ranges: the network address, the
// gateway and a reservation next to it form one range.
func ExamplePool_ExcludedRanges() {
	p := ipam.Pool{
		Name:     "zone-a",
		Prefix:   netip.MustParsePrefix("203.0.113.0/24"),
		Gateway:  netip.MustParseAddr("203.0.113.1"),
		Reserved: []ipam.Range{{From: netip.MustParseAddr("203.0.113.2"), To: netip.MustParseAddr("203.0.113.9")}},
	}
	for _, r := range p.ExcludedRanges() {
		fmt.Println(r.From, r.To)
	}
	// Output:
	// 203.0.113.0 203.0.113.9
	// 203.0.113.255 203.0.113.255
}
