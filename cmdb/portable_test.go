package cmdb_test

import (
	"context"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/testkit"
)

// guardDriver is a memcmdb driver that fails the test when it is given a
// done context or an invalid argument, and that hands every caller the
// same maps (a cache): the portable type must check before any driver
// runs and copy what a driver returns. (These were memcmdb mutants
// "context ignored", "filter not validated" and "get shares memory"
// before the portable type made them harmless.)
type guardDriver struct {
	*memcmdb.Driver
	t     *testing.T
	cache map[cmdb.Key]cmdb.Record
}

func (g *guardDriver) check(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		g.t.Errorf("%s reached the driver with a done context", what)
	}
	if err != nil {
		g.t.Errorf("%s reached the driver with an invalid argument: %v", what, err)
	}
}

func (g *guardDriver) Upsert(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
	g.check(ctx, "Upsert", r.Validate())
	return g.Driver.Upsert(ctx, r)
}

func (g *guardDriver) Get(ctx context.Context, k cmdb.Key) (cmdb.Record, error) {
	g.check(ctx, "Get", k.Validate())
	if r, ok := g.cache[k]; ok {
		return r, nil
	}
	r, err := g.Driver.Get(ctx, k)
	if err == nil {
		g.cache[k] = r
	}
	return r, err
}

func (g *guardDriver) List(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
	g.check(ctx, "List", f.Validate())
	return g.Driver.List(ctx, f)
}

func (g *guardDriver) Retire(ctx context.Context, k cmdb.Key) (cmdb.Record, error) {
	g.check(ctx, "Retire", k.Validate())
	return g.Driver.Retire(ctx, k)
}

func TestPortableGuards(t *testing.T) {
	g := &guardDriver{Driver: memcmdb.NewDriver(nil), t: t, cache: map[cmdb.Key]cmdb.Record{}}
	db := cmdb.New(g, nil)
	ctx := context.Background()
	key := cmdb.Key{Provider: "vsphere", VMID: "vm-1"}
	if _, err := db.Upsert(ctx, cmdb.Record{Key: key, State: cmdb.Enrolled, Attributes: map[string]string{"a": "1"}}); err != nil {
		t.Fatal(err)
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err := db.Upsert(done, cmdb.Record{Key: key, State: cmdb.Enrolled})
	testkit.WantCode(t, "Upsert (done)", err, errs.Canceled)
	_, err = db.Get(done, key)
	testkit.WantCode(t, "Get (done)", err, errs.Canceled)
	_, err = db.List(done, cmdb.Filter{})
	testkit.WantCode(t, "List (done)", err, errs.Canceled)
	_, err = db.Retire(done, key)
	testkit.WantCode(t, "Retire (done)", err, errs.Canceled)

	_, err = db.Upsert(ctx, cmdb.Record{Key: key, State: "bogus"})
	testkit.WantCode(t, "Upsert (invalid)", err, errs.InvalidArgument)
	_, err = db.Get(ctx, cmdb.Key{Provider: "vsphere", VMID: "a\nb"})
	testkit.WantCode(t, "Get (invalid)", err, errs.InvalidArgument)
	_, err = db.List(ctx, cmdb.Filter{States: []cmdb.State{"enroled"}})
	testkit.WantCode(t, "List (invalid)", err, errs.InvalidArgument)
	_, err = db.Retire(ctx, cmdb.Key{})
	testkit.WantCode(t, "Retire (invalid)", err, errs.InvalidArgument)

	// The driver hands out its cached maps: callers must not share them.
	a, _ := db.Get(ctx, key)
	a.Attributes["a"] = "mutated"
	b, _ := db.Get(ctx, key)
	if b.Attributes["a"] != "1" {
		t.Fatalf("a caller's change reached another caller: %v", b.Attributes)
	}
}

// maxQuoted is the longest limit.Quote output: every one of its
// QuoteBytes bytes may print as a 4-byte escape, plus quotes and ellipsis.
const maxQuoted = 2 + 4*limit.QuoteBytes + len("…")

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// FuzzKeyValidate: Key.Validate accepts exactly the keys whose Provider is
// a limit.Name and whose VMID is a limit.Key, and its errors are
// InvalidArgument and bounded.
func FuzzKeyValidate(f *testing.F) {
	for _, s := range []string{"", "vsphere", "a\x00b", "a\nb", "a\xffb", strings.Repeat("p", limit.MaxName+1), strings.Repeat("é", 64)} {
		f.Add(s, "vm-1")
		f.Add("vsphere", s)
	}
	f.Fuzz(func(t *testing.T, prov, id string) {
		err := cmdb.Key{Provider: prov, VMID: id}.Validate()
		want := len(prov) >= 1 && len(prov) <= limit.MaxName && printable(prov) &&
			len(id) >= 1 && len(id) <= limit.MaxKey && printable(id)
		if (err == nil) != want {
			t.Fatalf("Key{%q, %q}.Validate() = %v, want ok=%v", prov, id, err, want)
		}
		if err != nil {
			testkit.WantCode(t, "Validate", err, errs.InvalidArgument)
			testkit.Bounded(t, "Validate", err, maxQuoted+80)
		}
	})
}

// FuzzRecordValidate: Record.Validate on a record with fuzzed text,
// attribute key and value accepts exactly what the limits allow.
func FuzzRecordValidate(f *testing.F) {
	for _, s := range []string{"", "x", "a\x00b", "a\nb", "a\xffb", strings.Repeat("t", limit.MaxText+1), strings.Repeat("k", limit.MaxLabel+1)} {
		f.Add(s, "k", "v")
		f.Add("why", s, "v")
		f.Add("why", "k", s)
	}
	f.Fuzz(func(t *testing.T, reason, key, value string) {
		r := cmdb.Record{Key: cmdb.Key{Provider: "vsphere", VMID: "vm-1"}, State: cmdb.Failed, Reason: reason,
			Attributes: map[string]string{key: value}}
		err := r.Validate()
		text := func(s string) bool {
			return len(s) <= limit.MaxText && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
		}
		want := text(reason) && text(value) && len(key) >= 1 && len(key) <= limit.MaxLabel && printable(key)
		if (err == nil) != want {
			t.Fatalf("Validate(reason %q, attribute %q=%q) = %v, want ok=%v", reason, key, value, err, want)
		}
		if err != nil {
			testkit.WantCode(t, "Validate", err, errs.InvalidArgument)
			testkit.Bounded(t, "Validate", err, 3*maxQuoted+80)
		}
	})
}

// FuzzFilterValidate: Filter.Validate accepts exactly the filters whose
// Provider and Zone are empty or a limit.Name.
func FuzzFilterValidate(f *testing.F) {
	for _, s := range []string{"", "az1", "a\x00b", "a\nb", "a\xffb", strings.Repeat("z", limit.MaxName+1)} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, prov, zone string) {
		err := cmdb.Filter{Provider: prov, Zone: zone}.Validate()
		name := func(s string) bool { return len(s) <= limit.MaxName && printable(s) }
		if (err == nil) != (name(prov) && name(zone)) {
			t.Fatalf("Filter{%q, %q}.Validate() = %v", prov, zone, err)
		}
		if err != nil {
			testkit.WantCode(t, "Validate", err, errs.InvalidArgument)
			testkit.Bounded(t, "Validate", err, maxQuoted+80)
		}
	})
}
