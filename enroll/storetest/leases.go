package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
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
	"github.com/managedvm/managedvm/internal/fakes"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

// The lease cases run real orchestrators over the Store: exclusivity is
// what the Store's revisions and leases exist for.

const (
	leaseProvider = "p1"
	leasePool     = "pub"
	leaseUser     = "admin"
	leasePassword = "CANARY-storetest-pw-41c2"
)

// overlaps counts, per VM, the Do calls of steps in flight, and how often
// one started while another was in flight.
type overlaps struct {
	mu       sync.Mutex
	inFlight map[string]int
	count    int
	calls    int
}

// life is one incarnation of a replica: a process that lives until killed.
type life struct {
	dead     atomic.Bool
	mu       sync.Mutex
	inFlight map[string]int // this incarnation's calls in flight, by VM
}

var errDead = errs.New(errs.Unavailable, "storetest", "the process is dead")

// enter starts a call of l's on vm, or refuses it if l is dead.
func (o *overlaps) enter(l *life, vm string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if l.dead.Load() {
		return errDead
	}
	o.calls++
	if o.inFlight[vm] > 0 {
		o.count++
	}
	o.inFlight[vm]++
	l.mu.Lock()
	l.inFlight[vm]++
	l.mu.Unlock()
	return nil
}

// exit ends a call of l's on vm; a killed incarnation's calls ended when it
// died.
func (o *overlaps) exit(l *life, vm string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight[vm] == 0 {
		return
	}
	l.inFlight[vm]--
	o.inFlight[vm]--
}

// kill ends l: its calls in flight end with it, later ones are refused.
func (o *overlaps) kill(l *life) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l.dead.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	for vm, n := range l.inFlight {
		o.inFlight[vm] -= n
	}
	clear(l.inFlight)
}

func (o *overlaps) result() (count, calls int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count, o.calls
}

// leaseWorld is the drivers every replica shares.
type leaseWorld struct {
	store enroll.StoreDriver
	hv    *memprovider.Provider
	ipam  *memipam.Driver
	fw    *natfw.Firewall
	db    *cmdb.CMDB
	ov    *overlaps
	vms   []string
	// work is how long a configuration takes.
	work time.Duration
}

func newLeaseWorld(t *testing.T, store enroll.StoreDriver, vms int, work time.Duration) *leaseWorld {
	w := &leaseWorld{store: store, hv: memprovider.New(nil), ipam: memipam.NewDriver(nil), fw: memfw.New(nil), db: memcmdb.New(nil),
		ov: &overlaps{inFlight: map[string]int{}}, work: work}
	ctx := context.Background()
	if err := w.hv.AddZone(provider.Zone{Name: "az1"}); err != nil {
		t.Fatal(err)
	}
	if err := w.ipam.CreatePool(ctx, ipam.Pool{Name: leasePool, Prefix: netip.MustParsePrefix("203.0.113.0/24")}); err != nil {
		t.Fatal(err)
	}
	for i := range vms {
		vm, err := w.hv.AddVM(provider.VM{Name: fmt.Sprintf("vm-%03d", i), Zone: "az1", Power: provider.PoweredOn, CPUs: 1, MemoryMiB: 1024,
			Guest: provider.GuestInfo{Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)", OSVersion: "12",
				IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i)})}, ToolsRunning: true}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.hv.SetGuestAccount(vm.ID, leaseUser, leasePassword); err != nil {
			t.Fatal(err)
		}
		w.vms = append(w.vms, vm.ID)
	}
	return w
}

// replica is one orchestrator incarnation over the world, whose every
// outside call goes through l: once l is dead, nothing it does reaches
// anything.
type replica struct {
	o      *enroll.Orchestrator
	l      *life
	cancel context.CancelFunc
	done   chan struct{}
	// resumed counts the journals its ResumeEvery took over.
	resumed atomic.Int64
}

func (w *leaseWorld) start(t *testing.T, instance string, ttl, resumeEvery time.Duration) *replica {
	l := &life{inFlight: map[string]int{}}
	gate := fakes.NewInjector()
	for _, m := range []string{"List", "Get", "Cursor", "Watch", "Provision", "PowerOn", "PowerOff", "Destroy", "Zones", "Templates",
		"Preflight", "ValidateCredentials", "GuestExecutor", "Run", "Upload", "Close",
		"Allocate", "Release", "SetLocalIP", "Lookup", "LookupAddress", "Allocations", "Pool", "Pools",
		"EnsureNAT", "RemoveNAT", "Upsert", "Retire"} {
		gate.Hook(m, func(context.Context) error {
			if l.dead.Load() {
				return errDead
			}
			return nil
		})
	}
	counted := &countedIPAM{Driver: &fakes.IPAM{Driver: w.ipam, Injector: gate}, ov: w.ov, l: l}
	cfg := enroll.Config{
		Providers: map[string]*provider.Provider{leaseProvider: provider.New(fakes.WrapProvider(w.hv, gate), nil)},
		IPAM:      ipam.New(counted, nil),
		Firewall:  natfw.New(&fakes.Firewall{Firewall: w.fw, Injector: gate}, nil),
		CMDB:      cmdb.New(&fakes.CMDB{CMDB: w.db, Injector: gate}, nil),
		Store:     enroll.NewStore(&gatedStore{StoreDriver: w.store, l: l}, nil),
		Policy:    enroll.Policy{Pool: leasePool, ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		Configurator: guest.ConfiguratorFunc(func(ctx context.Context, tg guest.Target, _ *guest.Executor) error {
			if err := w.ov.enter(l, tg.VMID); err != nil {
				return err
			}
			defer w.ov.exit(l, tg.VMID)
			select {
			case <-time.After(w.work):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}),
		Credentials: enroll.CredentialFunc(func(context.Context, enroll.Journal) (guest.Credentials, error) {
			return guest.Password(leaseUser, leasePassword), nil
		}),
	}
	o, err := enroll.New(cfg, &enroll.Options{Instance: instance, LeaseTTL: ttl, RetryDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{o: o, l: l, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_ = o.ResumeEvery(ctx, resumeEvery, func(rep enroll.ResumeReport) { r.resumed.Add(int64(len(rep.Resumed))) })
	}()
	return r
}

// kill ends the replica as a crash would: nothing it does from now on
// reaches the Store or a driver, and its calls in flight are over.
func (w *leaseWorld) kill(r *replica) {
	w.ov.kill(r.l)
	r.cancel()
}

// stop ends the replica's ResumeEvery loop and waits for it.
func (r *replica) stop() {
	r.cancel()
	<-r.done
}

func (w *leaseWorld) request(i int) enroll.Request {
	return enroll.Request{Key: fmt.Sprintf("enroll-%s", w.vms[i]), Provider: leaseProvider, VMID: w.vms[i],
		Credentials: guest.Password(leaseUser, leasePassword)}
}

// countedIPAM counts overlapping Allocate and Release calls per owner.
type countedIPAM struct {
	ipam.Driver
	ov *overlaps
	l  *life
}

func (c *countedIPAM) Allocate(ctx context.Context, req ipam.Request) (ipam.Allocation, error) {
	if err := c.ov.enter(c.l, req.Owner); err != nil {
		return ipam.Allocation{}, err
	}
	defer c.ov.exit(c.l, req.Owner)
	time.Sleep(2 * time.Millisecond) // a round trip: room for an overlap to show
	return c.Driver.Allocate(ctx, req)
}

func (c *countedIPAM) Release(ctx context.Context, pool, owner string) error {
	if err := c.ov.enter(c.l, owner); err != nil {
		return err
	}
	defer c.ov.exit(c.l, owner)
	time.Sleep(2 * time.Millisecond)
	return c.Driver.Release(ctx, pool, owner)
}

// gatedStore is the Store as one process sees it: gone when it dies.
type gatedStore struct {
	enroll.StoreDriver
	l *life
}

func (s *gatedStore) gate() error {
	if s.l.dead.Load() {
		return errDead
	}
	return nil
}

func (s *gatedStore) CreateJournal(ctx context.Context, j enroll.Journal) (enroll.Journal, error) {
	if err := s.gate(); err != nil {
		return enroll.Journal{}, err
	}
	return s.StoreDriver.CreateJournal(ctx, j)
}

func (s *gatedStore) GetJournal(ctx context.Context, id string) (enroll.Journal, error) {
	if err := s.gate(); err != nil {
		return enroll.Journal{}, err
	}
	return s.StoreDriver.GetJournal(ctx, id)
}

func (s *gatedStore) UpdateJournal(ctx context.Context, j enroll.Journal) (enroll.Journal, error) {
	if err := s.gate(); err != nil {
		return enroll.Journal{}, err
	}
	return s.StoreDriver.UpdateJournal(ctx, j)
}

func (s *gatedStore) OpenJournals(ctx context.Context) ([]enroll.Journal, error) {
	if err := s.gate(); err != nil {
		return nil, err
	}
	return s.StoreDriver.OpenJournals(ctx)
}

func (s *gatedStore) OpenJournalFor(ctx context.Context, vm cmdb.Key) (enroll.Journal, error) {
	if err := s.gate(); err != nil {
		return enroll.Journal{}, err
	}
	return s.StoreDriver.OpenJournalFor(ctx, vm)
}

// takenOver reports whether err says a live caller's journal was taken.
func takenOver(err error) bool {
	return err != nil && (errs.Is(err, errs.OutcomeUnknown) || strings.Contains(err.Error(), "taken over"))
}

// testOwnJournalsNotTakenOver: one process enrolls many VMs with slow
// configuration while its own ResumeEvery runs often: no journal is taken
// over, no caller gets OutcomeUnknown, no VM is configured twice at once.
func testOwnJournalsNotTakenOver(t *testing.T, h Harness) {
	const vms = 30
	w := newLeaseWorld(t, h(t), vms, 300*time.Millisecond)
	r := w.start(t, "solo", 30*time.Second, 10*time.Millisecond)
	defer r.stop()
	reqs := make([]enroll.Request, vms)
	for i := range reqs {
		reqs[i] = w.request(i)
	}
	for i, res := range r.o.EnrollAll(context.Background(), reqs, vms) {
		if res.Err != nil {
			t.Errorf("enroll %s: %v", w.vms[i], res.Err)
		}
	}
	if n := r.resumed.Load(); n != 0 {
		t.Errorf("ResumeEvery took over %d journals of its own live runs", n)
	}
	count, calls := w.ov.result()
	if count != 0 {
		t.Errorf("%d overlapping step calls on one VM (of %d calls)", count, calls)
	}
	t.Logf("%d step calls, %d overlaps", calls, count)
	checkEnrolled(t, w, vms)
}

// testReplicasExclusive: three replicas enroll and unenroll the same VMs
// while replicas are killed and restarted under their instance names. At
// no moment do two step calls on one VM overlap, no live caller loses its
// journal, and in the end every VM is enrolled exactly once.
func testReplicasExclusive(t *testing.T, h Harness) {
	const (
		vms    = 24
		rounds = 6
		ttl    = time.Second
	)
	w := newLeaseWorld(t, h(t), vms, 60*time.Millisecond)
	names := []string{"replica-a", "replica-b", "replica-c"}
	var mu sync.Mutex
	live := make([]*replica, len(names))
	for i, n := range names {
		live[i] = w.start(t, n, ttl, 25*time.Millisecond)
	}
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		busy   atomic.Int64
	)
	// Callers: each replica's callers enroll every VM in their own order,
	// again and again, as a retrying host would.
	stopCallers := make(chan struct{})
	for i := range names {
		for c := 0; c < 3; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(c)))
				for {
					select {
					case <-stopCallers:
						return
					default:
					}
					mu.Lock()
					r := live[i]
					mu.Unlock()
					// A fresh request each time: enroll or withdraw a VM,
					// so that work goes on while replicas die.
					req := w.request(rng.IntN(vms))
					var err error
					if rng.IntN(3) == 0 {
						_, err = r.o.Unenroll(context.Background(), enroll.UnenrollRequest{Provider: req.Provider, VMID: req.VMID, Credentials: req.Credentials})
					} else {
						req.Key = ""
						_, err = r.o.Enroll(context.Background(), req)
					}
					time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
					switch {
					case r.l.dead.Load():
						// This caller's process died under it: its answer
						// is nobody's.
					case takenOver(err):
						failed.Add(1)
						t.Errorf("live replica %s: %v", names[i], err)
					case errs.Is(err, errs.AlreadyExists):
						busy.Add(1) // another replica runs this VM: the promise
					case err != nil && !errs.Is(err, errs.FailedPrecondition):
						t.Errorf("live replica %s: unexpected error: %v", names[i], err)
					}
				}
			}()
		}
	}
	// Chaos: kill a replica, restart it under its name a little later.
	rng := rand.New(rand.NewPCG(7, 11))
	for range rounds {
		time.Sleep(time.Duration(150+rng.IntN(250)) * time.Millisecond)
		i := rng.IntN(len(names))
		mu.Lock()
		victim := live[i]
		mu.Unlock()
		w.kill(victim)
		time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
		mu.Lock()
		live[i] = w.start(t, names[i], ttl, 25*time.Millisecond)
		mu.Unlock()
	}
	close(stopCallers)
	wg.Wait()
	// Let the survivors finish what the dead left.
	deadline := time.Now().Add(3*ttl + 5*time.Second)
	for {
		open, err := w.store.OpenJournals(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d journals still open", len(open))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range live {
		r.stop()
	}
	count, calls := w.ov.result()
	t.Logf("%d step calls, %d overlaps, %d busy answers, %d live callers lost a journal", calls, count, busy.Load(), failed.Load())
	if count != 0 {
		t.Errorf("%d overlapping step calls on one VM (of %d calls)", count, calls)
	}
	// Finish: every VM enrolled once (a dead replica's enrollment was
	// finished or rolled back; a last pass enrolls what is left).
	final := w.start(t, "final", ttl, time.Hour)
	defer final.stop()
	for i := range vms {
		req := w.request(i)
		req.Key = "final-" + req.Key
		if _, err := final.o.Enroll(context.Background(), req); err != nil && !errs.Is(err, errs.FailedPrecondition) {
			t.Errorf("final enroll of %s: %v", w.vms[i], err)
		}
	}
	checkEnrolled(t, w, vms)
}

// checkEnrolled checks that every VM is enrolled with one public IP and
// one NAT rule, and that nothing else is allocated.
func checkEnrolled(t *testing.T, w *leaseWorld, vms int) {
	t.Helper()
	ctx := context.Background()
	allocs, err := w.ipam.Allocations(ctx, leasePool)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := w.fw.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(allocs) != vms || len(rules) != vms {
		t.Errorf("%d allocations and %d NAT rules for %d VMs", len(allocs), len(rules), vms)
	}
	for _, id := range w.vms {
		rec, err := w.db.Get(ctx, cmdb.Key{Provider: leaseProvider, VMID: id})
		if err != nil || rec.State != cmdb.Enrolled {
			t.Errorf("VM %s: record %+v, %v", id, rec.State, err)
		}
	}
}
