package memprovider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/managedvm/managedvm/report"
)

// Preflight reports the requirements computed from the state, in this
// order, then the scripted rows (Options.PreflightChecks,
// SetPreflightChecks):
//
//   - memprovider.zones: at least one availability zone (fail otherwise);
//   - memprovider.zone.networks, per zone: the zone lists at least one VM
//     network (warn otherwise);
//   - memprovider.zone.templates, per zone: at least one template in the
//     zone (fail otherwise: nothing can be provisioned there);
//   - memprovider.template.tools, per template: guest tools installed
//     (warn otherwise: no guest operations, no customization).
//
// It never fails.
func (p *Provider) Preflight(context.Context) (report.Report, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var r report.Report
	zones := slices.Sorted(maps.Keys(p.zones))
	if len(zones) == 0 {
		r.Add(report.Check{
			ID: "memprovider.zones", Name: "At least one availability zone", Status: report.Fail,
			Detail: "no availability zone is defined",
			Fix:    "define an availability zone (memprovider: AddZone)",
		})
	} else {
		r.Add(report.Check{
			ID: "memprovider.zones", Name: "At least one availability zone", Status: report.Pass,
			Detail: fmt.Sprintf("%d zone(s): %s", len(zones), strings.Join(zones, ", ")),
		})
	}
	for _, name := range zones {
		z := p.zones[name]
		c := report.Check{ID: "memprovider.zone.networks", Name: "VM network in the zone", Subject: name}
		if len(z.Networks) > 0 {
			c.Status, c.Detail = report.Pass, strings.Join(z.Networks, ", ")
		} else {
			c.Status = report.Warn
			c.Detail = "the zone lists no VM network: provisioned VMs keep their template's network"
			c.Fix = "list the zone's routable DHCP VLAN networks in Zone.Networks"
		}
		r.Add(c)

		tmpls := p.templatesLocked(name)
		c = report.Check{ID: "memprovider.zone.templates", Name: "VM templates pre-created in the zone", Subject: name}
		if len(tmpls) > 0 {
			names := make([]string, len(tmpls))
			for i, t := range tmpls {
				names[i] = t.Name
			}
			c.Status, c.Detail = report.Pass, strings.Join(names, ", ")
		} else {
			c.Status = report.Fail
			c.Detail = "no template in the zone: nothing can be provisioned there"
			c.Fix = "create a VM template in the zone and mark it as a template (memprovider: AddTemplate)"
		}
		r.Add(c)
	}
	for _, t := range p.templatesLocked("") {
		c := report.Check{ID: "memprovider.template.tools", Name: "Guest tools installed in the template", Subject: t.Zone + "/" + t.Name}
		if t.ToolsInstalled {
			c.Status, c.Detail = report.Pass, "installed"
		} else {
			c.Status = report.Warn
			c.Detail = "guest tools are not installed: guest operations and customization will not work in VMs made from it"
			c.Fix = "install the guest tools (VMware Tools / open-vm-tools) in the template"
		}
		r.Add(c)
	}
	r.Checks = append(r.Checks, p.preflight...) // copied by the portable type
	return r, nil
}
