// Package memfw is an in-memory natfw driver: a full implementation of the
// contract that keeps its rules in a map. Host applications use it in
// their tests and wherever no real firewall is programmed; it passes the
// natfw/natfwtest conformance suite.
//
// New returns the portable *natfw.Firewall over a fresh Driver, which is
// what hosts hold:
//
//	fw := memfw.New(nil) // *natfw.Firewall
//
// The portable type validates, copies rules in and out (a caller changing
// a rule's slices after EnsureNAT, or the slices of a rule returned by Get
// or List, changes nothing stored) and instruments every call; the Driver
// holds the rules only. NewDriver returns a bare Driver, for wrapping (for
// example with fault injection) before natfw.New.
//
// # As
//
// The portable Firewall's As reaches the *Driver, whose [Driver.Allowed]
// evaluates the rules as a NAT gateway's packet filter would, so tests can
// assert what traffic an enrollment lets through:
//
//	var d *memfw.Driver
//	if fw.As(&d) {
//		local, ok := d.Allowed(adminAddr, publicAddr, natfw.Port{Protocol: natfw.TCP, Number: 22})
//	}
//
// # Options
//
// Options holds the three telemetry fields (Logger, TracerProvider,
// MeterProvider), passed to natfw.New. The Driver itself logs nothing.
//
// # Errors
//
// As the natfw contract says: InvalidArgument for a malformed rule or one
// beyond the limits (refused by the portable type), AlreadyExists when the
// rule's Public or Local address is the Public or Local address of another
// owner's rule, NotFound from Get, Canceled or DeadlineExceeded when the
// context is already done, FailedPrecondition after Close. A refused call
// changes nothing. memfw never returns Unavailable or OutcomeUnknown; wrap
// the Driver with internal/fakes to inject them.
//
// # Concurrency
//
// A Driver, and the Firewall over it, is safe for concurrent use; every
// method is atomic.
package memfw
