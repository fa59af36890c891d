package fakes_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
)

func Example() {
	ctx := context.Background()
	real := memfw.New(nil)
	inj := fakes.NewInjector().
		Fail("EnsureNAT", 1, errs.Unavailable). // the first call fails, nothing programmed
		AfterWork("EnsureNAT", 2)               // the second programs the rule, then loses the answer
	fw := natfw.New(&fakes.Firewall{Firewall: real, Injector: inj}, nil)

	rule := natfw.Rule{
		Owner:   "vm-1",
		Public:  netip.MustParseAddr("203.0.113.10"),
		Local:   netip.MustParseAddr("10.0.0.10"),
		Ports:   natfw.LinuxPorts(),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}
	for range 3 {
		err := fw.EnsureNAT(ctx, rule)
		_, getErr := real.Get(ctx, "vm-1")
		fmt.Printf("%v injected=%v; rule in place: %v\n", errs.CodeOf(err), errors.Is(err, fakes.ErrInjected), getErr == nil)
	}
	fmt.Println("calls:", inj.Calls("EnsureNAT"))
	// Output:
	// Unavailable injected=true; rule in place: false
	// OutcomeUnknown injected=true; rule in place: true
	// OK injected=false; rule in place: true
	// calls: 3
}

func ExampleWrapProvider() {
	// p wraps any provider.Driver; WrapProvider keeps its GuestAccess
	// capability when it has one. Here, the stub from the tests has it.
	inj := fakes.NewInjector().FailAlways("ValidateCredentials", errs.Unauthenticated)
	p := fakes.WrapProvider(stubGuestProvider{stubProvider{&recorder{}}}, inj)
	if ga, ok := provider.New(p, nil).GuestAccess(); ok {
		err := ga.ValidateCredentials(context.Background(), "vm-1", guestCreds)
		fmt.Println(errs.CodeOf(err))
	}
	// Output:
	// Unauthenticated
}
