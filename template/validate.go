package template

import (
	"slices"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// Inspection is what a provider driver could observe about one template.
// Drivers fill what they can; Unknown facts and empty fields make the
// matching rows warn ("check by hand") rather than pass.
type Inspection struct {
	// Provider is the provider kind. Required.
	Provider Kind
	// Name is the template's name. Required.
	Name string
	// Family and OSName are the guest OS.
	Family guest.OSFamily
	OSName string
	// Bootstrap is how the template's guests are set up on first boot;
	// empty infers it: cloud-init or cloudbase-init when installed,
	// otherwise guest customization on vSphere and vCloud Director and a
	// pre-installed agent on Hyper-V and oVirt.
	Bootstrap Bootstrap

	// IsTemplate: marked as a template (vSphere), is a template (oVirt).
	IsTemplate Fact
	// ToolsInstalled: VMware Tools (vSphere, vCD), the oVirt guest agent,
	// Hyper-V integration services. See VMwareToolsFacts.
	ToolsInstalled Fact
	// ToolsCurrent: the VMware Tools are the latest (vSphere).
	ToolsCurrent Fact
	// CustomizationSupported: the guest OS is on VMware's list of guest
	// OSes supported for guest customization (vSphere, vCD).
	CustomizationSupported Fact

	// SpecFound: a guest customization spec named exactly like the
	// template exists (vSphere). SpecNames, if listed, are every spec's
	// name (nil when not listed): they settle SpecFound when it is Unknown
	// and explain near misses. Spec is that spec's content, if read.
	SpecFound Fact
	SpecNames []string
	Spec      *CustomizationSpec

	// Datacenter is where the template is, ZoneDatacenters where the
	// availability zone is (oVirt).
	Datacenter      string
	ZoneDatacenters []string

	// DiskPath is the template's VHDX path and ZoneTemplatePath the
	// templates Cluster Shared Volume path of the zone (Hyper-V).
	DiskPath         string
	ZoneTemplatePath string

	// InCatalog and Catalog: the vApp template's catalog. VMCount is the
	// number of VMs in it (0: not observed). SourceFormat is SourceVApp,
	// SourceVCenter, SourceISO or SourceOVA. HasVAppNetwork: the template
	// has a vApp network (vCD).
	InCatalog      Fact
	Catalog        string
	VMCount        int
	SourceFormat   string
	HasVAppNetwork Fact

	// CloudInitInstalled, Datasources (cloud-init's datasource_list; nil
	// when not observed, see ParseDatasourceList) and
	// PersistentNetRulesRemoved (no /etc/udev/rules.d/70-persistent-net.rules)
	// for Linux cloud-init templates.
	CloudInitInstalled        Fact
	Datasources               []string
	PersistentNetRulesRemoved Fact

	// CloudbaseInitInstalled, CloudbaseMetadataServices (nil when not
	// observed, see CloudbaseMetadataServices), Generalized (sysprep
	// /generalize was run) and AdminPasswordSet for Windows templates.
	CloudbaseInitInstalled    Fact
	CloudbaseMetadataServices []string
	Generalized               Fact
	AdminPasswordSet          Fact
}

// ValidateOptions tune Validate. A nil *ValidateOptions means the defaults.
type ValidateOptions struct {
	// Environment, if set ("PROD", "QA"), adds the row checking that the
	// template carries that environment's prefix (vSphere).
	Environment string
	// Naming is the naming convention; zero means the default prefix.
	Naming Naming
}

// Validate checks a template against its provider's requirements
// ([Requirements]) and returns one row per applicable requirement, in
// order: ID, Name and Fix from the requirement, Status and Detail from the
// inspection, Subject the template's name. Rows for another guest OS family
// or bootstrap method are left out (all OS-specific rows when the family is
// unknown). Drivers' Preflight merges the report of each template.
//
// An unknown provider kind, an empty template name or a malformed
// environment is InvalidArgument.
func Validate(in Inspection, opts *ValidateOptions) (report.Report, error) {
	const op = "template.Validate"
	reqs := Requirements(in.Provider)
	if reqs == nil {
		return report.Report{}, invalidf(op, "unknown provider kind %s", quoteName(string(in.Provider)))
	}
	if in.Name == "" {
		return report.Report{}, errs.New(errs.InvalidArgument, op, "template name is empty")
	}
	env := &checkEnv{}
	if opts != nil {
		env.opts = *opts
	}
	if env.opts.Environment != "" && !envRE.MatchString(env.opts.Environment) {
		return report.Report{}, invalidf(op, "environment %s must be 1 to 16 letters and digits", quoteName(env.opts.Environment))
	}
	env.bootstrap, env.inferred = in.Bootstrap, false
	if env.bootstrap == "" {
		env.bootstrap, env.inferred = inferBootstrap(&in), true
	}
	switch env.bootstrap {
	case GuestCustomization, CloudInit, CloudbaseInit, Preinstalled:
	default:
		return report.Report{}, invalidf(op, "unknown bootstrap %s", quoteName(string(in.Bootstrap)))
	}

	var r report.Report
	for _, q := range reqs {
		if len(q.Families) > 0 && !slices.Contains(q.Families, in.Family) {
			continue
		}
		if len(q.Bootstraps) > 0 && !slices.Contains(q.Bootstraps, env.bootstrap) {
			continue
		}
		status, detail, applies := q.check(&in, env)
		if !applies {
			continue
		}
		c := report.Check{ID: q.ID, Name: q.Name, Status: status, Detail: detail, Subject: in.Name}
		if status != report.Pass {
			c.Fix = q.Fix
		}
		r.Add(c)
	}
	return r, nil
}

func inferBootstrap(in *Inspection) Bootstrap {
	switch {
	case in.Family == guest.Linux && in.CloudInitInstalled == Yes:
		return CloudInit
	case in.Family == guest.Windows && in.CloudbaseInitInstalled == Yes:
		return CloudbaseInit
	case in.Provider == VSphere || in.Provider == VCD:
		return GuestCustomization
	}
	return Preinstalled
}

// InspectionFromTemplate starts an Inspection from what provider.Template
// says: name, guest OS, a template (Yes), and the tools (Yes or No).
func InspectionFromTemplate(kind Kind, t provider.Template) Inspection {
	return Inspection{
		Provider:       kind,
		Name:           t.Name,
		Family:         t.Family,
		OSName:         t.OSName,
		IsTemplate:     Yes,
		ToolsInstalled: FactOf(t.ToolsInstalled),
	}
}

// VMwareToolsFacts maps vSphere's tools status (guest.toolsVersionStatus2,
// or the older toolsVersionStatus / toolsStatus values) to ToolsInstalled
// and ToolsCurrent. Tools managed by the guest OS (open-vm-tools,
// "guestToolsUnmanaged") count as current.
func VMwareToolsFacts(status string) (installed, current Fact) {
	switch status {
	case "guestToolsCurrent", "guestToolsSupportedNew", "guestToolsTooNew", "toolsOk", "guestToolsUnmanaged":
		return Yes, Yes
	case "guestToolsNeedUpgrade", "guestToolsSupportedOld", "guestToolsTooOld", "guestToolsBlacklisted", "toolsOld":
		return Yes, No
	case "guestToolsNotInstalled", "toolsNotInstalled":
		return No, No
	case "toolsNotRunning":
		return Yes, Unknown
	}
	return Unknown, Unknown
}
