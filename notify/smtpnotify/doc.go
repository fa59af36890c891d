// Package smtpnotify is an enroll.Observer that mails the outcome of each
// operation (enrolled, failed with its reason, unenrolled, cleaned up after
// deletion; see package notify) through an SMTP relay.
//
// # Reaching the relay
//
// [Relay] says where and how:
//
//	port 25    Security: STARTTLS                      (no AUTH)
//	port 587   Security: STARTTLS, Username, Password  (AUTH PLAIN inside TLS)
//	port 465   Security: ImplicitTLS (+ Username, Password)
//
// Mail is never sent in plain text: with STARTTLS the session is
// upgraded right after EHLO, and a relay that does not offer STARTTLS is
// refused (FailedPrecondition). The relay's certificate is verified
// against Relay.RootCAs (nil: the system pool) for Relay.ServerName (empty:
// the host of Relay.Addr); a refused certificate is PermissionDenied and is
// not retried. Relay.DangerouslySkipCertificateVerification turns the
// verification off, for tests only; New logs a warning when it is set.
// The client is the standard library's net/smtp.
//
// # Mail
//
// One mail per outcome event, to Options.ProfileRecipients[event.Profile]
// when the profile has an entry, else to Options.Recipients; an event
// without recipients, or whose outcome is not in Options.Outcomes, is not
// queued. Subject and body are text/template sources over notify.Data per
// outcome (Options.Templates; the defaults name the VM, the profile, the
// addresses or the failed step and reason, the journal and the time). The
// body is sent as text/plain; charset=utf-8, quoted-printable. The rendered
// subject is made one header line (control characters become spaces, cut
// at MaxSubject bytes, RFC 2047-encoded when not ASCII), so a value inside
// an event can never add a header. Headers X-Managedvm-Outcome and
// X-Managedvm-Journal let a mailbox filter.
//
// # Limits
//
// New refuses, with InvalidArgument (messages quote at most 64 bytes of a
// value):
//
//	relay address          host:port, printable, at most 128 bytes
//	from, recipients       bare user@domain, printable ASCII, at most MaxAddress (254) bytes
//	recipient lists        at most MaxRecipients (100) addresses
//	profile names          1-128 bytes, printable
//	templates              must parse, at most MaxTemplate (16 KiB) each, and render a sample event
//
// A body rendering to more than MaxBody (256 KiB) is not sent
// (InvalidArgument, counted as failed).
//
// # Errors
//
// Delivery happens in the background; its errors are logged, counted
// (notify.Stats) and returned by [Notifier.Send], the synchronous single
// attempt for a test mail: PermissionDenied for a refused certificate,
// Unauthenticated for refused relay credentials (reply 530, 534, 535),
// Unavailable for a network failure or a 4xx reply (retried),
// FailedPrecondition for another 5xx reply or a relay without STARTTLS,
// OutcomeUnknown when the connection broke during DATA (retried like
// Unavailable: a notification may then arrive twice, never not at all
// for that reason).
//
// # Tests
//
// The tests run a real SMTP server in-process on loopback
// (github.com/emersion/go-smtp, internal/fakes/smtprelay) rather than a
// system postfix: no daemon to install or start, and the real wire
// protocol with STARTTLS, implicit TLS and AUTH PLAIN, each testable
// per test with its own certificate authority.
package smtpnotify
