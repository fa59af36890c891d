package ovirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	ovirtsdk "github.com/ovirt/go-ovirt"
	"go.yaml.in/yaml/v3"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// waitLimit bounds the waits of PowerOn, PowerOff and Destroy whose
// context has no deadline.
const waitLimit = 10 * time.Minute

// correlationID derives the engine correlation id of a request key: a
// UUID-shaped hash (the engine's search types correlation_id as a UUID),
// the same in every process, so a restarted host finds what an earlier
// Provision with the key made.
func correlationID(key string) string {
	h := sha256.Sum256([]byte("managedvm/provider/ovirt\x00" + key))
	h[6] = h[6]&0x0f | 0x50 // version 5 layout
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// keyComment is the VM comment marking the request key's VM.
func keyComment(cid string) string { return "managedvm-" + cid }

// findByKey returns the VM made for the correlation id, if any.
func (p *Provider) findByKey(ctx context.Context, cid string) (*ovirtsdk.Vm, error) {
	q := url.Values{"search": {"comment=" + keyComment(cid)}, "follow": {follow}}
	s, err := getMany(ctx, p.c, "/vms", q, ovirtsdk.XMLVmReadMany)
	if err != nil {
		return nil, err
	}
	for _, v := range s.Slice() {
		if c, _ := v.Comment(); c == keyComment(cid) {
			return v, nil
		}
	}
	return nil, nil
}

// resolveTemplate finds the template by id or name in the zone's data
// center.
func (p *Provider) resolveTemplate(ctx context.Context, t *topology, z *zone, ref string) (*ovirtsdk.Template, error) {
	tps, err := p.allTemplates(ctx)
	if err != nil {
		return nil, err
	}
	var byName *ovirtsdk.Template
	for _, tp := range tps {
		tz := templateZone(t, tp)
		if tz == nil || tz.dcID != z.dcID {
			continue
		}
		if str(tp.Id()) == ref {
			return tp, nil
		}
		if str(tp.Name()) == ref && byName == nil {
			byName = tp
		}
	}
	if byName != nil {
		return byName, nil
	}
	return nil, errs.Errorf(errs.NotFound, "", "template %s not found in zone %s", limit.Quote(ref), limit.Quote(z.cfg.Name))
}

// resolveProfile finds the vNIC profile of the zone named like the
// network (profile or network name), with the VLAN when one is asked.
func resolveProfile(z *zone, n provider.Network) (profileInfo, error) {
	for _, pr := range z.profiles {
		if (pr.name == n.Name || pr.network == n.Name) && (n.VLAN == 0 || pr.vlan == n.VLAN) {
			return pr, nil
		}
	}
	return profileInfo{}, errs.Errorf(errs.NotFound, "", "network %s not found in zone %s", limit.Quote(n.Name), limit.Quote(z.cfg.Name))
}

// vmBody renders the POST /vms body.
func (p *Provider) vmBody(ctx context.Context, spec provider.ProvisionSpec, z *zone, tp *ovirtsdk.Template, cid string) ([]byte, error) {
	b := ovirtsdk.NewVmBuilder().Name(spec.Name).Comment(keyComment(cid)).
		Cluster(ovirtsdk.NewClusterBuilder().Id(z.clID).MustBuild()).
		Template(ovirtsdk.NewTemplateBuilder().Id(str(tp.Id())).MustBuild())
	if spec.MemoryMiB > 0 {
		b.Memory(spec.MemoryMiB << 20)
	}
	if spec.CPUs > 0 {
		b.Cpu(ovirtsdk.NewCpuBuilder().Topology(ovirtsdk.NewCpuTopologyBuilder().Sockets(int64(spec.CPUs)).Cores(1).Threads(1).MustBuild()).MustBuild())
	}
	if c := spec.Customization; c != nil {
		ib := ovirtsdk.NewInitializationBuilder()
		host := c.Hostname
		if host == "" {
			host = spec.Name
		}
		ib.HostName(host)
		if len(c.UserData) > 0 {
			ib.CustomScript(string(c.UserData))
			if name, keys := cloudUser(c.UserData); name != "" {
				ib.UserName(name)
				if keys != "" {
					ib.AuthorizedSshKeys(keys)
				}
			}
		}
		if st := c.Static; st != nil {
			ip := ovirtsdk.NewIpBuilder().Address(st.Address.Addr().String()).Netmask(netmask(st.Address)).Version(ovirtsdk.IPVERSION_V4)
			if st.Gateway.IsValid() {
				ip.Gateway(st.Gateway.String())
			}
			ib.NicConfigurationsOfAny(ovirtsdk.NewNicConfigurationBuilder().Name("eth0").OnBoot(true).
				BootProtocol(ovirtsdk.BOOTPROTOCOL_STATIC).Ip(ip.MustBuild()).MustBuild())
			var dns []string
			for _, a := range st.DNS {
				dns = append(dns, a.String())
			}
			if len(dns) > 0 {
				ib.DnsServers(strings.Join(dns, " "))
			}
		}
		b.Initialization(ib.MustBuild())
	}
	if p.opts.Clone {
		sd := z.storageChosen
		if sd == "" {
			best := int64(-1)
			for _, s := range z.storage {
				if s.status == "active" && s.available > best {
					sd, best = s.id, s.available
				}
			}
		}
		if sd != "" {
			das, err := getMany(ctx, p.c, "/templates/"+url.PathEscape(str(tp.Id()))+"/diskattachments", nil, ovirtsdk.XMLDiskAttachmentReadMany)
			if err != nil {
				return nil, err
			}
			var atts []*ovirtsdk.DiskAttachment
			for _, da := range das.Slice() {
				d, ok := da.Disk()
				if !ok {
					continue
				}
				atts = append(atts, ovirtsdk.NewDiskAttachmentBuilder().Disk(ovirtsdk.NewDiskBuilder().Id(str(d.Id())).
					Format(ovirtsdk.DISKFORMAT_COW).StorageDomainsOfAny(ovirtsdk.NewStorageDomainBuilder().Id(sd).MustBuild()).MustBuild()).MustBuild())
			}
			b.DiskAttachmentsOfAny(atts...)
		}
	}
	vm, err := b.Build()
	if err != nil {
		return nil, errs.New(errs.Internal, "", "VM request does not build")
	}
	return writeXML(vm, "vm", ovirtsdk.XMLVmWriteOne)
}

func netmask(p netip.Prefix) string {
	bits := p.Bits()
	var m [4]byte
	for i := 0; i < 4; i++ {
		n := min(max(bits-8*i, 0), 8)
		m[i] = byte(0xff << (8 - n))
	}
	return netip.AddrFrom4(m).String()
}

// Provision adds a VM from the template (thin, or a full copy with
// Options.Clone), sets its NIC's vNIC profile, waits for its creation
// jobs and for image_locked to clear, and starts it when asked. A
// repeated key returns the key's VM (found by the key's mark in the VM's
// comment, so also after a restart). On failure or when ctx ends, the
// partial VM is removed.
func (p *Provider) Provision(ctx context.Context, spec provider.ProvisionSpec) (provider.VM, error) {
	unlock, err := p.lockKey(ctx, spec.Key)
	if err != nil {
		return provider.VM{}, err
	}
	defer unlock()
	cid := correlationID(spec.Key)
	if v, err := p.findByKey(ctx, cid); err != nil {
		return provider.VM{}, err
	} else if v != nil {
		return p.finish(ctx, str(v.Id()), cid, spec)
	}
	z, t, err := p.zoneNamed(ctx, spec.Zone)
	if err != nil {
		return provider.VM{}, err
	}
	tp, err := p.resolveTemplate(ctx, t, z, spec.Template)
	if err != nil {
		return provider.VM{}, err
	}
	var prof profileInfo
	if spec.Network.Name != "" {
		if prof, err = resolveProfile(z, spec.Network); err != nil {
			return provider.VM{}, err
		}
	}
	body, err := p.vmBody(ctx, spec, z, tp, cid)
	if err != nil {
		return provider.VM{}, err
	}
	q := url.Values{"correlation_id": {cid}}
	if p.opts.Clone {
		q.Set("clone", "true")
	}
	ans, err := p.c.do(ctx, request{method: http.MethodPost, path: "/vms", query: q, body: body})
	var id string
	if err == nil {
		v, rerr := readXML(ans, func(r *ovirtsdk.XMLReader, st *xml.StartElement) (*ovirtsdk.Vm, error) {
			return ovirtsdk.XMLVmReadOne(r, st, "vm")
		})
		if rerr != nil {
			err = rerr
		} else {
			id = str(v.Id())
		}
	}
	if err != nil && errs.Is(err, errs.AlreadyExists) {
		// Another process may have made the key's VM meanwhile.
		if v, ferr := p.findByKey(ctx, cid); ferr == nil && v != nil {
			return p.finish(ctx, str(v.Id()), cid, spec)
		}
		return provider.VM{}, err
	}
	if err != nil {
		if errs.Is(err, errs.OutcomeUnknown) || errs.Is(err, errs.Canceled) || errs.Is(err, errs.DeadlineExceeded) || id == "" && errs.Is(err, errs.Internal) {
			// The engine may have made it: remove what the key names.
			return provider.VM{}, errors.Join(err, p.cleanup(cid, ""))
		}
		return provider.VM{}, err
	}
	if spec.Network.Name != "" {
		if err := p.waitCreated(ctx, id, cid); err != nil {
			return provider.VM{}, errors.Join(err, p.cleanup(cid, id))
		}
		if err := p.setProfile(ctx, id, prof.id); err != nil {
			return provider.VM{}, errors.Join(err, p.cleanup(cid, id))
		}
	}
	vm, err := p.finish(ctx, id, cid, spec)
	if err != nil {
		return provider.VM{}, errors.Join(err, p.cleanup(cid, id))
	}
	return vm, nil
}

// finish waits for the key's VM to be created, starts it when asked and
// returns it.
func (p *Provider) finish(ctx context.Context, id, cid string, spec provider.ProvisionSpec) (provider.VM, error) {
	if err := p.waitCreated(ctx, id, cid); err != nil {
		return provider.VM{}, err
	}
	if spec.PowerOn {
		if err := p.start(ctx, id, spec.Customization != nil); err != nil {
			return provider.VM{}, err
		}
	}
	return p.Get(ctx, id)
}

// waitCreated waits until the correlation id's jobs are done and the VM
// is no longer image_locked. A failed job, or the VM gone (the engine
// removes a VM whose copy failed), is an error.
func (p *Provider) waitCreated(ctx context.Context, id, cid string) error {
	return p.poll(ctx, func() (bool, error) {
		jobs, err := getMany(ctx, p.c, "/jobs", url.Values{"search": {"correlation_id=" + cid}}, ovirtsdk.XMLJobReadMany)
		if err != nil {
			return false, err
		}
		for _, j := range jobs.Slice() {
			st, _ := j.Status()
			switch st {
			case ovirtsdk.JOBSTATUS_STARTED:
				return false, nil
			case ovirtsdk.JOBSTATUS_FAILED, ovirtsdk.JOBSTATUS_ABORTED:
				return false, errs.Errorf(errs.FailedPrecondition, "", "engine job %s failed", limit.Quote(str(j.Description())))
			}
		}
		v, err := p.getVM(ctx, id)
		if errs.Is(err, errs.NotFound) {
			return false, errs.Errorf(errs.FailedPrecondition, "", "VM %s was removed by the engine while it was created", limit.Quote(id))
		}
		if err != nil {
			return false, err
		}
		st, _ := v.Status()
		return st != ovirtsdk.VMSTATUS_IMAGE_LOCKED, nil
	})
}

// poll calls f every StepPoll until it is done, fails, or ctx ends
// (bounded by waitLimit without a deadline). Unavailable answers (the
// engine restarting, a VM locked) are retried.
func (p *Provider) poll(ctx context.Context, f func() (bool, error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, waitLimit)
		defer cancel()
	}
	wait := 20 * time.Millisecond
	for {
		done, err := f()
		if ctx.Err() != nil {
			return errs.FromContext(ctx, "")
		}
		if err != nil && !errs.Is(err, errs.Unavailable) {
			return err
		}
		if done && err == nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errs.FromContext(ctx, "")
		case <-t.C:
		}
		wait = min(2*wait, p.opts.StepPoll)
	}
}

// setProfile puts the VM's first NIC on the vNIC profile (a POST /vms
// body's NICs are ignored by the engine: the VM has the template's).
func (p *Provider) setProfile(ctx context.Context, id, profileID string) error {
	nics, err := getMany(ctx, p.c, "/vms/"+url.PathEscape(id)+"/nics", nil, ovirtsdk.XMLNicReadMany)
	if err != nil {
		return err
	}
	prof := ovirtsdk.NewVnicProfileBuilder().Id(profileID).MustBuild()
	if len(nics.Slice()) == 0 {
		body, err := writeXML(ovirtsdk.NewNicBuilder().Name("nic1").Interface(ovirtsdk.NICINTERFACE_VIRTIO).VnicProfile(prof).MustBuild(), "nic", ovirtsdk.XMLNicWriteOne)
		if err != nil {
			return err
		}
		_, err = p.c.do(ctx, request{method: http.MethodPost, path: "/vms/" + url.PathEscape(id) + "/nics", body: body})
		return err
	}
	nic := nics.Slice()[0]
	if vp, ok := nic.VnicProfile(); ok && str(vp.Id()) == profileID {
		return nil
	}
	body, err := writeXML(ovirtsdk.NewNicBuilder().VnicProfile(prof).MustBuild(), "nic", ovirtsdk.XMLNicWriteOne)
	if err != nil {
		return err
	}
	_, err = p.c.do(ctx, request{method: http.MethodPut, path: "/vms/" + url.PathEscape(id) + "/nics/" + url.PathEscape(str(nic.Id())), body: body})
	return err
}

// cleanup removes the key's VM (by id, or found by the key's mark) on a
// context that outlives the caller's, and waits until it is gone.
func (p *Provider) cleanup(cid, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if id == "" {
		v, err := p.findByKey(ctx, cid)
		if err != nil {
			return errs.WrapOp("cleanup", err)
		}
		if v == nil {
			return nil
		}
		id = str(v.Id())
	}
	if err := p.remove(ctx, id); err != nil {
		p.log.Warn("ovirt: partial VM not removed", "vm", id, "err", err)
		return errs.WrapOp("cleanup", err)
	}
	p.log.Debug("ovirt: partial VM removed", "vm", id)
	return nil
}

// action posts a VM action (start, stop).
func (p *Provider) action(ctx context.Context, id, verb string, a *ovirtsdk.Action) error {
	body, err := writeXML(a, "action", ovirtsdk.XMLActionWriteOne)
	if err != nil {
		return err
	}
	_, err = p.c.do(ctx, request{method: http.MethodPost, path: "/vms/" + url.PathEscape(id) + "/" + verb, body: body})
	return err
}

// vmOrTemplate reads the VM; a template id is FailedPrecondition.
func (p *Provider) vmOrTemplate(ctx context.Context, id string) (*ovirtsdk.Vm, error) {
	v, err := p.getVM(ctx, id)
	if errs.Is(err, errs.NotFound) {
		if _, terr := p.getTemplate(ctx, id); terr == nil {
			return nil, errs.Errorf(errs.FailedPrecondition, "", "%s is a template", limit.Quote(id))
		}
		return nil, errs.Errorf(errs.NotFound, "", "VM %s not found", limit.Quote(id))
	}
	return v, err
}

func (p *Provider) status(ctx context.Context, id string) (ovirtsdk.VmStatus, error) {
	v, err := p.getVM(ctx, id)
	if err != nil {
		return "", err
	}
	st, _ := v.Status()
	return st, nil
}

// start starts the VM (with its initialization when asked) and waits for
// up.
func (p *Provider) start(ctx context.Context, id string, useInit bool) error {
	st, err := p.status(ctx, id)
	if err != nil {
		return err
	}
	if powerOf(st) != provider.PoweredOn {
		a := ovirtsdk.NewActionBuilder()
		if useInit {
			a.UseCloudInit(true)
		}
		err := p.poll(ctx, func() (bool, error) {
			err := p.action(ctx, id, "start", a.MustBuild())
			if err != nil && strings.Contains(err.Error(), "VM is running") {
				return true, nil
			}
			return err == nil, err
		})
		if err != nil {
			return err
		}
	}
	return p.poll(ctx, func() (bool, error) {
		st, err := p.status(ctx, id)
		if err != nil {
			return false, err
		}
		if st == ovirtsdk.VMSTATUS_DOWN {
			return false, errs.Errorf(errs.FailedPrecondition, "", "VM %s went down while starting", limit.Quote(id))
		}
		return st == ovirtsdk.VMSTATUS_UP, nil
	})
}

// powerOff powers the VM off and waits for down.
func (p *Provider) powerOff(ctx context.Context, id string) error {
	return p.poll(ctx, func() (bool, error) {
		st, err := p.status(ctx, id)
		if err != nil {
			return false, err
		}
		switch st {
		case ovirtsdk.VMSTATUS_DOWN, ovirtsdk.VMSTATUS_IMAGE_LOCKED:
			return true, nil
		case ovirtsdk.VMSTATUS_POWERING_DOWN:
			return false, nil
		}
		err = p.action(ctx, id, "stop", ovirtsdk.NewActionBuilder().MustBuild())
		if err != nil && strings.Contains(err.Error(), "VM is not running") {
			err = nil
		}
		return false, err
	})
}

// PowerOn starts the VM and waits until it is up.
func (p *Provider) PowerOn(ctx context.Context, id string) error {
	if _, err := p.vmOrTemplate(ctx, id); err != nil {
		return err
	}
	return p.start(ctx, id, false)
}

// PowerOff stops the VM (a hard power-off) and waits until it is down.
func (p *Provider) PowerOff(ctx context.Context, id string) error {
	if _, err := p.vmOrTemplate(ctx, id); err != nil {
		return err
	}
	return p.powerOff(ctx, id)
}

// Destroy powers the VM off and removes it with its disks; a VM that
// does not exist is nil.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	_, err := p.vmOrTemplate(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return p.remove(ctx, id)
}

// remove stops the VM, deletes it (retrying while the engine says it is
// locked: a VM still image_locked cannot be removed) and waits until it
// is gone.
func (p *Provider) remove(ctx context.Context, id string) error {
	if err := p.powerOff(ctx, id); err != nil {
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		return err
	}
	err := p.poll(ctx, func() (bool, error) {
		_, err := p.c.do(ctx, request{method: http.MethodDelete, path: "/vms/" + url.PathEscape(id)})
		if errs.Is(err, errs.NotFound) {
			return true, nil
		}
		if err != nil && strings.Contains(err.Error(), "VM is running") {
			return false, p.powerOff(ctx, id)
		}
		return err == nil, err
	})
	if err != nil {
		return err
	}
	return p.poll(ctx, func() (bool, error) {
		_, err := p.getVM(ctx, id)
		if errs.Is(err, errs.NotFound) {
			return true, nil
		}
		return false, err
	})
}

// Templates lists the templates of the zone's data center (every
// template but Blank for "").
func (p *Provider) Templates(ctx context.Context, zoneName string) ([]provider.Template, error) {
	var z *zone
	t, err := p.topo(ctx, false)
	if err != nil {
		return nil, err
	}
	if zoneName != "" {
		if z, t, err = p.zoneNamed(ctx, zoneName); err != nil {
			return nil, err
		}
	}
	tps, err := p.allTemplates(ctx)
	if err != nil {
		return nil, err
	}
	var out []provider.Template
	for _, tp := range tps {
		tz := templateZone(t, tp)
		if tz == nil || (z != nil && tz.dcID != z.dcID) {
			continue
		}
		if z != nil {
			tz = z
		}
		st, _ := tp.Status()
		pt := provider.Template{ID: str(tp.Id()), Name: str(tp.Name()), Zone: tz.cfg.Name,
			Attributes: map[string]string{"status": string(st), "datacenter": tz.dcName}}
		if os, ok := tp.Os(); ok {
			typ, _ := os.Type()
			pt.Attributes["os_type"] = typ
			pt.Family = familyOfOSType(typ)
			pt.OSName = typ
		}
		out = append(out, pt)
	}
	return out, nil
}

// familyOfOSType maps the engine's os type ("rhel_9x64", "windows_2022")
// to a family.
func familyOfOSType(typ string) guest.OSFamily {
	switch {
	case strings.HasPrefix(typ, "windows"):
		return guest.Windows
	case typ == "" || typ == "other":
		return guest.FamilyUnknown
	}
	return guest.Linux
}

// cloudUser reads the first user of a #cloud-config document (name and
// ssh_authorized_keys), for the initialization's user_name and
// authorized_ssh_keys. Anything else gives "".
func cloudUser(userData []byte) (name, keys string) {
	if !bytes.HasPrefix(userData, []byte("#cloud-config")) {
		return "", ""
	}
	var doc struct {
		Users []yaml.Node `yaml:"users"`
	}
	if yaml.Unmarshal(userData, &doc) != nil {
		return "", ""
	}
	for _, n := range doc.Users {
		var u struct {
			Name string   `yaml:"name"`
			Keys []string `yaml:"ssh_authorized_keys"`
		}
		if n.Kind != yaml.MappingNode || n.Decode(&u) != nil || u.Name == "" {
			continue // "default", or not a user
		}
		return u.Name, strings.Join(u.Keys, "\n")
	}
	return "", ""
}
