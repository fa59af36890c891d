// Package errs is the one error vocabulary of managedvm.
//
// Every error a managedvm package returns carries a [Code]: drivers map their
// vendor's failures (SOAP faults, HTTP statuses, SQL states, exit codes) to a
// code once, and callers decide what to do from the code alone.
//
// # Using codes
//
// A Code is itself an error value, so it works as a sentinel with the
// standard library:
//
//	if errors.Is(err, errs.NotFound) { ... }
//
// [CodeOf] gives the code of any error, including errors that did not come
// from managedvm: context.Canceled maps to [Canceled],
// context.DeadlineExceeded to [DeadlineExceeded], nil to [OK], and anything
// else that carries no code to [Unknown].
//
// # OutcomeUnknown
//
// [OutcomeUnknown] means "the side effect may have happened": a request was
// sent and no answer came back, or the answer was lost. A caller must
// reconcile (look at the state, then decide) and never blindly retry a
// non-idempotent call. Drivers report [Unavailable] only when they know the
// remote side did nothing, in the spirit of database/sql/driver.ErrBadConn.
//
// # Building errors
//
// [New] and [Errorf] build an [*Error] with a code, an operation name and a
// message; [Wrap] adds a code to an existing error without losing it, so
// errors.As still finds the vendor's error underneath (the escape hatch).
// Messages never contain secrets: passwords, keys and tokens are never
// formatted into errors anywhere in managedvm.
//
// # Concurrency
//
// Errors are immutable values, safe to share between goroutines.
package errs
