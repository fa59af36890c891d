package memipam_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
)

// A zone's public addresses, one allocated to a VM with its NAT relation.
func Example() {
	ctx := context.Background()
	m := memipam.New(nil)
	err := m.CreatePool(ctx, ipam.Pool{
		Name:     "zone-a",
		Prefix:   netip.MustParsePrefix("203.0.113.0/24"),
		Gateway:  netip.MustParseAddr("203.0.113.1"),
		Reserved: []ipam.Range{{From: netip.MustParseAddr("203.0.113.2"), To: netip.MustParseAddr("203.0.113.9")}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	a, err := m.Allocate(ctx, ipam.Request{
		Pool:    "zone-a",
		Owner:   "vsphere-prod/4211a1b2",
		LocalIP: netip.MustParseAddr("10.20.0.15"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %s <-> %s\n", a.Owner, a.Address, a.LocalIP)

	// The firewall side can find the relation from the public address.
	b, err := m.LookupAddress(ctx, "zone-a", a.Address)
	fmt.Println(b.Owner, err)

	info, _ := m.Pool(ctx, "zone-a")
	fmt.Printf("%s: %d of %d used\n", info.Name, info.Used, info.Size)
	// Output:
	// vsphere-prod/4211a1b2: 203.0.113.10 <-> 10.20.0.15
	// vsphere-prod/4211a1b2 <nil>
	// zone-a: 1 of 245 used
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

// Options: a logger (here without timestamps, for the example's output).
func ExampleNew() {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	m := memipam.New(&memipam.Options{Logger: log})
	ctx := context.Background()
	_ = m.CreatePool(ctx, ipam.Pool{Name: "zone-a", Prefix: netip.MustParsePrefix("198.51.100.0/29")})
	_, _ = m.Allocate(ctx, ipam.Request{Pool: "zone-a", Owner: "vm-1"})
	// Output:
	// level=INFO msg="ipam: pool created" pool=zone-a prefix=198.51.100.0/29 size=6
	// level=DEBUG msg="ipam: address allocated" pool=zone-a owner=vm-1 address=198.51.100.1
}
