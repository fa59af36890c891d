package vcsim_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/internal/fakes/vcsim"
)

// TestCancelTaskIsARequest: CancelTask on a running task records the
// request and leaves the task to end as it will (here in success, with
// its VM); on an ended task it is InvalidState.
func TestCancelTaskIsARequest(t *testing.T) {
	ctx := context.Background()
	sim, err := vcsim.New(ctx, &vcsim.Options{ModelVMs: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	u := *sim.URL
	u.User = url.UserPassword(sim.Username, sim.Password)
	c, err := govmomi.NewClient(ctx, &u, true)
	if err != nil {
		t.Fatal(err)
	}
	f := find.NewFinder(c.Client, true)
	dc, err := f.DefaultDatacenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	pool, err := f.ResourcePool(ctx, "/DC0/host/DC0_C0/Resources")
	if err != nil {
		t.Fatal(err)
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release, err := sim.HoldLock(pool.Reference()) // the new VM cannot join its pool yet
	if err != nil {
		t.Fatal(err)
	}
	task, err := folders.VmFolder.CreateVM(ctx, types.VirtualMachineConfigSpec{
		Name: "slow", GuestId: "otherGuest", Files: &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
	}, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Cancel(ctx); err != nil {
		t.Fatalf("CancelTask of a running task: %v", err)
	}
	var info mo.Task
	if err := property.DefaultCollector(c.Client).RetrieveOne(ctx, task.Reference(), []string{"info"}, &info); err != nil {
		t.Fatal(err)
	}
	if !info.Info.Cancelled || info.Info.State == types.TaskInfoStateError || info.Info.State == types.TaskInfoStateSuccess {
		t.Fatalf("after CancelTask: cancelled %v, state %s; want cancelled and still running", info.Info.Cancelled, info.Info.State)
	}
	time.AfterFunc(100*time.Millisecond, release)
	res, err := task.WaitForResult(ctx)
	if err != nil {
		t.Fatalf("the task after a late cancel: %v, want success", err)
	}
	if _, ok := res.Result.(types.ManagedObjectReference); !ok {
		t.Fatalf("result %v, want the VM", res.Result)
	}
	if err := task.Cancel(ctx); err == nil {
		t.Fatal("CancelTask of an ended task succeeded")
	}
}
