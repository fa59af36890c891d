package hyperv

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
)

func watchDriver(t *testing.T, s *hypervsim.Sim) *Provider {
	t.Helper()
	opts := optionsFor(s, "az1")
	opts.PollInterval, opts.ResyncInterval = 5*time.Millisecond, 20*time.Millisecond
	d, err := newTestDriver(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func next(t *testing.T, st provider.DriverStream) provider.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := st.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

func TestWatchCreatedDeletedAndResume(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	addVM(t, s, hypervsim.VM{Name: "old", Owner: "HV1"})
	d := watchDriver(t, s)
	cur, err := d.Cursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := addVM(t, s, hypervsim.VM{Name: "new", Owner: "HV2", CPUs: 2, MemoryStartup: 2 << 30})
	ev := next(t, st)
	if ev.Type != provider.Created || ev.VMID != id || ev.VM.Name != "new" || ev.VM.CPUs != 2 || ev.VM.Attributes["node"] != "HV2" || ev.Time.IsZero() {
		t.Fatalf("first event %+v", ev)
	}
	created := ev.Cursor
	s.RemoveVM(id)
	ev = next(t, st)
	if ev.Type != provider.Deleted || ev.VMID != id {
		t.Fatalf("second event %+v", ev)
	}
	// A new process resumes after the Created: the Deleted comes again.
	d2 := watchDriver(t, s)
	st2, err := d2.Watch(ctx, created)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if ev := next(t, st2); ev.Type != provider.Deleted || ev.VMID != id {
		t.Fatalf("resumed event %+v", ev)
	}
}

// A VM created and deleted before the stream reads its records: no
// Created without a VM, only the Deleted, and the cursor covers both.
func TestWatchCreatedThenGone(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	d := watchDriver(t, s)
	cur, _ := d.Cursor(ctx)
	id := addVM(t, s, hypervsim.VM{Name: "brief", Owner: "HV1"})
	s.RemoveVM(id)
	st, err := d.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev := next(t, st)
	if ev.Type != provider.Deleted || ev.VMID != id {
		t.Fatalf("event %+v", ev)
	}
	cs, _ := d.decodeCursor(ev.Cursor)
	if cs.N["HV1"] != 2 {
		t.Errorf("cursor %v", cs.N)
	}
}

// A live migration (or failover) is Changed, with the new node.
func TestWatchMoveIsChanged(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	id := addVM(t, s, hypervsim.VM{Name: "mover", Owner: "HV1", State: "Running", Clustered: true})
	d := watchDriver(t, s)
	cur, _ := d.Cursor(ctx)
	st, err := d.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := s.Move(id, "HV3"); err != nil {
		t.Fatal(err)
	}
	ev := next(t, st)
	if ev.Type != provider.Changed || ev.VMID != id || ev.VM.Attributes["node"] != "HV3" || ev.Cursor == "" {
		t.Fatalf("event %+v", ev)
	}
	if err := s.SetState(id, "Off"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, st); ev.Type != provider.Changed || ev.VM.Power != provider.PoweredOff {
		t.Fatalf("power event %+v", ev)
	}
}

func TestWatchRolloverExpires(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	d := watchDriver(t, s)
	cur, _ := d.Cursor(ctx)
	for i := range 5 {
		addVM(t, s, hypervsim.VM{Name: "vm" + string(rune('a'+i)), Owner: "HV2"})
	}
	s.TrimLog("HV2", 2)
	st, err := d.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Next(ctx)
	if !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("Next after a rollover: %v", err)
	}
	_, err = d.Watch(ctx, "garbage")
	if !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("Watch of a foreign cursor: %v", err)
	}
}

func TestWatchCloseAndCancel(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	d := watchDriver(t, s)
	cur, _ := d.Cursor(ctx)
	st, err := d.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = st.Next(cctx)
	cancel()
	testkit.WantCode(t, "Next past its deadline", err, errs.DeadlineExceeded)
	done := make(chan error, 1)
	go func() { _, err := st.Next(ctx); done <- err }()
	time.Sleep(30 * time.Millisecond)
	st.Close()
	select {
	case err := <-done:
		if !errors.Is(err, provider.ErrStreamClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
}

// Records of different nodes come in time order, not node order.
func TestWatchMergesNodesInTimeOrder(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	d := watchDriver(t, s)
	cur, _ := d.Cursor(ctx)
	first := addVM(t, s, hypervsim.VM{Name: "on-hv3", Owner: "HV3"})
	time.Sleep(2 * time.Millisecond)
	second := addVM(t, s, hypervsim.VM{Name: "on-hv1", Owner: "HV1"})
	st, err := d.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, b := next(t, st), next(t, st)
	if a.VMID != first || b.VMID != second {
		t.Fatalf("order %s %s, want %s (HV3, earlier) first", a.VM.Name, b.VM.Name, first)
	}
	cs, _ := d.decodeCursor(a.Cursor)
	if cs.N["HV3"] != 1 || cs.N["HV1"] != 0 {
		t.Errorf("the first event's cursor covers %v, want HV3 only", cs.N)
	}
}

// Power changes come from each node's Worker-Admin records, so a stream
// resumed from a cursor replays them; a rollover of that log expires the
// cursor too.
func TestWatchPowerRecordsResumeAndExpire(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	d := watchDriver(t, s)
	id := addVM(t, s, hypervsim.VM{Name: "p", Owner: "HV1"})
	cur, err := d.Cursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"Running", "Off", "Running"} {
		if err := s.SetState(id, st); err != nil {
			t.Fatal(err)
		}
	}
	st, err := d.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, want := range []provider.PowerState{provider.PoweredOn, provider.PoweredOff, provider.PoweredOn} {
		if ev := next(t, st); ev.Type != provider.Changed || ev.VMID != id || ev.VM.Power != want {
			t.Fatalf("event %d: %+v, want Changed %s", i, ev, want)
		}
	}
	_ = s.SetState(id, "Off")
	s.TrimWorkerLog("HV1", 1)
	st2, err := d.Watch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if _, err := st2.Next(ctx); !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("Next after a Worker-Admin rollover: %v", err)
	}
}
