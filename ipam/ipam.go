package ipam

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/managedvm/managedvm/errs"
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

// Validate reports an InvalidArgument error for a malformed pool.
func (p Pool) Validate() error {
	const op = "ipam.Pool"
	switch {
	case p.Name == "":
		return errs.New(errs.InvalidArgument, op, "pool has no name")
	case !p.Prefix.IsValid():
		return errs.Errorf(errs.InvalidArgument, op, "pool %q: invalid prefix", p.Name)
	case !p.Prefix.Addr().Is4():
		return errs.Errorf(errs.InvalidArgument, op, "pool %q: only IPv4 pools are supported (got %s)", p.Name, p.Prefix)
	case p.Prefix.Bits() < 8:
		return errs.Errorf(errs.InvalidArgument, op, "pool %q: prefix %s is larger than a /8", p.Name, p.Prefix)
	case p.Prefix.Masked() != p.Prefix:
		return errs.Errorf(errs.InvalidArgument, op, "pool %q: prefix %s has host bits set (did you mean %s?)", p.Name, p.Prefix, p.Prefix.Masked())
	case p.Gateway.IsValid() && !p.Prefix.Contains(p.Gateway):
		return errs.Errorf(errs.InvalidArgument, op, "pool %q: gateway %s is outside %s", p.Name, p.Gateway, p.Prefix)
	}
	for _, r := range p.Reserved {
		if !r.From.IsValid() || !r.To.IsValid() || !r.From.Is4() || !r.To.Is4() || r.To.Less(r.From) {
			return errs.Errorf(errs.InvalidArgument, op, "pool %q: invalid reserved range %s-%s", p.Name, r.From, r.To)
		}
	}
	return nil
}

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

// Validate reports an InvalidArgument error for a malformed request.
func (r Request) Validate() error {
	switch {
	case r.Pool == "":
		return errs.New(errs.InvalidArgument, "ipam.Allocate", "request names no pool")
	case r.Owner == "":
		return errs.New(errs.InvalidArgument, "ipam.Allocate", "request names no owner")
	}
	return nil
}

// IPAM allocates public addresses from pools. Implementations are safe for
// concurrent use; no two owners ever hold the same address.
type IPAM interface {
	// CreatePool adds a pool. Creating an identical pool again is a no-op;
	// a different pool under an existing name is AlreadyExists.
	CreatePool(ctx context.Context, p Pool) error
	// DeletePool removes an empty pool (FailedPrecondition while addresses
	// are allocated; NotFound if there is no such pool).
	DeletePool(ctx context.Context, name string) error
	// Pool returns a pool and its usage.
	Pool(ctx context.Context, name string) (PoolInfo, error)
	// Pools lists every pool, by name.
	Pools(ctx context.Context) ([]PoolInfo, error)

	// Allocate gives req.Owner an address from req.Pool. If the owner
	// already holds one, that allocation is returned (with LocalIP updated
	// when req sets a different one): Allocate is idempotent. A full pool
	// is ResourceExhausted.
	Allocate(ctx context.Context, req Request) (Allocation, error)
	// Release frees the owner's address. Releasing what is not held is not
	// an error (idempotent); an unknown pool is NotFound.
	Release(ctx context.Context, pool, owner string) error
	// SetLocalIP records the owner's new local address (the NAT relation).
	SetLocalIP(ctx context.Context, pool, owner string, local netip.Addr) (Allocation, error)
	// Lookup returns the owner's allocation, or NotFound.
	Lookup(ctx context.Context, pool, owner string) (Allocation, error)
	// LookupAddress returns the allocation of a public address, or NotFound.
	LookupAddress(ctx context.Context, pool string, addr netip.Addr) (Allocation, error)
	// Allocations lists a pool's allocations ordered by address.
	Allocations(ctx context.Context, pool string) ([]Allocation, error)
}
