package vcd_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/guest"
	fakevcd "github.com/managedvm/managedvm/internal/fakes/vcd"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vcd"
)

func Example() {
	ctx := context.Background()
	cloud := fakevcd.New(nil) // a fake VCD: org acme, VDC vdc1, template ubuntu-22.04
	defer cloud.Close()
	if _, err := cloud.AddVM(fakevcd.VMSpec{Name: "web-01", IP: "10.10.1.50", PoweredOn: true, Tools: true}); err != nil {
		fmt.Println(err)
		return
	}
	o := cloud.Options()
	p, err := vcd.New(ctx, cloud.URL(), vcd.Credentials{Org: o.Org, User: o.User, Password: guest.NewSecret(o.Password)},
		&vcd.Options{CACertPEM: cloud.CACertPEM()}) // verification stays on
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	vms, err := p.List(ctx, &provider.ListOptions{IncludeTemplates: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, vm := range vms {
		fmt.Println(vm.Name, vm.Zone, vm.Power, vm.Template, vm.Guest.Family, vm.Guest.IPs, vm.Guest.ToolsRunning)
	}
	// Output:
	// web-01 vdc1 poweredOn false linux [10.10.1.50] true
	// ubuntu-22.04 vdc1 poweredOff true linux [] false
}

func ExampleNewFirewall() {
	ctx := context.Background()
	cloud := fakevcd.New(nil) // edge gateway edge1, allocated IPs 203.0.113.10-40
	defer cloud.Close()
	o := cloud.Options()
	fw, err := vcd.NewFirewall(ctx, cloud.URL(), vcd.Credentials{Org: o.Org, User: o.User, Password: guest.NewSecret(o.Password)},
		o.EdgeGateway, &vcd.FirewallOptions{CACertPEM: cloud.CACertPEM()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fw.Close()
	err = fw.EnsureNAT(ctx, natfw.Rule{Owner: "web-01", Public: netip.MustParseAddr("203.0.113.10"),
		Local: netip.MustParseAddr("10.10.1.50"), Ports: natfw.LinuxPorts(),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := fw.Get(ctx, "web-01")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Public, r.Local, r.Ports, r.Sources)
	for _, n := range cloud.NATRules(o.EdgeGateway) {
		fmt.Println(n.Type, n.ExternalAddresses, n.InternalAddresses)
	}
	// Output:
	// 203.0.113.10 10.10.1.50 [tcp/22] [198.51.100.0/24]
	// REFLEXIVE 203.0.113.10 10.10.1.50
}
