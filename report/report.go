package report

import (
	"fmt"
	"strings"
)

// Status is a requirement row's outcome.
type Status string

// The statuses, from best to worst.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check is one row of a Report: one requirement and how it stands.
type Check struct {
	// ID is a stable identifier ("vsphere.vcenter", "template.tools").
	ID string
	// Name says what is required, in the reference's terms.
	Name string
	// Status is pass, warn or fail.
	Status Status
	// Detail says what was found.
	Detail string
	// Fix says how to meet the requirement (empty for a pass).
	Fix string
	// Subject names the object checked (a template, datastore, ...).
	Subject string
}

// Report is the result of a preflight or template check.
type Report struct {
	Checks []Check
}

// Add appends a row.
func (r *Report) Add(c Check) { r.Checks = append(r.Checks, c) }

// Merge appends every row of other.
func (r *Report) Merge(other Report) { r.Checks = append(r.Checks, other.Checks...) }

// Status is the worst status of any row (Pass for an empty report).
func (r Report) Status() Status {
	s := Pass
	for _, c := range r.Checks {
		switch {
		case c.Status == Fail:
			return Fail
		case c.Status == Warn:
			s = Warn
		}
	}
	return s
}

// OK reports that no row failed.
func (r Report) OK() bool { return r.Status() != Fail }

// Failures returns the rows that failed.
func (r Report) Failures() []Check { return r.filter(Fail) }

// Warnings returns the rows that warn.
func (r Report) Warnings() []Check { return r.filter(Warn) }

func (r Report) filter(s Status) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == s {
			out = append(out, c)
		}
	}
	return out
}

// String renders the report as one line per row.
func (r Report) String() string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "[%s] %s", strings.ToUpper(string(c.Status)), c.Name)
		if c.Subject != "" {
			fmt.Fprintf(&b, " (%s)", c.Subject)
		}
		if c.Detail != "" {
			fmt.Fprintf(&b, ": %s", c.Detail)
		}
		if c.Fix != "" && c.Status != Pass {
			fmt.Fprintf(&b, " -- fix: %s", c.Fix)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
