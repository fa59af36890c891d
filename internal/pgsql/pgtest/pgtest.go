// Package pgtest gives the PostgreSQL drivers' tests a throwaway schema on
// the server .ci/run starts (MANAGEDVM_PG_URL); without the variable the
// tests skip, and fail under CI=true (internal/testenv).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testenv"
)

// URL returns the test server's URL or stops the test.
func URL(t testing.TB) string {
	t.Helper()
	return testenv.Env(t, "MANAGEDVM_PG_URL", "PostgreSQL", "set MANAGEDVM_PG_URL to a PostgreSQL URL (bash .ci/run starts a server: .ci/components/20-postgres.sh)")
}

// NewSchema creates a schema of its own for one test and returns its name;
// the schema is dropped when the test ends.
func NewSchema(t testing.TB, url, prefix string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("MANAGEDVM_PG_KEEP") != "" {
			return
		}
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// OpenPool connects to schema with at most conns connections.
func OpenPool(t testing.TB, url, schema string, conns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	if conns > 0 {
		cfg.MaxConns = conns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// CheckMigrate is the migration test every PostgreSQL driver runs: eight
// pools migrate one empty schema at once, each version is applied once
// (recorded in versionsTable), migrating again changes nothing, and a
// canceled context is Canceled.
func CheckMigrate(t *testing.T, migrate func(context.Context, *pgxpool.Pool) error, versionsTable string) {
	t.Helper()
	url := URL(t)
	schema := NewSchema(t, url, "migrate_test_")
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		pool := OpenPool(t, url, schema, 1)
		wg.Go(func() {
			if err := migrate(ctx, pool); err != nil {
				t.Errorf("concurrent Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	pool := OpenPool(t, url, schema, 1)
	if err := migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	var n, max int
	if err := pool.QueryRow(ctx, "SELECT count(*), max(version) FROM "+versionsTable).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != max || n < 1 {
		t.Errorf("%d migration rows up to version %d: each version once", n, max)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := migrate(canceled, pool); errs.CodeOf(err) != errs.Canceled {
		t.Errorf("Migrate on a canceled context: %v", err)
	}
}
