package errs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/managedvm/managedvm/errs"
)

// typed is a typed error whose Is comes from its code (errs.IsCode).
type typed struct{ code errs.Code }

func (e *typed) Error() string        { return "typed " + e.code.String() }
func (e *typed) ErrorCode() errs.Code { return e.code }
func (e *typed) Is(target error) bool { return errs.IsCode(e, target) }

// TestOneRule checks that CodeOf, errs.Is and errors.Is give one answer for
// every shape an error takes in managedvm, and that the causes (sentinels,
// vendor errors, context errors, typed errors) stay reachable.
func TestOneRule(t *testing.T) {
	vendor := errors.New("vendor fault")
	notFound := errs.New(errs.NotFound, "inner", "gone")
	unavailable := errs.Wrap(errs.Unavailable, "dial", vendor)
	unknownOutcome := errs.New(errs.OutcomeUnknown, "send", "no answer")
	sentinel := &errs.Error{Code: errs.AlreadyExists, Msg: "busy"}
	exit := &typed{code: errs.FailedPrecondition}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	cases := []struct {
		name string
		err  error
		want errs.Code
		// std marks shapes built with the standard library alone, where
		// errors.Is cannot be told the rule (see the package doc).
		std   bool
		reach []error // errors.Is must still find these
	}{
		{name: "plain code", err: notFound, want: errs.NotFound},
		{name: "bare sentinel code", err: errs.ResourceExhausted, want: errs.ResourceExhausted},
		{name: "%w chain keeps the code", err: fmt.Errorf("a: %w", fmt.Errorf("b: %w", notFound)), want: errs.NotFound, reach: []error{notFound}},
		{name: "Wrap replaces the code", err: errs.Wrap(errs.Internal, "outer", notFound), want: errs.Internal, reach: []error{notFound}},
		{name: "Errorf %w replaces the code", err: errs.Errorf(errs.FailedPrecondition, "outer", "vm %s: %w", "vm-1", notFound), want: errs.FailedPrecondition, reach: []error{notFound}},
		{name: "WrapOp keeps the code", err: errs.WrapOp("outer", notFound), want: errs.NotFound, reach: []error{notFound}},
		{name: "three coded layers", err: fmt.Errorf("top: %w", errs.Wrap(errs.Internal, "a", errs.Wrap(errs.NotFound, "b", unavailable))), want: errs.Internal, reach: []error{vendor}},
		{name: "Unknown defers to the cause", err: &errs.Error{Code: errs.Unknown, Op: "x", Err: notFound}, want: errs.NotFound, reach: []error{notFound}},
		{name: "OutcomeUnknown under Unavailable", err: errs.Wrap(errs.Unavailable, "retry", unknownOutcome), want: errs.OutcomeUnknown, reach: []error{unknownOutcome}},
		{name: "OutcomeUnknown under %w and Internal", err: errs.Wrap(errs.Internal, "x", fmt.Errorf("y: %w", unknownOutcome)), want: errs.OutcomeUnknown},
		{name: "errs.Join Unavailable, OutcomeUnknown", err: errs.Join(unavailable, unknownOutcome), want: errs.OutcomeUnknown, reach: []error{unavailable, unknownOutcome, vendor}},
		{name: "errs.Join OutcomeUnknown last of three", err: errs.Join(notFound, unavailable, fmt.Errorf("z: %w", unknownOutcome)), want: errs.OutcomeUnknown},
		{name: "errs.Join first member's code", err: errs.Join(nil, notFound, unavailable), want: errs.NotFound, reach: []error{unavailable}},
		{name: "errs.Join under WrapOp", err: errs.WrapOp("op", errs.Join(unavailable, unknownOutcome)), want: errs.OutcomeUnknown},
		{name: "std Join with OutcomeUnknown", err: errors.Join(unavailable, unknownOutcome), want: errs.OutcomeUnknown, std: true},
		{name: "std Join first member", err: errors.Join(notFound, unavailable), want: errs.NotFound, std: true},
		{name: "std multi-%w", err: fmt.Errorf("%w; %w", unavailable, unknownOutcome), want: errs.OutcomeUnknown, std: true},
		{name: "typed error", err: exit, want: errs.FailedPrecondition},
		{name: "typed error wrapped by %w", err: fmt.Errorf("run: %w", exit), want: errs.FailedPrecondition, reach: []error{exit}},
		{name: "typed error under Wrap", err: errs.Wrap(errs.Unavailable, "x", exit), want: errs.Unavailable, reach: []error{exit}},
		{name: "typed OutcomeUnknown under Wrap", err: errs.Wrap(errs.Unavailable, "x", &typed{code: errs.OutcomeUnknown}), want: errs.OutcomeUnknown},
		{name: "FromContext", err: errs.FromContext(ctx, "op"), want: errs.Canceled, reach: []error{context.Canceled}},
		{name: "bare context error", err: fmt.Errorf("x: %w", context.DeadlineExceeded), want: errs.DeadlineExceeded, std: true},
		{name: "context error under Unavailable", err: errs.Wrap(errs.Unavailable, "dial", context.DeadlineExceeded), want: errs.Unavailable, reach: []error{context.DeadlineExceeded}},
		{name: "sentinel under another code", err: errs.Wrap(errs.Internal, "x", fmt.Errorf("y: %w", sentinel)), want: errs.Internal, reach: []error{sentinel}},
		{name: "vendor error", err: errs.Wrap(errs.Unavailable, "x", io.ErrUnexpectedEOF), want: errs.Unavailable, reach: []error{io.ErrUnexpectedEOF}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := errs.CodeOf(c.err); got != c.want {
				t.Fatalf("CodeOf = %v, want %v", got, c.want)
			}
			for _, code := range errs.Codes() {
				if code == errs.OK || code == errs.Unknown {
					continue
				}
				want := code == c.want
				if got := errs.Is(c.err, code); got != want {
					t.Errorf("errs.Is(err, %v) = %v, want %v", code, got, want)
				}
				if c.std {
					continue
				}
				if got := errors.Is(c.err, code); got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", code, got, want)
				}
			}
			if !c.std {
				var coder errs.Coder
				if !errors.As(c.err, &coder) || errs.CodeOf(coder.(error)) != c.want {
					t.Errorf("errors.As(err, &Coder) gives a different code")
				}
			}
			for _, r := range c.reach {
				if !errors.Is(c.err, r) {
					t.Errorf("errors.Is(err, %v) = false: cause lost", r)
				}
			}
		})
	}
}

// TestTypedErrorReachable: a typed error under another code is found by
// errors.As, and Unwrap chains stay printable.
func TestTypedErrorReachable(t *testing.T) {
	exit := &typed{code: errs.FailedPrecondition}
	err := errs.Wrap(errs.Unavailable, "x", fmt.Errorf("y: %w", exit))
	var got *typed
	if !errors.As(err, &got) || got != exit {
		t.Fatal("errors.As lost the typed cause")
	}
	if err.Error() != "x: y: typed FailedPrecondition" {
		t.Fatalf("Error() = %q", err.Error())
	}
	var code errs.Code
	if errors.As(err, &code) {
		t.Fatalf("errors.As found a hidden code %v", code)
	}
	if errs.Join() != nil || errs.Join(nil, nil) != nil {
		t.Fatal("Join of nothing is not nil")
	}
}

// BenchmarkUnwrapDeep: unwrapping a chain of coded layers stays cheap.
func BenchmarkUnwrapDeep(b *testing.B) {
	err := error(errs.New(errs.NotFound, "0", "x"))
	for i := 0; i < 16; i++ {
		code := errs.Unavailable
		if i%2 == 0 {
			code = errs.Internal
		}
		err = errs.Wrap(code, "layer", err)
	}
	for b.Loop() {
		if errors.Is(err, errs.NotFound) {
			b.Fatal("hidden code matched")
		}
	}
}
