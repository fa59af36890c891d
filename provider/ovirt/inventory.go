package ovirt

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	ovirtsdk "github.com/ovirt/go-ovirt"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// follow is what List and Get ask the engine to inline, so a VM's
// addresses come without one call per VM.
const follow = "reported_devices,nics"

// powerOf maps an engine VM status to a power state.
func powerOf(s ovirtsdk.VmStatus) provider.PowerState {
	switch s {
	case ovirtsdk.VMSTATUS_DOWN, ovirtsdk.VMSTATUS_IMAGE_LOCKED:
		return provider.PoweredOff
	case ovirtsdk.VMSTATUS_UP, ovirtsdk.VMSTATUS_POWERING_UP, ovirtsdk.VMSTATUS_POWERING_DOWN,
		ovirtsdk.VMSTATUS_WAIT_FOR_LAUNCH, ovirtsdk.VMSTATUS_MIGRATING, ovirtsdk.VMSTATUS_REBOOT_IN_PROGRESS:
		return provider.PoweredOn
	case ovirtsdk.VMSTATUS_SUSPENDED, ovirtsdk.VMSTATUS_PAUSED, ovirtsdk.VMSTATUS_SAVING_STATE, ovirtsdk.VMSTATUS_RESTORING_STATE:
		return provider.Suspended
	}
	return provider.PowerUnknown
}

// cpus is sockets x cores x threads (unset parts count 1).
func cpus(c *ovirtsdk.Cpu, ok bool) int {
	if !ok {
		return 0
	}
	t, ok := c.Topology()
	if !ok {
		return 0
	}
	n := int64(1)
	for _, get := range []func() (int64, bool){t.Sockets, t.Cores, t.Threads} {
		if v, ok := get(); ok && v > 0 {
			n *= v
		}
	}
	return int(n)
}

// vmOf converts an engine VM. Its zone is its cluster's.
func vmOf(t *topology, v *ovirtsdk.Vm) provider.VM {
	st, _ := v.Status()
	mem, _ := v.Memory()
	out := provider.VM{ID: str(v.Id()), Name: str(v.Name()), Power: powerOf(st), CPUs: cpus(v.Cpu()),
		MemoryMiB: mem >> 20, Annotation: str(v.Description()), Attributes: map[string]string{"status": string(st)}}
	if cl, ok := v.Cluster(); ok {
		id := str(cl.Id())
		out.Attributes["cluster_id"] = id
		if z := t.byClID[id]; z != nil {
			out.Zone = z.cfg.Name
			out.Attributes["cluster"] = z.clName
			out.Attributes["datacenter"] = z.dcName
			out.Attributes["datacenter_id"] = z.dcID
		}
	}
	if h, ok := v.Host(); ok {
		out.Attributes["host_id"] = str(h.Id())
	}
	if tp, ok := v.Template(); ok {
		out.Attributes["template_id"] = str(tp.Id())
	}
	if r, ok := v.StopReason(); ok && r != "" {
		out.Attributes["stop_reason"] = r
	}
	if os, ok := v.Os(); ok {
		if typ, ok := os.Type(); ok {
			out.Attributes["os_type"] = typ
		}
	}
	if fq, ok := v.Fqdn(); ok {
		out.Guest.Hostname = fq
		out.Attributes["fqdn"] = fq
	}
	if g, ok := v.GuestOperatingSystem(); ok {
		fam := str(g.Family())
		out.Guest.Family = guest.ParseFamily(strings.ToLower(fam))
		out.Guest.OSName = str(g.Distribution())
		if ver, ok := g.Version(); ok {
			out.Guest.OSVersion = str(ver.FullVersion())
		}
		// The agent reported: it runs (the engine keeps no separate flag
		// in the API's VM).
		out.Guest.ToolsRunning = true
		out.Guest.ToolsStatus = "reported"
	}
	if rds, ok := v.ReportedDevices(); ok {
		for _, rd := range rds.Slice() {
			ips, ok := rd.Ips()
			if !ok {
				continue
			}
			for _, ip := range ips.Slice() {
				if a, err := netip.ParseAddr(str(ip.Address())); err == nil {
					out.Guest.IPs = append(out.Guest.IPs, a)
				}
			}
		}
		if len(out.Guest.IPs) > 0 {
			out.Guest.ToolsRunning = true
		}
	}
	return out
}

// templateVM converts an engine template to the VM List and Get report.
func templateVM(t *topology, tp *ovirtsdk.Template) provider.VM {
	st, _ := tp.Status()
	mem, _ := tp.Memory()
	out := provider.VM{ID: str(tp.Id()), Name: str(tp.Name()), Template: true, Power: provider.PoweredOff,
		CPUs: cpus(tp.Cpu()), MemoryMiB: mem >> 20, Annotation: str(tp.Description()),
		Attributes: map[string]string{"status": string(st)}}
	if z := templateZone(t, tp); z != nil {
		out.Zone = z.cfg.Name
		out.Attributes["datacenter"] = z.dcName
		out.Attributes["datacenter_id"] = z.dcID
	}
	if os, ok := tp.Os(); ok {
		if typ, ok := os.Type(); ok {
			out.Attributes["os_type"] = typ
			out.Guest.Family = familyOfOSType(typ)
		}
	}
	return out
}

// templateZone is the zone of the template's cluster, else the first zone
// of its data center (nil for the Blank template, which has neither).
func templateZone(t *topology, tp *ovirtsdk.Template) *zone {
	cl, ok := tp.Cluster()
	if !ok {
		return nil
	}
	id := str(cl.Id())
	if z := t.byClID[id]; z != nil {
		return z
	}
	dc := t.clusters[id]
	for _, z := range t.zones {
		if z.dcID == dc {
			return z
		}
	}
	return nil
}

// vmPage reads one page of VMs.
func (p *Provider) vmPage(ctx context.Context, n int) ([]*ovirtsdk.Vm, error) {
	q := url.Values{"search": {"page " + strconv.Itoa(n)}, "max": {strconv.Itoa(p.opts.PageSize)}, "follow": {follow}}
	s, err := getMany(ctx, p.c, "/vms", q, ovirtsdk.XMLVmReadMany)
	if err != nil {
		return nil, err
	}
	return s.Slice(), nil
}

// removalCodes are the events after which a VM is gone.
var removalCodes = map[int64]bool{36: true, 113: true}

// allVMs reads every VM page by page. Pages shift while VMs are added or
// removed: VMs seen twice are kept once, and when a VM was removed while
// the pages were read (a VM may then have moved into a page already
// read), the pages are read again, up to three times, and the passes
// merged, leaving out only the VMs whose removal finished (event 36).
func (p *Provider) allVMs(ctx context.Context) ([]*ovirtsdk.Vm, error) {
	from, err := p.lastEventIndex(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*ovirtsdk.Vm{}
	var order []string
	gone := map[string]bool{}
	for pass := 0; pass < 3; pass++ {
		for n := 1; ; n++ {
			page, err := p.vmPage(ctx, n)
			if err != nil {
				return nil, err
			}
			for _, v := range page {
				id := str(v.Id())
				if _, seen := byID[id]; !seen {
					order = append(order, id)
				}
				byID[id] = v
			}
			if p.afterPage != nil {
				p.afterPage(pass, n)
			}
			if len(page) < p.opts.PageSize {
				break
			}
		}
		evs, err := p.eventsAfter(ctx, from)
		if err != nil {
			return nil, err
		}
		removed := false
		for _, e := range evs {
			code, _ := e.Code()
			if !removalCodes[code] {
				continue
			}
			removed = true
			if v, ok := e.Vm(); ok && code == 36 {
				gone[str(v.Id())] = true
			}
		}
		if !removed {
			break
		}
		if len(evs) > 0 {
			from, _ = evs[0].Index() // newest first
		}
	}
	out := make([]*ovirtsdk.Vm, 0, len(order))
	for _, id := range order {
		if !gone[id] {
			out = append(out, byID[id])
		}
	}
	return out, nil
}

// List reads every VM (pages of Options.PageSize, reported devices and
// NICs inlined) and, with IncludeTemplates, the templates but Blank.
func (p *Provider) List(ctx context.Context, opts *provider.ListOptions) ([]provider.VM, error) {
	t, err := p.topo(ctx, false)
	if err != nil {
		return nil, err
	}
	if opts.Zone != "" {
		if _, t, err = p.zoneNamed(ctx, opts.Zone); err != nil {
			return nil, err
		}
	}
	vms, err := p.allVMs(ctx)
	if err != nil {
		return nil, err
	}
	if t, err = p.topoFor(ctx, t, vms); err != nil {
		return nil, err
	}
	out := make([]provider.VM, 0, len(vms))
	for _, v := range vms {
		vm := vmOf(t, v)
		if opts.Zone == "" || vm.Zone == opts.Zone {
			out = append(out, vm)
		}
	}
	if opts.IncludeTemplates {
		tps, err := p.allTemplates(ctx)
		if err != nil {
			return nil, err
		}
		for _, tp := range tps {
			vm := templateVM(t, tp)
			if opts.Zone == "" || vm.Zone == opts.Zone {
				out = append(out, vm)
			}
		}
	}
	return out, nil
}

// topoFor reads the topology again when a VM is in a cluster it does not
// know (a cluster added since).
func (p *Provider) topoFor(ctx context.Context, t *topology, vms []*ovirtsdk.Vm) (*topology, error) {
	for _, v := range vms {
		if cl, ok := v.Cluster(); ok {
			if _, known := t.clusters[str(cl.Id())]; !known {
				return p.topo(ctx, true)
			}
		}
	}
	return t, nil
}

// allTemplates reads the templates but Blank.
func (p *Provider) allTemplates(ctx context.Context) ([]*ovirtsdk.Template, error) {
	s, err := getMany(ctx, p.c, "/templates", nil, ovirtsdk.XMLTemplateReadMany)
	if err != nil {
		return nil, err
	}
	out := make([]*ovirtsdk.Template, 0, len(s.Slice()))
	for _, tp := range s.Slice() {
		if _, ok := tp.Cluster(); ok { // Blank has no cluster
			out = append(out, tp)
		}
	}
	return out, nil
}

// getVM reads one VM (NotFound as the engine says).
func (p *Provider) getVM(ctx context.Context, id string) (*ovirtsdk.Vm, error) {
	body, err := p.c.do(ctx, request{method: http.MethodGet, path: "/vms/" + url.PathEscape(id), query: url.Values{"follow": {follow}}})
	if err != nil {
		return nil, err
	}
	return readXML(body, func(r *ovirtsdk.XMLReader, st *xml.StartElement) (*ovirtsdk.Vm, error) {
		return ovirtsdk.XMLVmReadOne(r, st, "vm")
	})
}

// getTemplate reads one template.
func (p *Provider) getTemplate(ctx context.Context, id string) (*ovirtsdk.Template, error) {
	body, err := p.c.do(ctx, request{method: http.MethodGet, path: "/templates/" + url.PathEscape(id)})
	if err != nil {
		return nil, err
	}
	return readXML(body, func(r *ovirtsdk.XMLReader, st *xml.StartElement) (*ovirtsdk.Template, error) {
		return ovirtsdk.XMLTemplateReadOne(r, st, "template")
	})
}

// Get reads a VM, or a template with that id.
func (p *Provider) Get(ctx context.Context, id string) (provider.VM, error) {
	v, err := p.getVM(ctx, id)
	if err == nil {
		t, err := p.topo(ctx, false)
		if err != nil {
			return provider.VM{}, err
		}
		if t, err = p.topoFor(ctx, t, []*ovirtsdk.Vm{v}); err != nil {
			return provider.VM{}, err
		}
		return vmOf(t, v), nil
	}
	if !errs.Is(err, errs.NotFound) {
		return provider.VM{}, err
	}
	tp, err := p.getTemplate(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "VM %s not found", limit.Quote(id))
	}
	if err != nil {
		return provider.VM{}, err
	}
	t, err := p.topo(ctx, false)
	if err != nil {
		return provider.VM{}, err
	}
	return templateVM(t, tp), nil
}
