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
//   - InvalidArgument: a malformed rule (no owner; Public or Local not
//     IPv4, or equal; no ports; a port that is not tcp or udp, or port 0; no
//     sources; a source that is not an IPv4 prefix).
//   - AlreadyExists: an address of the rule is used by another owner.
//   - NotFound: Get of an owner that has no rule.
//   - Canceled / DeadlineExceeded: the context ended. A method called with a
//     context that is already done returns at once and changes nothing.
//   - Unavailable / OutcomeUnknown: a remote firewall could not be reached
//     (nothing changed) or stopped answering mid-change (it may have changed:
//     call EnsureNAT or RemoveNAT again, they are idempotent).
//
// A call refused with InvalidArgument, AlreadyExists, Canceled or
// DeadlineExceeded changes nothing.
//
// # Concurrency
//
// Every Firewall is safe for concurrent use. Concurrent EnsureNAT calls that
// want the same address for different owners are serialized: exactly one
// wins, the others get AlreadyExists.
//
// # Implementations
//
// natfw/memfw is an in-memory Firewall for tests and embedding; an nftables
// driver programs a Linux gateway; the vCloud Director edge gateway lives
// with provider/vcd. natfw/natfwtest is the conformance suite every
// implementation passes.
package natfw
