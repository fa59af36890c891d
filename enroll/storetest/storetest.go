package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
)

// Harness returns a fresh, empty store driver for one test. The suite runs
// it through the portable enroll.Store, as the orchestrator does.
type Harness func(t *testing.T) enroll.StoreDriver

func journal(id, vm string) enroll.Journal {
	return enroll.Journal{
		ID: id, Op: enroll.OpEnroll, VM: cmdb.Key{Provider: "p1", VMID: vm},
		Profile: "gold", Username: "admin", Access: enroll.AccessGuest, Phase: enroll.Running,
		Steps: []enroll.StepRecord{{Name: "eligibility"}, {Name: "ipam"}},
	}
}

func wantCode(t *testing.T, err error, code errs.Code) {
	t.Helper()
	testkit.MustCode(t, "store call", err, code)
}

// Run runs the conformance cases.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()

	t.Run("OwnJournalsNotTakenOver", func(t *testing.T) { testOwnJournalsNotTakenOver(t, h) })
	t.Run("ReplicasExclusive", func(t *testing.T) { testReplicasExclusive(t, h) })
	t.Run("Limits", func(t *testing.T) { testLimits(t, h) })
	t.Run("AfterClose", func(t *testing.T) { testClosed(t, h) })

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		j := journal("j1", "vm-1")
		j.Resources = enroll.Resources{Family: "linux", LocalIP: netip.MustParseAddr("192.0.2.10"), Pool: "pub",
			PublicIP: netip.MustParseAddr("203.0.113.5"), Ports: []natfw.Port{{Protocol: natfw.TCP, Number: 22}}, Marked: true}
		j.Steps[0].State = enroll.StateDone
		j.Steps[1] = enroll.StepRecord{Name: "ipam", State: enroll.StateFailed, Error: "pool full", Code: errs.ResourceExhausted}
		j.NewLocalIP = netip.MustParseAddr("192.0.2.11")
		j.ErrorCode, j.Error, j.FailedStep = errs.ResourceExhausted, "pool full", "ipam"
		j.Holder, j.Incarnation, j.LeaseExpires = "inst-1", "incarnation-1", time.Now().Add(time.Minute).Truncate(time.Microsecond)
		created, err := s.CreateJournal(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		if created.Revision != 1 || created.Created.IsZero() || created.Updated.IsZero() {
			t.Fatalf("created journal: revision %d, created %v, updated %v", created.Revision, created.Created, created.Updated)
		}
		got, err := s.GetJournal(ctx, "j1")
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, got, created)
		checkSame(t, got, withMeta(j, got))
	})

	t.Run("InvalidJournals", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		bad := map[string]enroll.Journal{}
		j := journal("", "vm-1")
		bad["no ID"] = j
		j = journal("x", "")
		bad["no VM"] = j
		j = journal("x", "vm-1")
		j.Op = ""
		bad["no op"] = j
		j = journal("x", "vm-1")
		j.Revision = 3
		bad["revision not 0"] = j
		for name, j := range bad {
			_, err := s.CreateJournal(ctx, j)
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Errorf("%s: code %v (%v), want InvalidArgument", name, errs.CodeOf(err), err)
			}
		}
		open, err := s.OpenJournals(ctx)
		if err != nil || len(open) != 0 {
			t.Fatalf("after invalid creates: %d open journals, %v", len(open), err)
		}
	})

	t.Run("DuplicateID", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		if _, err := s.CreateJournal(ctx, journal("j1", "vm-1")); err != nil {
			t.Fatal(err)
		}
		_, err := s.CreateJournal(ctx, journal("j1", "vm-2"))
		wantCode(t, err, errs.AlreadyExists)
		if !errors.Is(err, enroll.ErrJournalExists) {
			t.Fatalf("error %v does not wrap ErrJournalExists", err)
		}
		if _, err := s.OpenJournalFor(ctx, cmdb.Key{Provider: "p1", VMID: "vm-2"}); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("rejected journal left an open journal for vm-2: %v", err)
		}
	})

	t.Run("OneOpenJournalPerVM", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		first, err := s.CreateJournal(ctx, journal("j1", "vm-1"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.CreateJournal(ctx, journal("j2", "vm-1"))
		wantCode(t, err, errs.AlreadyExists)
		if !errors.Is(err, enroll.ErrVMBusy) {
			t.Fatalf("error %v does not wrap ErrVMBusy", err)
		}
		if _, err := s.GetJournal(ctx, "j2"); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("rejected journal was stored: %v", err)
		}
		// A closed journal for the same VM may be stored.
		closed := journal("j0", "vm-1")
		closed.Phase = enroll.Succeeded
		if _, err := s.CreateJournal(ctx, closed); err != nil {
			t.Fatalf("closed journal: %v", err)
		}
		// Closing the first frees the VM.
		first.Phase = enroll.Failed
		if _, err := s.UpdateJournal(ctx, first); err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenJournalFor(ctx, first.VM); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("OpenJournalFor after close: %v", err)
		}
		second, err := s.CreateJournal(ctx, journal("j2", "vm-1"))
		if err != nil {
			t.Fatalf("after the first closed: %v", err)
		}
		// Reopening the closed first one while the second is open fails.
		closedFirst, _ := s.GetJournal(ctx, "j1")
		closedFirst.Phase = enroll.Compensating
		_, err = s.UpdateJournal(ctx, closedFirst)
		if !errors.Is(err, enroll.ErrVMBusy) {
			t.Fatalf("reopening a journal while another is open: %v", err)
		}
		got, err := s.OpenJournalFor(ctx, first.VM)
		if err != nil || got.ID != second.ID {
			t.Fatalf("OpenJournalFor = %v, %v; want j2", got.ID, err)
		}
	})

	t.Run("UpdateRevisions", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		j, err := s.CreateJournal(ctx, journal("j1", "vm-1"))
		if err != nil {
			t.Fatal(err)
		}
		stale := j
		j.Steps[0].State = enroll.StateDone
		j.Resources.PublicIP = netip.MustParseAddr("203.0.113.9")
		j2, err := s.UpdateJournal(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		if j2.Revision != j.Revision+1 || j2.Steps[0].State != enroll.StateDone || j2.Resources.PublicIP != j.Resources.PublicIP {
			t.Fatalf("updated journal: %+v", j2)
		}
		if !j2.Created.Equal(j.Created) {
			t.Fatalf("update changed Created: %v -> %v", j.Created, j2.Created)
		}
		stale.Phase = enroll.Failed
		_, err = s.UpdateJournal(ctx, stale)
		wantCode(t, err, errs.FailedPrecondition)
		if !errors.Is(err, enroll.ErrJournalConflict) {
			t.Fatalf("stale update: %v does not wrap ErrJournalConflict", err)
		}
		got, _ := s.GetJournal(ctx, "j1")
		checkSame(t, got, j2)
		changed := j2
		changed.VM.VMID = "vm-9"
		_, err = s.UpdateJournal(ctx, changed)
		wantCode(t, err, errs.InvalidArgument)
		changed = j2
		changed.Op = enroll.OpUnenroll
		_, err = s.UpdateJournal(ctx, changed)
		wantCode(t, err, errs.InvalidArgument)
		missing := journal("nope", "vm-1")
		missing.Revision = 1
		_, err = s.UpdateJournal(ctx, missing)
		wantCode(t, err, errs.NotFound)
	})

	t.Run("OpenJournalsOrdered", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		for i := 0; i < 5; i++ {
			j := journal(fmt.Sprintf("j%d", i), fmt.Sprintf("vm-%d", i))
			if i == 2 {
				j.Phase = enroll.Succeeded
			}
			if i == 3 {
				j.Phase = enroll.Compensating
			}
			if _, err := s.CreateJournal(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		open, err := s.OpenJournals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range open {
			ids = append(ids, j.ID)
		}
		if fmt.Sprint(ids) != "[j0 j1 j3 j4]" {
			t.Fatalf("open journals %v, want [j0 j1 j3 j4]", ids)
		}
		if _, err := s.GetJournal(ctx, "missing"); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("GetJournal(missing): %v", err)
		}
	})

	t.Run("Cursors", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		if _, err := s.Cursor(ctx, "p1"); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("Cursor before set: %v", err)
		}
		for _, c := range []provider.Cursor{"10", "11"} {
			if err := s.SetCursor(ctx, "p1", c); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetCursor(ctx, "p2", "x"); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Cursor(ctx, "p1"); err != nil || c != "11" {
			t.Fatalf("Cursor(p1) = %q, %v", c, err)
		}
		if c, err := s.Cursor(ctx, "p2"); err != nil || c != "x" {
			t.Fatalf("Cursor(p2) = %q, %v", c, err)
		}
	})

	t.Run("ConcurrentCreatesOneWinner", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		const n = 32
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.CreateJournal(ctx, journal(fmt.Sprintf("j%d", i), "vm-1"))
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, enroll.ErrVMBusy) {
					t.Errorf("create %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent creates for one VM succeeded, want 1", wins)
		}
	})

	t.Run("ConcurrentUpdatesNoLostWrite", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		if _, err := s.CreateJournal(ctx, journal("j1", "vm-1")); err != nil {
			t.Fatal(err)
		}
		const n = 16
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					j, err := s.GetJournal(ctx, "j1")
					if err != nil {
						t.Error(err)
						return
					}
					j.Steps = append(j.Steps, enroll.StepRecord{Name: fmt.Sprintf("s%d", i)})
					if _, err = s.UpdateJournal(ctx, j); err == nil {
						return
					}
					if !errors.Is(err, enroll.ErrJournalConflict) {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		j, _ := s.GetJournal(ctx, "j1")
		if len(j.Steps) != 2+n {
			t.Fatalf("%d steps after %d concurrent appends, want %d", len(j.Steps), n, 2+n)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		s := enroll.NewStore(h(t), nil)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.CreateJournal(cctx, journal("j1", "vm-1"))
		wantCode(t, err, errs.Canceled)
		if _, err := s.GetJournal(ctx, "j1"); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("canceled create stored the journal: %v", err)
		}
		wantCode(t, s.SetCursor(cctx, "p1", "1"), errs.Canceled)
	})
}

// withMeta copies the store-assigned fields of got into want.
func withMeta(want, got enroll.Journal) enroll.Journal {
	want.Revision, want.Created, want.Updated = got.Revision, got.Created, got.Updated
	return want
}

func checkSame(t *testing.T, got, want enroll.Journal) {
	t.Helper()
	g, w := fmt.Sprintf("%+v", norm(got)), fmt.Sprintf("%+v", norm(want))
	if g != w {
		t.Fatalf("journal differs:\n got %s\nwant %s", g, w)
	}
	if !got.LeaseExpires.Equal(want.LeaseExpires) || !got.Created.Equal(want.Created) || !got.Updated.Equal(want.Updated) {
		t.Fatalf("journal times differ: got %v/%v/%v want %v/%v/%v", got.LeaseExpires, got.Created, got.Updated, want.LeaseExpires, want.Created, want.Updated)
	}
}

func norm(j enroll.Journal) enroll.Journal {
	j.LeaseExpires, j.Created, j.Updated = time.Time{}, time.Time{}, time.Time{}
	if len(j.Resources.Ports) == 0 {
		j.Resources.Ports = nil
	}
	if len(j.Steps) == 0 {
		j.Steps = nil
	}
	return j
}
