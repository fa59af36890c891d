package natfwtest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
)

// Harness makes the drivers the suite tests.
type Harness struct {
	// New returns a fresh, empty driver for one test. It is called once
	// per subtest; release what it holds with t.Cleanup (Close may also be
	// called by the suite, through the portable type, so it must be safe
	// to call twice). The suite runs every case through natfw.New over it.
	// Required.
	New func(t *testing.T) natfw.Driver
}

// Concurrency is how many goroutines the concurrency cases run.
const Concurrency = 64

// Run runs the conformance suite against the Firewalls h makes.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("natfwtest: Harness.New is nil")
	}
	cases := []struct {
		name string
		fn   func(*testing.T, *natfw.Firewall)
	}{
		{"EnsureCreates", testEnsureCreates},
		{"EnsureSameRuleIsNoop", testEnsureSameRuleIsNoop},
		{"EnsureReplaces", testEnsureReplaces},
		{"EnsureReplaceFreesOldAddresses", testEnsureReplaceFreesOldAddresses},
		{"Remove", testRemove},
		{"RemoveMissingIsNoop", testRemoveMissingIsNoop},
		{"GetNotFound", testGetNotFound},
		{"PublicInUse", testPublicInUse},
		{"LocalInUse", testLocalInUse},
		{"AddressInUseInOtherRole", testAddressInUseInOtherRole},
		{"ConflictingReplaceKeepsOldRule", testConflictingReplaceKeepsOldRule},
		{"RemovedAddressesAreFree", testRemovedAddressesAreFree},
		{"Invalid", testInvalid},
		{"ListOrderedAndNormalized", testListOrderedAndNormalized},
		{"ReturnedRulesAreCopies", testReturnedRulesAreCopies},
		{"ConcurrentDistinctRules", testConcurrentDistinct},
		{"ConcurrentSamePublic", testConcurrentSamePublic},
		{"ConcurrentReplaceSameOwner", testConcurrentReplaceSameOwner},
		{"Canceled", testCanceled},
		{"DeadlineExceeded", testDeadlineExceeded},
		{"OwnerLimits", testOwnerLimits},
		{"DescriptionLimits", testDescriptionLimits},
		{"CountLimits", testCountLimits},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := h.New(t)
			if d == nil {
				t.Fatal("Harness.New returned nil")
			}
			c.fn(t, natfw.New(d, nil))
		})
	}
	driverCases := []struct {
		name string
		fn   func(*testing.T, natfw.Driver)
	}{
		{"AfterClose", testAfterClose},
		{"Telemetry", testTelemetry},
	}
	for _, c := range driverCases {
		t.Run(c.name, func(t *testing.T) {
			d := h.New(t)
			if d == nil {
				t.Fatal("Harness.New returned nil")
			}
			c.fn(t, d)
		})
	}
}

// Addresses: public from 203.0.113.0/24, local from 10.0.0.0/16, sources
// from the documentation ranges.
func public(i int) netip.Addr { return netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + i)}) }
func local(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(1 + i%250)})
}

var (
	admins  = netip.MustParsePrefix("198.51.100.0/24")
	jumpbox = netip.MustParsePrefix("192.0.2.10/32")
)

// rule returns a valid Linux rule for owner i, already normalized.
func rule(i int) natfw.Rule {
	return natfw.Rule{
		Owner:       fmt.Sprintf("owner-%03d", i),
		Public:      public(i),
		Local:       local(i),
		Ports:       natfw.LinuxPorts(),
		Sources:     []netip.Prefix{admins},
		Description: fmt.Sprintf("vm %d", i),
	}
}

// same reports whether a and b are identical field by field (no
// normalization: used to check that the firewall returns normalized rules).
func same(a, b natfw.Rule) bool {
	return a.Owner == b.Owner && a.Public == b.Public && a.Local == b.Local &&
		a.Description == b.Description && slices.Equal(a.Ports, b.Ports) && slices.Equal(a.Sources, b.Sources)
}

func list(t *testing.T, fw *natfw.Firewall) []natfw.Rule {
	t.Helper()
	rs, err := fw.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return rs
}

// wantRules fails the test unless List returns exactly want (normalized,
// in owner order).
func wantRules(t *testing.T, fw *natfw.Firewall, want ...natfw.Rule) {
	t.Helper()
	got := list(t, fw)
	if len(got) != len(want) {
		t.Fatalf("List returned %d rules, want %d:\n got: %v\nwant: %v", len(got), len(want), got, want)
	}
	for i := range want {
		if w := want[i].Normalize(); !same(got[i], w) {
			t.Fatalf("List()[%d] = %+v, want %+v", i, got[i], w)
		}
	}
}

func ensure(t *testing.T, fw *natfw.Firewall, r natfw.Rule) {
	t.Helper()
	if err := fw.EnsureNAT(context.Background(), r); err != nil {
		t.Fatalf("EnsureNAT(%s): %v", r.Owner, err)
	}
}

func wantGet(t *testing.T, fw *natfw.Firewall, want natfw.Rule) {
	t.Helper()
	got, err := fw.Get(context.Background(), want.Owner)
	if err != nil {
		t.Fatalf("Get(%q): %v", want.Owner, err)
	}
	if w := want.Normalize(); !same(got, w) {
		t.Fatalf("Get(%q) = %+v, want %+v", want.Owner, got, w)
	}
}

func testEnsureCreates(t *testing.T, fw *natfw.Firewall) {
	wantRules(t, fw)
	r := rule(1)
	ensure(t, fw, r)
	wantGet(t, fw, r)
	wantRules(t, fw, r)
	w := rule(2)
	w.Ports = natfw.WindowsPorts()
	w.Sources = []netip.Prefix{admins, jumpbox}
	ensure(t, fw, w)
	wantGet(t, fw, w)
	wantRules(t, fw, r, w)
}

func testEnsureSameRuleIsNoop(t *testing.T, fw *natfw.Firewall) {
	r := rule(1)
	ensure(t, fw, r)
	ensure(t, fw, rule(2))
	before := list(t, fw)
	ensure(t, fw, r)
	// The same rule spelled differently is the same rule.
	spelled := r
	spelled.Ports = []natfw.Port{natfw.LinuxPorts()[0], natfw.LinuxPorts()[0]}
	spelled.Sources = []netip.Prefix{netip.MustParsePrefix("198.51.100.200/24"), admins}
	ensure(t, fw, spelled)
	after := list(t, fw)
	if len(before) != len(after) {
		t.Fatalf("List changed: %v -> %v", before, after)
	}
	for i := range before {
		if !same(before[i], after[i]) {
			t.Fatalf("List changed: %v -> %v", before, after)
		}
	}
	wantGet(t, fw, r)
}

func testEnsureReplaces(t *testing.T, fw *natfw.Firewall) {
	other := rule(9)
	ensure(t, fw, other)
	changes := []struct {
		name string
		mod  func(*natfw.Rule)
	}{
		{"ports", func(r *natfw.Rule) { r.Ports = natfw.WindowsPorts() }},
		{"fewer ports", func(r *natfw.Rule) { r.Ports = []natfw.Port{{Protocol: natfw.TCP, Number: 5986}} }},
		{"protocol", func(r *natfw.Rule) { r.Ports = []natfw.Port{{Protocol: natfw.UDP, Number: 5986}} }},
		{"sources", func(r *natfw.Rule) { r.Sources = []netip.Prefix{admins, jumpbox} }},
		{"fewer sources", func(r *natfw.Rule) { r.Sources = []netip.Prefix{jumpbox} }},
		{"local", func(r *natfw.Rule) { r.Local = local(50) }},
		{"public", func(r *natfw.Rule) { r.Public = public(50) }},
		{"description", func(r *natfw.Rule) { r.Description = "renamed" }},
		{"back to start", func(r *natfw.Rule) { *r = rule(1) }},
	}
	r := rule(1)
	ensure(t, fw, r)
	for _, c := range changes {
		c.mod(&r)
		if err := fw.EnsureNAT(context.Background(), r); err != nil {
			t.Fatalf("%s: EnsureNAT: %v", c.name, err)
		}
		wantGet(t, fw, r)
		wantRules(t, fw, r, other)
	}
}

func testEnsureReplaceFreesOldAddresses(t *testing.T, fw *natfw.Firewall) {
	a := rule(1)
	ensure(t, fw, a)
	moved := a
	moved.Public, moved.Local = public(2), local(2)
	ensure(t, fw, moved)
	// Another owner may now use a's old addresses.
	b := rule(3)
	b.Public, b.Local = a.Public, a.Local
	ensure(t, fw, b)
	wantRules(t, fw, moved, b)
}

func testRemove(t *testing.T, fw *natfw.Firewall) {
	a, b := rule(1), rule(2)
	ensure(t, fw, a)
	ensure(t, fw, b)
	if err := fw.RemoveNAT(context.Background(), a.Owner); err != nil {
		t.Fatalf("RemoveNAT: %v", err)
	}
	wantRules(t, fw, b)
	_, err := fw.Get(context.Background(), a.Owner)
	testkit.MustCode(t, "Get after RemoveNAT", err, errs.NotFound)
	// Removing again is not an error.
	if err := fw.RemoveNAT(context.Background(), a.Owner); err != nil {
		t.Fatalf("second RemoveNAT: %v", err)
	}
	wantRules(t, fw, b)
}

func testRemoveMissingIsNoop(t *testing.T, fw *natfw.Firewall) {
	if err := fw.RemoveNAT(context.Background(), "never-existed"); err != nil {
		t.Fatalf("RemoveNAT on an empty firewall: %v", err)
	}
	a := rule(1)
	ensure(t, fw, a)
	if err := fw.RemoveNAT(context.Background(), "never-existed"); err != nil {
		t.Fatalf("RemoveNAT of a missing owner: %v", err)
	}
	// An owner that is a prefix of an existing one is a different owner.
	if err := fw.RemoveNAT(context.Background(), a.Owner[:len(a.Owner)-1]); err != nil {
		t.Fatalf("RemoveNAT of a prefix owner: %v", err)
	}
	wantRules(t, fw, a)
}

func testGetNotFound(t *testing.T, fw *natfw.Firewall) {
	_, err := fw.Get(context.Background(), "owner-001")
	testkit.MustCode(t, "Get on an empty firewall", err, errs.NotFound)
	ensure(t, fw, rule(1))
	_, err = fw.Get(context.Background(), "owner-002")
	testkit.MustCode(t, "Get of a missing owner", err, errs.NotFound)
	// An empty owner can have no rule: it is refused before any driver
	// sees it.
	_, err = fw.Get(context.Background(), "")
	testkit.MustCode(t, `Get("")`, err, errs.InvalidArgument)
}

// conflict checks that EnsureNAT(r) is AlreadyExists and changes nothing.
func conflict(t *testing.T, fw *natfw.Firewall, r natfw.Rule) {
	t.Helper()
	before := list(t, fw)
	err := fw.EnsureNAT(context.Background(), r)
	testkit.MustCode(t, "EnsureNAT of a conflicting rule", err, errs.AlreadyExists)
	wantRules(t, fw, before...)
}

func testPublicInUse(t *testing.T, fw *natfw.Firewall) {
	a := rule(1)
	ensure(t, fw, a)
	b := rule(2)
	b.Public = a.Public
	conflict(t, fw, b)
	_, err := fw.Get(context.Background(), b.Owner)
	testkit.MustCode(t, "Get of the refused owner", err, errs.NotFound)
}

func testLocalInUse(t *testing.T, fw *natfw.Firewall) {
	a := rule(1)
	ensure(t, fw, a)
	b := rule(2)
	b.Local = a.Local
	conflict(t, fw, b)
	_, err := fw.Get(context.Background(), b.Owner)
	testkit.MustCode(t, "Get of the refused owner", err, errs.NotFound)
}

func testAddressInUseInOtherRole(t *testing.T, fw *natfw.Firewall) {
	a := rule(1)
	ensure(t, fw, a)
	b := rule(2)
	b.Public = a.Local
	conflict(t, fw, b)
	c := rule(3)
	c.Local = a.Public
	conflict(t, fw, c)
}

func testConflictingReplaceKeepsOldRule(t *testing.T, fw *natfw.Firewall) {
	a, b := rule(1), rule(2)
	ensure(t, fw, a)
	ensure(t, fw, b)
	// b tries to move onto a's public address, with other ports too: the
	// whole change is refused.
	nb := b
	nb.Public = a.Public
	nb.Ports = natfw.WindowsPorts()
	conflict(t, fw, nb)
	wantGet(t, fw, b)
	nb = b
	nb.Local = a.Local
	nb.Description = "changed"
	conflict(t, fw, nb)
	wantGet(t, fw, b)
}

func testRemovedAddressesAreFree(t *testing.T, fw *natfw.Firewall) {
	a := rule(1)
	ensure(t, fw, a)
	if err := fw.RemoveNAT(context.Background(), a.Owner); err != nil {
		t.Fatalf("RemoveNAT: %v", err)
	}
	b := rule(2)
	b.Public, b.Local = a.Public, a.Local
	ensure(t, fw, b)
	wantRules(t, fw, b)
}

func testInvalid(t *testing.T, fw *natfw.Firewall) {
	existing := rule(1)
	ensure(t, fw, existing)
	invalid := []struct {
		name string
		mod  func(*natfw.Rule)
	}{
		{"EmptyOwner", func(r *natfw.Rule) { r.Owner = "" }},
		{"ZeroPublic", func(r *natfw.Rule) { r.Public = netip.Addr{} }},
		{"IPv6Public", func(r *natfw.Rule) { r.Public = netip.MustParseAddr("2001:db8::10") }},
		{"IPv4MappedPublic", func(r *natfw.Rule) { r.Public = netip.AddrFrom16(r.Public.As16()) }},
		{"ZeroLocal", func(r *natfw.Rule) { r.Local = netip.Addr{} }},
		{"IPv6Local", func(r *natfw.Rule) { r.Local = netip.MustParseAddr("fd00::10") }},
		{"PublicEqualsLocal", func(r *natfw.Rule) { r.Local = r.Public }},
		{"NoPorts", func(r *natfw.Rule) { r.Ports = nil }},
		{"EmptyPorts", func(r *natfw.Rule) { r.Ports = []natfw.Port{} }},
		{"Port0", func(r *natfw.Rule) { r.Ports = append(r.Ports, natfw.Port{Protocol: natfw.TCP, Number: 0}) }},
		{"BadProtocol", func(r *natfw.Rule) { r.Ports = []natfw.Port{{Protocol: "sctp", Number: 22}} }},
		{"EmptyProtocol", func(r *natfw.Rule) { r.Ports = []natfw.Port{{Number: 22}} }},
		{"NoSources", func(r *natfw.Rule) { r.Sources = nil }},
		{"ZeroSource", func(r *natfw.Rule) { r.Sources = append(r.Sources, netip.Prefix{}) }},
		{"IPv6Source", func(r *natfw.Rule) { r.Sources = append(r.Sources, netip.MustParsePrefix("2001:db8::/32")) }},
	}
	for _, c := range invalid {
		t.Run(c.name, func(t *testing.T) {
			for _, base := range []natfw.Rule{rule(2), existing} {
				r := base
				r.Ports = slices.Clone(base.Ports)
				r.Sources = slices.Clone(base.Sources)
				c.mod(&r)
				err := fw.EnsureNAT(context.Background(), r)
				testkit.MustCode(t, "EnsureNAT("+c.name+")", err, errs.InvalidArgument)
				wantRules(t, fw, existing)
			}
		})
	}
}

func testListOrderedAndNormalized(t *testing.T, fw *natfw.Firewall) {
	// Ensure in an order that is neither sorted nor reverse sorted.
	order := []int{5, 1, 9, 3, 7, 2, 8, 0, 6, 4}
	for _, i := range order {
		r := rule(i)
		r.Ports = []natfw.Port{
			{Protocol: natfw.TCP, Number: 5986}, {Protocol: natfw.UDP, Number: 53},
			{Protocol: natfw.TCP, Number: 22}, {Protocol: natfw.TCP, Number: 5986},
			{Protocol: natfw.TCP, Number: 3389}, {Protocol: natfw.TCP, Number: 22},
		}
		r.Sources = []netip.Prefix{
			netip.MustParsePrefix("198.51.100.99/24"), jumpbox,
			netip.MustParsePrefix("10.20.30.40/8"), admins,
		}
		ensure(t, fw, r)
	}
	got := list(t, fw)
	if len(got) != len(order) {
		t.Fatalf("List returned %d rules, want %d", len(got), len(order))
	}
	wantPorts := []natfw.Port{
		{Protocol: natfw.TCP, Number: 22}, {Protocol: natfw.TCP, Number: 3389},
		{Protocol: natfw.TCP, Number: 5986}, {Protocol: natfw.UDP, Number: 53},
	}
	wantSources := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), jumpbox, admins}
	for i, r := range got {
		if r.Owner != rule(i).Owner {
			t.Errorf("List()[%d].Owner = %q, want %q", i, r.Owner, rule(i).Owner)
		}
		if !slices.Equal(r.Ports, wantPorts) {
			t.Errorf("List()[%d].Ports = %v, want %v", i, r.Ports, wantPorts)
		}
		if !slices.Equal(r.Sources, wantSources) {
			t.Errorf("List()[%d].Sources = %v, want %v", i, r.Sources, wantSources)
		}
	}
	g, err := fw.Get(context.Background(), rule(3).Owner)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !slices.Equal(g.Ports, wantPorts) || !slices.Equal(g.Sources, wantSources) {
		t.Errorf("Get is not normalized: %v %v", g.Ports, g.Sources)
	}
}

func testReturnedRulesAreCopies(t *testing.T, fw *natfw.Firewall) {
	r := rule(1)
	r.Ports = natfw.WindowsPorts()
	r.Sources = []netip.Prefix{admins, jumpbox}
	want := r.Normalize()
	ensure(t, fw, r)
	// The caller's slices are not kept.
	r.Ports[0].Number = 1
	r.Sources[0] = netip.MustParsePrefix("0.0.0.0/0")
	wantGet(t, fw, want)
	// Neither are the slices handed out.
	g, err := fw.Get(context.Background(), want.Owner)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	g.Ports[0].Number = 2
	g.Sources[0] = netip.MustParsePrefix("0.0.0.0/0")
	ls := list(t, fw)
	ls[0].Ports[0].Number = 3
	ls[0].Sources[0] = netip.MustParsePrefix("0.0.0.0/0")
	wantRules(t, fw, want)
}

func testConcurrentDistinct(t *testing.T, fw *natfw.Firewall) {
	var wg sync.WaitGroup
	errc := make(chan error, Concurrency)
	for i := range Concurrency {
		wg.Go(func() {
			if err := fw.EnsureNAT(context.Background(), rule(i)); err != nil {
				errc <- fmt.Errorf("EnsureNAT(%d): %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	want := make([]natfw.Rule, Concurrency)
	for i := range want {
		want[i] = rule(i)
	}
	wantRules(t, fw, want...)
}

func testConcurrentSamePublic(t *testing.T, fw *natfw.Firewall) {
	contested := public(200)
	results := make([]error, Concurrency)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range Concurrency {
		wg.Go(func() {
			r := rule(i)
			r.Public = contested
			<-start
			results[i] = fw.EnsureNAT(context.Background(), r)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range results {
		switch errs.CodeOf(err) {
		case errs.OK:
			if winner >= 0 {
				t.Fatalf("owners %d and %d both got public address %s", winner, i, contested)
			}
			winner = i
		case errs.AlreadyExists:
		default:
			t.Errorf("EnsureNAT(%d) = %v, want nil or AlreadyExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no owner got public address %s", contested)
	}
	w := rule(winner)
	w.Public = contested
	wantRules(t, fw, w)
}

func testConcurrentReplaceSameOwner(t *testing.T, fw *natfw.Firewall) {
	// Goroutines replace one owner's rule with different public and local
	// addresses. Whichever lands last is the rule; every other address is
	// free again afterwards.
	var wg sync.WaitGroup
	errc := make(chan error, Concurrency)
	for i := range Concurrency {
		wg.Go(func() {
			r := rule(0)
			r.Public, r.Local = public(i), local(i)
			if err := fw.EnsureNAT(context.Background(), r); err != nil {
				errc <- fmt.Errorf("EnsureNAT(%d): %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	rs := list(t, fw)
	if len(rs) != 1 || rs[0].Owner != rule(0).Owner {
		t.Fatalf("List = %v, want one rule of %q", rs, rule(0).Owner)
	}
	final := rs[0]
	for i := range Concurrency {
		if public(i) == final.Public {
			continue
		}
		r := rule(1000 + i)
		r.Public, r.Local = public(i), local(i)
		if err := fw.EnsureNAT(context.Background(), r); err != nil {
			t.Fatalf("address %s of a replaced rule is still held: %v", public(i), err)
		}
		if err := fw.RemoveNAT(context.Background(), r.Owner); err != nil {
			t.Fatalf("RemoveNAT: %v", err)
		}
	}
	wantRules(t, fw, final)
}

// ctxDone checks every method against a context that is already done.
func ctxDone(t *testing.T, fw *natfw.Firewall, ctx context.Context, code errs.Code) {
	t.Helper()
	a := rule(1)
	ensure(t, fw, a)

	b := rule(2)
	testkit.MustCode(t, "EnsureNAT (new rule)", fw.EnsureNAT(ctx, b), code)
	changed := a
	changed.Ports = natfw.WindowsPorts()
	testkit.MustCode(t, "EnsureNAT (replacement)", fw.EnsureNAT(ctx, changed), code)
	testkit.MustCode(t, "RemoveNAT", fw.RemoveNAT(ctx, a.Owner), code)
	_, err := fw.Get(ctx, a.Owner)
	testkit.MustCode(t, "Get", err, code)
	_, err = fw.List(ctx)
	testkit.MustCode(t, "List", err, code)
	wantRules(t, fw, a)
}

func testCanceled(t *testing.T, fw *natfw.Firewall) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ctxDone(t, fw, ctx, errs.Canceled)
}

func testDeadlineExceeded(t *testing.T, fw *natfw.Firewall) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	ctxDone(t, fw, ctx, errs.DeadlineExceeded)
}
