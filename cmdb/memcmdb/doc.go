// Package memcmdb is an in-memory cmdb.CMDB: the embedded default for a
// host application that keeps its configuration items elsewhere (or
// nowhere), and a real, public implementation for tests. It passes the
// cmdbtest conformance suite.
//
// Records are kept by key. Upsert is optimistic: it writes only when the
// record's Revision is the stored one (0 creates), so a read-modify-write
// that lost a race fails with an error wrapping cmdb.ErrConflict instead of
// overwriting the other writer. The CMDB sets Created, Updated and
// RetiredAt from its clock (Options.Now); every write increments Revision.
// Retire works whatever the revision and is idempotent. Records are copied
// in and out: mutating a record given to or returned by the CMDB never
// changes what it stores.
//
// # Errors
//
// Malformed records, keys and filters: errs.InvalidArgument. A revision
// that is not the stored one (creating a record that exists, updating one
// that does not or that someone else wrote since): errs.FailedPrecondition
// wrapping cmdb.ErrConflict. A missing record on Get or Retire:
// errs.NotFound. A done context: errs.Canceled or errs.DeadlineExceeded,
// and nothing is written.
//
// # Concurrency
//
// A CMDB is safe for concurrent use; each call is atomic.
package memcmdb
