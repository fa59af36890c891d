package vspheresim_test

import (
	"context"
	"fmt"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// A simulated vCenter with one VM whose guest is scripted: the vsphere
// driver validates the credentials in the guest and runs a command there,
// answered by a memguest table (nothing runs on this machine).
func Example() {
	ctx := context.Background()
	scripted := memguest.NewDriver(guest.Linux, nil)
	scripted.HandleArgs([]string{"id", "-un"}, memguest.Reply("root\n"))
	sim, err := vspheresim.New(ctx, &vspheresim.Options{
		ModelVMs:      -1,
		GuestAccounts: map[string]string{"root": "customer-secret"},
		GuestHandler:  vspheresim.ExecutorHandler(func(vspheresim.GuestVM) *guest.Executor { return scripted.Executor() }),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	refs, err := sim.CreateNamedVMs(ctx, []string{"web-01"}, vspheresim.Placement{}, func(string) *vspheresim.GuestState {
		return &vspheresim.GuestState{ToolsRunning: true, IP: "192.168.10.11", Family: "linuxGuest"}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{RootCAs: sim.CAs})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	ga, _ := p.GuestAccess()
	ex, err := ga.GuestExecutor(ctx, sim.UUID(refs[0]), guest.Password("root", "customer-secret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Close()
	who, err := guest.Output(ctx, ex, guest.Command{Args: []string{"id", "-un"}})
	fmt.Println(who, err)
	fmt.Println(len(scripted.Commands()), "command answered by the table")
	// Output:
	// root <nil>
	// 1 command answered by the table
}

// Changes behind the driver's back: the VM powers off and its IP changes,
// as a driver's Get (and Watch) then report.
func ExampleSim_PowerOff() {
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	refs, err := sim.CreateNamedVMs(ctx, []string{"db-01"}, vspheresim.Placement{}, func(string) *vspheresim.GuestState {
		return &vspheresim.GuestState{ToolsRunning: true, IP: "192.168.10.12", Family: "linuxGuest"}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{RootCAs: sim.CAs})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	id := sim.UUID(refs[0])
	if err := sim.SetIP(ctx, id, "192.168.10.99"); err != nil {
		fmt.Println(err)
		return
	}
	if err := sim.PowerOff(ctx, id); err != nil {
		fmt.Println(err)
		return
	}
	vm, err := p.Get(ctx, id)
	if err != nil {
		fmt.Println(err)
		return
	}
	ip, _ := vm.PrimaryIP()
	fmt.Println(vm.Name, vm.Power, ip)
	// Output: db-01 poweredOff 192.168.10.99
}
