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

// ParseCode returns the code with the given name, as printed by String.
func ParseCode(name string) (Code, bool) {
	for i, n := range codeNames {
		if strings.EqualFold(n, name) {
			return Code(i), true
		}
	}
	return Unknown, false
}

// Coder is implemented by errors that know their own code. Typed errors of
// other packages (guest.ExitError, for example) implement it so that CodeOf
// and errors.Is work on them.
type Coder interface {
	ErrorCode() Code
}

// Error is an error with a code. Op names the operation that failed (e.g.
// "ipam.Allocate"), Msg says what went wrong, and Err is the underlying cause,
// if any, reachable with errors.As and errors.Unwrap.
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

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns e.Code.
func (e *Error) ErrorCode() Code { return e.Code }

// Is reports whether target is e's code, so errors.Is(err, errs.NotFound)
// works. It does not look at the cause: a wrapped error's own code is found
// by errors.Is walking the chain.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
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

// CodeOf returns the code of err: OK for nil; the code of the first error in
// the chain that carries one; Canceled and DeadlineExceeded for the context
// errors; Unknown otherwise.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	var c Coder
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	var code Code
	if errors.As(err, &code) {
		return code
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	return Unknown
}

// Is reports whether CodeOf(err) == code. Unlike errors.Is it also maps the
// context errors: Is(context.Canceled, Canceled) is true.
func Is(err error, code Code) bool { return CodeOf(err) == code }

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
