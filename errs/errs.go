package errs

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Code classifies an error. The zero value is OK.
//
// A Code implements error, so each code is also a sentinel usable with
// errors.Is: errors.Is(err, errs.NotFound) reports whether err (or an error it
// wraps) carries the NotFound code.
type Code int

// The codes. Their meaning follows the gRPC status codes where one exists.
const (
	// OK is the code of a nil error.
	OK Code = iota
	// Unknown is the code of an error that carries no code.
	Unknown
	// NotFound: the named thing does not exist.
	NotFound
	// AlreadyExists: the thing exists, or the resource is held by another owner.
	AlreadyExists
	// InvalidArgument: the request is malformed; retrying it unchanged fails again.
	InvalidArgument
	// FailedPrecondition: the request is well formed but the system is not in
	// a state to carry it out (VM powered off, tools not running, revision
	// mismatch, ...).
	FailedPrecondition
	// PermissionDenied: the caller is known but lacks a privilege.
	PermissionDenied
	// Unauthenticated: the credentials were refused.
	Unauthenticated
	// ResourceExhausted: a pool, quota or capacity is used up.
	ResourceExhausted
	// Unavailable: the remote side could not be reached and surely did
	// nothing; the call may be retried.
	Unavailable
	// DeadlineExceeded: the context's deadline passed.
	DeadlineExceeded
	// Canceled: the context was canceled.
	Canceled
	// Unimplemented: the driver or the remote side does not support the call.
	Unimplemented
	// OutcomeUnknown: the side effect may have happened. Reconcile, never
	// blindly retry.
	OutcomeUnknown
	// Internal: a bug or a broken invariant.
	Internal
)

var codeNames = [...]string{
	OK:                 "OK",
	Unknown:            "Unknown",
	NotFound:           "NotFound",
	AlreadyExists:      "AlreadyExists",
	InvalidArgument:    "InvalidArgument",
	FailedPrecondition: "FailedPrecondition",
	PermissionDenied:   "PermissionDenied",
	Unauthenticated:    "Unauthenticated",
	ResourceExhausted:  "ResourceExhausted",
	Unavailable:        "Unavailable",
	DeadlineExceeded:   "DeadlineExceeded",
	Canceled:           "Canceled",
	Unimplemented:      "Unimplemented",
	OutcomeUnknown:     "OutcomeUnknown",
	Internal:           "Internal",
}

// Codes lists every code, OK first.
func Codes() []Code {
	out := make([]Code, len(codeNames))
	for i := range codeNames {
		out[i] = Code(i)
	}
	return out
}

// String returns the code's name, e.g. "NotFound".
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Error makes a Code usable as a sentinel error.
func (c Code) Error() string { return c.String() }

// ErrorCode makes a Code a [Coder] of itself.
func (c Code) ErrorCode() Code { return c }

// ParseCode returns the code with the given name, as printed by String.
func ParseCode(name string) (Code, bool) {
	for i, n := range codeNames {
		if strings.EqualFold(n, name) {
			return Code(i), true
		}
	}
	return Unknown, false
}

// Coder is implemented by errors that know their own code: CodeOf reads
// it. errors.Is never calls ErrorCode, so a typed error derives its Is
// method from it with [IsCode], and the code is written once:
//
//	func (e *MyError) ErrorCode() errs.Code { return errs.FailedPrecondition }
//	func (e *MyError) Is(target error) bool { return errs.IsCode(e, target) }
//
// A typed error that also wraps a cause (Unwrap) with a code of its own
// should report that same code, as guest/tasks.TaskError does; to give a
// different one, wrap the cause with [Wrap], which hides the cause's code.
type Coder interface {
	ErrorCode() Code
}

// IsCode is the Is method of a typed error, derived from its ErrorCode:
// it reports whether target is the [Code] CodeOf gives for err.
func IsCode(err Coder, target error) bool {
	c, ok := target.(Code)
	return ok && c == err.ErrorCode()
}

// Error is an error with a code. Op names the operation that failed (e.g.
// "ipam.Allocate"), Msg says what went wrong, and Err is the underlying cause,
// if any, reachable with errors.As and errors.Unwrap.
//
// A Code of Unknown (or OK) means the error adds no code of its own: its
// code is its cause's. Under the rule in the package doc an Error's code is
// its own Code unless its cause holds OutcomeUnknown; when the cause carries
// a different code, Unwrap hands out the cause with that code hidden, so
// errors.Is(err, causeCode) is false while errors.Is(err, sentinel),
// errors.Is(err, context.Canceled) and errors.As still reach everything
// underneath.
type Error struct {
	Code Code
	Op   string
	Msg  string
	Err  error
}

// Error formats the error as "op: msg: cause".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Msg != "" {
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		if e.Msg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	if e.Msg == "" && e.Err == nil {
		b.WriteString(e.Code.String())
	}
	return b.String()
}

// Unwrap returns the cause; if the cause carries a code other than e's
// (see CodeOf), that code is hidden from errors.Is (everything else, the
// cause's sentinels and types included, stays reachable).
func (e *Error) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	if own := CodeOf(e); carriesOther(e.Err, own) {
		return &hidden{err: e.Err}
	}
	return e.Err
}

// ErrorCode returns e's code under the package's rule: OutcomeUnknown if
// e or its cause holds it anywhere, else e.Code, else the cause's code.
func (e *Error) ErrorCode() Code { return CodeOf(e) }

// Is reports whether target is e's code (ErrorCode), so errors.Is(err,
// errs.NotFound) works and agrees with CodeOf.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == CodeOf(e)
}

// carriesOther reports whether errors.Is would match in err a code other
// than own. It reads the tree's structure instead of calling errors.Is, so
// that unwrapping a chain of Errors stays linear in its length.
func carriesOther(err error, own Code) bool {
	return codeSet(err)&^(1<<own|1<<OK|1<<Unknown) != 0
}

// codeSet is the set of codes errors.Is matches in err, as a bit mask.
func codeSet(err error) uint32 {
	var set uint32
	for err != nil {
		var next []error
		switch e := err.(type) {
		case *Error:
			// Its Is answers its code; a cause with other codes is hidden.
			return set | 1<<CodeOf(e)
		case *hidden:
			return set
		case Code:
			if e >= 0 && int(e) < len(codeNames) {
				set |= 1 << e
			}
		default:
			if x, ok := err.(interface{ Is(error) bool }); ok {
				for c := NotFound; int(c) < len(codeNames); c++ {
					if x.Is(c) {
						set |= 1 << c
					}
				}
			}
			switch u := err.(type) {
			case interface{ Unwrap() error }:
				next = []error{u.Unwrap()}
			case interface{ Unwrap() []error }:
				next = u.Unwrap()
			}
		}
		if len(next) == 1 {
			err = next[0]
			continue
		}
		for _, n := range next {
			set |= codeSet(n)
		}
		break
	}
	return set
}

// hidden is a cause whose codes are hidden from errors.Is: it matches no
// Code, but every other target (sentinels, context errors) and errors.As
// reach through it.
type hidden struct{ err error }

func (h *hidden) Error() string { return h.err.Error() }

func (h *hidden) Is(target error) bool {
	if _, ok := target.(Code); ok {
		return false
	}
	return errors.Is(h.err, target)
}

func (h *hidden) As(target any) bool {
	switch target.(type) {
	case *Code, *Coder:
		return false
	}
	return errors.As(h.err, target)
}

// New returns an error with the given code, operation and message.
func New(code Code, op, msg string) error {
	return &Error{Code: code, Op: op, Msg: msg}
}

// Errorf returns an error with the given code and operation and a formatted
// message. A %w verb in format wraps its argument as the cause.
func Errorf(code Code, op, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if u := errors.Unwrap(err); u != nil {
		return &Error{Code: code, Op: op, Msg: strings.TrimSuffix(trimCause(err.Error(), u.Error()), ": "), Err: u}
	}
	return &Error{Code: code, Op: op, Msg: err.Error()}
}

func trimCause(full, cause string) string {
	if strings.HasSuffix(full, cause) {
		return full[:len(full)-len(cause)]
	}
	return full
}

// Wrap returns err with the given code and operation added. It returns nil
// if err is nil. The cause stays reachable through errors.Unwrap/As.
func Wrap(code Code, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Op: op, Err: err}
}

// WrapOp adds an operation name to err, keeping its code (CodeOf(err)). It
// returns nil if err is nil.
func WrapOp(op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: CodeOf(err), Op: op, Err: err}
}

// CodeOf returns the code of err under the one rule of this package (see
// the package doc):
//
//   - nil is OK;
//   - an error that holds OutcomeUnknown anywhere (wrapped, joined, in a
//     typed error) is OutcomeUnknown;
//   - otherwise the first code met walking from the outside in (depth
//     first, a joined error's members in order): an [*Error]'s Code, a
//     [Coder]'s ErrorCode, a Code itself, Canceled or DeadlineExceeded for
//     the context errors;
//   - Unknown when nothing carries a code.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	first, outcomeUnknown := walk(err, Unknown)
	if outcomeUnknown {
		return OutcomeUnknown
	}
	return first
}

// walk visits err's tree from the outside in. It returns the first code
// met (or first, if one was met before) and whether OutcomeUnknown is held
// anywhere.
func walk(err error, first Code) (Code, bool) {
	for err != nil {
		var own Code
		var next []error
		switch e := err.(type) {
		case *Error:
			own, next = e.Code, []error{e.Err}
		case *hidden:
			next = []error{e.err}
		case Code:
			own = e
		default:
			if c, ok := err.(Coder); ok {
				own = c.ErrorCode()
			} else if err == context.Canceled {
				own = Canceled
			} else if err == context.DeadlineExceeded {
				own = DeadlineExceeded
			}
			switch u := err.(type) {
			case interface{ Unwrap() error }:
				next = []error{u.Unwrap()}
			case interface{ Unwrap() []error }:
				next = u.Unwrap()
			}
		}
		if own == OutcomeUnknown {
			return OutcomeUnknown, true
		}
		if first == Unknown && own != OK && own != Unknown {
			first = own
		}
		if len(next) == 1 {
			err = next[0]
			continue
		}
		for _, n := range next {
			var ou bool
			if first, ou = walk(n, first); ou {
				return OutcomeUnknown, true
			}
		}
		return first, false
	}
	return first, false
}

// Is reports whether CodeOf(err) == code. For every error managedvm
// returns it agrees with errors.Is(err, code); it also maps a bare context
// error (Is(context.Canceled, Canceled) is true) and applies the rule to a
// standard errors.Join, where errors.Is would match any member's code.
func Is(err error, code Code) bool { return CodeOf(err) == code }

// Join joins errs like errors.Join (nil ones are dropped; nil if none is
// left), as one error whose code follows the rule: OutcomeUnknown if any
// member holds it, else the first member's code. errors.Is on the result
// matches that code only, and every member's sentinels and types.
func Join(errs ...error) error {
	j := errors.Join(errs...)
	if j == nil {
		return nil
	}
	return &Error{Code: CodeOf(j), Err: j}
}

// FromContext returns nil if ctx is still live, or an error with code
// Canceled or DeadlineExceeded that wraps ctx.Err().
func FromContext(ctx context.Context, op string) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: DeadlineExceeded, Op: op, Err: err}
	}
	return &Error{Code: Canceled, Op: op, Err: err}
}
