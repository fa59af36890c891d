package fakes_test

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/fakes"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// method is one wrapped method: how to call it through the wrapper, and the
// value the stub's answer comes back as.
type method struct {
	name string
	call func(ctx context.Context) (any, error)
	want any // nil: the result is not compared (e.g. a wrapped stream)
}

// noCtx reports a method without a context (Close): its faults run with
// context.Background().
func (m method) noCtx() bool { return m.name == "Close" || m.name == "Stream.Close" }

// checkWrapper checks every method of a wrapper against its stub: that the
// table covers the interface, that calls are forwarded and counted, and
// that Fail, AfterWork and Delay apply to each method by its name.
func checkWrapper(t *testing.T, ifaces []reflect.Type, skip []string, inj *fakes.Injector, inner *recorder, methods []method) {
	t.Helper()
	var want, have []string
	for _, it := range ifaces {
		for i := range it.NumMethod() {
			if n := it.Method(i).Name; !slices.Contains(skip, n) {
				want = append(want, n)
			}
		}
	}
	for _, m := range methods {
		have = append(have, m.name)
	}
	for _, n := range want {
		if !slices.Contains(have, n) {
			t.Errorf("method %s of the interface is not tested", n)
		}
	}
	ctx := context.Background()
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			inj.Reset()
			before := inner.count(m.name)

			// Forwarded and counted.
			got, err := m.call(ctx)
			if err != nil {
				t.Fatalf("plain call: %v", err)
			}
			if m.want != nil && !reflect.DeepEqual(got, m.want) {
				t.Fatalf("plain call = %#v, want %#v", got, m.want)
			}
			if n := inner.count(m.name); n != before+1 {
				t.Fatalf("inner calls = %d, want %d", n, before+1)
			}
			if n := inj.Calls(m.name); n != 1 {
				t.Fatalf("Calls(%q) = %d, want 1", m.name, n)
			}

			// Fail: injected error, the work not done.
			inj.Fail(m.name, 2, errs.PermissionDenied)
			_, err = m.call(ctx)
			if errs.CodeOf(err) != errs.PermissionDenied || !errors.Is(err, fakes.ErrInjected) {
				t.Fatalf("Fail: %v (code %v), want an injected PermissionDenied", err, errs.CodeOf(err))
			}
			var e *errs.Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), m.name) {
				t.Fatalf("Fail: %q is not an *errs.Error saying it is injected into %s", err, m.name)
			}
			if n := inner.count(m.name); n != before+1 {
				t.Fatalf("Fail: the work was done (inner calls %d)", n)
			}

			// AfterWork: the work done, OutcomeUnknown, zero result.
			inj.AfterWork(m.name, 3)
			got, err = m.call(ctx)
			if errs.CodeOf(err) != errs.OutcomeUnknown || !errors.Is(err, fakes.ErrInjected) {
				t.Fatalf("AfterWork: %v (code %v), want an injected OutcomeUnknown", err, errs.CodeOf(err))
			}
			if got != nil && !reflect.ValueOf(got).IsZero() {
				t.Fatalf("AfterWork returned a result with its error: %#v", got)
			}
			if n := inner.count(m.name); n != before+2 {
				t.Fatalf("AfterWork: inner calls = %d, want %d", n, before+2)
			}

			// Delay honours the context; the work is not done.
			wantInner := before + 2
			if m.noCtx() {
				// Nothing can cut the delay short: it just waits.
				inj.Delay(m.name, time.Millisecond)
				start := time.Now()
				if _, err := m.call(ctx); err != nil {
					t.Fatalf("delayed call: %v", err)
				}
				if d := time.Since(start); d < time.Millisecond {
					t.Fatalf("delayed call took %v", d)
				}
				wantInner++
			} else {
				inj.Delay(m.name, 1<<62)
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				_, err = m.call(cctx)
				if errs.CodeOf(err) != errs.Canceled {
					t.Fatalf("Delay with a canceled context: %v (code %v), want Canceled", err, errs.CodeOf(err))
				}
			}
			if n := inner.count(m.name); n != wantInner {
				t.Fatalf("Delay: inner calls %d, want %d", n, wantInner)
			}
			if n := inj.Calls(m.name); n != 4 {
				t.Fatalf("Calls(%q) = %d, want 4", m.name, n)
			}
			inj.Reset()
		})
	}
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

func TestProviderWrapper(t *testing.T) {
	inner := &recorder{}
	inj := fakes.NewInjector()
	p := fakes.WrapProvider(stubGuestProvider{stubProvider{inner}}, inj)
	ga, ok := gaOf(p)
	if !ok {
		t.Fatal("WrapProvider lost the GuestAccess capability")
	}
	s, err := p.Watch(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	cred := guest.Credentials{Username: "admin"}
	checkWrapper(t, []reflect.Type{typeOf[provider.Driver](), typeOf[provider.GuestAccessDriver](), typeOf[provider.DriverStream]()},
		[]string{"Close"}, inj, inner, []method{
			{"List", func(ctx context.Context) (any, error) { return p.List(ctx, nil) }, []provider.VM{{ID: "vm-1"}}},
			{"Get", func(ctx context.Context) (any, error) { return p.Get(ctx, "vm-9") }, provider.VM{ID: "vm-9"}},
			{"Cursor", func(ctx context.Context) (any, error) { return p.Cursor(ctx) }, provider.Cursor("cursor-1")},
			{"Watch", func(ctx context.Context) (any, error) { return p.Watch(ctx, "cursor-1") }, nil},
			{"Provision", func(ctx context.Context) (any, error) {
				return p.Provision(ctx, provider.ProvisionSpec{Key: "k1"})
			}, provider.VM{ID: "vm-k1"}},
			{"PowerOn", func(ctx context.Context) (any, error) { return nil, p.PowerOn(ctx, "vm-1") }, nil},
			{"PowerOff", func(ctx context.Context) (any, error) { return nil, p.PowerOff(ctx, "vm-1") }, nil},
			{"Destroy", func(ctx context.Context) (any, error) { return nil, p.Destroy(ctx, "vm-1") }, nil},
			{"Zones", func(ctx context.Context) (any, error) { return p.Zones(ctx) }, []provider.Zone{{Name: "zone-a"}}},
			{"Templates", func(ctx context.Context) (any, error) { return p.Templates(ctx, "zone-a") },
				[]provider.Template{{ID: "tpl-1", Zone: "zone-a"}}},
			{"Preflight", func(ctx context.Context) (any, error) { return p.Preflight(ctx) },
				report.Report{Checks: []report.Check{{ID: "stub.check", Status: report.Pass}}}},
			{"ValidateCredentials", func(ctx context.Context) (any, error) {
				return nil, ga.ValidateCredentials(ctx, "vm-1", cred)
			}, nil},
			{"GuestExecutor", func(ctx context.Context) (any, error) { return ga.GuestExecutor(ctx, "vm-1", cred) }, nil},
			{"Next", func(ctx context.Context) (any, error) { return s.Next(ctx) },
				provider.Event{Type: provider.Created, VMID: "vm-1", Cursor: "cursor-2"}},
			{"Stream.Close", func(context.Context) (any, error) { return nil, s.Close() }, nil},
		})
}

func TestWrapProviderCapability(t *testing.T) {
	inj := fakes.NewInjector()
	plain := fakes.WrapProvider(stubProvider{&recorder{}}, inj)
	if _, ok := gaOf(plain); ok {
		t.Error("WrapProvider of a provider without guest access has it")
	}
	if _, ok := plain.(*fakes.Provider); !ok {
		t.Errorf("WrapProvider returned %T, want *fakes.Provider", plain)
	}
	withGA := fakes.WrapProvider(stubGuestProvider{stubProvider{&recorder{}}}, inj)
	if _, ok := withGA.(fakes.GuestProvider); !ok {
		t.Errorf("WrapProvider returned %T, want fakes.GuestProvider", withGA)
	}
	// A GuestProvider built by hand around a provider without guest access
	// reports Unimplemented rather than crashing.
	gp := fakes.GuestProvider{Provider: &fakes.Provider{Driver: stubProvider{&recorder{}}, Injector: inj}}
	if err := gp.ValidateCredentials(context.Background(), "vm-1", guest.Credentials{}); errs.CodeOf(err) != errs.Unimplemented {
		t.Errorf("ValidateCredentials without guest access = %v, want Unimplemented", err)
	}
	if _, err := gp.GuestExecutor(context.Background(), "vm-1", guest.Credentials{}); errs.CodeOf(err) != errs.Unimplemented {
		t.Errorf("GuestExecutor without guest access = %v, want Unimplemented", err)
	}
}

func TestProviderGuestExecutorIsWrapped(t *testing.T) {
	inner := &recorder{}
	inj := fakes.NewInjector()
	ga, _ := gaOf(fakes.WrapProvider(stubGuestProvider{stubProvider{inner}}, inj))
	ex, err := ga.GuestExecutor(context.Background(), "vm-1", guest.Credentials{Username: "root"})
	if err != nil {
		t.Fatal(err)
	}
	inj.Fail("Run", 1, errs.Unavailable)
	if _, err := ex.Run(context.Background(), guest.Command{Args: []string{"true"}}); errs.CodeOf(err) != errs.Unavailable {
		t.Fatalf("Run through a guest-access executor = %v, want the injected Unavailable", err)
	}
	if inner.count("Run") != 0 {
		t.Fatal("the failed Run reached the guest")
	}
	out, err := guest.Output(context.Background(), ex, guest.Command{Args: []string{"true"}})
	if err != nil || out != "ran" {
		t.Fatalf("second Run = %q, %v", out, err)
	}
	if ex.Family() != guest.Linux {
		t.Fatalf("Family = %v", ex.Family())
	}
}

func TestProviderLostAnswersCloseWhatTheyOpened(t *testing.T) {
	inner := &recorder{}
	inj := fakes.NewInjector().AfterWork("Watch", 1).AfterWork("GuestExecutor", 1)
	p := fakes.WrapProvider(stubGuestProvider{stubProvider{inner}}, inj)
	if s, err := p.Watch(context.Background(), ""); errs.CodeOf(err) != errs.OutcomeUnknown || s != nil {
		t.Fatalf("Watch = %v, %v; want nil, OutcomeUnknown", s, err)
	}
	if inner.count("Watch") != 1 || inner.count("Stream.Close") != 1 {
		t.Fatalf("the stream of the lost Watch: opened %d, closed %d", inner.count("Watch"), inner.count("Stream.Close"))
	}
	ga, _ := gaOf(p)
	if ex, err := ga.GuestExecutor(context.Background(), "vm-1", guest.Credentials{}); errs.CodeOf(err) != errs.OutcomeUnknown || ex != nil {
		t.Fatalf("GuestExecutor = %v, %v; want nil, OutcomeUnknown", ex, err)
	}
	if inner.count("GuestExecutor") != 1 || inner.count("Close") != 1 {
		t.Fatalf("the executor of the lost GuestExecutor: opened %d, closed %d", inner.count("GuestExecutor"), inner.count("Close"))
	}
}

func TestExecutorWrapper(t *testing.T) {
	inner := &recorder{}
	inj := fakes.NewInjector()
	ex := &fakes.Executor{Executor: guest.New(stubExecutor{inner}, nil), Injector: inj}
	checkWrapper(t, []reflect.Type{typeOf[guest.Driver]()}, []string{"Family"}, inj, inner, []method{
		{"Run", func(ctx context.Context) (any, error) { return ex.Run(ctx, guest.Command{Args: []string{"id"}}) },
			guest.Result{Stdout: []byte("ran\n")}},
		{"Upload", func(ctx context.Context) (any, error) {
			return nil, ex.Upload(ctx, "/tmp/x", strings.NewReader("data"), guest.UploadOptions{})
		}, nil},
		{"Close", func(context.Context) (any, error) {
			// A fresh executor each time: a *guest.Executor closes once.
			return nil, (&fakes.Executor{Executor: guest.New(stubExecutor{inner}, nil), Injector: inj}).Close()
		}, nil},
	})
	if ex.Family() != guest.Linux || inj.Calls("Family") != 0 {
		t.Errorf("Family = %v (counted %d), want linux, not counted", ex.Family(), inj.Calls("Family"))
	}
}

func TestExecutorAfterWorkIsSessionLost(t *testing.T) {
	inner := &recorder{}
	inj := fakes.NewInjector().AfterWork("Run", 0).AfterWork("Upload", 0)
	ex := fakes.WrapExecutor(guest.New(stubExecutor{inner}, nil), inj)
	_, err := ex.Run(context.Background(), guest.Command{Script: "systemctl restart sshd"})
	if !errors.Is(err, guest.ErrSessionLost) || errs.CodeOf(err) != errs.OutcomeUnknown || !errors.Is(err, fakes.ErrInjected) {
		t.Fatalf("Run = %v (code %v), want an injected lost session", err, errs.CodeOf(err))
	}
	if inner.count("Run") != 1 {
		t.Fatal("the command did not run")
	}
	err = ex.Upload(context.Background(), "/etc/motd", strings.NewReader("hi"), guest.UploadOptions{})
	if !errors.Is(err, guest.ErrSessionLost) || errs.CodeOf(err) != errs.OutcomeUnknown {
		t.Fatalf("Upload = %v, want a lost session", err)
	}
	if inner.count("Upload") != 1 {
		t.Fatal("the upload was not done")
	}
}

func TestIPAMWrapper(t *testing.T) {
	inner := &recorder{}
	inj := fakes.NewInjector()
	m := &fakes.IPAM{Driver: stubIPAM{inner}, Injector: inj}
	local := netip.MustParseAddr("10.0.0.5")
	checkWrapper(t, []reflect.Type{typeOf[ipam.Driver]()}, nil, inj, inner, []method{
		{"CreatePool", func(ctx context.Context) (any, error) { return nil, m.CreatePool(ctx, ipam.Pool{Name: "p"}) }, nil},
		{"DeletePool", func(ctx context.Context) (any, error) { return nil, m.DeletePool(ctx, "p") }, nil},
		{"Pool", func(ctx context.Context) (any, error) { return m.Pool(ctx, "p") },
			ipam.PoolInfo{Pool: ipam.Pool{Name: "p"}, Size: 10}},
		{"Pools", func(ctx context.Context) (any, error) { return m.Pools(ctx) },
			[]ipam.PoolInfo{{Pool: ipam.Pool{Name: "pool"}, Size: 10}}},
		{"Allocate", func(ctx context.Context) (any, error) { return m.Allocate(ctx, ipam.Request{Pool: "p", Owner: "o"}) },
			ipam.Allocation{Pool: "p", Owner: "o", Address: stubAddr}},
		{"Release", func(ctx context.Context) (any, error) { return nil, m.Release(ctx, "p", "o") }, nil},
		{"SetLocalIP", func(ctx context.Context) (any, error) { return m.SetLocalIP(ctx, "p", "o", local) },
			ipam.Allocation{Pool: "p", Owner: "o", Address: stubAddr, LocalIP: local}},
		{"Lookup", func(ctx context.Context) (any, error) { return m.Lookup(ctx, "p", "o") },
			ipam.Allocation{Pool: "p", Owner: "o", Address: stubAddr}},
		{"LookupAddress", func(ctx context.Context) (any, error) { return m.LookupAddress(ctx, "p", stubAddr) },
			ipam.Allocation{Pool: "p", Owner: "owner", Address: stubAddr}},
		{"Allocations", func(ctx context.Context) (any, error) { return m.Allocations(ctx, "p") },
			[]ipam.Allocation{{Pool: "p", Owner: "owner", Address: stubAddr}}},
	})
}

func TestFirewallWrapper(t *testing.T) {
	inner := &recorder{}
	inj := fakes.NewInjector()
	f := &fakes.Firewall{Firewall: stubFirewall{inner}, Injector: inj}
	checkWrapper(t, []reflect.Type{typeOf[natfw.Driver]()}, nil, inj, inner, []method{
		{"EnsureNAT", func(ctx context.Context) (any, error) { return nil, f.EnsureNAT(ctx, natfw.Rule{Owner: "o"}) }, nil},
		{"RemoveNAT", func(ctx context.Context) (any, error) { return nil, f.RemoveNAT(ctx, "o") }, nil},
		{"Get", func(ctx context.Context) (any, error) { return f.Get(ctx, "o") }, natfw.Rule{Owner: "o", Public: stubAddr}},
		{"List", func(ctx context.Context) (any, error) { return f.List(ctx) },
			[]natfw.Rule{{Owner: "owner", Public: stubAddr}}},
	})
}

func TestCMDBWrapper(t *testing.T) {
	inner := &recorder{}
	inj := fakes.NewInjector()
	c := &fakes.CMDB{CMDB: stubCMDB{inner}, Injector: inj}
	key := cmdb.Key{Provider: "p", VMID: "vm-1"}
	checkWrapper(t, []reflect.Type{typeOf[cmdb.Driver]()}, nil, inj, inner, []method{
		{"Upsert", func(ctx context.Context) (any, error) {
			return c.Upsert(ctx, cmdb.Record{Key: key, State: cmdb.Enrolling, Revision: 1})
		}, cmdb.Record{Key: key, State: cmdb.Enrolling, Revision: 2}},
		{"Get", func(ctx context.Context) (any, error) { return c.Get(ctx, key) },
			cmdb.Record{Key: key, State: cmdb.Available, Revision: 3}},
		{"List", func(ctx context.Context) (any, error) { return c.List(ctx, cmdb.Filter{}) },
			[]cmdb.Record{{Key: key, State: cmdb.Enrolled}}},
		{"Retire", func(ctx context.Context) (any, error) { return c.Retire(ctx, key) },
			cmdb.Record{Key: key, State: cmdb.Retired}},
	})
}
