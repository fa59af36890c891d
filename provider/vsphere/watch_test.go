package vsphere_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes/vcsim"
	"github.com/managedvm/managedvm/provider"
)

// TestWatchDeletionBesideCreation: a VM deleted while others are created
// (the simulator then loses the PropertyCollector "leave") is still
// reported Deleted, from vCenter's VmRemovedEvent.
func TestWatchDeletionBesideCreation(t *testing.T) {
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refs, err := w.sim.CreateNamedVMs(ctx, []string{"doomed"}, vcsim.Placement{Datacenter: "DC0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	doomed := w.sim.UUID(refs[0])
	st, err := w.p.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Deleted and created back to back, so the "leave" falls in the batch
	// of re-sent "enter" updates. (Not concurrently: the simulator races
	// with itself when a create and a destroy overlap.)
	if err := w.sim.Delete(ctx, doomed); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sim.CreateNamedVMs(ctx, []string{"new-1", "new-2", "new-3"}, vcsim.Placement{Datacenter: "DC0"}, nil); err != nil {
		t.Fatal(err)
	}
	created := map[string]bool{}
	deleted := false
	for !deleted || len(created) < 3 {
		ev, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("Next (deleted=%v, created=%v): %v", deleted, created, err)
		}
		switch {
		case ev.Type == provider.Deleted && ev.VMID == doomed:
			deleted = true
		case ev.Type == provider.Created:
			created[ev.VM.Name] = true
		}
	}
	if _, err := w.p.Get(ctx, doomed); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("Get of the deleted VM: %v", err)
	}
}

// TestWatchResumeAfterRestart: a new provider (a restarted host) resumes
// from a stored cursor and replays the later events, a deleted VM
// included.
func TestWatchResumeAfterRestart(t *testing.T) {
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cur, err := w.p.Cursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := w.p.Provision(ctx, provider.ProvisionSpec{Key: "k-restart", Name: "restart-1", Template: "debian-12", Zone: "DC0", PowerOn: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.p.Destroy(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	// A second driver instance: nothing cached about the VM.
	p2 := newDriver(t, w.sim)
	st, err := p2.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []provider.EventType
	for len(got) == 0 || got[len(got)-1] != provider.Deleted {
		ev, err := st.Next(ctx)
		if errors.Is(err, provider.ErrCursorExpired) {
			t.Fatalf("resume after restart: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.VMID == vm.ID {
			got = append(got, ev.Type)
		}
	}
	if got[0] != provider.Created {
		t.Fatalf("events after restart %v, want Created first", got)
	}
}
