package fakes_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/fakes"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
)

func natRule(owner string, i int) natfw.Rule {
	return natfw.Rule{
		Owner:   owner,
		Public:  netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}),
		Local:   netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}),
		Ports:   natfw.LinuxPorts(),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}
}

// wrapFW returns a memfw Firewall and the same wrapped with a new Injector.
func wrapFW() (*natfw.Firewall, *fakes.Firewall, *fakes.Injector) {
	inner := memfw.New(nil)
	inj := fakes.NewInjector()
	return inner, &fakes.Firewall{Firewall: inner, Injector: inj}, inj
}

func has(t *testing.T, fw natfw.Driver, owner string) bool {
	t.Helper()
	_, err := fw.Get(context.Background(), owner)
	switch errs.CodeOf(err) {
	case errs.OK:
		return true
	case errs.NotFound:
		return false
	}
	t.Fatalf("Get(%q): %v", owner, err)
	return false
}

func wantInjected(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	var e *errs.Error
	if errs.CodeOf(err) != code || !errors.Is(err, fakes.ErrInjected) || !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s = %v (code %v), want an injected *errs.Error with code %v", what, err, errs.CodeOf(err), code)
	}
}

func TestFailNth(t *testing.T) {
	inner, fw, inj := wrapFW()
	ctx := context.Background()
	inj.Fail("EnsureNAT", 2, errs.Unavailable)
	if err := fw.EnsureNAT(ctx, natRule("a", 1)); err != nil {
		t.Fatalf("call 1: %v", err)
	}
	err := fw.EnsureNAT(ctx, natRule("b", 2))
	wantInjected(t, "call 2", err, errs.Unavailable)
	if has(t, inner, "b") {
		t.Fatal("the failed call did the work")
	}
	if err := fw.EnsureNAT(ctx, natRule("c", 3)); err != nil {
		t.Fatalf("call 3: %v", err)
	}
	if got := inj.Calls("EnsureNAT"); got != 3 {
		t.Fatalf("Calls = %d, want 3", got)
	}
	// Other methods are not affected, and counted on their own.
	if _, err := fw.List(ctx); err != nil || inj.Calls("List") != 1 {
		t.Fatalf("List: %v, Calls %d", err, inj.Calls("List"))
	}
}

func TestFailEveryCall(t *testing.T) {
	for name, add := range map[string]func(*fakes.Injector){
		"Fail nth 0": func(in *fakes.Injector) { in.Fail("RemoveNAT", 0, errs.PermissionDenied) },
		"FailAlways": func(in *fakes.Injector) { in.FailAlways("RemoveNAT", errs.PermissionDenied) },
	} {
		t.Run(name, func(t *testing.T) {
			inner, fw, inj := wrapFW()
			if err := inner.EnsureNAT(context.Background(), natRule("a", 1)); err != nil {
				t.Fatal(err)
			}
			add(inj)
			for i := range 5 {
				wantInjected(t, "RemoveNAT", fw.RemoveNAT(context.Background(), "a"), errs.PermissionDenied)
				if !has(t, inner, "a") {
					t.Fatalf("call %d did the work", i+1)
				}
			}
			if inj.Calls("RemoveNAT") != 5 {
				t.Fatalf("Calls = %d", inj.Calls("RemoveNAT"))
			}
		})
	}
}

func TestFirstMatchingFailWins(t *testing.T) {
	_, fw, inj := wrapFW()
	inj.Fail("List", 0, errs.Unavailable).Fail("List", 1, errs.NotFound)
	_, err := fw.List(context.Background())
	wantInjected(t, "List", err, errs.Unavailable)
}

func TestAfterWork(t *testing.T) {
	inner, fw, inj := wrapFW()
	ctx := context.Background()
	inj.AfterWork("EnsureNAT", 1)
	err := fw.EnsureNAT(ctx, natRule("a", 1))
	wantInjected(t, "EnsureNAT", err, errs.OutcomeUnknown)
	if !has(t, inner, "a") {
		t.Fatal("AfterWork did not do the work")
	}
	// Reconcile: the call is idempotent and the second one goes through.
	if err := fw.EnsureNAT(ctx, natRule("a", 1)); err != nil {
		t.Fatalf("second call: %v", err)
	}
}

func TestAfterWorkAllocates(t *testing.T) {
	ctx := context.Background()
	inner := memipam.NewDriver(nil)
	if err := inner.CreatePool(ctx, ipam.Pool{Name: "public", Prefix: netip.MustParsePrefix("203.0.113.0/28")}); err != nil {
		t.Fatal(err)
	}
	inj := fakes.NewInjector().Fail("Allocate", 1, errs.Unavailable).AfterWork("Allocate", 2)
	m := &fakes.IPAM{Driver: inner, Injector: inj}
	req := ipam.Request{Pool: "public", Owner: "vsphere/vm-1"}

	_, err := m.Allocate(ctx, req)
	wantInjected(t, "Allocate 1", err, errs.Unavailable)
	if _, err := inner.Lookup(ctx, "public", req.Owner); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("after a failed Allocate, Lookup = %v; want NotFound", err)
	}

	a, err := m.Allocate(ctx, req)
	wantInjected(t, "Allocate 2", err, errs.OutcomeUnknown)
	if a != (ipam.Allocation{}) {
		t.Fatalf("AfterWork returned a result: %+v", a)
	}
	held, err := inner.Lookup(ctx, "public", req.Owner)
	if err != nil || !held.Address.IsValid() {
		t.Fatalf("AfterWork did not allocate: %+v, %v", held, err)
	}
	// The orchestrator reconciles through the wrapper.
	got, err := m.Lookup(ctx, "public", req.Owner)
	if err != nil || got.Address != held.Address {
		t.Fatalf("Lookup = %+v, %v; want %s", got, err, held.Address)
	}
	again, err := m.Allocate(ctx, req)
	if err != nil || again.Address != held.Address {
		t.Fatalf("third Allocate = %+v, %v; want the same address %s", again, err, held.Address)
	}
}

func TestDelay(t *testing.T) {
	inner := &recorder{}
	inj := fakes.NewInjector().Delay("Get", time.Hour)
	fw := &fakes.Firewall{Firewall: stubFirewall{inner}, Injector: inj}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fw.Get(ctx, "a")
	if errs.CodeOf(err) != errs.Canceled || errors.Is(err, fakes.ErrInjected) {
		t.Fatalf("delayed Get with a canceled context = %v, want the context's Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	_, err = fw.Get(ctx, "a")
	if errs.CodeOf(err) != errs.DeadlineExceeded {
		t.Fatalf("delayed Get past its deadline = %v, want DeadlineExceeded", err)
	}
	if inner.count("Get") != 0 {
		t.Fatal("a call cut short in its delay did the work")
	}

	// A delay that runs out lets the call through.
	inj.Reset()
	inj.Delay("Get", 10*time.Millisecond).Delay("Get", 10*time.Millisecond)
	start := time.Now()
	if _, err := fw.Get(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("two 10ms delays took %v", d)
	}
	if inner.count("Get") != 1 {
		t.Fatal("the delayed call did not do the work")
	}
}

func TestHookError(t *testing.T) {
	inner := &recorder{}
	exitErr := &guest.ExitError{Command: "id", Code: 3}
	inj := fakes.NewInjector().Hook("Run", func(context.Context) error { return exitErr })
	ex := &fakes.Executor{Executor: guest.New(stubExecutor{inner}, nil), Injector: inj}
	_, err := ex.Run(context.Background(), guest.Command{Args: []string{"id"}})
	if err != exitErr {
		t.Fatalf("Run = %v, want the hook's error as is", err)
	}
	if inner.count("Run") != 0 {
		t.Fatal("a call failed by its hook did the work")
	}
}

func TestHookSeesTheCall(t *testing.T) {
	_, fw, inj := wrapFW()
	type key struct{}
	var seen []any
	inj.Hook("List", func(ctx context.Context) error {
		seen = append(seen, ctx.Value(key{}))
		if inj.Calls("List") == 2 { // a hook may use the Injector
			return errs.New(errs.Internal, "test", "second call")
		}
		return nil
	})
	ctx := context.WithValue(context.Background(), key{}, "v")
	if _, err := fw.List(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := fw.List(ctx); errs.CodeOf(err) != errs.Internal {
		t.Fatalf("second List = %v", err)
	}
	if len(seen) != 2 || seen[0] != "v" {
		t.Fatalf("hook saw %v", seen)
	}
}

func TestHookPanicIsACrash(t *testing.T) {
	inner, fw, inj := wrapFW()
	inj.Hook("EnsureNAT", func(context.Context) error { panic("crash before") })
	inj.HookAfterWork("RemoveNAT", func(context.Context) error { panic("crash after") })
	crash := func(f func()) (v any) {
		defer func() { v = recover() }()
		f()
		return nil
	}
	if v := crash(func() { _ = fw.EnsureNAT(context.Background(), natRule("a", 1)) }); v != "crash before" {
		t.Fatalf("recovered %v", v)
	}
	if has(t, inner, "a") {
		t.Fatal("a crash before the work did the work")
	}
	if err := inner.EnsureNAT(context.Background(), natRule("b", 2)); err != nil {
		t.Fatal(err)
	}
	if v := crash(func() { _ = fw.RemoveNAT(context.Background(), "b") }); v != "crash after" {
		t.Fatalf("recovered %v", v)
	}
	if has(t, inner, "b") {
		t.Fatal("a crash after the work undid the work")
	}
	if inj.Calls("EnsureNAT") != 1 || inj.Calls("RemoveNAT") != 1 {
		t.Fatal("crashed calls not counted")
	}
}

func TestHookCancels(t *testing.T) {
	inner, fw, inj := wrapFW()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inj.Hook("EnsureNAT", func(context.Context) error { cancel(); return nil })
	err := fw.EnsureNAT(ctx, natRule("a", 1))
	if errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("EnsureNAT canceled by its hook = %v, want Canceled", err)
	}
	if has(t, inner, "a") {
		t.Fatal("canceled call did the work")
	}
}

func TestHookAfterWorkReplacesResult(t *testing.T) {
	inner, fw, inj := wrapFW()
	inj.HookAfterWork("EnsureNAT", func(context.Context) error { return errs.New(errs.Unavailable, "test", "late") })
	inj.AfterWork("EnsureNAT", 0) // the hook's error wins
	err := fw.EnsureNAT(context.Background(), natRule("a", 1))
	if errs.CodeOf(err) != errs.Unavailable || errors.Is(err, fakes.ErrInjected) {
		t.Fatalf("EnsureNAT = %v, want the hook's error", err)
	}
	if !has(t, inner, "a") {
		t.Fatal("the work was not done")
	}
}

func TestWorkErrorsPassThrough(t *testing.T) {
	_, fw, inj := wrapFW()
	inj.Delay("Get", 0)
	_, err := fw.Get(context.Background(), "missing")
	if errs.CodeOf(err) != errs.NotFound || errors.Is(err, fakes.ErrInjected) {
		t.Fatalf("Get = %v, want the wrapped firewall's NotFound", err)
	}
	err = fw.EnsureNAT(context.Background(), natfw.Rule{})
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("EnsureNAT = %v, want InvalidArgument", err)
	}
}

func TestReset(t *testing.T) {
	inner, fw, inj := wrapFW()
	inj.FailAlways("EnsureNAT", errs.Unavailable).Delay("EnsureNAT", time.Hour).AfterWork("RemoveNAT", 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = fw.EnsureNAT(ctx, natRule("a", 1))
	inj.Reset()
	if n := inj.Calls("EnsureNAT"); n != 0 {
		t.Fatalf("Calls after Reset = %d", n)
	}
	if err := fw.EnsureNAT(context.Background(), natRule("a", 1)); err != nil {
		t.Fatalf("EnsureNAT after Reset: %v", err)
	}
	if err := fw.RemoveNAT(context.Background(), "a"); err != nil {
		t.Fatalf("RemoveNAT after Reset: %v", err)
	}
	if has(t, inner, "a") || inj.Calls("EnsureNAT") != 1 {
		t.Fatal("calls after Reset misbehaved")
	}
}

func TestNilAndZeroInjector(t *testing.T) {
	inner := memfw.New(nil)
	for name, inj := range map[string]*fakes.Injector{"nil": nil, "zero": {}} {
		fw := &fakes.Firewall{Firewall: inner, Injector: inj}
		if err := fw.EnsureNAT(context.Background(), natRule("o-"+name, len(name))); err != nil {
			t.Fatalf("%s injector: %v", name, err)
		}
		if n := inj.Calls("EnsureNAT"); n != map[string]int{"nil": 0, "zero": 1}[name] {
			t.Fatalf("%s injector: Calls = %d", name, n)
		}
		inj.Reset()
	}
	var zero fakes.Injector
	zero.Fail("Get", 1, errs.Internal)
	fw := &fakes.Firewall{Firewall: inner, Injector: &zero}
	if _, err := fw.Get(context.Background(), "o-nil"); errs.CodeOf(err) != errs.Internal {
		t.Fatalf("zero Injector with a rule: %v", err)
	}
}

func TestMalformedRulesPanic(t *testing.T) {
	inj := fakes.NewInjector()
	for name, f := range map[string]func(){
		"empty method":   func() { inj.Fail("", 1, errs.Internal) },
		"negative nth":   func() { inj.Fail("Get", -1, errs.Internal) },
		"code OK":        func() { inj.Fail("Get", 1, errs.OK) },
		"negative delay": func() { inj.Delay("Get", -time.Second) },
		"nil hook":       func() { inj.Hook("Get", nil) },
		"nil after hook": func() { inj.HookAfterWork("Get", nil) },
		"negative after": func() { inj.AfterWork("Get", -2) },
		"nil injector":   func() { (*fakes.Injector)(nil).FailAlways("Get", errs.Internal) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestConcurrentCalls(t *testing.T) {
	const n = 64
	inner := &recorder{}
	inj := fakes.NewInjector().Fail("Get", 17, errs.Unavailable).AfterWork("Get", 40)
	fw := &fakes.Firewall{Firewall: stubFirewall{inner}, Injector: inj}
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		failed, unknown int
	)
	for range n {
		wg.Go(func() {
			_, err := fw.Get(context.Background(), "a")
			mu.Lock()
			defer mu.Unlock()
			switch errs.CodeOf(err) {
			case errs.Unavailable:
				failed++
			case errs.OutcomeUnknown:
				unknown++
			case errs.OK:
			default:
				t.Errorf("Get: %v", err)
			}
		})
		// Rules added and read while calls run.
		wg.Go(func() { inj.Delay("List", 0); _ = inj.Calls("Get") })
	}
	wg.Wait()
	if failed != 1 || unknown != 1 {
		t.Fatalf("%d injected failures and %d lost answers, want 1 and 1", failed, unknown)
	}
	if inj.Calls("Get") != n || inner.count("Get") != n-1 {
		t.Fatalf("Calls = %d, inner calls = %d; want %d and %d", inj.Calls("Get"), inner.count("Get"), n, n-1)
	}
}
