package hyperv

import (
	"context"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/testkit"
)

func TestDestroyRemovesTheVMAndItsFilesButNoTemplate(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	tmpl := `C:\ClusterStorage\Templates\ubuntu.vhdx`
	own := `C:\ClusterStorage\VMs\web\web.vhdx`
	iso := `C:\ClusterStorage\VMs\web\cidata.vhdx`
	other := `C:\ClusterStorage\VMs\db\db.vhdx`
	for _, f := range []string{tmpl, own, iso, other} {
		s.AddVHDX(hypervsim.VHDX{Path: f})
	}
	web := addVM(t, s, hypervsim.VM{Name: "web", Owner: "HV2", State: "Running", Clustered: true, Disks: []string{own, iso}})
	direct := addVM(t, s, hypervsim.VM{Name: "direct", Owner: "HV3", Disks: []string{tmpl}})
	addVM(t, s, hypervsim.VM{Name: "db", Owner: "HV1", Disks: []string{other}})
	d := driverFor(t, s, "az1")
	if err := d.Destroy(ctx, web); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx, direct); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Files(), ";"); got != tmpl+";"+other {
		t.Errorf("files left: %s", got)
	}
	_, err := d.Get(ctx, web)
	testkit.WantCode(t, "Get after Destroy", err, errs.NotFound)
	if evs := s.Events("HV2"); len(evs) != 2 || evs[1].ID != 13003 {
		t.Errorf("HV2 log %+v", evs)
	}
	// Again, and a VM that never existed, and a non-GUID: not errors.
	for _, id := range []string{web, "00000000-0000-4000-8000-000000000000", "web"} {
		if err := d.Destroy(ctx, id); err != nil {
			t.Errorf("Destroy(%s): %v", id, err)
		}
	}
}

func TestDestroyFollowsAMove(t *testing.T) {
	t.Parallel()
	var s *hypervsim.Sim
	var id string
	moved := false
	s = newClusterOpts(t, hypervsim.Options{BeforeAnswer: func(node, template string) {
		if template == "remove/1" && !moved {
			moved = true
			_ = s.Move(id, "HV1")
		}
	}})
	id = addVM(t, s, hypervsim.VM{Name: "m", Owner: "HV3"})
	d := driverFor(t, s, "az1")
	if err := d.Destroy(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if len(s.VMs()) != 0 || s.ScriptRunsOn("HV3", "remove/1") != 1 || s.ScriptRunsOn("HV1", "remove/1") != 1 {
		t.Fatalf("VMs %+v", s.VMs())
	}
}
