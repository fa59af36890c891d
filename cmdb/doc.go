// Package cmdb is the contract for the configuration-management database
// managedvm keeps in step with the VMs: one Record per VM, keyed by the
// provider's name and the VM's ID, holding the VM's latest facts, its
// enrollment State (Available, Enrolling, Enrolled, Failed, Unenrolling,
// Retired) and what enrollment set up (public IP, ports).
//
// A CMDB has five calls: Upsert, UpsertMany (a batch of Upserts), Get,
// List with a Filter, and Retire.
// memcmdb is the in-memory driver, pgcmdb the PostgreSQL one; cmdbtest is
// the conformance suite every driver passes.
//
// # The portable type and its drivers
//
// Callers hold a [*CMDB], the portable type; drivers implement the small
// [Driver] interface behind it. Driver packages return the portable type
// from their constructors, so host code stays one line:
//
//	db := memcmdb.New(nil)            // *cmdb.CMDB
//	db := pgcmdb.New(pool, nil)       // *cmdb.CMDB
//	db := cmdb.New(myDriver, &cmdb.Options{Logger: log})
//
// For every call, in this order, the CMDB: starts the call's span;
// refuses a call after Close (FailedPrecondition); refuses a context that
// is already done (Canceled, DeadlineExceeded); validates the record, key
// or filter against the limits below (InvalidArgument); calls the driver;
// deep-copies the records the driver
// returns (Upsert returns the caller's own record with the four
// bookkeeping fields the driver set: Revision, Created, Updated,
// RetiredAt); wraps any error exactly once with the operation's name
// ("cmdb.Upsert: ..."); ends the span and records the metrics. Nothing
// invalid ever reaches a driver, so every driver accepts and refuses
// exactly the same input, and a driver never has to turn an oversized
// value into a database error: pgcmdb never answers Internal for one.
//
// # Writing a driver
//
// Implement [Driver] with the storage logic only: optimistic concurrency
// on Revision, the timestamps, Filter.Match and Key.Compare order. No
// context-done check at the start, no validation, no copying of returned
// records, no closed check, no per-call log line: the CMDB does all of
// that. Return errs errors with an empty Op and quote keys and other
// untrusted values with internal/limit's Quote (drivers outside this
// module: Go-quoted, cut to 64 bytes). The record Upsert is given shares
// its maps and slices with the caller: a driver that keeps it keeps a deep
// copy (Record.Clone). A driver may return records sharing maps and slices
// with what it keeps as long as it never changes them afterwards. Implement io.Closer
// if the driver holds resources (CMDB.Close calls it once), and As(any)
// bool for vendor clients beyond the driver itself. Implement
// [BatchDriver] (UpsertMany) if the store can write many records in one
// round trip; without it the CMDB's UpsertMany calls Upsert once per
// record. Run cmdbtest from the driver's tests: it wraps the driver with
// New.
//
// # Limits
//
// Enforced by the CMDB (and by Key.Validate, Record.Validate and
// Filter.Validate), the same for every driver: InvalidArgument, nothing
// changed, the message quoting the value cut to 64 bytes. Name, Key and
// Label are 1 (0 where "or empty") to 128, 255 and 128 bytes of valid
// UTF-8 without control characters; Text is 0 to 4096 bytes of valid UTF-8
// without NUL (newlines allowed).
//
//	field                             limit
//	Key.Provider                      Name
//	Key.VMID                          Key
//	VM.ID                             Key, or empty
//	VM.Name, VM.Zone                  Name, or empty
//	VM.Power, VM.Guest.Family         Label, or empty
//	VM.Annotation, VM.Guest.OSName,   Text
//	  OSVersion, Hostname,
//	  ToolsVersion, ToolsStatus,
//	  Reason, FailedStep
//	Attributes, VM.Attributes         at most MaxAttributes (64) entries
//	                                  each; keys Label, values Text
//	Ports, VM.Guest.IPs               at most MaxItems (64) entries each
//	State                             one of the six states
//	Revision                          0 or more
//	Filter.Provider, Filter.Zone      Name, or empty
//	Filter.States                     at most MaxFilterStates (16), each
//	                                  one of the six states
//	UpsertMany's records              at most MaxBatch (1000), distinct
//	                                  keys, each a valid record
//
// # Optimistic concurrency
//
// Every record carries a Revision. Upsert writes only when the record's
// Revision equals the stored one (0 to create) and returns the record as
// stored with the next revision, so the Indexer and the orchestrator can
// both read-modify-write a record without locking and without losing each
// other's changes: the loser gets an error wrapping ErrConflict, reads the
// record again and reapplies its change. Retire works whatever the
// revision (the VM is gone, nothing to argue about), is idempotent, and
// bumps the revision so that a writer that read the record before it was
// retired conflicts instead of resurrecting it.
//
// # Batches
//
// UpsertMany writes many records as that many Upserts would, each on its
// own: a record whose revision is stale is not written and the others
// are; the error is then a *BatchError saying which records were not
// written and why (each wrapping ErrConflict). A batch with one invalid
// record, a key twice or more than MaxBatch records is refused whole. It
// is one driver call: one statement for pgcmdb, one lock for memcmdb (so
// a reader sees all of a batch's writes or none); other drivers without
// BatchDriver get Upsert in a loop. The Indexer writes its initial sync
// this way, a page of VMs per call.
//
// The CMDB owns the timestamps: Created on creation, Updated on every
// write, RetiredAt when the record becomes Retired. EnrolledAt is the
// caller's.
//
// # Helpers
//
// State.Valid, Key.Validate, Record.Validate and Filter.Validate check
// input (the CMDB calls them before any driver runs, so every driver
// rejects the same things); Filter.Match is the one definition of what List returns
// (retired records only when asked for); Key.Compare is List's order;
// Record.Clone is a deep copy, for implementations that keep records in
// memory.
//
// # Errors
//
// InvalidArgument for malformed records, keys and filters, or ones beyond
// the limits; NotFound for a missing record; FailedPrecondition wrapping
// ErrConflict for a revision mismatch (check with errors.Is(err,
// cmdb.ErrConflict); for UpsertMany, a *BatchError, reached with
// errors.As, names the records not written); FailedPrecondition after Close; Canceled and
// DeadlineExceeded for a done context, with nothing written.
//
// # Telemetry
//
// With Options.TracerProvider set, every call is one span named after the
// operation ("cmdb.Upsert", "cmdb.UpsertMany", "cmdb.Get", "cmdb.List",
// "cmdb.Retire", "cmdb.Close"; a batch is one span and one count) with attribute driver; a failed call has status Error and
// attribute error.type, its errs code. With Options.MeterProvider set,
// managedvm.calls and managedvm.errors count calls (attributes op, code,
// driver) and managedvm.call.duration records their seconds. With
// Options.Logger set, every call logs at Debug with keys op, code, err,
// duration. Without them the CMDB does none of this work.
//
// # As
//
// [CMDB.As] reaches the driver: a pointer to the driver's type
// (**memcmdb.Driver, **pgcmdb.Driver) is set to it; other targets go to
// the driver's own As method, documented by each driver.
//
// # Concurrency
//
// A CMDB is safe for concurrent use when its driver is (memcmdb's and
// pgcmdb's are). Records are values: the CMDB never keeps or shares the
// maps and slices of a record it is given or returns.
package cmdb
