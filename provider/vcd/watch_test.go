package vcd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	fakevcd "github.com/managedvm/managedvm/internal/fakes/vcd"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vcd"
)

// countEvents watches from now while add runs and counts the events
// about the VM add returns within d.
func countEvents(t *testing.T, w *world, add func() string, d time.Duration) map[provider.EventType]int {
	t.Helper()
	st, err := w.pp.Watch(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Let the first resync record the inventory before the change.
	time.Sleep(60 * time.Millisecond)
	id := add()
	got := map[provider.EventType]int{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		ev, err := st.Next(ctx)
		if errs.Is(err, errs.DeadlineExceeded) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.VMID == id {
			got[ev.Type]++
		}
	}
}

func TestWatchResyncReports(t *testing.T) {
	add := func(w *world) func() string {
		return func() string {
			info, err := w.s.AddVM(fakevcd.VMSpec{Name: "late"})
			if err != nil {
				t.Fatal(err)
			}
			return "vm-" + info.ID[len("urn:vcloud:vm:"):]
		}
	}
	w := newWorld(t, nil, &vcd.Options{ResyncInterval: -1})
	if got := countEvents(t, w, add(w), 300*time.Millisecond); got[provider.Created] != 1 {
		t.Fatalf("without resync: %v, want one Created from the audit trail", got)
	}
	w = newWorld(t, nil, &vcd.Options{ResyncInterval: 30 * time.Millisecond})
	if got := countEvents(t, w, add(w), 300*time.Millisecond); got[provider.Created] != 2 {
		t.Fatalf("with resync: %v, want Created from the audit trail and from the resync", got)
	}
}

func TestWatchTiesInOneMillisecond(t *testing.T) {
	w := newWorld(t, nil, nil)
	cur, err := w.pp.Cursor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Many audit events, several sharing a millisecond.
	want := map[string]bool{}
	for i := range 40 {
		info, err := w.s.AddVM(fakevcd.VMSpec{Name: fmt.Sprintf("tie-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		want["vm-"+info.ID[len("urn:vcloud:vm:"):]] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Resume after every event from its cursor: each event comes once.
	seen := map[string]int{}
	for len(seen) < len(want) {
		st, err := w.pp.Watch(ctx, cur)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := st.Next(ctx)
		_ = st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == provider.Created && want[ev.VMID] {
			seen[ev.VMID]++
			if seen[ev.VMID] > 1 {
				t.Fatalf("%s delivered twice across resumptions", ev.VMID)
			}
		}
		cur = ev.Cursor
	}
	_, err = w.pp.Watch(ctx, "vcd1:12:zz")
	testkit.MustCode(t, "bad tie hash", err, errs.FailedPrecondition)
}

// TestWatchCursorPastRetention: a cursor whose events VCD purged from the
// audit trail (past its retention) is ErrCursorExpired, since events
// after it may be gone too; a cursor still in the trail resumes.
func TestWatchCursorPastRetention(t *testing.T) {
	w := newWorld(t, &fakevcd.Options{AuditRetention: 300 * time.Millisecond}, nil)
	ctx := context.Background()
	if _, err := w.s.AddVM(fakevcd.VMSpec{Name: "old"}); err != nil {
		t.Fatal(err)
	}
	oldCur, err := w.pp.Cursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The cursor is still held: Watch resumes and sees a newer VM.
	if _, err := w.s.AddVM(fakevcd.VMSpec{Name: "newer"}); err != nil {
		t.Fatal(err)
	}
	st, err := w.pp.Watch(ctx, oldCur)
	if err != nil {
		t.Fatalf("Watch(held cursor): %v", err)
	}
	nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	ev, err := st.Next(nctx)
	cancel()
	_ = st.Close()
	if err != nil || ev.VM.Name != "newer" {
		t.Fatalf("resumed stream: %+v %v", ev, err)
	}

	time.Sleep(400 * time.Millisecond) // both VMs' events are purged
	if _, err := w.s.AddVM(fakevcd.VMSpec{Name: "latest"}); err != nil {
		t.Fatal(err)
	}
	_, err = w.pp.Watch(ctx, oldCur)
	if !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("Watch(purged cursor) = %v, want ErrCursorExpired", err)
	}
	testkit.MustCode(t, "Watch(purged cursor)", err, errs.FailedPrecondition)
}

// TestWatchStreamPastRetention: a stream left unread longer than the
// retention, whose events after its position were purged unread, ends
// with ErrCursorExpired; a stream read all along does not, though its
// position's own events were purged.
func TestWatchStreamPastRetention(t *testing.T) {
	w := newWorld(t, &fakevcd.Options{AuditRetention: 200 * time.Millisecond}, &vcd.Options{AuditRetention: 150 * time.Millisecond})
	ctx := context.Background()
	next := func(st *provider.Stream) (provider.Event, error) {
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return st.Next(nctx)
	}
	live, err := w.pp.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	idle, err := w.pp.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := w.s.AddVM(fakevcd.VMSpec{Name: "first"}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*provider.Stream{live, idle} {
		if ev, err := next(st); err != nil || ev.VM.Name != "first" {
			t.Fatalf("first event: %+v %v", ev, err)
		}
	}
	// idle is not read while "missed" is made and purged; live keeps
	// polling (its Next waits with a short deadline).
	time.Sleep(20 * time.Millisecond)
	if _, err := w.s.AddVM(fakevcd.VMSpec{Name: "missed"}); err != nil {
		t.Fatal(err)
	}
	if ev, err := next(live); err != nil || ev.VM.Name != "missed" {
		t.Fatalf("live stream: %+v %v", ev, err)
	}
	deadline := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		_, err := live.Next(pctx)
		cancel()
		if !errs.Is(err, errs.DeadlineExceeded) {
			t.Fatalf("live stream while idle: %v", err)
		}
	}
	if _, err := w.s.AddVM(fakevcd.VMSpec{Name: "last"}); err != nil {
		t.Fatal(err)
	}
	if ev, err := next(live); err != nil || ev.VM.Name != "last" {
		t.Fatalf("live stream after the purge: %+v %v", ev, err)
	}
	_, err = next(idle)
	if !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("idle stream = %v, want ErrCursorExpired", err)
	}
}
