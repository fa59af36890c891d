package memprovider_test

import (
	"context"
	"fmt"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

// Provision a VM from a template and validate guest credentials on it.
func Example_provision() {
	ctx := context.Background()
	hv := memprovider.New(nil) // the driver, with the helpers that set up its world
	_ = hv.AddZone(provider.Zone{Name: "zone-a", Networks: []string{"vlan-100"}})
	tmpl, _ := hv.AddTemplate(provider.Template{
		Zone: "zone-a", Name: "debian-12", Family: guest.Linux,
		OSName: "Debian GNU/Linux 12 (bookworm)", ToolsInstalled: true,
	})
	_ = hv.SetGuestAccount(tmpl.ID, "admin", "s3cret") // clones inherit it

	p := hv.Provider() // the *provider.Provider the code under test holds
	vm, err := p.Provision(ctx, provider.ProvisionSpec{
		Key: "order-42", Name: "web-1", Template: "debian-12", Zone: "zone-a",
		Network: provider.Network{Name: "vlan-100"}, PowerOn: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(vm.ID, vm.Name, vm.Power, vm.Guest.OSName, "tools running:", vm.Guest.ToolsRunning)

	again, _ := p.Provision(ctx, provider.ProvisionSpec{Key: "order-42", Name: "web-1", Template: "debian-12", Zone: "zone-a"})
	fmt.Println("same key, same VM:", again.ID == vm.ID)

	ga, _ := p.GuestAccess()
	fmt.Println(ga.ValidateCredentials(ctx, vm.ID, guest.Password("admin", "s3cret")))
	fmt.Println(errs.CodeOf(ga.ValidateCredentials(ctx, vm.ID, guest.Password("admin", "guess"))))
	// Output:
	// vm-2 web-1 poweredOn Debian GNU/Linux 12 (bookworm) tools running: true
	// same key, same VM: true
	// <nil>
	// Unauthenticated
}

// Take a cursor, add a VM behind managedvm's back, and watch the event.
func Example_watch() {
	ctx := context.Background()
	hv := memprovider.New(nil)
	_ = hv.AddZone(provider.Zone{Name: "zone-a"})
	p := hv.Provider()

	cur, _ := p.Cursor(ctx)
	vm, _ := hv.AddVM(provider.VM{Name: "legacy-db", Zone: "zone-a"})
	_ = p.PowerOn(ctx, vm.ID)

	st, _ := p.Watch(ctx, cur)
	defer st.Close()
	for range 2 {
		ev, _ := st.Next(ctx)
		fmt.Println(ev.Cursor, ev.Type, ev.VMID, ev.VM.Name, ev.VM.Power)
	}
	// Output:
	// 1 created vm-1 legacy-db poweredOff
	// 2 changed vm-1 legacy-db poweredOn
}

// Run the OS facts probe through the hypervisor, with no network path.
func Example_guestFacts() {
	ctx := context.Background()
	hv := memprovider.New(nil)
	vm, _ := hv.AddVM(provider.VM{
		Name: "app-1", Power: provider.PoweredOn,
		Guest: provider.GuestInfo{Family: guest.Linux, OSName: "Red Hat Enterprise Linux 9.4 (Plow)", OSVersion: "9.4", ToolsRunning: true},
	})
	_ = hv.SetGuestAccount(vm.ID, "root", "pw")

	ga, _ := hv.Provider().GuestAccess()
	ex, err := ga.GuestExecutor(ctx, vm.ID, guest.Password("root", "pw"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Close()
	f, err := guest.DetectFacts(ctx, ex)
	fmt.Printf("%s %s %q %s %s %v\n", f.Family, f.Distribution, f.Name, f.Version, f.Arch, err)
	// Output: linux rhel "Red Hat Enterprise Linux 9.4 (Plow)" 9.4 x86_64 <nil>
}
