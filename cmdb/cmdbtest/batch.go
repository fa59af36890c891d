package cmdbtest

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
)

// The cases of UpsertMany: through the driver's cmdb.BatchDriver when it
// has one, through the CMDB's loop of Upserts otherwise. Either way a
// batch must do exactly what the same Upserts one by one do.

func (s *suite) upsertMany(t *testing.T, rs []cmdb.Record) []cmdb.Record {
	t.Helper()
	out, err := s.db.UpsertMany(s.ctx, rs)
	if err != nil {
		t.Fatalf("UpsertMany of %d records: %v", len(rs), err)
	}
	if len(out) != len(rs) {
		t.Fatalf("UpsertMany of %d records returned %d", len(rs), len(out))
	}
	return out
}

// testBatchCreateUpdate: a batch creates records (revision 1, the content
// given, the store's timestamps), a second batch updates them (revision 2,
// Created kept), and Get agrees with what each batch returned.
func testBatchCreateUpdate(t *testing.T, s *suite) {
	var in []cmdb.Record
	for i := range 5 {
		r := record("vsphere", fmt.Sprintf("vm-%d", 5-i)) // not in key order
		r.Created = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
		r.Updated, r.RetiredAt = r.Created, r.Created
		r.Reason = "created " + strconv.Itoa(i)
		in = append(in, r)
	}
	before := time.Now().Add(-time.Hour)
	out := s.upsertMany(t, in)
	for i, o := range out {
		if o.Key != in[i].Key || o.Revision != 1 {
			t.Fatalf("record %d: key %s revision %d, want %s revision 1 (in the order given)", i, o.Key, o.Revision, in[i].Key)
		}
		if !reflect.DeepEqual(content(o), content(in[i])) {
			t.Fatalf("record %d: UpsertMany returned other content:\n got  %+v\n want %+v", i, content(o), content(in[i]))
		}
		if o.Created.Equal(in[i].Created) || o.Created.Before(before) || o.Updated.Before(o.Created) || !o.RetiredAt.IsZero() {
			t.Fatalf("record %d: Created %v Updated %v RetiredAt %v: the store sets them", i, o.Created, o.Updated, o.RetiredAt)
		}
		if got := s.get(t, o.Key); !sameRecord(got, o) {
			t.Fatalf("Get(%s) after UpsertMany:\n got  %+v\n want %+v", o.Key, got, o)
		}
	}
	next := make([]cmdb.Record, len(out))
	for i, o := range out {
		next[i] = o.Clone()
		next[i].State = cmdb.Failed
		next[i].VM.Name = "renamed-" + strconv.Itoa(i)
		next[i].Created = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	out2 := s.upsertMany(t, next)
	for i, o := range out2 {
		if o.Revision != 2 || o.State != cmdb.Failed || o.VM.Name != next[i].VM.Name {
			t.Fatalf("record %d after the second batch: revision %d state %s name %q", i, o.Revision, o.State, o.VM.Name)
		}
		if !o.Created.Equal(out[i].Created) || o.Updated.Before(out[i].Updated) {
			t.Fatalf("record %d: Created %v -> %v, Updated %v -> %v", i, out[i].Created, o.Created, out[i].Updated, o.Updated)
		}
		if got := s.get(t, o.Key); !sameRecord(got, o) {
			t.Fatalf("Get(%s) after the second batch:\n got  %+v\n want %+v", o.Key, got, o)
		}
	}
	if n := len(s.all(t)); n != len(in) {
		t.Fatalf("%d records stored, want %d", n, len(in))
	}
}

// testBatchConflicts: in one batch, records whose revision is stale (a
// second create, an old revision, one ahead, an update of a missing
// record) are not written and say why, and the others are written.
func testBatchConflicts(t *testing.T, s *suite) {
	a := s.upsert(t, record("vsphere", "a"))
	b := s.upsert(t, record("vsphere", "b"))
	c := s.upsert(t, record("vsphere", "c"))
	d := s.upsert(t, record("vsphere", "d"))
	c2 := c
	c2.Reason = "c moved on"
	c2 = s.upsert(t, c2) // revision 2
	batch := []cmdb.Record{
		a,                        // 0: right revision
		record("vsphere", "b"),   // 1: created twice
		c,                        // 2: revision 1, stored 2
		record("vsphere", "new"), // 3: a create
		func() cmdb.Record { r := record("vsphere", "gone"); r.Revision = 4; return r }(), // 4: missing
		func() cmdb.Record { r := d; r.Revision = 9; return r }(),                         // 5: ahead
	}
	batch[0].Reason = "a updated"
	batch[1].Reason = "b created again"
	batch[2].Reason = "c stale"
	out, err := s.db.UpsertMany(s.ctx, batch)
	wantConflict(t, "UpsertMany with stale revisions", err)
	var be *cmdb.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("UpsertMany error %v (%T) is not a *cmdb.BatchError", err, err)
	}
	testkit.Bounded(t, "UpsertMany conflict", err, 600)
	if len(be.Errs) != len(batch) || len(out) != len(batch) {
		t.Fatalf("BatchError has %d entries and %d records came back, want %d each", len(be.Errs), len(out), len(batch))
	}
	for i, wantErr := range []bool{false, true, true, false, true, true} {
		if got := be.Errs[i] != nil; got != wantErr {
			t.Fatalf("record %d (%s): error %v, want an error: %v", i, batch[i].Key, be.Errs[i], wantErr)
		}
		if wantErr {
			wantConflict(t, "record "+batch[i].Key.String(), be.Errs[i])
			if !reflect.DeepEqual(out[i], cmdb.Record{}) {
				t.Fatalf("record %d not written, but UpsertMany returned %+v", i, out[i])
			}
			continue
		}
		if got := s.get(t, batch[i].Key); !sameRecord(got, out[i]) || got.Reason != batch[i].Reason {
			t.Fatalf("record %d written: Get %+v, UpsertMany returned %+v", i, got, out[i])
		}
	}
	if out[0].Revision != 2 || out[3].Revision != 1 {
		t.Fatalf("revisions %d and %d, want 2 and 1", out[0].Revision, out[3].Revision)
	}
	s.wantUnchanged(t, "a second create in a batch", b)
	s.wantUnchanged(t, "a stale update in a batch", c2)
	s.wantUnchanged(t, "an update ahead of the store in a batch", d)
	_, err = s.db.Get(s.ctx, batch[4].Key)
	testkit.MustCode(t, "Get of a record a batch could not update", err, errs.NotFound)
	for i, msg := range map[int]string{1: "already exists", 2: "revision 2", 4: "does not exist", 5: "expects 9"} {
		if !strings.Contains(be.Errs[i].Error(), msg) {
			t.Errorf("record %d: error %q does not say %q", i, be.Errs[i], msg)
		}
	}
}

// testBatchRetirement: RetiredAt through batches as through Upsert: set
// when a record becomes Retired, kept while it stays Retired, cleared
// when it leaves Retired; and a record retired by Retire since it was
// read conflicts.
func testBatchRetirement(t *testing.T, s *suite) {
	r := record("vsphere", "vm-1")
	r.State = cmdb.Retired
	fresh := record("vsphere", "vm-2")
	fresh.State = cmdb.Available
	out := s.upsertMany(t, []cmdb.Record{r, fresh})
	if out[0].RetiredAt.IsZero() || !out[1].RetiredAt.IsZero() {
		t.Fatalf("created retired: RetiredAt %v; created available: RetiredAt %v", out[0].RetiredAt, out[1].RetiredAt)
	}
	again := out[0]
	again.Reason = "still retired"
	avail := out[1]
	avail.State = cmdb.Retired
	out2 := s.upsertMany(t, []cmdb.Record{again, avail})
	if !out2[0].RetiredAt.Equal(out[0].RetiredAt) {
		t.Fatalf("a retired record written retired again: RetiredAt %v -> %v", out[0].RetiredAt, out2[0].RetiredAt)
	}
	if out2[1].RetiredAt.IsZero() || out2[1].RetiredAt.Before(out2[1].Created) {
		t.Fatalf("a record retired by a batch: RetiredAt %v (Created %v)", out2[1].RetiredAt, out2[1].Created)
	}
	revive := out2[0]
	revive.State = cmdb.Available
	out3 := s.upsertMany(t, []cmdb.Record{revive})
	if !out3[0].RetiredAt.IsZero() || out3[0].State != cmdb.Available {
		t.Fatalf("a revived record: state %s RetiredAt %v", out3[0].State, out3[0].RetiredAt)
	}
	if got := s.get(t, revive.Key); !sameRecord(got, out3[0]) {
		t.Fatalf("Get after reviving: %+v, want %+v", got, out3[0])
	}
	// Retire bumps the revision: a batch that read before it conflicts.
	read := s.get(t, revive.Key)
	if _, err := s.db.Retire(s.ctx, read.Key); err != nil {
		t.Fatal(err)
	}
	retired := s.get(t, read.Key)
	read.Reason = "written over a retirement"
	_, err := s.db.UpsertMany(s.ctx, []cmdb.Record{read})
	wantConflict(t, "UpsertMany over a record retired since it was read", err)
	s.wantUnchanged(t, "a batch over a retirement", retired)
}

// testBatchInvalid: one invalid record, a key twice or more than MaxBatch
// records refuse the whole batch, writing nothing; an empty batch does
// nothing.
func testBatchInvalid(t *testing.T, s *suite) {
	kept := s.upsert(t, record("vsphere", "kept"))
	before := s.all(t)
	upd := kept
	upd.Reason = "must not be written"
	bad := record("vsphere", "bad")
	bad.VM.Name = "a\x00b"
	tooMany := make([]cmdb.Record, cmdb.MaxBatch+1)
	for i := range tooMany {
		tooMany[i] = record("vsphere", "many-"+strconv.Itoa(i))
	}
	for name, rs := range map[string][]cmdb.Record{
		"an invalid record":  {upd, record("vsphere", "ok"), bad},
		"an invalid state":   {record("vsphere", "ok"), func() cmdb.Record { r := record("vsphere", "x"); r.State = "bogus"; return r }()},
		"a key twice":        {record("vsphere", "twice"), upd, record("vsphere", "twice")},
		"more than MaxBatch": tooMany,
		"an invalid key":     {upd, {Key: cmdb.Key{Provider: "vsphere"}, State: cmdb.Available}},
	} {
		_, err := s.db.UpsertMany(s.ctx, rs)
		s.refused(t, "UpsertMany with "+name, err, before)
	}
	out, err := s.db.UpsertMany(s.ctx, nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("UpsertMany of nothing: %d records, %v", len(out), err)
	}
	if after := s.all(t); len(after) != len(before) {
		t.Fatalf("%d records after refused batches, want %d", len(after), len(before))
	}
}

// testBatchLikeUpserts: a series of batches and the same writes one by one
// with Upsert, on two providers, end with the same records.
func testBatchLikeUpserts(t *testing.T, s *suite) {
	const n = 40
	cur := map[string][]cmdb.Record{"batch": make([]cmdb.Record, n), "single": make([]cmdb.Record, n)}
	for p := range cur {
		for i := range n {
			cur[p][i] = record(p, fmt.Sprintf("vm-%03d", i))
			cur[p][i].State = cmdb.Available
		}
	}
	states := []cmdb.State{cmdb.Available, cmdb.Enrolling, cmdb.Enrolled, cmdb.Retired, cmdb.Retired, cmdb.Available, cmdb.Failed}
	for round, st := range states {
		for p, rs := range cur {
			next := make([]cmdb.Record, n)
			for i, r := range rs {
				next[i] = r.Clone()
				if (i+round)%3 != 0 {
					next[i].State = st
				}
				next[i].Attributes = map[string]string{"round": strconv.Itoa(round)}
			}
			if p == "batch" {
				cur[p] = s.upsertMany(t, next)
				continue
			}
			for i, r := range next {
				cur[p][i] = s.upsert(t, r)
			}
		}
	}
	bs, err := s.db.List(s.ctx, cmdb.Filter{Provider: "batch", IncludeRetired: true})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := s.db.List(s.ctx, cmdb.Filter{Provider: "single", IncludeRetired: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != n || len(ss) != n {
		t.Fatalf("%d and %d records, want %d each", len(bs), len(ss), n)
	}
	for i := range bs {
		b, o := bs[i], ss[i]
		if b.Revision != o.Revision || b.State != o.State || b.RetiredAt.IsZero() != o.RetiredAt.IsZero() || !reflect.DeepEqual(b.Attributes, o.Attributes) {
			t.Fatalf("record %d: by batches %s rev %d state %s retired %v; one by one rev %d state %s retired %v",
				i, b.Key, b.Revision, b.State, b.RetiredAt, o.Revision, o.State, o.RetiredAt)
		}
		if b.State == cmdb.Retired && b.RetiredAt.Before(b.Created) {
			t.Fatalf("record %s: RetiredAt %v before Created %v", b.Key, b.RetiredAt, b.Created)
		}
	}
}

// testBatchConcurrent: workers increment counters in the same records with
// overlapping batches, retrying the records that conflict: no increment
// is lost and every write is one revision.
func testBatchConcurrent(t *testing.T, s *suite) {
	const (
		workers = 8
		records = 6
		rounds  = 3
	)
	var keys []cmdb.Key
	var init []cmdb.Record
	for i := range records {
		r := record("vsphere", "n-"+strconv.Itoa(i))
		r.Attributes = map[string]string{"n": "0"}
		init = append(init, r)
		keys = append(keys, r.Key)
	}
	s.upsertMany(t, init)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			for range rounds {
				todo := append([]cmdb.Key(nil), keys...)
				for attempt := 0; len(todo) > 0; attempt++ {
					if attempt > 20*workers {
						errc <- fmt.Errorf("worker %d: %d records still conflict after %d attempts", w, len(todo), attempt)
						return
					}
					var batch []cmdb.Record
					for _, k := range todo {
						r, err := s.db.Get(s.ctx, k)
						if err != nil {
							errc <- err
							return
						}
						n, _ := strconv.Atoi(r.Attributes["n"])
						r.Attributes["n"] = strconv.Itoa(n + 1)
						batch = append(batch, r)
					}
					runtime.Gosched() // let other workers read the same revisions
					_, err := s.db.UpsertMany(s.ctx, batch)
					var be *cmdb.BatchError
					switch {
					case err == nil:
						todo = nil
					case errors.As(err, &be):
						var again []cmdb.Key
						for i, e := range be.Errs {
							if e != nil {
								again = append(again, batch[i].Key)
							}
						}
						todo = again
					default:
						errc <- fmt.Errorf("worker %d: UpsertMany: %v", w, err)
						return
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for _, k := range keys {
		r := s.get(t, k)
		if r.Attributes["n"] != strconv.Itoa(workers*rounds) || r.Revision != 1+workers*rounds {
			t.Fatalf("%s: n = %s revision %d after %d increments: writes were lost", k, r.Attributes["n"], r.Revision, workers*rounds)
		}
	}
}
