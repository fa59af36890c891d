package pgipam_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
)

// Released addresses that other transactions hold locked (allocations
// that may yet roll back, a DeletePool the foreign key refuses) do not make
// a pool look exhausted: Allocate waits for them briefly, then is
// Unavailable, never ResourceExhausted.
func TestLockedFreeAddressesAreNotExhaustion(t *testing.T) {
	m, pool := newIPAM(t, 4)
	ctx := context.Background()
	p := ipam.Pool{Name: "small", Prefix: netip.MustParsePrefix("10.9.0.0/29")} // 6 addresses
	if err := m.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: fmt.Sprint("o", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 { // o5 keeps its address: the pool is in use
		if err := m.Release(ctx, p.Name, fmt.Sprint("o", i)); err != nil {
			t.Fatal(err)
		}
	}

	// Refused without the cascade being tried (the statement skips a pool
	// with allocations, then tells the two cases apart).
	if err := m.DeletePool(ctx, p.Name); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("DeletePool of a pool in use: %v", err)
	}

	lockFree := func() pgx.Tx {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		var locked int
		if err := tx.QueryRow(ctx, `WITH l AS (SELECT 1 FROM ipam_free f JOIN ipam_pools p ON p.id = f.pool_id
			WHERE p.name = $1 FOR UPDATE OF f) SELECT count(*) FROM l`, p.Name).Scan(&locked); err != nil || locked != 5 {
			t.Fatalf("locking the released addresses: %d, %v", locked, err)
		}
		return tx
	}

	tx := lockFree()
	_, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: "new"})
	if errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("Allocate while every released address is locked: %v (code %v), want Unavailable", err, errs.CodeOf(err))
	}
	_ = tx.Rollback(ctx)

	// Locks released while Allocate is still trying.
	tx = lockFree()
	rolledBack := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, func() { _ = tx.Rollback(ctx); close(rolledBack) })
	a, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: "new"})
	<-rolledBack
	if err != nil {
		t.Fatalf("Allocate while the locks are released: %v", err)
	}
	if !p.Prefix.Contains(a.Address) {
		t.Fatalf("allocated %s", a.Address)
	}
}
