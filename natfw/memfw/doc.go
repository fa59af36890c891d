// Package memfw is an in-memory natfw.Firewall: a full implementation of
// the contract that keeps its rules in a map. Host applications use it in
// their tests and wherever no real firewall is programmed; it passes the
// natfw/natfwtest conformance suite.
//
// Rules are stored normalized (natfw.Rule.Normalize) and copied in and out,
// so a caller changing a rule's slices after EnsureNAT, or the slices of a
// rule returned by Get or List, changes nothing stored.
//
// [Firewall.Allowed] evaluates the rules as a NAT gateway's packet filter
// would, so tests can assert what traffic an enrollment lets through:
//
//	local, ok := fw.Allowed(adminAddr, publicAddr, natfw.Port{Protocol: natfw.TCP, Number: 22})
//
// # Errors
//
// As the natfw contract says: InvalidArgument for a malformed rule,
// AlreadyExists when the rule's Public or Local address is the Public or
// Local address of another owner's rule, NotFound from Get, and Canceled or
// DeadlineExceeded when the context is already done. A refused call changes
// nothing. memfw never returns Unavailable or OutcomeUnknown; wrap it with
// internal/fakes to inject them.
//
// # Concurrency
//
// A Firewall is safe for concurrent use; every method is atomic.
package memfw
