package template

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/managedvm/managedvm/report"
)

// DefaultNamingPrefix starts template names in the reference's convention:
// VMT-HCP-PROD-Win2k16x64 and VMT-HCP-QA-Win2k16x64 are the same template
// cloned for the PROD and QA platforms sharing one vCenter Server.
const DefaultNamingPrefix = "VMT-HCP-"

// Naming is the template naming convention for several platforms
// (environments) sharing a vCenter Server: Prefix + ENV + "-" + base name.
// The guest customization spec of a template carries exactly the
// template's name ([SpecNameFor]).
type Naming struct {
	// Prefix precedes the environment; empty means DefaultNamingPrefix.
	Prefix string
}

var envRE = regexp.MustCompile(`^[A-Za-z0-9]{1,16}$`)

func (n Naming) prefix() string {
	if n.Prefix == "" {
		return DefaultNamingPrefix
	}
	return n.Prefix
}

// TemplateName returns the name of base's clone for environment env
// (upper-cased): TemplateName("prod", "Win2k16x64") is
// "VMT-HCP-PROD-Win2k16x64". An environment other than 1 to 16 letters and
// digits, or an empty or unprintable base name, is InvalidArgument.
func (n Naming) TemplateName(env, base string) (string, error) {
	const op = "template.Naming.TemplateName"
	if !envRE.MatchString(env) {
		return "", invalidf(op, "environment %s must be 1 to 16 letters and digits", quoteName(env))
	}
	if base == "" || textProblem(base, false) != "" || strings.ContainsAny(base, `/\%`) {
		return "", invalidf(op, "base name %s is empty or has a character vCenter does not allow", quoteName(base))
	}
	name := n.prefix() + strings.ToUpper(env) + "-" + base
	if len(name) > 80 {
		return "", invalidf(op, "template name %s is longer than 80 characters", quoteName(name))
	}
	return name, nil
}

// Parse splits a template name into its environment (upper case) and base
// name; ok is false when the name does not follow the convention.
func (n Naming) Parse(name string) (env, base string, ok bool) {
	rest, found := strings.CutPrefix(name, n.prefix())
	if !found {
		return "", "", false
	}
	env, base, found = strings.Cut(rest, "-")
	if !found || base == "" || !envRE.MatchString(env) || env != strings.ToUpper(env) {
		return "", "", false
	}
	return env, base, true
}

// SpecNameFor returns the name of the guest customization spec that goes
// with a template: exactly the template's name (the reference: "Create
// VMware Guest Customization with the exact same name as the VM Template
// Name").
func SpecNameFor(templateName string) string { return templateName }

// Check IDs of CheckSharedVCenter.
const (
	CheckSharedTemplate = "vsphere.environments.shared-template"
	CheckEnvPrefix      = "vsphere.environments.prefix"
)

// CheckSharedVCenter checks the templates that several environments (HCP
// platforms) sharing one vCenter Server use, given as environment ->
// template names: a template used by two environments fails
// ("vsphere.environments.shared-template"), and so does a template that
// carries another environment's prefix; one without any prefix warns
// ("vsphere.environments.prefix"). With no problem the report has one
// passing row. Invalid environment names or empty template names are
// InvalidArgument.
func (n Naming) CheckSharedVCenter(usage map[string][]string) (report.Report, error) {
	const op = "template.Naming.CheckSharedVCenter"
	var r report.Report
	users := map[string][]string{} // template -> environments
	envs := make([]string, 0, len(usage))
	for env, templates := range usage {
		if !envRE.MatchString(env) {
			return report.Report{}, invalidf(op, "environment %s must be 1 to 16 letters and digits", quoteName(env))
		}
		for _, t := range templates {
			if t == "" {
				return report.Report{}, invalidf(op, "environment %s lists an empty template name", env)
			}
		}
		envs = append(envs, env)
	}
	sort.Strings(envs)
	for _, env := range envs {
		for _, t := range usage[env] {
			if !slices.Contains(users[t], env) {
				users[t] = append(users[t], env)
			}
		}
	}
	const sharedName = "Environments sharing a vCenter Server do not share VM templates"
	const sharedFix = "If the same vCenter Server is used by more than one HCP, clone the VM template for each HCP " +
		"with a prefix (VMT-HCP-PROD-..., VMT-HCP-QA-...), and clone the guest customization too so its name matches the template"
	templates := make([]string, 0, len(users))
	for t := range users {
		templates = append(templates, t)
	}
	sort.Strings(templates)
	for _, t := range templates {
		if us := users[t]; len(us) > 1 {
			r.Add(report.Check{ID: CheckSharedTemplate, Name: sharedName, Status: report.Fail,
				Detail: "used by " + strings.Join(us, ", "), Fix: sharedFix, Subject: t})
		}
	}
	const prefixName = "Templates carry their environment's prefix"
	for _, env := range envs {
		want := strings.ToUpper(env)
		for _, t := range usage[env] {
			got, _, ok := n.Parse(t)
			switch {
			case !ok:
				r.Add(report.Check{ID: CheckEnvPrefix, Name: prefixName, Status: report.Warn,
					Detail: fmt.Sprintf("%s uses it without an environment prefix (want %s%s-...)", want, n.prefix(), want),
					Fix:    sharedFix, Subject: t})
			case got != want:
				r.Add(report.Check{ID: CheckEnvPrefix, Name: prefixName, Status: report.Fail,
					Detail: fmt.Sprintf("%s uses a template carrying %s's prefix", want, got),
					Fix:    sharedFix, Subject: t})
			}
		}
	}
	if len(r.Checks) == 0 {
		r.Add(report.Check{ID: CheckSharedTemplate, Name: sharedName, Status: report.Pass,
			Detail: fmt.Sprintf("%d environments, %d templates, none shared", len(envs), len(templates))})
	}
	return r, nil
}
