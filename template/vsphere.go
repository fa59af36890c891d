package template

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
)

// CustomizationSpec is a vSphere guest customization specification in a
// plain model, free of any vSphere SDK: the vSphere driver maps it to
// govmomi's types.CustomizationSpec (LinuxPrep to CustomizationLinuxPrep,
// Sysprep to CustomizationSysprep with GuiUnattended, UserData,
// Identification and GuiRunOnce; NICs to the nicSettingMap in order; DNS to
// globalIPSettings) to create the spec in vCenter, and back to compare an
// existing one with [CustomizationSpec.Diff].
//
// Exactly one of Linux and Windows is set.
type CustomizationSpec struct {
	// Name is the spec's name in vCenter: by the reference's convention,
	// exactly the template's name (see [SpecNameFor]).
	Name        string
	Description string
	Linux       *LinuxPrep
	Windows     *Sysprep
	// NICs apply to the VM's network adapters in order.
	NICs []NICSetting
	// DNSServers and DNSSuffixes are the global DNS settings (Linux).
	DNSServers  []netip.Addr
	DNSSuffixes []string
}

// HostnameSource says where a customized guest's name comes from: the
// virtual machine's name (what the reference asks for) or a fixed name.
type HostnameSource struct {
	VMName bool
	Fixed  string
}

func (h HostnameSource) String() string {
	if h.VMName {
		return "the virtual machine name"
	}
	return "fixed name " + limit.Quote(h.Fixed)
}

// LinuxPrep is the Linux part of a spec.
type LinuxPrep struct {
	Hostname HostnameSource
	// Domain is required by vSphere; "localdomain" when the settings have
	// none.
	Domain string
	// TimeZone is an IANA time zone name; empty keeps the template's.
	TimeZone   string
	HWClockUTC bool
}

// Sysprep is the Windows part of a spec.
type Sysprep struct {
	ComputerName HostnameSource
	// FullName and OrgName are Windows' registration names (required).
	FullName string
	OrgName  string
	// AdminPassword is the Administrator password; the driver sets it as
	// a plain-text password that vCenter stores encrypted.
	AdminPassword guest.Secret
	// AutoLogon logs on as Administrator AutoLogonCount times.
	AutoLogon      bool
	AutoLogonCount int
	// TimeZone is the Microsoft time zone index (85 = GMT Standard Time).
	TimeZone int
	// RunOnce are the commands run at the first logon (GuiRunOnce).
	RunOnce []string
	// Workgroup is joined (identification).
	Workgroup string
}

// NICSetting is one adapter's IP settings: DHCP, or a static IPv4 address
// with its gateways and DNS servers.
type NICSetting struct {
	// MAC, if set, pins the setting to the adapter with that address.
	MAC     string
	DHCP    bool
	Address netip.Prefix
	Gateway []netip.Addr
	DNS     []netip.Addr
}

// SpecOptions tune BuildCustomizationSpec. A nil *SpecOptions means the
// defaults.
type SpecOptions struct {
	// HostnameFromVMName names the guest after its VM (the reference's
	// "Computer Name: use the Virtual Machine Name", right for a spec shared
	// by every VM cloned from a template) instead of Settings.Hostname.
	HostnameFromVMName bool
	// Description is stored with the spec.
	Description string
}

// BuildCustomizationSpec builds the vSphere customization spec named name
// from s: LinuxPrep for Linux guests, Sysprep (from s.Windows) for Windows
// ones; one NIC setting per s.NICs entry (DHCP, or static IPv4), or a
// single DHCP setting when s has none. Invalid settings, IPv6 static
// addresses and an empty name are InvalidArgument.
func BuildCustomizationSpec(name string, s Settings, opts *SpecOptions) (*CustomizationSpec, error) {
	const op = "template.BuildCustomizationSpec"
	p := &problems{op: op}
	if name == "" || len(name) > 80 {
		p.addf("spec name must be 1 to 80 characters")
	} else {
		p.checkText("spec name", name, false)
	}
	s.validate(p)
	for i, n := range s.NICs {
		if n.Static != nil && n.Static.Address.Addr().Is6() {
			p.addf("nics[%d]: the customization spec model carries IPv4 static addresses only", i)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &SpecOptions{}
	}
	host := HostnameSource{Fixed: s.Hostname}
	if opts.HostnameFromVMName {
		host = HostnameSource{VMName: true}
	}
	spec := &CustomizationSpec{Name: name, Description: opts.Description}
	if s.family() == guest.Windows {
		w := Windows{}
		if s.Windows != nil {
			w = *s.Windows
		}
		sp := &Sysprep{
			ComputerName:   host,
			FullName:       w.RegisteredOwner,
			OrgName:        w.RegisteredOrganization,
			AdminPassword:  w.AdminPassword,
			AutoLogon:      w.AutoLogonCount > 0,
			AutoLogonCount: w.AutoLogonCount,
			TimeZone:       w.TimeZoneIndex,
			RunOnce:        nilIfEmpty(w.FirstLogonCommands),
			Workgroup:      w.Workgroup,
		}
		if sp.FullName == "" {
			sp.FullName = "Administrator"
		}
		if sp.OrgName == "" {
			sp.OrgName = "Managed"
		}
		if sp.TimeZone == 0 {
			sp.TimeZone = 85
		}
		if sp.Workgroup == "" {
			sp.Workgroup = "WORKGROUP"
		}
		spec.Windows = sp
	} else {
		domain := s.Domain
		if domain == "" {
			domain = "localdomain"
		}
		spec.Linux = &LinuxPrep{Hostname: host, Domain: domain, TimeZone: s.Timezone, HWClockUTC: true}
	}
	if len(s.NICs) == 0 {
		spec.NICs = []NICSetting{{DHCP: true}}
	}
	var dns []netip.Addr
	var suffixes []string
	for _, n := range s.NICs {
		ns := NICSetting{DHCP: n.Static == nil}
		if n.MAC != "" {
			ns.MAC = macString(n.MAC)
		}
		if st := n.Static; st != nil {
			ns.Address = st.Address
			if st.Gateway.IsValid() {
				ns.Gateway = []netip.Addr{st.Gateway}
			}
			ns.DNS = slices.Clone(st.DNS)
			for _, d := range st.DNS {
				if !slices.Contains(dns, d) {
					dns = append(dns, d)
				}
			}
		}
		for _, d := range n.SearchDomains {
			if !slices.Contains(suffixes, d) {
				suffixes = append(suffixes, d)
			}
		}
		spec.NICs = append(spec.NICs, ns)
	}
	if spec.Linux != nil {
		spec.DNSServers, spec.DNSSuffixes = dns, suffixes
	}
	return spec, nil
}

// Diff lists how other differs from s, one line per field
// ("NICs[0].DHCP: true != false"), for a driver comparing the spec in
// vCenter with the one it would create. Passwords are compared but never
// printed. Equal specs give nil.
func (s *CustomizationSpec) Diff(other *CustomizationSpec) []string {
	var d []string
	add := func(field string, a, b any) {
		d = append(d, fmt.Sprintf("%s: %v != %v", field, a, b))
	}
	if s.Name != other.Name {
		add("Name", limit.Quote(s.Name), limit.Quote(other.Name))
	}
	if s.Description != other.Description {
		add("Description", limit.Quote(s.Description), limit.Quote(other.Description))
	}
	switch {
	case (s.Linux == nil) != (other.Linux == nil):
		add("Linux", s.Linux != nil, other.Linux != nil)
	case s.Linux != nil && *s.Linux != *other.Linux:
		a, b := *s.Linux, *other.Linux
		if a.Hostname != b.Hostname {
			add("Linux.Hostname", a.Hostname, b.Hostname)
		}
		if a.Domain != b.Domain {
			add("Linux.Domain", a.Domain, b.Domain)
		}
		if a.TimeZone != b.TimeZone {
			add("Linux.TimeZone", a.TimeZone, b.TimeZone)
		}
		if a.HWClockUTC != b.HWClockUTC {
			add("Linux.HWClockUTC", a.HWClockUTC, b.HWClockUTC)
		}
	}
	switch {
	case (s.Windows == nil) != (other.Windows == nil):
		add("Windows", s.Windows != nil, other.Windows != nil)
	case s.Windows != nil:
		a, b := s.Windows, other.Windows
		if a.ComputerName != b.ComputerName {
			add("Windows.ComputerName", a.ComputerName, b.ComputerName)
		}
		if a.FullName != b.FullName {
			add("Windows.FullName", a.FullName, b.FullName)
		}
		if a.OrgName != b.OrgName {
			add("Windows.OrgName", a.OrgName, b.OrgName)
		}
		if a.AdminPassword.Reveal() != b.AdminPassword.Reveal() {
			d = append(d, "Windows.AdminPassword: differs")
		}
		if a.AutoLogon != b.AutoLogon {
			add("Windows.AutoLogon", a.AutoLogon, b.AutoLogon)
		}
		if a.AutoLogonCount != b.AutoLogonCount {
			add("Windows.AutoLogonCount", a.AutoLogonCount, b.AutoLogonCount)
		}
		if a.TimeZone != b.TimeZone {
			add("Windows.TimeZone", a.TimeZone, b.TimeZone)
		}
		if !slices.Equal(a.RunOnce, b.RunOnce) {
			add("Windows.RunOnce", len(a.RunOnce), len(b.RunOnce))
		}
		if a.Workgroup != b.Workgroup {
			add("Windows.Workgroup", a.Workgroup, b.Workgroup)
		}
	}
	if len(s.NICs) != len(other.NICs) {
		add("len(NICs)", len(s.NICs), len(other.NICs))
	}
	for i := range min(len(s.NICs), len(other.NICs)) {
		a, b := s.NICs[i], other.NICs[i]
		f := fmt.Sprintf("NICs[%d]", i)
		if a.MAC != b.MAC {
			add(f+".MAC", a.MAC, b.MAC)
		}
		if a.DHCP != b.DHCP {
			add(f+".DHCP", a.DHCP, b.DHCP)
		}
		if a.Address != b.Address {
			add(f+".Address", a.Address, b.Address)
		}
		if !slices.Equal(a.Gateway, b.Gateway) {
			add(f+".Gateway", a.Gateway, b.Gateway)
		}
		if !slices.Equal(a.DNS, b.DNS) {
			add(f+".DNS", a.DNS, b.DNS)
		}
	}
	if !slices.Equal(s.DNSServers, other.DNSServers) {
		add("DNSServers", s.DNSServers, other.DNSServers)
	}
	if !slices.Equal(s.DNSSuffixes, other.DNSSuffixes) {
		add("DNSSuffixes", s.DNSSuffixes, other.DNSSuffixes)
	}
	return d
}

// usesVMName reports whether the spec names the guest after its VM.
func (s *CustomizationSpec) usesVMName() bool {
	switch {
	case s.Linux != nil:
		return s.Linux.Hostname.VMName
	case s.Windows != nil:
		return s.Windows.ComputerName.VMName
	}
	return false
}

// allDHCP reports whether every NIC setting is DHCP.
func (s *CustomizationSpec) allDHCP() bool {
	if len(s.NICs) == 0 {
		return false
	}
	for _, n := range s.NICs {
		if !n.DHCP {
			return false
		}
	}
	return true
}
