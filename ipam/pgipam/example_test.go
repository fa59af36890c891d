package pgipam_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/pgipam"
)

// Wiring the PostgreSQL IPAM: migrate once at start-up, then allocate.
// (It needs a server, so it is compiled but not run: the package's tests
// run the same calls against MANAGEDVM_PG_URL.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("MANAGEDVM_PG_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := pgipam.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	m, err := pgipam.Open(ctx, pool, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.CreatePool(ctx, ipam.Pool{Name: "az1", Prefix: netip.MustParsePrefix("203.0.113.0/24"),
		Gateway: netip.MustParseAddr("203.0.113.1")}); err != nil {
		log.Fatal(err)
	}
	a, err := m.Allocate(ctx, ipam.Request{Pool: "az1", Owner: "vsphere-prod/4211-aaaa", LocalIP: netip.MustParseAddr("10.1.0.5")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Address, "->", a.LocalIP)
}
