package memfw

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
)

// Options configures a Firewall. The zero value (or nil) is fine.
type Options struct {
	// Logger receives a debug line for every change; nil discards.
	Logger *slog.Logger
}

// Firewall is an in-memory natfw.Firewall. The zero value is not usable:
// call New.
type Firewall struct {
	log *slog.Logger

	mu    sync.RWMutex
	rules map[string]natfw.Rule // by owner, normalized
	// owners maps every Public and Local address in use to its owner.
	owners map[netip.Addr]string
}

var _ natfw.Firewall = (*Firewall)(nil)

// New returns an empty Firewall.
func New(opts *Options) *Firewall {
	if opts == nil {
		opts = &Options{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Firewall{
		log:    log,
		rules:  make(map[string]natfw.Rule),
		owners: make(map[netip.Addr]string),
	}
}

// EnsureNAT makes the owner's rule exactly r (see natfw.Firewall).
func (f *Firewall) EnsureNAT(ctx context.Context, r natfw.Rule) error {
	const op = "memfw.EnsureNAT"
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return errs.WrapOp(op, err)
	}
	r = r.Normalize()

	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range []netip.Addr{r.Public, r.Local} {
		if o, ok := f.owners[a]; ok && o != r.Owner {
			return errs.Errorf(errs.AlreadyExists, op, "rule for %q: address %s is used by the rule of %q", r.Owner, a, o)
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
	if had {
		f.log.Debug("nat rule replaced", "owner", r.Owner, "public", r.Public, "local", r.Local, "ports", len(r.Ports), "sources", len(r.Sources))
	} else {
		f.log.Debug("nat rule created", "owner", r.Owner, "public", r.Public, "local", r.Local, "ports", len(r.Ports), "sources", len(r.Sources))
	}
	return nil
}

// RemoveNAT removes the owner's rule; a missing rule is not an error.
func (f *Firewall) RemoveNAT(ctx context.Context, owner string) error {
	const op = "memfw.RemoveNAT"
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.rules[owner]
	if !ok {
		return nil
	}
	delete(f.rules, owner)
	delete(f.owners, old.Public)
	delete(f.owners, old.Local)
	f.log.Debug("nat rule removed", "owner", owner, "public", old.Public, "local", old.Local)
	return nil
}

// Get returns the owner's rule, normalized, or NotFound.
func (f *Firewall) Get(ctx context.Context, owner string) (natfw.Rule, error) {
	const op = "memfw.Get"
	if err := errs.FromContext(ctx, op); err != nil {
		return natfw.Rule{}, err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.rules[owner]
	if !ok {
		return natfw.Rule{}, errs.Errorf(errs.NotFound, op, "no rule for %q", owner)
	}
	return clone(r), nil
}

// List returns every rule, normalized, ordered by owner.
func (f *Firewall) List(ctx context.Context) ([]natfw.Rule, error) {
	const op = "memfw.List"
	if err := errs.FromContext(ctx, op); err != nil {
		return nil, err
	}
	f.mu.RLock()
	out := make([]natfw.Rule, 0, len(f.rules))
	for _, r := range f.rules {
		out = append(out, clone(r))
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
func (f *Firewall) Allowed(src, dst netip.Addr, port natfw.Port) (local netip.Addr, ok bool) {
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

func clone(r natfw.Rule) natfw.Rule {
	r.Ports = slices.Clone(r.Ports)
	r.Sources = slices.Clone(r.Sources)
	return r
}
