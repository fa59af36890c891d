// Package natfwtest is the conformance suite for natfw.Firewall
// implementations. Every implementation (natfw/memfw, the nftables driver,
// the vCloud Director edge gateway) runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		natfwtest.Run(t, natfwtest.Harness{
//			New: func(t *testing.T) natfw.Firewall { return memfw.New(nil) },
//		})
//	}
//
// The suite relies on the natfw contract only. Each case gets a fresh,
// empty Firewall from the Harness, uses public addresses from 203.0.113.0/24
// and local addresses from 10.0.0.0/16, asserts the error code
// (errs.CodeOf) of every call, and after every refused call asserts that
// nothing changed.
//
// # Cases
//
//   - EnsureCreates, EnsureSameRuleIsNoop (also when spelled differently),
//     EnsureReplaces (ports, protocol, sources, local, public, description),
//     EnsureReplaceFreesOldAddresses.
//   - Remove, RemoveMissingIsNoop, GetNotFound, RemovedAddressesAreFree.
//   - PublicInUse, LocalInUse, AddressInUseInOtherRole,
//     ConflictingReplaceKeepsOldRule: AlreadyExists, nothing changes.
//   - Invalid/*: every kind of malformed rule, new or replacing an existing
//     one: InvalidArgument, nothing changes.
//   - ListOrderedAndNormalized, ReturnedRulesAreCopies.
//   - ConcurrentDistinctRules, ConcurrentSamePublic (exactly one of
//     [Concurrency] owners wins the address), ConcurrentReplaceSameOwner.
//   - Canceled, DeadlineExceeded: a context already done fails every method
//     with its code and changes nothing.
//
// # Errors
//
// Run reports failures through t; it returns nothing.
//
// # Concurrency
//
// Run's cases run one after another; the concurrency cases start
// [Concurrency] goroutines against one Firewall.
package natfwtest
