package vcd

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/vmware/go-vcloud-director/v2/types/v56"

	"github.com/managedvm/managedvm/report"
)

// Preflight checks the reference's VCD requirements and reports every
// row; see the package documentation ("Preflight") for the rows.
func (p *Provider) Preflight(ctx context.Context) (report.Report, error) {
	var r report.Report
	vs, err := p.c.supportedVersions(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return report.Report{}, err
		}
		r.Add(report.Check{ID: "vcd.endpoint", Name: "VCD reachable by its FQDN", Status: report.Fail,
			Detail: err.Error(), Fix: "check the endpoint URL, DNS, the network path and Options.CACertPEM"})
		return r, nil
	}
	if u, err := url.Parse(p.c.base); err == nil && net.ParseIP(u.Hostname()) != nil {
		r.Add(report.Check{ID: "vcd.endpoint", Name: "VCD reachable by its FQDN", Status: report.Warn, Subject: p.c.base,
			Detail: "reached by IP address", Fix: "use VCD's public FQDN (the name its certificate and its links carry)"})
	} else {
		r.Add(report.Check{ID: "vcd.endpoint", Name: "VCD reachable by its FQDN", Status: report.Pass, Subject: p.c.base})
	}
	switch dep, ok := vs[APIVersion]; {
	case !ok:
		r.Add(report.Check{ID: "vcd.api", Name: "API version " + APIVersion + " supported", Status: report.Fail,
			Detail: "served: " + strings.Join(sortedKeys(vs), ", "), Fix: "upgrade VCD to 10.4 or later"})
	case dep:
		r.Add(report.Check{ID: "vcd.api", Name: "API version " + APIVersion + " supported", Status: report.Warn,
			Detail: "served but deprecated", Fix: "plan the VCD upgrade"})
	default:
		r.Add(report.Check{ID: "vcd.api", Name: "API version " + APIVersion + " supported", Status: report.Pass})
	}
	var cur struct {
		User  struct{ Name string } `json:"user"`
		Org   struct{ Name string } `json:"org"`
		Roles []string              `json:"roles"`
	}
	if err := p.c.getJSON(ctx, "/cloudapi/1.0.0/sessions/current", nil, &cur); err != nil {
		if ctx.Err() != nil {
			return report.Report{}, err
		}
		r.Add(report.Check{ID: "vcd.login", Name: "login to the organization", Status: report.Fail, Detail: err.Error(),
			Fix: "check the organization, user and password or API token"})
		return r, nil
	}
	r.Add(report.Check{ID: "vcd.org", Name: "organization exists and the user logs in", Status: report.Pass, Subject: cur.Org.Name})
	if slices.Contains(cur.Roles, "Organization Administrator") || slices.Contains(cur.Roles, "System Administrator") {
		r.Add(report.Check{ID: "vcd.role", Name: "user has the Organization Administrator role", Status: report.Pass, Subject: cur.User.Name})
	} else {
		r.Add(report.Check{ID: "vcd.role", Name: "user has the Organization Administrator role", Status: report.Fail, Subject: cur.User.Name,
			Detail: "roles: " + strings.Join(cur.Roles, ", "), Fix: "give the user the Organization Administrator role"})
	}
	vdcs, err := p.vdcs(ctx)
	if err != nil {
		return report.Report{}, err
	}
	if len(vdcs) == 0 {
		r.Add(report.Check{ID: "vcd.vdc", Name: "organization VDC exists", Status: report.Fail, Detail: "no VDC visible",
			Fix: "create an organization VDC (Flex or Pay-As-You-Go) for the organization"})
	}
	zones, err := p.Zones(ctx)
	if err != nil {
		return report.Report{}, err
	}
	for _, z := range zones {
		r.Add(report.Check{ID: "vcd.vdc", Name: "organization VDC exists", Status: report.Pass, Subject: z.Name})
		switch np := z.Attributes["networkProvider"]; np {
		case "NSX_T":
			r.Add(report.Check{ID: "vcd.nsx", Name: "NSX backing", Status: report.Pass, Subject: z.Name, Detail: "NSX-T"})
		case "NSX_V":
			r.Add(report.Check{ID: "vcd.nsx", Name: "NSX backing", Status: report.Warn, Subject: z.Name,
				Detail: "NSX-V: VMware no longer develops it, and the edge gateway NAT driver needs NSX-T", Fix: "migrate the VDC to NSX-T"})
		default:
			r.Add(report.Check{ID: "vcd.nsx", Name: "NSX backing", Status: report.Fail, Subject: z.Name,
				Detail: fmt.Sprintf("network provider %q", np), Fix: "back the VDC's network pool with NSX-T"})
		}
		r.Add(rowIf(len(z.Datastores) > 0, report.Check{ID: "vcd.storagePolicy", Name: "VDC has a storage policy", Subject: z.Name,
			Detail: strings.Join(z.Datastores, ", ")}, "no enabled storage policy", "add a storage policy to the VDC"))
		r.Add(rowIf(len(z.Networks) > 0, report.Check{ID: "vcd.networks", Name: "organization networks present", Subject: z.Name,
			Detail: strings.Join(z.Networks, ", ")}, "no organization VDC network", "create a routed organization network on the edge gateway"))
	}
	r.Add(p.networkPoolRow(ctx))
	rows, err := p.edgeRows(ctx)
	if err != nil {
		return report.Report{}, err
	}
	r.Checks = append(r.Checks, rows...)
	rows, err = p.templateRows(ctx)
	if err != nil {
		return report.Report{}, err
	}
	r.Checks = append(r.Checks, rows...)
	return r, nil
}

func rowIf(ok bool, c report.Check, failDetail, fix string) report.Check {
	if ok {
		c.Status = report.Pass
		return c
	}
	c.Status, c.Detail, c.Fix = report.Fail, failDetail, fix
	return c
}

// networkPoolRow: the network pool's kind and capacity are visible to
// the provider only (query type networkPool); a tenant session, or a VCD
// that does not answer that query, gets a warning saying so.
func (p *Provider) networkPoolRow(ctx context.Context) report.Check {
	c := report.Check{ID: "vcd.networkPool", Name: "network pool kind and capacity"}
	var pg struct {
		Records []struct {
			Name     string `xml:"name,attr"`
			PoolType int    `xml:"networkPoolType,attr"`
			IsBusy   bool   `xml:"isBusy,attr"`
		} `xml:"NetworkPoolRecord"`
	}
	err := p.c.getXML(ctx, "/api/query", url.Values{"type": {"networkPool"}, "format": {"records"}}, &pg)
	if err != nil || len(pg.Records) == 0 {
		c.Status = report.Warn
		c.Detail = "not checked: the network pool (its kind, NSX-T Geneve, and its capacity) is visible only to a provider session and was not readable here"
		if err != nil {
			c.Detail += " (" + err.Error() + ")"
		}
		c.Fix = "have the provider confirm the VDC's network pool is NSX-T backed with capacity for one vApp network per VM"
		return c
	}
	names := make([]string, 0, len(pg.Records))
	for _, x := range pg.Records {
		names = append(names, x.Name)
	}
	c.Status, c.Detail = report.Pass, "pools: "+strings.Join(names, ", ")+" (capacity not reported by the query)"
	return c
}

// edgeRows: an NSX-T edge gateway on the provider network with
// allocated IPs free for NAT.
func (p *Provider) edgeRows(ctx context.Context) ([]report.Check, error) {
	var pg struct {
		Values []types.OpenAPIEdgeGateway `json:"values"`
	}
	if err := p.c.getJSON(ctx, "/cloudapi/1.0.0/edgeGateways", url.Values{"pageSize": {"128"}}, &pg); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return []report.Check{{ID: "vcd.edgeGateway", Name: "edge gateway on the provider network", Status: report.Fail,
			Detail: err.Error(), Fix: "create an NSX-T edge gateway for the VDC"}}, nil
	}
	if len(pg.Values) == 0 {
		return []report.Check{{ID: "vcd.edgeGateway", Name: "edge gateway on the provider network", Status: report.Fail,
			Detail: "no edge gateway", Fix: "create an NSX-T edge gateway on the provider (external) network"}}, nil
	}
	var out []report.Check
	for _, g := range pg.Values {
		total, used := 0, 0
		for _, u := range g.EdgeGatewayUplinks {
			for _, s := range u.Subnets.Values {
				if s.TotalIPCount != nil {
					total += *s.TotalIPCount
				}
				used += s.UsedIPCount
			}
		}
		c := report.Check{ID: "vcd.edgeGateway", Name: "edge gateway on the provider network with IPs for NAT", Subject: g.Name,
			Detail: fmt.Sprintf("%d allocated IPs, %d used", total, used)}
		switch {
		case len(g.EdgeGatewayUplinks) == 0:
			c.Status, c.Detail, c.Fix = report.Fail, "no uplink to a provider network", "connect the gateway to the provider network"
		case total-used <= 0:
			c.Status, c.Fix = report.Fail, "allocate more IPs of the provider network to the edge gateway"
		default:
			c.Status = report.Pass
		}
		out = append(out, c)
	}
	return out, nil
}

// templateRows: the catalogs hold single-VM vApp templates with VMware
// Tools.
func (p *Provider) templateRows(ctx context.Context) ([]report.Check, error) {
	var out []report.Check
	multi := map[string]int{}
	err := p.query(ctx, "vAppTemplate", "", func(pg *queryPage) {
		for _, t := range pg.Template {
			multi[t.Name] = t.NumberOfVms
		}
	})
	if err != nil {
		return nil, err
	}
	tools := map[string]string{}
	err = p.query(ctx, "vm", "isVAppTemplate==true", func(pg *queryPage) {
		for _, r := range pg.VM {
			if r.VAppTemplate {
				tools[r.ContainerName] = r.VmToolsStatus
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if len(multi) == 0 {
		return []report.Check{{ID: "vcd.templates", Name: "catalogs hold single-VM templates with VMware Tools", Status: report.Fail,
			Detail: "no vApp template in a visible catalog", Fix: "upload a single-VM vApp template (OVF) to a catalog"}}, nil
	}
	for _, name := range sortedKeys(multi) {
		c := report.Check{ID: "vcd.templates", Name: "catalog template is single-VM with VMware Tools", Subject: name}
		switch ts := tools[name]; {
		case multi[name] != 1:
			c.Status, c.Detail, c.Fix = report.Fail, fmt.Sprintf("%d VMs", multi[name]), "use a vApp template with exactly one VM"
		case ts == "" || ts == "toolsNotInstalled":
			c.Status, c.Detail, c.Fix = report.Fail, "VMware Tools not installed", "install VMware Tools (open-vm-tools) in the template"
		default:
			c.Status = report.Pass
		}
		out = append(out, c)
	}
	return out, nil
}
