package vcd

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/go-vcloud-director/v2/types/v56"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// queryPage is one page of the query service (format=records).
type queryPage struct {
	XMLName  xml.Name `xml:"QueryResultRecords"`
	Total    float64  `xml:"total,attr"`
	Page     int      `xml:"page,attr"`
	PageSize int      `xml:"pageSize,attr"`

	VM          []*types.QueryResultVMRecordType                   `xml:"VMRecord"`
	VApp        []*types.QueryResultVAppRecordType                 `xml:"VAppRecord"`
	OrgVdc      []*types.QueryResultOrgVdcRecordType               `xml:"OrgVdcRecord"`
	Profile     []*types.QueryResultOrgVdcStorageProfileRecordType `xml:"OrgVdcStorageProfileRecord"`
	Network     []*types.QueryResultOrgVdcNetworkRecordType        `xml:"OrgVdcNetworkRecord"`
	Template    []*types.QueryResultVappTemplateType               `xml:"VAppTemplateRecord"`
	Catalog     []*types.CatalogRecord                             `xml:"CatalogRecord"`
	EdgeGateway []*types.QueryResultEdgeGatewayRecordType          `xml:"EdgeGatewayRecord"`
}

func (q *queryPage) n() int {
	return len(q.VM) + len(q.VApp) + len(q.OrgVdc) + len(q.Profile) + len(q.Network) + len(q.Template) + len(q.Catalog) + len(q.EdgeGateway)
}

// queryPages is how many pages of one query are read at once after the
// first (which gives the total).
const queryPages = 4

// query reads every page of a query (GET /api/query?type=T&format=records,
// pageSize Options.PageSize): the first page, then, from its total and
// page size (VCD caps the page size silently), the other pages,
// queryPages at a time, calling each with every page in order. filter is
// FIQL, "" for none. A page past the last (the inventory shrank between
// two reads) ends the listing.
func (p *Provider) query(ctx context.Context, qtype, filter string, each func(*queryPage)) error {
	get := func(page int) (*queryPage, error) {
		q := url.Values{"type": {qtype}, "format": {"records"}, "page": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(p.opts.PageSize)}}
		var pg queryPage
		if err := p.c.getXMLFiltered(ctx, "/api/query", q, filter, &pg); err != nil {
			return nil, err
		}
		return &pg, nil
	}
	first, err := get(1)
	if err != nil {
		return err
	}
	each(first)
	size := first.PageSize
	if size <= 0 {
		size = first.n()
	}
	if size <= 0 || float64(first.n()) >= first.Total {
		return nil
	}
	pages := int((int64(first.Total) + int64(size) - 1) / int64(size))
	got := make([]*queryPage, pages+1)
	errsOf := make([]error, pages+1)
	sem := make(chan struct{}, queryPages)
	var wg sync.WaitGroup
	for pg := 2; pg <= pages; pg++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			got[pg], errsOf[pg] = get(pg)
		})
	}
	wg.Wait()
	for pg := 2; pg <= pages; pg++ {
		if err := errsOf[pg]; err != nil {
			var a *APIError
			if errors.As(err, &a) && a.Status == http.StatusBadRequest && errs.Is(err, errs.InvalidArgument) {
				return nil // past the last page
			}
			return err
		}
		each(got[pg])
	}
	return nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// vmUUID returns the UUID of a VM id ("vm-UUID"), or false.
func vmUUID(id string) (string, bool) {
	u, ok := strings.CutPrefix(id, "vm-")
	return u, ok && uuidRE.MatchString(u)
}

// urnUUID returns the UUID at the end of a URN or href.
func urnUUID(s string) string {
	s = strings.TrimRight(s, "/")
	if i := strings.LastIndexAny(s, ":/"); i >= 0 {
		s = s[i+1:]
	}
	for _, pre := range []string{"vm-", "vapp-", "vappTemplate-"} {
		s = strings.TrimPrefix(s, pre)
	}
	return s
}

func powerOf(status string) provider.PowerState {
	switch status {
	case "POWERED_ON":
		return provider.PoweredOn
	case "POWERED_OFF":
		return provider.PoweredOff
	case "SUSPENDED":
		return provider.Suspended
	}
	return provider.PowerUnknown
}

func familyOf(osName string) guest.OSFamily {
	l := strings.ToLower(osName)
	switch {
	case strings.Contains(l, "windows"):
		return guest.Windows
	case strings.Contains(l, "linux"), strings.Contains(l, "ubuntu"), strings.Contains(l, "debian"),
		strings.Contains(l, "centos"), strings.Contains(l, "red hat"), strings.Contains(l, "rhel"), strings.Contains(l, "suse"):
		return guest.Linux
	}
	return guest.FamilyUnknown
}

// vmOf maps a VM query record. A template's VM is named for its vApp
// template (single-VM templates: the template is what Provision takes).
func vmOf(r *types.QueryResultVMRecordType) provider.VM {
	vm := provider.VM{
		ID: "vm-" + urnUUID(r.ID), Name: r.Name, Zone: r.VdcName, Power: powerOf(r.Status), Template: r.VAppTemplate,
		CPUs: r.Cpus, MemoryMiB: int64(r.MemoryMB),
		Guest: provider.GuestInfo{Family: familyOf(r.GuestOS), OSName: r.GuestOS, ToolsStatus: r.VmToolsStatus,
			ToolsRunning: r.VmToolsStatus == "toolsOk" || r.VmToolsStatus == "toolsOld"},
		Attributes: map[string]string{"status": r.Status},
	}
	if r.ID == "" {
		vm.ID = "vm-" + urnUUID(r.HREF)
	}
	if r.VAppTemplate {
		vm.Name = r.ContainerName
		vm.Power = provider.PoweredOff
		vm.Attributes["vAppTemplate"] = r.ContainerName
		vm.Attributes["vAppTemplateId"] = "vappTemplate-" + urnUUID(r.ContainerID)
		vm.Attributes["vmName"] = r.Name
		if r.CatalogName != "" {
			vm.Attributes["catalog"] = r.CatalogName
		}
	} else {
		vm.Attributes["vApp"] = r.ContainerName
		vm.Attributes["vAppId"] = "vapp-" + urnUUID(r.ContainerID)
	}
	if a, err := netip.ParseAddr(r.IpAddress); err == nil {
		vm.Guest.IPs = []netip.Addr{a}
	}
	if r.NetworkName != "" {
		vm.Attributes["network"] = r.NetworkName
	}
	if r.StorageProfileName != "" {
		vm.Attributes["storageProfile"] = r.StorageProfileName
	}
	return vm
}

// List reads every VM record through the query service, a page of
// Options.PageSize records per request.
func (p *Provider) List(ctx context.Context, opts *provider.ListOptions) ([]provider.VM, error) {
	filter := ""
	if opts.Zone != "" {
		if err := p.checkZone(ctx, opts.Zone); err != nil {
			return nil, err
		}
		filter = "vdcName==" + fiqlValue(opts.Zone)
	}
	var out []provider.VM
	err := p.query(ctx, "vm", filter, func(pg *queryPage) {
		if out == nil {
			out = make([]provider.VM, 0, int(pg.Total))
		}
		for _, r := range pg.VM {
			if r.VAppTemplate && !opts.IncludeTemplates || r.Deleted {
				continue
			}
			out = append(out, vmOf(r))
		}
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []provider.VM{}
	}
	return out, nil
}

// fiqlValue encodes a FIQL value for a filter sent with
// filterEncoded=true: VCD's FIQL has no quoting, so every separator
// (and '*', its wildcard) is percent-encoded.
func fiqlValue(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "*", "%2A")
}

// Get reads one VM (or template VM) record: one query filtered by id.
func (p *Provider) Get(ctx context.Context, id string) (provider.VM, error) {
	u, ok := vmUUID(id)
	if !ok {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "no VM %s (VCD VM ids are vm-UUID)", limit.Quote(id))
	}
	var rec *types.QueryResultVMRecordType
	q := url.Values{"type": {"vm"}, "format": {"records"}}
	var pg queryPage
	if err := p.c.getXMLFiltered(ctx, "/api/query", q, "id=="+fiqlValue("urn:vcloud:vm:"+u), &pg); err != nil {
		return provider.VM{}, err
	}
	for _, r := range pg.VM {
		if urnUUID(r.ID) == u && !r.Deleted {
			rec = r
		}
	}
	if rec == nil {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "no VM %s", limit.Quote(id))
	}
	return vmOf(rec), nil
}

// vdcs reads the organization VDCs (the zones) by name.
func (p *Provider) vdcs(ctx context.Context) (map[string]*types.QueryResultOrgVdcRecordType, error) {
	out := map[string]*types.QueryResultOrgVdcRecordType{}
	err := p.query(ctx, "orgVdc", "", func(pg *queryPage) {
		for _, r := range pg.OrgVdc {
			out[r.Name] = r
		}
	})
	return out, err
}

func (p *Provider) checkZone(ctx context.Context, zone string) error {
	vs, err := p.vdcs(ctx)
	if err != nil {
		return err
	}
	if vs[zone] == nil {
		return errs.Errorf(errs.NotFound, "", "no zone (organization VDC) %s", limit.Quote(zone))
	}
	return nil
}

// Zones lists the organization VDCs: each is a zone, with its storage
// policies as Datastores and its organization networks as Networks.
func (p *Provider) Zones(ctx context.Context) ([]provider.Zone, error) {
	vs, err := p.vdcs(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*provider.Zone{}
	out := make([]provider.Zone, 0, len(vs))
	for _, name := range sortedKeys(vs) {
		r := vs[name]
		out = append(out, provider.Zone{Name: name, Attributes: map[string]string{
			"org": r.OrgName, "networkProvider": r.NetworkProviderType, "allocationModel": r.AllocationModel}})
	}
	for i := range out {
		byName[out[i].Name] = &out[i]
	}
	err = p.query(ctx, "orgVdcStorageProfile", "", func(pg *queryPage) {
		for _, r := range pg.Profile {
			if z := byName[r.VdcName]; z != nil && r.IsEnabled {
				z.Datastores = append(z.Datastores, r.Name)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	err = p.query(ctx, "orgVdcNetwork", "", func(pg *queryPage) {
		for _, r := range pg.Network {
			if z := byName[r.VdcName]; z != nil {
				z.Networks = append(z.Networks, r.Name)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Templates lists the single-VM vApp templates of the visible catalogs
// (the template VMs of the query service): ID is the template VM's id,
// Name the vApp template's, Zone the VDC that stores it.
func (p *Provider) Templates(ctx context.Context, zone string) ([]provider.Template, error) {
	filter := "isVAppTemplate==true"
	if zone != "" {
		if err := p.checkZone(ctx, zone); err != nil {
			return nil, err
		}
		filter += ";vdcName==" + fiqlValue(zone)
	}
	out := []provider.Template{}
	err := p.query(ctx, "vm", filter, func(pg *queryPage) {
		for _, r := range pg.VM {
			if !r.VAppTemplate {
				continue
			}
			vm := vmOf(r)
			out = append(out, provider.Template{ID: vm.ID, Name: vm.Name, Zone: vm.Zone, Family: vm.Guest.Family,
				OSName: vm.Guest.OSName, ToolsInstalled: r.VmToolsStatus != "" && r.VmToolsStatus != "toolsNotInstalled",
				Attributes: vm.Attributes})
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
