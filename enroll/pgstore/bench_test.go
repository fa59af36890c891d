package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
)

func benchJournal(id string) enroll.Journal {
	return enroll.Journal{ID: id, Op: enroll.OpEnroll, VM: cmdb.Key{Provider: "p1", VMID: id}, Phase: enroll.Running,
		Username: "admin", Access: enroll.AccessGuest, Holder: "bench",
		Steps: []enroll.StepRecord{{Name: "eligibility"}, {Name: "credentials"}, {Name: "requirements"},
			{Name: "ipam"}, {Name: "firewall"}, {Name: "configure"}, {Name: "cmdb"}}}
}

// BenchmarkJournalWrites measures journal writes per second as the
// orchestrator makes them (a step's state recorded with a compare-and-swap
// on the revision), each client working on its own journal.
func BenchmarkJournalWrites(b *testing.B) {
	for _, clients := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s, _ := newStore(b, int32(clients))
			ctx := context.Background()
			js := make([]enroll.Journal, clients)
			for c := range clients {
				j, err := s.CreateJournal(ctx, benchJournal(fmt.Sprint("j", c)))
				if err != nil {
					b.Fatal(err)
				}
				js[c] = j
			}
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() {
					j := js[c]
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						j.Steps[i%int64(len(j.Steps))].State = enroll.StateDone
						var err error
						if j, err = s.UpdateJournal(ctx, j); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// BenchmarkJournalCreate measures new journals per second (16 clients),
// each checked against the one-open-journal-per-VM index.
func BenchmarkJournalCreate(b *testing.B) {
	s, _ := newStore(b, 16)
	ctx := context.Background()
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := s.CreateJournal(ctx, benchJournal(fmt.Sprint("j", i))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
