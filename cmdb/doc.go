// Package cmdb is the contract for the configuration-management database
// managedvm keeps in step with the VMs: one Record per VM, keyed by the
// provider's name and the VM's ID, holding the VM's latest facts, its
// enrollment State (Available, Enrolling, Enrolled, Failed, Unenrolling,
// Retired) and what enrollment set up (public IP, ports).
//
// A CMDB has four calls: Upsert, Get, List with a Filter, and Retire.
// memcmdb is the in-memory implementation; cmdbtest is the conformance
// suite every implementation passes.
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
// The CMDB owns the timestamps: Created on creation, Updated on every
// write, RetiredAt when the record becomes Retired. EnrolledAt is the
// caller's.
//
// # Helpers
//
// State.Valid, Key.Validate, Record.Validate and Filter.Validate check
// input (implementations call them, so every implementation rejects the
// same things); Filter.Match is the one definition of what List returns
// (retired records only when asked for); Key.Compare is List's order;
// Record.Clone is a deep copy, for implementations that keep records in
// memory.
//
// # Errors
//
// InvalidArgument for malformed records, keys and filters; NotFound for a
// missing record; FailedPrecondition wrapping ErrConflict for a revision
// mismatch (check with errors.Is(err, cmdb.ErrConflict)); Canceled and
// DeadlineExceeded for a done context, with nothing written.
//
// # Concurrency
//
// Implementations are safe for concurrent use. Records are values: an
// implementation never keeps or shares the maps and slices of a record it
// is given or returns.
package cmdb
