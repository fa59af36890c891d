package ipam_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }
func rng(from, to string) ipam.Range {
	return ipam.Range{From: ip(from), To: ip(to)}
}

func TestRangeContains(t *testing.T) {
	r := rng("192.0.2.10", "192.0.2.20")
	for a, want := range map[string]bool{
		"192.0.2.9": false, "192.0.2.10": true, "192.0.2.15": true, "192.0.2.20": true, "192.0.2.21": false,
		"2001:db8::1": false,
	} {
		if got := r.Contains(ip(a)); got != want {
			t.Errorf("%v.Contains(%s) = %v, want %v", r, a, got, want)
		}
	}
	if one := rng("192.0.2.7", "192.0.2.7"); !one.Contains(ip("192.0.2.7")) || one.Contains(ip("192.0.2.8")) {
		t.Error("a one-address range is wrong")
	}
}

func TestPoolValidate(t *testing.T) {
	good := []ipam.Pool{
		{Name: "a", Prefix: pfx("192.0.2.0/24")},
		{Name: "a", Prefix: pfx("192.0.2.0/24"), Gateway: ip("192.0.2.1")},
		{Name: "a", Prefix: pfx("10.0.0.0/8")},
		{Name: "a", Prefix: pfx("192.0.2.4/31")},
		{Name: "a", Prefix: pfx("192.0.2.4/32"), Gateway: ip("192.0.2.4")},
		// Reserved ranges may reach outside the prefix: they are clipped.
		{Name: "a", Prefix: pfx("192.0.2.0/24"), Reserved: []ipam.Range{rng("192.0.1.0", "192.0.3.255")}},
		{Name: "a", Prefix: pfx("192.0.2.0/24"), Reserved: []ipam.Range{rng("192.0.2.5", "192.0.2.5")}},
	}
	for _, p := range good {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", p, err)
		}
	}
	bad := map[string]ipam.Pool{
		"no name":          {Prefix: pfx("192.0.2.0/24")},
		"zero prefix":      {Name: "a"},
		"IPv6":             {Name: "a", Prefix: pfx("2001:db8::/64")},
		"IPv4-mapped IPv6": {Name: "a", Prefix: pfx("::ffff:192.0.2.0/120")},
		"/7":               {Name: "a", Prefix: pfx("10.0.0.0/7")},
		"/0":               {Name: "a", Prefix: pfx("0.0.0.0/0")},
		"host bits":        {Name: "a", Prefix: pfx("192.0.2.1/24")},
		"gateway outside":  {Name: "a", Prefix: pfx("192.0.2.0/24"), Gateway: ip("192.0.3.1")},
		"gateway IPv6":     {Name: "a", Prefix: pfx("192.0.2.0/24"), Gateway: ip("2001:db8::1")},
		"reversed range":   {Name: "a", Prefix: pfx("192.0.2.0/24"), Reserved: []ipam.Range{rng("192.0.2.9", "192.0.2.1")}},
		"open range":       {Name: "a", Prefix: pfx("192.0.2.0/24"), Reserved: []ipam.Range{{To: ip("192.0.2.1")}}},
		"IPv6 range":       {Name: "a", Prefix: pfx("192.0.2.0/24"), Reserved: []ipam.Range{rng("::1", "::2")}},
		"mixed range":      {Name: "a", Prefix: pfx("192.0.2.0/24"), Reserved: []ipam.Range{rng("192.0.2.1", "::2")}},
		"one bad of two": {Name: "a", Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{rng("192.0.2.1", "192.0.2.2"), rng("192.0.2.9", "192.0.2.3")}},
	}
	for what, p := range bad {
		err := p.Validate()
		if errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Validate(%s) = %v, want InvalidArgument", what, err)
		}
	}
}

func TestPoolExcluded(t *testing.T) {
	p := ipam.Pool{
		Name:     "a",
		Prefix:   pfx("192.0.2.0/24"),
		Gateway:  ip("192.0.2.1"),
		Reserved: []ipam.Range{rng("192.0.2.10", "192.0.2.12"), rng("192.0.1.250", "192.0.2.3")},
	}
	for a, want := range map[string]bool{
		"192.0.2.0":   true,  // network
		"192.0.2.255": true,  // broadcast
		"192.0.2.1":   true,  // gateway
		"192.0.2.2":   true,  // reserved, range starting outside
		"192.0.2.3":   true,  // reserved
		"192.0.2.4":   false, //
		"192.0.2.9":   false,
		"192.0.2.10":  true,
		"192.0.2.12":  true,
		"192.0.2.13":  false,
		"192.0.2.254": false,
		"192.0.1.251": true, // outside the prefix, though reserved
		"192.0.3.1":   true, // outside
		"2001:db8::1": true, // not even IPv4
	} {
		if got := p.Excluded(ip(a)); got != want {
			t.Errorf("Excluded(%s) = %v, want %v", a, got, want)
		}
	}
	// /31 and /32 have no network or broadcast address.
	p31 := ipam.Pool{Name: "a", Prefix: pfx("192.0.2.4/31")}
	if p31.Excluded(ip("192.0.2.4")) || p31.Excluded(ip("192.0.2.5")) {
		t.Error("a /31 excludes its addresses")
	}
	p32 := ipam.Pool{Name: "a", Prefix: pfx("192.0.2.4/32")}
	if p32.Excluded(ip("192.0.2.4")) || !p32.Excluded(ip("192.0.2.5")) {
		t.Error("a /32 is wrong")
	}
	p32.Gateway = ip("192.0.2.4")
	if !p32.Excluded(ip("192.0.2.4")) {
		t.Error("a /32's gateway is not excluded")
	}
	// A /30 does have them.
	p30 := ipam.Pool{Name: "a", Prefix: pfx("192.0.2.4/30")}
	for a, want := range map[string]bool{"192.0.2.4": true, "192.0.2.5": false, "192.0.2.6": false, "192.0.2.7": true} {
		if got := p30.Excluded(ip(a)); got != want {
			t.Errorf("/30 Excluded(%s) = %v, want %v", a, got, want)
		}
	}
}

func TestPoolSize(t *testing.T) {
	cases := []struct {
		what string
		p    ipam.Pool
		want int
	}{
		{"/24", ipam.Pool{Prefix: pfx("192.0.2.0/24")}, 254},
		{"/24 + gateway", ipam.Pool{Prefix: pfx("192.0.2.0/24"), Gateway: ip("192.0.2.1")}, 253},
		{"/24 + gateway reserved too", ipam.Pool{Prefix: pfx("192.0.2.0/24"), Gateway: ip("192.0.2.1"),
			Reserved: []ipam.Range{rng("192.0.2.1", "192.0.2.1")}}, 253},
		{"reserved covering network and broadcast", ipam.Pool{Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{rng("192.0.2.0", "192.0.2.4"), rng("192.0.2.250", "192.0.2.255")}}, 256 - 11},
		{"overlapping reserved", ipam.Pool{Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{rng("192.0.2.10", "192.0.2.20"), rng("192.0.2.15", "192.0.2.30"), rng("192.0.2.12", "192.0.2.13")}}, 254 - 21},
		{"adjacent reserved", ipam.Pool{Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{rng("192.0.2.10", "192.0.2.19"), rng("192.0.2.20", "192.0.2.29")}}, 254 - 20},
		{"duplicate reserved", ipam.Pool{Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{rng("192.0.2.10", "192.0.2.19"), rng("192.0.2.10", "192.0.2.19")}}, 254 - 10},
		{"reserved outside", ipam.Pool{Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{rng("10.0.0.0", "10.255.255.255"), rng("192.0.3.0", "192.0.3.255")}}, 254},
		{"reserved around the prefix", ipam.Pool{Prefix: pfx("192.0.2.0/24"),
			Reserved: []ipam.Range{rng("192.0.0.0", "192.0.255.255")}}, 0},
		{"/31", ipam.Pool{Prefix: pfx("192.0.2.4/31")}, 2},
		{"/31 + gateway", ipam.Pool{Prefix: pfx("192.0.2.4/31"), Gateway: ip("192.0.2.5")}, 1},
		{"/31 + reserved", ipam.Pool{Prefix: pfx("192.0.2.4/31"), Reserved: []ipam.Range{rng("192.0.2.0", "192.0.2.4")}}, 1},
		{"/32", ipam.Pool{Prefix: pfx("192.0.2.4/32")}, 1},
		{"/32 + gateway", ipam.Pool{Prefix: pfx("192.0.2.4/32"), Gateway: ip("192.0.2.4")}, 0},
		{"/30", ipam.Pool{Prefix: pfx("192.0.2.4/30")}, 2},
		{"/8", ipam.Pool{Prefix: pfx("10.0.0.0/8"), Gateway: ip("10.0.0.1")}, 1<<24 - 3},
		{"/8 at the top", ipam.Pool{Prefix: pfx("255.0.0.0/8"),
			Reserved: []ipam.Range{rng("255.255.255.0", "255.255.255.255")}}, 1<<24 - 1 - 256},
		{"/24 at the top, reserved up to the broadcast", ipam.Pool{Prefix: pfx("255.255.255.0/24"),
			Reserved: []ipam.Range{rng("255.255.255.250", "255.255.255.255")}}, 256 - 1 - 6},
		{"/24 at the bottom", ipam.Pool{Prefix: pfx("0.0.0.0/24"),
			Reserved: []ipam.Range{rng("0.0.0.0", "0.0.0.5")}}, 256 - 6 - 1},
	}
	for _, c := range cases {
		c.p.Name = "a"
		if err := c.p.Validate(); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if got := c.p.Size(); got != c.want {
			t.Errorf("%s: Size() = %d, want %d", c.what, got, c.want)
		}
		if c.p.Prefix.Bits() >= 16 {
			if n := countUsable(c.p); n != c.want {
				t.Errorf("%s: %d addresses not Excluded, want %d", c.what, n, c.want)
			}
		}
	}
}

// countUsable counts the addresses of p that Excluded lets through.
func countUsable(p ipam.Pool) int {
	n := 0
	for a := p.Prefix.Addr(); a.IsValid() && p.Prefix.Contains(a); a = a.Next() {
		if !p.Excluded(a) {
			n++
		}
	}
	return n
}

// TestPoolSizeMatchesExcluded checks Size against a count of the addresses
// Excluded lets through, on random small pools with random reserved ranges
// (overlapping, adjacent, partly or wholly outside the prefix), some at the
// very bottom and top of the address space.
func TestPoolSizeMatchesExcluded(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	addr := func(v uint32) netip.Addr {
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	for i := range 2000 {
		bits := 22 + r.IntN(11) // /22 to /32
		var base uint32
		switch i % 4 {
		case 0:
			base = 0
		case 1:
			base = ^uint32(0)
		default:
			base = r.Uint32()
		}
		base &^= 1<<(32-bits) - 1
		p := ipam.Pool{Name: fmt.Sprint("p", i), Prefix: netip.PrefixFrom(addr(base), bits)}
		span := uint32(1) << (32 - bits)
		if r.IntN(2) == 0 {
			p.Gateway = addr(base + r.Uint32N(span))
		}
		for range r.IntN(5) {
			// Ranges around the prefix, up to a quarter of it beyond each end.
			lo := int64(base) - int64(span/4) + int64(r.Uint32N(span+span/2))
			hi := lo + int64(r.Uint32N(span/2+1))
			lo, hi = max(lo, 0), min(hi, int64(^uint32(0)))
			if lo > hi {
				continue
			}
			p.Reserved = append(p.Reserved, ipam.Range{From: addr(uint32(lo)), To: addr(uint32(hi))})
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("generated pool %+v: %v", p, err)
		}
		if got, want := p.Size(), countUsable(p); got != want {
			t.Fatalf("pool %s gw %v reserved %v: Size() = %d, but %d addresses are not Excluded",
				p.Prefix, p.Gateway, p.Reserved, got, want)
		}
	}
}

func TestRequestValidate(t *testing.T) {
	if err := (ipam.Request{Pool: "a", Owner: "vm"}).Validate(); err != nil {
		t.Errorf("valid request: %v", err)
	}
	if err := (ipam.Request{Pool: "a", Owner: "vm", LocalIP: ip("10.0.0.1")}).Validate(); err != nil {
		t.Errorf("valid request with LocalIP: %v", err)
	}
	for _, r := range []ipam.Request{{}, {Pool: "a"}, {Owner: "vm"}, {LocalIP: ip("10.0.0.1")}} {
		if err := r.Validate(); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("Validate(%+v) = %v, want InvalidArgument", r, err)
		}
	}
}

// TestExcludedRangesMatchExcluded: for random pools, the ranges are
// sorted, neither overlap nor touch, and hold exactly the addresses
// Excluded reports within the prefix.
func TestExcludedRangesMatchExcluded(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 9))
	for range 300 {
		bits := 24 + rnd.IntN(9) // /24 to /32
		p := ipam.Pool{Name: "p", Prefix: netip.PrefixFrom(ip("192.0.2.0"), bits).Masked()}
		size := 1 << (32 - bits)
		at := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
		if size > 2 && rnd.IntN(2) == 0 {
			p.Gateway = at(1 + rnd.IntN(size-2))
		}
		for range rnd.IntN(4) {
			f := rnd.IntN(256)
			p.Reserved = append(p.Reserved, ipam.Range{From: at(f), To: at(f + rnd.IntN(256-f))})
		}
		rs := p.ExcludedRanges()
		for i := 1; i < len(rs); i++ {
			if prev := rs[i-1].To.As4(); int(prev[3])+1 >= int(rs[i].From.As4()[3]) {
				t.Fatalf("%+v: ranges %v and %v overlap or touch", p, rs[i-1], rs[i])
			}
		}
		in := func(a netip.Addr) bool {
			for _, r := range rs {
				if r.Contains(a) {
					return true
				}
			}
			return false
		}
		for i := range size {
			a := at(i)
			if in(a) != p.Excluded(a) {
				t.Fatalf("%+v: %s in ranges %v, Excluded says %v", p, a, in(a), p.Excluded(a))
			}
		}
	}
}
