package cmdb_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
)

var allStates = []cmdb.State{cmdb.Available, cmdb.Enrolling, cmdb.Enrolled, cmdb.Failed, cmdb.Unenrolling, cmdb.Retired}

func TestStateValid(t *testing.T) {
	for _, s := range allStates {
		if !s.Valid() {
			t.Errorf("%q not valid", s)
		}
	}
	for _, s := range []cmdb.State{"", "Enrolled", "deleted", "enrolled "} {
		if s.Valid() {
			t.Errorf("%q valid", s)
		}
	}
}

func rec(prov, id, zone string, st cmdb.State) cmdb.Record {
	return cmdb.Record{Key: cmdb.Key{Provider: prov, VMID: id}, VM: provider.VM{ID: id, Zone: zone}, State: st}
}

func TestFilterMatch(t *testing.T) {
	enrolled := rec("vsphere", "a", "az1", cmdb.Enrolled)
	retired := rec("vsphere", "b", "az1", cmdb.Retired)
	cases := []struct {
		f         cmdb.Filter
		r         cmdb.Record
		want      bool
		rationale string
	}{
		{cmdb.Filter{}, enrolled, true, "zero filter matches"},
		{cmdb.Filter{}, retired, false, "retired left out by default"},
		{cmdb.Filter{IncludeRetired: true}, retired, true, "IncludeRetired"},
		{cmdb.Filter{States: []cmdb.State{cmdb.Retired}}, retired, true, "States naming Retired"},
		{cmdb.Filter{States: []cmdb.State{cmdb.Enrolled}}, retired, false, "States not naming Retired"},
		{cmdb.Filter{States: []cmdb.State{cmdb.Enrolled}, IncludeRetired: true}, retired, false, "States wins over IncludeRetired"},
		{cmdb.Filter{States: []cmdb.State{cmdb.Failed, cmdb.Enrolled}}, enrolled, true, "one of several states"},
		{cmdb.Filter{States: []cmdb.State{cmdb.Failed}}, enrolled, false, "other state"},
		{cmdb.Filter{Provider: "vsphere"}, enrolled, true, "provider"},
		{cmdb.Filter{Provider: "ovirt"}, enrolled, false, "other provider"},
		{cmdb.Filter{Provider: "vSphere"}, enrolled, false, "provider is case-sensitive"},
		{cmdb.Filter{Zone: "az1"}, enrolled, true, "zone"},
		{cmdb.Filter{Zone: "az2"}, enrolled, false, "other zone"},
		{cmdb.Filter{Provider: "vsphere", Zone: "az1", States: []cmdb.State{cmdb.Enrolled}}, enrolled, true, "all fields"},
		{cmdb.Filter{Provider: "vsphere", Zone: "az2", States: []cmdb.State{cmdb.Enrolled}}, enrolled, false, "all fields, one off"},
	}
	for _, c := range cases {
		if got := c.f.Match(c.r); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.rationale, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := rec("vsphere", "vm-1", "az1", cmdb.Available)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []cmdb.Record{
		rec("", "vm-1", "", cmdb.Available),
		rec("vsphere", "", "", cmdb.Available),
		rec("vsphere", "vm-1", "", ""),
		rec("vsphere", "vm-1", "", "gone"),
		func() cmdb.Record { r := good; r.Revision = -1; return r }(),
	}
	for _, r := range bad {
		if err := r.Validate(); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Validate(%+v) = %v, want InvalidArgument", r, err)
		}
	}
	if err := (cmdb.Key{Provider: "p"}).Validate(); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Key.Validate: %v", err)
	}
	if err := (cmdb.Key{Provider: "p", VMID: "v"}).Validate(); err != nil {
		t.Errorf("Key.Validate: %v", err)
	}
	if err := (cmdb.Filter{States: []cmdb.State{cmdb.Enrolled, "enroled"}}).Validate(); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("Filter.Validate: %v", err)
	}
	if err := (cmdb.Filter{States: allStates}).Validate(); err != nil {
		t.Errorf("Filter.Validate: %v", err)
	}
}

func TestKey(t *testing.T) {
	keys := []cmdb.Key{{"vsphere", "vm-2"}, {"ovirt", "b"}, {"vsphere", "vm-10"}, {"ovirt", "a"}}
	slices.SortFunc(keys, cmdb.Key.Compare)
	if fmt.Sprint(keys) != "[ovirt/a ovirt/b vsphere/vm-10 vsphere/vm-2]" {
		t.Fatalf("sorted %v", keys)
	}
	if (cmdb.Key{"a", "b"}).String() != "a/b" {
		t.Fatal("String")
	}
}

func TestClone(t *testing.T) {
	r := rec("vsphere", "vm-1", "az1", cmdb.Enrolled)
	r.VM.Attributes = map[string]string{"host": "esx-1"}
	r.VM.Guest.IPs = []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	r.Ports = []natfw.Port{{Protocol: natfw.TCP, Number: 22}}
	r.Attributes = map[string]string{"k": "v"}
	c := r.Clone()
	c.VM.Attributes["host"] = "x"
	c.VM.Guest.IPs[0] = netip.MustParseAddr("10.0.0.2")
	c.Ports[0].Number = 80
	c.Attributes["k"] = "x"
	if r.VM.Attributes["host"] != "esx-1" || r.VM.Guest.IPs[0].String() != "10.0.0.1" || r.Ports[0].Number != 22 || r.Attributes["k"] != "v" {
		t.Fatalf("Clone shares memory: %+v", r)
	}
	var empty cmdb.Record
	if e := empty.Clone(); e.Attributes != nil || e.Ports != nil {
		t.Fatalf("Clone of nil maps/slices: %+v", e)
	}
}

func TestErrConflict(t *testing.T) {
	err := errs.Errorf(errs.FailedPrecondition, "x.Upsert", "stale: %w", cmdb.ErrConflict)
	if !errors.Is(err, cmdb.ErrConflict) || errs.CodeOf(cmdb.ErrConflict) != errs.FailedPrecondition {
		t.Fatal(err)
	}
}

func ExampleFilter_Match() {
	f := cmdb.Filter{Provider: "vsphere", States: []cmdb.State{cmdb.Enrolled, cmdb.Failed}}
	fmt.Println(f.Match(rec("vsphere", "vm-1", "az1", cmdb.Enrolled)))
	fmt.Println(f.Match(rec("vsphere", "vm-2", "az1", cmdb.Available)))
	fmt.Println(cmdb.Filter{}.Match(rec("ovirt", "vm-3", "az2", cmdb.Retired)))
	// Output:
	// true
	// false
	// false
}
