package vcd_test

import (
	"context"
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
