// Package cmdbtest is the conformance suite every cmdb driver runs.
//
//	func TestConformance(t *testing.T) {
//		cmdbtest.Run(t, cmdbtest.Harness{
//			New: func(t *testing.T) cmdb.Driver { return memcmdb.NewDriver(nil) },
//		})
//	}
//
// Each case gets a new, empty driver from the harness and runs it through
// the portable type (cmdb.New). The cases check
// creation, reads, optimistic concurrency (right revision, stale revision,
// create twice, update of a missing record: the conflict wraps
// cmdb.ErrConflict and changes nothing), NotFound, validation
// (InvalidArgument, nothing stored), List order and every filter field,
// retired records left out by default, Retire (idempotent, any revision,
// bumps the revision so that stale writers conflict, NotFound when
// missing), that records are copied in and out, timestamps owned by the
// store, a done context (Canceled, nothing written), and concurrency: 32
// goroutines incrementing one attribute with retry on conflict end at
// exactly 32, and of 8 concurrent creations of one key exactly one wins.
//
// The limit cases (KeyLimits, RecordLimits, AttributeLimits,
// FilterLimits) try every limited field with empty, max, max in
// multi-byte characters, max+1, NUL, newline, invalid UTF-8 and 16 kB
// values, the counts at their maximum, one more and 16k, and one record
// with every field at its maximum: refused with InvalidArgument, a
// message of at most [MaxMessage] bytes and nothing changed, or stored
// and read back whole. AfterClose checks FailedPrecondition after Close;
// Telemetry checks one span per call, error.type on failures and the
// managedvm.calls / managedvm.errors counters.
//
// # Errors
//
// Every rejected call is checked for its errs code and for having changed
// nothing.
//
// # Concurrency
//
// Cases run one after another; the concurrency cases drive one CMDB from
// many goroutines.
package cmdbtest
