package ipam

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// Range is an inclusive range of addresses.
type Range struct {
	From, To netip.Addr
}

// Contains reports whether a is in the range.
func (r Range) Contains(a netip.Addr) bool {
	return r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}

// Pool is a range of public addresses to allocate from: an IPv4 CIDR minus
// the excluded addresses. The network and broadcast addresses (for prefixes
// shorter than /31) and the gateway are never allocated.
type Pool struct {
	// Name identifies the pool (e.g. the zone's name).
	Name string
	// Prefix is the pool's IPv4 CIDR, /8 to /32.
	Prefix netip.Prefix
	// Gateway, if set, is excluded.
	Gateway netip.Addr
	// Reserved lists further excluded addresses and ranges.
	Reserved []Range
}

// Validate reports an InvalidArgument error for a malformed pool: a name
// outside the limits of a name (1 to 128 bytes of printable UTF-8, see the
// package doc), a prefix that is not an IPv4 /8 to /32 without host bits, a
// gateway outside the prefix, or a malformed reserved range. The error
// names no operation (the IPAM call that checks it adds its own) and quotes
// the name with a bounded, escaped quote.
func (p Pool) Validate() error {
	if err := checkName("pool name", p.Name); err != nil {
		return err
	}
	name := limit.Quote(p.Name)
	switch {
	case !p.Prefix.IsValid():
		return errs.Errorf(errs.InvalidArgument, "", "pool %s: invalid prefix", name)
	case !p.Prefix.Addr().Is4():
		return errs.Errorf(errs.InvalidArgument, "", "pool %s: only IPv4 pools are supported (got %s)", name, p.Prefix)
	case p.Prefix.Bits() < 8:
		return errs.Errorf(errs.InvalidArgument, "", "pool %s: prefix %s is larger than a /8", name, p.Prefix)
	case p.Prefix.Masked() != p.Prefix:
		return errs.Errorf(errs.InvalidArgument, "", "pool %s: prefix %s has host bits set (did you mean %s?)", name, p.Prefix, p.Prefix.Masked())
	case p.Gateway.IsValid() && !p.Prefix.Contains(p.Gateway):
		return errs.Errorf(errs.InvalidArgument, "", "pool %s: gateway %s is outside %s", name, p.Gateway, p.Prefix)
	case len(p.Reserved) > MaxReserved:
		return errs.Errorf(errs.InvalidArgument, "", "pool %s: %d reserved ranges (at most %d)", name, len(p.Reserved), MaxReserved)
	}
	for _, r := range p.Reserved {
		if !r.From.IsValid() || !r.To.IsValid() || !r.From.Is4() || !r.To.Is4() || r.To.Less(r.From) {
			return errs.Errorf(errs.InvalidArgument, "", "pool %s: invalid reserved range %s-%s", name, r.From, r.To)
		}
	}
	return nil
}

// MaxReserved is how many reserved ranges a pool may list.
const MaxReserved = 1024

// Equal reports whether p and o define the same pool (CreatePool of an
// equal pool again is a no-op).
func (p Pool) Equal(o Pool) bool {
	return p.Name == o.Name && p.Prefix == o.Prefix && p.Gateway == o.Gateway &&
		slices.Equal(p.Reserved, o.Reserved)
}

// Excluded reports whether a is never allocated from p: outside the prefix,
// the network or broadcast address, the gateway, or reserved.
func (p Pool) Excluded(a netip.Addr) bool {
	if !p.Prefix.Contains(a) {
		return true
	}
	if p.Prefix.Bits() < 31 {
		if a == p.Prefix.Masked().Addr() || a == lastAddr(p.Prefix) {
			return true
		}
	}
	if p.Gateway.IsValid() && a == p.Gateway {
		return true
	}
	for _, r := range p.Reserved {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// Size returns how many addresses of p can be allocated.
func (p Pool) Size() int {
	n := 0
	for _, r := range p.ExcludedRanges() {
		n += int(u32(r.To)-u32(r.From)) + 1
	}
	return 1<<(32-p.Prefix.Bits()) - n
}

// ExcludedRanges returns the addresses of p's prefix that are never
// allocated (the network and broadcast addresses, the gateway, the
// reserved ranges clipped to the prefix) as ranges sorted by address and
// merged: no two overlap or touch. Drivers lay out their allocatable
// addresses from it without walking the prefix.
func (p Pool) ExcludedRanges() []Range {
	first, last := p.Prefix.Masked().Addr(), lastAddr(p.Prefix)
	excl := []Range{}
	if p.Prefix.Bits() < 31 {
		excl = append(excl, Range{first, first}, Range{last, last})
	}
	if p.Gateway.IsValid() {
		excl = append(excl, Range{p.Gateway, p.Gateway})
	}
	for _, r := range p.Reserved {
		f, t := r.From, r.To
		if f.Less(first) {
			f = first
		}
		if last.Less(t) {
			t = last
		}
		if !t.Less(f) {
			excl = append(excl, Range{f, t})
		}
	}
	return mergeRanges(excl)
}

func mergeRanges(rs []Range) []Range {
	slices.SortFunc(rs, func(a, b Range) int { return a.From.Compare(b.From) })
	var out []Range
	for _, r := range rs {
		// In uint64: To+1 must not wrap at 255.255.255.255.
		if n := len(out); n > 0 && uint64(u32(r.From)) <= uint64(u32(out[n-1].To))+1 {
			if out[n-1].To.Less(r.To) {
				out[n-1].To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func lastAddr(p netip.Prefix) netip.Addr {
	v := u32(p.Masked().Addr()) | (1<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// PoolInfo is a pool with its usage.
type PoolInfo struct {
	Pool
	// Size is how many addresses can be allocated; Used how many are.
	Size, Used int
}

// Allocation is a public address held by an owner, with the NAT relation:
// the owner's local (private) address the public one is translated to.
type Allocation struct {
	Pool  string
	Owner string
	// Address is the allocated (public) address.
	Address netip.Addr
	// LocalIP is the owner's local address (the VM's IP inside the
	// customer network); the NAT relation is Address <-> LocalIP.
	LocalIP netip.Addr
	// Created is when the address was allocated; Updated when the
	// allocation last changed.
	Created, Updated time.Time
}

// Request asks for an address.
type Request struct {
	// Pool names the pool. Required.
	Pool string
	// Owner identifies the holder (e.g. "vsphere-prod/<instanceUuid>").
	// Required. One owner holds at most one address per pool.
	Owner string
	// LocalIP records the owner's local address (optional).
	LocalIP netip.Addr
}

// Validate reports an InvalidArgument error for a malformed request: a
// pool name outside the limits of a name, an owner outside the limits of a
// key (1 to 255 bytes of printable UTF-8), or a LocalIP with an IPv6 zone.
func (r Request) Validate() error { return r.validate() }

func (r *Request) validate() error {
	if err := checkName("pool name", r.Pool); err != nil {
		return err
	}
	if err := checkKey("owner", r.Owner); err != nil {
		return err
	}
	return checkLocal(r.LocalIP)
}

// checkLocal refuses a local address with an IPv6 zone: a zone names an
// interface of one host, meaningless in a NAT relation, and not every
// store can keep it.
func checkLocal(a netip.Addr) error {
	if a.Zone() != "" {
		return errs.Errorf(errs.InvalidArgument, "", "local address %s has an IPv6 zone", limit.Quote(a.String()))
	}
	return nil
}

// Driver is what an IPAM implementation provides: the calls of [IPAM]
// without the checks and bookkeeping [IPAM] does once for every driver.
// See "Writing a driver" in the package doc for what a driver may assume
// and what it must do.
type Driver interface {
	// CreatePool adds a pool. Creating an identical pool (Pool.Equal)
	// again is a no-op; a different pool under an existing name is
	// AlreadyExists.
	CreatePool(ctx context.Context, p Pool) error
	// DeletePool removes an empty pool (FailedPrecondition while addresses
	// are allocated; NotFound if there is no such pool).
	DeletePool(ctx context.Context, name string) error
	// Pool returns a pool and its usage, or NotFound.
	Pool(ctx context.Context, name string) (PoolInfo, error)
	// Pools lists every pool, ordered by name (bytewise).
	Pools(ctx context.Context) ([]PoolInfo, error)
	// Allocate gives req.Owner an address from req.Pool, or returns the
	// one it holds (recording req.LocalIP when it is set and differs). A
	// full pool is ResourceExhausted; an unknown pool NotFound.
	Allocate(ctx context.Context, req Request) (Allocation, error)
	// Release frees the owner's address; releasing what is not held is
	// not an error; an unknown pool is NotFound.
	Release(ctx context.Context, pool, owner string) error
	// SetLocalIP records the owner's new local address (the zero Addr
	// clears it); NotFound if the pool or the allocation does not exist.
	SetLocalIP(ctx context.Context, pool, owner string, local netip.Addr) (Allocation, error)
	// Lookup returns the owner's allocation, or NotFound.
	Lookup(ctx context.Context, pool, owner string) (Allocation, error)
	// LookupAddress returns the allocation of a public address (never the
	// zero Addr), or NotFound.
	LookupAddress(ctx context.Context, pool string, addr netip.Addr) (Allocation, error)
	// Allocations lists a pool's allocations ordered by address, or
	// NotFound for an unknown pool.
	Allocations(ctx context.Context, pool string) ([]Allocation, error)
}
