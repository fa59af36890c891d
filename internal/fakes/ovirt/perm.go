package ovirt

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"strconv"
)

// Permit ids and names (the engine's ActionGroup / the API's PermitType)
// that the fake checks.
const (
	PermitCreateVM           = 1    // create_vm: POST /vms, on the cluster
	PermitDeleteVM           = 2    // delete_vm: DELETE /vms/{id}
	PermitEditVMProperties   = 3    // edit_vm_properties: PUT /vms/{id}
	PermitVMBasicOperations  = 4    // vm_basic_operations: start, stop, shutdown
	PermitConfigureVMNetwork = 9    // configure_vm_network: NIC add and update
	PermitCreateDisk         = 1100 // create_disk: POST /vms, on each disk's storage domain
	PermitLogin              = 1300 // login
)

var permitNames = map[int]string{
	PermitCreateVM: "create_vm", PermitDeleteVM: "delete_vm", PermitEditVMProperties: "edit_vm_properties",
	PermitVMBasicOperations: "vm_basic_operations", 5: "change_vm_cd", 6: "migrate_vm", 7: "connect_to_vm",
	PermitConfigureVMNetwork: "configure_vm_network", 10: "configure_vm_storage", 12: "manipulate_vm_snapshots",
	PermitCreateDisk: "create_disk", 1101: "attach_disk", PermitLogin: "login",
}

type role struct {
	id, name, description string
	admin                 bool
	permits               []int
}

// Grant gives the account a role on an object: Object is "" (the whole
// system), "data_center", "cluster", "storage_domain", "template" or
// "vm", and ID that object's id.
type Grant struct {
	RoleID string
	Object string
	ID     string
}

type permission struct {
	id string
	Grant
}

func (s *Server) seedRoles() {
	all := make([]int, 0, len(permitNames))
	for p := range permitNames {
		all = append(all, p)
	}
	sort.Ints(all)
	su := &role{id: "00000000-0000-0000-0000-000000000001", name: "SuperUser", description: "Roles management administrator", admin: true, permits: all}
	s.roles = map[string]*role{su.id: su}
	s.perms = []*permission{{id: newID(), Grant: Grant{RoleID: su.id}}}
	s.superUserID = su.id
}

// SuperUserRoleID is the id of the built-in SuperUser role (every permit),
// which the account holds on the whole system unless SetPermissions says
// otherwise.
func (s *Server) SuperUserRoleID() string { return s.superUserID }

// AddRole adds a role with the given permit ids and returns its id.
func (s *Server) AddRole(name string, admin bool, permits ...int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range permits {
		if permitNames[p] == "" {
			return "", fmt.Errorf("ovirt fake: unknown permit %d", p)
		}
	}
	r := &role{id: newID(), name: name, admin: admin, permits: append([]int(nil), permits...)}
	s.roles[r.id] = r
	return r.id, nil
}

// SetPermissions replaces the account's permissions. The engine checks
// them on each operation: a role on an object covers what is inside it
// (system > data center > cluster > VM; data center > storage domain). A
// missing permit is 403 "User is not authorized to perform this action."
// (go-ovirt: *AuthError).
func (s *Server) SetPermissions(grants ...Grant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []*permission
	for _, g := range grants {
		if s.roles[g.RoleID] == nil {
			return fmt.Errorf("ovirt fake: no role %q", g.RoleID)
		}
		switch g.Object {
		case "", "data_center", "cluster", "storage_domain", "template", "vm":
		default:
			return fmt.Errorf("ovirt fake: permissions on %q are not modelled", g.Object)
		}
		ps = append(ps, &permission{id: newID(), Grant: g})
	}
	s.perms = ps
	return nil
}

// allowed says whether the account holds permit on the object or on one
// that contains it. s.mu is held.
func (s *Server) allowed(permit int, object, id string) bool {
	scopes := map[string]bool{"/": true, object + "/" + id: true}
	switch object {
	case "vm":
		if v := s.vms[id]; v != nil && v.cluster != nil {
			scopes["cluster/"+v.cluster.id] = true
			scopes["data_center/"+v.cluster.dc.id] = true
		}
	case "cluster":
		if c := s.clusters[id]; c != nil {
			scopes["data_center/"+c.dc.id] = true
		}
	case "storage_domain":
		if sd := s.sds[id]; sd != nil && sd.dc != nil {
			scopes["data_center/"+sd.dc.id] = true
		}
	case "template":
		if t := s.templates[id]; t != nil && t.cluster != nil {
			scopes["data_center/"+t.cluster.dc.id] = true
		}
	}
	for _, p := range s.perms {
		key := "/"
		if p.Object != "" {
			key = p.Object + "/" + p.ID
		}
		if !scopes[key] {
			continue
		}
		for _, x := range s.roles[p.RoleID].permits {
			if x == permit {
				return true
			}
		}
	}
	return false
}

// deny writes the engine's 403 unless the account holds permit on the
// object; it says whether it did.
func (s *Server) deny(w http.ResponseWriter, permit int, object, id string) bool {
	if s.allowed(permit, object, id) {
		return false
	}
	opFailed(w, http.StatusForbidden, "User is not authorized to perform this action.")
	return true
}

func (s *Server) writeRole(w xw, r *role) {
	w.openID("role", "roles", r.id)
	w.text("name", r.name)
	w.opt("description", r.description)
	w.link("roles", r.id, "permits")
	w.bool("administrative", r.admin)
	w.bool("mutable", r.id != s.superUserID)
	w.close("role")
}

func (s *Server) writePermit(w xw, r *role, p int) {
	id := strconv.Itoa(p)
	w.b.WriteString(`<permit href="` + apiPrefix + "/roles/" + r.id + "/permits/" + id + `" id="` + id + `">`)
	w.text("name", permitNames[p])
	w.bool("administrative", p >= 100 && p != PermitCreateDisk && p != 1101 && p != PermitLogin)
	w.ref("role", "roles", r.id)
	w.close("permit")
}

// usersAPI serves the account: GET /users/{id} and
// /users/{id}/permissions.
func (s *Server) usersAPI(w http.ResponseWriter, r *http.Request, seg []string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	if len(seg) == 0 || seg[0] != s.userID || len(seg) > 2 || (len(seg) == 2 && seg[1] != "permissions") {
		notFound(w)
		return
	}
	var b bytes.Buffer
	x := xw{&b}
	if len(seg) == 1 {
		user, profile, _ := cut(s.opts.User)
		x.openID("user", "users", s.userID)
		x.text("name", user)
		x.link("users", s.userID, "permissions")
		x.text("domain_entry_id", s.userID)
		x.text("namespace", "*")
		x.text("principal", user)
		x.text("user_name", user+"@"+profile+"-authz")
		x.b.WriteString(`<domain href="` + apiPrefix + `/domains/` + s.userID + `" id="` + s.userID + `"><name>` + profile + `-authz</name></domain>`)
		x.close("user")
		writeXML(w, http.StatusOK, &b)
		return
	}
	x.open("permissions")
	for _, p := range s.perms {
		b.WriteString(`<permission href="` + apiPrefix + "/users/" + s.userID + "/permissions/" + p.id + `" id="` + p.id + `">`)
		if p.Object != "" {
			coll := map[string]string{"data_center": "datacenters", "cluster": "clusters", "storage_domain": "storagedomains", "template": "templates", "vm": "vms"}[p.Object]
			x.ref(p.Object, coll, p.ID)
		}
		x.ref("role", "roles", p.RoleID)
		x.ref("user", "users", s.userID)
		x.close("permission")
	}
	x.close("permissions")
	writeXML(w, http.StatusOK, &b)
}

// rolesAPI serves GET /roles, /roles/{id} and /roles/{id}/permits.
func (s *Server) rolesAPI(w http.ResponseWriter, r *http.Request, seg []string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	var b bytes.Buffer
	x := xw{&b}
	if len(seg) == 0 {
		rs := make([]*role, 0, len(s.roles))
		for _, r := range s.roles {
			rs = append(rs, r)
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].name < rs[j].name })
		x.open("roles")
		for _, r := range rs {
			s.writeRole(x, r)
		}
		x.close("roles")
		writeXML(w, http.StatusOK, &b)
		return
	}
	ro := s.roles[seg[0]]
	switch {
	case ro == nil:
		notFound(w)
		return
	case len(seg) == 1:
		s.writeRole(x, ro)
	case len(seg) == 2 && seg[1] == "permits":
		x.open("permits")
		for _, p := range ro.permits {
			s.writePermit(x, ro, p)
		}
		x.close("permits")
	default:
		notFound(w)
		return
	}
	writeXML(w, http.StatusOK, &b)
}
