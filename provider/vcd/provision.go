package vcd

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/vmware/go-vcloud-director/v2/types/v56"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
	mvmtemplate "github.com/managedvm/managedvm/template"
)

const mimeInstantiate = "application/vnd.vmware.vcloud.instantiateVAppTemplateParams+xml"

// Provision instantiates the single-VM vApp template spec.Template into
// a new vApp named spec.Name in the VDC spec.Zone; see the package
// documentation ("Provisioning").
func (p *Provider) Provision(ctx context.Context, spec provider.ProvisionSpec) (provider.VM, error) {
	vm, err := p.provision(ctx, spec)
	return vm, withholdSecret(err, spec)
}

// withholdSecret keeps the spec's administrator password out of an
// error: VCD's messages (an error answer, a failed task) are quoted into
// errors and could repeat a value of the request. Such an error keeps its
// code and loses its message.
func withholdSecret(err error, spec provider.ProvisionSpec) error {
	if err == nil || spec.Customization == nil || spec.Customization.AdminPassword.IsZero() {
		return err
	}
	pw := spec.Customization.AdminPassword.Reveal()
	q := strconv.Quote(pw)
	msg := err.Error()
	if strings.Contains(msg, pw) || strings.Contains(msg, q[1:len(q)-1]) {
		return errs.New(errs.CodeOf(err), "", "VCD's answer repeats the administrator password: its message is withheld")
	}
	return err
}

func (p *Provider) provision(ctx context.Context, spec provider.ProvisionSpec) (provider.VM, error) {
	unlock, err := p.lockKey(ctx, spec.Key)
	if err != nil {
		return provider.VM{}, err
	}
	defer unlock()
	if spec.Network.VLAN != 0 {
		return provider.VM{}, errs.New(errs.InvalidArgument, "", "VCD organization networks have no VLAN to choose: Network.VLAN must be 0")
	}
	vdcs, err := p.vdcs(ctx)
	if err != nil {
		return provider.VM{}, err
	}
	vdc := vdcs[spec.Zone]
	if vdc == nil {
		return provider.VM{}, errs.Errorf(errs.NotFound, "", "no zone (organization VDC) %s", limit.Quote(spec.Zone))
	}
	if vm, ok, err := p.existing(ctx, spec); ok || err != nil {
		return vm, err
	}
	tpl, err := p.findTemplate(ctx, spec.Template)
	if err != nil {
		return provider.VM{}, err
	}
	netRef, err := p.findNetwork(ctx, spec.Zone, spec.Network.Name)
	if err != nil {
		return provider.VM{}, err
	}
	// VCD's limit on the script is checked once the template and network
	// are known (a spec within the portable limits reaches them first),
	// still before anything is made.
	script, err := customizationScript(spec.Customization)
	if err != nil {
		return provider.VM{}, err
	}
	params := p.instantiateParams(spec, tpl, netRef, script)
	body, err := xml.Marshal(params)
	if err != nil {
		return provider.VM{}, errs.New(errs.Internal, "", "request does not render")
	}
	a, err := p.c.do(ctx, request{method: http.MethodPost, path: vdc.HREF + "/action/instantiateVAppTemplate",
		body: append([]byte(xml.Header), body...), ctype: mimeInstantiate})
	if errs.Is(err, errs.AlreadyExists) {
		// Another process made a vApp of that name meanwhile: ours if
		// it carries our key.
		if vm, ok, err2 := p.existing(ctx, spec); ok || err2 != nil {
			return vm, err2
		}
		return provider.VM{}, errs.Errorf(errs.AlreadyExists, "", "a vApp named %s exists in VDC %s", limit.Quote(spec.Name), limit.Quote(spec.Zone))
	}
	if err != nil {
		return provider.VM{}, err
	}
	var va types.VApp
	if err := xml.Unmarshal(a.body, &va); err != nil || va.HREF == "" {
		return provider.VM{}, errs.New(errs.OutcomeUnknown, "", "VCD's answer to the instantiation is not a vApp: the vApp may exist")
	}
	vm, err := p.finish(ctx, spec, &va)
	if err != nil {
		err = withholdSecret(err, spec) // before the cleanup logs it
		p.cleanup(&va, err)
		return provider.VM{}, err
	}
	return vm, nil
}

// finish waits for the instantiation, resizes and powers on, each only
// when not done yet (a vApp found by its key may have got that far).
func (p *Provider) finish(ctx context.Context, spec provider.ProvisionSpec, va *types.VApp) (provider.VM, error) {
	if va.Tasks != nil {
		for _, t := range va.Tasks.Task {
			if err := p.waitTask(ctx, t); err != nil {
				return provider.VM{}, err
			}
		}
	}
	cur, err := p.vapp(ctx, "vapp-"+urnUUID(va.HREF))
	if err != nil {
		return provider.VM{}, err
	}
	if cur.Children == nil || len(cur.Children.VM) != 1 {
		return provider.VM{}, errs.New(errs.FailedPrecondition, "", "the template did not make exactly one VM")
	}
	cvm := cur.Children.VM[0]
	vmID := "vm-" + urnUUID(cvm.HREF)
	resize := false
	if vs := cvm.VmSpecSection; vs == nil {
		resize = spec.CPUs > 0 || spec.MemoryMiB > 0
	} else {
		resize = spec.CPUs > 0 && (vs.NumCpus == nil || *vs.NumCpus != spec.CPUs) ||
			spec.MemoryMiB > 0 && (vs.MemoryResourceMb == nil || vs.MemoryResourceMb.Configured != spec.MemoryMiB)
	}
	if resize {
		vs := &types.VmSpecSection{Info: "The section of VM's specification"}
		if spec.CPUs > 0 {
			vs.NumCpus = &spec.CPUs
		}
		if spec.MemoryMiB > 0 {
			vs.MemoryResourceMb = &types.MemoryResourceMb{Configured: spec.MemoryMiB}
		}
		body := &types.Vm{Xmlns: types.XMLNamespaceVCloud, Ovf: types.XMLNamespaceOVF, Name: cur.Children.VM[0].Name, VmSpecSection: vs}
		if err := p.postTask(ctx, http.MethodPost, "/api/vApp/"+vmID+"/action/reconfigureVm", body, "application/vnd.vmware.vcloud.vm+xml"); err != nil {
			return provider.VM{}, err
		}
	}
	if spec.PowerOn && cvm.Status != 4 { // 4: POWERED_ON
		if err := p.postTask(ctx, http.MethodPost, "/api/vApp/vapp-"+urnUUID(va.HREF)+"/power/action/powerOn", nil, ""); err != nil {
			return provider.VM{}, err
		}
	}
	return p.Get(ctx, vmID)
}

// cleanup removes a vApp whose provisioning failed: it cancels its
// running tasks, then undeploys and deletes it (and so its vApp
// network), under a context of its own (the caller's may have ended).
func (p *Provider) cleanup(va *types.VApp, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if va.Tasks != nil {
		for _, t := range va.Tasks.Task {
			p.cancelTask(ctx, t)
		}
	}
	id := "vapp-" + urnUUID(va.HREF)
	err := p.removeVApp(ctx, id, "", nil)
	if err != nil && !errs.Is(err, errs.NotFound) {
		p.log.Warn("vcd: a failed provisioning left its vApp", "vapp", id, "err", err, "cause", cause)
		return
	}
	p.log.Info("vcd: removed the vApp of a failed provisioning", "vapp", id, "cause", cause)
}

// existing finds the vApp named spec.Name in the zone. Ours (its
// Description holds spec.Key): its VM, once its tasks are done; a vApp
// of ours left FAILED_CREATION by a crash is removed and ok is false.
// Another's: AlreadyExists.
func (p *Provider) existing(ctx context.Context, spec provider.ProvisionSpec) (provider.VM, bool, error) {
	var href string
	err := p.query(ctx, "vApp", "name=="+fiqlValue(spec.Name)+";vdcName=="+fiqlValue(spec.Zone), func(pg *queryPage) {
		for _, r := range pg.VApp {
			if r.Name == spec.Name && r.VdcName == spec.Zone {
				href = r.HREF
			}
		}
	})
	if err != nil || href == "" {
		return provider.VM{}, false, err
	}
	id := "vapp-" + urnUUID(href)
	a, err := p.vapp(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return provider.VM{}, false, nil
	}
	if err != nil {
		return provider.VM{}, false, err
	}
	if keyOf(a) != spec.Key {
		return provider.VM{}, false, errs.Errorf(errs.AlreadyExists, "", "a vApp named %s exists in VDC %s", limit.Quote(spec.Name), limit.Quote(spec.Zone))
	}
	if a.Status == -1 || a.Children == nil || len(a.Children.VM) == 0 {
		p.cleanup(a, errs.New(errs.FailedPrecondition, "", "left FAILED_CREATION"))
		return provider.VM{}, false, nil
	}
	vm, err := p.finish(ctx, spec, a)
	return vm, err == nil, err
}

// template is a resolved template.
type template struct {
	vmHREF, vappTemplateHREF, vmName string
}

// findTemplate resolves spec.Template: a template VM id ("vm-UUID") or
// a vApp template name.
func (p *Provider) findTemplate(ctx context.Context, ref string) (template, error) {
	filter := "isVAppTemplate==true;containerName==" + fiqlValue(ref)
	if u, ok := vmUUID(ref); ok {
		filter = "isVAppTemplate==true;id==" + fiqlValue("urn:vcloud:vm:"+u)
	}
	var found []template
	err := p.query(ctx, "vm", filter, func(pg *queryPage) {
		for _, r := range pg.VM {
			if r.VAppTemplate {
				found = append(found, template{vmHREF: r.HREF, vappTemplateHREF: r.ContainerID, vmName: r.Name})
			}
		}
	})
	switch {
	case err != nil:
		return template{}, err
	case len(found) == 0:
		return template{}, errs.Errorf(errs.NotFound, "", "no vApp template %s", limit.Quote(ref))
	case len(found) > 1:
		return template{}, errs.Errorf(errs.FailedPrecondition, "", "%d vApp templates are named %s: give the template id", len(found), limit.Quote(ref))
	}
	return found[0], nil
}

// findNetwork resolves the organization network of the zone: name, or
// when empty the zone's only network (none: the VM is not connected).
func (p *Provider) findNetwork(ctx context.Context, zone, name string) (*types.Reference, error) {
	var nets []*types.QueryResultOrgVdcNetworkRecordType
	err := p.query(ctx, "orgVdcNetwork", "vdcName=="+fiqlValue(zone), func(pg *queryPage) {
		for _, r := range pg.Network {
			if r.VdcName == zone && (name == "" || r.Name == name) {
				nets = append(nets, r)
			}
		}
	})
	switch {
	case err != nil:
		return nil, err
	case name != "" && len(nets) == 0:
		return nil, errs.Errorf(errs.NotFound, "", "no organization network %s in VDC %s", limit.Quote(name), limit.Quote(zone))
	case len(nets) == 0:
		return nil, nil
	case len(nets) > 1:
		return nil, errs.Errorf(errs.InvalidArgument, "", "VDC %s has %d organization networks: Network.Name must name one", limit.Quote(zone), len(nets))
	}
	return &types.Reference{HREF: nets[0].HREF, Name: nets[0].Name}, nil
}

// instantiateParams builds the InstantiateVAppTemplateParams: a vApp
// network bridged to the organization network, the VM named for the
// vApp on it (POOL or MANUAL address), guest customization.
func (p *Provider) instantiateParams(spec provider.ProvisionSpec, tpl template, net *types.Reference, script []byte) *types.InstantiateVAppTemplateParams {
	vmName := spec.Name
	nic := &types.NetworkConnection{Network: "none", NetworkConnectionIndex: 0, IPAddressAllocationMode: types.IPAllocationModeNone}
	ip := &types.InstantiationParams{}
	if net != nil {
		ip.NetworkConfigSection = &types.NetworkConfigSection{Info: "Configuration parameters for logical networks",
			NetworkConfig: []types.VAppNetworkConfiguration{{NetworkName: net.Name,
				Configuration: &types.NetworkConfiguration{FenceMode: types.FenceModeBridged, ParentNetwork: net}}}}
		nic = &types.NetworkConnection{Network: net.Name, NetworkConnectionIndex: 0, IsConnected: true,
			IPAddressAllocationMode: types.IPAllocationModePool}
	}
	vmIP := &types.InstantiationParams{NetworkConnectionSection: &types.NetworkConnectionSection{
		Info: "Specifies the available VM network connections", PrimaryNetworkConnectionIndex: 0,
		NetworkConnection: []*types.NetworkConnection{nic}}}
	needsCust := false
	if c := spec.Customization; c != nil {
		needsCust = true
		if c.Static != nil && net != nil {
			nic.IPAddressAllocationMode = types.IPAllocationModeManual
			nic.IPAddress = c.Static.Address.Addr().String()
		}
		host := c.Hostname
		if host == "" {
			host = spec.Name
		}
		if i := indexByte(host, '.'); i > 0 {
			host = host[:i]
		}
		t := true
		// A given password goes to VCD in AdminPassword (VCD takes it
		// only with AdminPasswordAuto false); without one VCD generates
		// it. The request body is never logged or quoted.
		auto := c.AdminPassword.IsZero()
		vmIP.GuestCustomizationSection = &types.GuestCustomizationSection{Info: "Specifies Guest OS Customization Settings",
			Enabled: &t, ComputerName: host, AdminPasswordEnabled: &t, AdminPasswordAuto: &auto,
			AdminPassword: c.AdminPassword.Reveal(), CustomizationScript: string(script)}
	}
	return &types.InstantiateVAppTemplateParams{
		Xmlns: types.XMLNamespaceVCloud, Ovf: types.XMLNamespaceOVF,
		Name: spec.Name, Description: keyMarker + spec.Key, Deploy: false, PowerOn: false,
		InstantiationParams: ip,
		Source:              &types.Reference{HREF: tpl.vappTemplateHREF},
		SourcedItem: &types.SourcedCompositionItemParam{
			Source:              &types.Reference{HREF: tpl.vmHREF},
			VMGeneralParams:     &types.VMGeneralParams{Name: vmName, NeedsCustomization: needsCust},
			InstantiationParams: vmIP,
		},
		AllEULAsAccepted: true,
	}
}

// customizationScript is VCD's customization script for c: its cloud-init
// documents as a NoCloud seed written by template's VCD script (VCD runs
// the script in the guest as a shell script). No documents: no script.
func customizationScript(c *provider.Customization) ([]byte, error) {
	if c == nil || len(c.UserData) == 0 && len(c.MetaData) == 0 && len(c.NetworkConfig) == 0 {
		return nil, nil
	}
	nc := &mvmtemplate.NoCloud{MetaData: c.MetaData, UserData: c.UserData, NetworkConfig: c.NetworkConfig}
	script, err := nc.VCDScript()
	if err != nil {
		var e *errs.Error
		if errors.As(err, &e) {
			// The portable type names the operation.
			return nil, errs.New(e.Code, "", "Customization: "+e.Msg)
		}
		return nil, err
	}
	return script, nil
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}
