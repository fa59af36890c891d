package enroll_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
)

// TestThousandRequestsHundredVMs: 1,000 concurrent requests over 100 VMs,
// duplicates included, through two orchestrator instances sharing the
// store: each VM is enrolled exactly once.
func TestThousandRequestsHundredVMs(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 100})
	o1, o2 := w.orchestrator("i1", nil), w.orchestrator("i2", nil)
	var reqs []enroll.Request
	for i := 0; i < 1000; i++ {
		reqs = append(reqs, w.request(i%100, fmt.Sprintf("r%d", i)))
	}
	rand.Shuffle(len(reqs), func(a, b int) { reqs[a], reqs[b] = reqs[b], reqs[a] })
	half := len(reqs) / 2
	ch := make(chan []enroll.Result, 2)
	go func() { ch <- o1.EnrollAll(context.Background(), reqs[:half], 64) }()
	go func() { ch <- o2.EnrollAll(context.Background(), reqs[half:], 64) }()
	results := append(<-ch, <-ch...)
	ok := map[string]int{}
	for _, r := range results {
		switch {
		case r.Err == nil:
			ok[r.VM.VMID]++
		case errors.Is(r.Err, enroll.ErrVMBusy), errs.CodeOf(r.Err) == errs.FailedPrecondition:
		default:
			t.Errorf("unexpected error for %s: %v", r.VM, r.Err)
		}
	}
	for i := range w.vms {
		if n := ok[w.vms[i].ID]; n != 1 {
			t.Errorf("%s enrolled %d times", w.vms[i].ID, n)
		}
	}
	recs, _ := w.db.List(context.Background(), cmdb.Filter{States: []cmdb.State{cmdb.Enrolled}})
	allocs, _ := w.ipam.Allocations(context.Background(), poolName)
	rules, _ := w.fw.List(context.Background())
	if len(recs) != 100 || len(allocs) != 100 || len(rules) != 100 {
		t.Fatalf("%d enrolled records, %d allocations, %d rules; want 100 each", len(recs), len(allocs), len(rules))
	}
	w.checkInvariants(t)
}

// TestVMDeletedMidEnrollment: the VM disappears while its enrollment runs;
// the enrollment fails and compensates, and the Indexer's cleanup then
// retires the record.
func TestVMDeletedMidEnrollment(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 1})
	o := w.orchestrator("i1", nil)
	enroll.SetHook(o, func(point string) {
		if point == "before:"+enroll.StepConfigure {
			if err := w.hv.RemoveVM(w.vms[0].ID); err != nil {
				t.Error(err)
			}
		}
	})
	res, err := o.Enroll(context.Background(), w.request(0, "r1"))
	wantCode(t, err, errs.NotFound)
	if res.FailedStep != enroll.StepConfigure && res.FailedStep != enroll.StepCMDB {
		t.Fatalf("failed at %q", res.FailedStep)
	}
	// The guest is gone, so its OS configuration is moot.
	w.mu.Lock()
	delete(w.configured, w.vms[0].ID)
	w.mu.Unlock()
	w.checkInvariants(t)
	if err := o.Indexer(nil).Sync(context.Background(), provName); err != nil {
		t.Fatal(err)
	}
	rec, _ := w.db.Get(context.Background(), w.key(0))
	if rec.State != cmdb.Retired {
		t.Fatalf("record %s after the indexer saw the deletion", rec.State)
	}
	w.checkInvariants(t)
}
