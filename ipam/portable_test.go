package ipam_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/ipamtest"
	"github.com/managedvm/managedvm/ipam/memipam"
)

// The suite over the in-memory driver wrapped in a driver that only
// forwards: what the portable type does, it does for any driver type.
func TestConformanceOverAForwardingDriver(t *testing.T) {
	ipamtest.Run(t, ipamtest.HarnessFunc(func(t *testing.T) ipam.Driver {
		return forward{memipam.NewDriver(nil)}
	}))
}

// forward is a driver that hands every call to another.
type forward struct{ ipam.Driver }

// failingPools is a driver whose Pools fails with err, or, with err nil,
// blocks until its context ends.
type failingPools struct {
	ipam.Driver
	err error
}

func (f failingPools) Pools(ctx context.Context) ([]ipam.PoolInfo, error) {
	if f.err != nil {
		return nil, f.err
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// The pool gauges skip a collection whose Pools call fails or outlasts
// GaugeTimeout, and the collection does not wait longer than that.
func TestPoolGaugesSkipFailures(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"failing", errs.New(errs.Unavailable, "", "database down")},
		{"blocking", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			inner := memipam.NewDriver(nil)
			r := obstest.New(t)
			m := ipam.New(failingPools{inner, c.err}, &ipam.Options{MeterProvider: r.MP, GaugeTimeout: 50 * time.Millisecond})
			if err := m.CreatePool(ctx, ipam.Pool{Name: "a", Prefix: pfx("192.0.2.0/24")}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if v, ok := r.Gauge("managedvm.ipam.pool.size", map[string]string{"pool": "a"}); ok {
				t.Errorf("pool.size observed as %v although Pools failed", v)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("a collection took %v with a 50ms GaugeTimeout", d)
			}
			// The calls themselves are still counted.
			if n := r.Sum("managedvm.calls", map[string]string{"op": "ipam.CreatePool", "code": "OK"}); n != 1 {
				t.Errorf("managedvm.calls{op=ipam.CreatePool} = %d, want 1", n)
			}
		})
	}
}

// Without a MeterProvider there are no gauges and nothing calls Pools.
func TestNoGaugesWithoutMeterProvider(t *testing.T) {
	r := obstest.New(t)
	m := ipam.New(failingPools{memipam.NewDriver(nil), nil}, &ipam.Options{TracerProvider: r.TP})
	if err := m.CreatePool(t.Context(), ipam.Pool{Name: "a", Prefix: pfx("192.0.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Collect().ScopeMetrics); n != 0 {
		t.Errorf("%d scopes of metrics without a MeterProvider", n)
	}
	if n := len(r.SpansNamed("ipam.CreatePool")); n != 1 {
		t.Errorf("%d CreatePool spans, want 1", n)
	}
}

// closer is a driver that counts its Close calls and fails them with err.
type closer struct {
	ipam.Driver
	n   int
	err error
}

func (c *closer) Close() error { c.n++; return c.err }

// Close closes a driver that is an io.Closer, once, and names the
// operation in its error.
func TestCloseClosesTheDriverOnce(t *testing.T) {
	c := &closer{Driver: memipam.NewDriver(nil), err: errors.New("boom")}
	m := ipam.New(c, nil)
	err := m.Close()
	if err == nil || !strings.HasPrefix(err.Error(), "ipam.Close: ") {
		t.Errorf("Close = %v, want the driver's error named ipam.Close", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close again = %v, want nil", err)
	}
	if c.n != 1 {
		t.Errorf("the driver was closed %d times, want 1", c.n)
	}
}

// As reaches the driver's concrete type and the interfaces it implements,
// and nothing else.
func TestAs(t *testing.T) {
	d := memipam.NewDriver(nil)
	m := ipam.New(d, nil)
	var got *memipam.Driver
	if !m.As(&got) || got != d {
		t.Errorf("As(*memipam.Driver) = %p, want %p", got, d)
	}
	var drv ipam.Driver
	if !m.As(&drv) || drv != ipam.Driver(d) {
		t.Error("As(*ipam.Driver) did not reach the driver")
	}
	var s *strings.Builder
	if m.As(&s) || m.As(nil) || m.As(got) {
		t.Error("As of an unrelated type, nil or a non-pointer-to-pointer succeeded")
	}
}

func TestNewNilDriverPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("ipam.New(nil) did not panic")
		}
	}()
	ipam.New(nil, nil)
}

// With telemetry off the portable layer adds no allocation to Allocate.
func TestAllocateAddsNoAllocation(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations")
	}
	ctx := context.Background()
	m := memipam.New(nil)
	if err := m.CreatePool(ctx, ipam.Pool{Name: "a", Prefix: pfx("10.0.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	req := ipam.Request{Pool: "a", Owner: "vsphere-prod/4211aaaa-9c3e-5e6b-8f0a-000000000001"}
	if _, err := m.Allocate(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = m.Allocate(ctx, req) }); n != 0 {
		t.Errorf("Allocate of a held address made %v allocations, want 0", n)
	}
}

// Validation errors name no operation of their own (the call adds it
// once), and are bounded whatever the input.
func TestValidateErrorsAreBoundedAndUnnamed(t *testing.T) {
	huge := strings.Repeat("\xff\n", 8<<10)
	for what, err := range map[string]error{
		"Pool.Validate(name)":      ipam.Pool{Name: huge, Prefix: pfx("192.0.2.0/24")}.Validate(),
		"Pool.Validate(prefix)":    ipam.Pool{Name: "a\u00e9", Prefix: pfx("192.0.2.7/24")}.Validate(),
		"Request.Validate(pool)":   ipam.Request{Pool: huge, Owner: "o"}.Validate(),
		"Request.Validate(owner)":  ipam.Request{Pool: "p", Owner: huge}.Validate(),
		"Request.Validate(zoned)":  ipam.Request{Pool: "p", Owner: "o", LocalIP: ip("fe80::1%" + strings.Repeat("e", 1000))}.Validate(),
		"Pool.Validate(reserved)":  ipam.Pool{Name: "p", Prefix: pfx("10.0.0.0/8"), Reserved: make([]ipam.Range, ipam.MaxReserved+1)}.Validate(),
		"Pool.Validate(bad range)": ipam.Pool{Name: "p", Prefix: pfx("10.0.0.0/8"), Reserved: []ipam.Range{{}}}.Validate(),
	} {
		testkit.WantCode(t, what, err, errs.InvalidArgument)
		testkit.Bounded(t, what, err, 300)
		var e *errs.Error
		if errors.As(err, &e) && e.Op != "" {
			t.Errorf("%s: Op %q, want none", what, e.Op)
		}
	}
	_, err := memipam.New(nil).Allocate(context.Background(), ipam.Request{Pool: "p", Owner: huge})
	if err == nil || strings.Count(err.Error(), "ipam.Allocate") != 1 || !strings.HasPrefix(err.Error(), "ipam.Allocate: ") {
		t.Errorf("Allocate with a bad owner: %v, want the op named once, first", err)
	}
}

// FuzzPoolValidate: Validate never panics, accepts only names within the
// limits, refuses with a bounded InvalidArgument, and a pool it accepts
// is handled by the in-memory driver exactly as described by its Size.
func FuzzPoolValidate(f *testing.F) {
	f.Add("zone-a", []byte{203, 0, 113, 0}, 24, []byte{203, 0, 113, 1}, []byte{203, 0, 113, 2, 203, 0, 113, 9})
	f.Add("a\x00b", []byte{10, 0, 0, 0}, 8, []byte{}, []byte{})
	f.Add(strings.Repeat("é", 65), []byte{192, 0, 2, 7}, 31, []byte{1, 2, 3, 4}, []byte{192, 0, 2, 9, 192, 0, 2, 1})
	f.Fuzz(func(t *testing.T, name string, addr []byte, bits int, gw []byte, reserved []byte) {
		p := ipam.Pool{Name: name}
		if a, ok := netip.AddrFromSlice(addr); ok {
			p.Prefix = netip.PrefixFrom(a, bits)
		}
		if a, ok := netip.AddrFromSlice(gw); ok {
			p.Gateway = a
		}
		for i := 0; i+8 <= len(reserved) && len(p.Reserved) < 4; i += 8 {
			from, _ := netip.AddrFromSlice(reserved[i : i+4])
			to, _ := netip.AddrFromSlice(reserved[i+4 : i+8])
			p.Reserved = append(p.Reserved, ipam.Range{From: from, To: to})
		}
		err := p.Validate()
		nameOK := limit.Name("", "pool name", name) == nil
		if err != nil {
			testkit.WantCode(t, "Validate", err, errs.InvalidArgument)
			testkit.Bounded(t, "Validate", err, 300)
			return
		}
		if !nameOK {
			t.Fatalf("Validate accepted the name %q", name)
		}
		if !p.Prefix.Addr().Is4() || p.Prefix.Bits() < 8 || p.Prefix.Masked() != p.Prefix {
			t.Fatalf("Validate accepted the prefix %v", p.Prefix)
		}
		if p.Prefix.Bits() < 20 {
			return // keep the driver part cheap
		}
		ctx := context.Background()
		m := memipam.New(nil)
		if err := m.CreatePool(ctx, p); err != nil {
			t.Fatalf("CreatePool of a valid pool: %v", err)
		}
		pi, err := m.Pool(ctx, name)
		if err != nil || pi.Size != p.Size() || pi.Name != name {
			t.Fatalf("Pool = %+v, %v; want size %d", pi, err, p.Size())
		}
	})
}

// FuzzRequestValidate: Request.Validate (and the checks of the other
// calls) never panic and refuse with a bounded InvalidArgument, and what
// they accept reaches the driver intact.
func FuzzRequestValidate(f *testing.F) {
	f.Add("zone-a", "vsphere-prod/4211", "10.0.0.1")
	f.Add("zone\na", "o", "")
	f.Add("z", strings.Repeat("o", 256), "fe80::1%eth0")
	f.Add("z", "\xff", "::ffff:10.0.0.1")
	f.Fuzz(func(t *testing.T, pool, owner, local string) {
		req := ipam.Request{Pool: pool, Owner: owner}
		req.LocalIP, _ = netip.ParseAddr(local)
		err := req.Validate()
		valid := limit.Name("", "", pool) == nil && limit.Key("", "", owner) == nil && req.LocalIP.Zone() == ""
		if (err == nil) != valid {
			t.Fatalf("Validate(%q, %q, %v) = %v, want valid=%v", pool, owner, req.LocalIP, err, valid)
		}
		ctx := context.Background()
		m := memipam.New(nil)
		if limit.Name("", "", pool) == nil {
			if err := m.CreatePool(ctx, ipam.Pool{Name: pool, Prefix: pfx("192.0.2.0/30")}); err != nil {
				t.Fatalf("CreatePool(%q): %v", pool, err)
			}
		}
		a, aerr := m.Allocate(ctx, req)
		_, lerr := m.Lookup(ctx, pool, owner)
		rerr := m.Release(ctx, pool, owner)
		if !valid {
			for what, err := range map[string]error{"Validate": err, "Allocate": aerr} {
				testkit.WantCode(t, what, err, errs.InvalidArgument)
				testkit.Bounded(t, what, err, 300)
			}
			if limit.Key("", "", owner) != nil || limit.Name("", "", pool) != nil {
				for what, err := range map[string]error{"Lookup": lerr, "Release": rerr} {
					testkit.WantCode(t, what, err, errs.InvalidArgument)
					testkit.Bounded(t, what, err, 300)
				}
			}
			return
		}
		if aerr != nil || lerr != nil || rerr != nil {
			t.Fatalf("valid request: Allocate %v, Lookup %v, Release %v", aerr, lerr, rerr)
		}
		if a.Pool != pool || a.Owner != owner || a.LocalIP != req.LocalIP {
			t.Fatalf("Allocate(%+v) = %+v", req, a)
		}
	})
}
