// Package memcmdb is an in-memory cmdb driver: the embedded default for a
// host application that keeps its configuration items elsewhere (or
// nowhere), and a real, public implementation for tests. It passes the
// cmdbtest conformance suite.
//
// New returns the portable *cmdb.CMDB over a fresh [Driver]; NewDriver
// returns the bare Driver (to wrap, for example with fault injection,
// before cmdb.New). Options.Now is the Driver's clock; Logger,
// TracerProvider and MeterProvider go to cmdb.New. The Driver itself logs
// nothing.
//
// # As
//
// The CMDB's As reaches the *Driver, whose Len counts the stored records:
//
//	var d *memcmdb.Driver
//	if db.As(&d) {
//		n := d.Len()
//	}
//
// Records are kept by key. Upsert is optimistic: it writes only when the
// record's Revision is the stored one (0 creates), so a read-modify-write
// that lost a race fails with an error wrapping cmdb.ErrConflict instead of
// overwriting the other writer. The CMDB sets Created, Updated and
// RetiredAt from its clock (Options.Now); every write increments Revision.
// Retire works whatever the revision and is idempotent. UpsertMany (the
// cmdb.BatchDriver capability) writes a batch under one lock, at one
// instant. Records are copied
// in and out (by the portable type): mutating a record given to or
// returned by the CMDB never changes what it stores.
//
// # Errors
//
// Malformed records, keys and filters, or ones beyond cmdb's limits:
// errs.InvalidArgument (refused by the portable type). A revision
// that is not the stored one (creating a record that exists, updating one
// that does not or that someone else wrote since): errs.FailedPrecondition
// wrapping cmdb.ErrConflict. A missing record on Get or Retire:
// errs.NotFound. A done context: errs.Canceled or errs.DeadlineExceeded,
// and nothing is written.
//
// # Concurrency
//
// A Driver, and the CMDB over it, is safe for concurrent use; each call is
// atomic.
package memcmdb
