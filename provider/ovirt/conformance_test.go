package ovirt_test

import (
	"context"
	"testing"
	"time"

	"github.com/managedvm/managedvm/guest"
	fakeovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/ovirt"
	"github.com/managedvm/managedvm/provider/providertest"
)

const zoneName = "Default/Default"

type world struct {
	s  *fakeovirt.Server
	pp *provider.Provider // what hosts hold
	p  *ovirt.Provider    // the driver behind pp
}

// newWorld starts a fake engine (state steps of 10 ms) and a driver
// connected to it with the engine's CA.
func newWorld(t testing.TB, fo *fakeovirt.Options, opts *ovirt.Options) *world {
	t.Helper()
	if fo == nil {
		fo = &fakeovirt.Options{}
	}
	if fo.Step == 0 {
		fo.Step = 10 * time.Millisecond
	}
	s := fakeovirt.New(fo)
	t.Cleanup(s.Close)
	o := ovirt.Options{}
	if opts != nil {
		o = *opts
	}
	o.CACertPEM = s.CACertPEM()
	if o.PollInterval == 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	if o.StepPoll == 0 {
		o.StepPoll = 20 * time.Millisecond
	}
	pp, err := ovirt.New(context.Background(), s.URL(), s.User(), guest.NewSecret(s.Password()), &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pp.Close() })
	var d *ovirt.Provider
	if !pp.As(&d) {
		t.Fatal("As(**ovirt.Provider) found no driver")
	}
	return &world{s: s, pp: pp, p: d}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	providertest.Run(t, providertest.HarnessFunc(func(t *testing.T) (provider.Driver, providertest.Fixture) {
		return w.p, providertest.Fixture{
			Zone: zoneName, Template: "centos9",
			Network:         provider.Network{Name: "vlan100"},
			OutOfBandRename: func(_ context.Context, id, name string) error { return w.s.RenameVM(id, name) },
			OutOfBandDelete: func(_ context.Context, id string) error { return w.s.RemoveVM(id) },
			Parallelism:     16,
			Timeout:         time.Minute,
		}
	}))
}
