package memfw_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
)

func Example() {
	ctx := context.Background()
	fw := memfw.New(nil)

	rule := natfw.Rule{
		Owner:       "vsphere-prod/4213-aa",
		Public:      netip.MustParseAddr("203.0.113.10"),
		Local:       netip.MustParseAddr("10.0.0.10"),
		Ports:       natfw.LinuxPorts(),
		Sources:     []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Description: "web-01",
	}
	// EnsureNAT is idempotent: the second call changes nothing.
	fmt.Println(fw.EnsureNAT(ctx, rule))
	fmt.Println(fw.EnsureNAT(ctx, rule))

	// Another owner cannot take the same public address.
	other := rule
	other.Owner, other.Local = "vsphere-prod/77b1-cc", netip.MustParseAddr("10.0.0.11")
	fmt.Println(errs.CodeOf(fw.EnsureNAT(ctx, other)))

	rules, _ := fw.List(ctx)
	for _, r := range rules {
		fmt.Println(r.Owner, r.Public, "->", r.Local, r.Ports, r.Sources)
	}

	// RemoveNAT is idempotent too.
	fmt.Println(fw.RemoveNAT(ctx, rule.Owner), fw.RemoveNAT(ctx, rule.Owner))
	_, err := fw.Get(ctx, rule.Owner)
	fmt.Println(errs.CodeOf(err))
	// Output:
	// <nil>
	// <nil>
	// AlreadyExists
	// vsphere-prod/4213-aa 203.0.113.10 -> 10.0.0.10 [tcp/22] [198.51.100.0/24]
	// <nil> <nil>
	// NotFound
}

func ExampleDriver_Allowed() {
	fw := memfw.New(nil)
	var d *memfw.Driver
	fw.As(&d)
	_ = fw.EnsureNAT(context.Background(), natfw.Rule{
		Owner:   "win-01",
		Public:  netip.MustParseAddr("203.0.113.20"),
		Local:   netip.MustParseAddr("10.0.0.20"),
		Ports:   natfw.WindowsPorts(),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	})
	public := netip.MustParseAddr("203.0.113.20")
	admin := netip.MustParseAddr("198.51.100.5")
	stranger := netip.MustParseAddr("192.0.2.99")

	fmt.Println(d.Allowed(admin, public, natfw.Port{Protocol: natfw.TCP, Number: 5986}))
	fmt.Println(d.Allowed(admin, public, natfw.Port{Protocol: natfw.TCP, Number: 22}))
	fmt.Println(d.Allowed(stranger, public, natfw.Port{Protocol: natfw.TCP, Number: 3389}))
	// Output:
	// 10.0.0.20 true
	// invalid IP false
	// invalid IP false
}

func Example_invalid() {
	fw := memfw.New(nil)
	err := fw.EnsureNAT(context.Background(), natfw.Rule{
		Owner:   "vm-1",
		Public:  netip.MustParseAddr("203.0.113.10"),
		Local:   netip.MustParseAddr("10.0.0.10"),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	})
	fmt.Println(errs.CodeOf(err))
	fmt.Println(err)
	// Output:
	// InvalidArgument
	// natfw.EnsureNAT: rule for "vm-1": no ports
}
