// Package pgstore is an enroll.Store driver in PostgreSQL: the journals, per-VM
// exclusivity, leases and Indexer cursors that several orchestrator
// processes share to coordinate.
//
//	pool, _ := pgxpool.New(ctx, url)
//	if err := pgstore.Migrate(ctx, pool); err != nil { ... }
//	o, _ := enroll.New(enroll.Config{..., Store: pgstore.New(pool, nil)}, opts)
//
// New returns the portable *enroll.Store over this package's driver (which
// does the validation, error wrapping and telemetry for it; Options carries
// the Logger, TracerProvider and MeterProvider through); NewDriver returns
// the bare enroll.StoreDriver. Store.As reaches the *pgxpool.Pool (a
// **pgxpool.Pool target).
//
// # Schema and migrations
//
// [Migrate] creates enroll_journals and enroll_cursors (versions in
// enroll_schema_migrations) in the connection's search_path. It is
// explicit, versioned, idempotent, and safe when several processes migrate
// at once (advisory lock).
//
// # Guarantees
//
//   - Idempotency keys: a journal's ID is the request's key and the
//     primary key; a second CreateJournal with it wraps
//     enroll.ErrJournalExists.
//   - Per-VM exclusivity: a partial unique index allows one open journal
//     (running or compensating) per VM across every process; a second
//     wraps enroll.ErrVMBusy.
//   - Optimistic concurrency: UpdateJournal is a compare-and-swap on the
//     revision in one statement; a stale revision wraps
//     enroll.ErrJournalConflict. The lease (Holder, LeaseExpires) is
//     written by the orchestrator through these updates, so a takeover of
//     an expired lease and a late write of the crashed holder cannot both
//     succeed.
//   - No secrets: the journal is stored as JSON of enroll.Journal, which
//     holds the guest user name but never a password or key.
//
// # Errors
//
// NotFound, InvalidArgument, AlreadyExists and FailedPrecondition as the
// Store contract says. Deadlocks are retried inside the driver; a
// connection error before the request was sent is Unavailable (but a server
// certificate that sslmode verify-ca or verify-full refuses is
// PermissionDenied: retrying cannot help); a write whose answer was lost is
// OutcomeUnknown (read the journal again: its
// revision tells whether the write happened).
//
// # Concurrency
//
// A Store is safe for concurrent use by any number of goroutines and
// processes. Created and Updated come from the database's clock.
package pgstore
