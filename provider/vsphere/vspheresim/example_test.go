package vspheresim_test

import (
	"context"
	"fmt"

	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

func Example() {
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1, GuestAccounts: map[string]string{"root": "pw"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	refs, err := sim.CreateVMs(ctx, 3, "vm", vspheresim.Placement{}, &vspheresim.GuestState{ToolsRunning: true, IP: "192.0.2.1", Family: "linuxGuest"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(refs), "VMs; guest operations on:", sim.Guest != nil, "; UUID set:", sim.UUID(refs[0]) != "")
	// Output: 3 VMs; guest operations on: true ; UUID set: true
}
