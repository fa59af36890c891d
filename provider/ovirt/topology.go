package ovirt

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"time"

	ovirtsdk "github.com/ovirt/go-ovirt"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// ZoneConfig maps one availability zone onto one data center and one of
// its clusters, by name.
type ZoneConfig struct {
	// Name is the zone's name (default "<datacenter>/<cluster>").
	Name string
	// DataCenter and Cluster are required.
	DataCenter, Cluster string
	// StorageDomain is the data storage domain for the VMs' disks when
	// Options.Clone copies them (empty: the active data domain of the data
	// center with the most free space). Thin VMs' disks stay where the
	// template's disks are: the engine places them there.
	StorageDomain string
	// TemplateStorageDomain is the domain holding the zone's templates
	// (empty: any); preflight checks it is active.
	TemplateStorageDomain string
}

// zone is a zone resolved to engine ids.
type zone struct {
	cfg           ZoneConfig
	dcID, dcName  string
	dcStatus      string
	clID, clName  string
	storage       []storageInfo // data domains attached to the data center
	profiles      []profileInfo // vNIC profiles of the data center's networks
	storageChosen string        // id of cfg.StorageDomain, "" if not set
}

type storageInfo struct {
	id, name, status string
	available        int64
}

type profileInfo struct {
	id, name, network string
	vlan              int
}

// topology is what the driver knows of the engine's data centers,
// clusters, storage domains and networks.
type topology struct {
	read     time.Time
	zones    []*zone
	byName   map[string]*zone
	byClID   map[string]*zone
	clusters map[string]string // cluster id -> data center id, every cluster
}

// topoTTL is how long a topology read is reused; a VM in a cluster the
// topology does not know makes it read again at once.
const topoTTL = 30 * time.Second

// topo returns the topology, reading it when older than topoTTL or when
// refresh is set.
func (p *Provider) topo(ctx context.Context, refresh bool) (*topology, error) {
	p.topoMu.Lock()
	defer p.topoMu.Unlock()
	if p.topology != nil && !refresh && time.Since(p.topology.read) < topoTTL {
		return p.topology, nil
	}
	t, err := p.readTopology(ctx)
	if err != nil {
		return nil, err
	}
	p.topology = t
	return t, nil
}

// getMany reads a collection with one of go-ovirt's readers.
func getMany[S any](ctx context.Context, c *conn, path string, q url.Values, read func(*ovirtsdk.XMLReader, *xml.StartElement) (S, error)) (S, error) {
	body, err := c.do(ctx, request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		var zero S
		return zero, err
	}
	return readXML(body, read)
}

func (p *Provider) readTopology(ctx context.Context) (*topology, error) {
	dcs, err := getMany(ctx, p.c, "/datacenters", nil, ovirtsdk.XMLDataCenterReadMany)
	if err != nil {
		return nil, err
	}
	cls, err := getMany(ctx, p.c, "/clusters", nil, ovirtsdk.XMLClusterReadMany)
	if err != nil {
		return nil, err
	}
	nets, err := getMany(ctx, p.c, "/networks", nil, ovirtsdk.XMLNetworkReadMany)
	if err != nil {
		return nil, err
	}
	profs, err := getMany(ctx, p.c, "/vnicprofiles", nil, ovirtsdk.XMLVnicProfileReadMany)
	if err != nil {
		return nil, err
	}
	t := &topology{read: time.Now(), byName: map[string]*zone{}, byClID: map[string]*zone{}, clusters: map[string]string{}}
	type dcInfo struct{ name, status string }
	dcByID := map[string]dcInfo{}
	for _, d := range dcs.Slice() {
		st, _ := d.Status()
		dcByID[str(d.Id())] = dcInfo{str(d.Name()), string(st)}
	}
	// Storage domains as each data center sees them (status there).
	storage := map[string][]storageInfo{}
	for id := range dcByID {
		sds, err := getMany(ctx, p.c, "/datacenters/"+url.PathEscape(id)+"/storagedomains", nil, ovirtsdk.XMLStorageDomainReadMany)
		if err != nil {
			return nil, err
		}
		for _, sd := range sds.Slice() {
			if typ, _ := sd.Type(); typ != ovirtsdk.STORAGEDOMAINTYPE_DATA {
				continue
			}
			st, _ := sd.Status()
			av, _ := sd.Available()
			storage[id] = append(storage[id], storageInfo{id: str(sd.Id()), name: str(sd.Name()), status: string(st), available: av})
		}
	}
	netByID := map[string]*ovirtsdk.Network{}
	for _, n := range nets.Slice() {
		netByID[str(n.Id())] = n
	}
	profilesByDC := map[string][]profileInfo{}
	for _, pr := range profs.Slice() {
		nr, ok := pr.Network()
		if !ok {
			continue
		}
		n := netByID[str(nr.Id())]
		if n == nil {
			continue
		}
		dc, _ := n.DataCenter()
		vlan := 0
		if v, ok := n.Vlan(); ok {
			if id, ok := v.Id(); ok {
				vlan = int(id)
			}
		}
		dcID := ""
		if dc != nil {
			dcID = str(dc.Id())
		}
		profilesByDC[dcID] = append(profilesByDC[dcID], profileInfo{id: str(pr.Id()), name: str(pr.Name()), network: str(n.Name()), vlan: vlan})
	}
	for _, cl := range cls.Slice() {
		dc, ok := cl.DataCenter()
		if !ok {
			continue
		}
		dcID := str(dc.Id())
		t.clusters[str(cl.Id())] = dcID
		info, ok := dcByID[dcID]
		if !ok {
			continue
		}
		z := &zone{dcID: dcID, dcName: info.name, dcStatus: info.status, clID: str(cl.Id()), clName: str(cl.Name()),
			storage: storage[dcID], profiles: profilesByDC[dcID]}
		z.cfg = ZoneConfig{Name: info.name + "/" + z.clName, DataCenter: info.name, Cluster: z.clName}
		if len(p.opts.Zones) > 0 {
			cfg, ok := p.zoneConfig(info.name, z.clName)
			if !ok {
				continue
			}
			z.cfg = cfg
			for _, sd := range z.storage {
				if sd.name == cfg.StorageDomain {
					z.storageChosen = sd.id
				}
			}
		}
		t.zones = append(t.zones, z)
		t.byName[z.cfg.Name] = z
		t.byClID[z.clID] = z
	}
	sort.Slice(t.zones, func(i, j int) bool { return t.zones[i].cfg.Name < t.zones[j].cfg.Name })
	return t, nil
}

// zoneConfig finds the configured zone of a data center's cluster.
func (p *Provider) zoneConfig(dc, cl string) (ZoneConfig, bool) {
	for _, z := range p.opts.Zones {
		if z.DataCenter == dc && z.Cluster == cl {
			if z.Name == "" {
				z.Name = dc + "/" + cl
			}
			return z, true
		}
	}
	return ZoneConfig{}, false
}

// zoneNamed returns the zone called name, NotFound if there is none.
func (p *Provider) zoneNamed(ctx context.Context, name string) (*zone, *topology, error) {
	t, err := p.topo(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	if z := t.byName[name]; z != nil {
		return z, t, nil
	}
	if t, err = p.topo(ctx, true); err != nil {
		return nil, nil, err
	}
	if z := t.byName[name]; z != nil {
		return z, t, nil
	}
	return nil, nil, errs.Errorf(errs.NotFound, "", "zone %s not found", limit.Quote(name))
}

// Zones lists one zone per configured data center and cluster (every
// cluster of every data center without Options.Zones).
func (p *Provider) Zones(ctx context.Context) ([]provider.Zone, error) {
	t, err := p.topo(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]provider.Zone, 0, len(t.zones))
	for _, z := range t.zones {
		pz := provider.Zone{Name: z.cfg.Name, Datacenters: []string{z.dcName}, Clusters: []string{z.clName},
			Attributes: map[string]string{"datacenter_id": z.dcID, "cluster_id": z.clID, "datacenter_status": z.dcStatus}}
		for _, sd := range z.storage {
			pz.Datastores = append(pz.Datastores, sd.name)
		}
		for _, pr := range z.profiles {
			pz.Networks = append(pz.Networks, pr.name)
		}
		if z.cfg.StorageDomain != "" {
			pz.Attributes["storage_domain"] = z.cfg.StorageDomain
		}
		out = append(out, pz)
	}
	return out, nil
}

func str(s string, _ bool) string { return s }
