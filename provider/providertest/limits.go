package providertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
)

// maxMessage is how long an error message about an out-of-limit value may
// be: no message grows with its input.
const maxMessage = 300

// hostile are the values every limited string is tried with, beside the
// empty one and the ones just past the class's maximum.
var hostile = []struct{ name, v string }{
	{"NUL", "a\x00b"},
	{"Newline", "a\nb"},
	{"InvalidUTF8", "a\xffb"},
	{"16kB", strings.Repeat("x", 16<<10)},
}

// badValues are the out-of-limit values of a class of at most max bytes
// (the empty value only when required).
func badValues(max int, required bool) []struct{ name, v string } {
	out := []struct{ name, v string }{{"MaxPlus1", strings.Repeat("m", max+1)}}
	if required {
		out = append(out, struct{ name, v string }{"Empty", ""})
	}
	return append(out, hostile...)
}

// state is the inventory as the limits cases compare it: every VM and
// template with its name and power state.
func (e *env) state() []string {
	e.t.Helper()
	var out []string
	for _, vm := range e.list(&provider.ListOptions{IncludeTemplates: true}) {
		out = append(out, vm.ID+" "+vm.Name+" "+string(vm.Power))
	}
	slices.Sort(out)
	return out
}

// invalid checks that err is a bounded InvalidArgument error.
func invalid(t *testing.T, what string, err error) {
	t.Helper()
	testkit.WantCode(t, what, err, errs.InvalidArgument)
	testkit.Bounded(t, what, err, maxMessage)
}

func testLimitsVMID(e *env) {
	before := e.state()
	calls := []struct {
		name string
		fn   func(ctx context.Context, id string) error
	}{
		{"Get", func(ctx context.Context, id string) error { _, err := e.p.Get(ctx, id); return err }},
		{"PowerOn", e.p.PowerOn},
		{"PowerOff", e.p.PowerOff},
		{"Destroy", e.p.Destroy},
	}
	for _, c := range calls {
		for _, v := range badValues(limit.MaxKey, true) {
			invalid(e.t, fmt.Sprintf("%s(VM id %s)", c.name, v.name), c.fn(e.ctx, v.v))
		}
	}
	// The longest valid ID reaches the driver: an unknown VM.
	longest := strings.Repeat("k", limit.MaxKey)
	_, err := e.p.Get(e.ctx, longest)
	testkit.WantCode(e.t, "Get(VM id of limit.MaxKey bytes)", err, errs.NotFound)
	testkit.WantCode(e.t, "PowerOn(VM id of limit.MaxKey bytes)", e.p.PowerOn(e.ctx, longest), errs.NotFound)
	testkit.WantCode(e.t, "Destroy(VM id of limit.MaxKey bytes)", e.p.Destroy(e.ctx, longest), errs.OK)
	if now := e.state(); !slices.Equal(before, now) {
		e.t.Errorf("calls with out-of-limit VM ids changed the inventory: before %v, now %v", before, now)
	}
}

func testLimitsZone(e *env) {
	for _, v := range badValues(limit.MaxName, false) {
		_, err := e.p.List(e.ctx, &provider.ListOptions{Zone: v.v})
		invalid(e.t, "List(Zone "+v.name+")", err)
		_, err = e.p.Templates(e.ctx, v.v)
		invalid(e.t, "Templates(zone "+v.name+")", err)
	}
	longest := strings.Repeat("z", limit.MaxName)
	_, err := e.p.List(e.ctx, &provider.ListOptions{Zone: longest})
	testkit.WantCode(e.t, "List(Zone of limit.MaxName bytes)", err, errs.NotFound)
	_, err = e.p.Templates(e.ctx, longest)
	testkit.WantCode(e.t, "Templates(zone of limit.MaxName bytes)", err, errs.NotFound)
}

// testLimitsSpec tries every limited field of a ProvisionSpec with each
// out-of-limit value (InvalidArgument, nothing made, a bounded message)
// and with its longest valid value, which must reach the driver: the spec
// then names a template that does not exist, so the answer is NotFound
// and nothing is made either.
func testLimitsSpec(e *env) {
	const secret = "managedvm-conformance-secret-Pa55!"
	doc := func(n int) []byte { return []byte(secret + strings.Repeat("#", n-len(secret))) }
	longHost := strings.Repeat(strings.Repeat("h", 63)+".", 3) + strings.Repeat("h", provider.MaxHostname-3*64) // 253 bytes
	fields := []struct {
		name     string
		max      int
		required bool
		set      func(s *provider.ProvisionSpec, v string)
	}{
		{"Key", limit.MaxKey, true, func(s *provider.ProvisionSpec, v string) { s.Key = v }},
		{"Name", limit.MaxName, true, func(s *provider.ProvisionSpec, v string) { s.Name = v }},
		{"Template", limit.MaxKey, true, func(s *provider.ProvisionSpec, v string) { s.Template = v }},
		{"Zone", limit.MaxName, true, func(s *provider.ProvisionSpec, v string) { s.Zone = v }},
		{"Network.Name", limit.MaxName, false, func(s *provider.ProvisionSpec, v string) { s.Network.Name = v }},
		{"Customization.SpecName", limit.MaxName, false, func(s *provider.ProvisionSpec, v string) {
			s.Customization = &provider.Customization{SpecName: v}
		}},
		{"Customization.Hostname", provider.MaxHostname, false, func(s *provider.ProvisionSpec, v string) {
			s.Customization = &provider.Customization{Hostname: v}
		}},
	}
	before := e.state()
	for _, f := range fields {
		for _, v := range badValues(f.max, f.required) {
			spec := e.spec("limits")
			f.set(&spec, v.v)
			vm, err := e.p.Provision(e.ctx, spec)
			if err == nil {
				e.cleanupVM(vm.ID)
			}
			invalid(e.t, fmt.Sprintf("Provision(%s %s)", f.name, v.name), err)
		}
		spec := e.spec("limits")
		spec.Template = e.name("no-such-template")
		longest := strings.Repeat("v", f.max)
		if f.name == "Customization.Hostname" {
			longest = longHost
		}
		f.set(&spec, longest)
		vm, err := e.p.Provision(e.ctx, spec)
		if err == nil {
			e.cleanupVM(vm.ID)
		}
		testkit.WantCode(e.t, fmt.Sprintf("Provision(%s of %d bytes, unknown template)", f.name, len(longest)), err, errs.NotFound)
	}
	for _, d := range []struct {
		name string
		set  func(c *provider.Customization, b []byte)
	}{
		{"UserData", func(c *provider.Customization, b []byte) { c.UserData = b }},
		{"MetaData", func(c *provider.Customization, b []byte) { c.MetaData = b }},
		{"NetworkConfig", func(c *provider.Customization, b []byte) { c.NetworkConfig = b }},
	} {
		spec := e.spec("limits")
		spec.Customization = &provider.Customization{}
		d.set(spec.Customization, doc(provider.MaxCustomizationData+1))
		vm, err := e.p.Provision(e.ctx, spec)
		if err == nil {
			e.cleanupVM(vm.ID)
		}
		what := "Provision(Customization." + d.name + " of MaxCustomizationData+1 bytes)"
		invalid(e.t, what, err)
		if err != nil && strings.Contains(fmt.Sprintf("%v %+v", err, err), secret) {
			e.t.Errorf("%s: the error shows the document: %.200s", what, err)
		}
		spec.Template = e.name("no-such-template")
		d.set(spec.Customization, doc(provider.MaxCustomizationData))
		_, err = e.p.Provision(e.ctx, spec)
		testkit.WantCode(e.t, "Provision(Customization."+d.name+" of MaxCustomizationData bytes, unknown template)", err, errs.NotFound)
	}
	if now := e.state(); !slices.Equal(before, now) {
		e.t.Errorf("rejected Provisions changed the inventory: before %v, now %v", before, now)
	}
}

func testLimitsCursor(e *env) {
	bad := []struct{ name, v string }{{"MaxPlus1", strings.Repeat("9", provider.MaxCursor+1)}}
	for _, v := range append(bad, hostile...) {
		st, err := e.p.Watch(e.ctx, provider.Cursor(v.v))
		if err == nil {
			_ = st.Close()
		}
		invalid(e.t, "Watch(cursor "+v.name+")", err)
	}
	// The longest valid cursor reaches the driver, which cannot resume
	// from it.
	st, err := e.p.Watch(e.ctx, provider.Cursor(strings.Repeat("c", provider.MaxCursor)))
	if err == nil {
		_, err = st.Next(e.ctx)
		_ = st.Close()
	}
	wantExpired(e.t, "Watch(cursor of MaxCursor bytes)", err)
	testkit.Bounded(e.t, "Watch(cursor of MaxCursor bytes)", err, maxMessage)
}

func testLimitsGuest(e *env) {
	ga, ok := e.p.GuestAccess()
	if !ok {
		e.t.Skip("the driver does not implement provider.GuestAccessDriver")
	}
	cred := guest.Password("user", "managedvm-conformance-Pa55!")
	if e.fx.GuestVM != "" {
		cred = e.fx.GuestCredentials
	}
	for _, v := range badValues(limit.MaxKey, true) {
		invalid(e.t, "ValidateCredentials(VM id "+v.name+")", ga.ValidateCredentials(e.ctx, v.v, cred))
		_, err := ga.GuestExecutor(e.ctx, v.v, cred)
		invalid(e.t, "GuestExecutor(VM id "+v.name+")", err)
	}
	vm := e.fx.GuestVM
	if vm == "" {
		vm = e.name("no-such-vm")
	}
	for _, v := range badValues(limit.MaxKey, false) {
		c := guest.Password(v.v, "managedvm-conformance-Pa55!")
		err := ga.ValidateCredentials(e.ctx, vm, c)
		invalid(e.t, "ValidateCredentials(user name "+v.name+")", err)
		e.noSecrets(err, c)
	}
}

// keepOpen hides the driver's Close (and every optional interface): the
// Close case must not close a driver the harness may share.
type keepOpen struct{ provider.Driver }

func testCallsAfterClose(e *env) {
	p := provider.New(keepOpen{e.d}, nil)
	st, err := p.Watch(e.ctx, "")
	if err != nil {
		e.t.Fatalf("Watch: %v", err)
	}
	if err := p.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	_, err = st.Next(e.ctx)
	if !errors.Is(err, provider.ErrStreamClosed) {
		e.t.Errorf("Next on a stream of a closed Provider: %v, want ErrStreamClosed", err)
	}
	id := e.name("after-close")
	_, err = p.List(e.ctx, nil)
	testkit.WantCode(e.t, "List after Close", err, errs.FailedPrecondition)
	_, err = p.Get(e.ctx, id)
	testkit.WantCode(e.t, "Get after Close", err, errs.FailedPrecondition)
	_, err = p.Cursor(e.ctx)
	testkit.WantCode(e.t, "Cursor after Close", err, errs.FailedPrecondition)
	_, err = p.Watch(e.ctx, "")
	testkit.WantCode(e.t, "Watch after Close", err, errs.FailedPrecondition)
	_, err = p.Provision(e.ctx, e.spec("after-close"))
	testkit.WantCode(e.t, "Provision after Close", err, errs.FailedPrecondition)
	testkit.WantCode(e.t, "PowerOn after Close", p.PowerOn(e.ctx, id), errs.FailedPrecondition)
	testkit.WantCode(e.t, "PowerOff after Close", p.PowerOff(e.ctx, id), errs.FailedPrecondition)
	testkit.WantCode(e.t, "Destroy after Close", p.Destroy(e.ctx, id), errs.FailedPrecondition)
	_, err = p.Zones(e.ctx)
	testkit.WantCode(e.t, "Zones after Close", err, errs.FailedPrecondition)
	_, err = p.Templates(e.ctx, "")
	testkit.WantCode(e.t, "Templates after Close", err, errs.FailedPrecondition)
	_, err = p.Preflight(e.ctx)
	testkit.WantCode(e.t, "Preflight after Close", err, errs.FailedPrecondition)
	if err := p.Close(); err != nil {
		e.t.Errorf("second Close: %v", err)
	}
	if n := e.countNamed(e.name("after-close")); n != 0 {
		e.t.Errorf("Provision after Close made %d VMs", n)
	}
}

// testTelemetry checks one span per call with error.type on failures,
// the call metrics, no span per Next but managedvm.provider.events, and
// WatchStats.
func testTelemetry(e *env) {
	r := obstest.New(e.t)
	p := provider.New(e.d, &provider.Options{TracerProvider: r.TP, MeterProvider: r.MP})
	if _, err := p.Zones(e.ctx); err != nil {
		e.t.Fatalf("Zones: %v", err)
	}
	_, err := p.Get(e.ctx, e.name("no-such-vm"))
	testkit.MustCode(e.t, "Get of an unknown VM", err, errs.NotFound)
	_, err = p.Get(e.ctx, "bad\nid")
	testkit.MustCode(e.t, "Get of an out-of-limit id", err, errs.InvalidArgument)
	cur, err := p.Cursor(e.ctx)
	if err != nil {
		e.t.Fatalf("Cursor: %v", err)
	}
	st, err := p.Watch(e.ctx, cur)
	if err != nil {
		e.t.Fatalf("Watch: %v", err)
	}
	defer st.Close()
	vm, err := p.Provision(e.ctx, e.spec("telemetry"))
	if err != nil {
		e.t.Fatalf("Provision: %v", err)
	}
	e.cleanupVM(vm.ID)
	for {
		ev, err := st.Next(e.ctx)
		if err != nil {
			e.t.Fatalf("Next (waiting for the Created event): %v", err)
		}
		if ev.VMID == vm.ID && ev.Type == provider.Created {
			break
		}
	}

	want := func(op string, n int, codes ...string) {
		e.t.Helper()
		spans := r.SpansNamed(op)
		if len(spans) != n {
			e.t.Errorf("%d spans named %s, want %d", len(spans), op, n)
			return
		}
		for i, s := range spans {
			code := ""
			if i < len(codes) {
				code = codes[i]
			}
			if s.Code != code || s.Error != (code != "") {
				e.t.Errorf("span %s #%d: error.type %q (error status %v), want %q", op, i, s.Code, s.Error, code)
			}
			if s.Attrs["driver"] == "" {
				e.t.Errorf("span %s #%d has no driver attribute", op, i)
			}
		}
	}
	want("provider.Zones", 1)
	want("provider.Get", 2, "NotFound", "InvalidArgument")
	want("provider.Cursor", 1)
	want("provider.Watch", 1)
	want("provider.Provision", 1)
	if n := len(r.SpansNamed("provider.Stream.Next")); n != 0 {
		e.t.Errorf("%d spans for Stream.Next, want none", n)
	}
	if n := r.Sum("managedvm.calls", map[string]string{"op": "provider.Get"}); n != 2 {
		e.t.Errorf("managedvm.calls{op=provider.Get} = %d, want 2", n)
	}
	if n := r.Sum("managedvm.errors", map[string]string{"op": "provider.Get", "code": "NotFound"}); n != 1 {
		e.t.Errorf("managedvm.errors{op=provider.Get,code=NotFound} = %d, want 1", n)
	}
	if n := r.Sum("managedvm.errors", map[string]string{"op": "provider.Get", "code": "InvalidArgument"}); n != 1 {
		e.t.Errorf("managedvm.errors{op=provider.Get,code=InvalidArgument} = %d, want 1", n)
	}
	if n := r.Sum("managedvm.errors", map[string]string{"op": "provider.Zones"}); n != 0 {
		e.t.Errorf("managedvm.errors{op=provider.Zones} = %d, want 0", n)
	}
	if n := r.Sum("managedvm.provider.events", map[string]string{"kind": "created"}); n < 1 {
		e.t.Errorf("managedvm.provider.events{kind=created} = %d, want at least 1", n)
	}
	stats := p.WatchStats()
	if stats.Events < 1 || stats.LastDelivered.IsZero() {
		e.t.Errorf("WatchStats %+v: want the events delivered", stats)
	}
}
