package vsphere_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
	"github.com/managedvm/managedvm/report"
)

func row(r report.Report, id, subject string) (report.Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id && (subject == "" || c.Subject == subject) {
			return c, true
		}
	}
	return report.Check{}, false
}

func TestPreflightRows(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	r, err := w.pp.Preflight(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + r.String())
	want := map[string]report.Status{
		"vsphere.vcenter":          report.Pass,
		"vsphere.zone.datacenters": report.Pass,
		"vsphere.zone.clusters":    report.Pass,
		"vsphere.zone.datastores":  report.Pass,
		"vsphere.zone.networks":    report.Pass,
		"vsphere.privileges":       report.Pass,
	}
	for id, st := range want {
		c, ok := row(r, id, "")
		if !ok {
			t.Errorf("no row %s", id)
			continue
		}
		if c.Status != st {
			t.Errorf("row %s: %s (%s), want %s", id, c.Status, c.Detail, st)
		}
	}
	// The simulator's port groups have no VLAN: a warning with a fix.
	if c, ok := row(r, "vsphere.zone.vlans", "zone DC0"); !ok || c.Status != report.Warn || c.Fix == "" {
		t.Errorf("VLAN row: %+v", c)
	}
	// The template's rows come from the template package; the spec named
	// like it exists.
	found := false
	for _, c := range r.Checks {
		if c.Subject == "debian-12" && strings.HasPrefix(c.Name, "A guest customization spec exists") {
			found = true
			if c.Status != report.Pass {
				t.Errorf("spec row for debian-12: %+v", c)
			}
		}
	}
	if !found {
		t.Errorf("no customization-spec row for the template")
	}
}

// TestPreflightMissingPrivilege proves the privilege row is computed: a
// service account whose role lacks guest-operation execution fails it.
func TestPreflightMissingPrivilege(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{Privileges: true, Users: map[string]string{"limited@vsphere.local": "limited-Pa55"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	privs := slices.DeleteFunc(vsphere.RequiredPrivileges(), func(s string) bool { return s == "VirtualMachine.GuestOperations.Execute" })
	if err := sim.AddRole(ctx, "managedvm-limited", privs); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetRole(ctx, "limited@vsphere.local", "managedvm-limited"); err != nil {
		t.Fatal(err)
	}
	check := func(user, pass string) report.Check {
		p, err := vsphere.New(ctx, sim.URL.String(), user, guest.NewSecret(pass), &vsphere.Options{RootCAs: sim.CAs})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		r, err := p.Preflight(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := row(r, "vsphere.privileges", "")
		if !ok {
			t.Fatal("no privileges row")
		}
		return c
	}
	if c := check("limited@vsphere.local", "limited-Pa55"); c.Status != report.Fail || !strings.Contains(c.Detail, "VirtualMachine.GuestOperations.Execute") || c.Fix == "" {
		t.Errorf("limited account: %+v, want a failure naming VirtualMachine.GuestOperations.Execute", c)
	} else if strings.Contains(c.Detail, "Datastore.Browse") {
		t.Errorf("limited account: the row names a privilege it has: %s", c.Detail)
	}
	if c := check(sim.Username, sim.Password); c.Status != report.Pass {
		t.Errorf("admin account: %+v, want pass", c)
	}
}
