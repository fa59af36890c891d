package vcd

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/vmware/go-vcloud-director/v2/types/v56"
)

const statusMixed = 10

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.advance()
	ses, e := s.sessionOf(r)
	if e != nil {
		writeXMLError(w, e)
		return
	}
	if v := acceptVersion(r); v != "" && !versionSupported(v) {
		writeXMLError(w, newErr(406, "NOT_ACCEPTABLE", "The request has invalid accept header: Invalid API version requested"))
		return
	}
	p := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/"), "/")
	segs := strings.Split(p, "/")
	var err *apiError
	switch segs[0] {
	case "org":
		err = s.getOrg(w, r, ses, segs[1:])
	case "vdc":
		err = s.vdcRoutes(w, r, ses, segs[1:])
	case "catalog":
		err = s.getCatalog(w, r, ses, segs[1:])
	case "catalogItem":
		err = s.getCatalogItem(w, r, ses, segs[1:])
	case "vAppTemplate":
		err = s.getTemplate(w, r, ses, segs[1:])
	case "vApp":
		err = s.vappRoutes(w, r, ses, segs[1:])
	case "task":
		err = s.taskRoutes(w, r, ses, segs[1:])
	case "query":
		err = s.query(w, r, ses)
	case "network":
		err = s.getNetwork(w, r, ses, segs[1:])
	default:
		err = newErr(404, "RESOURCE_NOT_FOUND", "The requested resource was not found: %s", r.URL.Path)
	}
	if err != nil {
		writeXMLError(w, err)
	}
}

func notFound(what string) *apiError {
	return newErr(403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "Either you need some or all of the following rights [%s View] to perform operations [%s View] for %s or the target entity is invalid.", what, what, what)
}

func methodNotAllowed() *apiError {
	return newErr(405, "METHOD_NOT_ALLOWED", "HTTP method not allowed")
}

func canSee(ses *session, o *org) bool { return ses.user.role == RoleSysAdmin || ses.org == o }

// seesCatalog: a catalog is visible in its organization, and in every
// organization when it is published (shared).
func seesCatalog(ses *session, c *catalog) bool { return c.shared || canSee(ses, c.org) }

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request, ses *session, segs []string) *apiError {
	st := s.st
	if r.Method != http.MethodGet {
		return methodNotAllowed()
	}
	if len(segs) == 0 {
		out := types.OrgList{}
		for _, o := range st.orgs {
			if canSee(ses, o) {
				out.Org = append(out.Org, &types.Org{HREF: st.href("org/" + o.id), Type: types.MimeOrg, Name: o.name})
			}
		}
		writeXML(w, 200, types.MimeOrgList, "OrgList", out)
		return nil
	}
	for _, o := range st.orgs {
		if o.id != segs[0] || !canSee(ses, o) {
			continue
		}
		out := types.Org{HREF: st.href("org/" + o.id), Type: types.MimeOrg, ID: "urn:vcloud:org:" + o.id,
			Name: o.name, FullName: o.fullName, IsEnabled: true}
		for _, v := range st.vdcs {
			if v.org == o {
				out.Link = append(out.Link, &types.Link{Rel: "down", Type: types.MimeVDC, Name: v.name, HREF: st.href("vdc/" + v.id)})
			}
		}
		for _, c := range st.catalogs {
			if c.org == o {
				out.Link = append(out.Link, &types.Link{Rel: "down", Type: types.MimeCatalog, Name: c.name, HREF: st.href("catalog/" + c.id)})
			}
		}
		writeXML(w, 200, types.MimeOrg, "Org", out)
		return nil
	}
	return notFound("ORG")
}

func (s *Server) vdcRoutes(w http.ResponseWriter, r *http.Request, ses *session, segs []string) *apiError {
	st := s.st
	if len(segs) == 0 {
		return notFound("VDC")
	}
	v := st.vdcByID(segs[0])
	if v == nil || !canSee(ses, v.org) {
		return notFound("VDC")
	}
	rest := strings.Join(segs[1:], "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		writeXML(w, 200, types.MimeVDC, "Vdc", st.vdcXML(v))
		return nil
	case rest == "action/instantiateVAppTemplate" && r.Method == http.MethodPost:
		return s.instantiate(w, r, ses, v)
	}
	return newErr(404, "RESOURCE_NOT_FOUND", "The requested resource was not found: %s", r.URL.Path)
}

func (st *state) vdcXML(v *vdc) *types.Vdc {
	out := &types.Vdc{HREF: st.href("vdc/" + v.id), Type: types.MimeVDC, ID: "urn:vcloud:vdc:" + v.id, Name: v.name,
		Status: 1, AllocationModel: "Flex", IsEnabled: true, NicQuota: 0, NetworkQuota: 1000, VMQuota: 0,
		ComputeCapacity: []*types.ComputeCapacity{{
			CPU:    &types.CapacityWithUsage{Units: "MHz", Allocated: 100000, Limit: 100000},
			Memory: &types.CapacityWithUsage{Units: "MB", Allocated: 262144, Limit: 262144},
		}},
		Link: types.LinkList{
			{Rel: "up", Type: types.MimeOrg, HREF: st.href("org/" + v.org.id)},
			{Rel: "add", Type: types.MimeInstantiateVappTemplateParams, HREF: st.href("vdc/" + v.id + "/action/instantiateVAppTemplate")},
		},
		VdcStorageProfiles: &types.VdcStorageProfiles{},
	}
	re := &types.ResourceEntities{}
	for _, a := range st.vappList {
		if a.vdc == v {
			re.ResourceEntity = append(re.ResourceEntity, &types.ResourceReference{HREF: st.href("vApp/vapp-" + a.id),
				ID: "urn:vcloud:vapp:" + a.id, Type: types.MimeVApp, Name: a.name})
		}
	}
	for _, t := range st.templates() {
		if t.vdc == v {
			re.ResourceEntity = append(re.ResourceEntity, &types.ResourceReference{HREF: st.href("vAppTemplate/vappTemplate-" + t.id),
				ID: "urn:vcloud:vapptemplate:" + t.id, Type: types.MimeVAppTemplate, Name: t.name})
		}
	}
	out.ResourceEntities = []*types.ResourceEntities{re}
	an := &types.AvailableNetworks{}
	for _, n := range v.networks {
		an.Network = append(an.Network, &types.Reference{HREF: st.href("network/" + n.id), ID: "urn:vcloud:network:" + n.id, Type: types.MimeOrgVdcNetwork, Name: n.name})
	}
	out.AvailableNetworks = []*types.AvailableNetworks{an}
	for _, p := range v.profiles {
		out.VdcStorageProfiles.VdcStorageProfile = append(out.VdcStorageProfiles.VdcStorageProfile,
			&types.Reference{HREF: st.href("vdcStorageProfile/" + p.id), ID: "urn:vcloud:vdcstorageProfile:" + p.id, Type: "application/vnd.vmware.vcloud.vdcStorageProfile+xml", Name: p.name})
	}
	return out
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request, ses *session, segs []string) *apiError {
	st := s.st
	if r.Method != http.MethodGet || len(segs) != 1 {
		return methodNotAllowed()
	}
	n := st.networkByID(segs[0])
	if n == nil || !canSee(ses, n.vdc.org) {
		return notFound("NETWORK")
	}
	writeXML(w, 200, types.MimeOrgVdcNetwork, "OrgVdcNetwork", st.networkXML(n))
	return nil
}

func (st *state) networkXML(n *orgNetwork) *types.OrgVDCNetwork {
	out := &types.OrgVDCNetwork{Xmlns: types.XMLNamespaceVCloud, HREF: st.href("network/" + n.id), Type: types.MimeOrgVdcNetwork,
		ID: "urn:vcloud:network:" + n.id, Name: n.name, Status: "1",
		Configuration: &types.NetworkConfiguration{
			FenceMode: types.FenceModeNAT,
			IPScopes: &types.IPScopes{IPScope: []*types.IPScope{{
				IsInherited: false, Gateway: n.gateway.String(), Netmask: netmask(n.prefix), SubnetPrefixLength: itoa(n.prefix.Bits()),
				IsEnabled: true,
				IPRanges:  &types.IPRanges{IPRange: []*types.IPRange{{StartAddress: n.poolStart.String(), EndAddress: n.poolEnd.String()}}},
			}}},
		},
	}
	if n.edge != nil {
		out.EdgeGateway = &types.Reference{ID: n.edge.urn(), Name: n.edge.name, Type: types.MimeEdgeGateway}
	}
	return out
}

func netmask(p netip.Prefix) string {
	bits := p.Bits()
	var m [4]byte
	for i := 0; i < bits && i < 32; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(m).String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

func (s *Server) getCatalog(w http.ResponseWriter, r *http.Request, ses *session, segs []string) *apiError {
	st := s.st
	if r.Method != http.MethodGet || len(segs) != 1 {
		return methodNotAllowed()
	}
	for _, c := range st.catalogs {
		if c.id != segs[0] || !seesCatalog(ses, c) {
			continue
		}
		out := types.Catalog{HREF: st.href("catalog/" + c.id), Type: types.MimeCatalog, ID: "urn:vcloud:catalog:" + c.id,
			Name: c.name, DateCreated: vcdTime(c.created), IsPublished: true,
			Link: types.LinkList{{Rel: "up", Type: types.MimeOrg, HREF: st.href("org/" + c.org.id)}}}
		items := &types.CatalogItems{}
		for _, it := range c.items {
			items.CatalogItem = append(items.CatalogItem, &types.Reference{HREF: st.href("catalogItem/" + it.id),
				ID: it.id, Type: types.MimeCatalogItem, Name: it.name})
		}
		out.CatalogItems = []*types.CatalogItems{items}
		writeXML(w, 200, types.MimeCatalog, "Catalog", out)
		return nil
	}
	return notFound("CATALOG")
}

func (s *Server) getCatalogItem(w http.ResponseWriter, r *http.Request, ses *session, segs []string) *apiError {
	st := s.st
	if r.Method != http.MethodGet || len(segs) != 1 {
		return methodNotAllowed()
	}
	for _, c := range st.catalogs {
		for _, it := range c.items {
			if it.id != segs[0] || !seesCatalog(ses, c) {
				continue
			}
			out := types.CatalogItem{HREF: st.href("catalogItem/" + it.id), Type: types.MimeCatalogItem,
				ID: "urn:vcloud:catalogitem:" + it.id, Name: it.name, DateCreated: vcdTime(it.tpl.created),
				Entity: &types.Entity{HREF: st.href("vAppTemplate/vappTemplate-" + it.tpl.id), Type: types.MimeVAppTemplate, Name: it.tpl.name},
				Link:   types.LinkList{{Rel: "up", Type: types.MimeCatalog, HREF: st.href("catalog/" + c.id)}}}
			writeXML(w, 200, types.MimeCatalogItem, "CatalogItem", out)
			return nil
		}
	}
	return notFound("CATALOG_ITEM")
}

func (st *state) templateVMXML(t *template) *types.VAppTemplate {
	return &types.VAppTemplate{
		HREF: st.href("vAppTemplate/vm-" + t.vmID), Type: "application/vnd.vmware.vcloud.vm+xml",
		ID: "urn:vcloud:vm:" + t.vmID, Name: t.vmName, Status: statusPoweredOff,
		DateCreated: vcdTime(t.created),
		NetworkConnectionSection: &types.NetworkConnectionSection{
			Info: "Specifies the available VM network connections", PrimaryNetworkConnectionIndex: 0,
			NetworkConnection: []*types.NetworkConnection{{Network: "none", NetworkConnectionIndex: 0,
				IPAddressAllocationMode: types.IPAllocationModeNone, IsConnected: false, NetworkAdapterType: "VMXNET3"}},
		},
	}
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request, ses *session, segs []string) *apiError {
	st := s.st
	if r.Method != http.MethodGet || len(segs) != 1 {
		return methodNotAllowed()
	}
	id := segs[0]
	switch {
	case strings.HasPrefix(id, "vappTemplate-"):
		t := st.templateByID(strings.TrimPrefix(id, "vappTemplate-"))
		if t == nil || !seesCatalog(ses, t.item.catalog) {
			return notFound("VAPP_TEMPLATE")
		}
		out := types.VAppTemplate{HREF: st.href("vAppTemplate/vappTemplate-" + t.id), Type: types.MimeVAppTemplate,
			ID: "urn:vcloud:vapptemplate:" + t.id, Name: t.name, Status: statusResolved, DateCreated: vcdTime(t.created),
			Link: types.LinkList{{Rel: "up", Type: types.MimeVDC, HREF: st.href("vdc/" + t.vdc.id)},
				{Rel: "catalogItem", Type: types.MimeCatalogItem, HREF: st.href("catalogItem/" + t.item.id)}},
			Children: &types.VAppTemplateChildren{VM: []*types.VAppTemplate{st.templateVMXML(t)}},
		}
		writeXML(w, 200, types.MimeVAppTemplate, "VAppTemplate", out)
		return nil
	case strings.HasPrefix(id, "vm-"):
		t := st.templateByVMID(strings.TrimPrefix(id, "vm-"))
		if t == nil || !seesCatalog(ses, t.item.catalog) {
			return notFound("VM")
		}
		writeXML(w, 200, "application/vnd.vmware.vcloud.vm+xml", "Vm", st.templateVMXML(t))
		return nil
	}
	return notFound("VAPP_TEMPLATE")
}

func (s *Server) taskRoutes(w http.ResponseWriter, r *http.Request, ses *session, segs []string) *apiError {
	st := s.st
	if len(segs) == 0 {
		return notFound("TASK")
	}
	t := st.tasks[segs[0]]
	if t == nil || (ses.user.role != RoleSysAdmin && t.org != ses.org) {
		return notFound("TASK")
	}
	switch {
	case len(segs) == 1 && r.Method == http.MethodGet:
		writeXML(w, 200, types.MimeTask, "Task", st.taskXML(t))
		return nil
	case len(segs) == 3 && segs[1] == "action" && segs[2] == "cancel" && r.Method == http.MethodPost:
		st.cancel(t)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return methodNotAllowed()
}

func readXML(r *http.Request, v any) *apiError {
	b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return newErr(400, "BAD_REQUEST", "cannot read the request body")
	}
	if len(b) == 0 {
		return nil
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return newErr(400, "BAD_REQUEST", "Bad request: unable to parse the document: %s", err)
	}
	return nil
}

func writeTask(w http.ResponseWriter, st *state, t *task) {
	writeXML(w, http.StatusAccepted, types.MimeTask, "Task", st.taskXML(t))
}

// ---- instantiation ----

func (s *Server) instantiate(w http.ResponseWriter, r *http.Request, ses *session, v *vdc) *apiError {
	st := s.st
	var p types.InstantiateVAppTemplateParams
	if e := readXML(r, &p); e != nil {
		return e
	}
	if p.Name == "" {
		return newErr(400, "BAD_REQUEST", "The name of the vApp is required.")
	}
	if len(p.Name) > 128 {
		return newErr(400, "BAD_REQUEST", "The name of the vApp is longer than 128 characters.")
	}
	if st.vappByName(v, p.Name) != nil {
		return newErr(400, "DUPLICATE_NAME", "The VMware Cloud Director entity %s already exists.", p.Name)
	}
	if p.Source == nil {
		return newErr(400, "BAD_REQUEST", "The source of the instantiation is required.")
	}
	t := st.templateByID(uuidOf(p.Source.HREF))
	if t == nil || !strings.Contains(p.Source.HREF, "vappTemplate-") || !seesCatalog(ses, t.item.catalog) {
		return newErr(400, "INVALID_REFERENCE", "Invalid reference %s: no vApp template.", p.Source.HREF)
	}
	a := &vapp{id: newUUID(), name: p.Name, description: p.Description, vdc: v, status: statusUnresolved,
		created: st.now(), owner: ses.user.name}
	if ip := p.InstantiationParams; ip != nil && ip.NetworkConfigSection != nil {
		for _, nc := range ip.NetworkConfigSection.NetworkConfig {
			vn := &vappNet{id: newUUID(), name: nc.NetworkName}
			if nc.Configuration != nil {
				vn.fence = nc.Configuration.FenceMode
				if pn := nc.Configuration.ParentNetwork; pn != nil {
					on := st.networkByID(uuidOf(pn.HREF))
					if on == nil || on.vdc != v {
						return newErr(400, "INVALID_REFERENCE", "Invalid reference %s: no organization VDC network of VDC %s.", pn.HREF, v.name)
					}
					vn.parent = on
				}
				if nc.Configuration.IPScopes != nil && len(nc.Configuration.IPScopes.IPScope) > 0 {
					vn.scope = nc.Configuration.IPScopes.IPScope[0]
					vn.used = map[netip.Addr]bool{}
				}
			}
			switch vn.fence {
			case types.FenceModeBridged, types.FenceModeNAT:
				if vn.parent == nil {
					return newErr(400, "BAD_REQUEST", "vApp network %s with fence mode %s needs a parent network.", vn.name, vn.fence)
				}
			case types.FenceModeIsolated:
			default:
				return newErr(400, "BAD_REQUEST", "Invalid fence mode %q for vApp network %s.", vn.fence, vn.name)
			}
			if vn.fence == types.FenceModeNAT && vn.scope == nil {
				return newErr(400, "BAD_REQUEST", "A routed (natRouted) vApp network %s needs an IpScope.", vn.name)
			}
			a.nets = append(a.nets, vn)
		}
	}
	m := &vm{id: newUUID(), name: t.vmName, vapp: a, status: statusUnresolved, guestOS: t.guestOS,
		cpus: t.cpus, memoryMB: t.memoryMB, created: st.now(), template: t, network: "none"}
	if len(v.profiles) > 0 {
		m.profile = v.profiles[0]
		for _, pr := range v.profiles {
			if pr.def {
				m.profile = pr
			}
		}
	}
	m.tools = "toolsNotRunning"
	if !t.tools {
		m.tools = "toolsNotInstalled"
	}
	var nic *types.NetworkConnection
	if si := p.SourcedItem; si != nil {
		if si.Source != nil && si.Source.HREF != "" && !strings.HasSuffix(si.Source.HREF, "vm-"+t.vmID) {
			return newErr(400, "INVALID_REFERENCE", "Invalid reference %s: not a VM of the source template.", si.Source.HREF)
		}
		if g := si.VMGeneralParams; g != nil && g.Name != "" {
			m.name = g.Name
			m.customize = g.NeedsCustomization
		}
		if si.StorageProfile != nil && si.StorageProfile.HREF != "" {
			pr := st.profileByID(uuidOf(si.StorageProfile.HREF))
			if pr == nil || pr.vdc != v {
				return newErr(400, "BAD_REQUEST", "The storage policy %s is not available in VDC %s.", si.StorageProfile.HREF, v.name)
			}
			m.profile = pr
		}
		if ip := si.InstantiationParams; ip != nil {
			if gc := ip.GuestCustomizationSection; gc != nil {
				if gc.Enabled != nil && *gc.Enabled {
					m.customize = true
				}
				m.computerName = gc.ComputerName
				if e := customizePassword(m, gc); e != nil {
					return e
				}
				m.script = gc.CustomizationScript
				if len(m.computerName) > 63 {
					return newErr(400, "BAD_REQUEST", "The computer name %s is longer than 63 characters.", m.computerName)
				}
			}
			if ncs := ip.NetworkConnectionSection; ncs != nil {
				for _, c := range ncs.NetworkConnection {
					if c.NetworkConnectionIndex == ncs.PrimaryNetworkConnectionIndex {
						nic = c
					}
				}
			}
		}
	}
	if nic != nil && nic.Network != "none" {
		found := false
		for _, vn := range a.nets {
			if vn.name == nic.Network {
				found = true
			}
		}
		if !found {
			return newErr(400, "BAD_REQUEST", "The VM's NIC refers to network %s, which is not a network of the vApp.", nic.Network)
		}
		m.network = nic.Network
	}
	a.vms = []*vm{m}
	a.busy++
	a.busyOp = "VDC_INSTANTIATE_VAPP"
	st.addVApp(a)
	owner := types.Reference{HREF: st.href("vApp/vapp-" + a.id), ID: "urn:vcloud:vapp:" + a.id, Type: types.MimeVApp, Name: a.name}
	deploy, powerOn := p.Deploy, p.PowerOn
	var tk *task
	tk = st.newTask("vdcInstantiateVapp", "Creating Virtual Application "+a.name+"("+a.id+")", owner, ses,
		func() *apiError {
			a.busy--
			if _, ok := st.vapps[a.id]; !ok {
				return newErr(400, "BAD_REQUEST", "The vApp was deleted during its creation.")
			}
			if nic != nil && nic.Network != "none" && nic.IPAddressAllocationMode != types.IPAllocationModeNone && nic.IPAddressAllocationMode != types.IPAllocationModeDHCP {
				ip, e := st.assignIP(a, m, nic)
				if e != nil {
					setFailed(a)
					return e
				}
				m.ip = ip
			}
			m.status, a.status = statusPoweredOff, statusPoweredOff
			if deploy {
				m.deployed, a.deployed = true, true
				if powerOn {
					m.status, a.status = statusPoweredOn, statusPoweredOn
					if m.tools == "toolsNotRunning" {
						m.tools = "toolsOk"
					}
				}
			}
			st.record(EventVAppCreate, a.name, "urn:vcloud:vapp:"+a.id, v.org, ses.user.name, tk)
			st.record(EventVMCreate, m.name, "urn:vcloud:vm:"+m.id, v.org, ses.user.name, tk)
			return nil
		},
		func() {
			if a.busy > 0 {
				a.busy--
			}
			setFailed(a)
		})
	out := st.vappXML(a)
	out.Tasks = &types.TasksInProgress{Task: []*types.Task{st.taskXML(tk)}}
	writeXML(w, http.StatusCreated, types.MimeVApp, "VApp", out)
	return nil
}

func setFailed(a *vapp) {
	a.status = statusFailedCreation
	for _, m := range a.vms {
		m.status = statusFailedCreation
	}
}

// assignIP gives the VM's primary NIC an address on its vApp network.
func (st *state) assignIP(a *vapp, m *vm, nic *types.NetworkConnection) (string, *apiError) {
	var vn *vappNet
	for _, x := range a.nets {
		if x.name == nic.Network {
			vn = x
		}
	}
	if vn == nil {
		return "", nil
	}
	if nic.IPAddressAllocationMode == types.IPAllocationModeManual {
		if _, err := netip.ParseAddr(nic.IPAddress); err != nil {
			return "", newErr(400, "BAD_REQUEST", "Invalid IP address %q for a MANUAL NIC.", nic.IPAddress)
		}
		return nic.IPAddress, nil
	}
	if vn.scope != nil {
		if vn.scope.IPRanges != nil {
			for _, rg := range vn.scope.IPRanges.IPRange {
				start, err1 := netip.ParseAddr(rg.StartAddress)
				end, err2 := netip.ParseAddr(rg.EndAddress)
				if err1 != nil || err2 != nil {
					continue
				}
				for ip := start; ip.IsValid() && ip.Compare(end) <= 0; ip = ip.Next() {
					if !vn.used[ip] {
						vn.used[ip] = true
						return ip.String(), nil
					}
				}
			}
		}
		return "", newErr(400, "BAD_REQUEST", "No IP addresses are available in the static pool of network %s.", vn.name)
	}
	if vn.parent == nil {
		return "", nil
	}
	ip, ok := vn.parent.allocate()
	if !ok {
		return "", newErr(400, "BAD_REQUEST", "No IP addresses are available in the static pool of network %s.", vn.parent.name)
	}
	return ip.String(), nil
}

// ---- vApps and VMs ----

func (st *state) vmXML(m *vm) *types.Vm {
	a := m.vapp
	out := &types.Vm{
		Xmlns: types.XMLNamespaceVCloud, Ovf: types.XMLNamespaceOVF,
		HREF: st.href("vApp/vm-" + m.id), Type: "application/vnd.vmware.vcloud.vm+xml", ID: "urn:vcloud:vm:" + m.id,
		Name: m.name, Status: m.status, Deployed: m.deployed, NeedsCustomization: m.customize,
		DateCreated: vcdTime(m.created),
		Link: types.LinkList{
			{Rel: "up", Type: types.MimeVApp, HREF: st.href("vApp/vapp-" + a.id)},
			{Rel: "power:powerOn", HREF: st.href("vApp/vm-" + m.id + "/power/action/powerOn")},
			{Rel: "power:powerOff", HREF: st.href("vApp/vm-" + m.id + "/power/action/powerOff")},
			{Rel: "undeploy", Type: types.MimeUndeployVappParams, HREF: st.href("vApp/vm-" + m.id + "/action/undeploy")},
		},
		NetworkConnectionSection: &types.NetworkConnectionSection{
			HREF: st.href("vApp/vm-" + m.id + "/networkConnectionSection/"), Type: types.MimeNetworkConnectionSection,
			Info: "Specifies the available VM network connections", PrimaryNetworkConnectionIndex: 0,
			NetworkConnection: []*types.NetworkConnection{{Network: m.network, NetworkConnectionIndex: 0,
				IPAddress: m.ip, IsConnected: m.network != "none", MACAddress: macOf(m.id),
				IPAddressAllocationMode: allocMode(m), NetworkAdapterType: "VMXNET3"}},
		},
		GuestCustomizationSection: &types.GuestCustomizationSection{
			HREF: st.href("vApp/vm-" + m.id + "/guestCustomizationSection/"), Type: types.MimeGuestCustomizationSection,
			Info: "Specifies Guest OS Customization Settings", Enabled: &m.customize, ComputerName: m.computerName,
			AdminPasswordEnabled: boolp(m.adminPassword != ""), AdminPasswordAuto: boolp(m.passwordAuto),
			AdminPassword:       m.adminPassword, // VCD shows it to a user with the right to view it, as the org admin has
			CustomizationScript: m.script, VirtualMachineID: m.id,
		},
		VmSpecSection: &types.VmSpecSection{
			Info: "The section of VM's specification", OsType: m.guestOS, NumCpus: &m.cpus, NumCoresPerSocket: intp(1),
			MemoryResourceMb: &types.MemoryResourceMb{Configured: int64(m.memoryMB)},
			HardwareVersion:  &types.HardwareVersion{Value: "vmx-19"},
		},
	}
	if m.profile != nil {
		out.StorageProfile = &types.Reference{HREF: st.href("vdcStorageProfile/" + m.profile.id), Name: m.profile.name, Type: "application/vnd.vmware.vcloud.vdcStorageProfile+xml"}
	}
	return out
}

func allocMode(m *vm) string {
	if m.network == "none" {
		return types.IPAllocationModeNone
	}
	return types.IPAllocationModePool
}

func macOf(id string) string {
	return "00:50:56:" + id[0:2] + ":" + id[2:4] + ":" + id[4:6]
}

func boolp(b bool) *bool { return &b }
func intp(n int) *int    { return &n }

func (st *state) vappXML(a *vapp) *types.VApp {
	out := &types.VApp{
		HREF: st.href("vApp/vapp-" + a.id), Type: types.MimeVApp, ID: "urn:vcloud:vapp:" + a.id, Name: a.name,
		Status: a.status, Deployed: a.deployed, Description: a.description, DateCreated: vcdTime(a.created),
		Link: types.LinkList{
			{Rel: "up", Type: types.MimeVDC, HREF: st.href("vdc/" + a.vdc.id)},
			{Rel: "remove", HREF: st.href("vApp/vapp-" + a.id)},
			{Rel: "power:powerOn", HREF: st.href("vApp/vapp-" + a.id + "/power/action/powerOn")},
			{Rel: "undeploy", Type: types.MimeUndeployVappParams, HREF: st.href("vApp/vapp-" + a.id + "/action/undeploy")},
		},
		NetworkConfigSection: st.netConfigXML(a),
		Owner:                &types.Owner{User: &types.Reference{Name: a.owner, Type: "application/vnd.vmware.admin.user+xml"}},
	}
	if len(a.vms) > 0 {
		out.Children = &types.VAppChildren{}
		for _, m := range a.vms {
			out.Children.VM = append(out.Children.VM, st.vmXML(m))
		}
	}
	return out
}

func (st *state) netConfigXML(a *vapp) *types.NetworkConfigSection {
	ncs := &types.NetworkConfigSection{HREF: st.href("vApp/vapp-" + a.id + "/networkConfigSection/"),
		Type: types.MimeNetworkConfigSection, Info: "The configuration parameters for logical networks"}
	for _, vn := range a.nets {
		c := &types.NetworkConfiguration{FenceMode: vn.fence}
		if vn.parent != nil {
			c.ParentNetwork = &types.Reference{HREF: st.href("network/" + vn.parent.id), ID: vn.parent.id, Name: vn.parent.name}
		}
		if vn.scope != nil {
			c.IPScopes = &types.IPScopes{IPScope: []*types.IPScope{vn.scope}}
		}
		ncs.NetworkConfig = append(ncs.NetworkConfig, types.VAppNetworkConfiguration{
			HREF: st.href("admin/network/" + vn.id), ID: vn.id, NetworkName: vn.name, Configuration: c, IsDeployed: a.deployed,
		})
	}
	return ncs
}

// aggregate sets a vApp's status and deployed flag from its VMs.
func aggregate(a *vapp) {
	if len(a.vms) == 0 {
		a.status, a.deployed = statusResolved, false
		return
	}
	on, off, dep := 0, 0, false
	for _, m := range a.vms {
		switch m.status {
		case statusPoweredOn:
			on++
		case statusPoweredOff:
			off++
		}
		dep = dep || m.deployed
	}
	switch {
	case on == len(a.vms):
		a.status = statusPoweredOn
	case off == len(a.vms):
		a.status = statusPoweredOff
	default:
		a.status = statusMixed
	}
	a.deployed = dep
}

func (s *Server) vappRoutes(w http.ResponseWriter, r *http.Request, ses *session, segs []string) *apiError {
	st := s.st
	if len(segs) == 0 {
		return notFound("VAPP")
	}
	id := segs[0]
	rest := strings.Join(segs[1:], "/")
	switch {
	case strings.HasPrefix(id, "vapp-"):
		a := st.vapps[strings.TrimPrefix(id, "vapp-")]
		if a == nil || !canSee(ses, a.vdc.org) {
			return notFound("VAPP")
		}
		switch {
		case rest == "" && r.Method == http.MethodGet:
			writeXML(w, 200, types.MimeVApp, "VApp", st.vappXML(a))
			return nil
		case rest == "" && r.Method == http.MethodDelete:
			return s.deleteVApp(w, ses, a)
		case rest == "networkConfigSection" && r.Method == http.MethodGet:
			writeXML(w, 200, types.MimeNetworkConfigSection, "NetworkConfigSection", st.netConfigXML(a))
			return nil
		case strings.HasPrefix(rest, "power/action/") || strings.HasPrefix(rest, "action/"):
			if r.Method != http.MethodPost {
				return methodNotAllowed()
			}
			return s.power(w, r, ses, a, a.vms, path2action(rest))
		}
		return newErr(404, "RESOURCE_NOT_FOUND", "The requested resource was not found: %s", r.URL.Path)
	case strings.HasPrefix(id, "vm-"):
		m := st.vms[strings.TrimPrefix(id, "vm-")]
		if m == nil || !canSee(ses, m.vapp.vdc.org) {
			return notFound("VM")
		}
		switch {
		case rest == "" && r.Method == http.MethodGet:
			writeXML(w, 200, "application/vnd.vmware.vcloud.vm+xml", "Vm", st.vmXML(m))
			return nil
		case rest == "" && r.Method == http.MethodDelete:
			return s.deleteVM(w, ses, m)
		case rest == "guestCustomizationSection" && r.Method == http.MethodGet:
			writeXML(w, 200, types.MimeGuestCustomizationSection, "GuestCustomizationSection", st.vmXML(m).GuestCustomizationSection)
			return nil
		case rest == "guestCustomizationSection" && r.Method == http.MethodPut:
			var gc types.GuestCustomizationSection
			if e := readXML(r, &gc); e != nil {
				return e
			}
			return s.reconfigure(w, ses, m, nil, &gc)
		case rest == "networkConnectionSection" && r.Method == http.MethodGet:
			writeXML(w, 200, types.MimeNetworkConnectionSection, "NetworkConnectionSection", st.vmXML(m).NetworkConnectionSection)
			return nil
		case rest == "action/reconfigureVm" && r.Method == http.MethodPost:
			var body types.Vm
			if e := readXML(r, &body); e != nil {
				return e
			}
			return s.reconfigure(w, ses, m, &body, body.GuestCustomizationSection)
		case strings.HasPrefix(rest, "power/action/") || strings.HasPrefix(rest, "action/"):
			if r.Method != http.MethodPost {
				return methodNotAllowed()
			}
			return s.power(w, r, ses, m.vapp, []*vm{m}, path2action(rest))
		}
		return newErr(404, "RESOURCE_NOT_FOUND", "The requested resource was not found: %s", r.URL.Path)
	}
	return notFound("VAPP")
}

func path2action(rest string) string {
	return rest[strings.LastIndexByte(rest, '/')+1:]
}

// busyErr is VCD's answer to a change of an entity while a task of it
// runs; it names the running operation.
func busyErr(a *vapp) *apiError {
	return newErr(400, "BUSY_ENTITY", "The entity Ref: com.vmware.vcloud.entity.vapp:%s is busy completing an operation %s.", a.id, a.busyOp)
}

// power runs deploy, undeploy, powerOn, powerOff, shutdown, reset,
// reboot or suspend on vms (all the vApp's, or one VM).
func (s *Server) power(w http.ResponseWriter, r *http.Request, ses *session, a *vapp, vms []*vm, action string) *apiError {
	st := s.st
	if a.busy > 0 {
		return busyErr(a)
	}
	if a.status == statusFailedCreation || a.status == statusUnresolved {
		return newErr(400, "BAD_REQUEST", "The requested operation could not be executed since vApp %q is not resolved.", a.name)
	}
	running := false
	for _, m := range vms {
		running = running || m.status == statusPoweredOn
	}
	deployPowerOn := true
	undeployAction := "powerOff"
	switch action {
	case "deploy":
		var p types.DeployVAppParams
		p.PowerOn = true
		if e := readXML(r, &p); e != nil {
			return e
		}
		deployPowerOn = p.PowerOn
	case "undeploy":
		var p types.UndeployVAppParams
		if e := readXML(r, &p); e != nil {
			return e
		}
		if p.UndeployPowerAction != "" {
			undeployAction = p.UndeployPowerAction
		}
		switch undeployAction {
		case "powerOff", "suspend", "shutdown", "force", "default":
		default:
			return newErr(400, "BAD_REQUEST", "Invalid UndeployPowerAction %q.", undeployAction)
		}
	case "powerOn":
	case "powerOff", "shutdown", "reset", "reboot", "suspend":
		if !running {
			return newErr(400, "BAD_REQUEST", "The requested operation could not be executed since vApp %q is not running.", a.name)
		}
		if action == "shutdown" || action == "reboot" {
			for _, m := range vms {
				if m.tools != "toolsOk" {
					return newErr(400, "BAD_REQUEST", "The requested operation could not be executed because VMware Tools is not running on VM %q.", m.name)
				}
			}
		}
	default:
		return newErr(404, "RESOURCE_NOT_FOUND", "The requested resource was not found: %s", r.URL.Path)
	}
	var owner types.Reference
	if strings.Contains(r.URL.Path, "/vm-") {
		owner = types.Reference{HREF: st.href("vApp/vm-" + vms[0].id), ID: "urn:vcloud:vm:" + vms[0].id, Type: "application/vnd.vmware.vcloud.vm+xml", Name: vms[0].name}
	} else {
		owner = types.Reference{HREF: st.href("vApp/vapp-" + a.id), ID: "urn:vcloud:vapp:" + a.id, Type: types.MimeVApp, Name: a.name}
	}
	opName := map[string]string{"deploy": "vappDeploy", "undeploy": "vappUndeployPowerOff", "powerOn": "vappPowerOn",
		"powerOff": "vappPowerOff", "shutdown": "vappShutdownGuest", "reset": "vappReset", "reboot": "vappRebootGuest",
		"suspend": "vappSuspend"}[action]
	a.busy++
	a.busyOp = map[string]string{"deploy": "VAPP_DEPLOY", "undeploy": "VAPP_UNDEPLOY", "powerOn": "VAPP_POWER_ON",
		"powerOff": "VAPP_POWER_OFF", "shutdown": "VAPP_SHUTDOWN", "reset": "VAPP_RESET", "reboot": "VAPP_REBOOT",
		"suspend": "VAPP_SUSPEND"}[action]
	var tk *task
	tk = st.newTask(opName, action+" "+a.name, owner, ses, func() *apiError {
		a.busy--
		for _, m := range vms {
			if m.deleted {
				continue
			}
			was := m.status
			switch action {
			case "deploy":
				m.deployed = true
				if deployPowerOn {
					m.status = statusPoweredOn
				}
			case "powerOn":
				m.deployed = true
				m.status = statusPoweredOn
			case "undeploy":
				m.deployed = false
				if undeployAction == "suspend" {
					m.status = statusSuspended
				} else {
					m.status = statusPoweredOff
				}
			case "powerOff", "shutdown":
				m.status = statusPoweredOff
			case "suspend":
				m.status = statusSuspended
			}
			if m.status == statusPoweredOn && m.tools == "toolsNotRunning" {
				m.tools = "toolsOk"
			}
			if m.status != statusPoweredOn && m.tools == "toolsOk" {
				m.tools = "toolsNotRunning"
			}
			switch {
			case was != statusPoweredOn && m.status == statusPoweredOn:
				st.record(EventVMDeploy, m.name, "urn:vcloud:vm:"+m.id, a.vdc.org, ses.user.name, tk)
			case was == statusPoweredOn && m.status != statusPoweredOn:
				st.record(EventVMUndeploy, m.name, "urn:vcloud:vm:"+m.id, a.vdc.org, ses.user.name, tk)
			}
		}
		aggregate(a)
		return nil
	}, func() { a.busy-- })
	writeTask(w, st, tk)
	return nil
}

func stopErr(a *vapp) *apiError {
	return newErr(400, "BAD_REQUEST", "The requested operation could not be executed on vApp %q. Stop the vApp and try again.", a.name)
}

func (s *Server) deleteVApp(w http.ResponseWriter, ses *session, a *vapp) *apiError {
	st := s.st
	if a.busy > 0 {
		return busyErr(a)
	}
	if a.deployed {
		return stopErr(a)
	}
	for _, m := range a.vms {
		if m.deployed || m.status == statusPoweredOn {
			return stopErr(a)
		}
	}
	a.busy++
	a.busyOp = "VDC_DELETE_VAPP"
	owner := types.Reference{HREF: st.href("vApp/vapp-" + a.id), ID: "urn:vcloud:vapp:" + a.id, Type: types.MimeVApp, Name: a.name}
	var tk *task
	tk = st.newTask("vdcDeleteVapp", "Deleting Virtual Application "+a.name+"("+a.id+")", owner, ses, func() *apiError {
		a.busy--
		for _, m := range a.vms {
			st.record(EventVMDelete, m.name, "urn:vcloud:vm:"+m.id, a.vdc.org, ses.user.name, tk)
		}
		st.record(EventVAppDelete, a.name, "urn:vcloud:vapp:"+a.id, a.vdc.org, ses.user.name, tk)
		st.removeVApp(a)
		return nil
	}, func() { a.busy-- })
	writeTask(w, st, tk)
	return nil
}

func (s *Server) deleteVM(w http.ResponseWriter, ses *session, m *vm) *apiError {
	st := s.st
	a := m.vapp
	if a.busy > 0 {
		return busyErr(a)
	}
	if m.deployed || m.status == statusPoweredOn {
		return stopErr(a)
	}
	a.busy++
	a.busyOp = "VAPP_DELETE_VM"
	owner := types.Reference{HREF: st.href("vApp/vm-" + m.id), ID: "urn:vcloud:vm:" + m.id, Type: "application/vnd.vmware.vcloud.vm+xml", Name: m.name}
	var tk *task
	tk = st.newTask("vappDeleteVm", "Deleting Virtual Machine "+m.name, owner, ses, func() *apiError {
		a.busy--
		st.record(EventVMDelete, m.name, "urn:vcloud:vm:"+m.id, a.vdc.org, ses.user.name, tk)
		st.removeVM(m)
		aggregate(a)
		return nil
	}, func() { a.busy-- })
	writeTask(w, st, tk)
	return nil
}

func (st *state) removeVM(m *vm) {
	a := m.vapp
	for i, x := range a.vms {
		if x == m {
			a.vms = append(a.vms[:i:i], a.vms[i+1:]...)
		}
	}
	st.releaseIP(m)
	delete(st.vms, m.id)
	m.deleted = true
	for i, x := range st.vmList {
		if x == m {
			st.vmList = append(st.vmList[:i:i], st.vmList[i+1:]...)
			break
		}
	}
}

// reconfigure applies a Vm body (name, VmSpecSection CPUs/memory) and/or
// a guest customization section.
func (s *Server) reconfigure(w http.ResponseWriter, ses *session, m *vm, body *types.Vm, gc *types.GuestCustomizationSection) *apiError {
	st := s.st
	a := m.vapp
	if a.busy > 0 {
		return busyErr(a)
	}
	cpus, mem, name := m.cpus, m.memoryMB, m.name
	if body != nil {
		if body.Name != "" {
			name = body.Name
		}
		if vs := body.VmSpecSection; vs != nil {
			if vs.NumCpus != nil {
				cpus = *vs.NumCpus
			}
			if vs.MemoryResourceMb != nil && vs.MemoryResourceMb.Configured > 0 {
				mem = int(vs.MemoryResourceMb.Configured)
			}
		}
	}
	if cpus < 1 || cpus > 128 || mem < 4 || mem%4 != 0 {
		return newErr(400, "BAD_REQUEST", "Invalid virtual hardware: %d CPUs, %d MB of memory.", cpus, mem)
	}
	if (cpus != m.cpus || mem != m.memoryMB) && m.status == statusPoweredOn {
		return newErr(400, "BAD_REQUEST", "The requested operation could not be executed since VM %q is powered on and hot add is not enabled.", m.name)
	}
	a.busy++
	a.busyOp = "VAPP_UPDATE_VM"
	owner := types.Reference{HREF: st.href("vApp/vm-" + m.id), ID: "urn:vcloud:vm:" + m.id, Type: "application/vnd.vmware.vcloud.vm+xml", Name: m.name}
	var tk *task
	tk = st.newTask("vappUpdateVm", "Updating Virtual Machine "+m.name, owner, ses, func() *apiError {
		a.busy--
		m.cpus, m.memoryMB, m.name = cpus, mem, name
		if gc != nil {
			if gc.Enabled != nil {
				m.customize = *gc.Enabled
			}
			if gc.ComputerName != "" {
				m.computerName = gc.ComputerName
			}
			if gc.AdminPassword != "" || gc.AdminPasswordAuto != nil {
				if e := customizePassword(m, gc); e != nil {
					return e
				}
			}
			if gc.CustomizationScript != "" {
				m.script = gc.CustomizationScript
			}
		}
		st.record(EventVMModify, m.name, "urn:vcloud:vm:"+m.id, a.vdc.org, ses.user.name, tk)
		return nil
	}, func() { a.busy-- })
	writeTask(w, st, tk)
	return nil
}

// customizePassword applies a GuestCustomizationSection's password
// settings as VCD does: AdminPasswordAuto generates one (a given
// AdminPassword beside it is refused), otherwise AdminPassword is the
// password. The refusal never echoes the password.
func customizePassword(m *vm, gc *types.GuestCustomizationSection) *apiError {
	auto := gc.AdminPasswordAuto != nil && *gc.AdminPasswordAuto
	switch {
	case auto && gc.AdminPassword != "":
		return newErr(400, "BAD_REQUEST", "An administrator password cannot be given when it is generated automatically (AdminPasswordAuto).")
	case auto:
		m.adminPassword, m.passwordAuto = "auto-"+newUUID(), true
	default:
		m.adminPassword, m.passwordAuto = gc.AdminPassword, false
	}
	return nil
}
