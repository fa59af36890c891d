package cmdbtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
)

// Harness connects the suite to one CMDB driver.
type Harness struct {
	// New returns a new, empty driver for one case. It registers its own
	// clean-up with t.Cleanup (Close may also be called by the suite,
	// through the portable type, so it must be safe to call twice). The
	// suite runs every case through cmdb.New over it.
	New func(t *testing.T) cmdb.Driver
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("cmdbtest: Harness.New is nil")
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"StoreOwnsTimestamps", testTimestamps},
		{"UpdateWithRevision", testUpdate},
		{"StaleRevisionConflicts", testStale},
		{"CreateTwiceConflicts", testCreateTwice},
		{"UpdateMissingConflicts", testUpdateMissing},
		{"NotFound", testNotFound},
		{"InvalidRecords", testInvalid},
		{"ListOrderedByKey", testListOrder},
		{"ListFilters", testListFilters},
		{"ListInvalidFilter", testListInvalidFilter},
		{"Retire", testRetire},
		{"RetireIdempotent", testRetireIdempotent},
		{"RetireBumpsRevision", testRetireBumps},
		{"RetireMissing", testRetireMissing},
		{"Copies", testCopies},
		{"CanceledContext", testCanceled},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"ConcurrentCreate", testConcurrentCreate},
		{"KeyLimits", testKeyLimits},
		{"RecordLimits", testRecordLimits},
		{"AttributeLimits", testAttributeLimits},
		{"FilterLimits", testFilterLimits},
		{"AfterClose", testAfterClose},
		{"Telemetry", testTelemetry},
		{"BatchCreateUpdate", testBatchCreateUpdate},
		{"BatchConflicts", testBatchConflicts},
		{"BatchRetirement", testBatchRetirement},
		{"BatchInvalid", testBatchInvalid},
		{"BatchLikeUpserts", testBatchLikeUpserts},
		{"BatchConcurrent", testBatchConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := h.New(t)
			if d == nil {
				t.Fatal("Harness.New returned nil")
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			c.fn(t, &suite{db: cmdb.New(d, nil), drv: d, ctx: ctx})
		})
	}
}

type suite struct {
	db  *cmdb.CMDB
	drv cmdb.Driver // what db is over, for the cases that build their own
	ctx context.Context
}

// at is a fixed time with microsecond precision, which every store keeps.
var at = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

// record returns a full record for key with every field set.
func record(provName, vmid string) cmdb.Record {
	return cmdb.Record{
		Key: cmdb.Key{Provider: provName, VMID: vmid},
		VM: provider.VM{
			ID: vmid, Name: "name-" + vmid, Zone: "az1", Power: provider.PoweredOn, CPUs: 2, MemoryMiB: 4096,
			Guest: provider.GuestInfo{
				Family: guest.Linux, OSName: "Debian GNU/Linux 12", OSVersion: "12", Hostname: "h-" + vmid,
				IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::5")}, ToolsRunning: true,
				ToolsVersion: "12352", ToolsStatus: "toolsOk",
			},
			Annotation: "note", Attributes: map[string]string{"cluster": "c1", "host": "esx-1"},
		},
		State:      cmdb.Enrolled,
		Reason:     "why",
		FailedStep: "step",
		PublicIP:   netip.MustParseAddr("203.0.113.10"),
		Ports:      []natfw.Port{{Protocol: natfw.TCP, Number: 22}, {Protocol: natfw.TCP, Number: 443}},
		Attributes: map[string]string{"owner": "team-a", "ticket": "CHG-1"},
		EnrolledAt: at,
	}
}

// normalize makes records comparable across stores: times as UTC instants,
// empty maps and slices as nil.
func normalize(r cmdb.Record) cmdb.Record {
	r = r.Clone()
	for _, tp := range []*time.Time{&r.Created, &r.Updated, &r.EnrolledAt, &r.RetiredAt} {
		if tp.IsZero() {
			*tp = time.Time{}
		} else {
			*tp = tp.UTC().Round(0)
		}
	}
	if len(r.Ports) == 0 {
		r.Ports = nil
	}
	if len(r.Attributes) == 0 {
		r.Attributes = nil
	}
	if len(r.VM.Attributes) == 0 {
		r.VM.Attributes = nil
	}
	if len(r.VM.Guest.IPs) == 0 {
		r.VM.Guest.IPs = nil
	}
	return r
}

func sameRecord(a, b cmdb.Record) bool { return reflect.DeepEqual(normalize(a), normalize(b)) }

// content is a record without what the store sets.
func content(r cmdb.Record) cmdb.Record {
	r = normalize(r)
	r.Revision, r.Created, r.Updated, r.RetiredAt = 0, time.Time{}, time.Time{}, time.Time{}
	return r
}

func (s *suite) upsert(t *testing.T, r cmdb.Record) cmdb.Record {
	t.Helper()
	out, err := s.db.Upsert(s.ctx, r)
	if err != nil {
		t.Fatalf("Upsert(%s, revision %d): %v", r.Key, r.Revision, err)
	}
	return out
}

func (s *suite) get(t *testing.T, k cmdb.Key) cmdb.Record {
	t.Helper()
	r, err := s.db.Get(s.ctx, k)
	if err != nil {
		t.Fatalf("Get(%s): %v", k, err)
	}
	return r
}

// all lists every record, retired ones included.
func (s *suite) all(t *testing.T) []cmdb.Record {
	t.Helper()
	rs, err := s.db.List(s.ctx, cmdb.Filter{IncludeRetired: true})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return rs
}

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	testkit.MustCode(t, what, err, errs.FailedPrecondition)
	if !errors.Is(err, cmdb.ErrConflict) {
		t.Fatalf("%s: error %v does not wrap cmdb.ErrConflict", what, err)
	}
}

func (s *suite) wantUnchanged(t *testing.T, what string, before cmdb.Record) {
	t.Helper()
	if after := s.get(t, before.Key); !sameRecord(after, before) {
		t.Fatalf("%s changed the stored record:\n before %+v\n after  %+v", what, before, after)
	}
}

func testCreateAndGet(t *testing.T, s *suite) {
	in := record("vsphere", "vm-1")
	out := s.upsert(t, in)
	if out.Revision != 1 {
		t.Fatalf("created record has revision %d, want 1", out.Revision)
	}
	if !reflect.DeepEqual(content(out), content(in)) {
		t.Fatalf("Upsert returned other content:\n got  %+v\n want %+v", content(out), content(in))
	}
	got := s.get(t, in.Key)
	if !sameRecord(got, out) {
		t.Fatalf("Get differs from what Upsert returned:\n get    %+v\n upsert %+v", got, out)
	}
	// A minimal record works too.
	small := cmdb.Record{Key: cmdb.Key{Provider: "ovirt", VMID: "x"}, State: cmdb.Available}
	out = s.upsert(t, small)
	if got := s.get(t, small.Key); !sameRecord(got, out) || got.State != cmdb.Available || got.PublicIP.IsValid() {
		t.Fatalf("minimal record read back as %+v", got)
	}
}

func testTimestamps(t *testing.T, s *suite) {
	in := record("vsphere", "vm-1")
	in.Created = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	in.Updated = in.Created
	in.RetiredAt = in.Created
	before := time.Now().Add(-time.Hour)
	out := s.upsert(t, in)
	if out.Created.IsZero() || out.Created.Equal(in.Created) || out.Created.Before(before) {
		t.Fatalf("Created = %v: the store must set it (caller said %v)", out.Created, in.Created)
	}
	if out.Updated.Before(out.Created) {
		t.Fatalf("Updated %v before Created %v", out.Updated, out.Created)
	}
	if !out.RetiredAt.IsZero() {
		t.Fatalf("an enrolled record has RetiredAt %v", out.RetiredAt)
	}
	if !out.EnrolledAt.Equal(at) {
		t.Fatalf("EnrolledAt %v, want the caller's %v", out.EnrolledAt, at)
	}
	next := out
	next.Reason = "changed"
	next.Created = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	out2 := s.upsert(t, next)
	if !out2.Created.Equal(out.Created) {
		t.Fatalf("an update moved Created from %v to %v", out.Created, out2.Created)
	}
	if out2.Updated.Before(out.Updated) {
		t.Fatalf("Updated went back from %v to %v", out.Updated, out2.Updated)
	}
}

func testUpdate(t *testing.T, s *suite) {
	first := s.upsert(t, record("vsphere", "vm-1"))
	next := first
	next.State = cmdb.Failed
	next.Reason = "guest credentials refused"
	next.Attributes = map[string]string{"owner": "team-b"}
	next.VM.Name = "renamed"
	out := s.upsert(t, next)
	if out.Revision != 2 {
		t.Fatalf("revision after update %d, want 2", out.Revision)
	}
	got := s.get(t, first.Key)
	if !sameRecord(got, out) || got.State != cmdb.Failed || got.VM.Name != "renamed" || !maps.Equal(got.Attributes, next.Attributes) {
		t.Fatalf("Get after update: %+v", got)
	}
	// And again, from what Get returned.
	got.Reason = "third"
	if out := s.upsert(t, got); out.Revision != 3 || out.Reason != "third" {
		t.Fatalf("third write: %+v", out)
	}
}

func testStale(t *testing.T, s *suite) {
	base := s.upsert(t, record("vsphere", "vm-1"))
	a, b := base, base // two writers read revision 1
	a.Reason = "writer a"
	b.Reason = "writer b"
	wa := s.upsert(t, a)
	_, err := s.db.Upsert(s.ctx, b)
	wantConflict(t, "Upsert with a stale revision", err)
	s.wantUnchanged(t, "a conflicting Upsert", wa)
	// A revision from the future conflicts too.
	c := wa
	c.Revision = wa.Revision + 5
	c.Reason = "future"
	_, err = s.db.Upsert(s.ctx, c)
	wantConflict(t, "Upsert with a revision ahead of the store", err)
	s.wantUnchanged(t, "a conflicting Upsert", wa)
	// Reapplying on a fresh read works.
	fresh := s.get(t, base.Key)
	fresh.Reason = "writer b, retried"
	if out := s.upsert(t, fresh); out.Revision != 3 {
		t.Fatalf("retried write has revision %d, want 3", out.Revision)
	}
}

func testCreateTwice(t *testing.T, s *suite) {
	first := s.upsert(t, record("vsphere", "vm-1"))
	again := record("vsphere", "vm-1")
	again.Reason = "second create"
	_, err := s.db.Upsert(s.ctx, again)
	wantConflict(t, "creating a record that exists", err)
	s.wantUnchanged(t, "a second create", first)
}

func testUpdateMissing(t *testing.T, s *suite) {
	r := record("vsphere", "vm-1")
	r.Revision = 3
	_, err := s.db.Upsert(s.ctx, r)
	wantConflict(t, "updating a record that does not exist", err)
	_, err = s.db.Get(s.ctx, r.Key)
	testkit.MustCode(t, "Get after a rejected update", err, errs.NotFound)
}

func testNotFound(t *testing.T, s *suite) {
	s.upsert(t, record("vsphere", "vm-1"))
	for _, k := range []cmdb.Key{{Provider: "vsphere", VMID: "vm-2"}, {Provider: "ovirt", VMID: "vm-1"}, {Provider: "vsphere", VMID: "VM-1"}} {
		_, err := s.db.Get(s.ctx, k)
		testkit.MustCode(t, "Get("+k.String()+")", err, errs.NotFound)
	}
}

func testInvalid(t *testing.T, s *suite) {
	good := record("vsphere", "vm-1")
	bad := map[string]cmdb.Record{}
	r := good
	r.Key.Provider = ""
	bad["no provider"] = r
	r = good
	r.Key.VMID = ""
	bad["no VM id"] = r
	r = good
	r.State = ""
	bad["no state"] = r
	r = good
	r.State = "deleted"
	bad["unknown state"] = r
	r = good
	r.Revision = -1
	bad["negative revision"] = r
	for name, r := range bad {
		_, err := s.db.Upsert(s.ctx, r)
		testkit.MustCode(t, "Upsert with "+name, err, errs.InvalidArgument)
	}
	if rs := s.all(t); len(rs) != 0 {
		t.Fatalf("rejected records were stored: %+v", rs)
	}
	_, err := s.db.Get(s.ctx, cmdb.Key{})
	testkit.MustCode(t, "Get with an empty key", err, errs.InvalidArgument)
	_, err = s.db.Retire(s.ctx, cmdb.Key{Provider: "vsphere"})
	testkit.MustCode(t, "Retire with an incomplete key", err, errs.InvalidArgument)
	// An invalid update leaves the stored record alone.
	stored := s.upsert(t, good)
	r = stored
	r.State = "bogus"
	_, err = s.db.Upsert(s.ctx, r)
	testkit.MustCode(t, "Upsert of an invalid update", err, errs.InvalidArgument)
	s.wantUnchanged(t, "an invalid update", stored)
}

func keysOf(rs []cmdb.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key.String()
	}
	return out
}

func testListOrder(t *testing.T, s *suite) {
	for _, k := range [][2]string{{"vsphere", "vm-2"}, {"ovirt", "b"}, {"vsphere", "vm-10"}, {"hyperv", "z"}, {"vsphere", "vm-1"}, {"ovirt", "a"}} {
		s.upsert(t, record(k[0], k[1]))
	}
	want := []string{"hyperv/z", "ovirt/a", "ovirt/b", "vsphere/vm-1", "vsphere/vm-10", "vsphere/vm-2"}
	if got := keysOf(s.all(t)); !slices.Equal(got, want) {
		t.Fatalf("List order %q, want %q", got, want)
	}
	rs, err := s.db.List(s.ctx, cmdb.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if want := record(r.Key.Provider, r.Key.VMID); !reflect.DeepEqual(content(r), content(want)) {
			t.Fatalf("List returned %s with other content: %+v", r.Key, r)
		}
	}
	empty, err := s.db.List(s.ctx, cmdb.Filter{Provider: "nobody"})
	if err != nil || len(empty) != 0 {
		t.Fatalf("List matching nothing: %v, %v", empty, err)
	}
}

func testListFilters(t *testing.T, s *suite) {
	put := func(prov, id, zone string, st cmdb.State) {
		r := record(prov, id)
		r.VM.Zone = zone
		r.State = st
		s.upsert(t, r)
	}
	put("vsphere", "a", "az1", cmdb.Available)
	put("vsphere", "b", "az2", cmdb.Enrolled)
	put("vsphere", "c", "az1", cmdb.Failed)
	put("ovirt", "d", "az1", cmdb.Enrolled)
	put("ovirt", "e", "az2", cmdb.Enrolling)
	put("hyperv", "f", "az1", cmdb.Unenrolling)
	put("vsphere", "g", "az1", cmdb.Available)
	if _, err := s.db.Retire(s.ctx, cmdb.Key{Provider: "vsphere", VMID: "g"}); err != nil {
		t.Fatal(err)
	}
	put("ovirt", "h", "az2", cmdb.Retired)

	cases := []struct {
		f    cmdb.Filter
		want []string
	}{
		{cmdb.Filter{}, []string{"hyperv/f", "ovirt/d", "ovirt/e", "vsphere/a", "vsphere/b", "vsphere/c"}},
		{cmdb.Filter{IncludeRetired: true}, []string{"hyperv/f", "ovirt/d", "ovirt/e", "ovirt/h", "vsphere/a", "vsphere/b", "vsphere/c", "vsphere/g"}},
		{cmdb.Filter{Provider: "vsphere"}, []string{"vsphere/a", "vsphere/b", "vsphere/c"}},
		{cmdb.Filter{Provider: "vsphere", IncludeRetired: true}, []string{"vsphere/a", "vsphere/b", "vsphere/c", "vsphere/g"}},
		{cmdb.Filter{Zone: "az2"}, []string{"ovirt/e", "vsphere/b"}},
		{cmdb.Filter{Zone: "az2", IncludeRetired: true}, []string{"ovirt/e", "ovirt/h", "vsphere/b"}},
		{cmdb.Filter{States: []cmdb.State{cmdb.Enrolled}}, []string{"ovirt/d", "vsphere/b"}},
		{cmdb.Filter{States: []cmdb.State{cmdb.Enrolling, cmdb.Unenrolling}}, []string{"hyperv/f", "ovirt/e"}},
		{cmdb.Filter{States: []cmdb.State{cmdb.Retired}}, []string{"ovirt/h", "vsphere/g"}},
		{cmdb.Filter{States: []cmdb.State{cmdb.Retired, cmdb.Available}}, []string{"ovirt/h", "vsphere/a", "vsphere/g"}},
		{cmdb.Filter{Provider: "vsphere", Zone: "az1", States: []cmdb.State{cmdb.Available, cmdb.Failed}}, []string{"vsphere/a", "vsphere/c"}},
		{cmdb.Filter{Provider: "ovirt", Zone: "az1"}, []string{"ovirt/d"}},
		{cmdb.Filter{Provider: "vcd"}, nil},
		{cmdb.Filter{Zone: "az9"}, nil},
	}
	for _, c := range cases {
		rs, err := s.db.List(s.ctx, c.f)
		if err != nil {
			t.Fatalf("List(%+v): %v", c.f, err)
		}
		if got := keysOf(rs); !slices.Equal(got, c.want) && (len(got) != 0 || len(c.want) != 0) {
			t.Errorf("List(%+v) = %q, want %q", c.f, got, c.want)
		}
		for _, r := range rs {
			if !c.f.Match(r) {
				t.Errorf("List(%+v) returned %s, which the filter does not match", c.f, r.Key)
			}
		}
	}
}

func testListInvalidFilter(t *testing.T, s *suite) {
	s.upsert(t, record("vsphere", "vm-1"))
	_, err := s.db.List(s.ctx, cmdb.Filter{States: []cmdb.State{cmdb.Enrolled, "enroled"}})
	testkit.MustCode(t, "List with an unknown state", err, errs.InvalidArgument)
}

func testRetire(t *testing.T, s *suite) {
	stored := s.upsert(t, record("vsphere", "vm-1"))
	second := stored
	second.Reason = "bump"
	stored = s.upsert(t, second) // revision 2: Retire takes any revision
	out, err := s.db.Retire(s.ctx, stored.Key)
	if err != nil {
		t.Fatalf("Retire: %v", err)
	}
	if out.State != cmdb.Retired || out.RetiredAt.IsZero() || out.Revision != stored.Revision+1 {
		t.Fatalf("retired record: state %v, RetiredAt %v, revision %d (was %d)", out.State, out.RetiredAt, out.Revision, stored.Revision)
	}
	if out.RetiredAt.Before(stored.Updated) || out.Updated.Before(stored.Updated) || !out.Created.Equal(stored.Created) {
		t.Fatalf("retire timestamps: %+v (before: %+v)", out, stored)
	}
	want := content(stored)
	want.State = cmdb.Retired
	if got := content(out); !reflect.DeepEqual(got, want) {
		t.Fatalf("Retire changed more than the state:\n got  %+v\n want %+v", got, want)
	}
	if got := s.get(t, stored.Key); !sameRecord(got, out) {
		t.Fatalf("Get after Retire %+v, Retire returned %+v", got, out)
	}
}

func testRetireIdempotent(t *testing.T, s *suite) {
	stored := s.upsert(t, record("vsphere", "vm-1"))
	first, err := s.db.Retire(s.ctx, stored.Key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		again, err := s.db.Retire(s.ctx, stored.Key)
		if err != nil {
			t.Fatalf("Retire #%d: %v", i+2, err)
		}
		if !sameRecord(again, first) {
			t.Fatalf("retiring a retired record changed it:\n first %+v\n again %+v", first, again)
		}
	}
	s.wantUnchanged(t, "retiring again", first)
}

func testRetireBumps(t *testing.T, s *suite) {
	stored := s.upsert(t, record("vsphere", "vm-1"))
	retired, err := s.db.Retire(s.ctx, stored.Key)
	if err != nil {
		t.Fatal(err)
	}
	// A writer that read the record before it was retired must not
	// resurrect it.
	late := stored
	late.State = cmdb.Enrolled
	late.Reason = "late writer"
	_, err = s.db.Upsert(s.ctx, late)
	wantConflict(t, "Upsert with the revision from before Retire", err)
	s.wantUnchanged(t, "a stale write after Retire", retired)
}

func testRetireMissing(t *testing.T, s *suite) {
	_, err := s.db.Retire(s.ctx, cmdb.Key{Provider: "vsphere", VMID: "ghost"})
	testkit.MustCode(t, "Retire of a missing record", err, errs.NotFound)
	if rs := s.all(t); len(rs) != 0 {
		t.Fatalf("Retire of a missing record created %+v", rs)
	}
}

// mutate changes every map and slice of r in place.
func mutate(r *cmdb.Record) {
	if r.Attributes != nil {
		r.Attributes["owner"] = "mutated"
		r.Attributes["new"] = "mutated"
	}
	if r.VM.Attributes != nil {
		r.VM.Attributes["cluster"] = "mutated"
	}
	if len(r.VM.Guest.IPs) > 0 {
		r.VM.Guest.IPs[0] = netip.MustParseAddr("192.0.2.99")
	}
	if len(r.Ports) > 0 {
		r.Ports[0].Number = 9999
	}
}

func testCopies(t *testing.T, s *suite) {
	in := record("vsphere", "vm-1")
	out := s.upsert(t, in)
	want := normalize(out)
	mutate(&in)
	s.wantUnchanged(t, "mutating the record given to Upsert", want)
	mutate(&out)
	s.wantUnchanged(t, "mutating the record Upsert returned", want)
	got := s.get(t, want.Key)
	mutate(&got)
	s.wantUnchanged(t, "mutating the record Get returned", want)
	list := s.all(t)
	mutate(&list[0])
	s.wantUnchanged(t, "mutating a record List returned", want)
	retired, err := s.db.Retire(s.ctx, want.Key)
	if err != nil {
		t.Fatal(err)
	}
	want = normalize(retired)
	mutate(&retired)
	s.wantUnchanged(t, "mutating the record Retire returned", want)
}

func testCanceled(t *testing.T, s *suite) {
	stored := s.upsert(t, record("vsphere", "vm-1"))
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	_, err := s.db.Upsert(ctx, record("vsphere", "vm-2"))
	testkit.MustCode(t, "Upsert (create) with a canceled context", err, errs.Canceled)
	upd := stored
	upd.Reason = "canceled update"
	_, err = s.db.Upsert(ctx, upd)
	testkit.MustCode(t, "Upsert (update) with a canceled context", err, errs.Canceled)
	_, err = s.db.Get(ctx, stored.Key)
	testkit.MustCode(t, "Get with a canceled context", err, errs.Canceled)
	_, err = s.db.List(ctx, cmdb.Filter{})
	testkit.MustCode(t, "List with a canceled context", err, errs.Canceled)
	_, err = s.db.Retire(ctx, stored.Key)
	testkit.MustCode(t, "Retire with a canceled context", err, errs.Canceled)
	s.wantUnchanged(t, "calls with a canceled context", stored)
	if _, err := s.db.Get(s.ctx, cmdb.Key{Provider: "vsphere", VMID: "vm-2"}); !errs.Is(err, errs.NotFound) {
		t.Fatalf("a create with a canceled context stored the record (Get: %v)", err)
	}
	dctx, dcancel := context.WithDeadline(s.ctx, time.Now().Add(-time.Second))
	defer dcancel()
	_, err = s.db.Get(dctx, stored.Key)
	testkit.MustCode(t, "Get past its deadline", err, errs.DeadlineExceeded)
}

func testConcurrentIncrements(t *testing.T, s *suite) {
	const workers = 32
	base := record("vsphere", "vm-1")
	base.Attributes = map[string]string{"n": "0"}
	created := s.upsert(t, base)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := make(chan struct{}) // all workers start together
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for attempt := 0; ; attempt++ {
				if attempt > 10*workers {
					errc <- fmt.Errorf("worker %d: no success after %d attempts", w, attempt)
					return
				}
				r, err := s.db.Get(s.ctx, base.Key)
				if err != nil {
					errc <- fmt.Errorf("worker %d: Get: %w", w, err)
					return
				}
				n, err := strconv.Atoi(r.Attributes["n"])
				if err != nil {
					errc <- fmt.Errorf("worker %d: attribute n = %q", w, r.Attributes["n"])
					return
				}
				r.Attributes["n"] = strconv.Itoa(n + 1)
				runtime.Gosched() // let other workers read the same revision
				_, err = s.db.Upsert(s.ctx, r)
				if err == nil {
					return
				}
				if !errors.Is(err, cmdb.ErrConflict) || errs.CodeOf(err) != errs.FailedPrecondition {
					errc <- fmt.Errorf("worker %d: Upsert: %v (code %v), want success or ErrConflict", w, err, errs.CodeOf(err))
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	final := s.get(t, base.Key)
	if final.Attributes["n"] != strconv.Itoa(workers) {
		t.Fatalf("after %d increments n = %s: updates were lost", workers, final.Attributes["n"])
	}
	if final.Revision != created.Revision+workers {
		t.Fatalf("revision %d after %d writes on revision %d", final.Revision, workers, created.Revision)
	}
}

func testConcurrentCreate(t *testing.T, s *suite) {
	const workers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []cmdb.Record
	var other []error
	start := make(chan struct{}) // all creators start together
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := record("vsphere", "vm-1")
			r.Reason = fmt.Sprint("creator ", w)
			out, err := s.db.Upsert(s.ctx, r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, out)
			case !errors.Is(err, cmdb.ErrConflict):
				other = append(other, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("concurrent creates failed otherwise than with ErrConflict: %v", other)
	}
	if len(won) != 1 {
		t.Fatalf("%d of %d concurrent creates of one key succeeded, want exactly 1", len(won), workers)
	}
	s.wantUnchanged(t, "the losing creates", won[0])
}
