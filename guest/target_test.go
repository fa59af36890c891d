package guest_test

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
)

func TestTarget(t *testing.T) {
	tg := guest.Target{VM: "vc/vm-1", Ports: []guest.Port{{Protocol: "tcp", Number: 22}, {Protocol: "udp", Number: 500}}}
	c := tg.Clone()
	c.Ports[0].Number = 2222
	if tg.Ports[0].Number != 22 {
		t.Fatal("Clone shares Ports")
	}
	if !tg.HasPort("tcp", 22) || tg.HasPort("udp", 22) || !tg.HasPort("udp", 500) || (guest.Target{}).HasPort("tcp", 22) {
		t.Fatal("HasPort")
	}
	if s := tg.Ports[1].String(); s != "udp/500" {
		t.Fatalf("Port.String = %q", s)
	}
}

func TestFuncAdapters(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	var got guest.Target
	var d guest.Dialer = guest.DialFunc(func(_ context.Context, tg guest.Target, cred guest.Credentials) (*guest.Executor, error) {
		got = tg
		return ex.Executor(), nil
	})
	var c guest.Configurator = guest.ConfiguratorFunc(func(_ context.Context, tg guest.Target, e *guest.Executor) error {
		if e == nil || tg.VM != "vc/vm-2" {
			t.Errorf("Configure got %+v, %v", tg, e)
		}
		return nil
	})
	e, err := d.Dial(context.Background(), guest.Target{VM: "vc/vm-2"}, guest.Password("u", "p"))
	if err != nil || got.VM != "vc/vm-2" || e == nil {
		t.Fatalf("Dial: %v %+v", err, got)
	}
	if err := c.Configure(context.Background(), got, e); err != nil {
		t.Fatal(err)
	}
}
