package ovirt_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/guest"
	fakeovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/ovirt"
)

func Example() {
	ctx := context.Background()
	engine := fakeovirt.New(nil) // a fake engine: Default/Default, template centos9
	defer engine.Close()
	if _, err := engine.AddVM(fakeovirt.VMSpec{Name: "web-01", Status: "up", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.10")}}); err != nil {
		fmt.Println(err)
		return
	}

	p, err := ovirt.New(ctx, engine.URL(), engine.User(), guest.NewSecret(engine.Password()),
		&ovirt.Options{CACertPEM: engine.CACertPEM()}) // verification stays on
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
	// web-01 Default/Default poweredOn false linux [192.0.2.10] true
	// centos9 Default/Default poweredOff true linux [] false
}
