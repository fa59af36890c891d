package pgcmdb_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/pgcmdb"
	"github.com/managedvm/managedvm/internal/pgsql/pgtest"
)

func pgURL(t testing.TB) string { return pgtest.URL(t) }

func newSchema(t testing.TB, url string) string { return pgtest.NewSchema(t, url, "pgcmdb_test_") }

func openPool(t testing.TB, url, schema string, conns int32) *pgxpool.Pool {
	return pgtest.OpenPool(t, url, schema, conns)
}

// newCMDB returns a CMDB over a fresh, migrated schema.
func newCMDB(t testing.TB, conns int32) (*cmdb.CMDB, *pgxpool.Pool) {
	t.Helper()
	url := pgURL(t)
	pool := openPool(t, url, newSchema(t, url), conns)
	if err := pgcmdb.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return pgcmdb.New(pool, nil), pool
}
