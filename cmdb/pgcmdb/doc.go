// Package pgcmdb is a cmdb driver in PostgreSQL, for orchestrator
// replicas that share one CMDB.
//
//	pool, _ := pgxpool.New(ctx, url)
//	if err := pgcmdb.Migrate(ctx, pool); err != nil { ... }
//	db := pgcmdb.New(pool, nil) // *cmdb.CMDB
//
// New returns the portable *cmdb.CMDB over a [Driver]; NewDriver returns
// the bare Driver. Options holds only the three telemetry fields, passed
// to cmdb.New. The portable type validates every record, key and filter
// first (cmdb's limits), so no value too long for an index or holding a
// NUL ever reaches the server: an oversized value is InvalidArgument,
// never Internal.
//
// # As
//
// The CMDB's As reaches the *Driver, whose Pool returns the pgxpool.Pool.
//
// # Schema and migrations
//
// [Migrate] creates cmdb_records (versions in cmdb_schema_migrations) in
// the connection's search_path: explicit, versioned, idempotent, and safe
// when several processes migrate at once (advisory lock). A record is a
// row keyed by (provider, vm_id) with its state, zone, revision and
// timestamps as columns and the rest as JSON.
//
// # Errors
//
// As the cmdb package documents: a stale revision wraps cmdb.ErrConflict
// (FailedPrecondition), a missing record is NotFound. A connection error
// before the request was sent is Unavailable, but a server certificate that
// sslmode verify-ca or verify-full refuses is PermissionDenied (retrying
// cannot help); a write whose answer was lost is OutcomeUnknown.
//
// # Batches
//
// The Driver has cmdb's BatchDriver capability: UpsertMany writes a whole
// batch (up to cmdb.MaxBatch records) in one statement (the records as
// arrays, unnest, an INSERT ... ON CONFLICT DO NOTHING for the new ones
// and an UPDATE ... WHERE revision = the one given for the others, with
// Upsert's bookkeeping), plus one query for the stored revisions of the
// records not written, when some were not. The statement is atomic; its
// rows are sent in key order, so batches over the same records take their
// locks in one order.
//
// # Concurrency
//
// Upsert is a compare-and-swap on the revision in one statement, so a CMDB
// (and its Driver) is safe for concurrent use by any number of goroutines
// and processes.
// Created, Updated and RetiredAt come from the database's clock.
package pgcmdb
