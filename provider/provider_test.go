package provider_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestPrimaryIP(t *testing.T) {
	cases := []struct {
		name string
		ips  []netip.Addr
		want string // "" means none
	}{
		{"none", nil, ""},
		{"single v4", addrs("10.0.0.5"), "10.0.0.5"},
		{"v4 preferred over earlier v6", addrs("2001:db8::5", "192.168.1.9"), "192.168.1.9"},
		{"first v4 wins", addrs("10.0.0.1", "10.0.0.2"), "10.0.0.1"},
		{"loopback and link-local skipped", addrs("127.0.0.1", "169.254.3.4", "fe80::1", "172.16.0.8"), "172.16.0.8"},
		{"v6 fallback", addrs("fe80::1", "2001:db8::7"), "2001:db8::7"},
		{"only unusable", addrs("127.0.0.1", "fe80::1", "0.0.0.0", "224.0.0.1"), ""},
		{"invalid addr skipped", []netip.Addr{{}, netip.MustParseAddr("10.1.1.1")}, "10.1.1.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vm := provider.VM{Guest: provider.GuestInfo{IPs: c.ips}}
			got, ok := vm.PrimaryIP()
			if c.want == "" {
				if ok {
					t.Fatalf("PrimaryIP() = %v, true; want none", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(c.want) {
				t.Fatalf("PrimaryIP() = %v, %v; want %s, true", got, ok, c.want)
			}
		})
	}
}

func TestCloneIsDeep(t *testing.T) {
	orig := provider.VM{
		ID: "vm-1", Name: "web", Zone: "z1", Power: provider.PoweredOn, CPUs: 2, MemoryMiB: 2048,
		Guest:      provider.GuestInfo{Family: guest.Linux, IPs: addrs("10.0.0.5", "10.0.0.6"), ToolsRunning: true},
		Attributes: map[string]string{"cluster": "c1"},
	}
	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("Clone() = %+v, want %+v", c, orig)
	}
	c.Guest.IPs[0] = netip.MustParseAddr("192.0.2.1")
	c.Attributes["cluster"] = "changed"
	c.Attributes["new"] = "x"
	if orig.Guest.IPs[0] != netip.MustParseAddr("10.0.0.5") {
		t.Error("changing the clone's IPs changed the original")
	}
	if len(orig.Attributes) != 1 || orig.Attributes["cluster"] != "c1" {
		t.Errorf("changing the clone's Attributes changed the original: %v", orig.Attributes)
	}

	// nil stays nil (no spurious empty map), and appending to a clone's
	// IPs never writes into the original's backing array.
	empty := provider.VM{ID: "vm-2"}.Clone()
	if empty.Attributes != nil {
		t.Error("Clone of nil Attributes is not nil")
	}
	base := provider.VM{Guest: provider.GuestInfo{IPs: make([]netip.Addr, 1, 4)}}
	cl := base.Clone()
	cl.Guest.IPs = append(cl.Guest.IPs, netip.MustParseAddr("10.9.9.9"))
	if got := base.Guest.IPs[:2][1]; got.IsValid() {
		t.Errorf("append to clone wrote into the original's array: %v", got)
	}
}

func TestEventTypeString(t *testing.T) {
	for typ, want := range map[provider.EventType]string{
		provider.Created: "created", provider.Changed: "changed", provider.Deleted: "deleted", 0: "unknown", 42: "unknown",
	} {
		if got := typ.String(); got != want {
			t.Errorf("EventType(%d).String() = %q, want %q", int(typ), got, want)
		}
	}
}

// driverOnly is a Driver (its methods are never called here) with no
// optional capability; withGuest adds guest access, halfGuest half of it.
type driverOnly struct{ provider.Driver }

type withGuest struct{ driverOnly }

func (withGuest) ValidateCredentials(context.Context, string, guest.Credentials) error { return nil }
func (withGuest) GuestExecutor(context.Context, string, guest.Credentials) (*guest.Executor, error) {
	return nil, errs.New(errs.Unimplemented, "", "no executor")
}

type halfGuest struct{ driverOnly }

func (halfGuest) ValidateCredentials(context.Context, string, guest.Credentials) error { return nil }

func TestGuestAccessDetected(t *testing.T) {
	if ga, ok := provider.New(withGuest{}, nil).GuestAccess(); !ok || ga == nil {
		t.Error("GuestAccess missed the driver's guest access")
	}
	if _, ok := provider.New(halfGuest{}, nil).GuestAccess(); ok {
		t.Error("GuestAccess found guest access on a driver with half of it")
	}
	if _, ok := provider.New(driverOnly{}, nil).GuestAccess(); ok {
		t.Error("GuestAccess found guest access on a driver without it")
	}
}

func TestSentinels(t *testing.T) {
	for _, sentinel := range []error{provider.ErrCursorExpired, provider.ErrStreamClosed} {
		wrapped := fmt.Errorf("driver: %w", &errs.Error{Code: errs.FailedPrecondition, Op: "x.Watch", Err: sentinel})
		if !errors.Is(wrapped, sentinel) {
			t.Errorf("errors.Is(wrapped, %v) = false", sentinel)
		}
		if got := errs.CodeOf(sentinel); got != errs.FailedPrecondition {
			t.Errorf("CodeOf(%v) = %v, want FailedPrecondition", sentinel, got)
		}
		if !errors.Is(sentinel, errs.FailedPrecondition) {
			t.Errorf("errors.Is(%v, FailedPrecondition) = false", sentinel)
		}
	}
	if errors.Is(provider.ErrCursorExpired, provider.ErrStreamClosed) {
		t.Error("ErrCursorExpired is ErrStreamClosed")
	}
}

func validSpec() provider.ProvisionSpec {
	return provider.ProvisionSpec{Key: "k1", Name: "web-1", Template: "debian-12", Zone: "z1"}
}

func TestProvisionSpecValidate(t *testing.T) {
	if err := validSpec().Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	full := validSpec()
	full.CPUs, full.MemoryMiB, full.Timeout = 4, 8192, time.Minute
	full.Network = provider.Network{Name: "vlan-100", VLAN: 100}
	full.Customization = &provider.Customization{
		Hostname:      "web-1.example.com",
		AdminPassword: guest.NewSecret(strings.Repeat("p", provider.MaxAdminPassword)),
		Static: &provider.StaticIP{
			Address: netip.MustParsePrefix("10.0.0.5/24"),
			Gateway: netip.MustParseAddr("10.0.0.1"),
			DNS:     addrs("10.0.0.2", "2001:db8::53"),
		},
	}
	if err := full.Validate(); err != nil {
		t.Fatalf("full valid spec: %v", err)
	}

	bad := map[string]func(*provider.ProvisionSpec){
		"no key":           func(s *provider.ProvisionSpec) { s.Key = "" },
		"blank key":        func(s *provider.ProvisionSpec) { s.Key = "  " },
		"no name":          func(s *provider.ProvisionSpec) { s.Name = "" },
		"no template":      func(s *provider.ProvisionSpec) { s.Template = "" },
		"no zone":          func(s *provider.ProvisionSpec) { s.Zone = "\t" },
		"negative cpus":    func(s *provider.ProvisionSpec) { s.CPUs = -1 },
		"negative memory":  func(s *provider.ProvisionSpec) { s.MemoryMiB = -512 },
		"negative timeout": func(s *provider.ProvisionSpec) { s.Timeout = -time.Second },
		"vlan too big":     func(s *provider.ProvisionSpec) { s.Network.VLAN = 4095 },
		"vlan negative":    func(s *provider.ProvisionSpec) { s.Network.VLAN = -1 },
		"bad hostname":     func(s *provider.ProvisionSpec) { s.Customization = &provider.Customization{Hostname: "web_1"} },
		"hyphen hostname":  func(s *provider.ProvisionSpec) { s.Customization = &provider.Customization{Hostname: "-web"} },
		"long label": func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{Hostname: strings.Repeat("a", 64)}
		},
		"empty label": func(s *provider.ProvisionSpec) { s.Customization = &provider.Customization{Hostname: "a..b"} },
		"static zero address": func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{Static: &provider.StaticIP{}}
		},
		"static v6": func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{Static: &provider.StaticIP{Address: netip.MustParsePrefix("2001:db8::5/64")}}
		},
		"gateway outside": func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{Static: &provider.StaticIP{
				Address: netip.MustParsePrefix("10.0.0.5/24"), Gateway: netip.MustParseAddr("10.0.1.1")}}
		},
		"gateway is self": func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{Static: &provider.StaticIP{
				Address: netip.MustParsePrefix("10.0.0.5/24"), Gateway: netip.MustParseAddr("10.0.0.5")}}
		},
		"password too long": func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{AdminPassword: guest.NewSecret(strings.Repeat("p", provider.MaxAdminPassword+1))}
		},
		"password newline": func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{AdminPassword: guest.NewSecret("canary-pw\n")}
		},
		"password not utf8": func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{AdminPassword: guest.NewSecret("canary-pw\xff")}
		},
		"invalid dns": func(s *provider.ProvisionSpec) {
			s.Customization = &provider.Customization{Static: &provider.StaticIP{
				Address: netip.MustParsePrefix("10.0.0.5/24"), DNS: []netip.Addr{{}}}}
		},
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			s := validSpec()
			mutate(&s)
			err := s.Validate()
			if got := errs.CodeOf(err); got != errs.InvalidArgument {
				t.Fatalf("Validate() = %v (code %v), want InvalidArgument", err, got)
			}
			if strings.Contains(err.Error(), "canary-pw") {
				t.Fatalf("Validate() error shows the password: %v", err)
			}
		})
	}
}
