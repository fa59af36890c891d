package report_test

import (
	"strings"
	"testing"

	"github.com/managedvm/managedvm/report"
)

func TestReportStatus(t *testing.T) {
	pass := report.Check{ID: "a", Name: "A", Status: report.Pass}
	warn := report.Check{ID: "b", Name: "B", Status: report.Warn, Fix: "fix b"}
	fail := report.Check{ID: "c", Name: "C", Status: report.Fail, Fix: "fix c"}
	cases := []struct {
		name   string
		checks []report.Check
		want   report.Status
	}{
		{"empty", nil, report.Pass},
		{"all pass", []report.Check{pass, pass}, report.Pass},
		{"warn", []report.Check{pass, warn}, report.Warn},
		{"fail after warn", []report.Check{warn, fail, pass}, report.Fail},
		{"fail first", []report.Check{fail, warn}, report.Fail},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := report.Report{Checks: c.checks}
			if got := r.Status(); got != c.want {
				t.Errorf("Status() = %q, want %q", got, c.want)
			}
			if got, want := r.OK(), c.want != report.Fail; got != want {
				t.Errorf("OK() = %v, want %v", got, want)
			}
		})
	}
}

func TestReportFilters(t *testing.T) {
	var r report.Report
	r.Add(report.Check{ID: "p", Status: report.Pass})
	r.Add(report.Check{ID: "f1", Status: report.Fail})
	r.Merge(report.Report{Checks: []report.Check{
		{ID: "w", Status: report.Warn},
		{ID: "f2", Status: report.Fail},
	}})
	ids := func(cs []report.Check) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.ID)
		}
		return strings.Join(s, ",")
	}
	if got := ids(r.Checks); got != "p,f1,w,f2" {
		t.Errorf("Checks = %s, want p,f1,w,f2", got)
	}
	if got := ids(r.Failures()); got != "f1,f2" {
		t.Errorf("Failures() = %s, want f1,f2", got)
	}
	if got := ids(r.Warnings()); got != "w" {
		t.Errorf("Warnings() = %s, want w", got)
	}
	if got := (report.Report{}).Failures(); got != nil {
		t.Errorf("Failures() of an empty report = %v, want nil", got)
	}
}

func TestReportString(t *testing.T) {
	r := report.Report{Checks: []report.Check{
		{ID: "z", Name: "Availability zone", Status: report.Pass, Detail: "1 zone", Fix: "never shown for a pass"},
		{ID: "t", Name: "Guest tools in template", Status: report.Warn, Subject: "debian-12", Detail: "not installed", Fix: "install open-vm-tools"},
		{ID: "p", Name: "Privilege", Status: report.Fail},
	}}
	want := "[PASS] Availability zone: 1 zone\n" +
		"[WARN] Guest tools in template (debian-12): not installed -- fix: install open-vm-tools\n" +
		"[FAIL] Privilege\n"
	if got := r.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	if got := (report.Report{}).String(); got != "" {
		t.Errorf("String() of an empty report = %q", got)
	}
}
