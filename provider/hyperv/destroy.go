package hyperv

import (
	"context"
	"strings"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// Destroy turns the VM off and removes its cluster role, the VM and its
// disk and ISO files (never a file under Options.TemplatesPath) on the
// node that holds it. A VM that does not exist is not an error. A VM that
// moved between finding it and the template is looked for again, once.
// A template's ID is FailedPrecondition.
func (d *Provider) Destroy(ctx context.Context, id string) error {
	if d.isTemplateID(id) {
		err := d.refuseTemplate(ctx, id, "destroyed")
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		return err
	}
	for range 2 {
		n, _, err := d.locate(ctx, id)
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var a removeAnswer
		if err := run(ctx, n.ex, n.name, scriptRemove, removeParams{ID: strings.ToLower(id), Keep: d.templates}, &a); err != nil {
			return err
		}
		d.mu.Lock()
		delete(d.owner, strings.ToLower(id))
		d.mu.Unlock()
		if a.Found == "True" {
			return nil
		}
	}
	return errs.Errorf(errs.Unavailable, "", "hyperv: VM %s moved twice while it was being removed: try again", limit.Quote(id))
}
