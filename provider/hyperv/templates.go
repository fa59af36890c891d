package hyperv

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// Templates lists the .vhdx files of Options.TemplatesPath (a CSV, so
// every node sees the same files: the first node that answers is asked).
// A template's ID is its full path, its Name the file name without
// ".vhdx". Family, OSName and ToolsInstalled (integration services)
// come from the sidecar NAME.json beside the file, when there is one
// (Attributes "sidecar": "ok" or "unreadable").
func (d *Provider) Templates(ctx context.Context, zone string) ([]provider.Template, error) {
	name, err := d.zoneName(ctx)
	if err != nil {
		return nil, err
	}
	if zone != "" && zone != name {
		return nil, errs.Errorf(errs.NotFound, "", "hyperv: no zone %s", limit.Quote(zone))
	}
	var a templatesAnswer
	if err := d.onAnyNode(ctx, scriptTemplates, map[string]string{"Path": d.templates}, &a); err != nil {
		return nil, err
	}
	out := make([]provider.Template, 0, len(a.Files))
	for _, f := range a.Files {
		base := f.Path[strings.LastIndex(f.Path, `\`)+1:]
		if !strings.EqualFold(base[max(0, len(base)-5):], ".vhdx") {
			continue
		}
		size, _ := strconv.ParseInt(f.Size, 10, 64)
		t := provider.Template{ID: f.Path, Name: base[:len(base)-5], Zone: name, Attributes: map[string]string{
			"path": f.Path, "format": f.Format, "type": f.Type, "sizeMiB": strconv.FormatInt(size>>20, 10)}}
		if f.Parent != "" {
			t.Attributes["parent"] = f.Parent
		}
		if f.Meta != "" {
			var m sidecar
			if err := json.Unmarshal([]byte(f.Meta), &m); err != nil {
				t.Attributes["sidecar"] = "unreadable"
			} else {
				t.Attributes["sidecar"] = "ok"
				if fam := guest.OSFamily(strings.ToLower(m.Family)); fam == guest.Linux || fam == guest.Windows {
					t.Family = fam
				}
				t.OSName = m.OSName
				if m.IntegrationServices != nil {
					t.ToolsInstalled = *m.IntegrationServices
					t.Attributes["integrationServices"] = strconv.FormatBool(*m.IntegrationServices)
				}
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// sidecar is the file NAME.json beside a template NAME.vhdx, written
// when the template is prepared: what the disk file cannot say.
//
//	{"family": "linux", "osName": "Ubuntu 24.04", "integrationServices": true}
//
// integrationServices says the guest runs Hyper-V's integration
// services (Linux: the hv_utils/hv_kvp_daemon of the kernel and
// hyperv-daemons; Windows: built in), which the KVP addresses, the
// heartbeat and PowerShell Direct need.
type sidecar struct {
	Family              string `json:"family"`
	OSName              string `json:"osName"`
	IntegrationServices *bool  `json:"integrationServices"`
}

// isTemplateID reports whether id names a file under TemplatesPath: the
// ID of a template, which Get answers as a VM with Template set and the
// lifecycle calls refuse.
func (d *Provider) isTemplateID(id string) bool {
	return strings.HasPrefix(strings.ToLower(id), strings.ToLower(strings.TrimRight(d.templates, `\`)+`\`))
}

// templateVM is template id as a provider.VM (Template set), or NotFound.
func (d *Provider) templateVM(ctx context.Context, id string) (provider.VM, error) {
	ts, err := d.Templates(ctx, "")
	if err != nil {
		return provider.VM{}, err
	}
	for _, t := range ts {
		if strings.EqualFold(t.ID, id) {
			return templateAsVM(t), nil
		}
	}
	return provider.VM{}, errs.Errorf(errs.NotFound, "", "hyperv: no template %s", limit.Quote(id))
}

func templateAsVM(t provider.Template) provider.VM {
	return provider.VM{ID: t.ID, Name: t.Name, Zone: t.Zone, Power: provider.PoweredOff, Template: true, Attributes: t.Attributes}
}

// refuseTemplate is the answer of PowerOn, PowerOff and Destroy to a
// template ID: FailedPrecondition when the template exists, else what
// finding it said (NotFound).
func (d *Provider) refuseTemplate(ctx context.Context, id, what string) error {
	if _, err := d.templateVM(ctx, id); err != nil {
		return err
	}
	return errs.Errorf(errs.FailedPrecondition, "", "hyperv: %s is a template (a file, not a VM): it cannot be %s", limit.Quote(id), what)
}
