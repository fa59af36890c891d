package pgcmdb_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/cmdb/pgcmdb"
	"github.com/managedvm/managedvm/internal/testenv"
)

// pgURL returns the test server's URL or stops the test.
func pgURL(t testing.TB) string {
	t.Helper()
	return testenv.Env(t, "MANAGEDVM_PG_URL", "PostgreSQL", "run .ci/run")
}

// newSchema creates a schema of its own for one test and returns its name;
// the schema is dropped when the test ends.
func newSchema(t testing.TB, url string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "pgcmdb_test_" + hex.EncodeToString(b[:])
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

// openPool connects to schema with at most conns connections.
func openPool(t testing.TB, url, schema string, conns int32) *pgxpool.Pool {
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

// newCMDB returns a CMDB over a fresh, migrated schema.
func newCMDB(t testing.TB, conns int32) (*pgcmdb.CMDB, *pgxpool.Pool) {
	t.Helper()
	url := pgURL(t)
	pool := openPool(t, url, newSchema(t, url), conns)
	if err := pgcmdb.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return pgcmdb.New(pool, nil), pool
}
