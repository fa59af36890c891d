package vsphere

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
	"github.com/managedvm/managedvm/template"
)

// RequiredPrivileges lists the vCenter privileges the driver's operations
// need, checked by Preflight on the root folder and every zone datacenter.
func RequiredPrivileges() []string {
	return []string{
		"System.View", "System.Read",
		"Datastore.Browse", "Datastore.AllocateSpace",
		"Network.Assign", "Resource.AssignVMToPool",
		"VirtualMachine.Inventory.CreateFromExisting", "VirtualMachine.Inventory.Delete",
		"VirtualMachine.Provisioning.Clone", "VirtualMachine.Provisioning.Customize", "VirtualMachine.Provisioning.ReadCustSpecs",
		"VirtualMachine.Config.CPUCount", "VirtualMachine.Config.Memory", "VirtualMachine.Config.EditDevice", "VirtualMachine.Config.AdvancedConfig",
		"VirtualMachine.Interact.PowerOn", "VirtualMachine.Interact.PowerOff",
		"VirtualMachine.GuestOperations.Query", "VirtualMachine.GuestOperations.Modify", "VirtualMachine.GuestOperations.Execute",
	}
}

// Preflight checks a vSphere availability zone against the provider
// requirements (the HyperCloud guide the template package follows) and the
// service account's privileges; see the package
// documentation for the rows.
func (p *Provider) Preflight(ctx context.Context) (report.Report, error) {
	var r report.Report
	about := p.client.ServiceContent.About
	if about.ApiType == "VirtualCenter" {
		r.Add(report.Check{ID: "vsphere.vcenter", Name: "Connected to a vCenter Server", Status: report.Pass, Detail: about.FullName})
	} else {
		r.Add(report.Check{ID: "vsphere.vcenter", Name: "Connected to a vCenter Server", Status: report.Fail,
			Detail: fmt.Sprintf("the endpoint is %s (%s)", about.ApiType, about.FullName),
			Fix:    "point the provider at the vCenter Server that manages the hosts, not at a standalone ESXi host"})
	}
	topo, err := p.topology(ctx, true)
	if err != nil {
		return r, mapErr("", err, false)
	}
	if len(topo.zones) == 0 {
		r.Add(report.Check{ID: "vsphere.zones", Name: "Availability zones defined", Status: report.Fail, Detail: "no datacenter found",
			Fix: "create a datacenter with a cluster, or configure Options.Zones"})
	}
	for _, z := range topo.zones {
		p.zoneRows(&r, topo, z)
	}
	if err := p.templateRows(ctx, &r); err != nil {
		return r, err
	}
	if err := p.privilegeRows(ctx, &r, topo); err != nil {
		return r, err
	}
	return r, nil
}

func (p *Provider) zoneRows(r *report.Report, topo *topology, z *zoneInfo) {
	subject := "zone " + z.name
	row := func(id, name string, ok bool, detail, fix string) {
		c := report.Check{ID: id, Name: name, Subject: subject, Detail: detail, Status: report.Pass}
		if !ok {
			c.Status, c.Fix = report.Fail, fix
		}
		r.Add(c)
	}
	pz := topo.publicZone(z)
	row("vsphere.zone.datacenters", "Zone datacenters exist", len(z.missingDCs) == 0 && (len(z.dcs) > 0 || len(z.computes) > 0),
		detailList("datacenters", pz.Datacenters, z.missingDCs),
		"create the missing datacenters in vCenter or correct the zone's Datacenters")
	row("vsphere.zone.clusters", "Zone clusters exist", len(z.missingClusters) == 0 && len(z.computes) > 0,
		detailList("clusters", pz.Clusters, z.missingClusters),
		"create a cluster (DRS/HA) in the zone's datacenter or correct the zone's Clusters")
	// Shared storage: every datastore of the zone is mounted by every host
	// of every cluster of the zone.
	var notShared []string
	for _, d := range z.datastores {
		ds := topo.datastores[d]
		for _, c := range z.computes {
			if !topo.sharedBy(ds, topo.computes[c]) {
				notShared = append(notShared, ds.name+" (not on every host of "+topo.computes[c].name+")")
				break
			}
		}
	}
	row("vsphere.zone.datastores", "Zone datastores are shared by all hosts of the cluster",
		len(z.datastores) > 0 && len(notShared) == 0 && len(z.missingDatastores) == 0,
		detailList("shared datastores", pz.Datastores, append(z.missingDatastores, notShared...)),
		"present one or more shared datastores (VMFS, NFS or vSAN) to every host of the zone's clusters")
	if len(z.missingNetworks) > 0 || len(z.pgs) == 0 {
		r.Add(report.Check{ID: "vsphere.zone.networks", Name: "Zone distributed port groups exist", Subject: subject, Status: report.Fail,
			Detail: detailList("distributed port groups", pz.Networks, z.missingNetworks),
			Fix:    "create a distributed switch with port groups for the zone's networks"})
	} else {
		r.Add(report.Check{ID: "vsphere.zone.networks", Name: "Zone distributed port groups exist", Subject: subject, Status: report.Pass,
			Detail: detailList("distributed port groups", pz.Networks, nil)})
	}
	var untagged []string
	for _, g := range z.pgs {
		if pg := topo.pgs[g]; pg.vlan == 0 && !pg.trunk {
			untagged = append(untagged, pg.name)
		}
	}
	c := report.Check{ID: "vsphere.zone.vlans", Name: "Zone port groups are VLAN-backed", Subject: subject, Status: report.Pass, Detail: "every port group has a VLAN ID"}
	if len(z.pgs) == 0 || len(untagged) > 0 {
		c.Status, c.Detail = report.Warn, "port groups without a VLAN: "+strings.Join(untagged, ", ")
		if len(z.pgs) == 0 {
			c.Detail = "no distributed port group"
		}
		c.Fix = "set a VLAN ID (or a VLAN trunk) on each distributed port group the zone uses"
	}
	r.Add(c)
}

func detailList(what string, found, missing []string) string {
	s := what + ": " + strings.Join(found, ", ")
	if len(found) == 0 {
		s = "no " + what
	}
	if len(missing) > 0 {
		s += "; missing or wrong: " + strings.Join(missing, ", ")
	}
	return s
}

// templateRows checks every template with the template package's vSphere
// requirements (marked as a template, tools installed, a customization
// spec named like it, ...).
func (p *Provider) templateRows(ctx context.Context, r *report.Report) error {
	var csm mo.CustomizationSpecManager
	var specNames []string
	if ref := p.client.ServiceContent.CustomizationSpecManager; ref != nil {
		if err := p.retrieveOne(ctx, *ref, []string{"info"}, &csm); err != nil {
			return mapErr("", err, false)
		}
		for _, i := range csm.Info {
			specNames = append(specNames, i.Name)
		}
	}
	vms, err := p.List(ctx, &provider.ListOptions{IncludeTemplates: true})
	if err != nil {
		return err
	}
	n := 0
	for _, vm := range vms {
		if !vm.Template {
			continue
		}
		n++
		installed, current := template.VMwareToolsFacts(vm.Guest.ToolsStatus)
		in := template.Inspection{
			Provider: template.VSphere, Name: vm.Name, Family: vm.Guest.Family, OSName: vm.Guest.OSName,
			IsTemplate: template.Yes, ToolsInstalled: installed, ToolsCurrent: current,
			SpecFound: template.No, SpecNames: specNames,
		}
		for _, name := range p.specNames(vm.Name) {
			if slices.Contains(specNames, name) {
				in.SpecFound = template.Yes
			}
		}
		rep, err := template.Validate(in, &template.ValidateOptions{Environment: p.opts.Environment})
		if err != nil {
			return err
		}
		r.Merge(rep)
	}
	if n == 0 {
		r.Add(report.Check{ID: "vsphere.templates", Name: "VM templates exist", Status: report.Warn, Detail: "no VM is marked as a template",
			Fix: "prepare a VM (VMware Tools installed) and convert it to a template"})
	}
	return nil
}

// privilegeRows asks vCenter (HasPrivilegeOnEntities) whether the service
// account holds every required privilege on the root folder and on each
// zone datacenter.
func (p *Provider) privilegeRows(ctx context.Context, r *report.Report, topo *topology) error {
	var sm mo.SessionManager
	if err := p.retrieveOne(ctx, p.sess.sm, []string{"currentSession"}, &sm); err != nil {
		return mapErr("", err, false)
	}
	if sm.CurrentSession == nil {
		return errs.New(errs.Unauthenticated, "", "no current session")
	}
	entities := []types.ManagedObjectReference{p.client.ServiceContent.RootFolder}
	names := map[types.ManagedObjectReference]string{entities[0]: "root folder"}
	for _, z := range topo.zones {
		for _, d := range z.dcs {
			if _, ok := names[d]; !ok {
				entities = append(entities, d)
				names[d] = "datacenter " + topo.dcs[d].name
			}
		}
	}
	privs := RequiredPrivileges()
	res, err := methods.HasPrivilegeOnEntities(ctx, p.client, &types.HasPrivilegeOnEntities{
		This: *p.client.ServiceContent.AuthorizationManager, Entity: entities, SessionId: sm.CurrentSession.Key, PrivId: privs,
	})
	if err != nil {
		return mapErr("", err, false)
	}
	granted := map[string]bool{}
	var missing []string
	for _, ep := range res.Returnval {
		for _, pa := range ep.PrivAvailability {
			if pa.IsGranted {
				granted[names[ep.Entity]+"/"+pa.PrivId] = true
			}
		}
	}
	for _, e := range entities {
		var lack []string
		for _, id := range privs {
			if !granted[names[e]+"/"+id] {
				lack = append(lack, id)
			}
		}
		if len(lack) > 0 {
			missing = append(missing, names[e]+": "+strings.Join(lack, ", "))
		}
	}
	c := report.Check{ID: "vsphere.privileges", Name: "The service account holds the required privileges", Subject: sm.CurrentSession.UserName,
		Status: report.Pass, Detail: fmt.Sprintf("%d privileges granted on %d entities", len(privs), len(entities))}
	if len(missing) > 0 {
		c.Status = report.Fail
		c.Detail = "missing " + strings.Join(missing, "; ")
		c.Fix = "grant the service account a role with these privileges on the root folder (propagating): " + strings.Join(privs, ", ")
	}
	r.Add(c)
	return nil
}
