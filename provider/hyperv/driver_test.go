package hyperv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
)

func newCluster(t testing.TB, nodes ...string) *hypervsim.Sim {
	t.Helper()
	return newClusterOpts(t, hypervsim.Options{Nodes: nodes})
}

func newClusterOpts(t testing.TB, o hypervsim.Options) *hypervsim.Sim {
	t.Helper()
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"HV1", "HV2", "HV3"}
	}
	nodes := o.Nodes
	o.Cluster, o.Domain, o.User, o.Password = "HVC1", "CORP", "svc-managedvm", "example-only"
	s, err := hypervsim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddCSV(hypervsim.CSV{Name: "Cluster Disk 1", Path: `C:\ClusterStorage\Templates`, Owner: nodes[0]})
	s.AddCSV(hypervsim.CSV{Name: "Cluster Disk 2", Path: `C:\ClusterStorage\VMs`, Owner: nodes[len(nodes)-1]})
	s.AddSwitch(hypervsim.Switch{Name: "vSwitch-Trunk", Type: "External"})
	return s
}

// testOptions are a driver's arguments in one value the tests can change.
type testOptions struct {
	Options
	Nodes       []Node
	Credentials guest.Credentials
}

func newTestDriver(o testOptions) (*Provider, error) {
	return newDriver(o.Nodes, o.Credentials, o.Options)
}

func optionsFor(s *hypervsim.Sim, zone string) testOptions {
	opts := testOptions{Credentials: guest.Password(`CORP\svc-managedvm`, "example-only"), Options: Options{Zone: zone,
		TemplatesPath: `C:\ClusterStorage\Templates`, VMsPath: `C:\ClusterStorage\VMs`}}
	for _, n := range s.Nodes() {
		ep, _ := s.Endpoint(n)
		opts.Nodes = append(opts.Nodes, Node{Name: n, Host: ep.Host, WinRM: winrm.Options{Port: ep.Port, CACertPEM: ep.CACertPEM}})
	}
	return opts
}

func driverFor(t testing.TB, s *hypervsim.Sim, zone string) *Provider {
	t.Helper()
	d, err := newTestDriver(optionsFor(s, zone))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func addVM(t testing.TB, s *hypervsim.Sim, vm hypervsim.VM) string {
	t.Helper()
	id, err := s.AddVM(vm)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestListJoinsEveryNode(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	web := addVM(t, s, hypervsim.VM{Name: "web", Owner: "HV1", State: "Running", Heartbeat: "OkApplicationsUnknown", CPUs: 4, MemoryStartup: 8 << 30,
		Clustered: true, Notes: "managedvm-key:abc", IntegrationServicesState: "Up to date",
		Adapters: []hypervsim.Adapter{{MAC: "00155d000001", Switch: "vSwitch-Trunk", IPs: []string{"10.20.0.5", "fe80::1", "not-an-ip"}, VLAN: 20}}})
	// Names collide: two VMs called "db" on different nodes.
	db1 := addVM(t, s, hypervsim.VM{Name: "db", Owner: "HV2", State: "Off", CPUs: 2, MemoryStartup: 2 << 30,
		Adapters: []hypervsim.Adapter{{MAC: "00155d000002", Switch: "vSwitch-Trunk", IPs: []string{"10.20.0.6"}}}})
	db2 := addVM(t, s, hypervsim.VM{Name: "db", Owner: "HV3", State: "Saved"})
	uni := addVM(t, s, hypervsim.VM{Name: "prüfung-<&>'\"-😀", Owner: "HV3", State: "Paused"})

	d := driverFor(t, s, "")
	before := s.Requests()
	vms, err := d.List(ctx, &provider.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WS-Management requests for the first List over 3 nodes (shells opened, cluster name asked): %d", s.Requests()-before)
	before = s.Requests()
	if _, err := d.List(ctx, &provider.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	perList := s.Requests() - before
	t.Logf("WS-Management requests for the next List: %d", perList)
	// Per node on its kept shell: Command, Send (the parameters), Send
	// (end of input: the executor sends it apart) and Receive.
	if perList > 4*3 {
		t.Errorf("a List costs %d WS-Management requests, more than 4 per node", perList)
	}
	if s.ScriptRuns("inventory/1") != 6 || s.ScriptRuns("cluster/1") != 1 {
		t.Errorf("inventory ran %d times, want once per node", s.ScriptRuns("inventory/1"))
	}
	byID := map[string]provider.VM{}
	for _, vm := range vms {
		if _, dup := byID[vm.ID]; dup {
			t.Errorf("%s listed twice", vm.ID)
		}
		byID[vm.ID] = vm
	}
	if len(byID) != 4 {
		t.Fatalf("listed %d VMs, want 4: %+v", len(byID), vms)
	}
	w := byID[web]
	if w.Name != "web" || w.Zone != "HVC1" || w.Power != provider.PoweredOn || w.CPUs != 4 || w.MemoryMiB != 8192 ||
		w.Annotation != "managedvm-key:abc" || !w.Guest.ToolsRunning || w.Guest.ToolsStatus != "OkApplicationsUnknown" {
		t.Errorf("web: %+v", w)
	}
	if len(w.Guest.IPs) != 2 || w.Guest.IPs[0].String() != "10.20.0.5" {
		t.Errorf("web IPs %v (an address that does not parse is left out)", w.Guest.IPs)
	}
	if ip, ok := w.PrimaryIP(); !ok || ip.String() != "10.20.0.5" {
		t.Errorf("primary IP %v %v", ip, ok)
	}
	for k, v := range map[string]string{"node": "HV1", "clustered": "true", "generation": "2", "nic0.vlan": "20", "nic0.mac": "00155D000001",
		"nic0.switch": "vSwitch-Trunk", "integrationServicesState": "Up to date"} {
		if w.Attributes[k] != v {
			t.Errorf("web attribute %s = %q, want %q", k, w.Attributes[k], v)
		}
	}
	if v := byID[db1]; v.Power != provider.PoweredOff || len(v.Guest.IPs) != 0 || v.Guest.ToolsRunning || v.Attributes["node"] != "HV2" || v.Attributes["nic0.vlan"] != "" {
		t.Errorf("db1 (off: no KVP addresses, untagged): %+v", v)
	}
	if v := byID[db2]; v.Power != provider.Suspended || v.Name != "db" || v.Attributes["node"] != "HV3" {
		t.Errorf("db2: %+v", v)
	}
	if v := byID[uni]; v.Name != "prüfung-<&>'\"-😀" || v.Power != provider.Suspended {
		t.Errorf("non-ASCII name: %q %v", v.Name, v.Power)
	}

	_, err = d.List(ctx, &provider.ListOptions{Zone: "elsewhere"})
	testkit.WantCode(t, "List of another zone", err, errs.NotFound)
	if vms, err := driverFor(t, s, "az1").List(ctx, &provider.ListOptions{Zone: "az1"}); err != nil || len(vms) != 4 || vms[0].Zone != "az1" {
		t.Errorf("List of the configured zone: %v %d", err, len(vms))
	}
}

// A VM that fails over from HV1 to HV3 after HV1 answered and before HV3
// does is in both answers: List lists it once, as HV1 (first in node
// order) had it.
func TestListDuringFailover(t *testing.T) {
	t.Parallel()
	var s *hypervsim.Sim
	var id string
	s = newClusterOpts(t, hypervsim.Options{BeforeAnswer: func(node, template string) {
		if node != "HV3" || template != "inventory/1" {
			return
		}
		for deadline := time.Now().Add(5 * time.Second); s.ScriptRunsOn("HV1", template) == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		_ = s.Move(id, "HV3")
	}})
	id = addVM(t, s, hypervsim.VM{Name: "moving", Owner: "HV1", State: "Running", Clustered: true})
	vms, err := driverFor(t, s, "az1").List(context.Background(), &provider.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 1 || vms[0].ID != id || vms[0].Attributes["node"] != "HV1" {
		t.Fatalf("listed %+v", vms)
	}
	if s.VMs()[0].Owner != "HV3" {
		t.Fatalf("the VM did not move during the List")
	}
}

func TestListNeedsEveryNode(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	addVM(t, s, hypervsim.VM{Name: "a", Owner: "HV2"})
	d := driverFor(t, s, "az1")
	s.Server("HV2").Close()
	_, err := d.List(context.Background(), &provider.ListOptions{})
	testkit.WantCode(t, "List with a node unreachable", err, errs.Unavailable)
	if !strings.Contains(err.Error(), `"HV2"`) {
		t.Errorf("the error does not name the node: %v", err)
	}
}

func TestGetFollowsTheVM(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	id := addVM(t, s, hypervsim.VM{Name: "app", Owner: "HV1", State: "Running", CPUs: 2, MemoryStartup: 1 << 30})
	d := driverFor(t, s, "az1")
	vm, err := d.Get(ctx, id)
	if err != nil || vm.ID != id || vm.Name != "app" || vm.Attributes["node"] != "HV1" {
		t.Fatalf("Get: %v %+v", err, vm)
	}
	// Upper-case GUIDs name the same VM.
	if vm, err := d.Get(ctx, strings.ToUpper(id)); err != nil || vm.ID != id {
		t.Fatalf("Get upper case: %v %+v", err, vm)
	}
	// A live migration: the next Get finds it on HV3, same ID.
	if err := s.Move(id, "HV3"); err != nil {
		t.Fatal(err)
	}
	vm, err = d.Get(ctx, id)
	if err != nil || vm.Attributes["node"] != "HV3" {
		t.Fatalf("Get after the move: %v %+v", err, vm)
	}
	// Now the cache points at HV3: one get on that node only.
	runs := s.ScriptRuns("get/1")
	if _, err := d.Get(ctx, id); err != nil || s.ScriptRuns("get/1") != runs+1 {
		t.Fatalf("Get from the owner: %v, %d runs", err, s.ScriptRuns("get/1")-runs)
	}
	s.RemoveVM(id)
	_, err = d.Get(ctx, id)
	testkit.WantCode(t, "Get of a removed VM", err, errs.NotFound)
	before := s.Requests()
	_, err = d.Get(ctx, "web-1")
	testkit.WantCode(t, "Get of a non-GUID", err, errs.NotFound)
	testkit.Bounded(t, "Get of a non-GUID", err, 300)
	if s.Requests() != before {
		t.Errorf("a non-GUID ID was sent to the nodes")
	}
}

// With a node unreachable, a VM on another node is still found, but a VM
// on no answering node is not NotFound: the missing node may hold it.
func TestGetWithANodeDown(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	id := addVM(t, s, hypervsim.VM{Name: "app", Owner: "HV3"})
	d := driverFor(t, s, "az1")
	s.Server("HV1").Close()
	if vm, err := d.Get(ctx, id); err != nil || vm.ID != id {
		t.Fatalf("Get with HV1 down: %v %+v", err, vm)
	}
	s.RemoveVM(id)
	_, err := d.Get(ctx, id)
	testkit.WantCode(t, "Get of a VM on no answering node", err, errs.Unavailable)
}

// The node that last held a VM goes down and the VM fails over: Get
// finds it on its new node.
func TestGetAfterTheOwnerWentDown(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	ctx := context.Background()
	id := addVM(t, s, hypervsim.VM{Name: "ha", Owner: "HV1", Clustered: true})
	d := driverFor(t, s, "az1")
	if vm, err := d.Get(ctx, id); err != nil || vm.Attributes["node"] != "HV1" {
		t.Fatalf("Get: %v %+v", err, vm)
	}
	s.Server("HV1").Close()
	if err := s.Move(id, "HV2"); err != nil {
		t.Fatal(err)
	}
	if vm, err := d.Get(ctx, id); err != nil || vm.Attributes["node"] != "HV2" {
		t.Fatalf("Get after the failover: %v %+v", err, vm)
	}
}

func TestZonesIsTheCluster(t *testing.T) {
	t.Parallel()
	s := newCluster(t)
	zs, err := driverFor(t, s, "").Zones(context.Background())
	if err != nil || len(zs) != 1 {
		t.Fatalf("Zones: %v %+v", err, zs)
	}
	z := zs[0]
	if z.Name != "HVC1" || len(z.Clusters) != 1 || z.Clusters[0] != "HVC1" ||
		strings.Join(z.Datastores, ";") != `C:\ClusterStorage\Templates;C:\ClusterStorage\VMs` ||
		strings.Join(z.Networks, ";") != "vSwitch-Trunk" || z.Attributes["nodes"] != "HV1=Up,HV2=Up,HV3=Up" || z.Attributes["domain"] != "CORP" {
		t.Errorf("zone %+v", z)
	}
	// The first node down: the next one answers, and the cluster says so.
	s.Server("HV1").Close()
	if err := s.SetNodeState("HV1", "Down"); err != nil {
		t.Fatal(err)
	}
	if zs, err := driverFor(t, s, "az1").Zones(context.Background()); err != nil || zs[0].Name != "az1" || zs[0].Attributes["nodes"] != "HV1=Down,HV2=Up,HV3=Up" {
		t.Errorf("Zones with HV1 down: %v %+v", err, zs)
	}
}

func TestNewChecksOptions(t *testing.T) {
	t.Parallel()
	_, err := newDriver(nil, guest.Credentials{}, Options{})
	testkit.WantCode(t, "no nodes", err, errs.InvalidArgument)
	cred := guest.Password("svc", "example-only")
	_, err = newDriver([]Node{{Name: "HV1", Host: "hv1.example"}, {Name: "hv1", Host: "hv1b.example"}}, cred, Options{TemplatesPath: `C:\T`})
	testkit.WantCode(t, "a node twice", err, errs.InvalidArgument)
	_, err = newDriver([]Node{{Name: "", Host: "hv1.example"}}, cred, Options{TemplatesPath: `C:\T`})
	testkit.WantCode(t, "a node without a name", err, errs.InvalidArgument)
	_, err = newDriver([]Node{{Name: "HV1", Host: "hv1.example"}}, cred, Options{TemplatesPath: `C:\T`, Zone: "a\nb"})
	testkit.WantCode(t, "a bad zone name", err, errs.InvalidArgument)
	_, err = newDriver([]Node{{Name: "HV1", Host: "bad host"}}, cred, Options{TemplatesPath: `C:\T`})
	testkit.WantCode(t, "a bad host", err, errs.InvalidArgument)
}
