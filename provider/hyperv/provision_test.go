package hyperv

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/template"
)

const ubuntu = `C:\ClusterStorage\Templates\ubuntu-24.04.vhdx`

// provCluster is a 3-node cluster with one template and its sidecar.
func provCluster(t testing.TB) *hypervsim.Sim {
	t.Helper()
	s := newCluster(t)
	s.AddVHDX(hypervsim.VHDX{Path: ubuntu, Size: 32 << 30, FileSize: 3 << 30})
	s.AddFile(`C:\ClusterStorage\Templates\ubuntu-24.04.json`, []byte(`{"family":"linux","osName":"Ubuntu 24.04","integrationServices":true}`))
	return s
}

func provDriver(t testing.TB, s *hypervsim.Sim) *Provider {
	t.Helper()
	opts := optionsFor(s, "az1")
	opts.Switch = "vSwitch-Trunk"
	d, err := newTestDriver(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func spec(name string) provider.ProvisionSpec {
	return provider.ProvisionSpec{Key: "key-" + name, Name: name, Template: "ubuntu-24.04", Zone: "az1",
		Network: provider.Network{VLAN: 20}, CPUs: 4, MemoryMiB: 4096}
}

func TestProvisionMakesAClusteredVMWithItsSeed(t *testing.T) {
	t.Parallel()
	s := provCluster(t)
	addVM(t, s, hypervsim.VM{Name: "busy1", Owner: "HV1"})
	addVM(t, s, hypervsim.VM{Name: "busy3", Owner: "HV3"})
	d := provDriver(t, s)
	ctx := context.Background()
	sp := spec("web-1")
	sp.PowerOn = true
	sp.Customization = &provider.Customization{Hostname: "web-1", UserData: []byte("#cloud-config\nruncmd: [true]\n"), NetworkConfig: []byte("version: 2\n")}
	vm, err := d.Provision(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	if vm.Name != "web-1" || vm.Zone != "az1" || vm.CPUs != 4 || vm.MemoryMiB != 4096 || vm.Power != provider.PoweredOn ||
		vm.Attributes["node"] != "HV2" || vm.Attributes["clustered"] != "true" || vm.Attributes["nic0.vlan"] != "20" ||
		vm.Attributes["nic0.switch"] != "vSwitch-Trunk" || vm.Annotation != keyTag(sp.Key) {
		t.Fatalf("VM %+v", vm)
	}
	var sv hypervsim.VM
	for _, x := range s.VMs() {
		if x.ID == vm.ID {
			sv = x
		}
	}
	dir := d.keyDir(sp.Key)
	if sv.Path != dir || len(sv.Disks) != 2 || sv.Disks[0] != dir+`\disk0.vhdx` || sv.Disks[1] != dir+`\cidata.iso` || !strings.HasPrefix(dir, `C:\ClusterStorage\VMs\mvm-`) {
		t.Fatalf("simulated VM %+v", sv)
	}
	iso, ok := s.File(dir + `\cidata.iso`)
	if !ok {
		t.Fatal("no ISO on the VMs CSV")
	}
	label, files, err := template.ReadISO(bytes.NewReader(iso))
	if err != nil || label != "cidata" || string(files["user-data"]) != string(sp.Customization.UserData) ||
		string(files["network-config"]) != "version: 2\n" || !strings.Contains(string(files["meta-data"]), `local-hostname: "web-1"`) {
		t.Fatalf("ISO %q %v %q", label, err, files)
	}
	// The differencing disk hangs on the template, which stays.
	if !strings.Contains(strings.Join(s.Files(), "\n"), ubuntu) {
		t.Fatalf("template gone: %v", s.Files())
	}
}

// A second process (a new driver) with the same key finds the VM by its
// Notes and finishes what the first left undone.
func TestProvisionIdempotentAcrossARestart(t *testing.T) {
	t.Parallel()
	s := provCluster(t)
	ctx := context.Background()
	sp := spec("db-1")
	first, err := provDriver(t, s).Provision(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	// The first process stopped before the power-on it was asked for.
	sp.PowerOn = true
	again, err := provDriver(t, s).Provision(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Power != provider.PoweredOn || len(s.VMs()) != 1 {
		t.Fatalf("first %+v again %+v, %d VMs", first, again, len(s.VMs()))
	}
	if n := s.ScriptRuns("create/1"); n != 1 {
		t.Errorf("create/1 ran %d times", n)
	}
	other := spec("db-1")
	other.Key = "another"
	_, err = provDriver(t, s).Provision(ctx, other)
	testkit.MustCode(t, "same name, another key", err, errs.AlreadyExists)
}

func TestProvisionRetriesADiskInUse(t *testing.T) {
	t.Parallel()
	s := provCluster(t)
	s.DiskInUse(2)
	vm, err := provDriver(t, s).Provision(context.Background(), spec("app-1"))
	if err != nil {
		t.Fatal(err)
	}
	if n := s.ScriptRuns("create/1"); n != 3 || vm.ID == "" {
		t.Fatalf("create/1 ran %d times, VM %+v", n, vm)
	}
}

// noOrphan checks that the cluster holds no VM and no file but the
// template's.
func noOrphan(t *testing.T, s *hypervsim.Sim) {
	t.Helper()
	if vms := s.VMs(); len(vms) != 0 {
		t.Errorf("VMs left: %+v", vms)
	}
	for _, f := range s.Files() {
		if !strings.HasPrefix(f, `C:\ClusterStorage\Templates\`) {
			t.Errorf("file left: %s", f)
		}
	}
}

func TestProvisionFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	s := provCluster(t)
	for _, n := range s.Nodes() {
		s.DenyClusterRoles(n, true)
	}
	sp := spec("denied")
	sp.Customization = &provider.Customization{UserData: []byte("#cloud-config\n")}
	_, err := provDriver(t, s).Provision(context.Background(), sp)
	testkit.MustCode(t, "Provision without cluster rights", err, errs.PermissionDenied)
	if n := s.ScriptRuns("undo/1"); n != 1 {
		t.Errorf("undo/1 ran %d times", n)
	}
	noOrphan(t, s)
	// The key is free again.
	for _, n := range s.Nodes() {
		s.DenyClusterRoles(n, false)
	}
	if _, err := provDriver(t, s).Provision(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
}

func TestProvisionTimeoutLeavesNothing(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	s := newClusterOpts(t, hypervsim.Options{BeforeAnswer: func(node, tmpl string) {
		if tmpl == "role/1" {
			held <- struct{}{}
			<-release
		}
	}})
	s.AddVHDX(hypervsim.VHDX{Path: ubuntu, Size: 32 << 30})
	d := provDriver(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	_, err := d.Provision(ctx, spec("slow"))
	testkit.MustCode(t, "Provision past its deadline", err, errs.DeadlineExceeded)
	close(release)
	// On a loaded machine the deadline may come before role/1; when it
	// was held, it may still answer (the VM is gone by then): wait for the
	// node to have answered it.
	if len(held) > 0 {
		for deadline := time.Now().Add(5 * time.Second); s.ScriptRuns("role/1") == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	} else {
		t.Log("the deadline came before role/1")
	}
	noOrphan(t, s)
}

func TestProvisionRefusals(t *testing.T) {
	t.Parallel()
	s := provCluster(t)
	d := provDriver(t, s)
	ctx := context.Background()
	sp := spec("x")
	sp.Template = "nope"
	_, err := d.Provision(ctx, sp)
	testkit.MustCode(t, "unknown template", err, errs.NotFound)
	sp = spec("x")
	sp.Zone = "az9"
	_, err = d.Provision(ctx, sp)
	testkit.MustCode(t, "unknown zone", err, errs.NotFound)
	sp = spec("x")
	sp.Network.Name = "no-such-switch"
	_, err = d.Provision(ctx, sp)
	testkit.MustCode(t, "unknown switch", err, errs.NotFound)
	sp = spec("x")
	sp.Template = ubuntu
	if _, err := d.Provision(ctx, sp); err != nil {
		t.Errorf("by template ID: %v", err)
	}
	if s.ScriptRuns("undo/1") != 0 {
		t.Errorf("a refusal ran undo/1")
	}
}
