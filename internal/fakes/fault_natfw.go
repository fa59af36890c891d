package fakes

import (
	"context"

	"github.com/managedvm/managedvm/natfw"
)

// Firewall wraps a natfw.Driver (a driver, or a portable *natfw.Firewall,
// which has the same methods) with an Injector; put natfw.New in front of
// it. Method names are those of natfw.Driver: "EnsureNAT", "RemoveNAT",
// "Get", "List".
type Firewall struct {
	Firewall natfw.Driver
	*Injector
}

var _ natfw.Driver = (*Firewall)(nil)

// EnsureNAT forwards to the wrapped firewall with faults.
func (f *Firewall) EnsureNAT(ctx context.Context, r natfw.Rule) error {
	return call0(ctx, f.Injector, "EnsureNAT", func() error { return f.Firewall.EnsureNAT(ctx, r) })
}

// RemoveNAT forwards to the wrapped firewall with faults.
func (f *Firewall) RemoveNAT(ctx context.Context, owner string) error {
	return call0(ctx, f.Injector, "RemoveNAT", func() error { return f.Firewall.RemoveNAT(ctx, owner) })
}

// Get forwards to the wrapped firewall with faults.
func (f *Firewall) Get(ctx context.Context, owner string) (natfw.Rule, error) {
	return call(ctx, f.Injector, "Get", func() (natfw.Rule, error) { return f.Firewall.Get(ctx, owner) })
}

// List forwards to the wrapped firewall with faults.
func (f *Firewall) List(ctx context.Context) ([]natfw.Rule, error) {
	return call(ctx, f.Injector, "List", func() ([]natfw.Rule, error) { return f.Firewall.List(ctx) })
}
