package pgipam_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/internal/pgsql/pgtest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/pgipam"
)

func pgURL(t testing.TB) string { return pgtest.URL(t) }

func newSchema(t testing.TB, url string) string { return pgtest.NewSchema(t, url, "pgipam_test_") }

func openPool(t testing.TB, url, schema string, conns int32) *pgxpool.Pool {
	return pgtest.OpenPool(t, url, schema, conns)
}

// newIPAM returns an IPAM over a fresh, migrated schema.
func newIPAM(t testing.TB, conns int32) (*ipam.IPAM, *pgxpool.Pool) {
	t.Helper()
	pool := migratedPool(t, conns)
	m, err := pgipam.Open(context.Background(), pool, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m, pool
}

// migratedPool returns a pool over a fresh, migrated schema.
func migratedPool(t testing.TB, conns int32) *pgxpool.Pool {
	t.Helper()
	url := pgURL(t)
	pool := openPool(t, url, newSchema(t, url), conns)
	if err := pgipam.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return pool
}

// portable returns the IPAM over the driver of pool, without Open's check.
func portable(pool *pgxpool.Pool) *ipam.IPAM { return ipam.New(pgipam.NewDriver(pool, nil), nil) }
