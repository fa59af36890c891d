package vsphere_test

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

func TestFlows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{RootCAs: sim.CAs})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	flows, ok := p.Flows()
	if !ok || len(flows) != 1 {
		t.Fatalf("Flows() = %+v, %v", flows, ok)
	}
	host, port, _ := net.SplitHostPort(sim.URL.Host)
	f := flows[0]
	if f.Host != host || len(f.Ports) != 1 || strconv.Itoa(int(f.Ports[0])) != port || !f.TLS || f.Destination != "VMware vCenter Server" {
		t.Fatalf("flow %+v, want %s port %s over TLS", f, host, port)
	}
}
