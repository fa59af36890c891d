package vsphere

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// TestGone: vCenter reports an object that no longer exists in the
// missing set of its ObjectContent (the simulator leaves it out instead);
// such an object is not a VM to list, while a missing property is not a
// missing object.
func TestGone(t *testing.T) {
	t.Parallel()
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-42"}
	missingObj := types.ObjectContent{Obj: ref, MissingSet: []types.MissingProperty{{
		Path: "name", Fault: types.LocalizedMethodFault{Fault: &types.ManagedObjectNotFound{Obj: ref}},
	}}}
	missingProp := types.ObjectContent{Obj: ref, MissingSet: []types.MissingProperty{{
		Path: "guest.net", Fault: types.LocalizedMethodFault{Fault: &types.InvalidProperty{Name: "guest.net"}},
	}}}
	if !gone(missingObj) {
		t.Error("an object reported ManagedObjectNotFound is not gone")
	}
	if gone(missingProp) || gone(types.ObjectContent{Obj: ref}) {
		t.Error("an object with a missing property, or none, is gone")
	}
}

// TestFactsFromPropsMatchMO: the facts List and Watch take straight from
// retrieved properties are those Get takes from a loaded
// mo.VirtualMachine, for running VMs with tools and IPs, a template and
// powered-off VMs, and a guest with several NICs.
func TestFactsFromPropsMatchMO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{Datacenters: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if _, err := sim.CreateVMs(ctx, 3, "run", vspheresim.Placement{Datacenter: "DC1"}, &vspheresim.GuestState{
		ToolsRunning: true, IP: "192.0.2.7", Hostname: "h1", Family: "windowsGuest", FullName: "Windows Server 2022",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.CreateTemplate(ctx, "tpl", vspheresim.Placement{}, &vspheresim.GuestState{Family: "linuxGuest"}); err != nil {
		t.Fatal(err)
	}
	p, err := newDriver(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &Options{RootCAs: sim.CAs})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	topo, err := p.topology(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var refs []types.ManagedObjectReference
	for _, o := range sim.Map().All("VirtualMachine") {
		refs = append(refs, o.Reference())
	}
	objs, err := p.retrieveObjects(ctx, refs, vmProps)
	if err != nil || len(objs) != len(refs) {
		t.Fatalf("retrieveObjects: %d of %d, %v", len(objs), len(refs), err)
	}
	for _, o := range objs {
		var m mo.VirtualMachine
		if err := mo.LoadObjectContent([]types.ObjectContent{o}, &m); err != nil {
			t.Fatal(err)
		}
		a, b := factsOf(&m), factsFrom(o.Obj, o.PropSet)
		if va, vb := topo.toVM(&a), topo.toVM(&b); !reflect.DeepEqual(va, vb) {
			t.Errorf("%s:\nfrom mo    %+v\nfrom props %+v", o.Obj, va, vb)
		}
	}
	// Several NICs, each with addresses, one repeating the primary one.
	net := types.ArrayOfGuestNicInfo{GuestNicInfo: []types.GuestNicInfo{
		{IpAddress: []string{"192.0.2.7", "fe80::1"}}, {IpAddress: []string{"198.51.100.9"}},
	}}
	props := []types.DynamicProperty{{Name: "config.instanceUuid", Val: "u"}, {Name: "guest.ipAddress", Val: "192.0.2.7"}, {Name: "guest.net", Val: net}}
	f := factsFrom(refs[0], props)
	vm := topo.toVM(&f)
	want := []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("198.51.100.9")}
	if !slices.Equal(vm.Guest.IPs, want) {
		t.Errorf("IPs %v, want %v", vm.Guest.IPs, want)
	}
}

// factsOf takes the facts from an mo.VirtualMachine loaded with vmProps
// by govmomi's reflection: the reference factsFrom is checked against.
func factsOf(m *mo.VirtualMachine) vmFacts {
	f := vmFacts{ref: m.Self, name: m.Name, power: m.Runtime.PowerState, host: m.Runtime.Host}
	if c := m.Config; c != nil {
		f.annotation = c.Annotation
	}
	if c := m.Summary.Config; c.InstanceUuid != "" {
		f.hasConfig = true
		f.uuid, f.template, f.guestID = c.InstanceUuid, c.Template, c.GuestId
		f.cpus, f.memoryMB = c.NumCpu, c.MemorySizeMB
	}
	if g := m.Summary.Guest; g != nil {
		f.fullName, f.hostName, f.ipAddress = g.GuestFullName, g.HostName, g.IpAddress
		f.toolsRunning, f.toolsVersion2 = g.ToolsRunningStatus, g.ToolsVersionStatus2
	}
	if g := m.Guest; g != nil {
		f.family, f.net = g.GuestFamily, g.Net
	}
	return f
}
