package provider_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

func world(t *testing.T) *memprovider.Provider {
	t.Helper()
	hv := memprovider.New(nil)
	if err := hv.AddZone(provider.Zone{Name: "z1", Networks: []string{"n1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := hv.AddTemplate(provider.Template{Zone: "z1", Name: "debian-12"}); err != nil {
		t.Fatal(err)
	}
	return hv
}

func TestAsReachesTheDriver(t *testing.T) {
	hv := world(t)
	p := hv.Provider()
	var d *memprovider.Provider
	if !p.As(&d) || d != hv {
		t.Fatalf("As(**memprovider.Provider) = %v, %p; want true, %p", p.As(&d), d, hv)
	}
	var drv provider.Driver
	if !p.As(&drv) || drv != provider.Driver(hv) {
		t.Error("As(*provider.Driver) did not give the driver")
	}
	var s *strings.Builder
	if p.As(&s) || p.As(nil) || p.As(d) {
		t.Error("As set a target of another type, a nil target or a non-pointer-to-pointer")
	}
}

// Errors name the portable operation once, never the driver's own.
func TestErrorsWrappedOnce(t *testing.T) {
	p := world(t).Provider()
	_, err := p.Get(t.Context(), "vm-404")
	testkit.MustCode(t, "Get of an unknown VM", err, errs.NotFound)
	if msg := err.Error(); msg != `provider.Get: VM "vm-404" not found` {
		t.Errorf("Get error %q", msg)
	}
	err = p.PowerOn(t.Context(), "bad\x00id")
	if msg := err.Error(); strings.Count(msg, "provider.PowerOn") != 1 || !strings.HasPrefix(msg, "provider.PowerOn: VM id ") {
		t.Errorf("PowerOn error %q", msg)
	}
}

// blocking answers Provision only when its context ends, and Watch with
// the bare sentinel.
type blocking struct{ *memprovider.Provider }

func (blocking) Provision(ctx context.Context, _ provider.ProvisionSpec) (provider.VM, error) {
	select {
	case <-ctx.Done():
		return provider.VM{}, errs.FromContext(ctx, "")
	case <-time.After(5 * time.Second):
		return provider.VM{}, errs.New(errs.Internal, "", "no deadline reached the driver")
	}
}

func (blocking) Watch(context.Context, provider.Cursor) (provider.DriverStream, error) {
	return nil, provider.ErrCursorExpired
}

func TestProvisionDeadline(t *testing.T) {
	d := blocking{world(t)}
	spec := provider.ProvisionSpec{Key: "k", Name: "vm", Template: "debian-12", Zone: "z1"}
	p := provider.New(d, &provider.Options{ProvisionTimeout: 20 * time.Millisecond})
	start := time.Now()
	_, err := p.Provision(t.Context(), spec)
	testkit.MustCode(t, "Provision past Options.ProvisionTimeout", err, errs.DeadlineExceeded)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Provision took %v", d)
	}
	spec.Timeout = 10 * time.Millisecond
	p = provider.New(d, &provider.Options{ProvisionTimeout: time.Hour})
	_, err = p.Provision(t.Context(), spec)
	testkit.MustCode(t, "Provision past spec.Timeout", err, errs.DeadlineExceeded)
}

func TestBareSentinelStaysReachable(t *testing.T) {
	p := provider.New(blocking{world(t)}, nil)
	_, err := p.Watch(t.Context(), "")
	if !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("Watch returning the bare sentinel: %v does not wrap ErrCursorExpired", err)
	}
	testkit.WantCode(t, "Watch", err, errs.FailedPrecondition)
}

func TestCloseEndsStreams(t *testing.T) {
	p := world(t).Provider()
	st, err := p.Watch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := st.Next(t.Context()); done <- err }()
	time.Sleep(10 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, provider.ErrStreamClosed) {
			t.Fatalf("Next unblocked by the Provider's Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Provider.Close did not unblock Next")
	}
	if err := st.Close(); err != nil {
		t.Errorf("Stream.Close after the Provider's: %v", err)
	}
}

func TestWatchStats(t *testing.T) {
	hv := world(t)
	p := hv.Provider()
	if s := p.WatchStats(); s != (provider.WatchStats{}) {
		t.Fatalf("WatchStats before any event: %+v", s)
	}
	st, err := p.Watch(t.Context(), "0")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev, err := st.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s := p.WatchStats()
	if s.Events != 1 || !s.LastEventTime.Equal(ev.Time) || s.LastDelivered.Before(ev.Time) {
		t.Fatalf("WatchStats %+v after the event of %v", s, ev.Time)
	}
}

// passwordSetter is memprovider with the AdminPasswordDriver capability
// switched by its field.
type passwordSetter struct {
	*memprovider.Provider
	sets bool
}

func (d passwordSetter) SetsAdminPassword() bool { return d.sets }

// TestAdminPasswordNeedsTheCapability: a spec with
// Customization.AdminPassword reaches only a driver that sets it; any
// other is refused before it is called, without the password in the
// message.
func TestAdminPasswordNeedsTheCapability(t *testing.T) {
	const pw = "canary-admin-pw-7731"
	spec := provider.ProvisionSpec{Key: "k", Name: "vm", Template: "debian-12", Zone: "z1",
		Customization: &provider.Customization{AdminPassword: guest.NewSecret(pw)}}
	for _, c := range []struct {
		name string
		d    provider.Driver
		want errs.Code
	}{
		{"no capability", world(t), errs.InvalidArgument},
		{"capability false", passwordSetter{world(t), false}, errs.InvalidArgument},
		{"capability true", passwordSetter{world(t), true}, errs.OK},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := provider.New(c.d, nil).Provision(t.Context(), spec)
			if c.want == errs.OK {
				if err != nil {
					t.Fatalf("Provision: %v", err)
				}
				return
			}
			testkit.MustCode(t, "Provision with AdminPassword", err, c.want)
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("the error repeats the password: %v", err)
			}
			vms, _ := c.d.List(t.Context(), &provider.ListOptions{})
			if len(vms) != 0 {
				t.Fatalf("the driver made %d VMs for a refused spec", len(vms))
			}
		})
	}
}
