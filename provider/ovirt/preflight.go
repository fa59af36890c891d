package ovirt

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	ovirtsdk "github.com/ovirt/go-ovirt"

	"github.com/managedvm/managedvm/report"
)

// minMajor, minMinor: the oldest engine the driver is tested against
// (4.4: the v4 API with every call the driver makes).
const minMajor, minMinor = 4, 4

// clusterPermits are the permits the driver's operations need on a
// zone's cluster (or what contains it): POST /vms, start/stop, DELETE,
// PUT, NIC changes.
var clusterPermits = []string{"create_vm", "vm_basic_operations", "delete_vm", "edit_vm_properties", "configure_vm_network"}

// Preflight checks the oVirt requirements of every zone: the engine and
// its version, the data center and cluster, the storage domains, VLAN
// networks, the templates and their guest agent, and the account's
// permits for each operation the driver performs.
func (p *Provider) Preflight(ctx context.Context) (report.Report, error) {
	var r report.Report
	body, err := p.c.do(ctx, request{method: http.MethodGet, path: "/"})
	if err != nil {
		if ctx.Err() != nil {
			return report.Report{}, err
		}
		r.Add(report.Check{ID: "ovirt.engine", Name: "oVirt engine reachable", Status: report.Fail,
			Detail: err.Error(), Fix: "check the engine URL, the account and the engine CA (pki-resource)"})
		return r, nil
	}
	api, err := readXML(body, func(rd *ovirtsdk.XMLReader, st *xml.StartElement) (*ovirtsdk.Api, error) {
		return ovirtsdk.XMLApiReadOne(rd, st, "api")
	})
	if err != nil {
		return report.Report{}, err
	}
	r.Add(engineCheck(api))
	t, err := p.topo(ctx, true)
	if err != nil {
		return report.Report{}, err
	}
	if len(t.zones) == 0 {
		r.Add(report.Check{ID: "ovirt.zones", Name: "availability zones (data center + cluster)", Status: report.Fail,
			Detail: "no configured data center and cluster found", Fix: "create the data center and cluster, or fix Options.Zones"})
	}
	if missing := p.missingZones(t); len(missing) > 0 {
		r.Add(report.Check{ID: "ovirt.zones", Name: "configured zones exist", Status: report.Fail,
			Detail: "not found: " + strings.Join(missing, ", "), Fix: "create them or fix Options.Zones"})
	}
	tps, err := p.allTemplates(ctx)
	if err != nil {
		return report.Report{}, err
	}
	vms, err := p.allVMs(ctx)
	if err != nil {
		return report.Report{}, err
	}
	perms, permErr := p.accountPermits(ctx, api)
	for _, z := range t.zones {
		zoneChecks(&r, z)
		templateChecks(&r, t, z, tps, vms)
		r.Add(permitCheck(z, perms, permErr))
	}
	return r, nil
}

func engineCheck(api *ovirtsdk.Api) report.Check {
	c := report.Check{ID: "ovirt.engine", Name: "oVirt engine reachable, version 4.4 or later", Subject: "engine"}
	var major, minor int64
	full := ""
	if pi, ok := api.ProductInfo(); ok {
		if v, ok := pi.Version(); ok {
			major, _ = v.Major()
			minor, _ = v.Minor()
			full, _ = v.FullVersion()
		}
	}
	c.Detail = fmt.Sprintf("engine %d.%d (%s)", major, minor, full)
	if major > minMajor || (major == minMajor && minor >= minMinor) {
		c.Status = report.Pass
	} else {
		c.Status, c.Fix = report.Fail, "upgrade the engine to 4.4 or later"
	}
	return c
}

func (p *Provider) missingZones(t *topology) []string {
	var out []string
	for _, zc := range p.opts.Zones {
		name := zc.Name
		if name == "" {
			name = zc.DataCenter + "/" + zc.Cluster
		}
		if t.byName[name] == nil {
			out = append(out, name)
		}
	}
	return out
}

func zoneChecks(r *report.Report, z *zone) {
	subj := z.cfg.Name
	c := report.Check{ID: "ovirt.datacenter", Name: "data center up", Subject: subj, Detail: "data center " + z.dcName + " is " + z.dcStatus}
	if z.dcStatus == "up" {
		c.Status = report.Pass
	} else {
		c.Status, c.Fix = report.Fail, "activate the data center (a master storage domain must be active)"
	}
	r.Add(c)
	r.Add(report.Check{ID: "ovirt.cluster", Name: "cluster exists in the data center", Subject: subj, Status: report.Pass, Detail: "cluster " + z.clName})

	var active []string
	for _, sd := range z.storage {
		if sd.status == "active" {
			active = append(active, sd.name)
		}
	}
	c = report.Check{ID: "ovirt.storage", Name: "data storage domains attached and active", Subject: subj}
	switch {
	case z.cfg.StorageDomain != "" && z.storageChosen == "":
		c.Status, c.Detail, c.Fix = report.Fail, "storage domain "+z.cfg.StorageDomain+" is not attached to "+z.dcName, "attach it to the data center or fix ZoneConfig.StorageDomain"
	case z.cfg.StorageDomain != "" && !slices.Contains(active, z.cfg.StorageDomain):
		c.Status, c.Detail, c.Fix = report.Fail, "storage domain "+z.cfg.StorageDomain+" is not active", "activate it (Storage > Domains > Activate)"
	case len(active) == 0:
		c.Status, c.Detail, c.Fix = report.Fail, "no active data domain", "attach and activate a data storage domain"
	default:
		c.Status, c.Detail = report.Pass, "active: "+strings.Join(active, ", ")
	}
	r.Add(c)
	if tsd := z.cfg.TemplateStorageDomain; tsd != "" {
		c = report.Check{ID: "ovirt.storage.templates", Name: "template storage domain active", Subject: subj}
		if slices.Contains(active, tsd) {
			c.Status, c.Detail = report.Pass, tsd+" is active"
		} else {
			c.Status, c.Detail, c.Fix = report.Fail, tsd+" is not an active data domain of "+z.dcName, "attach and activate it"
		}
		r.Add(c)
	}

	var tagged, untagged []string
	for _, pr := range z.profiles {
		if pr.vlan > 0 {
			tagged = append(tagged, fmt.Sprintf("%s (VLAN %d)", pr.name, pr.vlan))
		} else if pr.network != "ovirtmgmt" {
			untagged = append(untagged, pr.name)
		}
	}
	c = report.Check{ID: "ovirt.network", Name: "VM networks VLAN-tagged (DHCP on them is the operator's duty)", Subject: subj}
	switch {
	case len(tagged) == 0:
		c.Status, c.Detail, c.Fix = report.Fail, "no VLAN-tagged network", "create a VM network with a VLAN tag in "+z.dcName+" and a DHCP service on it"
	case len(untagged) > 0:
		c.Status, c.Detail, c.Fix = report.Warn, "tagged: "+strings.Join(tagged, ", ")+"; untagged: "+strings.Join(untagged, ", "), "tag the VM networks with their VLAN or do not offer the untagged ones"
	default:
		c.Status, c.Detail = report.Pass, "tagged: "+strings.Join(tagged, ", ")+" (DHCP not checked: it is the operator's)"
	}
	r.Add(c)
}

func templateChecks(r *report.Report, t *topology, z *zone, tps []*ovirtsdk.Template, vms []*ovirtsdk.Vm) {
	n := 0
	for _, tp := range tps {
		tz := templateZone(t, tp)
		if tz == nil || tz.dcID != z.dcID {
			continue
		}
		n++
		name := str(tp.Name())
		st, _ := tp.Status()
		c := report.Check{ID: "ovirt.template", Name: "template present with status ok", Subject: z.cfg.Name + ": " + name, Detail: "status " + string(st)}
		if st == ovirtsdk.TEMPLATESTATUS_OK {
			c.Status = report.Pass
		} else {
			c.Status, c.Fix = report.Fail, "wait for the template's disks to unlock or recreate it"
		}
		r.Add(c)
		made, reported := 0, 0
		for _, v := range vms {
			if vt, ok := v.Template(); ok && str(vt.Id()) == str(tp.Id()) {
				made++
				if _, ok := v.GuestOperatingSystem(); ok {
					reported++
				}
			}
		}
		c = report.Check{ID: "ovirt.template.agent", Name: "guest agent reports in VMs made from the template", Subject: z.cfg.Name + ": " + name}
		switch {
		case made == 0:
			c.Status, c.Detail, c.Fix = report.Warn, "no VM from this template to observe", "provision a test VM and check it reports its IPs (qemu-guest-agent / ovirt-guest-agent)"
		case reported == 0:
			c.Status, c.Detail, c.Fix = report.Warn, fmt.Sprintf("none of %d VMs reports a guest agent", made), "install and enable qemu-guest-agent in the template (running VMs only report)"
		default:
			c.Status, c.Detail = report.Pass, fmt.Sprintf("%d of %d VMs report a guest agent", reported, made)
		}
		r.Add(c)
	}
	if n == 0 {
		r.Add(report.Check{ID: "ovirt.template", Name: "templates present in the zone's data center", Subject: z.cfg.Name,
			Status: report.Fail, Detail: "no template in " + z.dcName, Fix: "import or create a template with cloud-init and the guest agent in " + z.dcName})
	}
}

// grant is one permission of the account: its permits and the object.
type grant struct {
	permits map[string]bool
	objKind string // "", "data_center", "cluster", "storage_domain", ...
	objID   string
}

// accountPermits reads the account's permissions and their roles' permits.
func (p *Provider) accountPermits(ctx context.Context, api *ovirtsdk.Api) ([]grant, error) {
	u, ok := api.AuthenticatedUser()
	if !ok {
		return nil, fmt.Errorf("the engine names no authenticated user")
	}
	perms, err := getMany(ctx, p.c, "/users/"+url.PathEscape(str(u.Id()))+"/permissions", nil, ovirtsdk.XMLPermissionReadMany)
	if err != nil {
		return nil, err
	}
	roleCache := map[string]map[string]bool{}
	var out []grant
	for _, pm := range perms.Slice() {
		role, ok := pm.Role()
		if !ok {
			continue
		}
		rid := str(role.Id())
		permits, ok := roleCache[rid]
		if !ok {
			ps, err := getMany(ctx, p.c, "/roles/"+url.PathEscape(rid)+"/permits", nil, ovirtsdk.XMLPermitReadMany)
			if err != nil {
				return nil, err
			}
			permits = map[string]bool{}
			for _, x := range ps.Slice() {
				permits[str(x.Name())] = true
			}
			roleCache[rid] = permits
		}
		g := grant{permits: permits}
		if o, ok := pm.DataCenter(); ok {
			g.objKind, g.objID = "data_center", str(o.Id())
		} else if o, ok := pm.Cluster(); ok {
			g.objKind, g.objID = "cluster", str(o.Id())
		} else if o, ok := pm.StorageDomain(); ok {
			g.objKind, g.objID = "storage_domain", str(o.Id())
		} else if _, ok := pm.Vm(); ok {
			g.objKind = "vm"
		} else if _, ok := pm.Template(); ok {
			g.objKind = "template"
		}
		out = append(out, g)
	}
	return out, nil
}

// permitCheck checks the permits on the zone's cluster (granted on the
// system, its data center or the cluster) and create_disk on a data
// domain of the zone (granted on the system, the data center or the
// domain).
func permitCheck(z *zone, grants []grant, err error) report.Check {
	c := report.Check{ID: "ovirt.permissions", Name: "account permitted for provision, power, NIC and remove operations", Subject: z.cfg.Name}
	if err != nil {
		c.Status, c.Detail, c.Fix = report.Warn, "permissions not readable: "+err.Error(), "let the account read its own permissions (or check them in the Administration Portal)"
		return c
	}
	has := map[string]bool{}
	disk := false
	for _, g := range grants {
		onCluster := g.objKind == "" || (g.objKind == "data_center" && g.objID == z.dcID) || (g.objKind == "cluster" && g.objID == z.clID)
		if onCluster {
			for _, pm := range clusterPermits {
				if g.permits[pm] {
					has[pm] = true
				}
			}
		}
		if g.permits["create_disk"] {
			if g.objKind == "" || (g.objKind == "data_center" && g.objID == z.dcID) {
				disk = true
			}
			for _, sd := range z.storage {
				if g.objKind == "storage_domain" && g.objID == sd.id {
					disk = true
				}
			}
		}
	}
	var missing []string
	for _, pm := range clusterPermits {
		if !has[pm] {
			missing = append(missing, pm+" on cluster "+z.clName)
		}
	}
	if !disk {
		missing = append(missing, "create_disk on a data domain of "+z.dcName)
	}
	if len(missing) == 0 {
		c.Status, c.Detail = report.Pass, "all operations permitted"
		return c
	}
	c.Status, c.Detail = report.Fail, "missing: "+strings.Join(missing, "; ")
	c.Fix = "grant the account roles with these permits (e.g. VmCreator and UserVmManager on the cluster, DiskCreator on the storage domain)"
	return c
}
