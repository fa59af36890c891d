package pgstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/pgstore"
	"github.com/managedvm/managedvm/errs"
)

// TestLeaseTakeoverIsExclusive: two Stores on separate connection pools
// (as two processes would have) race to take over one expired journal:
// exactly one wins, and the original holder's late write is refused.
func TestLeaseTakeoverIsExclusive(t *testing.T) {
	url := pgURL(t)
	schema := newSchema(t, url)
	ctx := context.Background()
	p1, p2 := openPool(t, url, schema, 8), openPool(t, url, schema, 8)
	if err := pgstore.Migrate(ctx, p1); err != nil {
		t.Fatal(err)
	}
	s1, s2 := pgstore.New(p1, nil), pgstore.New(p2, nil)
	j := benchJournal("r1")
	j.Holder, j.LeaseExpires = "crashed", time.Now().Add(-time.Second) // already expired
	held, err := s1.CreateJournal(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	open, err := s2.OpenJournals(ctx)
	if err != nil || len(open) != 1 || open[0].Revision != held.Revision {
		t.Fatalf("OpenJournals = %+v, %v; want the one journal", open, err)
	}
	var wins atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	for i := range 16 {
		s := []*enroll.Store{s1, s2}[i%2]
		wg.Go(func() {
			claim := held.Clone() // every taker read revision 1
			claim.Holder, claim.LeaseExpires = "taker-"+string(rune('a'+i)), time.Now().Add(time.Minute)
			switch _, err := s.UpdateJournal(ctx, claim); {
			case err == nil:
				wins.Add(1)
				winner.Store(claim.Holder)
			case errors.Is(err, enroll.ErrJournalConflict):
			default:
				t.Errorf("takeover: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d takeovers succeeded, want 1", wins.Load())
	}
	// The crashed holder comes back and writes with its old revision.
	held.Steps[0].State = enroll.StateDone
	_, err = s1.UpdateJournal(ctx, held)
	if errs.CodeOf(err) != errs.FailedPrecondition || !errors.Is(err, enroll.ErrJournalConflict) {
		t.Fatalf("late write of the old holder: %v, want ErrJournalConflict", err)
	}
	got, err := s2.GetJournal(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Holder != winner.Load() || got.Revision != 2 || got.Steps[0].State != enroll.StatePending {
		t.Fatalf("journal after the race: holder %q revision %d steps %+v; want the winner %q at revision 2, untouched steps",
			got.Holder, got.Revision, got.Steps, winner.Load())
	}
}
