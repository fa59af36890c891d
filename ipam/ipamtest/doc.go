// Package ipamtest is the conformance suite for ipam.Driver
// implementations.
//
// A driver's tests call [Run] with a [Harness] that makes a fresh, empty
// driver for each case; the suite runs every case through ipam.New, the
// portable type callers hold:
//
//	func TestConformance(t *testing.T) {
//		ipamtest.Run(t, ipamtest.HarnessFunc(func(t *testing.T) ipam.Driver {
//			return memipam.NewDriver(nil)
//		}))
//	}
//
// The suite checks the contract documented by package ipam: pool creation
// (idempotent, conflicting, invalid), deletion (empty, non-empty, missing),
// allocation (inside the prefix and never an excluded address, idempotent
// per owner, the LocalIP of the NAT relation recorded and updated),
// lookups, idempotent release and reuse of released addresses, exhaustion,
// ordering, context cancellation, concurrent use (distinct owners never
// share an address, one owner always gets one address, churn keeps the
// books balanced, a pool is never deleted under a live allocation), the
// limits of package ipam (every pool name and owner argument of every call
// given an empty, one-byte-too-long, NUL, newline, DEL, C1-control,
// invalid UTF-8 and 16 kB value is InvalidArgument with a message of at
// most 300 bytes and changes nothing; values of exactly the maximum length,
// multi-byte ones included, work everywhere; names are bytes; at most
// ipam.MaxReserved reserved ranges; no zoned local address), calls after
// Close, and telemetry (one span per call with error.type the errs code,
// managedvm.calls / managedvm.errors / managedvm.call.duration, and the
// pool gauges).
//
// Every rejected call is checked for its error code (errs.CodeOf) and for
// having changed nothing: the suite compares every pool and allocation
// before and after.
//
// # Harness
//
// NewDriver is called once per case, from the case's own goroutine. The
// driver it returns must have no pools; anything it needs to tear down (a
// database schema, a temporary directory) is registered with t.Cleanup.
// Harnesses must not share one driver between cases. Cases do not call
// t.Parallel.
//
// # Concurrency
//
// Run itself must be called from the test's goroutine. The concurrent cases
// start up to 64 goroutines each against one IPAM; an implementation backed
// by a database should allow that many concurrent calls (or queue them).
package ipamtest
