// Package ipamtest is the conformance suite for ipam.IPAM implementations.
//
// An implementation's tests call [Run] with a [Harness] that makes a fresh,
// empty IPAM for each case:
//
//	func TestConformance(t *testing.T) {
//		ipamtest.Run(t, ipamtest.HarnessFunc(func(t *testing.T) ipam.IPAM {
//			return memipam.New(nil)
//		}))
//	}
//
// The suite checks the contract documented by package ipam: pool creation
// (idempotent, conflicting, invalid), deletion (empty, non-empty, missing),
// allocation (inside the prefix and never an excluded address, idempotent
// per owner, the LocalIP of the NAT relation recorded and updated),
// lookups, idempotent release and reuse of released addresses, exhaustion,
// ordering, context cancellation, and concurrent use (distinct owners never
// share an address, one owner always gets one address, churn keeps the
// books balanced, a pool is never deleted under a live allocation).
//
// Every rejected call is checked for its error code (errs.CodeOf) and for
// having changed nothing: the suite compares every pool and allocation
// before and after.
//
// # Harness
//
// NewIPAM is called once per case, from the case's own goroutine. The IPAM
// it returns must have no pools; anything it needs to tear down (a
// database schema, a temporary directory) is registered with t.Cleanup.
// Harnesses must not share one IPAM between cases. Cases do not call
// t.Parallel.
//
// # Concurrency
//
// Run itself must be called from the test's goroutine. The concurrent cases
// start up to 64 goroutines each against one IPAM; an implementation backed
// by a database should allow that many concurrent calls (or queue them).
package ipamtest
