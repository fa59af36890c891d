package provider_test

import (
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/provider"
)

func ExampleVM_PrimaryIP() {
	vm := provider.VM{Guest: provider.GuestInfo{IPs: []netip.Addr{
		netip.MustParseAddr("fe80::1"),
		netip.MustParseAddr("2001:db8::10"),
		netip.MustParseAddr("10.20.0.15"),
	}}}
	ip, ok := vm.PrimaryIP()
	fmt.Println(ip, ok)
	// Output: 10.20.0.15 true
}

func ExampleProvisionSpec_Validate() {
	spec := provider.ProvisionSpec{Key: "order-42", Name: "web-1", Zone: "zone-a"}
	fmt.Println(spec.Validate())
	// Output: provider.ProvisionSpec: Template is required
}
