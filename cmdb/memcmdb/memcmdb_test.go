package memcmdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/cmdbtest"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
)

func TestConformance(t *testing.T) {
	cmdbtest.Run(t, cmdbtest.Harness{
		New: func(*testing.T) cmdb.Driver { return memcmdb.NewDriver(nil) },
	})
}

// TestConformanceWithoutBatch runs the suite over a driver without the
// batch capability: the CMDB's UpsertMany then loops over Upsert, and must
// behave the same.
func TestConformanceWithoutBatch(t *testing.T) {
	cmdbtest.Run(t, cmdbtest.Harness{
		New: func(*testing.T) cmdb.Driver {
			d := struct{ cmdb.Driver }{memcmdb.NewDriver(nil)}
			if _, ok := cmdb.Driver(d).(cmdb.BatchDriver); ok {
				t.Fatal("the wrapped driver still has UpsertMany")
			}
			return d
		},
	})
}

// fakeClock advances one second on every reading.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func TestClock(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	db := memcmdb.New(&memcmdb.Options{Now: clock.now})
	ctx := context.Background()
	key := cmdb.Key{Provider: "vsphere", VMID: "vm-1"}

	r, err := db.Upsert(ctx, cmdb.Record{Key: key, State: cmdb.Available})
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
	if !r.Created.Equal(t1) || !r.Updated.Equal(t1) {
		t.Fatalf("create: %v %v", r.Created, r.Updated)
	}
	r.State = cmdb.Enrolled
	r, _ = db.Upsert(ctx, r)
	if !r.Created.Equal(t1) || !r.Updated.Equal(t1.Add(time.Second)) {
		t.Fatalf("update: %v %v", r.Created, r.Updated)
	}
	r, _ = db.Retire(ctx, key)
	if !r.RetiredAt.Equal(t1.Add(2*time.Second)) || !r.Updated.Equal(r.RetiredAt) {
		t.Fatalf("retire: %v %v", r.RetiredAt, r.Updated)
	}
	// Writing a retired record keeps RetiredAt; leaving Retired clears it.
	r.Reason = "note"
	r, _ = db.Upsert(ctx, r)
	if !r.RetiredAt.Equal(t1.Add(2 * time.Second)) {
		t.Fatalf("retired write moved RetiredAt to %v", r.RetiredAt)
	}
	r.State = cmdb.Available
	r, _ = db.Upsert(ctx, r)
	if !r.RetiredAt.IsZero() {
		t.Fatalf("a record back from Retired keeps RetiredAt %v", r.RetiredAt)
	}
	// Retiring through Upsert sets RetiredAt.
	r.State = cmdb.Retired
	r, _ = db.Upsert(ctx, r)
	if !r.RetiredAt.Equal(r.Updated) {
		t.Fatalf("retired through Upsert: RetiredAt %v, Updated %v", r.RetiredAt, r.Updated)
	}
	var d *memcmdb.Driver
	if !db.As(&d) {
		t.Fatal("As(*memcmdb.Driver) = false")
	}
	if d.Len() != 1 {
		t.Fatalf("Len %d", d.Len())
	}
}
