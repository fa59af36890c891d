package fakes

import (
	"context"

	"github.com/managedvm/managedvm/cmdb"
)

// CMDB wraps a cmdb.Driver (a driver, or a portable *cmdb.CMDB, which has
// the same methods) with an Injector; put cmdb.New in front of it. Method
// names are those of cmdb.Driver: "Upsert", "Get", "List", "Retire".
type CMDB struct {
	CMDB cmdb.Driver
	*Injector
}

var _ cmdb.Driver = (*CMDB)(nil)

// Upsert forwards to the wrapped CMDB with faults.
func (c *CMDB) Upsert(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
	return call(ctx, c.Injector, "Upsert", func() (cmdb.Record, error) { return c.CMDB.Upsert(ctx, r) })
}

// Get forwards to the wrapped CMDB with faults.
func (c *CMDB) Get(ctx context.Context, key cmdb.Key) (cmdb.Record, error) {
	return call(ctx, c.Injector, "Get", func() (cmdb.Record, error) { return c.CMDB.Get(ctx, key) })
}

// List forwards to the wrapped CMDB with faults.
func (c *CMDB) List(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
	return call(ctx, c.Injector, "List", func() ([]cmdb.Record, error) { return c.CMDB.List(ctx, f) })
}

// Retire forwards to the wrapped CMDB with faults.
func (c *CMDB) Retire(ctx context.Context, key cmdb.Key) (cmdb.Record, error) {
	return call(ctx, c.Injector, "Retire", func() (cmdb.Record, error) { return c.CMDB.Retire(ctx, key) })
}
