package vsphere

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/provider"
)

// topology is the inventory around VMs: datacenters, clusters, hosts,
// datastores, distributed port groups, and the zones over them. It is read
// with one ContainerView retrieval and cached; an unknown host refreshes it.
type topology struct {
	dcs        map[types.ManagedObjectReference]*dcInfo
	computes   map[types.ManagedObjectReference]*computeInfo
	hosts      map[types.ManagedObjectReference]*hostInfo
	datastores map[types.ManagedObjectReference]*dsInfo
	pgs        map[types.ManagedObjectReference]*pgInfo
	switches   map[types.ManagedObjectReference]*dvsInfo
	parents    map[types.ManagedObjectReference]types.ManagedObjectReference
	zones      []*zoneInfo
	// computeZone maps a cluster to its zone name.
	computeZone map[types.ManagedObjectReference]string
	dcZone      map[types.ManagedObjectReference]string
}

type dcInfo struct {
	ref      types.ManagedObjectReference
	name     string
	vmFolder types.ManagedObjectReference
}

type computeInfo struct {
	ref        types.ManagedObjectReference
	name       string
	cluster    bool
	dc         types.ManagedObjectReference
	pool       types.ManagedObjectReference
	hosts      []types.ManagedObjectReference
	datastores []types.ManagedObjectReference
}

type hostInfo struct {
	name    string
	compute types.ManagedObjectReference
}

type dsInfo struct {
	ref        types.ManagedObjectReference
	name       string
	dc         types.ManagedObjectReference
	free       int64
	accessible bool
	hosts      []types.ManagedObjectReference
}

type pgInfo struct {
	ref     types.ManagedObjectReference
	name    string
	key     string
	dc      types.ManagedObjectReference
	dvs     types.ManagedObjectReference
	vlan    int
	trunk   bool
	uplinks bool
}

type dvsInfo struct {
	name    string
	uuid    string
	uplinks []types.ManagedObjectReference
}

func (t *topology) addSwitch(ref types.ManagedObjectReference, o mo.DistributedVirtualSwitch) {
	sw := &dvsInfo{name: o.Name, uuid: o.Uuid}
	if o.Config != nil {
		sw.uplinks = o.Config.GetDVSConfigInfo().UplinkPortgroup
	}
	t.switches[ref] = sw
}

type zoneInfo struct {
	name       string
	dcs        []types.ManagedObjectReference
	computes   []types.ManagedObjectReference
	datastores []types.ManagedObjectReference
	pgs        []types.ManagedObjectReference
	// missing names configured objects that do not exist.
	missingDCs, missingClusters, missingDatastores, missingNetworks []string
}

func (t *topology) zone(name string) *zoneInfo {
	for _, z := range t.zones {
		if z.name == name {
			return z
		}
	}
	return nil
}

func (t *topology) zoneOf(compute, dc types.ManagedObjectReference) string {
	if z, ok := t.computeZone[compute]; ok {
		return z
	}
	return t.dcZone[dc]
}

func (t *topology) publicZone(z *zoneInfo) provider.Zone {
	out := provider.Zone{Name: z.name}
	for _, r := range z.dcs {
		out.Datacenters = append(out.Datacenters, t.dcs[r].name)
	}
	for _, r := range z.computes {
		out.Clusters = append(out.Clusters, t.computes[r].name)
	}
	for _, r := range z.datastores {
		out.Datastores = append(out.Datastores, t.datastores[r].name)
	}
	for _, r := range z.pgs {
		out.Networks = append(out.Networks, t.pgs[r].name)
	}
	return out
}

// dcOf walks parents up to the datacenter.
func (t *topology) dcOf(ref types.ManagedObjectReference) types.ManagedObjectReference {
	for i := 0; i < 64; i++ {
		if ref.Type == "Datacenter" {
			return ref
		}
		parent, ok := t.parents[ref]
		if !ok {
			break
		}
		ref = parent
	}
	return types.ManagedObjectReference{}
}

// topology returns the cached topology, reading it when absent or when
// refresh is set.
func (p *Provider) topology(ctx context.Context, refresh bool) (*topology, error) {
	p.topoMu.Lock()
	defer p.topoMu.Unlock()
	if p.topo != nil && !refresh {
		return p.topo, nil
	}
	t, err := p.readTopology(ctx)
	if err != nil {
		return nil, err
	}
	p.topo = t
	return t, nil
}

func (p *Provider) readTopology(ctx context.Context) (*topology, error) {
	t := &topology{
		dcs:         map[types.ManagedObjectReference]*dcInfo{},
		computes:    map[types.ManagedObjectReference]*computeInfo{},
		hosts:       map[types.ManagedObjectReference]*hostInfo{},
		datastores:  map[types.ManagedObjectReference]*dsInfo{},
		pgs:         map[types.ManagedObjectReference]*pgInfo{},
		switches:    map[types.ManagedObjectReference]*dvsInfo{},
		parents:     map[types.ManagedObjectReference]types.ManagedObjectReference{},
		computeZone: map[types.ManagedObjectReference]string{},
		dcZone:      map[types.ManagedObjectReference]string{},
	}
	kinds := []string{"Datacenter", "Folder", "ComputeResource", "HostSystem", "Datastore", "DistributedVirtualPortgroup", "DistributedVirtualSwitch"}
	props := []types.PropertySpec{
		{Type: "Datacenter", PathSet: []string{"name", "parent", "vmFolder"}},
		{Type: "Folder", PathSet: []string{"parent"}},
		{Type: "ComputeResource", PathSet: []string{"name", "parent", "resourcePool", "host", "datastore"}},
		{Type: "ClusterComputeResource", PathSet: []string{"name", "parent", "resourcePool", "host", "datastore"}},
		{Type: "HostSystem", PathSet: []string{"name", "parent"}},
		{Type: "Datastore", PathSet: []string{"name", "parent", "summary.freeSpace", "summary.accessible", "host"}},
		{Type: "DistributedVirtualPortgroup", PathSet: []string{"name", "parent", "key", "config.distributedVirtualSwitch", "config.defaultPortConfig", "config.uplink", "tag"}},
		{Type: "VmwareDistributedVirtualSwitch", PathSet: []string{"name", "uuid", "config.uplinkPortgroup"}},
		{Type: "DistributedVirtualSwitch", PathSet: []string{"name", "uuid", "config.uplinkPortgroup"}},
	}
	err := p.retrieveView(ctx, kinds, props, func(objs []types.ObjectContent) error {
		for _, oc := range objs {
			v, err := mo.ObjectContentToType(oc)
			if err != nil {
				return err
			}
			ref := oc.Obj
			switch o := v.(type) {
			case mo.Datacenter:
				t.parent(ref, o.Parent)
				t.dcs[ref] = &dcInfo{ref: ref, name: o.Name, vmFolder: o.VmFolder}
			case mo.Folder:
				t.parent(ref, o.Parent)
			case mo.ComputeResource:
				t.parent(ref, o.Parent)
				t.addCompute(ref, o.Name, false, o.ResourcePool, o.Host, o.Datastore)
			case mo.ClusterComputeResource:
				t.parent(ref, o.Parent)
				t.addCompute(ref, o.Name, true, o.ResourcePool, o.Host, o.Datastore)
			case mo.HostSystem:
				t.parent(ref, o.Parent)
				if o.Parent != nil {
					t.hosts[ref] = &hostInfo{name: o.Name, compute: *o.Parent}
				}
			case mo.Datastore:
				t.parent(ref, o.Parent)
				ds := &dsInfo{ref: ref, name: o.Name, free: o.Summary.FreeSpace, accessible: o.Summary.Accessible}
				for _, m := range o.Host {
					ds.hosts = append(ds.hosts, m.Key)
				}
				t.datastores[ref] = ds
			case mo.DistributedVirtualPortgroup:
				t.parent(ref, o.Parent)
				pg := &pgInfo{ref: ref, name: o.Name, key: o.Key}
				if o.Config.DistributedVirtualSwitch != nil {
					pg.dvs = *o.Config.DistributedVirtualSwitch
				}
				pg.uplinks = o.Config.Uplink != nil && *o.Config.Uplink
				for _, tag := range o.Tag {
					if tag.Key == "SYSTEM/DVS.UPLINKPG" {
						pg.uplinks = true
					}
				}
				if s, ok := o.Config.DefaultPortConfig.(*types.VMwareDVSPortSetting); ok && s.Vlan != nil {
					switch vl := s.Vlan.(type) {
					case *types.VmwareDistributedVirtualSwitchVlanIdSpec:
						pg.vlan = int(vl.VlanId)
					case *types.VmwareDistributedVirtualSwitchTrunkVlanSpec:
						pg.trunk = true
					}
				}
				t.pgs[ref] = pg
			case mo.VmwareDistributedVirtualSwitch:
				t.addSwitch(ref, o.DistributedVirtualSwitch)
			case mo.DistributedVirtualSwitch:
				t.addSwitch(ref, o)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range t.computes {
		c.dc = t.dcOf(c.ref)
	}
	for _, pg := range t.pgs {
		// Uplink port groups carry no VMs: the switch lists them (the
		// simulator does not, but names them "<switch>-DVUplinks-<n>").
		if sw := t.switches[pg.dvs]; sw != nil && (slices.Contains(sw.uplinks, pg.ref) || strings.HasPrefix(pg.name, sw.name+"-DVUplinks")) {
			pg.uplinks = true
		}
	}
	for _, ds := range t.datastores {
		ds.dc = t.dcOf(ds.ref)
	}
	for _, pg := range t.pgs {
		pg.dc = t.dcOf(pg.ref)
	}
	t.buildZones(p.opts.Zones)
	return t, nil
}

func (t *topology) parent(ref types.ManagedObjectReference, parent *types.ManagedObjectReference) {
	if parent != nil {
		t.parents[ref] = *parent
	}
}

func (t *topology) addCompute(ref types.ManagedObjectReference, name string, cluster bool, pool *types.ManagedObjectReference, hosts, ds []types.ManagedObjectReference) {
	c := &computeInfo{ref: ref, name: name, cluster: cluster, hosts: hosts, datastores: ds}
	if pool != nil {
		c.pool = *pool
	}
	t.computes[ref] = c
}

func sortedRefs[V any](m map[types.ManagedObjectReference]V, name func(V) string) []types.ManagedObjectReference {
	refs := make([]types.ManagedObjectReference, 0, len(m))
	for r := range m {
		refs = append(refs, r)
	}
	sort.Slice(refs, func(i, j int) bool { return name(m[refs[i]]) < name(m[refs[j]]) })
	return refs
}

// sharedBy reports whether datastore ds is mounted on every host of c.
func (t *topology) sharedBy(ds *dsInfo, c *computeInfo) bool {
	if len(c.hosts) == 0 {
		return false
	}
	for _, h := range c.hosts {
		if !slices.Contains(ds.hosts, h) {
			return false
		}
	}
	return true
}

func (t *topology) buildZones(cfg []ZoneConfig) {
	if len(cfg) == 0 {
		for _, r := range sortedRefs(t.dcs, func(d *dcInfo) string { return d.name }) {
			cfg = append(cfg, ZoneConfig{Name: t.dcs[r].name, Datacenters: []string{t.dcs[r].name}})
		}
	}
	dcByName := map[string]types.ManagedObjectReference{}
	for r, d := range t.dcs {
		dcByName[d.name] = r
	}
	for _, zc := range cfg {
		z := &zoneInfo{name: zc.Name}
		for _, n := range zc.Datacenters {
			if r, ok := dcByName[n]; ok {
				z.dcs = append(z.dcs, r)
			} else {
				z.missingDCs = append(z.missingDCs, n)
			}
		}
		inZoneDC := func(dc types.ManagedObjectReference) bool { return len(z.dcs) == 0 || slices.Contains(z.dcs, dc) }
		computes := sortedRefs(t.computes, func(c *computeInfo) string { return c.name })
		if len(zc.Clusters) == 0 {
			for _, r := range computes {
				if c := t.computes[r]; c.cluster && inZoneDC(c.dc) {
					z.computes = append(z.computes, r)
				}
			}
		} else {
			for _, n := range zc.Clusters {
				i := slices.IndexFunc(computes, func(r types.ManagedObjectReference) bool {
					return t.computes[r].name == n && inZoneDC(t.computes[r].dc)
				})
				if i < 0 {
					z.missingClusters = append(z.missingClusters, n)
					continue
				}
				z.computes = append(z.computes, computes[i])
			}
		}
		dss := sortedRefs(t.datastores, func(d *dsInfo) string { return d.name })
		if len(zc.Datastores) == 0 {
			for _, r := range dss {
				ds := t.datastores[r]
				shared := len(z.computes) > 0
				for _, c := range z.computes {
					shared = shared && t.sharedBy(ds, t.computes[c])
				}
				if shared {
					z.datastores = append(z.datastores, r)
				}
			}
		} else {
			for _, n := range zc.Datastores {
				i := slices.IndexFunc(dss, func(r types.ManagedObjectReference) bool {
					return t.datastores[r].name == n && inZoneDC(t.datastores[r].dc)
				})
				if i < 0 {
					z.missingDatastores = append(z.missingDatastores, n)
					continue
				}
				z.datastores = append(z.datastores, dss[i])
			}
		}
		pgs := sortedRefs(t.pgs, func(g *pgInfo) string { return g.name })
		if len(zc.Networks) == 0 {
			for _, r := range pgs {
				if pg := t.pgs[r]; !pg.uplinks && inZoneDC(pg.dc) {
					z.pgs = append(z.pgs, r)
				}
			}
		} else {
			for _, n := range zc.Networks {
				i := slices.IndexFunc(pgs, func(r types.ManagedObjectReference) bool {
					return t.pgs[r].name == n && inZoneDC(t.pgs[r].dc)
				})
				if i < 0 {
					z.missingNetworks = append(z.missingNetworks, n)
					continue
				}
				z.pgs = append(z.pgs, pgs[i])
			}
		}
		for _, c := range z.computes {
			if _, taken := t.computeZone[c]; !taken {
				t.computeZone[c] = z.name
			}
		}
		if len(zc.Clusters) == 0 {
			for _, d := range z.dcs {
				if _, taken := t.dcZone[d]; !taken {
					t.dcZone[d] = z.name
				}
			}
		}
		t.zones = append(t.zones, z)
	}
}
