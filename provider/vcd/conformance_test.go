package vcd_test

import (
	"context"
	"testing"
	"time"

	"github.com/managedvm/managedvm/guest"
	fakevcd "github.com/managedvm/managedvm/internal/fakes/vcd"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/providertest"
	"github.com/managedvm/managedvm/provider/vcd"
)

type world struct {
	s  *fakevcd.Server
	pp *provider.Provider
	p  *vcd.Provider
}

func newWorld(t testing.TB, fo *fakevcd.Options, opts *vcd.Options) *world {
	t.Helper()
	s := fakevcd.New(fo)
	t.Cleanup(s.Close)
	o := vcd.Options{}
	if opts != nil {
		o = *opts
	}
	o.CACertPEM = s.CACertPEM()
	if o.TaskPoll == 0 {
		o.TaskPoll = 20 * time.Millisecond
	}
	if o.PollInterval == 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	if o.ResyncInterval == 0 {
		o.ResyncInterval = -1
	}
	so := s.Options()
	pp, err := vcd.New(context.Background(), s.URL(), vcd.Credentials{Org: so.Org, User: so.User, Password: guest.NewSecret(so.Password)}, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pp.Close() })
	var d *vcd.Provider
	if !pp.As(&d) {
		t.Fatal("As(**vcd.Provider) found no driver")
	}
	return &world{s: s, pp: pp, p: d}
}

func TestConformance(t *testing.T) {
	w := newWorld(t, &fakevcd.Options{TaskDuration: 5 * time.Millisecond}, nil)
	so := w.s.Options()
	providertest.Run(t, providertest.HarnessFunc(func(t *testing.T) (provider.Driver, providertest.Fixture) {
		return w.p, providertest.Fixture{
			Zone: so.VDC, Template: so.Template,
			Network:         provider.Network{Name: so.Network},
			OutOfBandRename: func(_ context.Context, id, name string) error { return w.s.RenameVM(id, name) },
			OutOfBandDelete: func(_ context.Context, id string) error { return w.s.RemoveVM(id) },
			Parallelism:     16,
			Timeout:         time.Minute,
		}
	}))
}
