package vsphere

import (
	"testing"

	"github.com/vmware/govmomi/vim25/types"
)

// TestGone: vCenter reports an object that no longer exists in the
// missing set of its ObjectContent (the simulator leaves it out instead);
// such an object is not a VM to list, while a missing property is not a
// missing object.
func TestGone(t *testing.T) {
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
