package pgstore_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/pgstore"
	"github.com/managedvm/managedvm/internal/pgsql/pgtest"
)

func pgURL(t testing.TB) string { return pgtest.URL(t) }

func newSchema(t testing.TB, url string) string { return pgtest.NewSchema(t, url, "pgstore_test_") }

func openPool(t testing.TB, url, schema string, conns int32) *pgxpool.Pool {
	return pgtest.OpenPool(t, url, schema, conns)
}

// newStore returns a Store over a fresh, migrated schema.
func newStore(t testing.TB, conns int32) (*enroll.Store, *pgxpool.Pool) {
	t.Helper()
	url := pgURL(t)
	pool := openPool(t, url, newSchema(t, url), conns)
	if err := pgstore.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return pgstore.New(pool, nil), pool
}
