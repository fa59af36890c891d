package pgipam_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/ipam/pgipam"
)

// TestOpenNeedsTheSchema: Open over a schema Migrate has not made is
// FailedPrecondition, and works once it has.
func TestOpenNeedsTheSchema(t *testing.T) {
	url := pgURL(t)
	pool := openPool(t, url, newSchema(t, url), 2)
	ctx := context.Background()
	_, err := pgipam.Open(ctx, pool, nil)
	testkit.WantCode(t, "Open before Migrate", err, errs.FailedPrecondition)
	if err := pgipam.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	m, err := pgipam.Open(ctx, pool, nil)
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	if _, err := m.Pools(ctx); err != nil {
		t.Fatalf("Pools: %v", err)
	}
	_, err = pgipam.Open(ctx, nil, nil)
	testkit.WantCode(t, "Open(nil pool)", err, errs.InvalidArgument)
}

// TestAs: the IPAM reaches the driver and the connection pool.
func TestAs(t *testing.T) {
	m, pool := newIPAM(t, 2)
	var p *pgxpool.Pool
	if !m.As(&p) || p != pool {
		t.Errorf("As(**pgxpool.Pool) = %p, want %p", p, pool)
	}
	var d *pgipam.Driver
	if !m.As(&d) || d == nil {
		t.Error("As(**pgipam.Driver) = false")
	}
	var s *string
	if m.As(&s) {
		t.Error("As(**string) = true")
	}
	// Close leaves the host's pool open.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(context.Background()); err != nil {
		t.Errorf("the pool after Close: %v", err)
	}
}
