package pgcmdb_test

import (
	"context"
	"sync"
	"testing"

	"github.com/managedvm/managedvm/cmdb/pgcmdb"
	"github.com/managedvm/managedvm/errs"
)

// TestMigrateConcurrentAndIdempotent: eight processes' worth of pools
// migrate one empty schema at once; each version is applied once, and
// migrating again changes nothing.
func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	url := pgURL(t)
	schema := newSchema(t, url)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		pool := openPool(t, url, schema, 1)
		wg.Go(func() {
			if err := pgcmdb.Migrate(ctx, pool); err != nil {
				t.Errorf("concurrent Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	pool := openPool(t, url, schema, 1)
	if err := pgcmdb.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	var n, max int
	if err := pool.QueryRow(ctx, "SELECT count(*), max(version) FROM cmdb_schema_migrations").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != max || n < 1 {
		t.Errorf("%d migration rows up to version %d: each version once", n, max)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := pgcmdb.Migrate(canceled, pool); errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Migrate on a canceled context: %v", err)
	}
}
