// Package netreq computes the network requirements of a managedvm
// deployment (the firewall matrix operators hand to their network team)
// and probes them from where the library runs.
//
// # The matrix
//
// Derive reads a Config (what the host configured: the providers of
// enroll.Config, its default Policy and named Profiles, the smtpnotify
// relay, the LDAP URLs, the PostgreSQL URLs, the portal URL and the agent
// ports) and returns a Matrix: one Flow per service, source, destination,
// protocol and ports, with why it is needed and whether it is required.
// It does no I/O.
//
//   - Providers: each driver states its own flows through the optional
//     provider.FlowsDriver interface (Provider.Flows); vsphere and ovirt
//     state their API endpoint, memprovider what its Options script. A
//     provider whose driver does not is listed in Matrix.Silent and as a
//     Warn row of Matrix.Report.
//   - Profiles: per profile and OS family, one row per port of
//     Policy.Ports (default natfw.LinuxPorts, natfw.WindowsPorts), from the
//     orchestrator (allowed from Policy.ManagementSources) to the VMs'
//     public addresses (named by their pools). The default Policy counts
//     only when it is set.
//   - Notification: the relay's address, SMTP with STARTTLS or SMTPS.
//   - Authentication: ldap:// (StartTLS, 389) and ldaps:// (636) URLs.
//   - State: PostgreSQL URLs (only host and port are read; an invalid URL
//     is reported without its text, which may hold a password).
//   - Agent: from the VMs to the portal's host on AgentPorts (default 443
//     and 5671).
//
// The matrix prints three ways: Matrix.Report (report rows), WriteTable
// (the reference's columns Service, Source, Destination, Protocol/Ports,
// plus Required and Why) and encoding/json (the struct tags of Matrix and
// Flow).
//
// # The probe
//
// Probe checks every port of every checkable flow (Flow.Checkable: it
// starts at the orchestrator and has a Host) and returns one report row
// per port, in order:
//
//	Kind         after the TCP connect
//	tcp          nothing more
//	https, ldaps, winrm-https, amqps
//	             a TLS handshake, verified
//	smtps        a TLS handshake, verified, then the 220 greeting
//	smtp         the 220 greeting, EHLO, STARTTLS offered, STARTTLS, a verified handshake
//	ldap         the StartTLS extended operation (RFC 4511 4.14), a verified handshake
//	postgresql   an SSLRequest answered 'S', a verified handshake
//	ssh          the identification banner (SSH-2.0-...)
//	rdp          an X.224 connection request answered with a connection confirm
//	winrm-http   nothing more; Warn: not encrypted at the transport
//
// TLS verification uses ProbeOptions.RootCAs (nil: the system roots) and
// the flow's ServerName (Host when empty); it runs inside the handshake,
// so nothing is sent past a certificate that fails it. A passing row says
// the TLS version, the names the certificate carries, its issuer and when
// it expires; one expiring within ExpiryWarning (default 30 days) is Warn.
// Failures say what happened and how to fix it: connection refused, no
// answer within Timeout (packets dropped), a name that does not resolve,
// an untrusted issuer, a certificate for other names, an expired one, a
// missing greeting, a relay without STARTTLS, a directory or database
// refusing TLS. Probe never sends credentials.
//
// A flow that is not checkable from here (from the VMs to the portal, or
// to every VM, which has no single address) is one Warn row whose Detail
// is NotCheckable.
//
// # After an enrollment
//
// VMFlows gives the flows to one enrolled VM through its public address
// (its NAT rule's ports); Reachability(opts) is an enroll.Reachability
// that probes them: set it as enroll.Policy.Reachability and the
// firewall step of each enrollment fails (Unavailable, naming each port
// that did not answer, and rolled back) unless the VM's management ports
// answer through the NAT from the orchestrator's side.
//
// Ports are checked ProbeOptions.Concurrency at a time (default 8), each
// within Timeout (default 5s), all within Deadline (default 30s): ports
// not started by then fail with "not checked before the deadline". Probe
// is safe for concurrent use; it keeps no state between calls.
package netreq
