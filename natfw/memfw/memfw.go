package memfw

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/natfw"
)

// Options configures the Firewall New returns. The zero value (or nil) is
// fine. The three fields are passed to natfw.New.
type Options struct {
	// Logger receives the portable type's Debug line per call; nil
	// discards.
	Logger *slog.Logger
	// TracerProvider, if set, records a span per call.
	TracerProvider trace.TracerProvider
	// MeterProvider, if set, records the call metrics.
	MeterProvider metric.MeterProvider
}

// New returns an empty in-memory firewall behind the portable
// *natfw.Firewall. Reach its Driver (for Allowed) with As:
//
//	var d *memfw.Driver
//	fw.As(&d)
func New(opts *Options) *natfw.Firewall {
	if opts == nil {
		opts = &Options{}
	}
	return natfw.New(NewDriver(), &natfw.Options{
		Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider,
	})
}

// Driver is the in-memory natfw.Driver. The zero value is not usable: call
// NewDriver (or New for the portable Firewall over one).
type Driver struct {
	mu    sync.RWMutex
	rules map[string]natfw.Rule // by owner, normalized
	// owners maps every Public and Local address in use to its owner.
	owners map[netip.Addr]string
}

var _ natfw.Driver = (*Driver)(nil)

// NewDriver returns an empty Driver, to wrap with natfw.New.
func NewDriver() *Driver {
	return &Driver{rules: make(map[string]natfw.Rule), owners: make(map[netip.Addr]string)}
}

// EnsureNAT makes the owner's rule exactly r (see natfw.Driver). r is
// kept: the portable type hands over a normalized copy.
func (f *Driver) EnsureNAT(_ context.Context, r natfw.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range []netip.Addr{r.Public, r.Local} {
		if o, ok := f.owners[a]; ok && o != r.Owner {
			return errs.Errorf(errs.AlreadyExists, "", "rule for %s: address %s is used by the rule of %s", limit.Quote(r.Owner), a, limit.Quote(o))
		}
	}
	old, had := f.rules[r.Owner]
	if had && old.Equal(r) {
		return nil
	}
	if had {
		delete(f.owners, old.Public)
		delete(f.owners, old.Local)
	}
	f.rules[r.Owner] = r
	f.owners[r.Public] = r.Owner
	f.owners[r.Local] = r.Owner
	return nil
}

// RemoveNAT removes the owner's rule; a missing rule is not an error.
func (f *Driver) RemoveNAT(_ context.Context, owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.rules[owner]
	if !ok {
		return nil
	}
	delete(f.rules, owner)
	delete(f.owners, old.Public)
	delete(f.owners, old.Local)
	return nil
}

// Get returns the owner's rule, or NotFound. The rule shares its slices
// with the stored one, which is never changed (the portable type copies).
func (f *Driver) Get(_ context.Context, owner string) (natfw.Rule, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.rules[owner]
	if !ok {
		return natfw.Rule{}, errs.Errorf(errs.NotFound, "", "no rule for %s", limit.Quote(owner))
	}
	return r, nil
}

// List returns every rule ordered by owner (sharing slices as Get does).
func (f *Driver) List(context.Context) ([]natfw.Rule, error) {
	f.mu.RLock()
	out := make([]natfw.Rule, 0, len(f.rules))
	for _, r := range f.rules {
		out = append(out, r)
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b natfw.Rule) int { return strings.Compare(a.Owner, b.Owner) })
	return out, nil
}

// Allowed evaluates the rules as the packet filter of a NAT gateway would
// for an inbound packet from src to dst on port: if dst is a rule's public
// address, port is one of its ports and src is inside one of its source
// prefixes, it returns the local address the packet is translated to and
// true. Otherwise the packet is dropped: the zero address and false.
// IPv4-mapped IPv6 addresses are treated as IPv4.
func (f *Driver) Allowed(src, dst netip.Addr, port natfw.Port) (local netip.Addr, ok bool) {
	src, dst = src.Unmap(), dst.Unmap()
	f.mu.RLock()
	defer f.mu.RUnlock()
	owner, used := f.owners[dst]
	if !used {
		return netip.Addr{}, false
	}
	r := f.rules[owner]
	if r.Public != dst || !slices.Contains(r.Ports, port) {
		return netip.Addr{}, false
	}
	for _, s := range r.Sources {
		if s.Contains(src) {
			return r.Local, true
		}
	}
	return netip.Addr{}, false
}
