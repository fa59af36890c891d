package fakes

import (
	"context"
	"net/netip"

	"github.com/managedvm/managedvm/ipam"
)

// IPAM wraps an ipam.Driver with an Injector; hand it to ipam.New. Method
// names are those of ipam.Driver: "CreatePool", "DeletePool", "Pool",
// "Pools", "Allocate", "Release", "SetLocalIP", "Lookup", "LookupAddress",
// "Allocations".
type IPAM struct {
	ipam.Driver
	*Injector
}

var _ ipam.Driver = (*IPAM)(nil)

// CreatePool forwards to the wrapped driver with faults.
func (m *IPAM) CreatePool(ctx context.Context, p ipam.Pool) error {
	return call0(ctx, m.Injector, "CreatePool", func() error { return m.Driver.CreatePool(ctx, p) })
}

// DeletePool forwards to the wrapped driver with faults.
func (m *IPAM) DeletePool(ctx context.Context, name string) error {
	return call0(ctx, m.Injector, "DeletePool", func() error { return m.Driver.DeletePool(ctx, name) })
}

// Pool forwards to the wrapped driver with faults.
func (m *IPAM) Pool(ctx context.Context, name string) (ipam.PoolInfo, error) {
	return call(ctx, m.Injector, "Pool", func() (ipam.PoolInfo, error) { return m.Driver.Pool(ctx, name) })
}

// Pools forwards to the wrapped driver with faults.
func (m *IPAM) Pools(ctx context.Context) ([]ipam.PoolInfo, error) {
	return call(ctx, m.Injector, "Pools", func() ([]ipam.PoolInfo, error) { return m.Driver.Pools(ctx) })
}

// Allocate forwards to the wrapped driver with faults.
func (m *IPAM) Allocate(ctx context.Context, req ipam.Request) (ipam.Allocation, error) {
	return call(ctx, m.Injector, "Allocate", func() (ipam.Allocation, error) { return m.Driver.Allocate(ctx, req) })
}

// Release forwards to the wrapped driver with faults.
func (m *IPAM) Release(ctx context.Context, pool, owner string) error {
	return call0(ctx, m.Injector, "Release", func() error { return m.Driver.Release(ctx, pool, owner) })
}

// SetLocalIP forwards to the wrapped driver with faults.
func (m *IPAM) SetLocalIP(ctx context.Context, pool, owner string, local netip.Addr) (ipam.Allocation, error) {
	return call(ctx, m.Injector, "SetLocalIP", func() (ipam.Allocation, error) { return m.Driver.SetLocalIP(ctx, pool, owner, local) })
}

// Lookup forwards to the wrapped driver with faults.
func (m *IPAM) Lookup(ctx context.Context, pool, owner string) (ipam.Allocation, error) {
	return call(ctx, m.Injector, "Lookup", func() (ipam.Allocation, error) { return m.Driver.Lookup(ctx, pool, owner) })
}

// LookupAddress forwards to the wrapped driver with faults.
func (m *IPAM) LookupAddress(ctx context.Context, pool string, addr netip.Addr) (ipam.Allocation, error) {
	return call(ctx, m.Injector, "LookupAddress", func() (ipam.Allocation, error) { return m.Driver.LookupAddress(ctx, pool, addr) })
}

// Allocations forwards to the wrapped driver with faults.
func (m *IPAM) Allocations(ctx context.Context, pool string) ([]ipam.Allocation, error) {
	return call(ctx, m.Injector, "Allocations", func() ([]ipam.Allocation, error) { return m.Driver.Allocations(ctx, pool) })
}
