package vspheresim

import (
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// privilegeManager answers HasPrivilegeOnEntities from the stored roles and
// permissions (the stock simulator always says granted).
type privilegeManager struct {
	*simulator.AuthorizationManager
}

func installPrivileges(m *simulator.Model) {
	ref := m.Service.Context.Map.Get(types.ManagedObjectReference{Type: "AuthorizationManager", Value: "AuthorizationManager"})
	am, ok := ref.(*simulator.AuthorizationManager)
	if !ok {
		return
	}
	m.Map().Put(&privilegeManager{AuthorizationManager: am})
}

// HasPrivilegeOnEntities grants a privilege when a permission for the
// session's user on the entity or a propagating one on an ancestor names a
// role that holds it. The most specific permission wins.
func (p *privilegeManager) HasPrivilegeOnEntities(ctx *simulator.Context, req *types.HasPrivilegeOnEntities) soap.HasFault {
	user := ""
	if ctx.Session != nil {
		user = ctx.Session.UserName
	}
	roles := map[int32][]string{}
	for _, r := range p.RoleList {
		if _, ok := roles[r.RoleId]; !ok {
			roles[r.RoleId] = r.Privilege
		}
	}
	var out []types.EntityPrivilege
	for _, e := range req.Entity {
		granted := p.effective(ctx, e, user, roles)
		ep := types.EntityPrivilege{Entity: e}
		for _, id := range req.PrivId {
			ep.PrivAvailability = append(ep.PrivAvailability, types.PrivilegeAvailability{PrivId: id, IsGranted: granted[id]})
		}
		out = append(out, ep)
	}
	return &methods.HasPrivilegeOnEntitiesBody{Res: &types.HasPrivilegeOnEntitiesResponse{Returnval: out}}
}

func (p *privilegeManager) effective(ctx *simulator.Context, e types.ManagedObjectReference, user string, roles map[int32][]string) map[string]bool {
	first := true
	for ref := &e; ref != nil; {
		res := p.RetrieveEntityPermissions(ctx, &types.RetrieveEntityPermissions{Entity: *ref, Inherited: false})
		if body, ok := res.(*methods.RetrieveEntityPermissionsBody); ok && body.Res != nil {
			for _, perm := range body.Res.Returnval {
				if perm.Entity != nil && *perm.Entity != *ref {
					continue
				}
				if !strings.EqualFold(perm.Principal, user) || (!first && !perm.Propagate) {
					continue
				}
				set := map[string]bool{}
				for _, id := range roles[perm.RoleId] {
					set[id] = true
				}
				return set
			}
		}
		first = false
		obj := ctx.Map.Get(*ref)
		ent, ok := obj.(mo.Entity)
		if !ok {
			break
		}
		ref = ent.Entity().Parent
	}
	return map[string]bool{}
}
