package hyperv

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/report"
)

func rows(r report.Report) map[string]report.Status {
	out := map[string]report.Status{}
	for _, c := range r.Checks {
		out[c.ID+"@"+c.Subject] = c.Status
	}
	return out
}

func TestPreflightHealthy(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	s.AddVHDX(hypervsim.VHDX{Path: `C:\ClusterStorage\Templates\ubuntu.vhdx`})
	s.AddFile(`C:\ClusterStorage\Templates\ubuntu.json`, []byte(`{"family":"linux","osName":"Ubuntu 24.04","integrationServices":true}`))
	opts := optionsFor(s, "az1")
	opts.Switch = "vSwitch-Trunk"
	opts.VLANs = []int{20, 30}
	d, err := newTestDriver(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.Preflight(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || len(r.Warnings()) != 0 || len(r.Checks) != 3*6+4 {
		t.Fatalf("report:\n%s", r)
	}
	// The role check leaves nothing behind (its VM is logged created and
	// deleted, as on a real node).
	if vms, files := s.VMs(), s.Files(); len(vms) != 0 || len(files) != 2 {
		t.Errorf("left behind: %v %v", vms, files)
	}
	_, err = d.Preflight(canceledCtx())
	testkit.WantCode(t, "Preflight with a canceled context", err, errs.Canceled)
}

func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestPreflightFindsEachProblem(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	if err := s.SetAccount("HV1", hypervsim.Account{Name: `CORP\svc`, Admin: true, Groups: []string{"S-1-5-32-544", "S-1-5-21-1-2-3-512"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAccount("HV3", hypervsim.Account{Name: `CORP\svc`, Groups: []string{"S-1-5-21-1-2-3-513"}}); err != nil {
		t.Fatal(err)
	}
	s.DenyClusterRoles("HV2", true)
	s.AddSwitch(hypervsim.Switch{Name: "vSwitch-Internal", Type: "Internal"})
	s.AddSwitch(hypervsim.Switch{Name: "vSwitch-Filtered", Type: "External", AdapterVLAN: 20})
	s.AddVHDX(hypervsim.VHDX{Path: `D:\Templates\bare.vhdx`})
	s.AddVHDX(hypervsim.VHDX{Path: `D:\Templates\noIS.vhdx`})
	s.AddFile(`D:\Templates\noIS.json`, []byte(`{"family":"linux","integrationServices":false}`))
	s.AddVHDX(hypervsim.VHDX{Path: `D:\Templates\broken.vhdx`})
	s.AddFile(`D:\Templates\broken.json`, []byte(`{"family":`))
	opts := optionsFor(s, "az1")
	opts.Switch = "vSwitch-Other"
	opts.TemplatesPath = `D:\Templates`
	opts.VMsPath = `E:\VMs`
	opts.Nodes[1].Name = "HVX" // HV2's endpoint under a name the cluster does not know
	d, err := newTestDriver(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.Preflight(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := rows(r)
	want := map[string]report.Status{
		"hyperv.winrm@HV1": report.Pass, "hyperv.cluster@HV1": report.Pass, "hyperv.account@HV1": report.Fail, "hyperv.switch@HV1": report.Fail,
		"hyperv.cluster@HVX": report.Fail, "hyperv.account@HV3": report.Fail,
		`hyperv.templates.csv@D:\Templates`: report.Fail, `hyperv.templates.files@D:\Templates`: report.Pass,
		`hyperv.vms.csv@E:\VMs`: report.Fail, "hyperv.role@HVX": report.Fail, "hyperv.role@HV1": report.Pass,
		"hyperv.templates.is@bare": report.Warn, "hyperv.templates.is@noIS": report.Fail, "hyperv.templates.is@broken": report.Fail,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	for _, c := range r.Failures() {
		if c.Fix == "" {
			t.Errorf("%s@%s fails without a fix", c.ID, c.Subject)
		}
	}
	// The switch rows: missing, not External, an adapter that filters a
	// VLAN.
	for sw, want := range map[string][2]report.Status{"vSwitch-Internal": {report.Fail, report.Fail}, "vSwitch-Filtered": {report.Pass, report.Fail}, "vSwitch-Trunk": {report.Pass, report.Warn}} {
		o := opts
		o.Switch = sw
		d2, err := newTestDriver(o)
		if err != nil {
			t.Fatal(err)
		}
		r, err := d2.Preflight(context.Background())
		d2.Close()
		if err != nil {
			t.Fatal(err)
		}
		if g := rows(r); g["hyperv.switch@HV1"] != want[0] || g["hyperv.vlans@HV1"] != want[1] {
			t.Errorf("%s: switch %q vlans %q, want %q", sw, g["hyperv.switch@HV1"], g["hyperv.vlans@HV1"], want)
		}
	}
	// A node that does not answer is a failed row, not an error.
	s.Server("HV3").Close()
	r, err = d.Preflight(context.Background())
	if err != nil || rows(r)["hyperv.winrm@HV3"] != report.Fail {
		t.Fatalf("with HV3 down: %v\n%s", err, r)
	}
}
