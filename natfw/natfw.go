package natfw

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/obs"
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
		return Port{}, errs.Errorf(errs.InvalidArgument, "natfw.ParsePort", "invalid port %s: want tcp/N or udp/N", limit.Quote(s))
	}
	return p, nil
}

func (p Port) validate() error {
	if p.Protocol != TCP && p.Protocol != UDP {
		return fmt.Errorf("protocol %s is neither tcp nor udp", limit.Quote(string(p.Protocol)))
	}
	if p.Number == 0 {
		return fmt.Errorf("port 0")
	}
	return nil
}

// LinuxPorts returns the well-known inbound ports of an enrolled Linux
// guest: SSH. Each call returns a new slice.
func LinuxPorts() []Port { return []Port{{TCP, 22}} }

// WindowsPorts returns the well-known inbound ports of an enrolled Windows
// guest: WinRM over HTTP and HTTPS, and RDP. Each call returns a new slice.
func WindowsPorts() []Port { return []Port{{TCP, 5985}, {TCP, 5986}, {TCP, 3389}} }

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

// The limits of a rule (see the package doc). MaxOwner and MaxDescription
// are stricter than limit.Key and limit.Text because the nftables driver
// keeps both in a kernel rule's userdata, which holds at most 256 bytes.
const (
	// MaxOwner is the longest owner, in bytes.
	MaxOwner = 120
	// MaxDescription is the longest description, in bytes.
	MaxDescription = 120
	// MaxPorts is the most ports a rule may list (counted as given,
	// before de-duplication).
	MaxPorts = 8
	// MaxSources is the most source prefixes a rule may list (counted as
	// given, before de-duplication). A rule of MaxPorts ports and
	// MaxSources sources is 3 + 8 x 8 kernel rules for nftables, whose
	// one netlink batch and its acknowledgements fit the socket buffers
	// (3 + 8 x 16 overflow the receive buffer: ENOBUFS).
	MaxSources = 8
)

// ValidateOwner reports an InvalidArgument error unless owner is 1 to
// MaxOwner bytes of valid UTF-8 without control characters.
func ValidateOwner(owner string) error {
	if why := limit.Why(owner, 1, MaxOwner, true); why != "" {
		if owner == "" {
			return errs.New(errs.InvalidArgument, "", "owner "+why)
		}
		return errs.Errorf(errs.InvalidArgument, "", "owner %s %s", limit.Quote(owner), why)
	}
	return nil
}

// Validate reports an InvalidArgument error for a malformed rule or one
// beyond the limits (MaxOwner, MaxDescription, MaxPorts, MaxSources).
// Values are quoted with limit.Quote, so the message stays short whatever
// the rule holds.
func (r Rule) Validate() error { return obs.Wrap("natfw.Rule", r.validate()) }

// validate is Validate with no Op: the portable type names its own.
func (r Rule) validate() error {
	if err := ValidateOwner(r.Owner); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return errs.Errorf(errs.InvalidArgument, "", "rule for %s: "+format, append([]any{limit.Quote(r.Owner)}, args...)...)
	}
	if why := limit.Why(r.Description, 0, MaxDescription, true); why != "" {
		return bad("description %s %s", limit.Quote(r.Description), why)
	}
	switch {
	case !r.Public.IsValid() || !r.Public.Is4():
		return bad("public address %v is not an IPv4 address", r.Public)
	case !r.Local.IsValid() || !r.Local.Is4():
		return bad("local address %v is not an IPv4 address", r.Local)
	case r.Public == r.Local:
		return bad("public and local address are the same (%s)", r.Public)
	case len(r.Ports) == 0:
		return bad("no ports")
	case len(r.Ports) > MaxPorts:
		return bad("%d ports, more than %d", len(r.Ports), MaxPorts)
	case len(r.Sources) == 0:
		return bad("no source prefixes")
	case len(r.Sources) > MaxSources:
		return bad("%d source prefixes, more than %d", len(r.Sources), MaxSources)
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
