package natfwtest

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
)

// MaxMessage is the longest error message the limit cases accept: no
// message grows with its input.
const MaxMessage = 300

// value is one input of a limit case.
type value struct {
	name string
	v    string
	ok   bool
}

// values are the inputs every limit case tries for a field of 1 (or 0
// when emptyOK) to max bytes of printable UTF-8.
func values(max int, emptyOK bool) []value {
	multi := strings.Repeat("é", max/2) // max bytes, multi-byte runes
	return []value{
		{"Empty", "", emptyOK},
		{"Max", strings.Repeat("m", max), true},
		{"MaxMultiByte", multi[:max-max%2], true},
		{"MaxPlus1", strings.Repeat("m", max+1), false},
		{"NUL", "a\x00b", false},
		{"Newline", "a\nb", false},
		{"InvalidUTF8", "a\xffb", false},
		{"16kB", strings.Repeat("x", 16<<10), false},
	}
}

// refused checks that err is InvalidArgument with a bounded message and
// that the firewall still holds exactly want.
func refused(t *testing.T, fw *natfw.Firewall, what string, err error, want ...natfw.Rule) {
	t.Helper()
	testkit.WantCode(t, what, err, errs.InvalidArgument)
	testkit.Bounded(t, what, err, MaxMessage)
	wantRules(t, fw, want...)
}

func testOwnerLimits(t *testing.T, fw *natfw.Firewall) {
	existing := rule(1)
	ensure(t, fw, existing)
	for i, c := range values(natfw.MaxOwner, false) {
		t.Run(c.name, func(t *testing.T) {
			r := rule(10 + i)
			r.Owner = c.v
			ctx := context.Background()
			if c.ok {
				ensure(t, fw, r)
				wantGet(t, fw, r)
				both := []natfw.Rule{existing, r}
				slices.SortFunc(both, func(a, b natfw.Rule) int { return strings.Compare(a.Owner, b.Owner) })
				wantRules(t, fw, both...)
				if err := fw.RemoveNAT(ctx, r.Owner); err != nil {
					t.Fatalf("RemoveNAT: %v", err)
				}
				wantRules(t, fw, existing)
				return
			}
			refused(t, fw, "EnsureNAT", fw.EnsureNAT(ctx, r), existing)
			_, err := fw.Get(ctx, c.v)
			refused(t, fw, "Get", err, existing)
			refused(t, fw, "RemoveNAT", fw.RemoveNAT(ctx, c.v), existing)
		})
	}
}

func testDescriptionLimits(t *testing.T, fw *natfw.Firewall) {
	existing := rule(1)
	ensure(t, fw, existing)
	for _, c := range values(natfw.MaxDescription, true) {
		t.Run(c.name, func(t *testing.T) {
			// Both a new rule and a replacement of the existing one.
			for _, base := range []natfw.Rule{rule(2), existing} {
				r := base
				r.Description = c.v
				if !c.ok {
					refused(t, fw, "EnsureNAT", fw.EnsureNAT(context.Background(), r), existing)
					continue
				}
				ensure(t, fw, r)
				wantGet(t, fw, r)
				ensure(t, fw, existing)
				if err := fw.RemoveNAT(context.Background(), rule(2).Owner); err != nil {
					t.Fatalf("RemoveNAT: %v", err)
				}
				wantRules(t, fw, existing)
			}
		})
	}
}

func ports(n int) []natfw.Port {
	out := make([]natfw.Port, n)
	for i := range out {
		out[i] = natfw.Port{Protocol: natfw.TCP, Number: uint16(1000 + i)}
	}
	return out
}

func sources(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, byte(i / 256), byte(i % 256)}), 32)
	}
	return out
}

func testCountLimits(t *testing.T, fw *natfw.Firewall) {
	existing := rule(1)
	ensure(t, fw, existing)
	cases := []struct {
		name string
		mod  func(*natfw.Rule)
		ok   bool
	}{
		{"MaxPorts", func(r *natfw.Rule) { r.Ports = ports(natfw.MaxPorts) }, true},
		{"MaxSources", func(r *natfw.Rule) { r.Sources = sources(natfw.MaxSources) }, true},
		{"MaxPortsAndSources", func(r *natfw.Rule) { r.Ports, r.Sources = ports(natfw.MaxPorts), sources(natfw.MaxSources) }, true},
		// Counted as given: duplicates count.
		{"MaxPlus1Ports", func(r *natfw.Rule) { r.Ports = append(ports(natfw.MaxPorts), r.Ports[0]) }, false},
		{"MaxPlus1Sources", func(r *natfw.Rule) { r.Sources = append(sources(natfw.MaxSources), r.Sources[0]) }, false},
		{"16kPorts", func(r *natfw.Rule) { r.Ports = slices.Repeat(r.Ports[:1], 16<<10) }, false},
		{"16kSources", func(r *natfw.Rule) { r.Sources = slices.Repeat(r.Sources[:1], 16<<10) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, base := range []natfw.Rule{rule(2), existing} {
				r := base
				r.Ports = slices.Clone(base.Ports)
				r.Sources = slices.Clone(base.Sources)
				c.mod(&r)
				if !c.ok {
					refused(t, fw, "EnsureNAT", fw.EnsureNAT(context.Background(), r), existing)
					continue
				}
				ensure(t, fw, r)
				wantGet(t, fw, r)
				ensure(t, fw, existing)
				if err := fw.RemoveNAT(context.Background(), rule(2).Owner); err != nil {
					t.Fatalf("RemoveNAT: %v", err)
				}
				wantRules(t, fw, existing)
			}
		})
	}
}

// testAfterClose: every method after Close is FailedPrecondition and
// changes nothing; a second Close is nil.
func testAfterClose(t *testing.T, d natfw.Driver) {
	fw := natfw.New(d, nil)
	a := rule(1)
	ensure(t, fw, a)
	if err := fw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	testkit.WantCode(t, "EnsureNAT after Close", fw.EnsureNAT(ctx, rule(2)), errs.FailedPrecondition)
	testkit.WantCode(t, "RemoveNAT after Close", fw.RemoveNAT(ctx, a.Owner), errs.FailedPrecondition)
	_, err := fw.Get(ctx, a.Owner)
	testkit.WantCode(t, "Get after Close", err, errs.FailedPrecondition)
	_, err = fw.List(ctx)
	testkit.WantCode(t, "List after Close", err, errs.FailedPrecondition)
	if err := fw.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// testTelemetry: one span per call named after the operation, error.type
// the errs code of a failure, managedvm.calls and managedvm.errors counted
// by op and code.
func testTelemetry(t *testing.T, d natfw.Driver) {
	rec := obstest.New(t)
	fw := natfw.New(d, &natfw.Options{TracerProvider: rec.TP, MeterProvider: rec.MP})
	ctx := context.Background()
	a := rule(1)
	ensure(t, fw, a)
	bad := rule(2)
	bad.Ports = nil
	testkit.WantCode(t, "EnsureNAT (invalid)", fw.EnsureNAT(ctx, bad), errs.InvalidArgument)
	taken := rule(3)
	taken.Public = a.Public
	testkit.WantCode(t, "EnsureNAT (taken)", fw.EnsureNAT(ctx, taken), errs.AlreadyExists)
	_, err := fw.Get(ctx, rule(4).Owner)
	testkit.WantCode(t, "Get (missing)", err, errs.NotFound)
	_ = list(t, fw)
	if err := fw.RemoveNAT(ctx, a.Owner); err != nil {
		t.Fatalf("RemoveNAT: %v", err)
	}

	wantSpans := map[string][]string{ // op -> error.type of each span, in order
		"natfw.EnsureNAT": {"", "InvalidArgument", "AlreadyExists"},
		"natfw.Get":       {"NotFound"},
		"natfw.List":      {""},
		"natfw.RemoveNAT": {""},
	}
	total := 0
	for op, codes := range wantSpans {
		spans := rec.SpansNamed(op)
		total += len(codes)
		if len(spans) != len(codes) {
			t.Errorf("%d spans named %s, want %d", len(spans), op, len(codes))
			continue
		}
		for i, sp := range spans {
			if sp.Code != codes[i] || sp.Error != (codes[i] != "") {
				t.Errorf("span %s #%d: error.type %q (error status %v), want %q", op, i, sp.Code, sp.Error, codes[i])
			}
		}
	}
	if n := len(rec.Spans()); n != total {
		t.Errorf("%d spans in all, want %d (one per call)", n, total)
	}
	counts := []struct {
		metric, op, code string
		want             int64
	}{
		{"managedvm.calls", "natfw.EnsureNAT", "", 3},
		{"managedvm.calls", "natfw.EnsureNAT", "OK", 1},
		{"managedvm.errors", "natfw.EnsureNAT", "InvalidArgument", 1},
		{"managedvm.errors", "natfw.EnsureNAT", "AlreadyExists", 1},
		{"managedvm.errors", "natfw.EnsureNAT", "", 2},
		{"managedvm.calls", "natfw.Get", "", 1},
		{"managedvm.errors", "natfw.Get", "NotFound", 1},
		{"managedvm.calls", "natfw.List", "", 1},
		{"managedvm.errors", "natfw.List", "", 0},
		{"managedvm.calls", "natfw.RemoveNAT", "OK", 1},
		{"managedvm.errors", "natfw.RemoveNAT", "", 0},
	}
	for _, c := range counts {
		match := map[string]string{"op": c.op}
		if c.code != "" {
			match["code"] = c.code
		}
		if got := rec.Sum(c.metric, match); got != c.want {
			t.Errorf("%s{%v} = %d, want %d", c.metric, match, got, c.want)
		}
	}
}
