package report_test

import (
	"fmt"

	"github.com/managedvm/managedvm/report"
)

func ExampleReport() {
	var r report.Report
	r.Add(report.Check{ID: "zone", Name: "Availability zone defined", Status: report.Pass, Subject: "zone-a"})
	r.Add(report.Check{
		ID: "template.tools", Name: "Guest tools installed in the template", Status: report.Warn,
		Subject: "debian-12", Detail: "VMware Tools not installed", Fix: "install open-vm-tools in the template",
	})
	fmt.Print(r)
	fmt.Println("status:", r.Status(), "ok:", r.OK())
	// Output:
	// [PASS] Availability zone defined (zone-a)
	// [WARN] Guest tools installed in the template (debian-12): VMware Tools not installed -- fix: install open-vm-tools in the template
	// status: warn ok: true
}
