package fakes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/managedvm/managedvm/errs"
)

// ErrInjected is wrapped by every error an Injector makes up (Fail,
// FailAlways, AfterWork), so a test can tell an injected failure from a
// real one with errors.Is(err, fakes.ErrInjected). It carries no code: the
// code is the one the rule chose.
var ErrInjected = errors.New("injected fault")

// Injector is a set of fault rules for the methods of one wrapped
// component, and a count of the calls made to each method. Methods are
// named as in the wrapped interface ("Allocate", "EnsureNAT", "Run", ...).
//
// For every call of a wrapped method, in this order:
//
//  1. the call is counted (Calls);
//  2. every Delay of the method waits, giving up with the context's error
//     (Canceled or DeadlineExceeded) when ctx ends first;
//  3. every Hook of the method runs; the first one that returns an error
//     ends the call with that error (the work is not done);
//  4. the first Fail rule that matches the call ends it with an injected
//     error (the work is not done);
//  5. the work is done: the wrapped component is called;
//  6. every HookAfterWork of the method runs; the first one that returns an
//     error replaces the call's result with that error;
//  7. if an AfterWork rule matches the call, its result is replaced with an
//     injected OutcomeUnknown error: the work was done, the answer lost.
//
// The zero value is an empty Injector, ready to use; a nil *Injector
// injects nothing and counts nothing. The rule methods return the Injector
// so rules can be chained, and panic on a malformed rule (an empty method
// name, a negative nth, code OK, a nil hook): they are test set-up.
//
// An Injector is safe for concurrent use. Hooks run without the Injector's
// lock held, so they may call its methods.
type Injector struct {
	mu    sync.Mutex
	rules []faultRule
	calls map[string]int
}

type faultKind int

const (
	kindFail faultKind = iota
	kindDelay
	kindHook
	kindHookAfter
	kindAfterWork
)

type faultRule struct {
	kind   faultKind
	method string
	nth    int // 0: every call
	code   errs.Code
	delay  time.Duration
	hook   func(context.Context) error
}

func (r faultRule) matches(method string, n int) bool {
	return r.method == method && (r.nth == 0 || r.nth == n)
}

// NewInjector returns an empty Injector.
func NewInjector() *Injector { return &Injector{} }

func (in *Injector) add(r faultRule) *Injector {
	switch {
	case in == nil:
		panic("fakes: rule added to a nil Injector")
	case r.method == "":
		panic("fakes: fault rule without a method name")
	case r.nth < 0:
		panic(fmt.Sprintf("fakes: fault rule for %s: negative call number %d", r.method, r.nth))
	case r.kind == kindFail && r.code == errs.OK:
		panic(fmt.Sprintf("fakes: Fail(%s) with code OK", r.method))
	case (r.kind == kindHook || r.kind == kindHookAfter) && r.hook == nil:
		panic(fmt.Sprintf("fakes: nil hook for %s", r.method))
	case r.kind == kindDelay && r.delay < 0:
		panic(fmt.Sprintf("fakes: negative delay for %s", r.method))
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = append(in.rules, r)
	return in
}

// Fail makes the nth call of method (1-based; 0 means every call) fail
// with an injected error of the given code, without doing the work.
func (in *Injector) Fail(method string, nth int, code errs.Code) *Injector {
	return in.add(faultRule{kind: kindFail, method: method, nth: nth, code: code})
}

// FailAlways makes every call of method fail with an injected error of the
// given code, without doing the work. It is Fail(method, 0, code).
func (in *Injector) FailAlways(method string, code errs.Code) *Injector {
	return in.Fail(method, 0, code)
}

// Delay makes every call of method wait d before anything else happens. The
// wait ends early when the call's context ends, and the call then returns
// the context's error (code Canceled or DeadlineExceeded) without doing the
// work.
func (in *Injector) Delay(method string, d time.Duration) *Injector {
	return in.add(faultRule{kind: kindDelay, method: method, delay: d})
}

// AfterWork makes the nth call of method (1-based; 0 means every call) do
// the work and then report an injected OutcomeUnknown error instead of its
// result, as when the answer of a remote call is lost. Guest executors
// report it as a lost session (the error also wraps guest.ErrSessionLost).
func (in *Injector) AfterWork(method string, nth int) *Injector {
	return in.add(faultRule{kind: kindAfterWork, method: method, nth: nth})
}

// Hook runs fn with the call's context at every call of method, before the
// work. If fn returns an error, the call returns it as is and the work is
// not done. fn may also panic (a crash of the caller, as the caller sees
// it) or cancel a context the test holds. Use Calls inside fn to act on one
// call only.
func (in *Injector) Hook(method string, fn func(ctx context.Context) error) *Injector {
	return in.add(faultRule{kind: kindHook, method: method, hook: fn})
}

// HookAfterWork runs fn with the call's context at every call of method,
// after the work, whatever its outcome. If fn returns an error, the call
// returns it instead of its result. A panicking fn is a crash right after
// the side effect: the work is done and nobody learns of it.
func (in *Injector) HookAfterWork(method string, fn func(ctx context.Context) error) *Injector {
	return in.add(faultRule{kind: kindHookAfter, method: method, hook: fn})
}

// Calls returns how many calls of method were made since the Injector was
// made or Reset, failed and delayed ones included.
func (in *Injector) Calls(method string) int {
	if in == nil {
		return 0
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls[method]
}

// Reset removes every rule and sets every call count to zero.
func (in *Injector) Reset() {
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = nil
	in.calls = nil
}

// plan is what the rules say about one call.
type plan struct {
	method    string
	n         int
	delays    []time.Duration
	hooks     []func(context.Context) error
	fail      errs.Code
	afterFns  []func(context.Context) error
	afterWork bool
}

// start counts a call of method and collects the rules that apply to it.
func (in *Injector) start(method string) plan {
	p := plan{method: method}
	if in == nil {
		return p
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.calls == nil {
		in.calls = make(map[string]int)
	}
	in.calls[method]++
	p.n = in.calls[method]
	for _, r := range in.rules {
		if !r.matches(method, p.n) {
			continue
		}
		switch r.kind {
		case kindDelay:
			p.delays = append(p.delays, r.delay)
		case kindHook:
			p.hooks = append(p.hooks, r.hook)
		case kindFail:
			if p.fail == errs.OK {
				p.fail = r.code
			}
		case kindHookAfter:
			p.afterFns = append(p.afterFns, r.hook)
		case kindAfterWork:
			p.afterWork = true
		}
	}
	return p
}

// before counts the call and applies the faults that come before the work.
// A non-nil error means: return it, do not do the work.
func (in *Injector) before(ctx context.Context, method string) (plan, error) {
	p := in.start(method)
	for _, d := range p.delays {
		if err := sleep(ctx, "fakes."+method, d); err != nil {
			return p, err
		}
	}
	for _, h := range p.hooks {
		if err := h(ctx); err != nil {
			return p, err
		}
	}
	if p.fail != errs.OK {
		return p, &errs.Error{
			Code: p.fail,
			Op:   "fakes." + method,
			Msg:  fmt.Sprintf("call %d: %v", p.n, p.fail),
			Err:  ErrInjected,
		}
	}
	return p, nil
}

// after applies the faults that come after the work. A non-nil error
// replaces the call's result.
func (p plan) after(ctx context.Context) error {
	if err := p.afterHooks(ctx); err != nil {
		return err
	}
	if p.afterWork {
		return p.lostAnswer()
	}
	return nil
}

// afterHooks runs the HookAfterWork hooks; the first error wins.
func (p plan) afterHooks(ctx context.Context) error {
	for _, h := range p.afterFns {
		if err := h(ctx); err != nil {
			return err
		}
	}
	return nil
}

// lostAnswer is the AfterWork error.
func (p plan) lostAnswer() error {
	return &errs.Error{
		Code: errs.OutcomeUnknown,
		Op:   "fakes." + p.method,
		Msg:  fmt.Sprintf("call %d: the work was done but its answer was lost", p.n),
		Err:  ErrInjected,
	}
}

func sleep(ctx context.Context, op string, d time.Duration) error {
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return errs.FromContext(ctx, op)
	}
}

// call runs work as one call of method with the faults in applied.
func call[T any](ctx context.Context, in *Injector, method string, work func() (T, error)) (T, error) {
	var zero T
	p, err := in.before(ctx, method)
	if err != nil {
		return zero, err
	}
	v, err := work()
	if aerr := p.after(ctx); aerr != nil {
		return zero, aerr
	}
	return v, err
}

// call0 is call for methods that return only an error.
func call0(ctx context.Context, in *Injector, method string, work func() error) error {
	_, err := call(ctx, in, method, func() (struct{}, error) { return struct{}{}, work() })
	return err
}
