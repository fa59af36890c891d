package template_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/report"
	"github.com/managedvm/managedvm/template"
)

func TestNaming(t *testing.T) {
	var n template.Naming
	name, err := n.TemplateName("prod", "Win2k16x64")
	if err != nil || name != "VMT-HCP-PROD-Win2k16x64" {
		t.Fatalf("TemplateName = %q, %v", name, err)
	}
	if env, base, ok := n.Parse(name); !ok || env != "PROD" || base != "Win2k16x64" {
		t.Errorf("Parse = %q %q %v", env, base, ok)
	}
	if env, base, ok := n.Parse("VMT-HCP-QA-Ubuntu-22.04"); !ok || env != "QA" || base != "Ubuntu-22.04" {
		t.Errorf("Parse = %q %q %v", env, base, ok)
	}
	for _, bad := range []string{"Win2k16x64", "VMT-HCP-", "VMT-HCP-PROD", "VMT-HCP-PROD-", "VMT-HCP-prod-x", "VMT-HCP-PR_D-x"} {
		if _, _, ok := n.Parse(bad); ok {
			t.Errorf("Parse(%q) ok", bad)
		}
	}
	for _, tc := range [][2]string{{"", "x"}, {"PROD-1", "x"}, {"PROD", ""}, {"PROD", "a/b"}, {"PROD", "a\nb"}, {"PROD", strings.Repeat("x", 80)}} {
		if _, err := n.TemplateName(tc[0], tc[1]); !isInvalid(err) {
			t.Errorf("TemplateName(%q, %q) = %v, want InvalidArgument", tc[0], tc[1], err)
		}
	}
	custom := template.Naming{Prefix: "TPL-"}
	if got, _ := custom.TemplateName("qa", "rhel9"); got != "TPL-QA-rhel9" {
		t.Errorf("custom prefix: %q", got)
	}
	if template.SpecNameFor(name) != name {
		t.Error("the spec name is not the template name")
	}
}

func TestCheckSharedVCenter(t *testing.T) {
	var n template.Naming
	r, err := n.CheckSharedVCenter(map[string][]string{
		"PROD": {"VMT-HCP-PROD-Win2k16x64", "VMT-HCP-PROD-Ubuntu2204"},
		"QA":   {"VMT-HCP-QA-Win2k16x64", "VMT-HCP-QA-Ubuntu2204"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status() != report.Pass || len(r.Checks) != 1 || r.Checks[0].ID != template.CheckSharedTemplate {
		t.Errorf("isolated environments:\n%s", r)
	}

	r, err = n.CheckSharedVCenter(map[string][]string{
		"PROD": {"VMT-HCP-PROD-Win2k16x64", "Ubuntu2204"},
		"QA":   {"VMT-HCP-PROD-Win2k16x64", "Ubuntu2204", "VMT-HCP-QA-rhel9"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var shared, prefixFail, prefixWarn []string
	for _, c := range r.Checks {
		switch {
		case c.ID == template.CheckSharedTemplate && c.Status == report.Fail:
			shared = append(shared, c.Subject)
			if c.Detail != "used by PROD, QA" || c.Fix == "" {
				t.Errorf("shared row %+v", c)
			}
		case c.ID == template.CheckEnvPrefix && c.Status == report.Fail:
			prefixFail = append(prefixFail, c.Subject)
		case c.ID == template.CheckEnvPrefix && c.Status == report.Warn:
			prefixWarn = append(prefixWarn, c.Subject)
		default:
			t.Errorf("unexpected row %+v", c)
		}
	}
	if !slices.Equal(shared, []string{"Ubuntu2204", "VMT-HCP-PROD-Win2k16x64"}) ||
		!slices.Equal(prefixFail, []string{"VMT-HCP-PROD-Win2k16x64"}) ||
		!slices.Equal(prefixWarn, []string{"Ubuntu2204", "Ubuntu2204"}) {
		t.Errorf("shared=%v prefixFail=%v prefixWarn=%v\n%s", shared, prefixFail, prefixWarn, r)
	}

	for _, bad := range []map[string][]string{{"PR-OD": {"x"}}, {"": {"x"}}, {"PROD": {""}}} {
		if _, err := n.CheckSharedVCenter(bad); !isInvalid(err) {
			t.Errorf("CheckSharedVCenter(%v) = %v, want InvalidArgument", bad, err)
		}
	}
}

func TestCustomizationSpecDiff(t *testing.T) {
	a, err := template.BuildCustomizationSpec("VMT-HCP-PROD-win", windowsSettings(), &template.SpecOptions{HostnameFromVMName: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := template.BuildCustomizationSpec("VMT-HCP-PROD-win", windowsSettings(), &template.SpecOptions{HostnameFromVMName: true})
	if d := a.Diff(b); d != nil {
		t.Fatalf("equal specs differ: %v", d)
	}
	b.Windows.AdminPassword = guest.NewSecret("other-secret")
	b.Windows.AutoLogonCount = 2
	b.NICs[0].DHCP = true
	d := a.Diff(b)
	joined := strings.Join(d, "\n")
	for _, want := range []string{"Windows.AdminPassword: differs", "Windows.AutoLogonCount: 1 != 2", "NICs[0].DHCP: false != true"} {
		if !strings.Contains(joined, want) {
			t.Errorf("diff lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "other-secret") || strings.Contains(joined, windowsPassword) {
		t.Errorf("diff shows a password:\n%s", joined)
	}
	l, _ := template.BuildCustomizationSpec("x", linuxSettings(), nil)
	if d := a.Diff(l); len(d) < 3 {
		t.Errorf("windows vs linux: %v", d)
	}
	if l.Linux.Hostname.Fixed != "web01" || l.Linux.Domain != "example.com" || l.DNSServers[0].String() != "10.0.0.2" {
		t.Errorf("linux spec %+v", l.Linux)
	}
}
