package hyperv

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
)

func TestNodeEventsFromACursor(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	old := addVM(t, s, hypervsim.VM{Name: "before", Owner: "HV2"})
	d := driverFor(t, s, "az1")
	cur, err := d.Cursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) > provider.MaxCursor || strings.ContainsAny(string(cur), "\x00\n ") {
		t.Fatalf("cursor %q", cur)
	}
	a := addVM(t, s, hypervsim.VM{Name: "a", Owner: "HV2"})
	b := addVM(t, s, hypervsim.VM{Name: "b", Owner: "HV2"})
	s.RemoveVM(a)
	addVM(t, s, hypervsim.VM{Name: "elsewhere", Owner: "HV3"})
	cs, err := d.decodeCursor(cur)
	if err != nil {
		t.Fatal(err)
	}
	if cs.N["HV2"] != 1 || cs.N["HV1"] != 0 || cs.N["HV3"] != 0 {
		t.Fatalf("cursor positions %v", cs.N)
	}
	hv2 := d.nodes[1]
	evs, err := d.nodeEvents(ctx, hv2, scriptEvents, cs.N["HV2"], 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		rec int64
		typ provider.EventType
		id  string
	}{{2, provider.Created, a}, {3, provider.Created, b}, {4, provider.Deleted, a}}
	if len(evs) != len(want) {
		t.Fatalf("events %+v", evs)
	}
	for i, w := range want {
		if e := evs[i]; e.Record != w.rec || e.Type != w.typ || e.VMID != w.id || e.Time.IsZero() {
			t.Errorf("event %d: %+v, want %+v", i, e, w)
		}
	}
	// Max bounds one answer; the next read goes on from the last record.
	first, err := d.nodeEvents(ctx, hv2, scriptEvents, 1, 2)
	if err != nil || len(first) != 2 || first[1].Record != 3 {
		t.Fatalf("Max 2: %v %+v", err, first)
	}
	rest, err := d.nodeEvents(ctx, hv2, scriptEvents, first[1].Record, 2)
	if err != nil || len(rest) != 1 || rest[0].Record != 4 {
		t.Fatalf("after 3: %v %+v", err, rest)
	}
	// The log rolls over: records 2 and 3 are gone, the cursor at 1 cannot
	// go on; one at 3 still can.
	s.TrimLog("HV2", 1)
	_, err = d.nodeEvents(ctx, hv2, scriptEvents, 1, 100)
	testkit.WantCode(t, "events after a rollover", err, errs.FailedPrecondition)
	if !errors.Is(err, provider.ErrCursorExpired) {
		t.Errorf("rollover: %v does not wrap ErrCursorExpired", err)
	}
	if evs, err := d.nodeEvents(ctx, hv2, scriptEvents, 3, 100); err != nil || len(evs) != 1 {
		t.Errorf("after 3 once rolled over: %v %+v", err, evs)
	}
	// A cursor past the newest record (a log cleared and refilled, or a
	// cursor of another cluster) cannot go on either.
	_, err = d.nodeEvents(ctx, hv2, scriptEvents, 99, 100)
	testkit.WantCode(t, "events after a record the log never had", err, errs.FailedPrecondition)
	// Every record gone: a cursor past 0 cannot go on.
	s.TrimLog("HV2", 0)
	_, err = d.nodeEvents(ctx, hv2, scriptEvents, 4, 100)
	testkit.WantCode(t, "events of an emptied log", err, errs.FailedPrecondition)
	// An empty log (HV1) with a cursor at 0 is fine.
	if evs, err := d.nodeEvents(ctx, d.nodes[0], scriptEvents, 0, 100); err != nil || len(evs) != 0 {
		t.Errorf("empty log: %v %+v", err, evs)
	}
	_ = old
}

func TestDecodeCursorRefusesOthers(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	d := driverFor(t, s, "az1")
	for _, c := range []provider.Cursor{"", "not base64!", "e30", encodeCursor(cursorState{N: map[string]int64{"HV1": 1, "HV2": 1}})} {
		_, err := d.decodeCursor(c)
		if !errors.Is(err, provider.ErrCursorExpired) {
			t.Errorf("cursor %q: %v", c, err)
		}
		testkit.Bounded(t, "cursor error", err, 300)
	}
}
