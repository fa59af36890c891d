package vsphere_test

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// TestWatchDeletionBesideCreation: a VM deleted while others are created
// (the simulator then loses the PropertyCollector "leave") is still
// reported Deleted, from vCenter's VmRemovedEvent.
func TestWatchDeletionBesideCreation(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refs, err := w.sim.CreateNamedVMs(ctx, []string{"doomed"}, vspheresim.Placement{Datacenter: "DC0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	doomed := w.sim.UUID(refs[0])
	st, err := w.pp.Watch(ctx, "")
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
	if _, err := w.sim.CreateNamedVMs(ctx, []string{"new-1", "new-2", "new-3"}, vspheresim.Placement{Datacenter: "DC0"}, nil); err != nil {
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
	if _, err := w.pp.Get(ctx, doomed); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("Get of the deleted VM: %v", err)
	}
}

// TestWatchResumeAfterRestart: a new provider (a restarted host) resumes
// from a stored cursor and replays the later events, a deleted VM
// included.
func TestWatchResumeAfterRestart(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cur, err := w.pp.Cursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := w.pp.Provision(ctx, provider.ProvisionSpec{Key: "k-restart", Name: "restart-1", Template: "debian-12", Zone: "DC0", PowerOn: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.pp.Destroy(ctx, vm.ID); err != nil {
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

// TestWatchUntouchedInventory: Cursor, List, then Watch(cursor) on a
// simulator with 2,000 running VMs that nobody touches. Every event the
// stream sends must carry the whole VM as Get returns it at that moment
// (a partial update decoded alone once gave running VMs power ""), and an
// untouched inventory has nothing to report: the only event expected is
// the one of the marker change that ends the test (a guest IP, which
// comes through the PropertyCollector after any update pending before it).
func TestWatchUntouchedInventory(t *testing.T) {
	t.Parallel() // it mostly waits: a quiet spell, then the grace for deletions
	const n = 2000
	sim, p := bigWorld(t, n, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cur, err := p.Cursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vms, err := p.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != n {
		t.Fatalf("List: %d VMs, want %d", len(vms), n)
	}
	st, err := p.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	marker := vms[len(vms)/2]
	ip := netip.MustParseAddr("198.18.7.7")
	// Quiet for longer than the stream's grace for updates without their
	// vCenter event, then the marker.
	go func() {
		select {
		case <-time.After(3 * time.Second):
		case <-ctx.Done():
			return
		}
		ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: marker.Attributes["moref"]}
		if err := sim.SetGuest(ref, vspheresim.GuestState{ToolsRunning: true, IP: ip.String(), Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)", Hostname: marker.Guest.Hostname}); err != nil {
			t.Error(err)
		}
	}()
	var wrong, spurious int
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			t.Fatalf("Next (after %d wrong and %d spurious events): %v", wrong, spurious, err)
		}
		got, err := p.Get(ctx, ev.VMID)
		if err != nil {
			t.Fatalf("Get(%s) after its %v event: %v", ev.VMID, ev.Type, err)
		}
		if !reflect.DeepEqual(ev.VM, got) {
			if wrong++; wrong <= 3 {
				t.Errorf("%v event of %s carries\n%+v\nGet returns\n%+v", ev.Type, ev.VMID, ev.VM, got)
			}
		}
		if ev.VMID == marker.ID && slices.Contains(ev.VM.Guest.IPs, ip) {
			break
		}
		spurious++
	}
	if wrong > 0 || spurious > 0 {
		t.Fatalf("untouched inventory of %d VMs: %d events differ from Get, %d events about VMs nobody changed", n, wrong, spurious)
	}

	// A deletion reaches the stream within 2 s: its event does not wait
	// behind the PropertyCollector, which the simulator keeps busy for
	// seconds re-reading 2,000 VMs for each change a destroy makes.
	doomed := vms[0]
	if err := p.PowerOff(ctx, doomed.ID); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.VMID == doomed.ID && ev.VM.Power == provider.PoweredOff {
			break
		}
	}
	start := time.Now()
	if err := sim.Delete(ctx, doomed.ID); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.VMID == doomed.ID && ev.Type == provider.Deleted {
			break
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a deletion among %d VMs reached the stream after %v, want under 2 s", n, d)
	} else {
		t.Logf("a deletion among %d VMs reached the stream %v after the destroy request", n, d.Round(time.Millisecond))
	}
}
