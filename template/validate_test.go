package template_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
	"github.com/managedvm/managedvm/template"
)

func rowIDs(r report.Report) []string {
	var ids []string
	for _, c := range r.Checks {
		ids = append(ids, c.ID)
	}
	return ids
}

func row(t *testing.T, r report.Report, id string) report.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no row %s in\n%s", id, r)
	return report.Check{}
}

func goodSpec(t *testing.T, name string, fam guest.OSFamily) *template.CustomizationSpec {
	s := linuxDHCPSettings()
	if fam == guest.Windows {
		s = windowsSettings()
		s.NICs = nil
	}
	spec, err := template.BuildCustomizationSpec(name, s, &template.SpecOptions{HostnameFromVMName: true})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// perfect returns an inspection that meets every requirement.
func perfect(t *testing.T, kind template.Kind, fam guest.OSFamily, b template.Bootstrap) template.Inspection {
	name := "VMT-HCP-PROD-tmpl"
	in := template.Inspection{
		Provider: kind, Name: name, Family: fam, Bootstrap: b,
		IsTemplate: template.Yes, ToolsInstalled: template.Yes, ToolsCurrent: template.Yes, CustomizationSupported: template.Yes,
		SpecFound: template.Yes, Spec: goodSpec(t, name, fam),
		Datacenter: "DC1", ZoneDatacenters: []string{"DC1"},
		DiskPath: `C:\CSVs\Hypercloud_Templates\tmpl.vhdx`, ZoneTemplatePath: `c:/csvs/hypercloud_templates/`,
		InCatalog: template.Yes, Catalog: "Templates", VMCount: 1, SourceFormat: template.SourceVApp, HasVAppNetwork: template.No,
		CloudInitInstalled: template.Yes, Datasources: []string{"NoCloud", "ConfigDrive", "None"}, PersistentNetRulesRemoved: template.Yes,
		CloudbaseInitInstalled: template.Yes, CloudbaseMetadataServices: []string{template.MetadataNoCloud}, Generalized: template.Yes, AdminPasswordSet: template.Yes,
	}
	return in
}

func TestValidatePerfectTemplates(t *testing.T) {
	type combo struct {
		kind template.Kind
		fam  guest.OSFamily
		b    template.Bootstrap
	}
	var combos []combo
	for _, k := range template.Kinds() {
		for _, f := range []guest.OSFamily{guest.Linux, guest.Windows} {
			boots := []template.Bootstrap{template.Preinstalled}
			switch k {
			case template.VSphere:
				boots = append(boots, template.GuestCustomization)
			case template.VCD:
				boots = []template.Bootstrap{template.GuestCustomization, template.Preinstalled}
			}
			if k != template.VCD {
				if f == guest.Linux {
					boots = append(boots, template.CloudInit)
				} else {
					boots = append(boots, template.CloudbaseInit)
				}
			}
			for _, b := range boots {
				combos = append(combos, combo{k, f, b})
			}
		}
	}
	for _, c := range combos {
		t.Run(string(c.kind)+"/"+string(c.fam)+"/"+string(c.b), func(t *testing.T) {
			r, err := template.Validate(perfect(t, c.kind, c.fam, c.b), &template.ValidateOptions{Environment: "prod"})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status() != report.Pass {
				t.Errorf("a perfect template does not pass:\n%s", r)
			}
			for _, ch := range r.Checks {
				if !strings.HasPrefix(ch.ID, string(c.kind)+".template.") || ch.Subject != "VMT-HCP-PROD-tmpl" || ch.Name == "" || ch.Fix != "" {
					t.Errorf("row %+v", ch)
				}
			}
		})
	}
}

func TestValidateRowsApply(t *testing.T) {
	r, _ := template.Validate(perfect(t, template.VSphere, guest.Windows, template.GuestCustomization), nil)
	ids := rowIDs(r)
	for _, want := range []string{"vsphere.template.marked", "vsphere.template.customization-spec", "vsphere.template.customization-autologon", "vsphere.template.customization-runonce"} {
		if !slices.Contains(ids, want) {
			t.Errorf("windows customization report lacks %s: %v", want, ids)
		}
	}
	for _, not := range []string{"vsphere.template.cloud-init", "vsphere.template.datasources", "vsphere.template.cloudbase-init", "vsphere.template.environment-prefix"} {
		if slices.Contains(ids, not) {
			t.Errorf("windows customization report has %s", not)
		}
	}
	r, _ = template.Validate(perfect(t, template.VSphere, guest.Linux, template.CloudInit), nil)
	ids = rowIDs(r)
	if !slices.Contains(ids, "vsphere.template.datasources") || slices.Contains(ids, "vsphere.template.customization-spec") ||
		slices.Contains(ids, "vsphere.template.customization-autologon") {
		t.Errorf("linux cloud-init rows: %v", ids)
	}
	// Unknown family: the OS-specific rows are left out and the family row warns.
	in := perfect(t, template.HyperV, "", template.Preinstalled)
	r, _ = template.Validate(in, nil)
	if c := row(t, r, "hyperv.template.os-family"); c.Status != report.Warn || c.Fix == "" {
		t.Errorf("os-family row %+v", c)
	}
	for _, id := range rowIDs(r) {
		if strings.Contains(id, "sysprep") || strings.Contains(id, "cloud") {
			t.Errorf("row %s for an unknown family", id)
		}
	}
}

func TestValidateFailures(t *testing.T) {
	cases := []struct {
		name   string
		kind   template.Kind
		fam    guest.OSFamily
		b      template.Bootstrap
		mutate func(*template.Inspection)
		id     string
		status report.Status
		detail string
	}{
		{"not marked", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.IsTemplate = template.No }, "vsphere.template.marked", report.Fail, "not a template"},
		{"tools missing", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.ToolsInstalled = template.No }, "vsphere.template.tools", report.Fail, "not installed"},
		{"tools unknown", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.ToolsInstalled = template.Unknown }, "vsphere.template.tools", report.Warn, "check by hand"},
		{"tools old customization", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.ToolsCurrent = template.No }, "vsphere.template.tools-current", report.Fail, "out of date"},
		{"tools old cloud-init", template.VSphere, guest.Linux, template.CloudInit, func(in *template.Inspection) { in.ToolsCurrent = template.No }, "vsphere.template.tools-current", report.Warn, "out of date"},
		{"no spec", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) {
			in.SpecFound, in.Spec, in.SpecNames = template.Unknown, nil, []string{"vmt-hcp-prod-tmpl", "other"}
		}, "vsphere.template.customization-spec", report.Fail, "differs only in case"},
		{"spec from names", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) {
			in.SpecFound, in.Spec, in.SpecNames = template.Unknown, nil, []string{"VMT-HCP-PROD-tmpl"}
		}, "vsphere.template.customization-spec", report.Pass, "exists"},
		{"spec not read", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.Spec = nil }, "vsphere.template.customization-hostname", report.Warn, "not read"},
		{"spec fixed hostname", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) {
			in.Spec.Linux.Hostname = template.HostnameSource{Fixed: "web01"}
		}, "vsphere.template.customization-hostname", report.Fail, `fixed name "web01"`},
		{"spec static", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.Spec.NICs[0].DHCP = false }, "vsphere.template.customization-network", report.Fail, "static"},
		{"spec wrong os", template.VSphere, guest.Windows, template.GuestCustomization, func(in *template.Inspection) {
			in.Spec = goodSpec(t, in.Name, guest.Linux)
		}, "vsphere.template.customization-type", report.Fail, "not for windows"},
		{"autologon off", template.VSphere, guest.Windows, template.GuestCustomization, func(in *template.Inspection) { in.Spec.Windows.AutoLogon = false }, "vsphere.template.customization-autologon", report.Fail, "off"},
		{"autologon 3", template.VSphere, guest.Windows, template.GuestCustomization, func(in *template.Inspection) { in.Spec.Windows.AutoLogonCount = 3 }, "vsphere.template.customization-autologon", report.Warn, "3"},
		{"no run once", template.VSphere, guest.Windows, template.GuestCustomization, func(in *template.Inspection) { in.Spec.Windows.RunOnce = nil }, "vsphere.template.customization-runonce", report.Warn, "pre-installed"},
		{"wrong env", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.Name = "VMT-HCP-QA-tmpl"; in.Spec.Name = in.Name }, "vsphere.template.environment-prefix", report.Fail, "QA's prefix"},
		{"no env prefix", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.Name = "Ubuntu2204"; in.Spec.Name = in.Name }, "vsphere.template.environment-prefix", report.Fail, "no environment prefix"},
		{"customization unsupported", template.VSphere, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.CustomizationSupported = template.No }, "vsphere.template.customization-os", report.Fail, "not supported"},
		{"extra datasource", template.VSphere, guest.Linux, template.CloudInit, func(in *template.Inspection) { in.Datasources = []string{"NoCloud", "Ec2"} }, "vsphere.template.datasources", report.Fail, "Ec2"},
		{"vmware datasource on vsphere", template.VSphere, guest.Linux, template.CloudInit, func(in *template.Inspection) { in.Datasources = []string{"VMware", "None"} }, "vsphere.template.datasources", report.Pass, "VMware"},
		{"vmware datasource on ovirt", template.OVirt, guest.Linux, template.CloudInit, func(in *template.Inspection) { in.Datasources = []string{"VMware", "None"} }, "ovirt.template.datasources", report.Fail, "VMware"},
		{"only None", template.OVirt, guest.Linux, template.CloudInit, func(in *template.Inspection) { in.Datasources = []string{"None"} }, "ovirt.template.datasources", report.Fail, "neither"},
		{"datasources unknown", template.HyperV, guest.Linux, template.CloudInit, func(in *template.Inspection) { in.Datasources = nil }, "hyperv.template.datasources", report.Warn, "check by hand"},
		{"net rules present", template.HyperV, guest.Linux, template.CloudInit, func(in *template.Inspection) { in.PersistentNetRulesRemoved = template.No }, "hyperv.template.persistent-net-rules", report.Fail, "present"},
		{"cloud-init missing", template.OVirt, guest.Linux, template.CloudInit, func(in *template.Inspection) { in.CloudInitInstalled = template.No }, "ovirt.template.cloud-init", report.Fail, "not installed"},
		{"cloudbase missing", template.HyperV, guest.Windows, template.CloudbaseInit, func(in *template.Inspection) { in.CloudbaseInitInstalled = template.No }, "hyperv.template.cloudbase-init", report.Fail, "not installed"},
		{"cloudbase metadata", template.HyperV, guest.Windows, template.CloudbaseInit, func(in *template.Inspection) {
			in.CloudbaseMetadataServices = []string{"cloudbaseinit.metadata.services.httpservice.HttpService"}
		}, "hyperv.template.cloudbase-metadata", report.Fail, "HttpService"},
		{"not generalized", template.OVirt, guest.Windows, template.Preinstalled, func(in *template.Inspection) { in.Generalized = template.No }, "ovirt.template.sysprep", report.Fail, "not generalized"},
		{"admin password", template.VSphere, guest.Windows, template.CloudbaseInit, func(in *template.Inspection) { in.AdminPasswordSet = template.No }, "vsphere.template.admin-password", report.Fail, "not configured"},
		{"ovirt wrong dc", template.OVirt, guest.Linux, template.Preinstalled, func(in *template.Inspection) { in.Datacenter = "DC2" }, "ovirt.template.datacenter", report.Fail, "DC2"},
		{"ovirt dc unknown", template.OVirt, guest.Linux, template.Preinstalled, func(in *template.Inspection) { in.Datacenter = "" }, "ovirt.template.datacenter", report.Warn, "check by hand"},
		{"ovirt agent", template.OVirt, guest.Linux, template.Preinstalled, func(in *template.Inspection) { in.ToolsInstalled = template.No }, "ovirt.template.guest-agent", report.Fail, "not installed"},
		{"ovirt not template", template.OVirt, guest.Linux, template.Preinstalled, func(in *template.Inspection) { in.IsTemplate = template.No }, "ovirt.template.exists", report.Fail, "not a template"},
		{"hyperv vhd", template.HyperV, guest.Linux, template.Preinstalled, func(in *template.Inspection) { in.DiskPath = `C:\CSVs\Hypercloud_Templates\t.vhd` }, "hyperv.template.vhdx", report.Fail, "not a VHDX"},
		{"hyperv outside csv", template.HyperV, guest.Linux, template.Preinstalled, func(in *template.Inspection) { in.DiskPath = `C:\CSVs\Hypercloud_Production\t.vhdx` }, "hyperv.template.csv", report.Fail, "not under"},
		{"hyperv csv prefix trap", template.HyperV, guest.Linux, template.Preinstalled, func(in *template.Inspection) { in.DiskPath = `C:\CSVs\Hypercloud_Templates2\t.vhdx` }, "hyperv.template.csv", report.Fail, "not under"},
		{"hyperv integration", template.HyperV, guest.Linux, template.Preinstalled, func(in *template.Inspection) { in.ToolsInstalled = template.No }, "hyperv.template.integration-services", report.Fail, "not installed"},
		{"hyperv customization", template.HyperV, guest.Linux, template.GuestCustomization, func(*template.Inspection) {}, "hyperv.template.bootstrap", report.Fail, "only on vSphere"},
		{"vcd cloud-init", template.VCD, guest.Linux, template.CloudInit, func(*template.Inspection) {}, "vcd.template.bootstrap", report.Fail, "not supported on vCloud Director"},
		{"linux cloudbase", template.VSphere, guest.Linux, template.CloudbaseInit, func(*template.Inspection) {}, "vsphere.template.bootstrap", report.Fail, "for Windows"},
		{"vcd multi tier", template.VCD, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.VMCount = 3 }, "vcd.template.single-vm", report.Fail, "multi-tier"},
		{"vcd iso", template.VCD, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.SourceFormat = "ISO" }, "vcd.template.source", report.Fail, "ISO"},
		{"vcd ova", template.VCD, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.SourceFormat = template.SourceOVA }, "vcd.template.source", report.Fail, "OVA"},
		{"vcd no catalog", template.VCD, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.InCatalog = template.No }, "vcd.template.catalog", report.Fail, "no catalog"},
		{"vcd vapp network", template.VCD, guest.Linux, template.GuestCustomization, func(in *template.Inspection) { in.HasVAppNetwork = template.Yes }, "vcd.template.vapp-network", report.Warn, "vApp network"},
		{"vcd tools", template.VCD, guest.Windows, template.GuestCustomization, func(in *template.Inspection) { in.ToolsInstalled = template.No }, "vcd.template.tools", report.Fail, "not installed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := perfect(t, tc.kind, tc.fam, tc.b)
			tc.mutate(&in)
			r, err := template.Validate(in, &template.ValidateOptions{Environment: "PROD"})
			if err != nil {
				t.Fatal(err)
			}
			c := row(t, r, tc.id)
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("%s = %s %q, want %s containing %q", tc.id, c.Status, c.Detail, tc.status, tc.detail)
			}
			if (c.Fix == "") != (c.Status == report.Pass) {
				t.Errorf("%s: fix %q with status %s", tc.id, c.Fix, c.Status)
			}
			// Only this row changed from a pass (the bootstrap cases aside).
			for _, other := range r.Checks {
				if other.ID != tc.id && other.Status != report.Pass && !strings.HasSuffix(tc.id, ".bootstrap") &&
					!(tc.name == "spec wrong os" || tc.name == "spec not read" || tc.name == "no spec" || tc.name == "spec from names") {
					t.Errorf("another row does not pass: %+v", other)
				}
			}
		})
	}
}

func TestValidateInference(t *testing.T) {
	for _, tc := range []struct {
		kind template.Kind
		fam  guest.OSFamily
		ci   template.Fact
		cb   template.Fact
		want string
	}{
		{template.VSphere, guest.Linux, template.Unknown, template.Unknown, "guest-customization (inferred)"},
		{template.VSphere, guest.Linux, template.Yes, template.Unknown, "cloud-init (inferred)"},
		{template.HyperV, guest.Windows, template.Unknown, template.Yes, "cloudbase-init (inferred)"},
		{template.OVirt, guest.Linux, template.No, template.Unknown, "preinstalled (inferred)"},
		{template.VCD, guest.Windows, template.Unknown, template.Unknown, "guest-customization (inferred)"},
	} {
		in := template.Inspection{Provider: tc.kind, Name: "t", Family: tc.fam, CloudInitInstalled: tc.ci, CloudbaseInitInstalled: tc.cb}
		r, err := template.Validate(in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c := row(t, r, string(tc.kind)+".template.bootstrap"); c.Detail != tc.want {
			t.Errorf("%s/%s: bootstrap %q, want %q", tc.kind, tc.fam, c.Detail, tc.want)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		in   template.Inspection
		opts *template.ValidateOptions
	}{
		"unknown kind":      {template.Inspection{Provider: "xen", Name: "t"}, nil},
		"no kind":           {template.Inspection{Name: "t"}, nil},
		"no name":           {template.Inspection{Provider: template.VSphere}, nil},
		"bad environment":   {template.Inspection{Provider: template.VSphere, Name: "t"}, &template.ValidateOptions{Environment: "PROD-1"}},
		"unknown bootstrap": {template.Inspection{Provider: template.VSphere, Name: "t", Bootstrap: "magic"}, nil},
	} {
		if _, err := template.Validate(tc.in, tc.opts); !isInvalid(err) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}

func TestRequirementsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range template.Kinds() {
		reqs := template.Requirements(k)
		if len(reqs) < 8 {
			t.Errorf("%s has only %d rows", k, len(reqs))
		}
		for _, r := range reqs {
			if seen[r.ID] {
				t.Errorf("duplicate ID %s", r.ID)
			}
			seen[r.ID] = true
			if r.Provider != k || !strings.HasPrefix(r.ID, string(k)+".template.") || r.Name == "" || r.Fix == "" || r.Source == "" {
				t.Errorf("row %+v", r)
			}
		}
	}
	if template.Requirements("xen") != nil {
		t.Error("rows for an unknown kind")
	}
	// Callers get a fresh copy.
	a := template.Requirements(template.VSphere)
	a[0].Name = "changed"
	if template.Requirements(template.VSphere)[0].Name == "changed" {
		t.Error("Requirements returns shared state")
	}
}

func TestVMwareToolsFacts(t *testing.T) {
	for status, want := range map[string][2]template.Fact{
		"guestToolsCurrent":      {template.Yes, template.Yes},
		"guestToolsNeedUpgrade":  {template.Yes, template.No},
		"guestToolsNotInstalled": {template.No, template.No},
		"guestToolsUnmanaged":    {template.Yes, template.Yes},
		"toolsOld":               {template.Yes, template.No},
		"":                       {template.Unknown, template.Unknown},
	} {
		i, c := template.VMwareToolsFacts(status)
		if i != want[0] || c != want[1] {
			t.Errorf("VMwareToolsFacts(%q) = %v, %v", status, i, c)
		}
	}
	in := template.InspectionFromTemplate(template.OVirt, provider.Template{Name: "t", Family: guest.Linux, ToolsInstalled: true})
	if in.Provider != template.OVirt || in.IsTemplate != template.Yes || in.ToolsInstalled != template.Yes || in.Family != guest.Linux {
		t.Errorf("InspectionFromTemplate = %+v", in)
	}
}

func TestParseDatasourceList(t *testing.T) {
	got, err := template.ParseDatasourceList([]byte("# 90_dpkg.cfg\ndatasource_list: [ NoCloud, ConfigDrive, None ]\n"))
	if err != nil || !slices.Equal(got, []string{"NoCloud", "ConfigDrive", "None"}) {
		t.Errorf("ParseDatasourceList = %v, %v", got, err)
	}
	if got, err := template.ParseDatasourceList([]byte("# only a comment\n")); err != nil || got != nil {
		t.Errorf("no key: %v, %v", got, err)
	}
	if _, err := template.ParseDatasourceList([]byte("datasource_list: [unterminated\n")); !isInvalid(err) {
		t.Errorf("bad YAML: %v", err)
	}
}
