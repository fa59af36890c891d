package vsphere_test

import (
	"context"
	"fmt"
	"sort"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

func Example() {
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	if _, err := sim.CreateNamedVMs(ctx, []string{"web-01", "db-01"}, vspheresim.Placement{}, func(string) *vspheresim.GuestState {
		return &vspheresim.GuestState{ToolsRunning: true, IP: "192.0.2.10", Family: "linuxGuest"}
	}); err != nil {
		fmt.Println(err)
		return
	}

	p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{
		RootCAs: sim.CAs, // verification stays on
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	vms, err := p.List(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	for _, vm := range vms {
		ip, _ := vm.PrimaryIP()
		fmt.Println(vm.Name, vm.Zone, vm.Power, vm.Guest.Family, ip, vm.Guest.ToolsRunning)
	}
	// Output:
	// db-01 DC0 poweredOn linux 192.0.2.10 true
	// web-01 DC0 poweredOn linux 192.0.2.10 true
}
