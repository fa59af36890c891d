package template

import (
	"fmt"
	"slices"
	"strings"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/report"
)

// Kind is a provider kind.
type Kind string

// The provider kinds with template requirements.
const (
	VSphere Kind = "vsphere"
	OVirt   Kind = "ovirt"
	HyperV  Kind = "hyperv"
	VCD     Kind = "vcd"
)

// Kinds lists the provider kinds.
func Kinds() []Kind { return []Kind{VSphere, OVirt, HyperV, VCD} }

// Bootstrap is how a template's guests are set up on first boot.
type Bootstrap string

// The bootstrap methods of the reference's VM Template Preparation
// guidelines. The zero value means "infer it from the inspection".
const (
	// GuestCustomization is VMware guest customization through VMware
	// Tools (a customization spec on vSphere, the vApp's guest
	// customization on vCloud Director).
	GuestCustomization Bootstrap = "guest-customization"
	// CloudInit is cloud-init (Linux) with a NoCloud or ConfigDrive seed.
	CloudInit Bootstrap = "cloud-init"
	// CloudbaseInit is cloudbase-init (Windows).
	CloudbaseInit Bootstrap = "cloudbase-init"
	// Preinstalled means no first-boot tool: the agent is pre-installed in
	// the template.
	Preinstalled Bootstrap = "preinstalled"
)

// Fact is something a driver observed about a template: Yes, No, or
// Unknown when it could not tell. Unknown facts make warnings ("check by
// hand"), never passes.
type Fact uint8

// The facts.
const (
	Unknown Fact = iota
	Yes
	No
)

// FactOf returns Yes for true and No for false.
func FactOf(b bool) Fact {
	if b {
		return Yes
	}
	return No
}

func (f Fact) String() string {
	switch f {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "unknown"
}

// Requirement is one row of a provider's template requirements, from the
// reference's provider requirements and VM Template Preparation
// guidelines.
type Requirement struct {
	// ID is stable: "<kind>.template.<what>", e.g. "vsphere.template.marked".
	ID       string
	Provider Kind
	// Name says what is required, in the reference's terms.
	Name string
	// Fix says how to meet it, in the reference's terms.
	Fix string
	// Source names the reference section it comes from.
	Source string
	// Families, if not empty, limit the row to those guest OS families.
	Families []guest.OSFamily
	// Bootstraps, if not empty, limit the row to those bootstrap methods.
	Bootstraps []Bootstrap

	check checkFunc
}

// checkFunc evaluates a row; applies false leaves it out of the report.
type checkFunc func(in *Inspection, env *checkEnv) (status report.Status, detail string, applies bool)

type checkEnv struct {
	bootstrap Bootstrap
	inferred  bool
	opts      ValidateOptions
}

// Requirements returns kind's template requirement rows, in report order
// (nil for an unknown kind). Each call returns a fresh slice.
func Requirements(kind Kind) []Requirement {
	switch kind {
	case VSphere:
		return vsphereRequirements()
	case OVirt:
		return ovirtRequirements()
	case HyperV:
		return hypervRequirements()
	case VCD:
		return vcdRequirements()
	}
	return nil
}

func req(kind Kind, what, name, fix, source string, check checkFunc) Requirement {
	return Requirement{ID: string(kind) + ".template." + what, Provider: kind, Name: name, Fix: fix, Source: source, check: check}
}

func (r Requirement) only(fams ...guest.OSFamily) Requirement { r.Families = fams; return r }

func (r Requirement) during(bs ...Bootstrap) Requirement { r.Bootstraps = bs; return r }

// Reference sections.
const (
	srcVSphere      = "VMware vSphere Provider Requirements > VM Templates"
	srcPrepVSphere  = "VM Template Preparation (non-cloud-init) > VMware vSphere"
	srcPrepHyperV   = "VM Template Preparation > Microsoft Hyper-V Requirements"
	srcPrepOVirt    = "VM Template Preparation > Open Virtualization (Ovirt) KVM Requirements"
	srcPrepVCD      = "VM Template Preparation (non-cloud-init) > VMware vCloud Director"
	srcHyperV       = "Microsoft Hyper-V Provider Requirements > VM Templates"
	srcOVirt        = "Open Virtualization Manager (Ovirt) KVM Provider Requirements > VM Templates"
	srcVCD          = "VMware vCloud Director Provider > VM templates"
	srcCloudInit    = "VM Template Preparation (cloud-init) > Installing Cloud-init"
	srcCloudbase    = "VM Template Preparation (cloud-init) > Windows VM Templates"
	srcSysprep      = "VM Template Preparation (Pre-Install HyperCloud Agent), note 7"
	srcSharedVC     = "VM Template Preparation, Caution 1 (one vCenter Server, several HCPs)"
	srcPreparations = "VM Template Preparation"
)

const notObserved = "not observed by the driver; check by hand"

// factCheck passes on Yes, gives noStatus on No, warns on Unknown.
func factCheck(get func(*Inspection) Fact, yes, no string, noStatus report.Status) checkFunc {
	return func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
		switch get(in) {
		case Yes:
			return report.Pass, yes, true
		case No:
			return noStatus, no, true
		}
		return report.Warn, notObserved, true
	}
}

func commonHead(kind Kind) []Requirement {
	return []Requirement{
		req(kind, "os-family", "The template's guest OS family is known (Linux or Windows)",
			"Set the template's guest OS type in the provider so that OS-specific requirements can be checked",
			srcPreparations, checkFamily),
		req(kind, "bootstrap", "The template is prepared for a first-boot method the provider supports",
			"Prepare the template per the VM Template Preparation guidelines: guest customization (vSphere, vCloud Director), "+
				"cloud-init (Linux) or cloudbase-init (Windows) on vSphere, Hyper-V and oVirt, or pre-install the HyperCloud agent",
			srcPreparations, checkBootstrap),
	}
}

func checkFamily(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
	switch in.Family {
	case guest.Linux, guest.Windows:
		d := string(in.Family)
		if in.OSName != "" {
			d += " (" + in.OSName + ")"
		}
		return report.Pass, d, true
	}
	return report.Warn, "unknown guest OS family: Linux- and Windows-specific requirements are not checked", true
}

func checkBootstrap(in *Inspection, env *checkEnv) (report.Status, string, bool) {
	b := env.bootstrap
	how := string(b)
	if env.inferred {
		how += " (inferred)"
	}
	switch {
	case in.Provider == VCD && (b == CloudInit || b == CloudbaseInit):
		return report.Fail, how + ": cloud-init templates are not supported on vCloud Director", true
	case (in.Provider == HyperV || in.Provider == OVirt) && b == GuestCustomization:
		return report.Fail, how + ": VMware guest customization exists only on vSphere and vCloud Director", true
	case in.Family == guest.Linux && b == CloudbaseInit:
		return report.Fail, how + ": cloudbase-init is for Windows templates", true
	case in.Family == guest.Windows && b == CloudInit:
		return report.Fail, how + ": Windows templates use cloudbase-init, not cloud-init", true
	}
	return report.Pass, how, true
}

func cloudInitRows(kind Kind) []Requirement {
	allowed := "NoCloud, ConfigDrive and None"
	if kind == VSphere {
		allowed = "NoCloud, ConfigDrive, VMware and None"
	}
	return []Requirement{
		req(kind, "cloud-init", "cloud-init is installed in the Linux VM template",
			"Install cloud-init in the VM template (CentOS: sudo yum install -y cloud-init; Ubuntu: sudo apt-get install cloud-init -y)",
			srcCloudInit, factCheck(func(in *Inspection) Fact { return in.CloudInitInstalled }, "installed", "not installed", report.Fail),
		).only(guest.Linux).during(CloudInit),
		req(kind, "datasources", "cloud-init datasource_list is limited to NoCloud and ConfigDrive (and None)",
			"Edit /etc/cloud/cloud.cfg (or 90_dpkg.cfg on Ubuntu) to remove items in datasource_list except the following: "+
				"datasource_list: [ NoCloud, ConfigDrive, None ]",
			srcCloudInit, func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
				return checkDatasources(kind, in.Datasources, allowed)
			}).only(guest.Linux).during(CloudInit),
		req(kind, "persistent-net-rules", "/etc/udev/rules.d/70-persistent-net.rules is removed (older Linux distributions)",
			"Remove /etc/udev/rules.d/70-persistent-net.rules before shutting down the VM template",
			srcCloudInit, factCheck(func(in *Inspection) Fact { return in.PersistentNetRulesRemoved }, "removed", "present", report.Fail),
		).only(guest.Linux).during(CloudInit),
	}
}

func checkDatasources(kind Kind, list []string, allowed string) (report.Status, string, bool) {
	if list == nil {
		return report.Warn, notObserved, true
	}
	ok := map[string]bool{"NoCloud": true, "ConfigDrive": true, "None": true}
	seeds := []string{"NoCloud", "ConfigDrive"}
	if kind == VSphere {
		ok["VMware"] = true
		seeds = append(seeds, "VMware")
	}
	var extra []string
	hasSeed := false
	for _, d := range list {
		d = strings.TrimSpace(d)
		if !ok[d] {
			extra = append(extra, d)
		}
		if slices.Contains(seeds, d) {
			hasSeed = true
		}
	}
	shown := "datasource_list: [" + strings.Join(list, ", ") + "]"
	switch {
	case len(extra) > 0:
		return report.Fail, fmt.Sprintf("%s also lists %s; only %s are allowed", shown, strings.Join(extra, ", "), allowed), true
	case !hasSeed:
		return report.Fail, shown + " lists neither NoCloud nor ConfigDrive", true
	}
	return report.Pass, shown, true
}

func cloudbaseRows(kind Kind) []Requirement {
	services := []string{MetadataNoCloud, MetadataConfigDrive}
	if kind == VSphere {
		services = append(services, MetadataVMwareGuestInfo)
	}
	return []Requirement{
		req(kind, "cloudbase-init", "cloudbase-init is installed in the Windows VM template",
			"Install cloudbase-init in the VM template (take a snapshot of the VM first) and update cloudbase-init.conf, "+
				"cloudbase-init-unattend.conf and Unattend.xml before running sysprep from the Cloudbase-Init installer",
			srcCloudbase, factCheck(func(in *Inspection) Fact { return in.CloudbaseInitInstalled }, "installed", "not installed", report.Fail),
		).only(guest.Windows).during(CloudbaseInit),
		req(kind, "cloudbase-metadata", "cloudbase-init reads a NoCloud or ConfigDrive metadata service",
			"In cloudbase-init.conf and cloudbase-init-unattend.conf set metadata_services="+MetadataNoCloud+","+MetadataConfigDrive,
			srcCloudbase, func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
				if in.CloudbaseMetadataServices == nil {
					return report.Warn, notObserved, true
				}
				for _, s := range in.CloudbaseMetadataServices {
					if slices.Contains(services, strings.TrimSpace(s)) {
						return report.Pass, "metadata_services includes " + s, true
					}
				}
				return report.Fail, "metadata_services=" + strings.Join(in.CloudbaseMetadataServices, ","), true
			}).only(guest.Windows).during(CloudbaseInit),
		req(kind, "admin-password", "The Administrator default password is configured",
			"Configure the Administrator default password in the template (Unattend.xml AdministratorPassword) before running sysprep",
			srcCloudbase, factCheck(func(in *Inspection) Fact { return in.AdminPasswordSet }, "configured", "not configured", report.Fail),
		).only(guest.Windows).during(CloudbaseInit),
	}
}

func sysprepRow(kind Kind, bs ...Bootstrap) Requirement {
	return req(kind, "sysprep", "The Windows VM template is sysprep-generalized",
		"Run sysprep.exe /oobe /generalize /shutdown /mode:vm (with /unattend:Unattend.xml; for cloudbase-init select Sysprep "+
			"at the end of the Cloudbase-Init installer) before converting the VM to a template",
		srcSysprep, factCheck(func(in *Inspection) Fact { return in.Generalized }, "generalized", "not generalized", report.Fail),
	).only(guest.Windows).during(bs...)
}

func vsphereRequirements() []Requirement {
	k := VSphere
	rows := commonHead(k)
	rows = append(rows,
		req(k, "marked", "VM template is pre-created and marked as a template in vCenter Server",
			"Mark the VM as a template in vCenter Server (Template > Convert to Template)",
			srcVSphere, factCheck(func(in *Inspection) Fact { return in.IsTemplate }, "marked as a template", "a VM, not a template", report.Fail)),
		req(k, "tools", "VMware Tools are installed on the VM template",
			"Install VMware Tools on the VM template, or guest customization will fail",
			srcPrepVSphere+" > VM Tools", factCheck(func(in *Inspection) Fact { return in.ToolsInstalled }, "installed", "not installed", report.Fail)),
		req(k, "tools-current", "The latest VMware Tools are installed on the VM template",
			"Upgrade VMware Tools on the VM template to the latest version, or guest customization will fail",
			srcPrepVSphere+" > VM Tools", func(in *Inspection, env *checkEnv) (report.Status, string, bool) {
				switch in.ToolsCurrent {
				case Yes:
					return report.Pass, "current", true
				case No:
					if env.bootstrap == GuestCustomization {
						return report.Fail, "out of date", true
					}
					return report.Warn, "out of date", true
				}
				return report.Warn, notObserved, true
			}),
		req(k, "customization-os", "The guest OS is supported for VMware guest customization",
			"Use a guest OS from VMware's Supported OS for Guest Customization list",
			srcPrepVSphere, factCheck(func(in *Inspection) Fact { return in.CustomizationSupported }, "supported", "not supported", report.Fail),
		).during(GuestCustomization),
		req(k, "customization-spec", "A guest customization spec exists with exactly the VM template's name",
			"Create a VMware Guest Customization with the exact same name as the VM Template Name (when several HCPs share the vCenter Server, clone it with the template so the names match)",
			srcPrepVSphere+" > Guest Customization", checkSpecExists).during(GuestCustomization),
		req(k, "customization-type", "The guest customization spec matches the guest OS (Linux or Windows sysprep)",
			"Create the guest customization for the template's guest OS: a Linux spec for Linux, a Windows (sysprep) spec for Windows",
			srcPrepVSphere+" > Guest Customization", specCheck(func(in *Inspection, s *CustomizationSpec) (report.Status, string) {
				switch {
				case in.Family == guest.Linux && s.Linux == nil, in.Family == guest.Windows && s.Windows == nil:
					return report.Fail, "the spec is not for " + string(in.Family)
				case in.Family == guest.FamilyUnknown:
					return report.Warn, "the guest OS family is unknown"
				}
				return report.Pass, "a " + string(in.Family) + " spec"
			})).during(GuestCustomization),
		req(k, "customization-hostname", "Guest customization Computer Name: use the virtual machine name",
			"In the guest customization, set Computer Name to \"Use the virtual machine name\"",
			srcPrepVSphere+" > Guest Customization Configuration", specCheck(func(_ *Inspection, s *CustomizationSpec) (report.Status, string) {
				if s.usesVMName() {
					return report.Pass, "the virtual machine name"
				}
				if s.Linux != nil {
					return report.Fail, s.Linux.Hostname.String()
				}
				if s.Windows != nil {
					return report.Fail, s.Windows.ComputerName.String()
				}
				return report.Fail, "the spec sets no computer name"
			})).during(GuestCustomization),
		req(k, "customization-network", "Guest customization Network Type: DHCP",
			"In the guest customization, set the network type to DHCP (use standard network settings)",
			srcPrepVSphere+" > Guest Customization Configuration", specCheck(func(_ *Inspection, s *CustomizationSpec) (report.Status, string) {
				if s.allDHCP() {
					return report.Pass, fmt.Sprintf("DHCP on %d adapter(s)", len(s.NICs))
				}
				for i, n := range s.NICs {
					if !n.DHCP {
						return report.Fail, fmt.Sprintf("adapter %d has a static address", i)
					}
				}
				return report.Fail, "the spec has no network adapter setting"
			})).during(GuestCustomization),
		req(k, "customization-autologon", "Windows guest customization logs in automatically as Administrator once",
			"In the Windows guest customization, set Login Automatically as Administrator with a count of 1",
			srcPrepVSphere+" > Windows Guest Customization", specCheck(func(_ *Inspection, s *CustomizationSpec) (report.Status, string) {
				switch w := s.Windows; {
				case w == nil:
					return report.Fail, "the spec is not a Windows spec"
				case !w.AutoLogon || w.AutoLogonCount < 1:
					return report.Fail, "automatic logon is off"
				case w.AutoLogonCount != 1:
					return report.Warn, fmt.Sprintf("automatic logon count is %d, not 1", w.AutoLogonCount)
				}
				return report.Pass, "automatic logon once"
			})).only(guest.Windows).during(GuestCustomization),
		req(k, "customization-runonce", "Windows guest customization Run Once installs the HyperCloud agent",
			"Add the agent install commands (hcp_agent_install_windows.ps1) to the guest customization's Run Once commands",
			srcPrepVSphere+" > Windows Guest Customization", specCheck(func(_ *Inspection, s *CustomizationSpec) (report.Status, string) {
				if s.Windows == nil || len(s.Windows.RunOnce) == 0 {
					return report.Warn, "no Run Once command: the agent must be pre-installed or installed another way"
				}
				return report.Pass, fmt.Sprintf("%d Run Once command(s)", len(s.Windows.RunOnce))
			})).only(guest.Windows).during(GuestCustomization),
		req(k, "environment-prefix", "The VM template and its guest customization carry this environment's prefix",
			"If the same vCenter Server is used by more than one HCP, clone the VM template for each HCP with a prefix "+
				"(VMT-HCP-PROD-..., VMT-HCP-QA-...) and clone the guest customization too so its name matches the template",
			srcSharedVC, checkEnvPrefix),
	)
	rows = append(rows, cloudInitRows(k)...)
	rows = append(rows, cloudbaseRows(k)...)
	rows = append(rows, sysprepRow(k, CloudbaseInit))
	return rows
}

func checkSpecExists(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
	want := SpecNameFor(in.Name)
	found := in.SpecFound
	if found == Unknown && in.Spec != nil && in.Spec.Name == want {
		found = Yes
	}
	if found == Unknown && in.SpecNames != nil {
		found = FactOf(slices.Contains(in.SpecNames, want))
	}
	switch found {
	case Yes:
		return report.Pass, fmt.Sprintf("spec %s exists", limit.Quote(want)), true
	case No:
		for _, n := range in.SpecNames {
			if strings.EqualFold(n, want) {
				return report.Fail, fmt.Sprintf("no spec named %s; %s differs only in case", limit.Quote(want), limit.Quote(n)), true
			}
		}
		return report.Fail, fmt.Sprintf("no spec named %s", limit.Quote(want)), true
	}
	return report.Warn, notObserved, true
}

// specCheck runs f on the template's spec, warning when it was not read.
func specCheck(f func(*Inspection, *CustomizationSpec) (report.Status, string)) checkFunc {
	return func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
		if in.Spec == nil {
			return report.Warn, "the guest customization spec was not read", true
		}
		s, d := f(in, in.Spec)
		return s, d, true
	}
}

func checkEnvPrefix(in *Inspection, env *checkEnv) (report.Status, string, bool) {
	if env.opts.Environment == "" {
		return "", "", false
	}
	want := strings.ToUpper(env.opts.Environment)
	n := env.opts.Naming
	got, _, ok := n.Parse(in.Name)
	switch {
	case !ok:
		return report.Fail, fmt.Sprintf("the name has no environment prefix (want %s%s-...)", n.prefix(), want), true
	case got != want:
		return report.Fail, fmt.Sprintf("the name carries %s's prefix, not %s's", got, want), true
	case in.Spec != nil && in.Spec.Name != SpecNameFor(in.Name):
		return report.Fail, fmt.Sprintf("the guest customization is named %s, not like the template", limit.Quote(in.Spec.Name)), true
	}
	return report.Pass, want + "'s template", true
}

func ovirtRequirements() []Requirement {
	k := OVirt
	rows := commonHead(k)
	rows = append(rows,
		req(k, "exists", "VM template is pre-created in oVirt Manager",
			"Create the VM template in oVirt Manager (Make Template) before provisioning from it",
			srcOVirt, factCheck(func(in *Inspection) Fact { return in.IsTemplate }, "a template", "a VM, not a template", report.Fail)),
		req(k, "datacenter", "VM template is in the same datacenter as the availability zone's cluster",
			"Create (or copy) the VM template in the datacenter used to configure the Availability Zone",
			srcOVirt, func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
				if in.Datacenter == "" || len(in.ZoneDatacenters) == 0 {
					return report.Warn, notObserved, true
				}
				if slices.Contains(in.ZoneDatacenters, in.Datacenter) {
					return report.Pass, "datacenter " + in.Datacenter, true
				}
				return report.Fail, fmt.Sprintf("template in datacenter %s, zone in %s", in.Datacenter, strings.Join(in.ZoneDatacenters, ", ")), true
			}),
		req(k, "guest-agent", "oVirt guest agent and tools are installed",
			"Install the oVirt Guest Agent and tools in the VM template as described in Ovirt Guest Agent and Tools",
			srcPrepOVirt, factCheck(func(in *Inspection) Fact { return in.ToolsInstalled }, "installed", "not installed", report.Fail)),
	)
	rows = append(rows, cloudInitRows(k)...)
	rows = append(rows, cloudbaseRows(k)...)
	rows = append(rows, sysprepRow(k, CloudbaseInit, Preinstalled))
	return rows
}

func hypervRequirements() []Requirement {
	k := HyperV
	rows := commonHead(k)
	rows = append(rows,
		req(k, "vhdx", "VM template is provided as a VHDX file",
			"Provide the VM template as a VHDX file (convert VHD with Convert-VHD)",
			srcHyperV, func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
				p := strings.ToLower(in.DiskPath)
				switch {
				case p == "":
					return report.Warn, notObserved, true
				case strings.HasSuffix(p, ".vhdx"):
					return report.Pass, in.DiskPath, true
				}
				return report.Fail, in.DiskPath + " is not a VHDX file", true
			}),
		req(k, "csv", "The VHDX is placed in the templates Cluster Shared Volume configured in the availability zone",
			"Place the VHDX in the Cluster Shared Volume for VM Templates configured in the Availability Zone (e.g. C:\\CSVs\\Hypercloud_Templates)",
			srcHyperV, func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
				if in.DiskPath == "" || in.ZoneTemplatePath == "" {
					return report.Warn, notObserved, true
				}
				if windowsPathUnder(in.DiskPath, in.ZoneTemplatePath) {
					return report.Pass, "under " + in.ZoneTemplatePath, true
				}
				return report.Fail, fmt.Sprintf("%s is not under %s", in.DiskPath, in.ZoneTemplatePath), true
			}),
		req(k, "integration-services", "Hyper-V Integration Services are installed and configured",
			"Install and configure Hyper-V Integration Tools & services in the VM template (Linux: the hyperv daemons; remove older kernels and reboot)",
			srcPrepHyperV, factCheck(func(in *Inspection) Fact { return in.ToolsInstalled }, "installed", "not installed", report.Fail)),
	)
	rows = append(rows, cloudInitRows(k)...)
	rows = append(rows, cloudbaseRows(k)...)
	rows = append(rows, sysprepRow(k, CloudbaseInit, Preinstalled))
	return rows
}

// windowsPathUnder reports whether path p is inside directory dir,
// comparing as Windows does (case-insensitive, either slash).
func windowsPathUnder(p, dir string) bool {
	norm := func(s string) string {
		return strings.TrimRight(strings.ToLower(strings.ReplaceAll(s, "/", `\`)), `\`)
	}
	p, dir = norm(p), norm(dir)
	return dir != "" && strings.HasPrefix(p, dir+`\`)
}

// vApp template source formats for Inspection.SourceFormat.
const (
	SourceVApp    = "vapp"    // created in vCloud Director from a vApp
	SourceVCenter = "vcenter" // imported from vCenter
	SourceISO     = "iso"
	SourceOVA     = "ova"
)

func vcdRequirements() []Requirement {
	k := VCD
	rows := commonHead(k)
	rows = append(rows,
		req(k, "catalog", "vApp template is added to a public or organization catalog",
			"Add the vApp template to at least one Organization Catalog (or the Public Catalog)",
			srcVCD, func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
				switch in.InCatalog {
				case Yes:
					if in.Catalog != "" {
						return report.Pass, "in catalog " + in.Catalog, true
					}
					return report.Pass, "in a catalog", true
				case No:
					return report.Fail, "in no catalog", true
				}
				return report.Warn, notObserved, true
			}),
		req(k, "single-vm", "vApp template contains only one VM (single tier)",
			"Ensure vApp Templates contain only one Tier (single VM); use HyperCloud Blueprints for multi-tier deployments",
			srcPrepVCD, func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
				switch {
				case in.VMCount == 0:
					return report.Warn, notObserved, true
				case in.VMCount == 1:
					return report.Pass, "one VM", true
				}
				return report.Fail, fmt.Sprintf("%d VMs: multi-tier vApp templates are not supported", in.VMCount), true
			}),
		req(k, "source", "vApp template was created in vCloud Director or imported from vCenter (not ISO or OVA)",
			"Create the vApp template in vCloud Director or import it from vCenter; ISO and OVA formats are not supported",
			srcPrepVCD, func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
				switch strings.ToLower(in.SourceFormat) {
				case "":
					return report.Warn, notObserved, true
				case SourceVApp, SourceVCenter:
					return report.Pass, in.SourceFormat, true
				case SourceISO, SourceOVA:
					return report.Fail, "made from " + strings.ToUpper(in.SourceFormat), true
				}
				return report.Warn, fmt.Sprintf("unrecognized source %s", limit.Quote(in.SourceFormat)), true
			}),
		req(k, "tools", "VMware Tools are installed on the vApp template",
			"Install VMware Tools in the vApp template's VM",
			srcPrepVCD, factCheck(func(in *Inspection) Fact { return in.ToolsInstalled }, "installed", "not installed", report.Fail)),
		req(k, "customization-os", "The guest OS is supported for VMware guest customization",
			"Use a guest OS from VMware's Supported OS for Guest Customization list",
			srcPrepVCD, factCheck(func(in *Inspection) Fact { return in.CustomizationSupported }, "supported", "not supported", report.Fail)),
		req(k, "vapp-network", "The vApp template's vApp network is set to none",
			"When creating a Template from an existing vApp, set vApp network = none",
			srcPrepVCD, func(in *Inspection, _ *checkEnv) (report.Status, string, bool) {
				switch in.HasVAppNetwork {
				case No:
					return report.Pass, "no vApp network", true
				case Yes:
					return report.Warn, "the template has a vApp network", true
				}
				return report.Warn, notObserved, true
			}),
	)
	return rows
}
