package provider_test

import (
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/provider"
)

func ExampleReport() {
	var r provider.Report
	r.Add(provider.Check{ID: "zone", Name: "Availability zone defined", Status: provider.Pass, Subject: "zone-a"})
	r.Add(provider.Check{
		ID: "template.tools", Name: "Guest tools installed in the template", Status: provider.Warn,
		Subject: "debian-12", Detail: "VMware Tools not installed", Fix: "install open-vm-tools in the template",
	})
	fmt.Print(r)
	fmt.Println("status:", r.Status(), "ok:", r.OK())
	// Output:
	// [PASS] Availability zone defined (zone-a)
	// [WARN] Guest tools installed in the template (debian-12): VMware Tools not installed -- fix: install open-vm-tools in the template
	// status: warn ok: true
}

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
