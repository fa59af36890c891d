package natfw

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/managedvm/managedvm/errs"
)

// Protocol is a transport protocol.
type Protocol string

// The protocols a rule can allow.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Port is one inbound port allowed through a NAT rule.
type Port struct {
	Protocol Protocol
	Number   uint16
}

// String formats the port as "tcp/22".
func (p Port) String() string { return string(p.Protocol) + "/" + strconv.Itoa(int(p.Number)) }

// ParsePort parses "tcp/22" or "udp/53".
func ParsePort(s string) (Port, error) {
	proto, num, ok := strings.Cut(s, "/")
	n, err := strconv.ParseUint(num, 10, 16)
	p := Port{Protocol: Protocol(strings.ToLower(proto)), Number: uint16(n)}
	if !ok || err != nil || p.validate() != nil {
		return Port{}, errs.Errorf(errs.InvalidArgument, "natfw.ParsePort", "invalid port %q: want tcp/N or udp/N", s)
	}
	return p, nil
}

func (p Port) validate() error {
	if p.Protocol != TCP && p.Protocol != UDP {
		return fmt.Errorf("protocol %q is neither tcp nor udp", p.Protocol)
	}
	if p.Number == 0 {
		return fmt.Errorf("port 0")
	}
	return nil
}

// Well-known port sets for enrolled guests.
var (
	// LinuxPorts: SSH.
	LinuxPorts = []Port{{TCP, 22}}
	// WindowsPorts: WinRM over HTTP and HTTPS, and RDP.
	WindowsPorts = []Port{{TCP, 5985}, {TCP, 5986}, {TCP, 3389}}
)

// Rule is a 1:1 static NAT for one owner: traffic to Public is translated to
// Local (and Local's outbound traffic leaves as Public), and from outside
// only Ports are allowed, only from Sources.
type Rule struct {
	// Owner keys the rule (e.g. the VM's key). Required.
	Owner string
	// Public is the public address. Required, IPv4.
	Public netip.Addr
	// Local is the VM's local address. Required, IPv4.
	Local netip.Addr
	// Ports are the inbound ports allowed. At least one.
	Ports []Port
	// Sources are the prefixes allowed to use Ports. At least one.
	Sources []netip.Prefix
	// Description is a free-form note kept with the rule.
	Description string
}

// Validate reports an InvalidArgument error for a malformed rule.
func (r Rule) Validate() error {
	const op = "natfw.Rule"
	bad := func(format string, args ...any) error {
		return errs.Errorf(errs.InvalidArgument, op, "rule for %q: "+format, append([]any{r.Owner}, args...)...)
	}
	switch {
	case r.Owner == "":
		return errs.New(errs.InvalidArgument, op, "rule has no owner")
	case !r.Public.IsValid() || !r.Public.Is4():
		return bad("public address %v is not an IPv4 address", r.Public)
	case !r.Local.IsValid() || !r.Local.Is4():
		return bad("local address %v is not an IPv4 address", r.Local)
	case r.Public == r.Local:
		return bad("public and local address are the same (%s)", r.Public)
	case len(r.Ports) == 0:
		return bad("no ports")
	case len(r.Sources) == 0:
		return bad("no source prefixes")
	}
	for _, p := range r.Ports {
		if err := p.validate(); err != nil {
			return bad("%v", err)
		}
	}
	for _, s := range r.Sources {
		if !s.IsValid() || !s.Addr().Is4() {
			return bad("source %v is not an IPv4 prefix", s)
		}
	}
	return nil
}

// Normalize returns a copy of r with sorted, de-duplicated ports and masked,
// sorted, de-duplicated sources: two rules that mean the same compare equal
// after Normalize.
func (r Rule) Normalize() Rule {
	out := r
	out.Ports = slices.Clone(r.Ports)
	slices.SortFunc(out.Ports, func(a, b Port) int {
		if c := strings.Compare(string(a.Protocol), string(b.Protocol)); c != 0 {
			return c
		}
		return int(a.Number) - int(b.Number)
	})
	out.Ports = slices.Compact(out.Ports)
	out.Sources = make([]netip.Prefix, len(r.Sources))
	for i, s := range r.Sources {
		out.Sources[i] = s.Masked()
	}
	slices.SortFunc(out.Sources, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out.Sources = slices.Compact(out.Sources)
	return out
}

// Equal reports whether r and o mean the same rule.
func (r Rule) Equal(o Rule) bool {
	a, b := r.Normalize(), o.Normalize()
	return a.Owner == b.Owner && a.Public == b.Public && a.Local == b.Local &&
		a.Description == b.Description && slices.Equal(a.Ports, b.Ports) && slices.Equal(a.Sources, b.Sources)
}

// Firewall programs 1:1 NAT rules. Implementations are safe for concurrent
// use.
type Firewall interface {
	// EnsureNAT makes the owner's rule exactly r: it creates it, replaces a
	// different rule of the same owner, or does nothing if it is already
	// in place. A public or local address used by another owner's rule is
	// AlreadyExists; a malformed rule is InvalidArgument. Either changes
	// nothing.
	EnsureNAT(ctx context.Context, r Rule) error
	// RemoveNAT removes the owner's rule; removing a rule that does not
	// exist is not an error.
	RemoveNAT(ctx context.Context, owner string) error
	// Get returns the owner's rule, or NotFound.
	Get(ctx context.Context, owner string) (Rule, error)
	// List returns every rule, ordered by owner, normalized.
	List(ctx context.Context) ([]Rule, error)
}
