package pgcmdb_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/pgcmdb"
)

// Creating and updating a record with its revision. (It needs a server, so
// it is compiled but not run: the conformance suite runs these calls
// against MANAGEDVM_PG_URL.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("MANAGEDVM_PG_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := pgcmdb.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	db := pgcmdb.New(pool, nil)
	rec, err := db.Upsert(ctx, cmdb.Record{Key: cmdb.Key{Provider: "vc1", VMID: "4211-aaaa"}, State: cmdb.Available})
	if err != nil {
		log.Fatal(err)
	}
	rec.State = cmdb.Enrolling
	if rec, err = db.Upsert(ctx, rec); err != nil { // a stale revision wraps cmdb.ErrConflict
		log.Fatal(err)
	}
	fmt.Println(rec.Key, rec.State, rec.Revision)
}
