// Package cmdbtest is the conformance suite every cmdb.CMDB runs.
//
//	func TestConformance(t *testing.T) {
//		cmdbtest.Run(t, cmdbtest.Harness{
//			New: func(t *testing.T) cmdb.CMDB { return memcmdb.New(nil) },
//		})
//	}
//
// Each case gets a new, empty CMDB from the harness. The cases check
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
