package hyperv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/template"
)

// The size of a provisioned VM when the spec does not say (a template is
// a disk file: it carries no size).
const (
	DefaultCPUs      = 2
	DefaultMemoryMiB = 2048
)

// cleanupTimeout bounds the removal of a failed provisioning, which runs
// after the caller's context ended.
const cleanupTimeout = 2 * time.Minute

// keyTag is the Notes a provisioned VM carries: the SHA-256 of the
// request key, so the key itself (a host's value) is not written into the
// cluster, and a restarted process finds the VM again.
func keyTag(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "managedvm-key:" + hex.EncodeToString(sum[:])
}

// keyDir is the directory on the VMs CSV that holds a provisioning's
// configuration, disk and ISO, named from the key (not from the VM's
// name, which may hold characters a path cannot).
func (d *Provider) keyDir(key string) string {
	sum := sha256.Sum256([]byte(key))
	return strings.TrimRight(d.vmsPath, `\`) + `\mvm-` + hex.EncodeToString(sum[:10])
}

// Provision makes a VM from a template on the VMs CSV and makes it a
// cluster role on its owner node:
//
//  1. a request key already carried by a VM (its Notes) returns that VM,
//     finishing what a process that stopped left undone (the cluster
//     role, the power); a VM of that name with another key is
//     AlreadyExists;
//  2. the node: the Up node holding the fewest VMs;
//  3. the cidata ISO (Customization, written by package template) to the
//     VM's directory on the VMs CSV (file/1);
//  4. create/1: the differencing disk on the template (a full copy with
//     Options.FullCopy), New-VM, processors, the NIC on the switch with
//     the access VLAN, integration services, the ISO as a DVD drive, the
//     key in Notes; retried while the new disk is still in use;
//  5. role/1: Add-ClusterVirtualMachineRole;
//  6. power/1 when PowerOn.
//
// On any failure, or when ctx ends (the spec's timeout), undo/1 removes
// the VM, its role and its directory on a context of its own, and the
// cause is returned joined with any error of that removal.
func (d *Provider) Provision(ctx context.Context, spec provider.ProvisionSpec) (provider.VM, error) {
	zone, err := d.zoneName(ctx)
	if err != nil {
		return provider.VM{}, err
	}
	if spec.Zone != zone {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "hyperv: no zone %s", limit.Quote(spec.Zone))
	}
	if d.vmsPath == "" {
		return provider.VM{}, errs.New(errs.FailedPrecondition, "", "hyperv: Options.VMsPath is not set: Provision needs the VMs CSV directory")
	}
	unlock, err := d.lockKey(ctx, spec.Key)
	if err != nil {
		return provider.VM{}, err
	}
	defer unlock()

	tag := keyTag(spec.Key)
	tmpl, err := d.findTemplate(ctx, spec.Template)
	if err != nil {
		return provider.VM{}, err
	}
	vms, owners, err := d.inventory(ctx)
	if err != nil {
		return provider.VM{}, err
	}
	for _, w := range vms {
		if w.Notes == tag {
			return d.finish(ctx, zone, owners[strings.ToLower(w.ID)], w, spec)
		}
	}
	for _, w := range vms {
		if strings.EqualFold(w.Name, spec.Name) {
			return provider.VM{}, errs.Errorf(errs.AlreadyExists, "", "hyperv: a VM named %s exists (VMId %s)", limit.Quote(spec.Name), limit.Quote(w.ID))
		}
	}
	c, err := d.cluster(ctx)
	if err != nil {
		return provider.VM{}, err
	}
	sw := spec.Network.Name
	if sw == "" {
		sw = d.vmSwitch
	}
	if sw == "" {
		return provider.VM{}, errs.New(errs.FailedPrecondition, "", "hyperv: no switch: set Options.Switch or the spec's Network.Name")
	}
	found := false
	for _, w := range c.Switches {
		if strings.EqualFold(w.Name, sw) {
			sw, found = w.Name, true
		}
	}
	if !found {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "hyperv: no virtual switch %s in zone %s", limit.Quote(sw), limit.Quote(zone))
	}
	n := d.placement(c, vms, owners)
	if n == nil {
		return provider.VM{}, errs.New(errs.Unavailable, "", "hyperv: no node of the cluster is Up")
	}

	dir := d.keyDir(spec.Key)
	cp := createParams{Tag: tag, Name: spec.Name, Gen: d.generation, CPUs: spec.CPUs, Memory: spec.MemoryMiB << 20,
		Parent: tmpl.ID, Disk: dir + `\disk0.vhdx`, Full: d.fullCopy, Dir: dir, Switch: sw, Vlan: spec.Network.VLAN}
	if cp.CPUs == 0 {
		cp.CPUs = DefaultCPUs
	}
	if spec.MemoryMiB == 0 {
		cp.Memory = DefaultMemoryMiB << 20
	}

	vm, err := d.provisionSteps(ctx, n, zone, spec, cp)
	if err == nil {
		return vm, nil
	}
	// Undo on a context that outlives the caller's (its deadline may be
	// what ended the provisioning).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var ua undoAnswer
	if uerr := run(cctx, n.ex, n.name, scriptUndo, undoParams{Tag: tag, Dir: dir, Under: d.vmsPath}, &ua); uerr != nil {
		d.log.Warn("hyperv: removing a failed provisioning failed", "node", n.name, "err", uerr)
		return provider.VM{}, errors.Join(err, uerr)
	}
	return provider.VM{}, err
}

// provisionSteps runs steps 3 to 6 of Provision on node n.
func (d *Provider) provisionSteps(ctx context.Context, n *nodeConn, zone string, spec provider.ProvisionSpec, cp createParams) (provider.VM, error) {
	if c := spec.Customization; c != nil {
		iso, err := seedISO(spec, c)
		if err != nil {
			return provider.VM{}, err
		}
		cp.ISO = cp.Dir + `\cidata.iso`
		sum := sha256.Sum256(iso)
		var fa fileAnswer
		if err := run(ctx, n.ex, n.name, scriptFile, fileParams{Path: cp.ISO, Data: base64.StdEncoding.EncodeToString(iso),
			Sha256: strings.ToUpper(hex.EncodeToString(sum[:]))}, &fa); err != nil {
			return provider.VM{}, err
		}
	}
	var ca getAnswer
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 4*time.Second) {
		err := run(ctx, n.ex, n.name, scriptCreate, cp, &ca)
		if err == nil {
			break
		}
		var inUse *inUseError
		if !errors.As(err, &inUse) {
			return provider.VM{}, err
		}
		d.log.Info("hyperv: the new disk is still in use, creating the VM again", "node", n.name, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return provider.VM{}, errs.FromContext(ctx, "")
		case <-t.C:
		}
	}
	if ca.VM == nil {
		return provider.VM{}, errs.Errorf(errs.Internal, "", "hyperv: node %s: create/1 answered no VM", limit.Quote(n.name))
	}
	d.setOwner(ca.VM.ID, n)
	return d.finish(ctx, zone, n, *ca.VM, spec)
}

// finish makes the VM w on node n a cluster role and powers it on when
// the spec asks (both idempotent: a repeated request finishes what a
// stopped process left undone).
func (d *Provider) finish(ctx context.Context, zone string, n *nodeConn, w wireVM, spec provider.ProvisionSpec) (provider.VM, error) {
	if w.Clustered != "True" {
		var ra roleAnswer
		if err := run(ctx, n.ex, n.name, scriptRole, map[string]string{"Id": strings.ToLower(w.ID)}, &ra); err != nil {
			return provider.VM{}, err
		}
		if ra.Found != "True" || ra.VM == nil {
			return provider.VM{}, errs.Errorf(errs.Unavailable, "", "hyperv: VM %s left node %s before it became a cluster role: try again", limit.Quote(w.ID), limit.Quote(n.name))
		}
		w = *ra.VM
	}
	if spec.PowerOn && w.State != "Running" {
		if err := d.PowerOn(ctx, w.ID); err != nil {
			return provider.VM{}, err
		}
		_, got, err := d.locate(ctx, w.ID)
		if err != nil {
			return provider.VM{}, err
		}
		w = got
	}
	return vmOf(zone, w), nil
}

// seedISO writes the NoCloud seed (volume cidata: meta-data, user-data,
// network-config) that cloud-init and cloudbase-init read. Without
// MetaData the meta-data holds an instance-id from the key and the host
// name.
func seedISO(spec provider.ProvisionSpec, c *provider.Customization) ([]byte, error) {
	files := map[string][]byte{}
	meta := c.MetaData
	if len(meta) == 0 {
		host := c.Hostname
		if host == "" {
			host = spec.Name
		}
		sum := sha256.Sum256([]byte(spec.Key))
		meta = []byte("instance-id: mvm-" + hex.EncodeToString(sum[:10]) + "\nlocal-hostname: " + yamlString(host) + "\n")
	}
	files["meta-data"] = meta
	ud := c.UserData
	if len(ud) == 0 {
		ud = []byte("#cloud-config\n{}\n")
	}
	files["user-data"] = ud
	if len(c.NetworkConfig) > 0 {
		files["network-config"] = c.NetworkConfig
	}
	var b bytes.Buffer
	if err := template.WriteISO(&b, "cidata", files); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// yamlString quotes s as a YAML double-quoted scalar.
func yamlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\x`)
			b.WriteString(hex.EncodeToString([]byte{byte(r)}))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// findTemplate resolves a spec's Template: a template's ID (its path) or
// its name, NotFound otherwise.
func (d *Provider) findTemplate(ctx context.Context, ref string) (provider.Template, error) {
	ts, err := d.Templates(ctx, "")
	if err != nil {
		return provider.Template{}, err
	}
	for _, t := range ts {
		if strings.EqualFold(t.ID, ref) || strings.EqualFold(t.Name, ref) {
			return t, nil
		}
	}
	return provider.Template{}, errs.Errorf(errs.NotFound, "", "hyperv: no template %s in %s", limit.Quote(ref), limit.Quote(d.templates))
}

// placement picks the Up node that holds the fewest VMs (first in
// Options order on a tie), or nil.
func (d *Provider) placement(c clusterAnswer, vms []wireVM, owners map[string]*nodeConn) *nodeConn {
	up := map[string]bool{}
	for _, n := range c.Nodes {
		if n.State == "Up" {
			up[strings.ToUpper(n.Name)] = true
		}
	}
	count := map[*nodeConn]int{}
	for _, w := range vms {
		count[owners[strings.ToLower(w.ID)]]++
	}
	var best *nodeConn
	for _, n := range d.nodes {
		if up[strings.ToUpper(n.name)] && (best == nil || count[n] < count[best]) {
			best = n
		}
	}
	return best
}

func (d *Provider) setOwner(id string, n *nodeConn) {
	d.mu.Lock()
	d.owner[strings.ToLower(id)] = n
	d.mu.Unlock()
}

// lockKey serializes the Provision calls of one key in this process (the
// Notes make a key's VM findable across processes).
func (d *Provider) lockKey(ctx context.Context, key string) (func(), error) {
	d.keyMu.Lock()
	l := d.keyLocks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		d.keyLocks[key] = l
	}
	l.refs++
	d.keyMu.Unlock()
	release := func() {
		d.keyMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(d.keyLocks, key)
		}
		d.keyMu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, errs.FromContext(ctx, "")
	}
}

type keyLock struct {
	ch   chan struct{}
	refs int
}
