package hyperv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/provider"
)

// benchCluster is a 4-node cluster of 2,000 VMs (500 per node, each with
// one adapter) whose WinRM services add 1 ms to every request.
func benchCluster(b *testing.B) (*hypervsim.Sim, *Provider, []string) {
	s := newClusterOpts(b, hypervsim.Options{Nodes: []string{"HV1", "HV2", "HV3", "HV4"}, RequestDelay: time.Millisecond})
	var ids []string
	for i := range 2000 {
		ids = append(ids, addVM(b, s, hypervsim.VM{Name: fmt.Sprintf("vm-%04d", i), Owner: s.Nodes()[i%4], State: "Running",
			Heartbeat: "OkApplicationsUnknown", CPUs: 2, MemoryStartup: 4 << 30, Clustered: true,
			Adapters: []hypervsim.Adapter{{MAC: fmt.Sprintf("00155d%06x", i), Switch: "vSwitch-Trunk", IPs: []string{fmt.Sprintf("10.20.%d.%d", i/250, i%250+1)}, VLAN: 20}}}))
	}
	d := driverFor(b, s, "az1")
	if vms, err := d.List(context.Background(), &provider.ListOptions{}); err != nil || len(vms) != 2000 {
		b.Fatalf("List: %v %d", err, len(vms))
	}
	return s, d, ids
}

// BenchmarkList is one List: the inventory template once per node, at
// once.
func BenchmarkList(b *testing.B) {
	s, d, _ := benchCluster(b)
	ctx := context.Background()
	before := s.Requests()
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.List(ctx, &provider.ListOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Requests()-before)/float64(b.N), "winrm-requests/op")
}

// BenchmarkPerVMGetLoop lists the same VMs the way a script that calls
// Get-VM per VM does: one get per VM, on its owner node (the owner cache
// is warm, the loop's best case).
func BenchmarkPerVMGetLoop(b *testing.B) {
	s, d, ids := benchCluster(b)
	ctx := context.Background()
	before := s.Requests()
	b.ResetTimer()
	for b.Loop() {
		for _, id := range ids {
			if _, err := d.Get(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(s.Requests()-before)/float64(b.N), "winrm-requests/op")
}
