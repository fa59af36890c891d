package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
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
	// pool "zone-a": prefix 203.0.113.7/24 has host bits set (did you mean 203.0.113.0/24?)
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

// Allocate is idempotent: a retried step gets the same address back.
func ExampleIPAM_Allocate() {
	ctx := context.Background()
	m := memipam.New(nil)
	_ = m.CreatePool(ctx, ipam.Pool{Name: "zone-a", Prefix: netip.MustParsePrefix("198.51.100.0/24")})
	req := ipam.Request{Pool: "zone-a", Owner: "vm-1"}
	first, _ := m.Allocate(ctx, req)
	again, _ := m.Allocate(ctx, req)
	fmt.Println(first.Address, again.Address)
	// Output: 198.51.100.1 198.51.100.1
}

// A full pool is ResourceExhausted until an address is released.
func ExampleIPAM_Allocate_exhausted() {
	ctx := context.Background()
	m := memipam.New(nil)
	_ = m.CreatePool(ctx, ipam.Pool{Name: "small", Prefix: netip.MustParsePrefix("192.0.2.0/30")}) // .1 and .2
	for _, owner := range []string{"vm-1", "vm-2", "vm-3"} {
		a, err := m.Allocate(ctx, ipam.Request{Pool: "small", Owner: owner})
		switch {
		case errors.Is(err, errs.ResourceExhausted):
			fmt.Println(owner, errs.CodeOf(err), err)
		case err != nil:
			fmt.Println(owner, err)
		default:
			fmt.Println(owner, a.Address)
		}
	}
	_ = m.Release(ctx, "small", "vm-1")
	a, err := m.Allocate(ctx, ipam.Request{Pool: "small", Owner: "vm-3"})
	fmt.Println("vm-3", a.Address, err)
	// Output:
	// vm-1 192.0.2.1
	// vm-2 192.0.2.2
	// vm-3 ResourceExhausted ipam.Allocate: pool "small" is exhausted: all 2 addresses are allocated
	// vm-3 192.0.2.1 <nil>
}

// Release is idempotent; an unknown pool is NotFound.
func ExampleIPAM_Release() {
	ctx := context.Background()
	m := memipam.New(nil)
	_ = m.CreatePool(ctx, ipam.Pool{Name: "zone-a", Prefix: netip.MustParsePrefix("198.51.100.0/24")})
	_, _ = m.Allocate(ctx, ipam.Request{Pool: "zone-a", Owner: "vm-1"})
	fmt.Println(m.Release(ctx, "zone-a", "vm-1"))
	fmt.Println(m.Release(ctx, "zone-a", "vm-1"))
	fmt.Println(errs.CodeOf(m.Release(ctx, "zone-b", "vm-1")))
	// Output:
	// <nil>
	// <nil>
	// NotFound
}

// When the VM's local address changes, the NAT relation follows.
func ExampleIPAM_SetLocalIP() {
	ctx := context.Background()
	m := memipam.New(nil)
	_ = m.CreatePool(ctx, ipam.Pool{Name: "zone-a", Prefix: netip.MustParsePrefix("198.51.100.0/24")})
	_, _ = m.Allocate(ctx, ipam.Request{Pool: "zone-a", Owner: "vm-1", LocalIP: netip.MustParseAddr("10.0.0.5")})
	a, _ := m.SetLocalIP(ctx, "zone-a", "vm-1", netip.MustParseAddr("10.0.0.42"))
	fmt.Println(a.Address, "<->", a.LocalIP)
	// Output: 198.51.100.1 <-> 10.0.0.42
}
