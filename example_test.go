package managedvm_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

// A host application wires one driver per contract into the orchestrator.
// Here every driver is an in-memory one; production hosts use the vSphere
// provider, an SSH/WinRM Dialer, a PostgreSQL IPAM and Store, and so on.
func Example() {
	ctx := context.Background()
	hv := memprovider.New(nil)
	_ = hv.AddZone(provider.Zone{Name: "az1"})
	vm, _ := hv.AddVM(provider.VM{Name: "app-01", Zone: "az1", Power: provider.PoweredOn,
		Guest: provider.GuestInfo{Family: guest.Windows, OSName: "Microsoft Windows Server 2022 Standard",
			IPs: []netip.Addr{netip.MustParseAddr("10.1.2.3")}, ToolsRunning: true}})
	_ = hv.SetGuestAccount(vm.ID, "Administrator", "Passw0rd!")

	addrs := memipam.New(nil)
	_ = addrs.CreatePool(ctx, ipam.Pool{Name: "public", Prefix: netip.MustParsePrefix("203.0.113.0/24")})
	orch, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{"vcenter-1": hv.Provider()},
		IPAM:      addrs,
		Firewall:  memfw.New(nil),
		CMDB:      memcmdb.New(nil),
		Store:     enroll.NewMemoryStore(nil),
		Policy:    enroll.Policy{Pool: "public", ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
	}, nil)
	if err != nil {
		panic(err)
	}
	res, err := orch.Enroll(ctx, enroll.Request{Provider: "vcenter-1", VMID: vm.ID,
		Credentials: guest.Password("Administrator", "Passw0rd!")})
	fmt.Println(res.State, res.PublicIP, res.Ports, err)
	// Output: enrolled 203.0.113.1 [tcp/5985 tcp/5986 tcp/3389] <nil>
}
