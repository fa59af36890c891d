package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func typeName(v any) string { return fmt.Sprintf("%T", v) }

// retrieveOne reads props of one object into dst (a pointer to an mo type).
func (p *Provider) retrieveOne(ctx context.Context, ref types.ManagedObjectReference, props []string, dst any) error {
	req := types.RetrievePropertiesEx{
		This: p.client.ServiceContent.PropertyCollector,
		SpecSet: []types.PropertyFilterSpec{{
			ObjectSet: []types.ObjectSpec{{Obj: ref}},
			PropSet:   []types.PropertySpec{{Type: ref.Type, PathSet: props}},
		}},
	}
	res, err := methods.RetrievePropertiesEx(ctx, p.client, &req)
	if err != nil {
		return err
	}
	if res.Returnval == nil || len(res.Returnval.Objects) == 0 {
		return fmt.Errorf("%w", &notFoundErr{ref: ref})
	}
	return mo.LoadObjectContent(res.Returnval.Objects, dst)
}

type notFoundErr struct{ ref types.ManagedObjectReference }

func (e *notFoundErr) Error() string { return "object " + e.ref.String() + " not found" }
