package enroll_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *world) state(i int) cmdb.State {
	rec, err := w.db.Get(context.Background(), w.key(i))
	if err != nil {
		return ""
	}
	return rec.State
}

// runIndexer starts an Indexer; the returned func stops it and waits.
func runIndexer(t *testing.T, o *enroll.Orchestrator) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Indexer(&enroll.IndexerOptions{RetryInterval: 5 * time.Millisecond}).Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("indexer: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("indexer did not stop")
		}
	}
}

func (w *world) syncs() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.events {
		if e.Kind == enroll.IndexerSync {
			n++
		}
	}
	return n
}

func TestIndexerSyncWatchAndCleanup(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 3})
	ctx := context.Background()
	// A template is never recorded.
	if _, err := w.hv.AddTemplate(provider.Template{Name: "tmpl", Zone: zoneName, Family: guest.Linux}); err != nil {
		t.Fatal(err)
	}
	o := w.orchestrator("i1", nil)
	stop := runIndexer(t, o)
	waitFor(t, "initial sync", func() bool { return w.state(0) == cmdb.Available && w.state(2) == cmdb.Available })
	recs, _ := w.db.List(ctx, cmdb.Filter{})
	if len(recs) != 3 {
		t.Fatalf("%d records after sync, want 3", len(recs))
	}
	if _, err := o.Enroll(ctx, w.request(0, "")); err != nil {
		t.Fatal(err)
	}
	// Created.
	w.addVM("late", netip.MustParseAddr("10.9.9.9"), 0)
	waitFor(t, "new VM recorded", func() bool { return w.state(3) == cmdb.Available })
	// Changed: facts follow, the enrollment state stays.
	if _, err := w.hv.UpdateVM(w.vms[0].ID, func(vm *provider.VM) { vm.Name = "renamed" }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rename recorded", func() bool {
		rec, _ := w.db.Get(ctx, w.key(0))
		return rec.VM.Name == "renamed" && rec.State == cmdb.Enrolled
	})
	// IP change of an enrolled VM moves the NAT relation.
	newIP := netip.MustParseAddr("10.8.8.8")
	if _, err := w.hv.UpdateVM(w.vms[0].ID, func(vm *provider.VM) { vm.Guest.IPs = []netip.Addr{newIP} }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "NAT moved to the new local IP", func() bool {
		rule, err := w.fw.Get(ctx, w.key(0).String())
		a, aerr := w.ipam.Lookup(ctx, poolName, w.key(0).String())
		return err == nil && aerr == nil && rule.Local == newIP && a.LocalIP == newIP
	})
	// Deleted: an enrolled VM is cleaned up and retired; an available one
	// retired.
	if err := w.hv.RemoveVM(w.vms[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := w.hv.RemoveVM(w.vms[1].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deleted VMs retired", func() bool { return w.state(0) == cmdb.Retired && w.state(1) == cmdb.Retired })
	stop()
	w.mu.Lock()
	delete(w.configured, w.vms[0].ID) // the guest is gone with its VM
	w.mu.Unlock()
	w.checkInvariants(t)
}

func TestIndexerResumesFromStoredCursor(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 2})
	ctx := context.Background()
	o := w.orchestrator("i1", nil)
	stop := runIndexer(t, o)
	waitFor(t, "initial sync", func() bool { return w.state(1) == cmdb.Available })
	if _, err := o.Enroll(ctx, w.request(0, "")); err != nil {
		t.Fatal(err)
	}
	stop()
	syncs := w.syncs()
	// Missed while down: a new VM, a deletion of the enrolled VM.
	w.addVM("while-down", netip.MustParseAddr("10.7.7.7"), 0)
	if err := w.hv.RemoveVM(w.vms[0].ID); err != nil {
		t.Fatal(err)
	}
	stop = runIndexer(t, w.orchestrator("i1-restarted", nil))
	waitFor(t, "missed events applied", func() bool { return w.state(2) == cmdb.Available && w.state(0) == cmdb.Retired })
	stop()
	if w.syncs() != syncs {
		t.Fatalf("the restart listed everything again (%d syncs, was %d): the cursor was not used", w.syncs(), syncs)
	}
	w.mu.Lock()
	delete(w.configured, w.vms[0].ID)
	w.mu.Unlock()
	w.checkInvariants(t)
}

func TestIndexerExpiredCursorResyncs(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 2})
	// A provider with a short history.
	w.hv = memprovider.New(&memprovider.Options{GuestHandler: w.guestOS, HistorySize: 3})
	w.prov = w.hv
	w.vms = nil
	if err := w.hv.AddZone(provider.Zone{Name: zoneName}); err != nil {
		t.Fatal(err)
	}
	w.addVM("a", netip.MustParseAddr("10.0.0.1"), 0)
	w.addVM("b", netip.MustParseAddr("10.0.0.2"), 1)
	ctx := context.Background()
	o := w.orchestrator("i1", nil)
	stop := runIndexer(t, o)
	waitFor(t, "initial sync", func() bool { return w.state(1) == cmdb.Available })
	if _, err := o.Enroll(ctx, w.request(0, "")); err != nil {
		t.Fatal(err)
	}
	stop()
	syncs := w.syncs()
	if err := w.hv.RemoveVM(w.vms[0].ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ { // push the deletion out of the history
		if _, err := w.hv.UpdateVM(w.vms[1].ID, func(vm *provider.VM) { vm.CPUs++ }); err != nil {
			t.Fatal(err)
		}
	}
	stop = runIndexer(t, w.orchestrator("i2", nil))
	waitFor(t, "resync found the deletion", func() bool { return w.state(0) == cmdb.Retired })
	stop()
	if w.syncs() <= syncs {
		t.Fatal("no full resync after the cursor expired")
	}
	w.mu.Lock()
	delete(w.configured, w.vms[0].ID)
	w.mu.Unlock()
	w.checkInvariants(t)
}

// scripted wraps a provider with a Watch that replays a fixed stream.
type scripted struct {
	provider.Driver
	events []provider.Event
}

type scriptedStream struct {
	mu     sync.Mutex
	events []provider.Event
}

func (s scripted) Watch(ctx context.Context, c provider.Cursor) (provider.DriverStream, error) {
	return &scriptedStream{events: s.events}, nil
}

func (s *scriptedStream) Next(ctx context.Context) (provider.Event, error) {
	s.mu.Lock()
	if len(s.events) > 0 {
		e := s.events[0]
		s.events = s.events[1:]
		s.mu.Unlock()
		return e, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return provider.Event{}, errs.FromContext(ctx, "scripted")
}

func (s *scriptedStream) Close() error { return nil }

func TestIndexerDuplicateAndOutOfOrderEvents(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 2})
	ctx := context.Background()
	alive, gone := w.vms[0], w.vms[1]
	if err := w.hv.RemoveVM(gone.ID); err != nil {
		t.Fatal(err)
	}
	renamed := alive.Clone()
	renamed.Name = "v2"
	w.prov = scripted{Driver: w.hv, events: []provider.Event{
		{Type: provider.Created, VMID: alive.ID, VM: alive, Cursor: "c1"},
		{Type: provider.Created, VMID: alive.ID, VM: alive, Cursor: "c1"},   // duplicate
		{Type: provider.Deleted, VMID: alive.ID, Cursor: "c2"},              // stale: the VM exists
		{Type: provider.Changed, VMID: alive.ID, VM: renamed, Cursor: "c3"}, // newer facts
		{Type: provider.Created, VMID: gone.ID, VM: gone, Cursor: "c4"},
		{Type: provider.Deleted, VMID: gone.ID, Cursor: "c5"},
		{Type: provider.Changed, VMID: gone.ID, VM: gone, Cursor: "c6"}, // late, after its deletion
	}}
	o := w.orchestrator("i1", nil)
	if err := w.store.SetCursor(ctx, provName, "c0"); err != nil { // skip the initial sync
		t.Fatal(err)
	}
	stop := runIndexer(t, o)
	waitFor(t, "stream applied", func() bool {
		c, _ := w.store.Cursor(ctx, provName)
		return c == "c6"
	})
	stop()
	rec, _ := w.db.Get(ctx, w.key(0))
	if rec.State != cmdb.Available || rec.VM.Name != "v2" {
		t.Fatalf("live VM record: %s %q", rec.State, rec.VM.Name)
	}
	if st := w.state(1); st != cmdb.Retired {
		t.Fatalf("deleted VM's record is %s after a late event, want retired", st)
	}
}

func TestIndexerManyProviders(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 2})
	other := memprovider.New(nil)
	if err := other.AddZone(provider.Zone{Name: zoneName}); err != nil {
		t.Fatal(err)
	}
	vm, err := other.AddVM(provider.VM{Name: "x", Zone: zoneName, Power: provider.PoweredOn})
	if err != nil {
		t.Fatal(err)
	}
	o := w.orchestrator("i1", func(c *enroll.Config, _ *enroll.Options) {
		c.Providers["vc2"] = other.Provider()
	})
	stop := runIndexer(t, o)
	waitFor(t, "both providers indexed", func() bool {
		rec, err := w.db.Get(context.Background(), cmdb.Key{Provider: "vc2", VMID: vm.ID})
		return err == nil && rec.State == cmdb.Available && w.state(1) == cmdb.Available
	})
	stop()
}

// TestIndexerSkipsRefusedFacts: a VM whose facts the CMDB refuses (an
// annotation beyond its limits) is reported and skipped; the events after
// it are still indexed.
func TestIndexerSkipsRefusedFacts(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 1})
	o := w.orchestrator("i1", nil)
	stop := runIndexer(t, o)
	defer stop()
	waitFor(t, "initial sync", func() bool { return w.state(0) == cmdb.Available })
	if _, err := w.hv.UpdateVM(w.vms[0].ID, func(vm *provider.VM) { vm.Annotation = strings.Repeat("a", 5000) }); err != nil {
		t.Fatal(err)
	}
	w.addVM("after", netip.MustParseAddr("10.9.9.9"), 0)
	waitFor(t, "the VM after it indexed", func() bool { return w.state(1) == cmdb.Available })
	if rec, err := w.db.Get(context.Background(), w.key(0)); err != nil || rec.VM.Annotation != "" {
		t.Fatalf("the refused facts: %v, annotation of %d bytes", err, len(rec.VM.Annotation))
	}
	found := false
	w.mu.Lock()
	for _, e := range w.events {
		if e.Kind == enroll.IndexerError && e.VM == w.key(0) && e.Code == errs.InvalidArgument {
			found = true
		}
	}
	w.mu.Unlock()
	if !found {
		t.Fatal("no IndexerError event for the refused VM")
	}
}
