package hyperv

import (
	"context"
	"strings"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// PowerOn starts the VM (resumes it when paused) on the node that holds
// it; a running VM is left as is.
func (d *Provider) PowerOn(ctx context.Context, id string) error { return d.power(ctx, id, true) }

// PowerOff turns the VM off (Stop-VM -TurnOff: no guest shutdown; a saved
// state is discarded); an off VM is left as is.
func (d *Provider) PowerOff(ctx context.Context, id string) error { return d.power(ctx, id, false) }

// power runs the power template on the VM's node. A VM that moved
// between finding it and the template (the node no longer holds it) is
// looked for again, once.
func (d *Provider) power(ctx context.Context, id string, on bool) error {
	if d.isTemplateID(id) {
		return d.refuseTemplate(ctx, id, "powered on or off")
	}
	want := "Off"
	if on {
		want = "Running"
	}
	for range 2 {
		n, _, err := d.locate(ctx, id)
		if err != nil {
			return err
		}
		var a powerAnswer
		if err := run(ctx, n.ex, n.name, scriptPower, powerParams{ID: strings.ToLower(id), On: on}, &a); err != nil {
			return err
		}
		if a.Found == "True" {
			if a.State != want {
				return errs.Errorf(errs.FailedPrecondition, "", "hyperv: VM %s is %s after the power change, not %s", limit.Quote(id), limit.Quote(a.State), want)
			}
			return nil
		}
		d.mu.Lock()
		delete(d.owner, strings.ToLower(id))
		d.mu.Unlock()
	}
	return errs.Errorf(errs.Unavailable, "", "hyperv: VM %s moved twice while its power was being changed: try again", limit.Quote(id))
}
