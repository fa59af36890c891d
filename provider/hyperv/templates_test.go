package hyperv

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
)

func TestTemplatesAreTheVHDXFiles(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	s.AddVHDX(hypervsim.VHDX{Path: `C:\ClusterStorage\Templates\ubuntu-24.04.vhdx`, Size: 32 << 30, FileSize: 3 << 30})
	s.AddVHDX(hypervsim.VHDX{Path: `C:\ClusterStorage\Templates\win2022.VHDX`, Type: "Fixed", Size: 64 << 30})
	s.AddVHDX(hypervsim.VHDX{Path: `C:\ClusterStorage\Templates\old.vhd`, Format: "VHD"})
	s.AddVHDX(hypervsim.VHDX{Path: `C:\ClusterStorage\VMs\web\web.vhdx`, Type: "Differencing", Parent: `C:\ClusterStorage\Templates\ubuntu-24.04.vhdx`})
	d := driverFor(t, s, "az1")
	ts, err := d.Templates(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("templates %+v", ts)
	}
	u, w := ts[0], ts[1]
	if u.ID != `C:\ClusterStorage\Templates\ubuntu-24.04.vhdx` || u.Name != "ubuntu-24.04" || u.Zone != "az1" ||
		u.Attributes["sizeMiB"] != "32768" || u.Attributes["type"] != "Dynamic" || u.Attributes["format"] != "VHDX" {
		t.Errorf("ubuntu %+v", u)
	}
	if w.Name != "win2022" || w.Attributes["type"] != "Fixed" {
		t.Errorf("win2022 %+v", w)
	}
	if ts2, err := d.Templates(ctx, "az1"); err != nil || len(ts2) != 2 {
		t.Errorf("Templates(az1): %v %d", err, len(ts2))
	}
	_, err = d.Templates(ctx, "az2")
	testkit.WantCode(t, "Templates of another zone", err, errs.NotFound)

	// The first node down: the next one answers (the CSV is shared).
	s.Server("HV1").Close()
	if ts, err := d.Templates(ctx, ""); err != nil || len(ts) != 2 {
		t.Errorf("Templates with HV1 down: %v %d", err, len(ts))
	}
}

func TestTemplatesPathMissing(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	opts := optionsFor(s, "az1")
	opts.TemplatesPath = `C:\ClusterStorage\Nowhere`
	d, err := newTestDriver(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.Templates(context.Background(), "")
	testkit.WantCode(t, "Templates of a missing directory", err, errs.FailedPrecondition)
	testkit.Bounded(t, "missing directory", err, 300)
	if n := s.ScriptRuns("templates/1"); n != 1 {
		t.Errorf("a failed script was tried on %d nodes, want 1", n)
	}
}

func TestTemplatesPathChecked(t *testing.T) {
	t.Parallel()
	cred := guest.Password("svc", "example-only")
	for _, p := range []string{"", `Templates`, `\\server\share`, `C:\a|b`, "C:\\a\nb", `C:/ClusterStorage`} {
		_, err := newDriver([]Node{{Name: "HV1", Host: "hv1.example"}}, cred, Options{TemplatesPath: p})
		testkit.WantCode(t, "TemplatesPath "+p, err, errs.InvalidArgument)
	}
}

// Templates are files, but Get answers their IDs as template VMs, List
// includes them on request, and the lifecycle calls refuse them.
func TestTemplatesAsVMs(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	path := `C:\ClusterStorage\Templates\ubuntu.vhdx`
	s.AddVHDX(hypervsim.VHDX{Path: path, Size: 8 << 30})
	vmID := addVM(t, s, hypervsim.VM{Name: "web", Owner: "HV1"})
	d := driverFor(t, s, "az1")
	vm, err := d.Get(ctx, path)
	if err != nil || !vm.Template || vm.ID != path || vm.Name != "ubuntu" || vm.Zone != "az1" {
		t.Fatalf("Get of a template: %v %+v", err, vm)
	}
	if vm, err := d.Get(ctx, `C:\ClusterStorage\TEMPLATES\UBUNTU.VHDX`); err != nil || vm.ID != path {
		t.Errorf("Get of a template in other case: %v %+v", err, vm)
	}
	_, err = d.Get(ctx, `C:\ClusterStorage\Templates\none.vhdx`)
	testkit.WantCode(t, "Get of a missing template", err, errs.NotFound)
	vms, err := d.List(ctx, &provider.ListOptions{IncludeTemplates: true})
	if err != nil || len(vms) != 2 {
		t.Fatalf("List with templates: %v %+v", err, vms)
	}
	if vms, _ := d.List(ctx, &provider.ListOptions{}); len(vms) != 1 || vms[0].ID != vmID {
		t.Errorf("List without templates: %+v", vms)
	}
	testkit.WantCode(t, "Destroy of a template", d.Destroy(ctx, path), errs.FailedPrecondition)
	testkit.WantCode(t, "PowerOn of a template", d.PowerOn(ctx, path), errs.FailedPrecondition)
	testkit.WantCode(t, "PowerOff of a template", d.PowerOff(ctx, path), errs.FailedPrecondition)
	if len(s.Files()) != 1 {
		t.Errorf("the template file is gone")
	}
	if err := d.Destroy(ctx, `C:\ClusterStorage\Templates\none.vhdx`); err != nil {
		t.Errorf("Destroy of a missing template: %v", err)
	}
}
