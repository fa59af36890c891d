package vcd

import (
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/go-vcloud-director/v2/types/v56"
)

// queryParams parses the raw query string. The filter is split before its
// values are decoded when filterEncoded=true (the SDK escapes each value
// and leaves the separators raw); otherwise it is decoded first.
func queryParams(raw string) (map[string]string, string, bool) {
	out := map[string]string{}
	var rawFilter string
	encoded := false
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, _ = url.QueryUnescape(k)
		if k == "filter" {
			rawFilter = v
			continue
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			dv = v
		}
		out[k] = dv
		if k == "filterEncoded" && dv == "true" {
			encoded = true
		}
	}
	return out, rawFilter, encoded
}

// attrIndex caches the xml attribute fields of record types.
var attrIndex sync.Map // reflect.Type -> map[string]int

func attrFields(t reflect.Type) map[string]int {
	if m, ok := attrIndex.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("xml")
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "attr") && name != "" {
			m[name] = i
		}
	}
	attrIndex.Store(t, m)
	return m
}

// attrGetter reads a record's XML attribute by its name.
func attrGetter(rec any) func(string) (string, bool) {
	v := reflect.ValueOf(rec).Elem()
	idx := attrFields(v.Type())
	return func(k string) (string, bool) {
		i, ok := idx[k]
		if !ok {
			return "", false
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			return f.String(), true
		case reflect.Bool:
			return strconv.FormatBool(f.Bool()), true
		case reflect.Int, reflect.Int64:
			return strconv.FormatInt(f.Int(), 10), true
		case reflect.Uint64:
			return strconv.FormatUint(f.Uint(), 10), true
		case reflect.Float64:
			return strconv.FormatFloat(f.Float(), 'f', -1, 64), true
		case reflect.Pointer:
			if f.IsNil() {
				return "", false
			}
			if f.Elem().Kind() == reflect.Int {
				return strconv.FormatInt(f.Elem().Int(), 10), true
			}
		}
		return "", false
	}
}

var adminQueryTypes = map[string]string{
	"adminVM": "vm", "adminVApp": "vApp", "adminVAppTemplate": "vAppTemplate", "adminCatalog": "catalog",
	"adminCatalogItem": "catalogItem", "adminOrgVdc": "orgVdc", "adminOrgVdcStorageProfile": "orgVdcStorageProfile",
	"adminVAppNetwork": "vAppNetwork",
}

func (s *Server) query(w http.ResponseWriter, r *http.Request, ses *session) *apiError {
	st := s.st
	if r.Method != http.MethodGet {
		return methodNotAllowed()
	}
	q, rawFilter, encoded := queryParams(r.URL.RawQuery)
	qtype := q["type"]
	if qtype == "" {
		return newErr(400, "BAD_REQUEST", "The query type is required.")
	}
	if f := q["format"]; f != "" && f != "records" && f != "idrecords" {
		return newErr(400, "BAD_REQUEST", "Query format %q is not supported by this server.", f)
	}
	base := qtype
	admin := false
	if b, ok := adminQueryTypes[qtype]; ok {
		base, admin = b, true
		if ses.user.role != RoleSysAdmin {
			return newErr(403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "Access is forbidden to query type %s.", qtype)
		}
	}
	var filt filter
	if rawFilter != "" {
		var err error
		if encoded {
			filt, err = parseFilter(rawFilter, url.QueryUnescape)
		} else {
			var dec string
			dec, err = url.QueryUnescape(rawFilter)
			if err == nil {
				filt, err = parseFilter(dec, nil)
			}
		}
		if err != nil {
			return newErr(400, "BAD_REQUEST", "Invalid filter expression: %s", err)
		}
	}
	recs := st.records(base, admin, ses)
	if recs == nil {
		return newErr(400, "BAD_REQUEST", "The query type %q is not supported by this server.", qtype)
	}
	items := recs.items
	if filt != nil {
		kept := items[:0:0]
		for _, it := range items {
			if filt.match(attrGetter(it)) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	sortKey, desc := q["sortAsc"], false
	if v := q["sortDesc"]; v != "" {
		sortKey, desc = v, true
	}
	if sortKey != "" {
		keys := make([]string, len(items))
		for i, it := range items {
			keys[i], _ = attrGetter(it)(sortKey)
		}
		idx := make([]int, len(items))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool {
			c := compareValues(keys[idx[a]], keys[idx[b]])
			if desc {
				return c > 0
			}
			return c < 0
		})
		sorted := make([]any, len(items))
		for i, j := range idx {
			sorted[i] = items[j]
		}
		items = sorted
	}
	pageNo, pageSize := 1, 25
	if v := q["page"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return newErr(400, "BAD_REQUEST", "Invalid page number %q.", v)
		}
		pageNo = n
	}
	if v := q["pageSize"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return newErr(400, "BAD_REQUEST", "Invalid page size %q.", v)
		}
		pageSize = n
	}
	pageSize = min(pageSize, s.opts.MaxPageSize)
	total := len(items)
	pages := max((total+pageSize-1)/pageSize, 1)
	if pageNo > pages {
		return newErr(400, "BAD_REQUEST", "Page number %d is out of range: the result has %d page(s).", pageNo, pages)
	}
	from := (pageNo - 1) * pageSize
	to := min(from+pageSize, total)
	out := &types.QueryResultRecordsType{
		HREF: s.ts.URL + r.URL.RequestURI(), Type: types.MimeQueryRecords, Name: qtype,
		Page: pageNo, PageSize: pageSize, Total: float64(total),
	}
	link := func(rel string, p int) {
		v := url.Values{}
		for k, x := range q {
			v.Set(k, x)
		}
		v.Set("page", strconv.Itoa(p))
		v.Set("pageSize", strconv.Itoa(pageSize))
		href := st.href("query") + "?" + v.Encode()
		if rawFilter != "" {
			href += "&filter=" + rawFilter
		}
		out.Link = append(out.Link, &types.Link{Rel: rel, Type: types.MimeQueryRecords, HREF: href})
	}
	if pageNo < pages {
		link("nextPage", pageNo+1)
		link("lastPage", pages)
	}
	if pageNo > 1 {
		link("previousPage", pageNo-1)
		link("firstPage", 1)
	}
	recs.put(out, items[from:to])
	writeXML(w, 200, types.MimeQueryRecords, "QueryResultRecords", out)
	return nil
}

type recordSet struct {
	items []any
	put   func(out *types.QueryResultRecordsType, page []any)
}

func putAs[T any](dst *[]*T) func(*types.QueryResultRecordsType, []any) {
	return func(_ *types.QueryResultRecordsType, page []any) {
		s := make([]*T, len(page))
		for i, p := range page {
			s[i] = p.(*T)
		}
		*dst = s
	}
}

func (st *state) records(base string, admin bool, ses *session) *recordSet {
	rs := &recordSet{}
	switch base {
	case "vm":
		for _, m := range st.vmList {
			if canSee(ses, m.vapp.vdc.org) {
				rs.items = append(rs.items, st.vmRecord(m))
			}
		}
		for _, t := range st.templates() {
			if seesCatalog(ses, t.item.catalog) {
				rs.items = append(rs.items, st.templateVMRecord(t))
			}
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) {
			if admin {
				putAs(&out.AdminVMRecord)(out, page)
			} else {
				putAs(&out.VMRecord)(out, page)
			}
		}
	case "vApp":
		for _, a := range st.vappList {
			if canSee(ses, a.vdc.org) {
				rs.items = append(rs.items, st.vappRecord(a))
			}
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) {
			if admin {
				putAs(&out.AdminVAppRecord)(out, page)
			} else {
				putAs(&out.VAppRecord)(out, page)
			}
		}
	case "vAppTemplate":
		for _, t := range st.templates() {
			if seesCatalog(ses, t.item.catalog) {
				rs.items = append(rs.items, st.templateRecord(t))
			}
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) {
			if admin {
				putAs(&out.AdminVappTemplateRecord)(out, page)
			} else {
				putAs(&out.VappTemplateRecord)(out, page)
			}
		}
	case "catalog":
		for _, c := range st.catalogs {
			if seesCatalog(ses, c) {
				rs.items = append(rs.items, &types.CatalogRecord{
					HREF: st.href("catalog/" + c.id), ID: "urn:vcloud:catalog:" + c.id, Type: types.MimeCatalog,
					Name: c.name, IsPublished: c.shared, IsShared: c.shared, IsLocal: c.org == ses.org,
					CreationDate: vcdTime(c.created), OrgName: c.org.name, OwnerName: "system",
					NumberOfVAppTemplates: int64(len(c.items)), Status: "RESOLVED",
				})
			}
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) {
			if admin {
				putAs(&out.AdminCatalogRecord)(out, page)
			} else {
				putAs(&out.CatalogRecord)(out, page)
			}
		}
	case "catalogItem":
		for _, c := range st.catalogs {
			if !seesCatalog(ses, c) {
				continue
			}
			for _, it := range c.items {
				rs.items = append(rs.items, &types.QueryResultCatalogItemType{
					HREF: st.href("catalogItem/" + it.id), ID: "urn:vcloud:catalogitem:" + it.id, Type: types.MimeCatalogItem,
					Entity: st.href("vAppTemplate/vappTemplate-" + it.tpl.id), EntityName: it.tpl.name, EntityType: "vapptemplate",
					Catalog: st.href("catalog/" + c.id), CatalogName: c.name, IsPublished: true,
					Vdc: st.href("vdc/" + it.tpl.vdc.id), VdcName: it.tpl.vdc.name, IsVdcEnabled: true,
					CreationDate: vcdTime(it.tpl.created), Status: "RESOLVED", Name: it.name,
				})
			}
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) {
			if admin {
				putAs(&out.AdminCatalogItemRecord)(out, page)
			} else {
				putAs(&out.CatalogItemRecord)(out, page)
			}
		}
	case "orgVdc":
		for _, v := range st.vdcs {
			if !canSee(ses, v.org) {
				continue
			}
			n := 0
			for _, a := range st.vappList {
				if a.vdc == v {
					n++
				}
			}
			rec := &types.QueryResultOrgVdcRecordType{HREF: st.href("vdc/" + v.id), Name: v.name, IsEnabled: "true",
				OrgName: v.org.name, AllocationModel: "Flex", NumberOfVApps: intp(n), Status: "READY", IsBusy: "false",
				NetworkProviderType: st.opts.NetworkProvider, NumberOfStorageProfiles: intp(len(v.profiles))}
			if admin {
				rec.Org = st.href("org/" + v.org.id)
			}
			rs.items = append(rs.items, rec)
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) {
			if admin {
				putAs(&out.OrgVdcAdminRecord)(out, page)
			} else {
				putAs(&out.OrgVdcRecord)(out, page)
			}
		}
	case "orgVdcStorageProfile":
		for _, v := range st.vdcs {
			if !canSee(ses, v.org) {
				continue
			}
			for _, p := range v.profiles {
				if admin {
					rs.items = append(rs.items, &types.QueryResultAdminOrgVdcStorageProfileRecordType{
						HREF: st.href("vdcStorageProfile/" + p.id), ID: "urn:vcloud:vdcstorageProfile:" + p.id, Name: p.name,
						IsEnabled: true, IsDefaultStorageProfile: p.def, StorageLimitMB: 1 << 20,
						Vdc: st.href("vdc/" + v.id), VdcName: v.name, Org: st.href("org/" + v.org.id)})
				} else {
					rs.items = append(rs.items, &types.QueryResultOrgVdcStorageProfileRecordType{
						HREF: st.href("vdcStorageProfile/" + p.id), ID: "urn:vcloud:vdcstorageProfile:" + p.id, Name: p.name,
						IsEnabled: true, IsDefaultStorageProfile: p.def, StorageLimitMB: 1 << 20,
						Vdc: st.href("vdc/" + v.id), VdcName: v.name})
				}
			}
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) {
			if admin {
				putAs(&out.AdminOrgVdcStorageProfileRecord)(out, page)
			} else {
				putAs(&out.OrgVdcStorageProfileRecord)(out, page)
			}
		}
	case "orgVdcNetwork":
		for _, v := range st.vdcs {
			if !canSee(ses, v.org) {
				continue
			}
			for _, n := range v.networks {
				rec := &types.QueryResultOrgVdcNetworkRecordType{HREF: st.href("network/" + n.id), Id: "urn:vcloud:network:" + n.id,
					Name: n.name, DefaultGateway: n.gateway.String(), Netmask: netmask(n.prefix), LinkType: 1,
					Vdc: st.href("vdc/" + v.id), VdcName: v.name}
				if n.edge != nil {
					rec.ConnectedTo = n.edge.name
				}
				rs.items = append(rs.items, rec)
			}
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) { putAs(&out.OrgVdcNetworkRecord)(out, page) }
	case "vAppNetwork":
		for _, a := range st.vappList {
			if !canSee(ses, a.vdc.org) {
				continue
			}
			for _, vn := range a.nets {
				rec := &types.QueryResultVappNetworkRecordType{HREF: st.href("admin/network/" + vn.id), ID: "urn:vcloud:network:" + vn.id,
					Name: vn.name, Type: vn.fence, Vapp: st.href("vApp/vapp-" + a.id), VappName: a.name, IsBusy: a.busy > 0}
				if vn.scope != nil {
					rec.Gateway, rec.Netmask = vn.scope.Gateway, vn.scope.Netmask
				}
				if vn.parent != nil {
					rec.LinkNetworkName = vn.parent.name
					rec.IsLinked = true
				}
				rs.items = append(rs.items, rec)
			}
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) {
			if admin {
				putAs(&out.AdminVappNetworkRecord)(out, page)
			} else {
				putAs(&out.VappNetworkRecord)(out, page)
			}
		}
	case "edgeGateway":
		for _, g := range st.gateways {
			if canSee(ses, g.vdc.org) {
				rs.items = append(rs.items, &types.QueryResultEdgeGatewayRecordType{HREF: st.href("admin/edgeGateway/" + g.id),
					Type: types.MimeEdgeGateway, Name: g.name, Vdc: st.href("vdc/" + g.vdc.id), OrgVdcName: g.vdc.name,
					NumberOfExtNetworks: 1, IsBusy: g.busy != nil && g.busy.status == "running", GatewayStatus: "READY", HaStatus: "UP"})
			}
		}
		rs.put = func(out *types.QueryResultRecordsType, page []any) { putAs(&out.EdgeGatewayRecord)(out, page) }
	default:
		return nil
	}
	return rs
}

var guestOSNames = map[string]string{
	"ubuntu64Guest":              "Ubuntu Linux (64-bit)",
	"rhel9_64Guest":              "Red Hat Enterprise Linux 9 (64-bit)",
	"debian12_64Guest":           "Debian GNU/Linux 12 (64-bit)",
	"windows2019srv_64Guest":     "Microsoft Windows Server 2019 (64-bit)",
	"windows2022srvNext_64Guest": "Microsoft Windows Server 2022 (64-bit)",
}

func guestOSName(osType string) string {
	if n, ok := guestOSNames[osType]; ok {
		return n
	}
	return osType
}

func (st *state) vmRecord(m *vm) *types.QueryResultVMRecordType {
	a := m.vapp
	if m.strs == nil {
		m.strs = &vmStrings{href: st.href("vApp/vm-" + m.id), urn: "urn:vcloud:vm:" + m.id,
			container: st.href("vApp/vapp-" + a.id), vdc: st.href("vdc/" + a.vdc.id), created: vcdTime(m.created)}
	}
	rec := &types.QueryResultVMRecordType{
		HREF: m.strs.href, ID: m.strs.urn, Name: m.name, Type: "application/vnd.vmware.vcloud.vm+xml",
		ContainerName: a.name, ContainerID: m.strs.container, OwnerName: a.owner,
		VdcHREF: m.strs.vdc, VdcName: a.vdc.name, GuestOS: guestOSName(m.guestOS),
		Cpus: m.cpus, MemoryMB: m.memoryMB, Status: statusName(m.status), NetworkName: m.network, IpAddress: m.ip,
		Busy: a.busy > 0, Deployed: m.deployed, HardwareVersion: 19, VmToolsStatus: m.tools,
		DateCreated: m.strs.created,
	}
	if m.network == "none" {
		rec.NetworkName = ""
	}
	if m.profile != nil {
		rec.StorageProfileName = m.profile.name
	}
	return rec
}

func (st *state) templateVMRecord(t *template) *types.QueryResultVMRecordType {
	tools := "toolsNotRunning"
	if !t.tools {
		tools = "toolsNotInstalled"
	}
	return &types.QueryResultVMRecordType{
		HREF: st.href("vAppTemplate/vm-" + t.vmID), ID: "urn:vcloud:vm:" + t.vmID, Name: t.vmName,
		Type: "application/vnd.vmware.vcloud.vm+xml", ContainerName: t.name,
		ContainerID: st.href("vAppTemplate/vappTemplate-" + t.id), VdcHREF: st.href("vdc/" + t.vdc.id), VdcName: t.vdc.name,
		VAppTemplate: true, GuestOS: guestOSName(t.guestOS), Cpus: t.cpus, MemoryMB: t.memoryMB,
		Status: statusName(statusPoweredOff), CatalogName: t.item.catalog.name, HardwareVersion: 19,
		VmToolsStatus: tools, DateCreated: vcdTime(t.created),
	}
}

func (st *state) vappRecord(a *vapp) *types.QueryResultVAppRecordType {
	cpus, mem := 0, 0
	for _, m := range a.vms {
		cpus += m.cpus
		mem += m.memoryMB
	}
	return &types.QueryResultVAppRecordType{
		HREF: st.href("vApp/vapp-" + a.id), Name: a.name, CreationDate: vcdTime(a.created), Busy: a.busy > 0,
		Deployed: a.deployed, Enabled: true, OwnerName: a.owner, Status: statusName(a.status),
		VdcHREF: st.href("vdc/" + a.vdc.id), VdcName: a.vdc.name, NumberOfVMs: len(a.vms), NumberOfCPUs: cpus,
		MemoryAllocationMB: mem, VdcEnabled: true,
	}
}

func (st *state) templateRecord(t *template) *types.QueryResultVappTemplateType {
	return &types.QueryResultVappTemplateType{
		HREF: st.href("vAppTemplate/vappTemplate-" + t.id), ID: "urn:vcloud:vapptemplate:" + t.id, Type: types.MimeVAppTemplate,
		OwnerName: "system", CatalogName: t.item.catalog.name, Catalog: st.href("catalog/" + t.item.catalog.id),
		CatalogItem: st.href("catalogItem/" + t.item.id), IsPublished: true, Name: t.name, Vdc: st.href("vdc/" + t.vdc.id),
		VdcName: t.vdc.name, IsVdcEnabled: true, Org: st.href("org/" + t.item.catalog.org.id), CreationDate: vcdTime(t.created),
		IsEnabled: true, Status: "RESOLVED", IsInCatalog: true, NumberOfVms: t.vmCount, NumberOfCpus: t.cpus,
		MemoryAllocationMb: t.memoryMB,
	}
}
