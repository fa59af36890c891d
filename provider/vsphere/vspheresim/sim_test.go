package vspheresim_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// TestCancelTaskIsARequest: CancelTask on a running task records the
// request and leaves the task to end as it will (here in success, with
// its VM); on an ended task it is InvalidState.
func TestCancelTaskIsARequest(t *testing.T) {
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1})
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

// TestWatchBesideCreation: VMs created and powered on while a client waits
// for updates on a container view of them. The stock simulator can
// deadlock here (its property filter and the view take each other's locks
// in opposite orders, govmomi #4109); the Sim must not.
//
// It runs only with MANAGEDVM_VCSIM_STRESS=1 (go test -race -count=10
// -run TestWatchBesideCreation ./provider/vsphere/vspheresim/): on a loaded
// machine this much concurrency also trips the simulator's own unlocked
// property writes, which the race detector reports.
func TestWatchBesideCreation(t *testing.T) {
	if os.Getenv("MANAGEDVM_VCSIM_STRESS") != "1" {
		t.Skip("set MANAGEDVM_VCSIM_STRESS=1 to run this stress test")
	}
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1})
	if err != nil {
		t.Fatal(err)
	}
	u := *sim.URL
	u.User = url.UserPassword(sim.Username, sim.Password)
	c, err := govmomi.NewClient(ctx, &u, true)
	if err != nil {
		t.Fatal(err)
	}
	v, err := view.NewManager(c.Client).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	pc := property.DefaultCollector(c.Client)
	filter := new(property.WaitFilter)
	// A property the simulator never changes after creation: others are
	// written without the VM's lock by the simulator's own tasks (a race
	// of its own, not the one tested here).
	filter.Add(v.Reference(), "VirtualMachine", []string{"config.guestId"}, v.TraversalSpec())
	var stop atomic.Bool
	watched := make(chan error, 1)
	go func() {
		watched <- property.WaitForUpdatesEx(ctx, pc, filter, func([]types.ObjectUpdate) bool { return stop.Load() })
	}()

	const rounds, perRound = 8, 8
	done := make(chan error, 1)
	go func() {
		for i := range rounds {
			if _, err := sim.CreateVMs(ctx, perRound, fmt.Sprintf("r%d", i), vspheresim.Placement{}, nil); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		// The simulator is stuck; closing it would hang too.
		t.Fatalf("%d VMs not created within 2 minutes beside a waiting property collector: the simulator deadlocked", rounds*perRound)
	}
	// The watch ends on the next update rather than by cancellation,
	// which races in the simulator with a wait in progress.
	stop.Store(true)
	if _, err := sim.CreateVMs(ctx, 1, "last", vspheresim.Placement{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-watched; err != nil {
		t.Fatal(err)
	}
	sim.Close()
}

// TestNewInParallel: Sims may be built from parallel tests (govmomi's
// simulator writes package state while it builds a model; under -race
// this fails if New does not build one model at a time).
func TestNewInParallel(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			sim, err := vspheresim.New(context.Background(), &vspheresim.Options{ModelVMs: -1})
			if err != nil {
				t.Fatal(err)
			}
			_ = sim.Close()
		})
	}
}
