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
// # One rule: what is this error's code
//
// An error has exactly one code, and [CodeOf], [Is] and errors.Is give the
// same answer for it:
//
//  1. An error that holds [OutcomeUnknown] anywhere (wrapped at any depth,
//     one member of a joined error, a typed error) is OutcomeUnknown. No
//     wrapping can turn "the side effect may have happened" into a code a
//     retry loop would act on.
//  2. Otherwise the outermost code wins: the layer closest to the caller
//     knows most about what failed. Wrapping a NotFound in Internal gives
//     Internal, and errors.Is(err, errs.NotFound) is then false. A joined
//     error's members count in order, so errors.Join(a, b) has a's code
//     when neither holds OutcomeUnknown.
//  3. context.Canceled and context.DeadlineExceeded carry Canceled and
//     DeadlineExceeded; nil is [OK]; an error with no code anywhere is
//     [Unknown].
//
// An [*Error] enforces the rule for errors.Is: when its cause carries a
// different code, Unwrap hands the cause out with that code hidden. The
// cause itself stays reachable: errors.Is(err, someSentinel),
// errors.Is(err, context.Canceled), errors.Is(err, io.EOF) and errors.As
// (the vendor's error, a typed error) still find what is underneath.
//
// Two shapes built with the standard library alone cannot be told the
// rule: errors.Is on an errors.Join (or a fmt.Errorf with several %w)
// matches the code of any member, and errors.Is(context.Canceled,
// errs.Canceled) is false for a bare context error. [CodeOf] and [Is] apply
// the rule to them too; [Join] builds a joined error on which errors.Is
// agrees. managedvm itself returns neither shape, and every retry decision
// in managedvm asks [CodeOf].
//
// A typed error implements [Coder] (ErrorCode) and derives its Is method
// from it with [IsCode], so the code is written once.
//
// # Which code for which failure
//
// Among the codes whose choice is not obvious:
//
//   - A refused peer identity is [PermissionDenied]: an SSH host key that
//     does not match known_hosts, and a server certificate that TLS
//     verification refuses (vCenter, WinRM over HTTPS, PostgreSQL with
//     sslmode verify-ca/verify-full): unknown authority, wrong name,
//     expired, or a pinned thumbprint that differs. Retrying cannot help;
//     it is never [Unavailable].
//   - Refused credentials are [Unauthenticated]; a known caller lacking a
//     privilege is [PermissionDenied].
//   - [Unavailable] means the remote side surely did nothing, so the call
//     may be retried as it is.

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
