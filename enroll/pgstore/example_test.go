package pgstore_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/cmdb/pgcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/pgstore"
	"github.com/managedvm/managedvm/ipam/pgipam"
)

// Wiring an orchestrator replica to PostgreSQL: the Store, the IPAM and the
// CMDB share one database (one schema each, or all in one), so replicas
// coordinate through it. After a crash, any replica's Resume finishes the
// crashed one's work once its leases expire. (It needs a server, so it is
// compiled but not run: TestTwoOrchestratorProcesses runs it for real.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("MANAGEDVM_PG_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	for _, migrate := range []func(context.Context, *pgxpool.Pool) error{pgstore.Migrate, pgipam.Migrate, pgcmdb.Migrate} {
		if err := migrate(ctx, pool); err != nil {
			log.Fatal(err)
		}
	}
	addrs, err := pgipam.Open(ctx, pool, nil)
	if err != nil {
		log.Fatal(err)
	}
	cfg := enroll.Config{
		Store: pgstore.New(pool, nil),
		IPAM:  addrs,
		CMDB:  pgcmdb.New(pool, nil),
		// Providers, Firewall, Policy, Configurator, Credentials: as usual.
	}
	o, err := enroll.New(cfg, &enroll.Options{Instance: "replica-1"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := o.Resume(ctx); err != nil {
		log.Fatal(err)
	}
}
