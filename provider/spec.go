package provider

import (
	"strings"

	"github.com/managedvm/managedvm/errs"
)

// Validate reports an InvalidArgument error, naming the field, when spec is
// malformed: Key, Name, Template or Zone empty (or only white space);
// negative CPUs, MemoryMiB or Timeout; a VLAN outside 0-4094; a hostname
// that is not a DNS name; a static address that is not a valid IPv4 prefix,
// a gateway that is not an IPv4 address inside that prefix (or is the
// address itself), or an invalid DNS server address. Drivers call it first,
// so every driver rejects the same specs.
func (s ProvisionSpec) Validate() error {
	const op = "provider.ProvisionSpec"
	blank := func(v string) bool { return strings.TrimSpace(v) == "" }
	switch {
	case blank(s.Key):
		return errs.New(errs.InvalidArgument, op, "Key is required (it makes Provision idempotent)")
	case blank(s.Name):
		return errs.New(errs.InvalidArgument, op, "Name is required")
	case blank(s.Template):
		return errs.New(errs.InvalidArgument, op, "Template is required")
	case blank(s.Zone):
		return errs.New(errs.InvalidArgument, op, "Zone is required")
	case s.CPUs < 0:
		return errs.Errorf(errs.InvalidArgument, op, "CPUs is negative (%d)", s.CPUs)
	case s.MemoryMiB < 0:
		return errs.Errorf(errs.InvalidArgument, op, "MemoryMiB is negative (%d)", s.MemoryMiB)
	case s.Timeout < 0:
		return errs.Errorf(errs.InvalidArgument, op, "Timeout is negative (%s)", s.Timeout)
	case s.Network.VLAN < 0 || s.Network.VLAN > 4094:
		return errs.Errorf(errs.InvalidArgument, op, "Network.VLAN %d is outside 0-4094", s.Network.VLAN)
	}
	if c := s.Customization; c != nil {
		if c.Hostname != "" && !validHostname(c.Hostname) {
			return errs.Errorf(errs.InvalidArgument, op, "Customization.Hostname %q is not a valid host name (letters, digits and hyphens, dot-separated labels of at most 63 characters)", c.Hostname)
		}
		if st := c.Static; st != nil {
			switch {
			case !st.Address.IsValid() || !st.Address.Addr().Is4():
				return errs.New(errs.InvalidArgument, op, "Customization.Static.Address must be an IPv4 address with its prefix length (e.g. 10.0.0.5/24)")
			case st.Gateway.IsValid() && (!st.Gateway.Is4() || !st.Address.Contains(st.Gateway)):
				return errs.Errorf(errs.InvalidArgument, op, "Customization.Static.Gateway %s is not an IPv4 address inside %s", st.Gateway, st.Address.Masked())
			case st.Gateway.IsValid() && st.Gateway == st.Address.Addr():
				return errs.Errorf(errs.InvalidArgument, op, "Customization.Static.Gateway %s is the VM's own address", st.Gateway)
			}
			for _, d := range st.DNS {
				if !d.IsValid() {
					return errs.New(errs.InvalidArgument, op, "Customization.Static.DNS holds an invalid address")
				}
			}
		}
	}
	return nil
}

// validHostname reports whether h is a DNS host name: dot-separated labels
// of 1-63 letters, digits and hyphens, not starting or ending with a hyphen,
// 253 characters at most.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			default:
				return false
			}
		}
	}
	return true
}
