package errs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/managedvm/managedvm/errs"
)

type coded struct{}

func (coded) Error() string        { return "coded" }
func (coded) ErrorCode() errs.Code { return errs.PermissionDenied }

func TestCodeOf(t *testing.T) {
	base := errors.New("vendor fault")
	cases := []struct {
		err  error
		want errs.Code
	}{
		{nil, errs.OK},
		{base, errs.Unknown},
		{errs.New(errs.NotFound, "op", "gone"), errs.NotFound},
		{fmt.Errorf("outer: %w", errs.New(errs.AlreadyExists, "op", "x")), errs.AlreadyExists},
		{errs.Wrap(errs.Unavailable, "op", base), errs.Unavailable},
		{context.Canceled, errs.Canceled},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), errs.DeadlineExceeded},
		{errs.ResourceExhausted, errs.ResourceExhausted},
		{fmt.Errorf("wrapped: %w", coded{}), errs.PermissionDenied},
		{errs.FromContext(canceledCtx(), "op"), errs.Canceled},
	}
	for _, c := range cases {
		if got := errs.CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %v, want %v", c.err, got, c.want)
		}
		if c.want != errs.OK && c.want != errs.Unknown && !errs.Is(c.err, c.want) {
			t.Errorf("errs.Is(%v, %v) = false", c.err, c.want)
		}
	}
}

func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestErrorsIsAndAs(t *testing.T) {
	base := errors.New("vendor fault")
	err := fmt.Errorf("ctx: %w", errs.Wrap(errs.Unavailable, "vsphere.List", base))
	if !errors.Is(err, errs.Unavailable) {
		t.Fatal("errors.Is(err, Unavailable) = false")
	}
	if errors.Is(err, errs.NotFound) {
		t.Fatal("errors.Is(err, NotFound) = true")
	}
	if !errors.Is(err, base) {
		t.Fatal("cause lost")
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Op != "vsphere.List" {
		t.Fatalf("errors.As: %v", e)
	}
	if got := err.Error(); got != "ctx: vsphere.List: vendor fault" {
		t.Fatalf("Error() = %q", got)
	}
	if errs.FromContext(context.Background(), "op") != nil {
		t.Fatal("live context gave an error")
	}
}

func TestErrorf(t *testing.T) {
	cause := errs.New(errs.NotFound, "inner", "missing")
	err := errs.Errorf(errs.FailedPrecondition, "outer", "vm %s: %w", "vm-1", cause)
	if errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("code %v", errs.CodeOf(err))
	}
	if !errors.Is(err, cause) {
		t.Fatal("cause not reachable")
	}
	if errors.Is(err, errs.NotFound) {
		t.Fatal("the cause's code shows through the outer code")
	}
	if got := err.Error(); got != "outer: vm vm-1: inner: missing" {
		t.Fatalf("Error() = %q", got)
	}
	if errs.Wrap(errs.Internal, "op", nil) != nil || errs.WrapOp("op", nil) != nil {
		t.Fatal("wrapping nil must give nil")
	}
	if errs.CodeOf(errs.WrapOp("op", cause)) != errs.NotFound {
		t.Fatal("WrapOp lost the code")
	}
}

func TestCodeNames(t *testing.T) {
	for _, c := range errs.Codes() {
		got, ok := errs.ParseCode(c.String())
		if !ok || got != c {
			t.Errorf("ParseCode(%q) = %v, %v", c.String(), got, ok)
		}
	}
	if errs.Code(99).String() != "Code(99)" {
		t.Fatal(errs.Code(99).String())
	}
}

func ExampleCodeOf() {
	err := fmt.Errorf("enroll vm-42: %w", errs.New(errs.ResourceExhausted, "ipam.Allocate", "pool public-az1 is full"))
	fmt.Println(errs.CodeOf(err))
	fmt.Println(errors.Is(err, errs.ResourceExhausted))
	fmt.Println(errs.CodeOf(context.Canceled))
	// Output:
	// ResourceExhausted
	// true
	// Canceled
}

func ExampleJoin() {
	sent := errs.New(errs.OutcomeUnknown, "natfw.EnsureNAT", "no answer from the firewall")
	cleanup := errs.New(errs.Unavailable, "ipam.Release", "database unreachable")
	err := errs.Join(sent, cleanup)
	fmt.Println(errs.CodeOf(err))
	fmt.Println(errors.Is(err, errs.Unavailable)) // not retry-safe: the NAT may exist
	fmt.Println(errors.Is(err, cleanup))          // the member is still there
	// Output:
	// OutcomeUnknown
	// false
	// true
}

func ExampleWrap() {
	missing := errs.New(errs.NotFound, "cmdb.Get", "no record")
	err := errs.Wrap(errs.Internal, "enroll", missing) // a record that must exist
	fmt.Println(errs.CodeOf(err), errors.Is(err, errs.NotFound), errors.Is(err, missing))
	// Output:
	// Internal false true
}
