package enroll_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/natfw"
)

// recordingConfigurator keeps the guest.Target of each call and does what
// the world's configurator does.
type recordingConfigurator struct {
	mu                 sync.Mutex
	configured, undone []guest.Target
	dialed             []guest.Target
}

func (c *recordingConfigurator) Configure(ctx context.Context, t guest.Target, ex *guest.Executor) error {
	c.mu.Lock()
	c.configured = append(c.configured, t)
	c.mu.Unlock()
	return configurator{}.Configure(ctx, t, ex)
}

func (c *recordingConfigurator) Unconfigure(ctx context.Context, t guest.Target, ex *guest.Executor) error {
	c.mu.Lock()
	c.undone = append(c.undone, t)
	c.mu.Unlock()
	return configurator{}.Unconfigure(ctx, t, ex)
}

// TestTarget: the Dialer and the Configurator receive the VM in guest
// terms: its key and halves, name, family, public and local IP, the NAT's
// ports and the profile.
func TestTarget(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 1})
	rc := &recordingConfigurator{}
	o := w.orchestrator("i1", func(c *enroll.Config, _ *enroll.Options) {
		c.Configurator = rc
		dial := c.Dialer
		c.Dialer = guest.DialFunc(func(ctx context.Context, tg guest.Target, cred guest.Credentials) (*guest.Executor, error) {
			rc.mu.Lock()
			rc.dialed = append(rc.dialed, tg)
			rc.mu.Unlock()
			return dial.Dial(ctx, tg, cred)
		})
	})
	ctx := context.Background()
	res, err := o.Enroll(ctx, w.request(0, ""))
	if err != nil {
		t.Fatal(err)
	}
	vm := w.vms[0]
	want := guest.Target{
		VM: provName + "/" + vm.ID, Provider: provName, VMID: vm.ID, Name: vm.Name,
		Family: guest.Linux, PublicIP: res.PublicIP, LocalIP: res.LocalIP,
	}
	for _, p := range natfw.LinuxPorts() {
		want.Ports = append(want.Ports, guest.Port{Protocol: string(p.Protocol), Number: p.Number})
	}
	if len(rc.configured) != 1 || !reflect.DeepEqual(rc.configured[0], want) {
		t.Fatalf("Configure got %+v, want %+v", rc.configured, want)
	}
	if len(rc.dialed) == 0 || !reflect.DeepEqual(rc.dialed[0], want) {
		t.Fatalf("Dial got %+v, want %+v", rc.dialed, want)
	}
	if !want.HasPort("tcp", 22) || want.HasPort("udp", 22) {
		t.Fatal("HasPort")
	}
	if _, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: vm.ID, Credentials: guest.Password("admin", password)}); err != nil {
		t.Fatal(err)
	}
	if len(rc.undone) != 1 || rc.undone[0].VM != want.VM || rc.undone[0].PublicIP != res.PublicIP {
		t.Fatalf("Unconfigure got %+v", rc.undone)
	}
}
