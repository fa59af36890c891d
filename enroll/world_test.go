package enroll_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/internal/fakes"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

const (
	provName = "vc1"
	zoneName = "az1"
	poolName = "pub"
	password = "CANARY-pw-7f3a9c"
)

var mgmt = netip.MustParsePrefix("198.51.100.0/24")

// world is a complete set of in-memory drivers, each wrapped with fault
// injection, and the state a test checks invariants against.
type world struct {
	t     testing.TB
	hv    *memprovider.Provider
	ipam  *memipam.Driver
	fw    *natfw.Firewall
	db    *cmdb.CMDB
	store *enroll.Store

	provInj, ipamInj, fwInj, dbInj, guestInj *fakes.Injector
	prov                                     provider.Driver

	clock atomic.Int64 // unix nanos, advanced by tests

	mu         sync.Mutex
	configured map[string]bool // VM ID -> service account present in the guest
	events     []enroll.Event
	logs       bytes.Buffer
	logMu      sync.Mutex

	noGuestAccess bool
	dialInj       *fakes.Injector
	dials         atomic.Int32
	probes        atomic.Int32 // OS-facts probes run in guests
	vms           []provider.VM
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *world) now() time.Time { return time.Unix(0, w.clock.Load()) }

// advance moves the clock (leases expire).
func (w *world) advance(d time.Duration) { w.clock.Add(int64(d)) }

type worldOptions struct {
	vms           int
	noGuestAccess bool
	poolPrefix    string
}

func newWorld(t testing.TB, o worldOptions) *world {
	if o.vms == 0 {
		o.vms = 3
	}
	if o.poolPrefix == "" {
		o.poolPrefix = "203.0.113.0/24"
	}
	w := &world{t: t, configured: map[string]bool{}, noGuestAccess: o.noGuestAccess}
	w.clock.Store(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).UnixNano())
	w.hv = memprovider.New(&memprovider.Options{GuestHandler: w.guestOS})
	w.ipam = memipam.NewDriver(nil)
	w.fw = memfw.New(nil)
	w.db = memcmdb.New(nil)
	w.store = enroll.NewMemoryStore(&enroll.MemoryStoreOptions{Now: w.now})
	w.provInj, w.ipamInj, w.fwInj, w.dbInj, w.guestInj, w.dialInj = fakes.NewInjector(), fakes.NewInjector(), fakes.NewInjector(), fakes.NewInjector(), fakes.NewInjector(), fakes.NewInjector()
	w.prov = fakes.WrapProvider(w.hv, w.provInj)
	if o.noGuestAccess {
		w.prov = noGuest{w.prov}
	}
	ctx := context.Background()
	if err := w.hv.AddZone(provider.Zone{Name: zoneName}); err != nil {
		t.Fatal(err)
	}
	if err := w.ipam.CreatePool(ctx, ipam.Pool{Name: poolName, Prefix: netip.MustParsePrefix(o.poolPrefix)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < o.vms; i++ {
		w.addVM(fmt.Sprintf("vm-%03d", i), netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(1 + i%250)}), i)
	}
	return w
}

func (w *world) addVM(name string, ip netip.Addr, i int) provider.VM {
	fam, osName := guest.Linux, "Debian GNU/Linux 12 (bookworm)"
	if i%3 == 2 {
		fam, osName = guest.Windows, "Microsoft Windows Server 2022 Datacenter"
	}
	vm, err := w.hv.AddVM(provider.VM{
		Name: name, Zone: zoneName, Power: provider.PoweredOn, CPUs: 2, MemoryMiB: 2048,
		Guest: provider.GuestInfo{Family: fam, OSName: osName, OSVersion: map[guest.OSFamily]string{guest.Linux: "12", guest.Windows: "10.0.20348"}[fam],
			IPs: []netip.Addr{ip}, ToolsRunning: true, Hostname: name},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.hv.SetGuestAccount(vm.ID, "admin", password); err != nil {
		w.t.Fatal(err)
	}
	w.vms = append(w.vms, vm)
	return vm
}

// noGuest hides the provider's guest access.
type noGuest struct{ provider.Driver }

// guestOS answers the guest commands of every VM (through the provider's
// guest access): facts, df, command lookups, and the service account.
func (w *world) guestOS(ctx context.Context, req memprovider.GuestRequest) (guest.Result, error) {
	return w.answer(ctx, req.VM.ID, req.Command, func() (guest.Result, error) { return memprovider.DefaultGuestHandler(ctx, req) })
}

func (w *world) answer(ctx context.Context, vmID string, cmd guest.Command, fallback func() (guest.Result, error)) (guest.Result, error) {
	args, script := cmd.Args, cmd.Script
	if strings.Contains(script, "__MANAGEDVM_UNAME__") || strings.Contains(script, "Win32_OperatingSystem") {
		w.probes.Add(1)
	}
	switch {
	case len(args) > 0 && args[0] == "df":
		return guest.Result{Stdout: []byte("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 20000000 1000000 19000000 5% /\n")}, nil
	case strings.Contains(script, "Get-PSDrive"):
		return guest.Result{Stdout: []byte("21474836480\r\n")}, nil
	case len(args) > 2 && strings.Contains(args[2], "command -v"), strings.Contains(script, "Get-Command"):
		return guest.Result{}, nil
	case len(args) > 0 && args[0] == "useradd", strings.Contains(script, "New-LocalUser"):
		w.mu.Lock()
		w.configured[vmID] = true
		w.mu.Unlock()
		return guest.Result{}, nil
	case len(args) > 0 && args[0] == "userdel", strings.Contains(script, "Remove-LocalUser"):
		w.mu.Lock()
		delete(w.configured, vmID)
		w.mu.Unlock()
		return guest.Result{}, nil
	}
	return fallback()
}

// dialer reaches a VM "through its public IP": it checks that the NAT
// exists and points at the VM, and that the credentials are right, then
// returns a memguest executor answering for that VM.
func (w *world) dialer() guest.Dialer {
	return guest.DialFunc(func(ctx context.Context, t guest.Target, cred guest.Credentials) (*guest.Executor, error) {
		w.dials.Add(1)
		// Reaching the guest goes through the NAT: a fault of dialInj's
		// "Get" is a failed dial.
		rule, err := (&fakes.Firewall{Firewall: w.fw, Injector: w.dialInj}).Get(ctx, t.VM)
		if errs.CodeOf(err) == errs.Internal || errs.CodeOf(err) == errs.OutcomeUnknown || errs.CodeOf(err) == errs.Canceled {
			return nil, err
		}
		if err != nil || rule.Public != t.PublicIP || rule.Local != t.LocalIP {
			return nil, errs.Errorf(errs.Unavailable, "dial", "no NAT to %s: %v", t.PublicIP, err)
		}
		if cred.Username != "admin" || cred.Password.Reveal() != password {
			return nil, errs.New(errs.Unauthenticated, "dial", "authentication failed")
		}
		ex := memguest.NewDriver(t.Family, nil)
		vmID := t.VMID
		ex.HandleDefault(func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
			return w.answer(ctx, vmID, cmd, func() (guest.Result, error) {
				vm, err := w.hv.Get(ctx, vmID)
				if err != nil {
					return guest.Result{}, guest.SessionLost("dial", err)
				}
				return memprovider.DefaultGuestHandler(ctx, memprovider.GuestRequest{VM: vm, User: cred.Username, Command: cmd})
			})
		})
		return fakes.WrapExecutor(ex.Executor(), w.guestInj), nil
	})
}

// configurator creates and removes the operator's service account.
type configurator struct{}

func (configurator) Configure(ctx context.Context, t guest.Target, ex *guest.Executor) error {
	if t.Family == guest.Windows {
		_, err := ex.Run(ctx, guest.Command{Script: "New-LocalUser -Name 'mvm-operator' -NoPassword"})
		return err
	}
	_, err := ex.Run(ctx, guest.Command{Args: []string{"useradd", "-m", "mvm-operator"}})
	return err
}

func (configurator) Unconfigure(ctx context.Context, t guest.Target, ex *guest.Executor) error {
	if t.Family == guest.Windows {
		_, err := ex.Run(ctx, guest.Command{Script: "Remove-LocalUser -Name 'mvm-operator'"})
		return err
	}
	_, err := ex.Run(ctx, guest.Command{Args: []string{"userdel", "-r", "mvm-operator"}})
	return err
}

func (w *world) config() enroll.Config {
	return enroll.Config{
		Providers: map[string]*provider.Provider{provName: provider.New(w.prov, nil)},
		IPAM:      ipam.New(&fakes.IPAM{Driver: w.ipam, Injector: w.ipamInj}, nil),
		Firewall:  natfw.New(&fakes.Firewall{Firewall: w.fw, Injector: w.fwInj}, nil),
		CMDB:      cmdb.New(&fakes.CMDB{CMDB: w.db, Injector: w.dbInj}, nil),
		Store:     w.store,
		Policy: enroll.Policy{
			Pool: poolName, ManagementSources: []netip.Prefix{mgmt},
			Requirements: map[guest.OSFamily]guest.Requirements{
				guest.Linux:   {Distributions: map[string]string{"debian": "11", "rhel": "8"}, MinFreeDiskMiB: 512, Commands: []string{"useradd"}},
				guest.Windows: {Distributions: map[string]string{"windows": "10.0"}, MinFreeDiskMiB: 512},
			},
		},
		Configurator: configurator{},
		Dialer:       w.dialer(),
		Credentials: enroll.CredentialFunc(func(ctx context.Context, j enroll.Journal) (guest.Credentials, error) {
			return guest.Password(j.Username, password), nil
		}),
	}
}

// orchestrator returns a new orchestrator instance over the world.
func (w *world) orchestrator(instance string, mutate func(*enroll.Config, *enroll.Options)) *enroll.Orchestrator {
	cfg := w.config()
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&w.logMu, &w.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := &enroll.Options{
		Logger:     logger,
		Instance:   instance,
		Now:        w.now,
		RetryDelay: time.Millisecond,
		LeaseTTL:   time.Minute,
		Observer: enroll.ObserverFunc(func(e enroll.Event) {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
			enroll.LogObserver(logger).Observe(e)
		}),
	}
	if mutate != nil {
		mutate(&cfg, opts)
	}
	o, err := enroll.New(cfg, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

func (w *world) request(i int, key string) enroll.Request {
	return enroll.Request{Key: key, Provider: provName, VMID: w.vms[i].ID, Credentials: guest.Password("admin", password)}
}

func (w *world) key(i int) cmdb.Key { return cmdb.Key{Provider: provName, VMID: w.vms[i].ID} }

// checkInvariants asserts that the drivers agree: a VM holds a public IP,
// a NAT rule and the service account exactly when its CMDB record is
// enrolled; no record is left enrolling or unenrolling; no journal is open.
func (w *world) checkInvariants(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	recs, err := w.db.List(ctx, cmdb.Filter{IncludeRetired: true})
	if err != nil {
		t.Fatal(err)
	}
	allocs, err := w.ipam.Allocations(ctx, poolName)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := w.fw.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open, err := w.store.OpenJournals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range open {
		t.Errorf("journal %s (%s of %s) left open in phase %s at %+v", j.ID, j.Op, j.VM, j.Phase, j.Steps)
	}
	allocBy := map[string]ipam.Allocation{}
	for _, a := range allocs {
		allocBy[a.Owner] = a
	}
	ruleBy := map[string]bool{}
	for _, r := range rules {
		ruleBy[r.Owner] = true
		a, ok := allocBy[r.Owner]
		if !ok || a.Address != r.Public || a.LocalIP != r.Local {
			t.Errorf("NAT rule %s %s->%s does not match IPAM allocation %+v", r.Owner, r.Public, r.Local, a)
		}
	}
	enrolled := map[string]bool{}
	for _, rec := range recs {
		owner := rec.Key.String()
		a, hasIP := allocBy[owner]
		w.mu.Lock()
		conf := w.configured[rec.Key.VMID]
		w.mu.Unlock()
		switch rec.State {
		case cmdb.Enrolled:
			enrolled[owner] = true
			if !hasIP || a.Address != rec.PublicIP {
				t.Errorf("%s enrolled with public IP %s, IPAM has %+v", owner, rec.PublicIP, a)
			}
			if !ruleBy[owner] {
				t.Errorf("%s enrolled without a NAT rule", owner)
			}
			if !conf {
				t.Errorf("%s enrolled without its service account", owner)
			}
		case cmdb.Enrolling, cmdb.Unenrolling:
			t.Errorf("%s left in state %s (%s)", owner, rec.State, rec.Reason)
		default:
			if hasIP {
				t.Errorf("%s is %s but holds public IP %s", owner, rec.State, a.Address)
			}
			if ruleBy[owner] {
				t.Errorf("%s is %s but has a NAT rule", owner, rec.State)
			}
			if conf && rec.State != cmdb.Retired {
				t.Errorf("%s is %s but its service account is still in the guest", owner, rec.State)
			}
			if rec.PublicIP.IsValid() {
				t.Errorf("%s is %s but its record shows public IP %s", owner, rec.State, rec.PublicIP)
			}
		}
	}
	for owner := range allocBy {
		if !enrolled[owner] {
			t.Errorf("public IP of %s leaked (no enrolled record)", owner)
		}
	}
}

func (w *world) eventsOf(journal string) []enroll.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []enroll.Event
	for _, e := range w.events {
		if e.Journal == journal {
			out = append(out, e)
		}
	}
	return out
}

func wantCode(t testing.TB, err error, code errs.Code) {
	t.Helper()
	testkit.MustCode(t, "call", err, code)
}

// allJournals lists every journal of the world's store.
func (w *world) allJournals() []enroll.Journal {
	w.t.Helper()
	js, err := w.store.Journals(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return js
}
