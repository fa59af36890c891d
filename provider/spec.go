package provider

import (
	"strings"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// The limits of this package beside those of internal/limit (see the
// package documentation for the whole table).
const (
	// MaxCursor is the longest Cursor Watch accepts, in bytes.
	MaxCursor = 4096
	// MaxHostname is the longest Customization.Hostname (RFC 1123: at
	// most 253 bytes, dot-separated labels of 1 to 63 letters, digits and
	// hyphens).
	MaxHostname = 253
	// MaxCustomizationData is the longest Customization.UserData,
	// MetaData or NetworkConfig document, in bytes.
	MaxCustomizationData = 64 << 10
	// MaxAdminPassword is the longest Customization.AdminPassword, in
	// bytes.
	MaxAdminPassword = 128
)

// Validate reports an InvalidArgument error, naming the field, when spec is
// malformed: Key, Name, Template or Zone empty (or only white space) or
// outside its limit (Key and Template: limit.Key; Name, Zone,
// Network.Name and Customization.SpecName: limit.Name); negative CPUs,
// MemoryMiB or Timeout; a VLAN outside 0-4094; a hostname that is not an
// RFC 1123 host name of at most MaxHostname bytes; a cloud-init document
// longer than MaxCustomizationData; an administrator password longer
// than MaxAdminPassword or not printable UTF-8 (never quoted); a static address that is not a valid
// IPv4 prefix, a gateway that is not an IPv4 address inside that prefix
// (or is the address itself), or an invalid DNS server address. Values
// are quoted with limit.Quote; the cloud-init documents, which may hold
// secrets, never appear in a message. Provider.Provision calls it first,
// so every driver rejects the same specs.
func (s ProvisionSpec) Validate() error { return s.validate("provider.ProvisionSpec") }

func (s ProvisionSpec) validate(op string) error {
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
	}
	if err := limit.Key(op, "Key", s.Key); err != nil {
		return err
	}
	if err := limit.Name(op, "Name", s.Name); err != nil {
		return err
	}
	if err := limit.Key(op, "Template", s.Template); err != nil {
		return err
	}
	if err := limit.Name(op, "Zone", s.Zone); err != nil {
		return err
	}
	if s.Network.Name != "" {
		if err := limit.Name(op, "Network.Name", s.Network.Name); err != nil {
			return err
		}
	}
	switch {
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
			return errs.Errorf(errs.InvalidArgument, op, "Customization.Hostname %s is not an RFC 1123 host name of at most %d bytes", limit.Quote(c.Hostname), MaxHostname)
		}
		if c.SpecName != "" {
			if err := limit.Name(op, "Customization.SpecName", c.SpecName); err != nil {
				return err
			}
		}
		for _, d := range []struct {
			field string
			n     int
		}{{"UserData", len(c.UserData)}, {"MetaData", len(c.MetaData)}, {"NetworkConfig", len(c.NetworkConfig)}} {
			if d.n > MaxCustomizationData {
				return errs.Errorf(errs.InvalidArgument, op, "Customization.%s is %d bytes, longer than %d", d.field, d.n, MaxCustomizationData)
			}
		}
		if pw := c.AdminPassword.Reveal(); !c.AdminPassword.IsZero() {
			// The message names the rule only: the value is a secret.
			if why := limit.Why(pw, 1, MaxAdminPassword, true); why != "" {
				return errs.Errorf(errs.InvalidArgument, op, "Customization.AdminPassword %s", why)
			}
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

// Validate reports an InvalidArgument error when o's Zone is set and is
// not a limit.Name. Provider.List calls it first.
func (o ListOptions) Validate() error { return o.validate("provider.ListOptions") }

func (o ListOptions) validate(op string) error {
	if o.Zone != "" {
		return limit.Name(op, "zone", o.Zone)
	}
	return nil
}

// validCursor reports an InvalidArgument error for a cursor no provider
// gives out: longer than MaxCursor or not printable UTF-8. The empty
// cursor is valid (it means from now).
func validCursor(op string, c Cursor) error {
	if why := limit.Why(string(c), 0, MaxCursor, true); why != "" {
		return errs.Errorf(errs.InvalidArgument, op, "cursor %s %s", limit.Quote(string(c)), why)
	}
	return nil
}

// validHostname reports whether h is a DNS host name: dot-separated labels
// of 1-63 letters, digits and hyphens, not starting or ending with a hyphen,
// 253 characters at most.
func validHostname(h string) bool {
	if len(h) > MaxHostname {
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
