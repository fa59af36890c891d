package hyperv_test

import (
	"context"
	"testing"
	"time"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/hyperv"
	"github.com/managedvm/managedvm/provider/providertest"
)

const (
	testUser     = "svc-managedvm"
	testPassword = "canary-Hv-8c1e5f"
)

type world struct {
	s  *hypervsim.Sim
	pp *provider.Provider // what hosts hold
	p  *hyperv.Provider   // the driver behind pp
}

// newWorld starts a 3-node simulated cluster with a templates CSV (one
// template, with its sidecar), a VMs CSV and a trunking switch, and the
// portable Provider in front of a driver for it.
func newWorld(t testing.TB, so hypervsim.Options, opts *hyperv.Options) *world {
	t.Helper()
	if len(so.Nodes) == 0 {
		so.Nodes = []string{"HV1", "HV2", "HV3"}
	}
	so.Cluster, so.Domain, so.User, so.Password = "HVC1", "CORP", testUser, testPassword
	s, err := hypervsim.New(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddCSV(hypervsim.CSV{Name: "Cluster Disk 1", Path: `C:\ClusterStorage\Templates`, Owner: so.Nodes[0]})
	s.AddCSV(hypervsim.CSV{Name: "Cluster Disk 2", Path: `C:\ClusterStorage\VMs`, Owner: so.Nodes[len(so.Nodes)-1]})
	s.AddSwitch(hypervsim.Switch{Name: "vSwitch-Trunk", Type: "External"})
	s.AddVHDX(hypervsim.VHDX{Path: `C:\ClusterStorage\Templates\ubuntu-24.04.vhdx`, Size: 32 << 30, FileSize: 3 << 30})
	s.AddFile(`C:\ClusterStorage\Templates\ubuntu-24.04.json`, []byte(`{"family":"linux","osName":"Ubuntu 24.04","integrationServices":true}`))
	o := hyperv.Options{}
	if opts != nil {
		o = *opts
	}
	if o.TemplatesPath == "" {
		o.TemplatesPath, o.VMsPath = `C:\ClusterStorage\Templates`, `C:\ClusterStorage\VMs`
	}
	if o.Switch == "" {
		o.Switch, o.VLANs = "vSwitch-Trunk", []int{20, 30}
	}
	if o.Zone == "" {
		o.Zone = "az1"
	}
	if o.PollInterval == 0 {
		o.PollInterval, o.ResyncInterval = 20*time.Millisecond, 100*time.Millisecond
	}
	pp, err := hyperv.New(context.Background(), nodesOf(s), guest.Password(`CORP\`+testUser, testPassword), &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pp.Close() })
	var d *hyperv.Provider
	if !pp.As(&d) {
		t.Fatal("As(**hyperv.Provider) found no driver")
	}
	return &world{s: s, pp: pp, p: d}
}

func nodesOf(s *hypervsim.Sim) []hyperv.Node {
	var out []hyperv.Node
	for _, n := range s.Nodes() {
		ep, _ := s.Endpoint(n)
		out = append(out, hyperv.Node{Name: n, Host: ep.Host, WinRM: winrm.Options{Port: ep.Port, CACertPEM: ep.CACertPEM}})
	}
	return out
}

func TestConformance(t *testing.T) {
	t.Parallel()
	w := newWorld(t, hypervsim.Options{}, nil)
	gvm, _ := guestWorld(t, w)
	providertest.Run(t, providertest.HarnessFunc(func(t *testing.T) (provider.Driver, providertest.Fixture) {
		return w.p, providertest.Fixture{
			Zone: "az1", Template: "ubuntu-24.04",
			Network:         provider.Network{Name: "vSwitch-Trunk", VLAN: 20},
			OutOfBandRename: func(_ context.Context, id, name string) error { return w.s.RenameVM(id, name) },
			OutOfBandDelete: func(_ context.Context, id string) error {
				if !w.s.RemoveVM(id) {
					return context.Canceled
				}
				return nil
			},
			GuestVM:          gvm,
			GuestCredentials: guest.Password("Administrator", guestPassword),
			Parallelism:      8,
			Timeout:          time.Minute,
		}
	}))
}

const guestPassword = "canary-Guest-3f9a71"

// guestWorld adds a running VM whose guest PowerShell Direct reaches (an
// Administrator account, commands run by the interpreter over root).
func guestWorld(t testing.TB, w *world) (vmID, root string) {
	t.Helper()
	root = t.TempDir()
	id, err := w.s.AddVM(hypervsim.VM{Name: "guest-vm", Owner: "HV2", State: "Running", Heartbeat: "OkApplicationsUnknown", Clustered: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.s.SetGuest(id, hypervsim.Guest{User: "Administrator", Password: guestPassword, Root: root}); err != nil {
		t.Fatal(err)
	}
	return id, root
}

func newProvider(w *world, cred guest.Credentials) (*provider.Provider, error) {
	return hyperv.New(context.Background(), nodesOf(w.s), cred, &hyperv.Options{Zone: "az1", TemplatesPath: `C:\ClusterStorage\Templates`})
}
