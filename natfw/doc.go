// Package natfw is the firewall contract of managedvm: a 1:1 static NAT per
// enrolled VM, plus the inbound ports allowed through it and the management
// source prefixes allowed to use them.
//
// # Rules
//
// A [Rule] belongs to one owner (the VM's key, the same key IPAM allocates
// the public address under). It says:
//
//   - traffic to Public is translated to Local, and Local's outbound
//     traffic leaves as Public (a 1:1 static NAT, both addresses IPv4);
//   - from outside, only Ports are allowed, and only from Sources.
//
// The ports depend on the guest's OS family: [LinuxPorts] (tcp/22, SSH) and
// [WindowsPorts] (tcp/5985 and tcp/5986 for WinRM, tcp/3389 for RDP). A
// [Port] prints and parses as "tcp/22" ([Port.String], [ParsePort]).
//
// [Rule.Validate] says whether a rule is well formed. [Rule.Normalize] sorts
// and de-duplicates the ports, masks, sorts and de-duplicates the source
// prefixes; [Rule.Equal] compares two rules by meaning (after Normalize), so
// "tcp/22, tcp/22" from 10.1.2.3/8 equals "tcp/22" from 10.0.0.0/8.
//
// # The portable type and its drivers
//
// Callers hold a [*Firewall], the portable type; drivers implement the
// small [Driver] interface behind it (the way database/sql's DB sits over
// sql/driver). Driver packages return the portable type from their
// constructors, so host code stays one line:
//
//	fw := memfw.New(nil)                  // *natfw.Firewall
//	fw, err := nftables.New(&opts)        // *natfw.Firewall, error
//	fw := natfw.New(myDriver, &natfw.Options{Logger: log})
//
// For every call, in this order, the Firewall: starts the call's span;
// refuses a call after Close (FailedPrecondition); refuses a context that
// is already done (Canceled, DeadlineExceeded); validates the owner and
// the rule against the limits below (InvalidArgument); calls the driver
// with the rule normalized and copied; copies the rules the driver
// returns; wraps any error exactly once with the operation's name
// ("natfw.EnsureNAT: ..."); ends the span and records the metrics.
// Nothing invalid ever reaches a driver, so every driver accepts and
// refuses exactly the same input.
//
// # Writing a driver
//
// Implement [Driver] with the protocol logic only: no context-done check
// at the start, no validation, no copying of what is returned, no closed
// check, no per-call log line: the Firewall does all of that. Return errs
// errors with an empty Op (errs.New(code, "", msg)) and quote any owner or
// other untrusted value with internal/limit's Quote (drivers outside this
// module: Go-quoted and cut to 64 bytes), never raw. A
// driver may keep the rule EnsureNAT is given, and may return rules that
// share slices with what it keeps as long as it never changes them
// afterwards. Implement io.Closer if the driver holds resources
// (Firewall.Close calls it once), and As(any) bool to offer vendor
// clients beyond the driver itself. Run natfw/natfwtest from the driver's
// tests: it wraps the driver with New and holds it to the whole contract,
// limits included.
//
// # Limits
//
// Enforced by the Firewall, the same for every driver (InvalidArgument,
// nothing changed; the message quotes the value cut to 64 bytes):
//
//	field         limit
//	Owner         1 to MaxOwner (120) bytes of valid UTF-8, no control
//	              characters (limit.Key's rule, shorter: nftables keeps it
//	              in a kernel rule's 256 bytes of userdata); for
//	              EnsureNAT, RemoveNAT and Get alike
//	Description   0 to MaxDescription (120) bytes, same characters
//	Ports         1 to MaxPorts (8) entries as given; tcp or udp, 1-65535
//	Sources       1 to MaxSources (8) entries as given; IPv4 prefixes
//	Public, Local IPv4, different
//
// A rule of MaxPorts ports and MaxSources sources is 3 + 8 x 8 kernel
// rules for nftables, whose netlink batch must fit its socket buffers.
//
// # Desired state
//
// [Firewall.EnsureNAT] is declarative: after it returns nil, the owner's
// rule is exactly the rule given. It creates the rule, replaces the owner's
// different rule (other ports, sources, local or public address,
// description), or does nothing when an equal rule is already in place, so
// it is safe to call again after any failure. [Firewall.RemoveNAT] removes
// the owner's rule and succeeds when there is none. [Firewall.Get] and
// [Firewall.List] return rules in normalized form; List orders them by
// owner.
//
// An address belongs to at most one owner: a rule whose Public or Local
// address is already the Public or Local address of another owner's rule
// is refused with AlreadyExists. The owner's own rule never conflicts with
// its replacement.
//
// # Errors
//
// Errors carry [errs] codes (check them with errs.CodeOf or errors.Is):
//
//   - InvalidArgument: a malformed rule (an owner or description outside
//     the limits; Public or Local not IPv4, or equal; no ports or too many;
//     a port that is not tcp or udp, or port 0; no sources or too many; a
//     source that is not an IPv4 prefix), or an owner outside the limits
//     given to RemoveNAT or Get.
//   - AlreadyExists: an address of the rule is used by another owner.
//   - NotFound: Get of an owner that has no rule.
//   - Canceled / DeadlineExceeded: the context ended. A method called with a
//     context that is already done returns at once and changes nothing.
//   - FailedPrecondition: the Firewall was closed.
//   - Unavailable / OutcomeUnknown: a remote firewall could not be reached
//     (nothing changed) or stopped answering mid-change (it may have changed:
//     call EnsureNAT or RemoveNAT again, they are idempotent).
//
// A call refused with InvalidArgument, AlreadyExists, Canceled or
// DeadlineExceeded changes nothing.
//
// # Telemetry
//
// With Options.TracerProvider set, every call is one span named after the
// operation ("natfw.EnsureNAT", "natfw.RemoveNAT", "natfw.Get",
// "natfw.List", "natfw.Close") with attribute driver; a failed call has
// status Error and attribute error.type, its errs code. With
// Options.MeterProvider set, managedvm.calls and managedvm.errors count
// calls (attributes op, code, driver) and managedvm.call.duration records
// their seconds. With Options.Logger set, every call logs at Debug with
// keys op, code, err, duration. Without them the Firewall does none of
// this work.
//
// # As
//
// [Firewall.As] reaches the driver: a pointer to the driver's type
// (**memfw.Driver, **nftables.Driver) is set to it; other targets go to
// the driver's own As method, documented by each driver.
//
// # Concurrency
//
// Every Firewall is safe for concurrent use. Concurrent EnsureNAT calls that
// want the same address for different owners are serialized: exactly one
// wins, the others get AlreadyExists.
//
// # Implementations
//
// natfw/memfw is an in-memory driver for tests and embedding; natfw/nftables
// programs a Linux gateway. natfw/natfwtest is the conformance suite every
// driver passes. (A driver for a provider's own edge firewall, such as the
// vCloud Director edge gateway, is planned, not written.)
package natfw
