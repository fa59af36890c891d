package memipam_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

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

// Options: a logger (here without timestamps, for the example's output).
func ExampleNew() {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
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
	// level=DEBUG msg=call op=ipam.CreatePool code=OK
	// level=DEBUG msg="ipam: address allocated" pool=zone-a owner=vm-1 address=198.51.100.1
	// level=DEBUG msg=call op=ipam.Allocate code=OK
}
