// Package natfwtest is the conformance suite for natfw drivers. Every
// driver (natfw/memfw, natfw/nftables) runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		natfwtest.Run(t, natfwtest.Harness{
//			New: func(t *testing.T) natfw.Driver { return memfw.NewDriver() },
//		})
//	}
//
// The suite relies on the natfw contract only, and always runs the driver
// through the portable type (natfw.New). Each case gets a fresh, empty
// driver from the Harness, uses public addresses from 203.0.113.0/24
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
//   - OwnerLimits, DescriptionLimits, CountLimits: empty, max, max in
//     multi-byte characters, max+1, NUL, newline, invalid UTF-8 and 16 kB
//     owners (EnsureNAT, Get, RemoveNAT) and descriptions; MaxPorts and
//     MaxSources entries, one more, 16k: InvalidArgument with a message of
//     at most [MaxMessage] bytes and nothing changed, or accepted and
//     round-tripped.
//   - AfterClose: every method after Close is FailedPrecondition.
//   - Telemetry: with an in-memory TracerProvider and MeterProvider, one
//     span per call named after the operation, error.type the errs code of
//     a failure, managedvm.calls and managedvm.errors counted by op and
//     code.
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
