package vsphere

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/template"
)

// keyConfig is the extraConfig key that records a VM's provisioning key.
const keyConfig = "managedvm.key"

func (p *Provider) lockKey(key string) func() {
	p.keyMu.Lock()
	mu, ok := p.keyLock[key]
	if !ok {
		mu = new(sync.Mutex)
		p.keyLock[key] = mu
	}
	p.keyMu.Unlock()
	mu.Lock()
	return mu.Unlock
}

// Provision clones spec.Template into spec.Zone; see
// provider.Provider.Provision. ctx carries the provisioning deadline.
func (p *Provider) Provision(ctx context.Context, spec provider.ProvisionSpec) (provider.VM, error) {
	unlock := p.lockKey(spec.Key)
	defer unlock()

	topo, err := p.topology(ctx, false)
	if err != nil {
		return provider.VM{}, mapErr("", err, false)
	}
	z := topo.zone(spec.Zone)
	if z == nil {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "no zone %s", limit.Quote(spec.Zone))
	}
	// Idempotency: a VM of that name holding this key is the answer.
	if existing, key, found, err := p.findNamed(ctx, topo, z, spec.Name); err != nil {
		return provider.VM{}, mapErr("", err, false)
	} else if found {
		if key != spec.Key {
			return provider.VM{}, errs.Errorf(errs.AlreadyExists, "", "a VM named %s already exists", limit.Quote(spec.Name))
		}
		return p.Get(ctx, existing)
	}
	tm, err := p.findTemplate(ctx, spec.Template, spec.Zone)
	if err != nil {
		return provider.VM{}, err
	}
	tref, _ := refOf(tm)
	place, err := p.placement(topo, z)
	if err != nil {
		return provider.VM{}, err
	}
	cs := types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{Pool: &place.pool, Datastore: &place.datastore},
		Config:   &types.VirtualMachineConfigSpec{},
	}
	if spec.CPUs > 0 {
		cs.Config.NumCPUs = int32(spec.CPUs)
	}
	if spec.MemoryMiB > 0 {
		cs.Config.MemoryMB = spec.MemoryMiB
	}
	cs.Config.ExtraConfig = append(cs.Config.ExtraConfig, &types.OptionValue{Key: keyConfig, Value: spec.Key})
	// A fresh instance UUID: the VM's ID must never repeat, even for a VM
	// of the same name after a destroy (the simulator derives it from the
	// name).
	cs.Config.InstanceUuid = newUUID()
	if spec.Network.Name != "" {
		change, err := p.nicChange(ctx, topo, z, tref, spec.Network)
		if err != nil {
			return provider.VM{}, err
		}
		cs.Location.DeviceChange = change
	}
	if c := spec.Customization; c != nil {
		if err := p.customize(ctx, &cs, tm, spec.Name, c); err != nil {
			return provider.VM{}, err
		}
	}
	if err := errs.FromContext(ctx, ""); err != nil {
		return provider.VM{}, err // out of time before the clone: nothing sent
	}
	task, err := methods.CloneVM_Task(ctx, p.client, &types.CloneVM_Task{This: tref, Folder: place.folder, Name: spec.Name, Spec: cs})
	if err != nil {
		if ctx.Err() != nil {
			// Out of time while the request was under way: vCenter may
			// have started the clone. The key tells a later Provision (or
			// a clean-up) which VM it is.
			p.cleanupPartial(spec, nil)
			return provider.VM{}, errs.Wrap(errs.OutcomeUnknown, "",
				fmt.Errorf("the clone request did not complete in time (%w); a VM named %s may appear: Provision again with the same key to get it, or Destroy it", ctx.Err(), limit.Quote(spec.Name)))
		}
		return provider.VM{}, mapErr("", err, true)
	}
	res, err := p.waitTask(ctx, task.Returnval)
	if err != nil {
		p.cleanupPartial(spec, res)
		if isFault[*types.DuplicateName](err) {
			return provider.VM{}, errs.Errorf(errs.AlreadyExists, "", "a VM named %s already exists", limit.Quote(spec.Name))
		}
		return provider.VM{}, mapErr("", err, true)
	}
	ref, _ := res.(types.ManagedObjectReference)
	if spec.PowerOn {
		if err := p.power(ctx, ref, true); err != nil {
			p.cleanupPartial(spec, ref)
			return provider.VM{}, mapErr("", err, true)
		}
	}
	f, err := p.readFacts(ctx, ref, vmProps)
	if err != nil {
		return provider.VM{}, mapErr("", err, false)
	}
	return p.toVM(ctx, &f)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// cleanupTimeout bounds the clean-up after a failed or timed-out task:
// waiting for a cancelled task to end, then destroying what it made.
const cleanupTimeout = 2 * time.Minute

// cleanupPartial destroys what a failed provisioning left (no orphans),
// on a context that outlives the caller's.
func (p *Provider) cleanupPartial(spec provider.ProvisionSpec, res any) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	ref, ok := res.(types.ManagedObjectReference)
	if !ok {
		// The task may have created the VM before failing or timing out:
		// find it by name and key.
		topo, err := p.topology(ctx, false)
		if err != nil {
			return
		}
		z := topo.zone(spec.Zone)
		if z == nil {
			return
		}
		id, key, found, err := p.findNamed(ctx, topo, z, spec.Name)
		if err != nil || !found || key != spec.Key {
			return
		}
		if ref, err = p.findRef(ctx, id); err != nil {
			return
		}
	}
	p.log.Debug("vsphere: destroying a partial VM", "name", spec.Name)
	_ = p.destroyRef(ctx, ref)
}

// findNamed looks for a VM named name in the zone's datacenters and
// returns its ID and provisioning key.
func (p *Provider) findNamed(ctx context.Context, topo *topology, z *zoneInfo, name string) (string, string, bool, error) {
	dcs := z.dcs
	if len(dcs) == 0 {
		for _, c := range z.computes {
			if dc := topo.computes[c].dc; !slices.Contains(dcs, dc) {
				dcs = append(dcs, dc)
			}
		}
	}
	for _, dc := range dcs {
		res, err := methods.FindChild(ctx, p.client, &types.FindChild{This: *p.client.ServiceContent.SearchIndex, Entity: topo.dcs[dc].vmFolder, Name: name})
		if err != nil {
			return "", "", false, err
		}
		if res.Returnval == nil {
			continue
		}
		var m mo.VirtualMachine
		if err := p.retrieveOne(ctx, *res.Returnval, []string{"config.instanceUuid", "config.extraConfig"}, &m); err != nil {
			if isGone(err) {
				continue
			}
			return "", "", false, err
		}
		if m.Config == nil {
			continue
		}
		key := ""
		for _, o := range m.Config.ExtraConfig {
			if ov := o.GetOptionValue(); ov.Key == keyConfig {
				key, _ = ov.Value.(string)
			}
		}
		return m.Config.InstanceUuid, key, true, nil
	}
	return "", "", false, nil
}

// findTemplate finds a template of the zone by instance UUID or name:
// first with the SearchIndex (by UUID, then by name at the top of each
// zone datacenter's VM folder), else by listing the zone.
func (p *Provider) findTemplate(ctx context.Context, ref, zone string) (provider.VM, error) {
	ok := func(vm provider.VM) bool { return vm.Template && vm.Zone == zone && (vm.ID == ref || vm.Name == ref) }
	if f, err := p.getFacts(ctx, ref); err == nil {
		if vm, err := p.toVM(ctx, &f); err == nil && ok(vm) {
			return vm, nil
		}
	}
	if topo, err := p.topology(ctx, false); err == nil {
		if z := topo.zone(zone); z != nil {
			for _, dc := range z.dcs {
				res, err := methods.FindChild(ctx, p.client, &types.FindChild{This: *p.client.ServiceContent.SearchIndex, Entity: topo.dcs[dc].vmFolder, Name: ref})
				if err != nil || res.Returnval == nil {
					continue
				}
				f, err := p.readFacts(ctx, *res.Returnval, vmProps)
				if err != nil || !f.hasConfig {
					continue
				}
				if vm, err := p.toVM(ctx, &f); err == nil && ok(vm) {
					return vm, nil
				}
			}
		}
	}
	vms, err := p.List(ctx, &provider.ListOptions{Zone: zone, IncludeTemplates: true})
	if err != nil {
		return provider.VM{}, err
	}
	for _, byID := range []bool{true, false} {
		for _, vm := range vms {
			if vm.Template && ((byID && vm.ID == ref) || (!byID && vm.Name == ref)) {
				return vm, nil
			}
		}
	}
	return provider.VM{}, errs.Errorf(errs.NotFound, "", "no template %s in zone %s", limit.Quote(ref), limit.Quote(zone))
}

type placement struct {
	pool, datastore types.ManagedObjectReference
	folder          types.ManagedObjectReference
}

// placement picks the zone's first cluster's resource pool and the zone
// datastore with the most free space.
func (p *Provider) placement(topo *topology, z *zoneInfo) (placement, error) {
	var pl placement
	var dc types.ManagedObjectReference
	for _, c := range z.computes {
		if cr := topo.computes[c]; cr.pool.Value != "" {
			pl.pool, dc = cr.pool, cr.dc
			break
		}
	}
	if pl.pool.Value == "" {
		return pl, errs.Errorf(errs.FailedPrecondition, "", "zone %s has no cluster with a resource pool", limit.Quote(z.name))
	}
	best := int64(-1)
	for _, r := range z.datastores {
		if ds := topo.datastores[r]; ds.accessible && ds.free > best {
			best, pl.datastore = ds.free, r
		}
	}
	if best < 0 {
		return pl, errs.Errorf(errs.FailedPrecondition, "", "zone %s has no accessible shared datastore", limit.Quote(z.name))
	}
	pl.folder = topo.dcs[dc].vmFolder
	return pl, nil
}

// nicChange connects the template's first network adapter (or a new
// VMXNET3 one) to the zone's distributed port group.
func (p *Provider) nicChange(ctx context.Context, topo *topology, z *zoneInfo, tref types.ManagedObjectReference, n provider.Network) ([]types.BaseVirtualDeviceConfigSpec, error) {
	var pg *pgInfo
	for _, r := range z.pgs {
		if g := topo.pgs[r]; g.name == n.Name && (n.VLAN == 0 || g.vlan == n.VLAN || g.trunk) {
			pg = g
			break
		}
	}
	if pg == nil {
		return nil, errs.Errorf(errs.NotFound, "", "zone %s has no distributed port group %s (VLAN %d)", limit.Quote(z.name), limit.Quote(n.Name), n.VLAN)
	}
	dvs := topo.switches[pg.dvs]
	if dvs == nil {
		return nil, errs.Errorf(errs.FailedPrecondition, "", "port group %s has no distributed switch", limit.Quote(n.Name))
	}
	backing := &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
		Port: types.DistributedVirtualSwitchPortConnection{SwitchUuid: dvs.uuid, PortgroupKey: pg.key},
	}
	var m mo.VirtualMachine
	if err := p.retrieveOne(ctx, tref, []string{"config.hardware.device"}, &m); err != nil {
		return nil, mapErr("", err, false)
	}
	if m.Config != nil {
		for _, d := range m.Config.Hardware.Device {
			if nic, ok := d.(types.BaseVirtualEthernetCard); ok {
				card := nic.GetVirtualEthernetCard()
				card.Backing = backing
				return []types.BaseVirtualDeviceConfigSpec{&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: d}}, nil
			}
		}
	}
	nic := &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
		VirtualDevice: types.VirtualDevice{Key: -1, Backing: backing},
	}}}
	return []types.BaseVirtualDeviceConfigSpec{&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: nic}}, nil
}

// customize adds guest customization to cs: the customization spec named
// like the template (Environment-prefixed) or named by SpecName, a spec
// built from the hostname and static address, and cloud-init documents
// through guestinfo.
func (p *Provider) customize(ctx context.Context, cs *types.VirtualMachineCloneSpec, tm provider.VM, vmName string, c *provider.Customization) error {
	csm := *p.client.ServiceContent.CustomizationSpecManager
	var names []string
	switch {
	case c.SpecName != "":
		names = []string{c.SpecName}
	case c.UseTemplateSpec:
		names = p.specNames(tm.Name)
	}
	for _, name := range names {
		res, err := methods.GetCustomizationSpec(ctx, p.client, &types.GetCustomizationSpec{This: csm, Name: name})
		if err != nil {
			if isFault[*types.NotFound](err) || isFault[*types.InvalidArgument](err) {
				continue
			}
			return mapErr("", err, false)
		}
		cs.Customization = &res.Returnval.Spec
		break
	}
	if cs.Customization == nil && c.SpecName != "" {
		return errs.Errorf(errs.NotFound, "", "no customization spec %s", limit.Quote(c.SpecName))
	}
	if cs.Customization == nil && (c.Hostname != "" || c.Static != nil) && len(c.UserData) == 0 {
		host := c.Hostname
		if host == "" {
			host = vmName
		}
		ts := &template.CustomizationSpec{Name: "managedvm"}
		if tm.Guest.Family == guest.Windows {
			ts.Windows = &template.Sysprep{ComputerName: template.HostnameSource{Fixed: host}, FullName: "managedvm", OrgName: "managedvm"}
		} else {
			ts.Linux = &template.LinuxPrep{Hostname: template.HostnameSource{Fixed: host}, Domain: "localdomain"}
		}
		if st := c.Static; st != nil {
			nic := template.NICSetting{Address: st.Address, DNS: st.DNS}
			if st.Gateway.IsValid() {
				nic.Gateway = append(nic.Gateway, st.Gateway)
			}
			ts.NICs = []template.NICSetting{nic}
			ts.DNSServers = st.DNS
		} else {
			ts.NICs = []template.NICSetting{{DHCP: true}}
		}
		vs := VimCustomizationSpec(ts)
		cs.Customization = &vs
	}
	for k, v := range map[string][]byte{"userdata": c.UserData, "metadata": c.MetaData, "networkconfig": c.NetworkConfig} {
		if len(v) == 0 {
			continue
		}
		cs.Config.ExtraConfig = append(cs.Config.ExtraConfig,
			&types.OptionValue{Key: "guestinfo." + k, Value: base64.StdEncoding.EncodeToString(v)},
			&types.OptionValue{Key: "guestinfo." + k + ".encoding", Value: "base64"})
	}
	return nil
}

// specNames are the customization spec names looked up for a template:
// the Environment-prefixed one first ("PROD-<template>"), then exactly the
// template's name.
func (p *Provider) specNames(templateName string) []string {
	base := template.SpecNameFor(templateName)
	if env := p.opts.Environment; env != "" && !strings.HasPrefix(base, env+"-") {
		return []string{env + "-" + base, base}
	}
	return []string{base}
}

// VimCustomizationSpec maps the template package's customization spec
// model onto govmomi's types.
func VimCustomizationSpec(s *template.CustomizationSpec) types.CustomizationSpec {
	var out types.CustomizationSpec
	name := func(h template.HostnameSource) types.BaseCustomizationName {
		if h.VMName {
			return &types.CustomizationVirtualMachineName{}
		}
		return &types.CustomizationFixedName{Name: h.Fixed}
	}
	switch {
	case s.Linux != nil:
		lp := &types.CustomizationLinuxPrep{HostName: name(s.Linux.Hostname), Domain: s.Linux.Domain, TimeZone: s.Linux.TimeZone}
		if s.Linux.HWClockUTC {
			lp.HwClockUTC = types.NewBool(true)
		}
		out.Identity = lp
	case s.Windows != nil:
		w := s.Windows
		sp := &types.CustomizationSysprep{
			GuiUnattended:  types.CustomizationGuiUnattended{TimeZone: int32(w.TimeZone), AutoLogon: w.AutoLogon, AutoLogonCount: int32(w.AutoLogonCount)},
			UserData:       types.CustomizationUserData{FullName: w.FullName, OrgName: w.OrgName, ComputerName: name(w.ComputerName)},
			Identification: types.CustomizationIdentification{JoinWorkgroup: w.Workgroup},
		}
		if pw := w.AdminPassword.Reveal(); pw != "" {
			sp.GuiUnattended.Password = &types.CustomizationPassword{Value: pw, PlainText: true}
		}
		if len(w.RunOnce) > 0 {
			sp.GuiRunOnce = &types.CustomizationGuiRunOnce{CommandList: w.RunOnce}
		}
		out.Identity = sp
	}
	for _, n := range s.NICs {
		var ip types.CustomizationIPSettings
		if n.DHCP || !n.Address.IsValid() {
			ip.Ip = &types.CustomizationDhcpIpGenerator{}
		} else {
			ip.Ip = &types.CustomizationFixedIp{IpAddress: n.Address.Addr().String()}
			ip.SubnetMask = prefixMask(n.Address.Bits())
			for _, g := range n.Gateway {
				ip.Gateway = append(ip.Gateway, g.String())
			}
			for _, d := range n.DNS {
				ip.DnsServerList = append(ip.DnsServerList, d.String())
			}
		}
		out.NicSettingMap = append(out.NicSettingMap, types.CustomizationAdapterMapping{MacAddress: n.MAC, Adapter: ip})
	}
	for _, d := range s.DNSServers {
		out.GlobalIPSettings.DnsServerList = append(out.GlobalIPSettings.DnsServerList, d.String())
	}
	out.GlobalIPSettings.DnsSuffixList = s.DNSSuffixes
	return out
}

func prefixMask(bits int) string {
	var m uint32
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
}

// waitTask waits for a task, canceling it when ctx ends first. It returns
// the task's result (the new VM for a clone) even on failure when known.
func (p *Provider) waitTask(ctx context.Context, ref types.ManagedObjectReference) (any, error) {
	t := object.NewTask(p.client, ref)
	info, err := t.WaitForResult(ctx, nil)
	if err != nil {
		if ctx.Err() != nil {
			// Out of time with the task still running: ask vCenter to
			// cancel it, then wait (at most cleanupTimeout) for it to end
			// either way, so that the caller can undo what it made. A task
			// past the point where it can stop ends in success despite the
			// request, and its result is returned. If it is still running
			// then, what it will leave is unknown.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			_ = t.Cancel(cctx)
			code := errs.CodeOf(ctx.Err())
			var res any
			final, werr := t.WaitForResult(cctx, nil)
			if final != nil {
				res = final.Result
			}
			if werr != nil && cctx.Err() != nil {
				code = errs.OutcomeUnknown
			}
			return res, errs.Wrap(code, "", fmt.Errorf("task %s did not finish in time: %w", ref.Value, ctx.Err()))
		}
		var res any
		if info != nil {
			res = info.Result
		}
		if te, ok := err.(task.Error); ok {
			return res, taskError{fault: te.Fault(), msg: te.Error()}
		}
		return res, err
	}
	return info.Result, nil
}

// PowerOn powers a VM on; it is idempotent.
func (p *Provider) PowerOn(ctx context.Context, id string) error { return p.setPower(ctx, id, true) }

// PowerOff powers a VM off (hard); it is idempotent.
func (p *Provider) PowerOff(ctx context.Context, id string) error { return p.setPower(ctx, id, false) }

func (p *Provider) setPower(ctx context.Context, id string, on bool) error {
	f, err := p.getFacts(ctx, id)
	if err != nil {
		return mapErr("", err, false)
	}
	if f.template {
		return errs.New(errs.FailedPrecondition, "", "the VM is a template")
	}
	if (f.power == types.VirtualMachinePowerStatePoweredOn) == on {
		return nil
	}
	if err := errs.FromContext(ctx, ""); err != nil {
		return err // out of time before the task: nothing sent
	}
	return mapErr("", p.power(ctx, f.ref, on), true)
}

func (p *Provider) power(ctx context.Context, ref types.ManagedObjectReference, on bool) error {
	var task types.ManagedObjectReference
	if on {
		res, err := methods.PowerOnVM_Task(ctx, p.client, &types.PowerOnVM_Task{This: ref})
		if err != nil {
			return err
		}
		task = res.Returnval
	} else {
		res, err := methods.PowerOffVM_Task(ctx, p.client, &types.PowerOffVM_Task{This: ref})
		if err != nil {
			return err
		}
		task = res.Returnval
	}
	_, err := p.waitTask(ctx, task)
	if isFault[*types.InvalidPowerState](err) {
		return nil // already there
	}
	return err
}

// Destroy powers a VM off and deletes it; a VM that does not exist is not
// an error.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	f, err := p.getFacts(ctx, id)
	if errs.Is(err, errs.NotFound) || isGone(err) {
		return nil
	}
	if err != nil {
		return mapErr("", err, false)
	}
	if f.template {
		return errs.New(errs.FailedPrecondition, "", "the VM is a template")
	}
	if err := errs.FromContext(ctx, ""); err != nil {
		return err // out of time before the task: nothing sent
	}
	err = p.destroyRef(ctx, f.ref)
	if isGone(err) {
		err = nil
	}
	p.cacheMu.Lock()
	delete(p.refs, id)
	p.cacheMu.Unlock()
	return mapErr("", err, true)
}

func (p *Provider) destroyRef(ctx context.Context, ref types.ManagedObjectReference) error {
	if err := p.power(ctx, ref, false); err != nil && !isGone(err) {
		return err
	}
	res, err := methods.Destroy_Task(ctx, p.client, &types.Destroy_Task{This: ref})
	if err != nil {
		return err
	}
	_, err = p.waitTask(ctx, res.Returnval)
	return err
}
