package hyperv_test

import (
	"context"
	"fmt"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/hyperv"
)

func Example() {
	ctx := context.Background()
	// A simulated 2-node failover cluster: a templates CSV with one
	// template, a VMs CSV and a trunking switch.
	sim, err := hypervsim.New(hypervsim.Options{Cluster: "HVC1", Domain: "CORP", Nodes: []string{"HV1", "HV2"},
		User: "svc-managedvm", Password: "example-only"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	sim.AddCSV(hypervsim.CSV{Name: "Cluster Disk 1", Path: `C:\ClusterStorage\Templates`, Owner: "HV1"})
	sim.AddCSV(hypervsim.CSV{Name: "Cluster Disk 2", Path: `C:\ClusterStorage\VMs`, Owner: "HV2"})
	sim.AddSwitch(hypervsim.Switch{Name: "vSwitch-Trunk", Type: "External"})
	sim.AddVHDX(hypervsim.VHDX{Path: `C:\ClusterStorage\Templates\ubuntu-24.04.vhdx`, Size: 32 << 30})

	// One WinRM endpoint per node; each node's CA is trusted.
	var nodes []hyperv.Node
	for _, n := range sim.Nodes() {
		ep, _ := sim.Endpoint(n)
		nodes = append(nodes, hyperv.Node{Name: n, Host: ep.Host, WinRM: winrm.Options{Port: ep.Port, CACertPEM: ep.CACertPEM}})
	}
	p, err := hyperv.New(ctx, nodes, guest.Password(`CORP\svc-managedvm`, "example-only"), &hyperv.Options{
		Zone: "az1", TemplatesPath: `C:\ClusterStorage\Templates`, VMsPath: `C:\ClusterStorage\VMs`,
		Switch: "vSwitch-Trunk", VLANs: []int{20},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	vm, err := p.Provision(ctx, provider.ProvisionSpec{Key: "order-42", Name: "web-01", Template: "ubuntu-24.04", Zone: "az1",
		Network: provider.Network{VLAN: 20}, CPUs: 2, MemoryMiB: 4096, PowerOn: true,
		Customization: &provider.Customization{Hostname: "web-01", UserData: []byte("#cloud-config\n{}\n")}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(vm.Name, vm.Zone, vm.Power, vm.CPUs, vm.MemoryMiB, vm.Attributes["clustered"], vm.Attributes["nic0.vlan"])
	// Output:
	// web-01 az1 poweredOn 2 4096 true 20
}
