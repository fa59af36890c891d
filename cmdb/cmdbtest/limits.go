package cmdbtest

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
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

// values are the inputs every limit case tries for a field of at most max
// bytes: printable fields (names, keys, labels) refuse control characters,
// text fields only NUL; emptyOK says whether the field may be empty.
func values(max int, emptyOK, printable bool) []value {
	multi := strings.Repeat("é", max/2)
	return []value{
		{"Empty", "", emptyOK},
		{"Max", strings.Repeat("m", max), true},
		{"MaxMultiByte", multi[:max-max%2], true},
		{"MaxPlus1", strings.Repeat("m", max+1), false},
		{"NUL", "a\x00b", false},
		{"Newline", "a\nb", !printable},
		{"InvalidUTF8", "a\xffb", false},
		{"16kB", strings.Repeat("x", 16<<10), false},
	}
}

// refused checks that err is InvalidArgument with a bounded message and
// that the CMDB still holds exactly before.
func (s *suite) refused(t *testing.T, what string, err error, before []cmdb.Record) {
	t.Helper()
	testkit.WantCode(t, what, err, errs.InvalidArgument)
	testkit.Bounded(t, what, err, MaxMessage)
	after := s.all(t)
	if len(after) != len(before) {
		t.Fatalf("%s: %d records stored, want %d", what, len(after), len(before))
	}
	for i := range before {
		if !sameRecord(after[i], before[i]) {
			t.Fatalf("%s changed record %s:\n before %+v\n after  %+v", what, before[i].Key, before[i], after[i])
		}
	}
}

func testKeyLimits(t *testing.T, s *suite) {
	s.upsert(t, record("vsphere", "existing"))
	fields := []struct {
		name string
		max  int
		set  func(k *cmdb.Key, v string)
	}{
		{"Provider", limit.MaxName, func(k *cmdb.Key, v string) { k.Provider = v }},
		{"VMID", limit.MaxKey, func(k *cmdb.Key, v string) { k.VMID = v }},
	}
	for _, f := range fields {
		for _, c := range values(f.max, false, true) {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				k := cmdb.Key{Provider: "ovirt", VMID: "vm-1"}
				f.set(&k, c.v)
				r := record(k.Provider, k.VMID)
				r.VM.ID, r.VM.Name, r.VM.Guest.Hostname = "id", "name", "host" // record() derives them from the key
				before := s.all(t)
				if c.ok {
					out := s.upsert(t, r)
					if got := s.get(t, k); !sameRecord(got, out) {
						t.Fatalf("Get = %+v, want %+v", got, out)
					}
					if _, err := s.db.Retire(s.ctx, k); err != nil {
						t.Fatalf("Retire: %v", err)
					}
					return
				}
				_, err := s.db.Upsert(s.ctx, r)
				s.refused(t, "Upsert", err, before)
				_, err = s.db.Get(s.ctx, k)
				s.refused(t, "Get", err, before)
				_, err = s.db.Retire(s.ctx, k)
				s.refused(t, "Retire", err, before)
			})
		}
	}
}

// field is one string field of a record and its class.
type field struct {
	name      string
	max       int
	emptyOK   bool
	printable bool
	set       func(r *cmdb.Record, v string)
}

var recordFields = []field{
	{"VM.ID", limit.MaxKey, true, true, func(r *cmdb.Record, v string) { r.VM.ID = v }},
	{"VM.Name", limit.MaxName, true, true, func(r *cmdb.Record, v string) { r.VM.Name = v }},
	{"VM.Zone", limit.MaxName, true, true, func(r *cmdb.Record, v string) { r.VM.Zone = v }},
	{"VM.Annotation", limit.MaxText, true, false, func(r *cmdb.Record, v string) { r.VM.Annotation = v }},
	{"VM.Guest.OSName", limit.MaxText, true, false, func(r *cmdb.Record, v string) { r.VM.Guest.OSName = v }},
	{"VM.Guest.Hostname", limit.MaxText, true, false, func(r *cmdb.Record, v string) { r.VM.Guest.Hostname = v }},
	{"Reason", limit.MaxText, true, false, func(r *cmdb.Record, v string) { r.Reason = v }},
	{"FailedStep", limit.MaxText, true, false, func(r *cmdb.Record, v string) { r.FailedStep = v }},
	{"AttributeKey", limit.MaxLabel, false, true, func(r *cmdb.Record, v string) { r.Attributes = map[string]string{v: "x"} }},
	{"AttributeValue", limit.MaxText, true, false, func(r *cmdb.Record, v string) { r.Attributes = map[string]string{"k": v} }},
	{"VMAttributeKey", limit.MaxLabel, false, true, func(r *cmdb.Record, v string) { r.VM.Attributes = map[string]string{v: "x"} }},
	{"VMAttributeValue", limit.MaxText, true, false, func(r *cmdb.Record, v string) { r.VM.Attributes = map[string]string{"k": v} }},
}

// tryRecord writes r as a new record and as an update of existing: both
// stored and read back when ok, both refused with nothing changed
// otherwise.
func (s *suite) tryRecord(t *testing.T, existing cmdb.Record, mod func(*cmdb.Record), ok bool) {
	t.Helper()
	fresh := record("ovirt", existing.Key.VMID)
	mod(&fresh)
	upd := existing.Clone()
	mod(&upd)
	before := s.all(t)
	if !ok {
		_, err := s.db.Upsert(s.ctx, fresh)
		s.refused(t, "Upsert (create)", err, before)
		_, err = s.db.Upsert(s.ctx, upd)
		s.refused(t, "Upsert (update)", err, before)
		return
	}
	out := s.upsert(t, fresh)
	if got := s.get(t, fresh.Key); !sameRecord(got, out) || !sameRecord(content(out), content(fresh)) {
		t.Fatalf("created record read back as %+v, want %+v", got, fresh)
	}
	out = s.upsert(t, upd)
	if got := s.get(t, upd.Key); !sameRecord(got, out) || !sameRecord(content(out), content(upd)) {
		t.Fatalf("updated record read back as %+v, want %+v", got, upd)
	}
}

func testRecordLimits(t *testing.T, s *suite) {
	for _, f := range recordFields {
		for _, c := range values(f.max, f.emptyOK, f.printable) {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				existing := s.upsert(t, record("vsphere", "vm-"+strings.ReplaceAll(f.name, ".", "-")+"-"+c.name))
				s.tryRecord(t, existing, func(r *cmdb.Record) { f.set(r, c.v) }, c.ok)
			})
		}
	}
}

func attrs(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%05d", i)] = "v"
	}
	return m
}

func addrs(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{10, 1, byte(i / 256), byte(i % 256)})
	}
	return out
}

func ports(n int) []natfw.Port {
	out := make([]natfw.Port, n)
	for i := range out {
		out[i] = natfw.Port{Protocol: natfw.TCP, Number: uint16(1 + i)}
	}
	return out
}

func testAttributeLimits(t *testing.T, s *suite) {
	cases := []struct {
		name string
		mod  func(*cmdb.Record)
		ok   bool
	}{
		{"MaxAttributes", func(r *cmdb.Record) { r.Attributes = attrs(cmdb.MaxAttributes) }, true},
		{"MaxPlus1Attributes", func(r *cmdb.Record) { r.Attributes = attrs(cmdb.MaxAttributes + 1) }, false},
		{"16kAttributes", func(r *cmdb.Record) { r.Attributes = attrs(16 << 10) }, false},
		{"MaxVMAttributes", func(r *cmdb.Record) { r.VM.Attributes = attrs(cmdb.MaxAttributes) }, true},
		{"MaxPlus1VMAttributes", func(r *cmdb.Record) { r.VM.Attributes = attrs(cmdb.MaxAttributes + 1) }, false},
		{"MaxPorts", func(r *cmdb.Record) { r.Ports = ports(cmdb.MaxItems) }, true},
		{"MaxPlus1Ports", func(r *cmdb.Record) { r.Ports = ports(cmdb.MaxItems + 1) }, false},
		{"MaxIPs", func(r *cmdb.Record) { r.VM.Guest.IPs = addrs(cmdb.MaxItems) }, true},
		{"MaxPlus1IPs", func(r *cmdb.Record) { r.VM.Guest.IPs = addrs(cmdb.MaxItems + 1) }, false},
		{"16kIPs", func(r *cmdb.Record) { r.VM.Guest.IPs = addrs(16 << 10) }, false},
		// Every field at its maximum at once: a store must keep it whole
		// (and never fail it as Internal).
		{"AllMax", func(r *cmdb.Record) {
			for _, f := range recordFields {
				if !strings.HasSuffix(f.name, "Key") && !strings.HasSuffix(f.name, "Value") {
					f.set(r, strings.Repeat("m", f.max))
				}
			}
			r.Attributes = attrs(cmdb.MaxAttributes)
			for k := range r.Attributes {
				r.Attributes[k] = strings.Repeat("v", limit.MaxText)
			}
			r.VM.Attributes = map[string]string{strings.Repeat("k", limit.MaxLabel): strings.Repeat("v", limit.MaxText)}
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			existing := s.upsert(t, record("vsphere", "vm-"+c.name))
			s.tryRecord(t, existing, c.mod, c.ok)
		})
	}
}

func testFilterLimits(t *testing.T, s *suite) {
	s.upsert(t, record("vsphere", "vm-1"))
	for _, f := range []struct {
		name string
		set  func(*cmdb.Filter, string)
	}{
		{"Provider", func(f *cmdb.Filter, v string) { f.Provider = v }},
		{"Zone", func(f *cmdb.Filter, v string) { f.Zone = v }},
	} {
		for _, c := range values(limit.MaxName, true, true) {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				var flt cmdb.Filter
				f.set(&flt, c.v)
				rs, err := s.db.List(s.ctx, flt)
				if c.ok {
					if err != nil {
						t.Fatalf("List(%+v): %v", flt, err)
					}
					for _, r := range rs {
						if !flt.Match(r) {
							t.Fatalf("List(%+v) returned %s", flt, r.Key)
						}
					}
					return
				}
				testkit.WantCode(t, "List", err, errs.InvalidArgument)
				testkit.Bounded(t, "List", err, MaxMessage)
			})
		}
	}
	states := slices.Repeat([]cmdb.State{cmdb.Enrolled}, cmdb.MaxFilterStates)
	rs, err := s.db.List(s.ctx, cmdb.Filter{States: states})
	if err != nil || len(rs) != 1 {
		t.Fatalf("List with MaxFilterStates states = %d records, %v; want 1", len(rs), err)
	}
	_, err = s.db.List(s.ctx, cmdb.Filter{States: append(states, cmdb.Enrolled)})
	testkit.WantCode(t, "List with MaxFilterStates+1 states", err, errs.InvalidArgument)
}

// testAfterClose: every method after Close is FailedPrecondition and
// changes nothing; a second Close is nil.
func testAfterClose(t *testing.T, s *suite) {
	stored := s.upsert(t, record("vsphere", "vm-1"))
	db := cmdb.New(s.drv, nil)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := db.Upsert(s.ctx, record("vsphere", "vm-2"))
	testkit.WantCode(t, "Upsert after Close", err, errs.FailedPrecondition)
	_, err = db.Get(s.ctx, stored.Key)
	testkit.WantCode(t, "Get after Close", err, errs.FailedPrecondition)
	_, err = db.List(s.ctx, cmdb.Filter{})
	testkit.WantCode(t, "List after Close", err, errs.FailedPrecondition)
	_, err = db.Retire(s.ctx, stored.Key)
	testkit.WantCode(t, "Retire after Close", err, errs.FailedPrecondition)
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// testTelemetry: one span per call named after the operation, error.type
// the errs code of a failure, managedvm.calls and managedvm.errors counted
// by op and code.
func testTelemetry(t *testing.T, s *suite) {
	rec := obstest.New(t)
	db := cmdb.New(s.drv, &cmdb.Options{TracerProvider: rec.TP, MeterProvider: rec.MP})
	r := record("vsphere", "vm-1")
	stored, err := db.Upsert(s.ctx, r)
	if err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	_, err = db.Upsert(s.ctx, r) // revision 0 again: conflict
	testkit.WantCode(t, "Upsert (stale)", err, errs.FailedPrecondition)
	bad := r
	bad.State = "bogus"
	_, err = db.Upsert(s.ctx, bad)
	testkit.WantCode(t, "Upsert (invalid)", err, errs.InvalidArgument)
	_, err = db.Get(s.ctx, cmdb.Key{Provider: "vsphere", VMID: "missing"})
	testkit.WantCode(t, "Get (missing)", err, errs.NotFound)
	if _, err := db.List(s.ctx, cmdb.Filter{}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if _, err := db.Retire(s.ctx, stored.Key); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	_, err = db.Retire(s.ctx, cmdb.Key{Provider: "vsphere", VMID: "missing"})
	testkit.WantCode(t, "Retire (missing)", err, errs.NotFound)
	// A batch is one call: one span, one count, whatever its size.
	if _, err := db.UpsertMany(s.ctx, []cmdb.Record{record("vsphere", "vm-2"), record("vsphere", "vm-3")}); err != nil {
		t.Fatalf("UpsertMany: %v", err)
	}
	_, err = db.UpsertMany(s.ctx, []cmdb.Record{record("vsphere", "vm-4"), record("vsphere", "vm-2")})
	testkit.WantCode(t, "UpsertMany (one stale)", err, errs.FailedPrecondition)
	_, err = db.UpsertMany(s.ctx, []cmdb.Record{record("vsphere", "vm-5"), bad})
	testkit.WantCode(t, "UpsertMany (one invalid)", err, errs.InvalidArgument)

	wantSpans := map[string][]string{
		"cmdb.Upsert":     {"", "FailedPrecondition", "InvalidArgument"},
		"cmdb.Get":        {"NotFound"},
		"cmdb.List":       {""},
		"cmdb.Retire":     {"", "NotFound"},
		"cmdb.UpsertMany": {"", "FailedPrecondition", "InvalidArgument"},
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
		{"managedvm.calls", "cmdb.Upsert", "", 3},
		{"managedvm.calls", "cmdb.Upsert", "OK", 1},
		{"managedvm.errors", "cmdb.Upsert", "FailedPrecondition", 1},
		{"managedvm.errors", "cmdb.Upsert", "InvalidArgument", 1},
		{"managedvm.errors", "cmdb.Upsert", "", 2},
		{"managedvm.errors", "cmdb.Get", "NotFound", 1},
		{"managedvm.calls", "cmdb.List", "OK", 1},
		{"managedvm.errors", "cmdb.List", "", 0},
		{"managedvm.calls", "cmdb.Retire", "OK", 1},
		{"managedvm.errors", "cmdb.Retire", "NotFound", 1},
		{"managedvm.calls", "cmdb.UpsertMany", "", 3},
		{"managedvm.errors", "cmdb.UpsertMany", "FailedPrecondition", 1},
		{"managedvm.errors", "cmdb.UpsertMany", "InvalidArgument", 1},
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
