package hyperv_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// A node that goes off the network: List is Unavailable naming it (a
// partial list would read as deletions), a VM on another node is still
// found, Preflight reports the node, and once the node is back the same
// Provider works again without being made anew.
func TestNodeDownAndBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, hypervsim.Options{}, nil)
	ctx := context.Background()
	on1, err := w.s.AddVM(hypervsim.VM{Name: "on-hv1", Owner: "HV1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.pp.List(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.s.NodeDown("HV3"); err != nil {
		t.Fatal(err)
	}
	_, err = w.pp.List(ctx, nil)
	testkit.MustCode(t, "List with HV3 down", err, errs.Unavailable)
	if !strings.Contains(err.Error(), `"HV3"`) {
		t.Errorf("the error does not name the node: %v", err)
	}
	if vm, err := w.pp.Get(ctx, on1); err != nil || vm.Name != "on-hv1" {
		t.Errorf("Get of a VM on HV1 with HV3 down: %v %+v", err, vm)
	}
	r, err := w.pp.Preflight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Checks {
		if c.ID == "hyperv.winrm" && c.Subject == "HV3" && c.Status != report.Fail {
			t.Errorf("hyperv.winrm@HV3 is %s", c.Status)
		}
	}
	if err := w.s.NodeUp("HV3"); err != nil {
		t.Fatal(err)
	}
	if vms, err := w.pp.List(ctx, nil); err != nil || len(vms) != 1 {
		t.Fatalf("List with HV3 back: %v %d", err, len(vms))
	}
}

// A node that hangs: calls end with their context, promptly, and what
// needs only other nodes goes on.
func TestNodeHangEndsWithTheContext(t *testing.T) {
	t.Parallel()
	w := newWorld(t, hypervsim.Options{}, nil)
	on1, _ := w.s.AddVM(hypervsim.VM{Name: "on-hv1", Owner: "HV1"})
	if _, err := w.pp.List(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.s.SetNodeHang("HV2", time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := w.pp.List(ctx, nil)
	testkit.MustCode(t, "List with HV2 hanging", err, errs.DeadlineExceeded)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("List took %v past a 700 ms deadline", d)
	}
	// Get asks the VM's last owner first: HV2 is not asked.
	if _, err := w.pp.Get(context.Background(), on1); err != nil {
		t.Errorf("Get of a VM on HV1: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	_, err = w.pp.Provision(ctx2, provider.ProvisionSpec{Key: "hang", Name: "hang", Template: "ubuntu-24.04", Zone: "az1"})
	testkit.MustCode(t, "Provision with HV2 hanging", err, errs.DeadlineExceeded)
	if err := w.s.SetNodeHang("HV2", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pp.List(context.Background(), nil); err != nil {
		t.Errorf("List once HV2 answers again: %v", err)
	}
}

// A wrong service password fails New (the cluster is asked once there)
// as Unauthenticated, without the password in the error.
func TestNewWithAWrongPassword(t *testing.T) {
	t.Parallel()
	w := newWorld(t, hypervsim.Options{}, nil)
	_, err := newProvider(w, guest.Password(`CORP\`+testUser, "wrong-"+testPassword))
	testkit.MustCode(t, "New with a wrong password", err, errs.Unauthenticated)
	if strings.Contains(err.Error(), testPassword) {
		t.Errorf("the error shows the password: %v", err)
	}
}

// The driver states WinRM to every node as its network flows.
func TestFlows(t *testing.T) {
	t.Parallel()
	w := newWorld(t, hypervsim.Options{}, nil)
	fl, ok := w.pp.Flows()
	if !ok || len(fl) != 3 {
		t.Fatalf("Flows: %v %+v", ok, fl)
	}
	for i, n := range w.s.Nodes() {
		ep, _ := w.s.Endpoint(n)
		if fl[i].Host != ep.Host || len(fl[i].Ports) != 1 || int(fl[i].Ports[0]) != ep.Port || !fl[i].TLS || !strings.Contains(fl[i].Destination, n) {
			t.Errorf("flow %d: %+v", i, fl[i])
		}
	}
}
