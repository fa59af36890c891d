package memcmdb_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/errs"
)

func Example() {
	ctx := context.Background()
	db := memcmdb.New(&memcmdb.Options{Now: func() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) }})
	key := cmdb.Key{Provider: "vsphere", VMID: "4210f1b3-vm-42"}

	// Create: revision 0.
	r, _ := db.Upsert(ctx, cmdb.Record{Key: key, State: cmdb.Available})
	fmt.Println(r.Key, r.State, r.Revision, r.Created.Format(time.RFC3339))

	// Two writers read revision 1; the second one to write loses.
	a, b := r, r
	a.State = cmdb.Enrolling
	b.State = cmdb.Failed
	_, _ = db.Upsert(ctx, a)
	_, err := db.Upsert(ctx, b)
	fmt.Println(errors.Is(err, cmdb.ErrConflict), errs.CodeOf(err))

	// The VM was deleted.
	r, _ = db.Retire(ctx, key)
	fmt.Println(r.State, r.Revision)

	// Retired records are left out of List unless asked for.
	all, _ := db.List(ctx, cmdb.Filter{})
	withRetired, _ := db.List(ctx, cmdb.Filter{IncludeRetired: true})
	fmt.Println(len(all), len(withRetired))
	// Output:
	// vsphere/4210f1b3-vm-42 available 1 2026-05-01T12:00:00Z
	// true FailedPrecondition
	// retired 3
	// 0 1
}

func Example_upsertRetry() {
	ctx := context.Background()
	db := memcmdb.New(nil)
	key := cmdb.Key{Provider: "ovirt", VMID: "vm-7"}
	_, _ = db.Upsert(ctx, cmdb.Record{Key: key, State: cmdb.Enrolled})

	// Read-modify-write, retried on conflict.
	for {
		r, err := db.Get(ctx, key)
		if err != nil {
			panic(err)
		}
		if r.Attributes == nil {
			r.Attributes = map[string]string{}
		}
		r.Attributes["ticket"] = "CHG-1234"
		if _, err = db.Upsert(ctx, r); !errors.Is(err, cmdb.ErrConflict) {
			break
		}
	}
	r, _ := db.Get(ctx, key)
	fmt.Println(r.Attributes["ticket"], r.Revision)
	// Output:
	// CHG-1234 2
}
