// Package webhook is an enroll.Observer that POSTs events as JSON to
// configured URLs, each signed with HMAC-SHA256 so that a receiver can
// prove it came from this orchestrator and is fresh.
//
// # What is posted
//
// By default the events that end an operation (enroll.JournalSucceeded,
// enroll.JournalFailed; Options.Kinds chooses others, step progress
// included). One POST per event and URL, Content-Type application/json,
// the body a [Payload]: id, time, kind, outcome (enrolled, failed,
// unenrolled, cleaned-up), journal, op, provider, vm_id, profile, step,
// code, message (cut at MaxMessage bytes), attempt. Events carry no
// secrets. Redirects are not followed; a 2xx reply is success; 429 and 5xx
// are retried with backoff, like network failures (Unavailable); 401 and
// 403 are PermissionDenied and other replies FailedPrecondition, not
// retried. The queue, workers, retries, Stats and Close behave as package
// notify describes: Observe never blocks.
//
// # Signature
//
// Every POST has these headers:
//
//	X-Managedvm-Timestamp   Unix seconds at signing (HeaderTimestamp)
//	X-Managedvm-Signature   "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)) (HeaderSignature)
//	X-Managedvm-Event       the event kind (HeaderEvent)
//	X-Managedvm-Delivery    the payload id, the same on every retry and URL (HeaderDelivery)
//
// A receiver verifies, before it trusts anything in the body:
//
//  1. read the raw body (limit it: 64 KiB is the most this package sends);
//  2. compute hex(HMAC-SHA256(secret, timestamp + "." + body)) with the
//     timestamp header exactly as received, prefix "v1=", and compare it to
//     the signature header in constant time (hmac.Equal);
//  3. refuse a timestamp more than a few minutes from its clock (a
//     replayed old request), and a Delivery ID it has already seen within
//     that window.
//
// [Verify] does steps 2 and 3 (the timestamp part) for a Go receiver; the
// example shows it.
//
// # TLS
//
// URLs must be https:// (http:// only with Options.AllowPlainHTTP: the
// signature still authenticates, but anyone on the path reads the
// events). Certificates are verified against Options.RootCAs (nil: the
// system pool); a refused certificate is PermissionDenied and is not
// retried. Options.DangerouslySkipCertificateVerification turns the
// verification off, for tests only; New logs a warning. The environment's
// HTTP proxy settings are not used.
//
// # Limits
//
// New refuses, with InvalidArgument: no URL or more than MaxURLs (16); a
// URL longer than MaxURL (2048) bytes, not printable ASCII, not absolute,
// with user information or a fragment; a secret shorter than MinSecret
// (16) or longer than MaxSecret (1024) bytes; an event kind that is not
// 1-128 printable bytes. A URL's query is left out of error messages (it
// may hold a token).
package webhook
