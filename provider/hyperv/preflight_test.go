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
	s := newCluster(t)
	s.AddVHDX(hypervsim.VHDX{Path: `C:\ClusterStorage\Templates\ubuntu.vhdx`})
	opts := optionsFor(s, "az1")
	opts.Switch = "vSwitch-Trunk"
	d, err := newDriver(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.Preflight(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || len(r.Warnings()) != 0 || len(r.Checks) != 3*4+2 {
		t.Fatalf("report:\n%s", r)
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
	s := newCluster(t)
	if err := s.SetAccount("HV1", hypervsim.Account{Name: `CORP\svc`, Admin: true, Groups: []string{"S-1-5-32-544", "S-1-5-21-1-2-3-512"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAccount("HV3", hypervsim.Account{Name: `CORP\svc`, Groups: []string{"S-1-5-21-1-2-3-513"}}); err != nil {
		t.Fatal(err)
	}
	opts := optionsFor(s, "az1")
	opts.Switch = "vSwitch-Other"
	opts.TemplatesPath = `D:\Templates`
	opts.Nodes[1].Name = "HVX" // HV2's endpoint under a name the cluster does not know
	d, err := newDriver(opts)
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
		`hyperv.templates.csv@D:\Templates`: report.Fail, `hyperv.templates.files@D:\Templates`: report.Fail,
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
	// A node that does not answer is a failed row, not an error.
	s.Server("HV3").Close()
	r, err = d.Preflight(context.Background())
	if err != nil || rows(r)["hyperv.winrm@HV3"] != report.Fail {
		t.Fatalf("with HV3 down: %v\n%s", err, r)
	}
}
