// Package pgcmdb is a cmdb.CMDB in PostgreSQL, for orchestrator replicas
// that share one CMDB.
//
//	pool, _ := pgxpool.New(ctx, url)
//	if err := pgcmdb.Migrate(ctx, pool); err != nil { ... }
//	db := pgcmdb.New(pool, nil)
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
// As cmdb.CMDB documents: a stale revision wraps cmdb.ErrConflict
// (FailedPrecondition), a missing record is NotFound. A connection error
// before the request was sent is Unavailable, but a server certificate that
// sslmode verify-ca or verify-full refuses is PermissionDenied (retrying
// cannot help); a write whose answer was lost is OutcomeUnknown.
//
// # Concurrency
//
// Upsert is a compare-and-swap on the revision in one statement, so a CMDB
// is safe for concurrent use by any number of goroutines and processes.
// Created, Updated and RetiredAt come from the database's clock.
package pgcmdb
