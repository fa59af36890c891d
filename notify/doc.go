// Package notify holds what the notification observers of enroll share:
// the [Outcome] an event reports ([OutcomeOf]), the [Data] a template
// sees, the delivery counters ([Stats]) and [Multi], which fans one
// enroll.Options.Observer out to several.
//
// The observers themselves are notify/smtpnotify (mail through an SMTP
// relay) and notify/webhook (signed JSON POSTs). Both follow the same
// rules:
//
//   - Observe never blocks and never does I/O: it classifies the event and
//     puts it in a bounded queue (default 1024). When the queue is full the
//     event is dropped and counted (Stats.Dropped); the orchestrator never
//     waits for a relay or a receiver, however slow or dead.
//   - A fixed number of workers (default 2) deliver, one attempt bounded
//     by Options.Timeout, retrying failures that may pass (a network error,
//     a 4xx SMTP reply, an HTTP 5xx or 429: errs codes Unavailable,
//     DeadlineExceeded, ResourceExhausted, OutcomeUnknown) with exponential
//     backoff (Options.Backoff doubling to Options.MaxBackoff, at most
//     Options.Retries times). Other failures (a refused certificate:
//     PermissionDenied; refused credentials: Unauthenticated; a 5xx reply:
//     FailedPrecondition) are given up at once. Either way the event is
//     counted in Stats.Failed, logged at Warn through Options.Logger, and
//     Stats.LastCode/LastError say why.
//   - Close(ctx) stops accepting events and delivers what is queued until
//     ctx is done; then the deliveries in flight are canceled, what is left
//     is counted as dropped, and Close returns DeadlineExceeded (or
//     Canceled). Events observed after Close are dropped.
//   - TLS certificate verification is on; the only way to turn it off is
//     the option DangerouslySkipCertificateVerification, logged at Warn.
//   - Secrets never appear in a mail, a POST, a log line or an error: the
//     events carry none (enroll guarantees it), the relay password and the
//     webhook key are guest.Secret values that print as "[REDACTED]", and
//     the tests search every mail and log line for canary passwords.
//
// # Telemetry
//
// With Options.MeterProvider set, the observers count
// managedvm.notify.sent, managedvm.notify.failed, managedvm.notify.dropped
// and managedvm.notify.retries, with attribute notifier ("smtp" or
// "webhook").
//
// # Outcomes
//
// Four events end an operation, and are what mail reports:
//
//	Enrolled     enroll.JournalSucceeded of an enroll.OpEnroll
//	Failed       enroll.JournalFailed (any Op; Code and Message give the reason)
//	Unenrolled   enroll.JournalSucceeded of an enroll.OpUnenroll
//	CleanedUp    enroll.JournalSucceeded of an enroll.OpCleanup (the VM was deleted)
//
// # Concurrency
//
// Observers and their Stats, Send and Close are safe for concurrent use.
package notify
