package fakes_test

import (
	"context"
	"io"
	"net/netip"
	"sync"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// recorder counts the calls that reach a stub, by method name.
type recorder struct {
	mu    sync.Mutex
	calls map[string]int
}

func (r *recorder) hit(method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = make(map[string]int)
	}
	r.calls[method]++
}

func (r *recorder) count(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[method]
}

// The stubs answer every call with a fixed, recognizable value.

type stubProvider struct{ *recorder }

var _ provider.Driver = stubProvider{}

func (s stubProvider) List(context.Context, *provider.ListOptions) ([]provider.VM, error) {
	s.hit("List")
	return []provider.VM{{ID: "vm-1"}}, nil
}
func (s stubProvider) Get(_ context.Context, id string) (provider.VM, error) {
	s.hit("Get")
	return provider.VM{ID: id}, nil
}
func (s stubProvider) Cursor(context.Context) (provider.Cursor, error) {
	s.hit("Cursor")
	return "cursor-1", nil
}
func (s stubProvider) Watch(context.Context, provider.Cursor) (provider.DriverStream, error) {
	s.hit("Watch")
	return stubStream(s), nil
}
func (s stubProvider) Provision(_ context.Context, spec provider.ProvisionSpec) (provider.VM, error) {
	s.hit("Provision")
	return provider.VM{ID: "vm-" + spec.Key}, nil
}
func (s stubProvider) PowerOn(context.Context, string) error  { s.hit("PowerOn"); return nil }
func (s stubProvider) PowerOff(context.Context, string) error { s.hit("PowerOff"); return nil }
func (s stubProvider) Destroy(context.Context, string) error  { s.hit("Destroy"); return nil }
func (s stubProvider) Zones(context.Context) ([]provider.Zone, error) {
	s.hit("Zones")
	return []provider.Zone{{Name: "zone-a"}}, nil
}
func (s stubProvider) Templates(_ context.Context, zone string) ([]provider.Template, error) {
	s.hit("Templates")
	return []provider.Template{{ID: "tpl-1", Zone: zone}}, nil
}
func (s stubProvider) Preflight(context.Context) (report.Report, error) {
	s.hit("Preflight")
	return report.Report{Checks: []report.Check{{ID: "stub.check", Status: report.Pass}}}, nil
}

// stubGuestProvider also has guest access.
type stubGuestProvider struct{ stubProvider }

var _ provider.GuestAccessDriver = stubGuestProvider{}

func (s stubGuestProvider) ValidateCredentials(context.Context, string, guest.Credentials) error {
	s.hit("ValidateCredentials")
	return nil
}
func (s stubGuestProvider) GuestExecutor(context.Context, string, guest.Credentials) (*guest.Executor, error) {
	s.hit("GuestExecutor")
	return guest.New(stubExecutor(s.stubProvider), nil), nil
}

type stubStream struct{ *recorder }

func (s stubStream) Next(context.Context) (provider.Event, error) {
	s.hit("Next")
	return provider.Event{Type: provider.Created, VMID: "vm-1", Cursor: "cursor-2"}, nil
}
func (s stubStream) Close() error { s.hit("Stream.Close"); return nil }

type stubExecutor struct{ *recorder }

var _ guest.Driver = stubExecutor{}

func (s stubExecutor) Run(context.Context, guest.Command) (guest.Result, error) {
	s.hit("Run")
	return guest.Result{Stdout: []byte("ran\n")}, nil
}
func (s stubExecutor) Upload(_ context.Context, _ string, r io.Reader, _ guest.UploadOptions) error {
	s.hit("Upload")
	_, err := io.Copy(io.Discard, r)
	return err
}
func (s stubExecutor) Family() guest.OSFamily { s.hit("Family"); return guest.Linux }
func (s stubExecutor) Close() error           { s.hit("Close"); return nil }

var stubAddr = netip.MustParseAddr("203.0.113.5")

type stubIPAM struct{ *recorder }

var _ ipam.Driver = stubIPAM{}

func (s stubIPAM) CreatePool(context.Context, ipam.Pool) error { s.hit("CreatePool"); return nil }
func (s stubIPAM) DeletePool(context.Context, string) error    { s.hit("DeletePool"); return nil }
func (s stubIPAM) Pool(_ context.Context, name string) (ipam.PoolInfo, error) {
	s.hit("Pool")
	return ipam.PoolInfo{Pool: ipam.Pool{Name: name}, Size: 10}, nil
}
func (s stubIPAM) Pools(context.Context) ([]ipam.PoolInfo, error) {
	s.hit("Pools")
	return []ipam.PoolInfo{{Pool: ipam.Pool{Name: "pool"}, Size: 10}}, nil
}
func (s stubIPAM) Allocate(_ context.Context, req ipam.Request) (ipam.Allocation, error) {
	s.hit("Allocate")
	return ipam.Allocation{Pool: req.Pool, Owner: req.Owner, Address: stubAddr}, nil
}
func (s stubIPAM) Release(context.Context, string, string) error { s.hit("Release"); return nil }
func (s stubIPAM) SetLocalIP(_ context.Context, pool, owner string, local netip.Addr) (ipam.Allocation, error) {
	s.hit("SetLocalIP")
	return ipam.Allocation{Pool: pool, Owner: owner, Address: stubAddr, LocalIP: local}, nil
}
func (s stubIPAM) Lookup(_ context.Context, pool, owner string) (ipam.Allocation, error) {
	s.hit("Lookup")
	return ipam.Allocation{Pool: pool, Owner: owner, Address: stubAddr}, nil
}
func (s stubIPAM) LookupAddress(_ context.Context, pool string, a netip.Addr) (ipam.Allocation, error) {
	s.hit("LookupAddress")
	return ipam.Allocation{Pool: pool, Owner: "owner", Address: a}, nil
}
func (s stubIPAM) Allocations(_ context.Context, pool string) ([]ipam.Allocation, error) {
	s.hit("Allocations")
	return []ipam.Allocation{{Pool: pool, Owner: "owner", Address: stubAddr}}, nil
}

type stubFirewall struct{ *recorder }

var _ natfw.Driver = stubFirewall{}

func (s stubFirewall) EnsureNAT(context.Context, natfw.Rule) error { s.hit("EnsureNAT"); return nil }
func (s stubFirewall) RemoveNAT(context.Context, string) error     { s.hit("RemoveNAT"); return nil }
func (s stubFirewall) Get(_ context.Context, owner string) (natfw.Rule, error) {
	s.hit("Get")
	return natfw.Rule{Owner: owner, Public: stubAddr}, nil
}
func (s stubFirewall) List(context.Context) ([]natfw.Rule, error) {
	s.hit("List")
	return []natfw.Rule{{Owner: "owner", Public: stubAddr}}, nil
}

type stubCMDB struct{ *recorder }

var _ cmdb.Driver = stubCMDB{}

func (s stubCMDB) Upsert(_ context.Context, r cmdb.Record) (cmdb.Record, error) {
	s.hit("Upsert")
	r.Revision++
	return r, nil
}
func (s stubCMDB) Get(_ context.Context, key cmdb.Key) (cmdb.Record, error) {
	s.hit("Get")
	return cmdb.Record{Key: key, State: cmdb.Available, Revision: 3}, nil
}
func (s stubCMDB) List(context.Context, cmdb.Filter) ([]cmdb.Record, error) {
	s.hit("List")
	return []cmdb.Record{{Key: cmdb.Key{Provider: "p", VMID: "vm-1"}, State: cmdb.Enrolled}}, nil
}
func (s stubCMDB) Retire(_ context.Context, key cmdb.Key) (cmdb.Record, error) {
	s.hit("Retire")
	return cmdb.Record{Key: key, State: cmdb.Retired}, nil
}

var guestCreds = guest.Credentials{Username: "admin", Password: guest.NewSecret("s3cret")}

// gaOf returns d's guest-access capability, if it has one.
func gaOf(d provider.Driver) (provider.GuestAccessDriver, bool) {
	ga, ok := d.(provider.GuestAccessDriver)
	return ga, ok
}
