package vcd_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmware/go-vcloud-director/v2/govcd"
	"github.com/vmware/go-vcloud-director/v2/types/v56"

	"github.com/managedvm/managedvm/internal/fakes/vcd"
)

type fixture struct {
	c   *govcd.VCDClient
	org *govcd.Org
	vdc *govcd.Vdc
	tpl *govcd.VAppTemplate
	net *types.Reference
	sp  *types.Reference
}

func setup(t testing.TB, s *vcd.Server) fixture {
	t.Helper()
	c := login(t, s)
	org, err := c.GetOrgByName("acme")
	if err != nil {
		t.Fatal(err)
	}
	vdc, err := org.GetVDCByName("vdc1", false)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := org.GetCatalogByName("public", false)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := cat.GetVAppTemplateByName("ubuntu-22.04")
	if err != nil {
		t.Fatal(err)
	}
	return fixture{c: c, org: org, vdc: vdc, tpl: tpl, net: vdc.Vdc.AvailableNetworks[0].Network[0], sp: vdc.Vdc.VdcStorageProfiles.VdcStorageProfile[0]}
}

// params builds the driver's request: one vApp named for the VM, a routed
// vApp network on the organization network, the storage policy, and guest
// customization.
func (f fixture) params(name string) *types.InstantiateVAppTemplateParams {
	yes := true
	return &types.InstantiateVAppTemplateParams{
		Xmlns: types.XMLNamespaceVCloud, Ovf: types.XMLNamespaceOVF, Name: name, Deploy: true, PowerOn: false,
		InstantiationParams: &types.InstantiationParams{NetworkConfigSection: &types.NetworkConfigSection{
			Info: "vApp network",
			NetworkConfig: []types.VAppNetworkConfiguration{{NetworkName: name + "-net", Configuration: &types.NetworkConfiguration{
				FenceMode:     types.FenceModeNAT,
				ParentNetwork: &types.Reference{HREF: f.net.HREF},
				IPScopes: &types.IPScopes{IPScope: []*types.IPScope{{Gateway: "192.168.50.1", Netmask: "255.255.255.0", IsEnabled: true,
					IPRanges: &types.IPRanges{IPRange: []*types.IPRange{{StartAddress: "192.168.50.10", EndAddress: "192.168.50.20"}}}}}},
			}}},
		}},
		Source: &types.Reference{HREF: f.tpl.VAppTemplate.HREF},
		SourcedItem: &types.SourcedCompositionItemParam{
			Source:          &types.Reference{HREF: f.tpl.VAppTemplate.Children.VM[0].HREF},
			VMGeneralParams: &types.VMGeneralParams{Name: name, NeedsCustomization: true},
			StorageProfile:  &types.Reference{HREF: f.sp.HREF},
			InstantiationParams: &types.InstantiationParams{
				NetworkConnectionSection: &types.NetworkConnectionSection{Info: "nic", PrimaryNetworkConnectionIndex: 0,
					NetworkConnection: []*types.NetworkConnection{{Network: name + "-net", NetworkConnectionIndex: 0, IsConnected: true,
						IPAddressAllocationMode: types.IPAllocationModePool}}},
				GuestCustomizationSection: &types.GuestCustomizationSection{Info: "gc", Enabled: &yes, ComputerName: name,
					AdminPasswordEnabled: &yes, AdminPassword: "Gen3rated!pw", CustomizationScript: "#!/bin/sh\necho hi"},
			},
		},
		AllEULAsAccepted: true,
	}
}

// instantiate posts the request as a driver does (no SDK 3-second waits)
// and returns the vApp with its task.
func (f fixture) instantiate(t testing.TB, p *types.InstantiateVAppTemplateParams) (*types.VApp, error) {
	t.Helper()
	out := &types.VApp{}
	_, err := f.c.Client.ExecuteRequest(f.vdc.Vdc.HREF+"/action/instantiateVAppTemplate", http.MethodPost,
		types.MimeInstantiateVappTemplateParams, "instantiate: %s", p, out)
	return out, err
}

func taskOf(c *govcd.VCDClient, x *types.Task) govcd.Task {
	tk := govcd.NewTask(&c.Client)
	tk.Task = x
	return *tk
}

func TestInstantiateTaskProgresses(t *testing.T) {
	s := start(t, &vcd.Options{TaskDuration: 400 * time.Millisecond})
	f := setup(t, s)
	va, err := f.instantiate(t, f.params("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	if va.Status != 0 || va.Tasks == nil || len(va.Tasks.Task) != 1 || va.Tasks.Task[0].Status != "running" {
		t.Fatalf("new vApp %+v", va)
	}
	if info, _ := s.VApp("web-1"); info.Status != "UNRESOLVED" || !info.Busy {
		t.Fatalf("during creation: %+v", info)
	}
	var progress []int
	tk := taskOf(f.c, va.Tasks.Task[0])
	err = tk.WaitInspectTaskCompletion(func(x *types.Task, _ int, _ time.Duration, _, _ bool) {
		progress = append(progress, x.Progress)
	}, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("task: %v", err)
	}
	if tk.Task.Status != "success" || tk.Task.Progress != 100 || tk.Task.OperationName != "vdcInstantiateVapp" || tk.Task.Owner.Name != "web-1" {
		t.Fatalf("final task %+v", tk.Task)
	}
	if len(progress) < 3 || progress[len(progress)-1] != 100 {
		t.Fatalf("progress %v", progress)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i] < progress[i-1] {
			t.Fatalf("progress went back: %v", progress)
		}
	}
	vapp, err := f.vdc.GetVAppByName("web-1", true)
	if err != nil {
		t.Fatalf("GetVAppByName: %v", err)
	}
	st, _ := vapp.GetStatus()
	if st != "POWERED_OFF" || !vapp.VApp.Deployed {
		t.Fatalf("status %s deployed %v", st, vapp.VApp.Deployed)
	}
	if vapp.VApp.NetworkConfigSection == nil || vapp.VApp.NetworkConfigSection.NetworkConfig[0].Configuration.FenceMode != "natRouted" ||
		vapp.VApp.NetworkConfigSection.NetworkConfig[0].Configuration.ParentNetwork.Name != "net1" {
		t.Fatalf("vApp network %+v", vapp.VApp.NetworkConfigSection)
	}
	vm, err := vapp.GetVMByName("web-1", false)
	if err != nil {
		t.Fatalf("GetVMByName: %v", err)
	}
	nc := vm.VM.NetworkConnectionSection.NetworkConnection[0]
	if nc.IPAddress != "192.168.50.10" || nc.Network != "web-1-net" {
		t.Fatalf("NIC %+v", nc)
	}
	if *vm.VM.VmSpecSection.NumCpus != 2 || vm.VM.VmSpecSection.MemoryResourceMb.Configured != 2048 {
		t.Fatalf("spec %+v", vm.VM.VmSpecSection)
	}
	if vm.VM.StorageProfile == nil || vm.VM.StorageProfile.Name != "gold" {
		t.Fatalf("storage profile %+v", vm.VM.StorageProfile)
	}
	info, _ := s.VM("web-1")
	if info.ComputerName != "web-1" || info.AdminPassword != "Gen3rated!pw" || !strings.Contains(info.CustomizationScript, "echo hi") {
		t.Fatalf("customization %+v", info)
	}

	// Reconfigure CPUs and memory as vm.UpdateVmSpecSection does.
	two, mem := 4, int64(8192)
	spec := vm.VM.VmSpecSection
	spec.NumCpus = &two
	spec.MemoryResourceMb = &types.MemoryResourceMb{Configured: mem}
	tk2, err := vm.UpdateVmSpecSectionAsync(spec, "")
	if err != nil {
		t.Fatalf("UpdateVmSpecSectionAsync: %v", err)
	}
	if err := wait(t, tk2); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.VM("web-1"); info.CPUs != 4 || info.MemoryMB != 8192 {
		t.Fatalf("after reconfigure %+v", info)
	}

	// A duplicate name is refused as VCD refuses it.
	if _, err := f.instantiate(t, f.params("web-1")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestInstantiateValidation(t *testing.T) {
	s := start(t, nil)
	f := setup(t, s)
	p := f.params("bad")
	p.InstantiationParams.NetworkConfigSection.NetworkConfig[0].Configuration.ParentNetwork.HREF = s.APIURL() + "/network/00000000-0000-0000-0000-000000000000"
	if _, err := f.instantiate(t, p); err == nil || !strings.Contains(err.Error(), "INVALID_REFERENCE") && !strings.Contains(err.Error(), "Invalid reference") {
		t.Fatalf("bad parent network: %v", err)
	}
	p = f.params("bad")
	p.SourcedItem.StorageProfile.HREF = s.APIURL() + "/vdcStorageProfile/00000000-0000-0000-0000-000000000000"
	if _, err := f.instantiate(t, p); err == nil || !strings.Contains(err.Error(), "storage policy") {
		t.Fatalf("bad storage policy: %v", err)
	}
	p = f.params("bad")
	p.Source.HREF = s.APIURL() + "/vAppTemplate/vappTemplate-00000000-0000-0000-0000-000000000000"
	if _, err := f.instantiate(t, p); err == nil {
		t.Fatal("bad template accepted")
	}
	p = f.params("bad")
	p.SourcedItem.InstantiationParams.NetworkConnectionSection.NetworkConnection[0].Network = "elsewhere"
	if _, err := f.instantiate(t, p); err == nil {
		t.Fatal("NIC on an unknown network accepted")
	}
	if got := len(s.VApps()); got != 0 {
		t.Fatalf("refused requests left %d vApps", got)
	}
}

func TestInstantiateFailsThenCleanup(t *testing.T) {
	s := start(t, nil)
	f := setup(t, s)
	s.FailNextTask("vdcInstantiateVapp", "Unable to clone the VM: datastore unavailable")
	_, err := f.vdc.CreateVappFromTemplate(f.params("db-1")) // the SDK's own call and wait
	if err == nil || !strings.Contains(err.Error(), "datastore unavailable") || !strings.Contains(err.Error(), "INTERNAL_SERVER_ERROR") {
		t.Fatalf("CreateVappFromTemplate: %v", err)
	}
	info, ok := s.VApp("db-1")
	if !ok || info.Status != "FAILED_CREATION" {
		t.Fatalf("failed vApp %+v", info)
	}
	vapp, err := f.vdc.GetVAppByName("db-1", true)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := vapp.Delete()
	if err != nil {
		t.Fatalf("delete failed vApp: %v", err)
	}
	if err := wait(t, tk); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.VApp("db-1"); ok {
		t.Fatal("vApp left behind")
	}
	// The next instantiation succeeds (the fault applied once).
	if _, err := f.vdc.CreateVappFromTemplate(f.params("db-2")); err != nil {
		t.Fatalf("second instantiation: %v", err)
	}
}

func TestPowerAndDeleteRefusal(t *testing.T) {
	s := start(t, nil)
	f := setup(t, s)
	vapp, err := f.vdc.CreateVappFromTemplate(f.params("app-1"))
	if err != nil {
		t.Fatal(err)
	}
	step := func(what string, tk govcd.Task, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := wait(t, tk); err != nil {
			t.Fatalf("%s task: %v", what, err)
		}
	}
	tk, err := vapp.PowerOn()
	step("PowerOn", tk, err)
	if st, _ := vapp.GetStatus(); st != "POWERED_ON" {
		t.Fatalf("status %s", st)
	}
	if info, _ := s.VM("app-1"); info.ToolsStatus != "toolsOk" || !info.Deployed {
		t.Fatalf("vm %+v", info)
	}
	_, err = vapp.Delete()
	if err == nil || !strings.Contains(err.Error(), "Stop the vApp and try again") || !strings.Contains(err.Error(), "400") {
		t.Fatalf("delete running vApp: %v", err)
	}
	tk, err = vapp.Shutdown()
	step("Shutdown", tk, err)
	if st, _ := vapp.GetStatus(); st != "POWERED_OFF" {
		t.Fatalf("after shutdown %s", st)
	}
	// Powered off but still deployed: VCD still refuses the delete.
	if _, err := vapp.Delete(); err == nil || !strings.Contains(err.Error(), "Stop the vApp") {
		t.Fatalf("delete deployed vApp: %v", err)
	}
	if _, err := vapp.PowerOff(); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("power off a stopped vApp: %v", err)
	}
	tk, err = vapp.PowerOn()
	step("PowerOn", tk, err)
	tk, err = vapp.Undeploy()
	step("Undeploy", tk, err)
	if err := vapp.Refresh(); err != nil || vapp.VApp.Deployed {
		t.Fatalf("after undeploy deployed=%v %v", vapp.VApp.Deployed, err)
	}
	tk, err = vapp.Delete()
	step("Delete", tk, err)
	if _, err := f.vdc.GetVAppByName("app-1", true); err == nil {
		t.Fatal("vApp still listed")
	}
	// VM-level power operations.
	va2, err := f.vdc.CreateVappFromTemplate(f.params("app-2"))
	if err != nil {
		t.Fatal(err)
	}
	vm, err := va2.GetVMByName("app-2", true)
	if err != nil {
		t.Fatal(err)
	}
	tk, err = vm.PowerOn()
	step("vm.PowerOn", tk, err)
	if info, _ := s.VM("app-2"); info.Status != "POWERED_ON" {
		t.Fatalf("vm %+v", info)
	}
	tk, err = vm.Undeploy()
	step("vm.Undeploy", tk, err)
	if info, _ := s.VM("app-2"); info.Status != "POWERED_OFF" || info.Deployed {
		t.Fatalf("vm after undeploy %+v", info)
	}
}

func TestBusyVApp(t *testing.T) {
	s := start(t, &vcd.Options{TaskDuration: time.Second})
	f := setup(t, s)
	va, err := f.instantiate(t, f.params("busy-1"))
	if err != nil {
		t.Fatal(err)
	}
	vapp := govcd.NewVApp(&f.c.Client)
	vapp.VApp = va
	if _, err := vapp.Delete(); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("delete during creation: %v", err)
	}
	if err := wait(t, taskOf(f.c, va.Tasks.Task[0])); err != nil {
		t.Fatal(err)
	}
}

func TestPowerFaultAndBehindTheBack(t *testing.T) {
	s := start(t, nil)
	f := setup(t, s)
	vapp, err := f.vdc.CreateVappFromTemplate(f.params("x-1"))
	if err != nil {
		t.Fatal(err)
	}
	s.FailNextTask("vappPowerOn", "Host is in maintenance mode")
	tk, err := vapp.PowerOn()
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(t, tk); err == nil || !strings.Contains(err.Error(), "maintenance") {
		t.Fatalf("failed power on: %v", err)
	}
	if info, _ := s.VM("x-1"); info.Status != "POWERED_OFF" {
		t.Fatalf("power on failed but VM %+v", info)
	}
	// Changes behind the client's back are what the next read sees.
	if err := s.RenameVM("x-1", "x-1-renamed"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVMIP("x-1-renamed", "192.168.50.99"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGuestState("x-1-renamed", true); err != nil {
		t.Fatal(err)
	}
	recs := queryVMs(t, f.c, "name==x-1-renamed")
	if len(recs) != 1 || recs[0].IpAddress != "192.168.50.99" || recs[0].Status != "POWERED_ON" {
		t.Fatalf("query after changes %+v", recs)
	}
	if err := s.RemoveVApp("x-1"); err != nil {
		t.Fatal(err)
	}
	if recs := queryVMs(t, f.c, "name==x-1-renamed"); len(recs) != 0 {
		t.Fatalf("removed VM still listed: %+v", recs)
	}
}

// TestTimedOutProvisioningCleanup: a provisioning the client gives up on is
// cancelled, then its vApp deleted: nothing is left.
func TestTimedOutProvisioningCleanup(t *testing.T) {
	s := start(t, &vcd.Options{TaskDuration: time.Hour})
	f := setup(t, s)
	va, err := f.instantiate(t, f.params("slow-1"))
	if err != nil {
		t.Fatal(err)
	}
	vapp := govcd.NewVApp(&f.c.Client)
	vapp.VApp = va
	if _, err := vapp.Delete(); err == nil || !strings.Contains(err.Error(), "is busy completing an operation VDC_INSTANTIATE_VAPP") {
		t.Fatalf("delete while instantiating: %v", err)
	}
	tk := taskOf(f.c, va.Tasks.Task[0])
	if err := tk.CancelTask(); err != nil {
		t.Fatalf("CancelTask: %v", err)
	}
	if err := tk.Refresh(); err != nil || tk.Task.Status != "aborted" {
		t.Fatalf("after cancel: %v %+v", err, tk.Task)
	}
	if info, _ := s.VApp("slow-1"); info.Status != "FAILED_CREATION" || info.Busy {
		t.Fatalf("vApp after cancel %+v", info)
	}
	s.SetTaskDuration(0)
	del, err := vapp.Delete()
	if err != nil {
		t.Fatalf("delete after cancel: %v", err)
	}
	if err := wait(t, del); err != nil {
		t.Fatal(err)
	}
	if len(s.VApps()) != 0 || s.RunningTasks() != 0 {
		t.Fatalf("left: %+v, %d tasks", s.VApps(), s.RunningTasks())
	}
}
