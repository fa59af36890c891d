package providertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// Harness gives the suite a driver to test.
type Harness interface {
	// NewDriver returns the driver under test and the fixture that
	// describes its world. The suite runs the driver through
	// provider.New, always. It is called once per test case; it may
	// return a fresh driver each time or share one (the suite names its
	// VMs uniquely, destroys them in t.Cleanup, and never closes the
	// driver). Release resources with t.Cleanup.
	NewDriver(t *testing.T) (provider.Driver, Fixture)
}

// HarnessFunc makes a function a Harness.
type HarnessFunc func(t *testing.T) (provider.Driver, Fixture)

// NewDriver calls f.
func (f HarnessFunc) NewDriver(t *testing.T) (provider.Driver, Fixture) { return f(t) }

// Fixture describes what the suite may use in the provider's world.
type Fixture struct {
	// Zone is an availability zone the suite provisions into. Required.
	Zone string
	// Template is the ID or name of a template in Zone. Required.
	Template string
	// OtherZone, if set, is a second zone: List with Zone filters are
	// checked against it.
	OtherZone string
	// Network, if set, connects the VMs the suite provisions.
	Network provider.Network

	// GuestVM is the ID of a powered-on VM whose guest tools run and where
	// GuestCredentials are valid. The guest-access cases run only when the
	// provider implements provider.GuestAccess and GuestVM is set.
	GuestVM          string
	GuestCredentials guest.Credentials

	// OutOfBandRename, if set, renames a VM behind the provider's back (as
	// an operator would in vCenter); the suite checks that Watch reports
	// it. Without it that case is skipped.
	OutOfBandRename func(ctx context.Context, vmID, name string) error
	// OutOfBandDelete, if set, deletes a VM behind the provider's back.
	OutOfBandDelete func(ctx context.Context, vmID string) error

	// Parallelism is how many goroutines the concurrency cases use; zero
	// means 32.
	Parallelism int
	// Timeout bounds each case; zero means two minutes. A Watch that does
	// not deliver an expected event within it fails the case.
	Timeout time.Duration
}

// env is one case's provider, fixture and helpers.
type env struct {
	t      *testing.T
	d      provider.Driver
	p      *provider.Provider
	fx     Fixture
	ctx    context.Context
	prefix string
	n      *atomic.Int64
}

// Run runs the conformance suite against the providers h makes. Every case
// is a subtest; see the package documentation for the list.
func Run(t *testing.T, h Harness) {
	prefix := fmt.Sprintf("ct%04x", rand.IntN(1<<16))
	var n atomic.Int64
	setup := func(t *testing.T) *env {
		t.Helper()
		d, fx := h.NewDriver(t)
		if d == nil {
			t.Fatal("harness returned a nil driver")
		}
		if fx.Zone == "" || fx.Template == "" {
			t.Fatal("harness fixture needs Zone and Template")
		}
		if fx.Parallelism <= 0 {
			fx.Parallelism = 32
		}
		if fx.Timeout <= 0 {
			fx.Timeout = 2 * time.Minute
		}
		ctx, cancel := context.WithTimeout(t.Context(), fx.Timeout)
		t.Cleanup(cancel)
		return &env{t: t, d: d, p: provider.New(d, nil), fx: fx, ctx: ctx, prefix: prefix, n: &n}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(setup(t)) })
	}
}

var cases = []struct {
	name string
	fn   func(e *env)
}{
	{"Discovery/Zones", testZones},
	{"Discovery/Templates", testTemplates},
	{"Discovery/TemplatesUnknownZone", testTemplatesUnknownZone},
	{"Inventory/TemplatesInList", testTemplatesInList},
	{"Inventory/GetUnknown", testGetUnknown},
	{"Inventory/ListUnknownZone", testListUnknownZone},
	{"Inventory/ReturnsCopies", testReturnsCopies},
	{"Inventory/CanceledContext", testInventoryCanceled},
	{"Provision/HappyPath", testProvisionHappyPath},
	{"Provision/PowerOn", testProvisionPowerOn},
	{"Provision/Size", testProvisionSize},
	{"Provision/ByTemplateIDAndName", testProvisionByTemplateIDAndName},
	{"Provision/IdempotentByKey", testProvisionIdempotent},
	{"Provision/DuplicateName", testProvisionDuplicateName},
	{"Provision/InvalidSpec", testProvisionInvalid},
	{"Provision/UnknownTemplate", testProvisionUnknownTemplate},
	{"Provision/UnknownZone", testProvisionUnknownZone},
	{"Provision/CanceledContext", testProvisionCanceled},
	{"Power/Idempotent", testPowerIdempotent},
	{"Power/UnknownVM", testPowerUnknown},
	{"Power/Template", testPowerTemplate},
	{"Power/CanceledContext", testPowerCanceled},
	{"Destroy/Idempotent", testDestroyIdempotent},
	{"Destroy/Template", testDestroyTemplate},
	{"Destroy/CanceledContext", testDestroyCanceled},
	{"Watch/Lifecycle", testWatchLifecycle},
	{"Watch/ResumeFromCursor", testWatchResume},
	{"Watch/CursorBeforeList", testWatchCursorBeforeList},
	{"Watch/EmptyCursorIsNow", testWatchEmptyCursor},
	{"Watch/BogusCursor", testWatchBogusCursor},
	{"Watch/NextCanceled", testWatchNextCanceled},
	{"Watch/NextDeadline", testWatchNextDeadline},
	{"Watch/CloseUnblocksNext", testWatchClose},
	{"Watch/TwoWatchers", testWatchTwoWatchers},
	{"Watch/OutOfBandRename", testWatchOutOfBandRename},
	{"Watch/OutOfBandDelete", testWatchOutOfBandDelete},
	{"Concurrency/DistinctProvisions", testConcurrentDistinct},
	{"Concurrency/SameKey", testConcurrentSameKey},
	{"Preflight/Report", testPreflight},
	{"Preflight/CanceledContext", testPreflightCanceled},
	{"GuestAccess/ValidCredentials", testGuestValid},
	{"GuestAccess/WrongPassword", testGuestWrongPassword},
	{"GuestAccess/UnknownUser", testGuestUnknownUser},
	{"GuestAccess/InvalidCredentials", testGuestInvalidCredentials},
	{"GuestAccess/UnknownVM", testGuestUnknownVM},
	{"GuestAccess/PoweredOffVM", testGuestPoweredOff},
	{"GuestAccess/Executor", testGuestExecutor},
	{"GuestAccess/ExecutorWrongPassword", testGuestExecutorWrongPassword},
	{"Limits/VMID", testLimitsVMID},
	{"Limits/Zone", testLimitsZone},
	{"Limits/ProvisionSpec", testLimitsSpec},
	{"Limits/Cursor", testLimitsCursor},
	{"Limits/GuestAccess", testLimitsGuest},
	{"Close/CallsAfterClose", testCallsAfterClose},
	{"Telemetry/SpansAndMetrics", testTelemetry},
}

// ---- helpers ----

// name returns a VM name unique to this run.
func (e *env) name(label string) string {
	return fmt.Sprintf("%s-%d-%s", e.prefix, e.n.Add(1), label)
}

func (e *env) spec(label string) provider.ProvisionSpec {
	n := e.name(label)
	return provider.ProvisionSpec{Key: "key-" + n, Name: n, Template: e.fx.Template, Zone: e.fx.Zone, Network: e.fx.Network}
}

// provision provisions spec, fails the case on error, and destroys the VM
// at cleanup.
func (e *env) provision(spec provider.ProvisionSpec) provider.VM {
	e.t.Helper()
	vm, err := e.p.Provision(e.ctx, spec)
	if err != nil {
		e.t.Fatalf("Provision(%q): %v", spec.Name, err)
	}
	if vm.ID == "" {
		e.t.Fatalf("Provision(%q) returned a VM without an ID", spec.Name)
	}
	e.cleanupVM(vm.ID)
	return vm
}

func (e *env) cleanupVM(id string) {
	p := e.p
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = p.Destroy(ctx, id)
	})
}

func (e *env) get(id string) provider.VM {
	e.t.Helper()
	vm, err := e.p.Get(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Get(%q): %v", id, err)
	}
	return vm
}

func (e *env) list(opts *provider.ListOptions) []provider.VM {
	e.t.Helper()
	vms, err := e.p.List(e.ctx, opts)
	if err != nil {
		e.t.Fatalf("List(%+v): %v", opts, err)
	}
	return vms
}

// snapshot returns every VM and template ID, sorted.
func (e *env) snapshot() []string {
	e.t.Helper()
	var ids []string
	for _, vm := range e.list(&provider.ListOptions{IncludeTemplates: true}) {
		ids = append(ids, vm.ID)
	}
	slices.Sort(ids)
	return ids
}

func (e *env) assertUnchanged(before []string, after string) {
	e.t.Helper()
	if now := e.snapshot(); !slices.Equal(before, now) {
		e.t.Errorf("after %s the inventory changed: before %v, now %v", after, before, now)
	}
}

func (e *env) countNamed(name string) int {
	e.t.Helper()
	n := 0
	for _, vm := range e.list(&provider.ListOptions{IncludeTemplates: true}) {
		if vm.Name == name {
			n++
		}
	}
	return n
}

func canceled(ctx context.Context) context.Context {
	c, cancel := context.WithCancel(ctx)
	cancel()
	return c
}

// template returns the fixture's template as Templates reports it.
func (e *env) template() provider.Template {
	e.t.Helper()
	ts, err := e.p.Templates(e.ctx, e.fx.Zone)
	if err != nil {
		e.t.Fatalf("Templates(%q): %v", e.fx.Zone, err)
	}
	for _, tm := range ts {
		if tm.ID == e.fx.Template || tm.Name == e.fx.Template {
			return tm
		}
	}
	e.t.Fatalf("Templates(%q) does not list the fixture's template %q: %+v", e.fx.Zone, e.fx.Template, ts)
	return provider.Template{}
}

func (e *env) watch(cur provider.Cursor) *provider.Stream {
	e.t.Helper()
	st, err := e.p.Watch(e.ctx, cur)
	if err != nil {
		e.t.Fatalf("Watch(%q): %v", cur, err)
	}
	e.t.Cleanup(func() { _ = st.Close() })
	return st
}

func (e *env) cursor() provider.Cursor {
	e.t.Helper()
	cur, err := e.p.Cursor(e.ctx)
	if err != nil {
		e.t.Fatalf("Cursor: %v", err)
	}
	return cur
}

// nextFor returns the next event about vmID, skipping others.
func (e *env) nextFor(st *provider.Stream, vmID string) provider.Event {
	e.t.Helper()
	for {
		ev, err := st.Next(e.ctx)
		if err != nil {
			e.t.Fatalf("Next (waiting for an event about %s): %v", vmID, err)
		}
		if ev.Cursor == "" {
			e.t.Errorf("event %v for %s has no cursor", ev.Type, ev.VMID)
		}
		if ev.Type != provider.Deleted && ev.VM.ID != ev.VMID {
			e.t.Errorf("%v event: VMID %q but VM.ID %q", ev.Type, ev.VMID, ev.VM.ID)
		}
		if ev.VMID == vmID {
			return ev
		}
	}
}

// expect reads the events about vmID until one of type typ satisfies ok.
// Only Changed events may come before it; anything else is out of order.
// It returns every event about vmID it read, the matching one last.
func (e *env) expect(st *provider.Stream, vmID string, typ provider.EventType, what string, ok func(provider.Event) bool) []provider.Event {
	e.t.Helper()
	var seen []provider.Event
	for {
		ev := e.nextFor(st, vmID)
		seen = append(seen, ev)
		if ev.Type == typ && (ok == nil || ok(ev)) {
			return seen
		}
		if ev.Type != provider.Changed {
			e.t.Fatalf("waiting for %s of %s, got a %v event first (out of order)", what, vmID, ev.Type)
		}
	}
}

func isPower(s provider.PowerState) func(provider.Event) bool {
	return func(ev provider.Event) bool { return ev.VM.Power == s }
}

// ---- Discovery ----

func testZones(e *env) {
	zones, err := e.p.Zones(e.ctx)
	if err != nil {
		e.t.Fatalf("Zones: %v", err)
	}
	seen := map[string]bool{}
	for _, z := range zones {
		if z.Name == "" {
			e.t.Errorf("a zone has no name: %+v", z)
		}
		if seen[z.Name] {
			e.t.Errorf("zone %q listed twice", z.Name)
		}
		seen[z.Name] = true
	}
	for _, want := range []string{e.fx.Zone, e.fx.OtherZone} {
		if want != "" && !seen[want] {
			e.t.Errorf("Zones does not list fixture zone %q (got %v)", want, zones)
		}
	}
	_, err = e.p.Zones(canceled(e.ctx))
	testkit.MustCode(e.t, "Zones with a canceled context", err, errs.Canceled)
}

func testTemplates(e *env) {
	tm := e.template()
	if tm.ID == "" || tm.Name == "" || tm.Zone != e.fx.Zone {
		e.t.Errorf("template %+v: want an ID, a name and zone %q", tm, e.fx.Zone)
	}
	ts, err := e.p.Templates(e.ctx, e.fx.Zone)
	if err != nil {
		e.t.Fatalf("Templates(%q): %v", e.fx.Zone, err)
	}
	for _, x := range ts {
		if x.Zone != e.fx.Zone {
			e.t.Errorf("Templates(%q) lists %q of zone %q", e.fx.Zone, x.Name, x.Zone)
		}
	}
	all, err := e.p.Templates(e.ctx, "")
	if err != nil {
		e.t.Fatalf(`Templates(""): %v`, err)
	}
	if !slices.ContainsFunc(all, func(x provider.Template) bool { return x.ID == tm.ID }) {
		e.t.Errorf(`Templates("") does not list %q`, tm.ID)
	}
	if len(all) < len(ts) {
		e.t.Errorf(`Templates("") lists %d templates, fewer than zone %q alone (%d)`, len(all), e.fx.Zone, len(ts))
	}
	if e.fx.OtherZone != "" {
		other, err := e.p.Templates(e.ctx, e.fx.OtherZone)
		if err != nil {
			e.t.Fatalf("Templates(%q): %v", e.fx.OtherZone, err)
		}
		for _, x := range other {
			if x.Zone != e.fx.OtherZone || x.ID == tm.ID {
				e.t.Errorf("Templates(%q) lists %+v", e.fx.OtherZone, x)
			}
		}
	}
}

func testTemplatesUnknownZone(e *env) {
	_, err := e.p.Templates(e.ctx, e.name("no-such-zone"))
	testkit.MustCode(e.t, "Templates of an unknown zone", err, errs.NotFound)
}

// ---- Inventory ----

func testTemplatesInList(e *env) {
	tm := e.template()
	for _, vm := range e.list(nil) {
		if vm.Template {
			e.t.Errorf("List(nil) includes template %q", vm.ID)
		}
	}
	for _, vm := range e.list(&provider.ListOptions{Zone: e.fx.Zone}) {
		if vm.Template {
			e.t.Errorf("List(Zone) includes template %q", vm.ID)
		}
	}
	withT := e.list(&provider.ListOptions{IncludeTemplates: true})
	i := slices.IndexFunc(withT, func(vm provider.VM) bool { return vm.ID == tm.ID })
	if i < 0 {
		e.t.Fatalf("List(IncludeTemplates) does not include template %q", tm.ID)
	}
	if !withT[i].Template {
		e.t.Errorf("template %q listed with Template unset", tm.ID)
	}
	got := e.get(tm.ID)
	if !got.Template || got.Name != tm.Name {
		e.t.Errorf("Get(template) = %+v, want Template set and name %q", got, tm.Name)
	}
}

func testGetUnknown(e *env) {
	_, err := e.p.Get(e.ctx, e.name("no-such-vm"))
	testkit.MustCode(e.t, "Get of an unknown VM", err, errs.NotFound)
}

func testListUnknownZone(e *env) {
	_, err := e.p.List(e.ctx, &provider.ListOptions{Zone: e.name("no-such-zone")})
	testkit.MustCode(e.t, "List of an unknown zone", err, errs.NotFound)
}

func testReturnsCopies(e *env) {
	vm := e.provision(e.spec("copies"))
	mutate := func(v *provider.VM) {
		v.Name = "mutated"
		v.Power = provider.Suspended
		for k := range v.Attributes {
			v.Attributes[k] = "mutated"
		}
		if v.Attributes != nil {
			v.Attributes["managedvm-suite-added"] = "x"
		}
		for i := range v.Guest.IPs {
			v.Guest.IPs[i] = v.Guest.IPs[i].Next()
		}
	}
	show := func(v provider.VM) string {
		return fmt.Sprintf("name=%s power=%s ips=%v attrs=%v", v.Name, v.Power, v.Guest.IPs, v.Attributes)
	}
	before := show(e.get(vm.ID))
	mutate(&vm)
	got := e.get(vm.ID)
	mutate(&got)
	for _, l := range e.list(nil) {
		mutate(&l)
	}
	for _, l := range e.list(&provider.ListOptions{Zone: e.fx.Zone}) {
		mutate(&l)
	}
	if after := show(e.get(vm.ID)); after != before {
		e.t.Errorf("changing returned values changed the provider:\nbefore %s\nafter  %s", before, after)
	}
}

func testInventoryCanceled(e *env) {
	ctx := canceled(e.ctx)
	_, err := e.p.List(ctx, nil)
	testkit.MustCode(e.t, "List with a canceled context", err, errs.Canceled)
	_, err = e.p.Get(ctx, e.fx.Template)
	testkit.MustCode(e.t, "Get with a canceled context", err, errs.Canceled)
	_, err = e.p.Cursor(ctx)
	testkit.MustCode(e.t, "Cursor with a canceled context", err, errs.Canceled)
}

// ---- Provision ----

func testProvisionHappyPath(e *env) {
	spec := e.spec("happy")
	vm := e.provision(spec)
	check := func(where string, got provider.VM) {
		e.t.Helper()
		if got.ID != vm.ID || got.Name != spec.Name || got.Zone != e.fx.Zone || got.Template {
			e.t.Errorf("%s: VM %+v, want ID %q, name %q, zone %q, not a template", where, got, vm.ID, spec.Name, e.fx.Zone)
		}
		if got.Power == provider.PoweredOn {
			e.t.Errorf("%s: VM is powered on though PowerOn was not asked", where)
		}
	}
	check("Provision", vm)
	check("Get", e.get(vm.ID))
	n := 0
	for _, l := range e.list(nil) {
		if l.ID == vm.ID {
			n++
			check("List", l)
		}
	}
	if n != 1 {
		e.t.Errorf("List(nil) holds the new VM %d times, want once", n)
	}
	if !slices.ContainsFunc(e.list(&provider.ListOptions{Zone: e.fx.Zone}), func(l provider.VM) bool { return l.ID == vm.ID }) {
		e.t.Errorf("List(Zone %q) does not hold the new VM", e.fx.Zone)
	}
	if e.fx.OtherZone != "" {
		if slices.ContainsFunc(e.list(&provider.ListOptions{Zone: e.fx.OtherZone}), func(l provider.VM) bool { return l.ID == vm.ID }) {
			e.t.Errorf("List(Zone %q) holds a VM of zone %q", e.fx.OtherZone, e.fx.Zone)
		}
	}
}

func testProvisionPowerOn(e *env) {
	spec := e.spec("poweron")
	spec.PowerOn = true
	vm := e.provision(spec)
	if vm.Power != provider.PoweredOn {
		e.t.Errorf("Provision(PowerOn) returned power %q", vm.Power)
	}
	if got := e.get(vm.ID); got.Power != provider.PoweredOn {
		e.t.Errorf("after Provision(PowerOn), Get says power %q", got.Power)
	}
}

func testProvisionSize(e *env) {
	spec := e.spec("size")
	spec.CPUs, spec.MemoryMiB = 2, 2048
	vm := e.provision(spec)
	got := e.get(vm.ID)
	if vm.CPUs != 2 || vm.MemoryMiB != 2048 || got.CPUs != 2 || got.MemoryMiB != 2048 {
		e.t.Errorf("asked for 2 CPUs and 2048 MiB: Provision gave %d/%d, Get %d/%d", vm.CPUs, vm.MemoryMiB, got.CPUs, got.MemoryMiB)
	}
}

func testProvisionByTemplateIDAndName(e *env) {
	tm := e.template()
	for _, ref := range []string{tm.ID, tm.Name} {
		spec := e.spec("tmplref")
		spec.Template = ref
		vm := e.provision(spec)
		if vm.Name != spec.Name {
			e.t.Errorf("Provision(Template %q) made %+v", ref, vm)
		}
	}
}

func testProvisionIdempotent(e *env) {
	spec := e.spec("idem")
	first := e.provision(spec)
	again, err := e.p.Provision(e.ctx, spec)
	if err != nil {
		e.t.Fatalf("second Provision with the same key: %v", err)
	}
	if again.ID != first.ID {
		e.t.Errorf("second Provision with the same key made VM %q, want %q", again.ID, first.ID)
	}
	if n := e.countNamed(spec.Name); n != 1 {
		e.t.Errorf("after two Provisions with one key, %d VMs are named %q, want 1", n, spec.Name)
	}
}

func testProvisionDuplicateName(e *env) {
	spec := e.spec("dup")
	e.provision(spec)
	before := e.snapshot()
	other := spec
	other.Key = spec.Key + "-other"
	_, err := e.p.Provision(e.ctx, other)
	testkit.MustCode(e.t, "Provision of a taken name with another key", err, errs.AlreadyExists)
	e.assertUnchanged(before, "a rejected Provision")
	// The rejected request must not have claimed its key.
	other.Name = e.name("dup-retry")
	vm := e.provision(other)
	if vm.Name != other.Name {
		e.t.Errorf("retry with the rejected key and a free name made %+v, want name %q", vm, other.Name)
	}
}

func testProvisionInvalid(e *env) {
	bad := []struct {
		name   string
		mutate func(*provider.ProvisionSpec)
	}{
		{"NoKey", func(s *provider.ProvisionSpec) { s.Key = "" }},
		{"NoName", func(s *provider.ProvisionSpec) { s.Name = "" }},
		{"NoTemplate", func(s *provider.ProvisionSpec) { s.Template = "" }},
		{"NoZone", func(s *provider.ProvisionSpec) { s.Zone = "" }},
		{"NegativeCPUs", func(s *provider.ProvisionSpec) { s.CPUs = -1 }},
		{"NegativeMemory", func(s *provider.ProvisionSpec) { s.MemoryMiB = -1024 }},
		{"NegativeTimeout", func(s *provider.ProvisionSpec) { s.Timeout = -time.Second }},
		{"BadVLAN", func(s *provider.ProvisionSpec) { s.Network.VLAN = 5000 }},
		{"BadHostname", func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{Hostname: "bad_host!"}
		}},
		{"BadStaticAddress", func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{Static: &provider.StaticIP{}}
		}},
	}
	before := e.snapshot()
	for _, c := range bad {
		e.t.Run(c.name, func(t *testing.T) {
			spec := e.spec("invalid")
			c.mutate(&spec)
			vm, err := e.p.Provision(e.ctx, spec)
			if got := errs.CodeOf(err); got != errs.InvalidArgument {
				if err == nil && vm.ID != "" {
					e.cleanupVM(vm.ID)
				}
				t.Fatalf("Provision(%s): error %v has code %v, want InvalidArgument", c.name, err, got)
			}
		})
	}
	e.assertUnchanged(before, "rejected Provisions")
}

func testProvisionUnknownTemplate(e *env) {
	before := e.snapshot()
	spec := e.spec("notmpl")
	spec.Template = e.name("no-such-template")
	_, err := e.p.Provision(e.ctx, spec)
	testkit.MustCode(e.t, "Provision from an unknown template", err, errs.NotFound)
	e.assertUnchanged(before, "a rejected Provision")
	spec.Template = e.fx.Template // the key is still free
	e.provision(spec)
}

func testProvisionUnknownZone(e *env) {
	before := e.snapshot()
	spec := e.spec("nozone")
	spec.Zone = e.name("no-such-zone")
	_, err := e.p.Provision(e.ctx, spec)
	testkit.MustCode(e.t, "Provision into an unknown zone", err, errs.NotFound)
	e.assertUnchanged(before, "a rejected Provision")
}

func testProvisionCanceled(e *env) {
	before := e.snapshot()
	spec := e.spec("canceled")
	spec.PowerOn = true
	_, err := e.p.Provision(canceled(e.ctx), spec)
	testkit.MustCode(e.t, "Provision with a canceled context", err, errs.Canceled)
	e.assertUnchanged(before, "a canceled Provision")
}

// ---- Power ----

func testPowerIdempotent(e *env) {
	vm := e.provision(e.spec("power"))
	steps := []struct {
		on   bool
		want provider.PowerState
	}{{true, provider.PoweredOn}, {true, provider.PoweredOn}, {false, provider.PoweredOff}, {false, provider.PoweredOff}, {true, provider.PoweredOn}}
	for i, s := range steps {
		var err error
		if s.on {
			err = e.p.PowerOn(e.ctx, vm.ID)
		} else {
			err = e.p.PowerOff(e.ctx, vm.ID)
		}
		if err != nil {
			e.t.Fatalf("step %d (power on=%v): %v", i, s.on, err)
		}
		if got := e.get(vm.ID).Power; got != s.want {
			e.t.Fatalf("step %d (power on=%v): power is %q, want %q", i, s.on, got, s.want)
		}
	}
}

func testPowerUnknown(e *env) {
	id := e.name("no-such-vm")
	testkit.MustCode(e.t, "PowerOn of an unknown VM", e.p.PowerOn(e.ctx, id), errs.NotFound)
	testkit.MustCode(e.t, "PowerOff of an unknown VM", e.p.PowerOff(e.ctx, id), errs.NotFound)
}

func testPowerTemplate(e *env) {
	tm := e.template()
	testkit.MustCode(e.t, "PowerOn of a template", e.p.PowerOn(e.ctx, tm.ID), errs.FailedPrecondition)
	got := e.get(tm.ID)
	if !got.Template || got.Power == provider.PoweredOn {
		e.t.Errorf("after a rejected PowerOn the template is %+v", got)
	}
}

func testPowerCanceled(e *env) {
	vm := e.provision(e.spec("power-canceled"))
	testkit.MustCode(e.t, "PowerOn with a canceled context", e.p.PowerOn(canceled(e.ctx), vm.ID), errs.Canceled)
	if got := e.get(vm.ID).Power; got == provider.PoweredOn {
		e.t.Error("a canceled PowerOn powered the VM on")
	}
	if err := e.p.PowerOn(e.ctx, vm.ID); err != nil {
		e.t.Fatal(err)
	}
	testkit.MustCode(e.t, "PowerOff with a canceled context", e.p.PowerOff(canceled(e.ctx), vm.ID), errs.Canceled)
	if got := e.get(vm.ID).Power; got != provider.PoweredOn {
		e.t.Errorf("a canceled PowerOff changed the power to %q", got)
	}
}

// ---- Destroy ----

func testDestroyIdempotent(e *env) {
	spec := e.spec("destroy")
	spec.PowerOn = true
	vm := e.provision(spec)
	if err := e.p.Destroy(e.ctx, vm.ID); err != nil {
		e.t.Fatalf("Destroy of a running VM: %v", err)
	}
	_, err := e.p.Get(e.ctx, vm.ID)
	testkit.MustCode(e.t, "Get after Destroy", err, errs.NotFound)
	if slices.ContainsFunc(e.list(nil), func(l provider.VM) bool { return l.ID == vm.ID }) {
		e.t.Error("List still holds the destroyed VM")
	}
	if err := e.p.Destroy(e.ctx, vm.ID); err != nil {
		e.t.Errorf("second Destroy: %v (want nil)", err)
	}
	if err := e.p.Destroy(e.ctx, e.name("never-existed")); err != nil {
		e.t.Errorf("Destroy of a VM that never existed: %v (want nil)", err)
	}
	// The key is free again once its VM is gone: a new VM, a new ID.
	again := e.provision(spec)
	if again.ID == vm.ID {
		e.t.Errorf("provisioning again after Destroy returned the destroyed VM's ID %q", vm.ID)
	}
}

func testDestroyTemplate(e *env) {
	tm := e.template()
	testkit.MustCode(e.t, "Destroy of a template", e.p.Destroy(e.ctx, tm.ID), errs.FailedPrecondition)
	if got := e.get(tm.ID); !got.Template {
		e.t.Errorf("after a rejected Destroy the template is %+v", got)
	}
}

func testDestroyCanceled(e *env) {
	vm := e.provision(e.spec("destroy-canceled"))
	testkit.MustCode(e.t, "Destroy with a canceled context", e.p.Destroy(canceled(e.ctx), vm.ID), errs.Canceled)
	e.get(vm.ID) // still there
}

// ---- Watch ----

// lifecycle provisions a VM, powers it on and off and destroys it, reading
// the events from st in order. It returns the Created event and the events
// about the VM after it.
func (e *env) lifecycle(st *provider.Stream, label string) (provider.VM, provider.Event, []provider.Event) {
	e.t.Helper()
	spec := e.spec(label)
	vm := e.provision(spec)
	seen := e.expect(st, vm.ID, provider.Created, "Created", nil)
	if len(seen) != 1 {
		e.t.Fatalf("events about %s before Created: %+v", vm.ID, seen)
	}
	created := seen[0]
	if created.VM.Name != spec.Name || created.VM.Zone != e.fx.Zone || created.VM.Template {
		e.t.Errorf("Created event VM = %+v, want name %q in zone %q", created.VM, spec.Name, e.fx.Zone)
	}
	var after []provider.Event
	if err := e.p.PowerOn(e.ctx, vm.ID); err != nil {
		e.t.Fatal(err)
	}
	after = append(after, e.expect(st, vm.ID, provider.Changed, "Changed to poweredOn", isPower(provider.PoweredOn))...)
	if err := e.p.PowerOff(e.ctx, vm.ID); err != nil {
		e.t.Fatal(err)
	}
	after = append(after, e.expect(st, vm.ID, provider.Changed, "Changed to poweredOff", isPower(provider.PoweredOff))...)
	if err := e.p.Destroy(e.ctx, vm.ID); err != nil {
		e.t.Fatal(err)
	}
	after = append(after, e.expect(st, vm.ID, provider.Deleted, "Deleted", nil)...)
	return vm, created, after
}

func testWatchLifecycle(e *env) {
	st := e.watch(e.cursor())
	e.lifecycle(st, "watch")
}

func types(evs []provider.Event) []provider.EventType {
	out := make([]provider.EventType, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func testWatchResume(e *env) {
	st := e.watch(e.cursor())
	vm, created, after := e.lifecycle(st, "resume")
	st2 := e.watch(created.Cursor)
	var replay []provider.Event
	for len(replay) < len(after) {
		ev := e.nextFor(st2, vm.ID)
		if ev.Type == provider.Created {
			e.t.Fatalf("Watch(cursor of Created) replayed the Created event")
		}
		replay = append(replay, ev)
	}
	if !slices.Equal(types(replay), types(after)) {
		e.t.Errorf("resumed stream gave %v, the first one %v after Created", types(replay), types(after))
	}
	if last := replay[len(replay)-1]; last.Cursor != after[len(after)-1].Cursor {
		e.t.Errorf("resumed stream's last cursor %q, the first one's %q", last.Cursor, after[len(after)-1].Cursor)
	}
}

func testWatchCursorBeforeList(e *env) {
	cur := e.cursor()
	vm := e.provision(e.spec("before-list"))
	if !slices.ContainsFunc(e.list(nil), func(l provider.VM) bool { return l.ID == vm.ID }) {
		e.t.Fatal("List does not hold the new VM")
	}
	st := e.watch(cur)
	e.expect(st, vm.ID, provider.Created, "Created (after a cursor taken before List)", nil)
}

func testWatchEmptyCursor(e *env) {
	old := e.provision(e.spec("old"))
	if err := e.p.PowerOn(e.ctx, old.ID); err != nil {
		e.t.Fatal(err)
	}
	before, err := e.p.Get(e.ctx, old.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	st := e.watch("")
	vm := e.provision(e.spec("new"))
	for {
		ev, err := st.Next(e.ctx)
		if err != nil {
			e.t.Fatalf("Next: %v", err)
		}
		if ev.VMID == old.ID {
			// A change after the cursor is news (a guest agent may report
			// its addresses a moment after the power-on returned); an event
			// that creates the old VM again, or shows it as it already was,
			// is a replay.
			if ev.Type == provider.Created || ev.Type == provider.Deleted || sameState(ev.VM, before) {
				e.t.Fatalf("Watch(\"\") replayed a %v event of a VM changed before it", ev.Type)
			}
			continue
		}
		if ev.VMID == vm.ID {
			if ev.Type != provider.Created {
				e.t.Fatalf("first event of the new VM is %v, want Created", ev.Type)
			}
			return
		}
	}
}

func wantExpired(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("%s: error %v does not wrap provider.ErrCursorExpired", what, err)
	}
	testkit.MustCode(t, what, err, errs.FailedPrecondition)
}

func testWatchBogusCursor(e *env) {
	// Out-of-limit cursors (NUL, invalid UTF-8, too long) are
	// InvalidArgument: see Limits/Cursor.
	for _, cur := range []provider.Cursor{"managedvm-conformance-bogus-cursor", "-1", "vc1:-1", "99999999999999999999"} {
		st, err := e.p.Watch(e.ctx, cur)
		if err == nil {
			// The error may come from the first Next instead.
			_, err = st.Next(e.ctx)
			_ = st.Close()
		}
		wantExpired(e.t, fmt.Sprintf("Watch(%q)", cur), err)
	}
}

// nextAsync calls st.Next(ctx) in a goroutine until it fails (events
// caused by anyone else are skipped) and returns the error, running during
// meanwhile. It fails the case if Next does not return within the case's
// time limit.
func (e *env) nextAsync(ctx context.Context, st *provider.Stream, during func()) error {
	e.t.Helper()
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := st.Next(ctx); err != nil {
				done <- err
				return
			}
		}
	}()
	if during != nil {
		during()
	}
	select {
	case err := <-done:
		return err
	case <-e.ctx.Done():
		e.t.Fatal("Next did not return")
		return nil
	}
}

func testWatchNextCanceled(e *env) {
	st := e.watch(e.cursor())
	err := e.nextAsync(canceled(e.ctx), st, nil)
	testkit.MustCode(e.t, "Next with a canceled context", err, errs.Canceled)

	ctx, cancel := context.WithCancel(e.ctx)
	err = e.nextAsync(ctx, st, cancel)
	testkit.MustCode(e.t, "Next whose context is canceled while it waits", err, errs.Canceled)
}

func testWatchNextDeadline(e *env) {
	st := e.watch(e.cursor())
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Millisecond)
	defer cancel()
	err := e.nextAsync(ctx, st, nil)
	testkit.MustCode(e.t, "Next past its deadline", err, errs.DeadlineExceeded)
}

func testWatchClose(e *env) {
	st := e.watch(e.cursor())
	err := e.nextAsync(e.ctx, st, func() {
		if err := st.Close(); err != nil {
			e.t.Errorf("Close: %v", err)
		}
	})
	if !errors.Is(err, provider.ErrStreamClosed) {
		e.t.Fatalf("Next after Close: error %v does not wrap provider.ErrStreamClosed", err)
	}
	testkit.MustCode(e.t, "Next after Close", err, errs.FailedPrecondition)
	_, err = st.Next(e.ctx)
	testkit.MustCode(e.t, "second Next after Close", err, errs.FailedPrecondition)
}

func testWatchTwoWatchers(e *env) {
	cur := e.cursor()
	a, b := e.watch(cur), e.watch(cur)
	vm := e.provision(e.spec("two-watchers"))
	e.expect(a, vm.ID, provider.Created, "Created on the first stream", nil)
	e.expect(b, vm.ID, provider.Created, "Created on the second stream", nil)
}

func testWatchOutOfBandRename(e *env) {
	if e.fx.OutOfBandRename == nil {
		e.t.Skip("the fixture has no OutOfBandRename hook")
	}
	vm := e.provision(e.spec("rename"))
	st := e.watch(e.cursor())
	newName := e.name("renamed")
	if err := e.fx.OutOfBandRename(e.ctx, vm.ID, newName); err != nil {
		e.t.Fatalf("OutOfBandRename: %v", err)
	}
	e.expect(st, vm.ID, provider.Changed, "Changed with the new name", func(ev provider.Event) bool { return ev.VM.Name == newName })
	if got := e.get(vm.ID); got.Name != newName {
		e.t.Errorf("Get after an out-of-band rename: name %q, want %q", got.Name, newName)
	}
}

func testWatchOutOfBandDelete(e *env) {
	if e.fx.OutOfBandDelete == nil {
		e.t.Skip("the fixture has no OutOfBandDelete hook")
	}
	vm := e.provision(e.spec("oob-delete"))
	st := e.watch(e.cursor())
	if err := e.fx.OutOfBandDelete(e.ctx, vm.ID); err != nil {
		e.t.Fatalf("OutOfBandDelete: %v", err)
	}
	e.expect(st, vm.ID, provider.Deleted, "Deleted", nil)
	_, err := e.p.Get(e.ctx, vm.ID)
	testkit.MustCode(e.t, "Get after an out-of-band delete", err, errs.NotFound)
}

// ---- Concurrency ----

func testConcurrentDistinct(e *env) {
	n := e.fx.Parallelism
	specs := make([]provider.ProvisionSpec, n)
	for i := range specs {
		specs[i] = e.spec(fmt.Sprintf("par%d", i))
	}
	ids := make([]string, n)
	errc := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			vm, err := e.p.Provision(e.ctx, specs[i])
			if err != nil {
				errc <- fmt.Errorf("concurrent Provision(%s): %w", specs[i].Name, err)
				return
			}
			ids[i] = vm.ID
		})
		wg.Go(func() {
			if _, err := e.p.List(e.ctx, nil); err != nil {
				errc <- fmt.Errorf("concurrent List: %w", err)
			}
		})
	}
	wg.Wait()
	close(errc)
	for _, id := range ids {
		if id != "" {
			e.cleanupVM(id)
		}
	}
	for err := range errc {
		e.t.Error(err)
	}
	count := map[string]int{}
	for _, vm := range e.list(nil) {
		count[vm.ID]++
	}
	seen := map[string]bool{}
	for i, id := range ids {
		switch {
		case id == "":
			continue
		case seen[id]:
			e.t.Errorf("two provisions returned the same ID %q", id)
		case count[id] != 1:
			e.t.Errorf("VM %q (%s) is in List %d times, want once", id, specs[i].Name, count[id])
		}
		seen[id] = true
	}
}

func testConcurrentSameKey(e *env) {
	spec := e.spec("samekey")
	n := e.fx.Parallelism
	ids := make([]string, n)
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			vm, err := e.p.Provision(e.ctx, spec)
			ids[i], results[i] = vm.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if ids[i] != "" {
			e.cleanupVM(ids[i])
		}
	}
	for i, err := range results {
		if err != nil {
			e.t.Errorf("Provision #%d with a shared key: %v", i, err)
		}
	}
	for i := range ids {
		if ids[i] != ids[0] {
			e.t.Fatalf("Provision with one key returned IDs %q and %q", ids[0], ids[i])
		}
	}
	if c := e.countNamed(spec.Name); c != 1 {
		e.t.Errorf("%d VMs named %q after concurrent provisions with one key, want 1", c, spec.Name)
	}
}

// ---- Preflight ----

func testPreflight(e *env) {
	r, err := e.p.Preflight(e.ctx)
	if err != nil {
		e.t.Fatalf("Preflight: %v", err)
	}
	if len(r.Checks) == 0 {
		e.t.Fatal("Preflight reported no rows")
	}
	for i, c := range r.Checks {
		if c.ID == "" || c.Name == "" {
			e.t.Errorf("row %d has no ID or name: %+v", i, c)
		}
		switch c.Status {
		case report.Pass:
		case report.Warn, report.Fail:
			if strings.TrimSpace(c.Fix) == "" {
				e.t.Errorf("row %d (%s) is %s without a fix", i, c.ID, c.Status)
			}
		default:
			e.t.Errorf("row %d (%s) has status %q", i, c.ID, c.Status)
		}
	}
}

func testPreflightCanceled(e *env) {
	_, err := e.p.Preflight(canceled(e.ctx))
	testkit.MustCode(e.t, "Preflight with a canceled context", err, errs.Canceled)
}

// ---- Guest access ----

func (e *env) guestAccess() *provider.GuestAccess {
	e.t.Helper()
	ga, ok := e.p.GuestAccess()
	if !ok {
		e.t.Skip("the driver does not implement provider.GuestAccessDriver")
	}
	if e.fx.GuestVM == "" {
		e.t.Skip("the fixture names no GuestVM: guest-access cases need one")
	}
	return ga
}

func (e *env) wrongPassword() guest.Credentials {
	return guest.Password(e.fx.GuestCredentials.Username, "wrong-"+e.prefix+"-Pa55!")
}

func testGuestValid(e *env) {
	ga := e.guestAccess()
	if err := ga.ValidateCredentials(e.ctx, e.fx.GuestVM, e.fx.GuestCredentials); err != nil {
		e.t.Fatalf("ValidateCredentials with the fixture's credentials: %v", err)
	}
	err := ga.ValidateCredentials(canceled(e.ctx), e.fx.GuestVM, e.fx.GuestCredentials)
	testkit.MustCode(e.t, "ValidateCredentials with a canceled context", err, errs.Canceled)
}

func (e *env) noSecrets(err error, creds ...guest.Credentials) {
	e.t.Helper()
	msg := fmt.Sprintf("%v %+v %#v", err, err, err)
	for _, c := range creds {
		if pw := c.Password.Reveal(); pw != "" && strings.Contains(msg, pw) {
			e.t.Errorf("the error shows a password: %s", msg)
		}
	}
}

func testGuestWrongPassword(e *env) {
	ga := e.guestAccess()
	bad := e.wrongPassword()
	err := ga.ValidateCredentials(e.ctx, e.fx.GuestVM, bad)
	testkit.MustCode(e.t, "ValidateCredentials with a wrong password", err, errs.Unauthenticated)
	e.noSecrets(err, bad, e.fx.GuestCredentials)
	// Nothing changed: the good credentials still work.
	if err := ga.ValidateCredentials(e.ctx, e.fx.GuestVM, e.fx.GuestCredentials); err != nil {
		e.t.Errorf("good credentials after a failed attempt: %v", err)
	}
}

func testGuestUnknownUser(e *env) {
	ga := e.guestAccess()
	c := e.fx.GuestCredentials
	c.Username = "no-such-user-" + e.prefix
	err := ga.ValidateCredentials(e.ctx, e.fx.GuestVM, c)
	testkit.MustCode(e.t, "ValidateCredentials with an unknown user", err, errs.Unauthenticated)
	e.noSecrets(err, c)
}

func testGuestInvalidCredentials(e *env) {
	ga := e.guestAccess()
	c := e.fx.GuestCredentials
	c.Username = ""
	testkit.MustCode(e.t, "ValidateCredentials without a user name", ga.ValidateCredentials(e.ctx, e.fx.GuestVM, c), errs.InvalidArgument)
	testkit.MustCode(e.t, "ValidateCredentials without a secret", ga.ValidateCredentials(e.ctx, e.fx.GuestVM, guest.Credentials{Username: "x"}), errs.InvalidArgument)
}

func testGuestUnknownVM(e *env) {
	ga := e.guestAccess()
	err := ga.ValidateCredentials(e.ctx, e.name("no-such-vm"), e.fx.GuestCredentials)
	testkit.MustCode(e.t, "ValidateCredentials on an unknown VM", err, errs.NotFound)
	_, err = ga.GuestExecutor(e.ctx, e.name("no-such-vm"), e.fx.GuestCredentials)
	testkit.MustCode(e.t, "GuestExecutor on an unknown VM", err, errs.NotFound)
}

func testGuestPoweredOff(e *env) {
	ga := e.guestAccess()
	vm := e.provision(e.spec("guest-off"))
	err := ga.ValidateCredentials(e.ctx, vm.ID, e.fx.GuestCredentials)
	testkit.MustCode(e.t, "ValidateCredentials on a powered-off VM", err, errs.FailedPrecondition)
	_, err = ga.GuestExecutor(e.ctx, vm.ID, e.fx.GuestCredentials)
	testkit.MustCode(e.t, "GuestExecutor on a powered-off VM", err, errs.FailedPrecondition)
}

func testGuestExecutor(e *env) {
	ga := e.guestAccess()
	ex, err := ga.GuestExecutor(e.ctx, e.fx.GuestVM, e.fx.GuestCredentials)
	if err != nil {
		e.t.Fatalf("GuestExecutor: %v", err)
	}
	if fam := e.get(e.fx.GuestVM).Guest.Family; fam != guest.FamilyUnknown && ex.Family() != fam {
		e.t.Errorf("executor family %v, the VM's %v", ex.Family(), fam)
	}
	if err := ex.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	_, err = ex.Run(e.ctx, guest.Command{Args: []string{"hostname"}})
	if !errors.Is(err, guest.ErrClosed) {
		e.t.Errorf("Run after Close: %v, want guest.ErrClosed", err)
	}
	testkit.MustCode(e.t, "Run after Close", err, errs.FailedPrecondition)
}

func testGuestExecutorWrongPassword(e *env) {
	ga := e.guestAccess()
	bad := e.wrongPassword()
	ex, err := ga.GuestExecutor(e.ctx, e.fx.GuestVM, bad)
	if err == nil {
		// The executor may check lazily: then its first command fails.
		defer ex.Close()
		_, err = ex.Run(e.ctx, guest.Command{Args: []string{"hostname"}})
	}
	testkit.MustCode(e.t, "GuestExecutor (or its first Run) with a wrong password", err, errs.Unauthenticated)
	e.noSecrets(err, bad, e.fx.GuestCredentials)
}

// sameState reports whether two reads of a VM show the same power, guest
// state and addresses.
func sameState(a, b provider.VM) bool {
	return a.Name == b.Name && a.Power == b.Power && a.Guest.ToolsRunning == b.Guest.ToolsRunning &&
		a.Guest.Hostname == b.Guest.Hostname && slices.Equal(a.Guest.IPs, b.Guest.IPs)
}
