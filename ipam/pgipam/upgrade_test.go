package pgipam_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/pgipam"
)

// A pool made under schema version 1 (one cursor in the pool row, 100 of
// its 254 addresses handed out) keeps its allocations through migration 2,
// which splits what the cursor had left into stripes: the other 154
// addresses are handed out once each, concurrently, then the pool is full.
func TestUpgradeSplitsTheCursor(t *testing.T) {
	ctx := context.Background()
	url := pgURL(t)
	db := openPool(t, url, newSchema(t, url), 8)
	if err := pgipam.MigrateTo(ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	// What version 1's CreatePool and 100 Allocates left behind: the
	// network address excluded (span at slot 0), slots 0-99 used.
	if _, err := db.Exec(ctx, `INSERT INTO ipam_pools (id, name, prefix, size, next_slot) VALUES (1, 'v1', '192.0.2.0/24', 254, 100);
		INSERT INTO ipam_spans (pool_id, first_slot, excluded_through) VALUES (1, 0, 1);
		INSERT INTO ipam_allocations (pool_id, owner, address, created, updated)
			SELECT 1, 'old-' || i, ('192.0.2.' || (i + 1))::inet, now(), now() FROM generate_series(0, 99) i`); err != nil {
		t.Fatal(err)
	}
	if err := pgipam.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	m, err := pgipam.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan netip.Addr, 154)
	errc := make(chan error, 154)
	for i := range 154 {
		go func() {
			a, err := m.Allocate(ctx, ipam.Request{Pool: "v1", Owner: fmt.Sprint("new-", i)})
			errc <- err
			got <- a.Address
		}()
	}
	seen := map[netip.Addr]bool{}
	for range 154 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		a := <-got
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		if b := a.As4(); b[3] <= 100 || b[3] == 255 {
			t.Fatalf("new allocation %s is among version 1's addresses or the broadcast", a)
		}
	}
	_, err = m.Allocate(ctx, ipam.Request{Pool: "v1", Owner: "one-too-many"})
	if errs.CodeOf(err) != errs.ResourceExhausted {
		t.Fatalf("Allocate in a full pool = %v, want ResourceExhausted", err)
	}
	if a, err := m.Lookup(ctx, "v1", "old-7"); err != nil || a.Address != netip.MustParseAddr("192.0.2.8") {
		t.Fatalf("Lookup of a version 1 allocation = %v, %v", a.Address, err)
	}
}
