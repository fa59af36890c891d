// Package pgipam is an IPAM driver that keeps the pools in PostgreSQL, so
// that many orchestrator processes allocate public addresses from one
// truth.
//
//	pool, _ := pgxpool.New(ctx, url)
//	if err := pgipam.Migrate(ctx, pool); err != nil { ... }
//	m, err := pgipam.Open(ctx, pool, nil) // *ipam.IPAM
//
// [Open] checks that Migrate has made the schema (FailedPrecondition if
// not) and returns the portable *ipam.IPAM over a [Driver]; [NewDriver]
// returns the bare driver without that check, for a host that wraps it
// before handing it to ipam.New. The checks, limits, error wrapping, copies
// and telemetry of package ipam apply; this package is only the SQL.
//
// # Options and escape hatches
//
// [Options] has Logger, and the TracerProvider and MeterProvider that Open
// passes to ipam.Options. The IPAM's As reaches the connection pool (a
// **pgxpool.Pool target) and the driver (a **pgipam.Driver target). The
// caller owns the connection pool: the IPAM's Close leaves it open.
//
// # Schema and migrations
//
// [Migrate] creates the tables (ipam_pools, ipam_excluded, ipam_spans,
// ipam_allocations, ipam_free; versions in ipam_schema_migrations) in the
// connection's search_path. It is explicit (nothing happens at import or in
// Open), versioned, idempotent, and safe when several processes migrate at
// once: they take turns on a transaction-level advisory lock. Prefixes are
// cidr, addresses inet.
//
// # Allocation
//
// A pool row holds a free-address cursor: slot i is the pool's i-th
// allocatable address, and the slot-to-address mapping is computed inside
// the statement from the pool's excluded spans (network, broadcast,
// gateway, reserved ranges). A new owner's allocation is one statement that
// increments the cursor and inserts the allocation: the pool row is locked
// only from the increment to the commit, inside the server, and nothing
// ever scans the pool. Once the cursor reached the end, released addresses
// are reused oldest first from ipam_free, taken with FOR UPDATE SKIP LOCKED
// so that concurrent allocators never wait on each other; a pool is
// ResourceExhausted only when every address is allocated, so an allocation
// that finds the released addresses all taken by other transactions at
// that instant tries again (briefly, then Unavailable). Unique
// constraints on (pool, owner) and (pool, address) make a duplicate
// impossible whatever the code above them does; a concurrent allocation
// for the same owner loses on the first and is answered with the winner's
// address. A pool of any size (up to a /8) costs a handful of rows.
//
// Measured on 2 shared cores with the server on the same machine
// (BenchmarkAllocate, one /16): 3,700 allocations/s with one client,
// 6,000-7,000 with 4 or 16, 3,000 with 64. At 64 clients most backends
// wait for the pool row's lock, but the machine's CPU is the limit: a
// cursor split into stripes taken with SKIP LOCKED removed the waits and
// left the throughput where it was (and cost 12% with one client), and a
// trivial INSERT loses as much from 16 to 64 clients there.
//
// # Errors
//
// Errors carry errs codes as package ipam documents them. Database errors map
// as follows: a unique violation is AlreadyExists; deadlocks and
// serialization failures are retried inside the driver, then Unavailable;
// a connection error before the request was sent is Unavailable, except a
// server certificate that sslmode verify-ca or verify-full refuses, which
// is PermissionDenied (retrying cannot help); a write whose answer was lost (the commit may have happened) is OutcomeUnknown:
// calling Allocate or Release again reconciles it, since both are
// idempotent. DeletePool of a pool with allocations is FailedPrecondition:
// the foreign key of the allocations refuses it, so a pool never goes with
// an address in it.
//
// No secret is stored: owners, addresses and pool definitions only.
//
// # Concurrency
//
// The driver is safe for concurrent use, and any number of drivers in any
// number of processes may share one database. Timestamps come from the database's
// clock, one clock for every replica.
package pgipam
