package vcd

import (
	"context"
	"encoding/xml"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vmware/go-vcloud-director/v2/types/v56"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// keyMarker prefixes the request key in a vApp's Description: the key
// survives a restart of the host with the vApp itself.
const keyMarker = "managedvm-key: "

// cleanupTimeout bounds the removal of a failed vApp, which runs after
// the caller's context ended.
const cleanupTimeout = 2 * time.Minute

// waitTask polls a task (GET /api/task/{id}) until it ends, every 5 ms
// at first and then up to Options.TaskPoll apart. success is nil; error
// is the task's error with VCD's minor code; aborted is FailedPrecondition
// (govcd's WaitTaskCompletion reports it as success). When ctx ends first
// the task is left running and ctx's error returned.
func (p *Provider) waitTask(ctx context.Context, t *types.Task) error {
	return p.c.waitTask(ctx, t, p.opts.TaskPoll)
}

// waitTask is Provider.waitTask with the longest poll interval given.
func (c *conn) waitTask(ctx context.Context, t *types.Task, poll time.Duration) error {
	delay := 5 * time.Millisecond
	for {
		switch t.Status {
		case "success":
			return nil
		case "error":
			a := &APIError{Status: http.StatusBadRequest, Message: "the task failed"}
			if t.Error != nil {
				a.Status, a.Minor, a.Message = t.Error.MajorErrorCode, t.Error.MinorErrorCode, trimRequestID(t.Error.Message)
			}
			code := errs.FailedPrecondition
			if a.Busy() {
				code = errs.Unavailable
			}
			return errs.Errorf(code, "", "VCD task %s failed: %w", limit.Quote(t.OperationName), a)
		case "aborted", "canceled":
			return errs.Errorf(errs.FailedPrecondition, "", "VCD task %s was aborted", limit.Quote(t.OperationName))
		}
		tm := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			tm.Stop()
			return errs.FromContext(ctx, "")
		case <-tm.C:
		}
		delay = min(delay*2, poll)
		var nt types.Task
		if err := c.getXML(ctx, t.HREF, nil, &nt); err != nil {
			return err
		}
		t = &nt
	}
}

// cancelTask asks VCD to cancel a running task (best effort).
func (p *Provider) cancelTask(ctx context.Context, t *types.Task) {
	if t == nil || t.HREF == "" {
		return
	}
	_, _ = p.c.do(ctx, request{method: http.MethodPost, path: t.HREF + "/action/cancel"})
}

// postTask sends a change that VCD answers with a Task, and waits for
// it. BUSY_ENTITY (another operation of the entity is running) is
// retried with backoff until ctx ends: VCD did nothing.
func (p *Provider) postTask(ctx context.Context, method, path string, body any, ctype string) error {
	var raw []byte
	if body != nil {
		b, err := xml.Marshal(body)
		if err != nil {
			return errs.New(errs.Internal, "", "request does not render")
		}
		raw = append([]byte(xml.Header), b...)
	}
	delay := 50 * time.Millisecond
	for {
		a, err := p.c.do(ctx, request{method: method, path: path, body: raw, ctype: ctype})
		if isBusy(err) {
			tm := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				tm.Stop()
				return err
			case <-tm.C:
			}
			delay = min(delay*2, 2*time.Second)
			continue
		}
		if err != nil {
			return err
		}
		var t types.Task
		if len(a.body) == 0 {
			return nil
		}
		if err := xml.Unmarshal(a.body, &t); err != nil || t.HREF == "" {
			return nil // not a task: done
		}
		return p.waitTask(ctx, &t)
	}
}

// vappOf reads the vApp of a VM record (its Children hold the VMs).
func (p *Provider) vapp(ctx context.Context, id string) (*types.VApp, error) {
	var a types.VApp
	if err := p.c.getXML(ctx, "/api/vApp/"+id, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// vmRecord reads a VM's query record for the lifecycle calls: NotFound
// for an unknown VM, FailedPrecondition for a template.
func (p *Provider) vmForChange(ctx context.Context, id string) (provider.VM, error) {
	vm, err := p.Get(ctx, id)
	if err != nil {
		return vm, err
	}
	if vm.Template {
		return vm, errs.Errorf(errs.FailedPrecondition, "", "%s is a template", limit.Quote(id))
	}
	return vm, nil
}

// PowerOn powers the VM on (POST .../power/action/powerOn; VCD deploys
// it on the way). A VM already on is left alone.
func (p *Provider) PowerOn(ctx context.Context, id string) error {
	vm, err := p.vmForChange(ctx, id)
	if err != nil || vm.Power == provider.PoweredOn {
		return err
	}
	return p.postTask(ctx, http.MethodPost, "/api/vApp/"+id+"/power/action/powerOn", nil, "")
}

// PowerOff powers the VM off (POST .../power/action/powerOff: it stays
// deployed, as VCD keeps it). A VM that is off is left alone.
func (p *Provider) PowerOff(ctx context.Context, id string) error {
	vm, err := p.vmForChange(ctx, id)
	if err != nil || vm.Power != provider.PoweredOn {
		return err
	}
	return p.postTask(ctx, http.MethodPost, "/api/vApp/"+id+"/power/action/powerOff", nil, "")
}

var undeployPowerOff = types.UndeployVAppParams{Xmlns: types.XMLNamespaceVCloud, UndeployPowerAction: "powerOff"}

// Destroy removes the VM in the order VCD requires (a deployed vApp
// refuses deletion: "Stop the vApp and try again"): undeploy the vApp
// with power off, then delete the vApp, which deletes its vApp networks.
// A VM sharing its vApp with others (made outside this driver) is
// undeployed and deleted alone. An unknown VM is not an error.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	vm, err := p.vmForChange(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	err = p.removeVApp(ctx, vm.Attributes["vAppId"], id, func() error { return p.removeNATOf(ctx, vm) })
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	return err
}

// removeNATOf removes, on the NSX-T edge gateways of the VM's VDC, the
// NAT rules of the natfw driver (NewFirewall's shape: name "mvm-H", owner
// in the description) whose Local address is one of the VM's, with their
// firewall rules, IP sets and port profiles, as Edge.RemoveNAT does.
// Rules of another shape are left alone.
func (p *Provider) removeNATOf(ctx context.Context, vm provider.VM) error {
	if len(vm.Guest.IPs) == 0 {
		return nil
	}
	gws, err := listAll[*types.OpenAPIEdgeGateway](ctx, p.c, "/cloudapi/1.0.0/edgeGateways", nil)
	if err != nil {
		return err
	}
	for _, g := range gws {
		inVDC := g.OrgVdc != nil && g.OrgVdc.Name == vm.Zone || g.OwnerRef != nil && g.OwnerRef.Name == vm.Zone
		if !inVDC || g.GatewayBacking != nil && g.GatewayBacking.GatewayType != "NSXT_BACKED" {
			continue
		}
		// The provider's own session, as another writer of the gateway.
		e := &Edge{c: p.c, hc: p.hc, poll: p.opts.TaskPoll, busy: 2 * time.Minute, log: p.log, gwID: g.ID, gwName: g.Name}
		st, err := e.read(ctx)
		if err != nil {
			return err
		}
		for _, n := range st.nat {
			r, ok := st.ruleOf(n)
			if !ok || !slices.Contains(vm.Guest.IPs, r.Local) {
				continue
			}
			if err := e.RemoveNAT(ctx, r.Owner); err != nil {
				return err
			}
			p.log.Info("vcd: removed the NAT rule of a destroyed VM", "vm", vm.ID, "gateway", limit.Quote(g.Name), "public", r.Public.String())
		}
	}
	return nil
}

// removeVApp undeploys and deletes vApp vappID, or only VM vmID when the
// vApp holds other VMs too (vmID "" : the whole vApp); between, if not
// nil, runs after the undeploy and before the delete.
func (p *Provider) removeVApp(ctx context.Context, vappID, vmID string, between func() error) error {
	a, err := p.vapp(ctx, vappID)
	if err != nil {
		return err
	}
	alone := a.Children == nil || len(a.Children.VM) <= 1 || vmID == ""
	if !alone {
		for _, m := range a.Children.VM {
			if "vm-"+urnUUID(m.ID) == vmID && (m.Deployed || m.Status == 4) {
				if err := p.postTask(ctx, http.MethodPost, "/api/vApp/"+vmID+"/action/undeploy", undeployPowerOff, types.MimeUndeployVappParams); err != nil {
					return err
				}
			}
		}
		if between != nil {
			if err := between(); err != nil {
				return err
			}
		}
		return p.postTask(ctx, http.MethodDelete, "/api/vApp/"+vmID, nil, "")
	}
	on := a.Deployed
	if a.Children != nil {
		for _, m := range a.Children.VM {
			on = on || m.Deployed || m.Status == 4
		}
	}
	if on {
		if err := p.postTask(ctx, http.MethodPost, "/api/vApp/"+vappID+"/action/undeploy", undeployPowerOff, types.MimeUndeployVappParams); err != nil {
			return err
		}
	}
	if between != nil {
		if err := between(); err != nil {
			return err
		}
	}
	return p.postTask(ctx, http.MethodDelete, "/api/vApp/"+vappID, nil, "")
}

// keyOf returns the request key a vApp carries in its Description.
func keyOf(a *types.VApp) string {
	for line := range strings.SplitSeq(a.Description, "\n") {
		if k, ok := strings.CutPrefix(line, keyMarker); ok {
			return k
		}
	}
	return ""
}
