package pgstore_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/pgcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/pgstore"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/pgipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

// The child role of TestTwoOrchestratorProcesses is selected by these
// variables; the parent sets them when it re-executes the test binary.
const (
	envRole   = "MANAGEDVM_PGSTORE_ROLE"
	envSchema = "MANAGEDVM_PGSTORE_SCHEMA"
)

const (
	tpVMs      = 40
	tpProvider = "vc1"
	tpZone     = "az1"
	tpPool     = "pub"
	tpPassword = "CANARY-pg-pw-5e1d0b" // must never reach the database
	tpLease    = 2 * time.Second
	tpWorkers  = 4
	// tpPasses is how many configure steps the victim finishes before its
	// configure steps hang (and it is killed).
	tpPasses = 5
)

// tpSets: the victim enrolls VMs 0-29, the survivor 10-39 in reverse
// order, so that they meet in the middle.
func tpSet(role string) []int {
	var out []int
	if role == "victim" {
		for i := 0; i < 30; i++ {
			out = append(out, i)
		}
		return out
	}
	for i := tpVMs - 1; i >= 10; i-- {
		out = append(out, i)
	}
	return out
}

func tpVMID(i int) string { return fmt.Sprintf("vm-%03d", i) }

// TestTwoOrchestratorProcesses: two orchestrator processes share the Store,
// the IPAM, the CMDB, the firewall and the guests' state (all in
// PostgreSQL) and enroll overlapping VM sets. The victim is killed with
// SIGKILL while four of its enrollments hang in the configure step, after
// it finished some. The survivor enrolls its own set, waits for the
// victim's leases to expire, takes over its open journals (Resume) and
// retries the VMs that were busy. Afterwards every VM is enrolled at most
// once, every enrolled VM has exactly one succeeded journal, one address
// and one NAT rule, nothing else holds an address or a rule, no journal is
// open, and the password never reached a table.
func TestTwoOrchestratorProcesses(t *testing.T) {
	if role := os.Getenv(envRole); role != "" {
		tpChild(t, role)
		return
	}
	if testing.Short() {
		t.Skip("starts 2 processes")
	}
	url := pgURL(t)
	schema := newSchema(t, url)
	pool := openPool(t, url, schema, 4)
	ctx := context.Background()
	for _, mig := range []func(context.Context, *pgxpool.Pool) error{pgstore.Migrate, pgipam.Migrate, pgcmdb.Migrate, migrateShared} {
		if err := mig(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}
	if err := ipam.New(pgipam.NewDriver(pool, nil), nil).CreatePool(ctx, ipam.Pool{Name: tpPool, Prefix: netip.MustParsePrefix("203.0.113.0/24")}); err != nil {
		t.Fatal(err)
	}

	victim := tpStart(t, "victim", schema)
	survivor := tpStart(t, "survivor", schema)

	// Kill the victim once four of its enrollments hang mid-way.
	var victimEnrolled []string
	stuck := 0
	for line := range victim.lines {
		if vm, ok := strings.CutPrefix(line, "ENROLLED "); ok {
			victimEnrolled = append(victimEnrolled, vm)
		}
		if strings.HasPrefix(line, "STUCK ") {
			stuck++
		}
		if stuck == tpWorkers {
			break
		}
	}
	if stuck != tpWorkers {
		t.Fatalf("the victim ended before %d enrollments hung", tpWorkers)
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := victim.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("victim: %v, want killed by SIGKILL", err)
	}
	store := pgstore.New(pool, nil)
	open, err := store.OpenJournals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var orphaned []string
	for _, j := range open {
		if j.Holder == "victim" {
			orphaned = append(orphaned, j.ID)
			if !j.Resources.PublicIP.IsValid() {
				t.Errorf("orphaned journal %s holds no public IP: not killed mid-way (steps %+v)", j.ID, j.Steps)
			}
		}
	}
	if len(orphaned) < tpWorkers {
		t.Fatalf("after the kill, %d open journals held by the victim, want at least %d: %+v", len(orphaned), tpWorkers, open)
	}
	t.Logf("victim killed after enrolling %d VMs, holding %d open journals", len(victimEnrolled), len(orphaned))

	for range survivor.lines {
	}
	if err := survivor.cmd.Wait(); err != nil {
		t.Fatalf("survivor: %v", err)
	}

	// The shared world, checked.
	db := pgcmdb.New(pool, nil)
	recs, err := db.List(ctx, cmdb.Filter{IncludeRetired: true})
	if err != nil {
		t.Fatal(err)
	}
	allocs, err := ipam.New(pgipam.NewDriver(pool, nil), nil).Allocations(ctx, tpPool)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := (&pgFirewall{db: pool}).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	journals, err := store.Journals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	configured := map[string]bool{}
	rows, _ := pool.Query(ctx, "SELECT vm_id FROM test_guest_accounts")
	for _, id := range must(pgx.CollectRows(rows, pgx.RowTo[string])) {
		configured[id] = true
	}

	enrolled := map[string]cmdb.Record{}
	for _, r := range recs {
		switch r.State {
		case cmdb.Enrolled:
			enrolled[r.Key.String()] = r
		case cmdb.Enrolling, cmdb.Unenrolling:
			t.Errorf("%s left %s", r.Key, r.State)
		}
	}
	succeeded := map[string]int{}
	takenOver := 0
	for _, j := range journals {
		if j.Phase.Open() {
			t.Errorf("journal %s (%s) left open at %s, held by %s", j.ID, j.VM, j.Phase, j.Holder)
		}
		if j.Op == enroll.OpEnroll && j.Phase == enroll.Succeeded {
			succeeded[j.VM.String()]++
		}
		if slices.Contains(orphaned, j.ID) {
			if j.Holder != "survivor" || j.Phase.Open() {
				t.Errorf("orphaned journal %s: holder %s, phase %s; want closed by the survivor", j.ID, j.Holder, j.Phase)
			}
			takenOver++
		}
	}
	allocBy := map[string]ipam.Allocation{}
	for _, a := range allocs {
		allocBy[a.Owner] = a
		if _, ok := enrolled[a.Owner]; !ok {
			t.Errorf("leaked address %v of %s (not enrolled)", a.Address, a.Owner)
		}
	}
	ruleBy := map[string]natfw.Rule{}
	for _, r := range rules {
		ruleBy[r.Owner] = r
		if _, ok := enrolled[r.Owner]; !ok {
			t.Errorf("leaked NAT rule %s -> %s of %s (not enrolled)", r.Public, r.Local, r.Owner)
		}
	}
	for owner, rec := range enrolled {
		a, ok := allocBy[owner]
		if !ok || a.Address != rec.PublicIP {
			t.Errorf("%s enrolled with %v, IPAM has %+v", owner, rec.PublicIP, a)
		}
		if r, ok := ruleBy[owner]; !ok || r.Public != a.Address || r.Local != a.LocalIP {
			t.Errorf("%s: NAT rule %+v does not match allocation %+v", owner, r, a)
		}
		if n := succeeded[owner]; n != 1 {
			t.Errorf("%s enrolled by %d succeeded journals, want 1", owner, n)
		}
		if !configured[rec.Key.VMID] {
			t.Errorf("%s enrolled without its service account", owner)
		}
	}
	for owner, n := range succeeded {
		if _, ok := enrolled[owner]; !ok {
			t.Errorf("%s has %d succeeded journals but is not enrolled", owner, n)
		}
	}
	if len(allocs) != len(enrolled) || len(rules) != len(enrolled) {
		t.Errorf("%d allocations, %d NAT rules, %d enrolled records: want equal", len(allocs), len(rules), len(enrolled))
	}
	// The survivor's whole set, and what the victim finished, is enrolled.
	for _, i := range tpSet("survivor") {
		if _, ok := enrolled[tpProvider+"/"+tpVMID(i)]; !ok {
			t.Errorf("survivor's VM %s is not enrolled", tpVMID(i))
		}
	}
	for _, vm := range victimEnrolled {
		if _, ok := enrolled[tpProvider+"/"+vm]; !ok {
			t.Errorf("VM %s the victim enrolled is not enrolled", vm)
		}
	}
	if takenOver != len(orphaned) {
		t.Errorf("%d of %d orphaned journals found afterwards", takenOver, len(orphaned))
	}
	// No secret in any table.
	var hits int
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM enroll_journals t WHERE t::text LIKE '%' || $1 || '%') +
		(SELECT count(*) FROM cmdb_records t WHERE t::text LIKE '%' || $1 || '%') +
		(SELECT count(*) FROM ipam_allocations t WHERE t::text LIKE '%' || $1 || '%') +
		(SELECT count(*) FROM test_nat_rules t WHERE t::text LIKE '%' || $1 || '%')`, tpPassword).Scan(&hits); err != nil {
		t.Fatal(err)
	}
	if hits != 0 {
		t.Errorf("the password is stored in %d rows", hits)
	}
	t.Logf("%d VMs enrolled (%d by the victim before the kill), %d journals taken over, %d journals in all",
		len(enrolled), len(victimEnrolled), takenOver, len(journals))
}

// tpProviderOf builds the in-memory provider every process of a test
// builds alike: n VMs with the same IDs, IPs and accounts.
func tpProviderOf(t *testing.T, n int) *memprovider.Provider {
	hv := memprovider.New(nil)
	if err := hv.AddZone(provider.Zone{Name: tpZone}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		vm, err := hv.AddVM(provider.VM{ID: tpVMID(i), Name: tpVMID(i), Zone: tpZone, Power: provider.PoweredOn, CPUs: 1, MemoryMiB: 1024,
			Guest: provider.GuestInfo{Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)", OSVersion: "12",
				IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})}, ToolsRunning: true, Hostname: tpVMID(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := hv.SetGuestAccount(vm.ID, "admin", tpPassword); err != nil {
			t.Fatal(err)
		}
	}
	return hv
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type tpProc struct {
	cmd   *exec.Cmd
	lines chan string
}

// tpStart re-executes the test binary in a role; its stdout lines arrive
// on lines (closed at EOF).
func tpStart(t *testing.T, role, schema string) *tpProc {
	return startChild(t, "TestTwoOrchestratorProcesses", role, envRole+"="+role, envSchema+"="+schema)
}

// startChild re-executes the test binary to run test with the extra
// environment env; its stdout lines arrive on lines (closed at EOF). name
// labels its stderr, logged if the test fails.
func startChild(t *testing.T, test, name string, env ...string) *tpProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuilder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &tpProc{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	return p
}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// say writes a line for the parent.
var sayMu sync.Mutex

func say(format string, args ...any) {
	sayMu.Lock()
	defer sayMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

// tpChild is one orchestrator process. Its provider is an in-memory one,
// built identically in both processes (same VM IDs, IPs and accounts);
// everything whose state matters across processes is in PostgreSQL.
func tpChild(t *testing.T, role string) {
	ctx := context.Background()
	pool := openPool(t, pgURL(t), os.Getenv(envSchema), 8)
	hv := tpProviderOf(t, tpVMs)
	var passes atomic.Int32
	configure := guest.ConfiguratorFunc(func(ctx context.Context, tg guest.Target, _ *guest.Executor) error {
		if role == "victim" && passes.Add(1) > tpPasses {
			say("STUCK %s", tg.VMID)
			<-ctx.Done() // hangs until the process is killed
			return ctx.Err()
		}
		_, err := pool.Exec(ctx, `INSERT INTO test_guest_accounts (vm_id) VALUES ($1) ON CONFLICT DO NOTHING`, tg.VMID)
		return err
	})
	store := pgstore.New(pool, nil)
	o, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{tpProvider: hv.Provider()},
		IPAM:      ipam.New(pgipam.NewDriver(pool, nil), nil),
		Firewall:  natfw.New(&pgFirewall{db: pool}, nil),
		CMDB:      pgcmdb.New(pool, nil),
		Store:     store,
		Policy: enroll.Policy{Pool: tpPool, ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			Requirements: map[guest.OSFamily]guest.Requirements{guest.Linux: {Distributions: map[string]string{"debian": "11"}}}},
		Configurator: configure,
		Credentials: enroll.CredentialFunc(func(context.Context, enroll.Journal) (guest.Credentials, error) {
			return guest.Password("admin", tpPassword), nil
		}),
	}, &enroll.Options{Instance: role, LeaseTTL: tpLease, RetryDelay: time.Millisecond,
		Observer: enroll.ObserverFunc(func(e enroll.Event) {
			if e.Kind == enroll.JournalSucceeded && e.Op == enroll.OpEnroll {
				say("ENROLLED %s", e.VM.VMID)
			}
		})})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []enroll.Request
	for _, i := range tpSet(role) {
		reqs = append(reqs, enroll.Request{Key: role + "-" + tpVMID(i), Provider: tpProvider, VMID: tpVMID(i),
			Credentials: guest.Password("admin", tpPassword)})
	}
	results := o.EnrollAll(ctx, reqs, tpWorkers)
	if role == "victim" {
		t.Fatal("the victim finished: it should have been killed") // its last configure steps hang
	}
	var busy []enroll.Request
	for i, r := range results {
		switch {
		case r.Err == nil:
		case errors.Is(r.Err, enroll.ErrVMBusy):
			busy = append(busy, reqs[i])
		case errs.CodeOf(r.Err) == errs.FailedPrecondition: // enrolled by the other
		default:
			t.Errorf("enroll %s: %v", r.VM, r.Err)
		}
	}
	// Take over the victim's journals once their leases expire: wait for
	// the latest lease among the open journals, then Resume.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rep, err := o.Resume(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Resumed {
			if r.Err != nil {
				t.Errorf("resumed %s: %v", r.VM, r.Err)
			}
			say("RESUMED %s", r.VM.VMID)
		}
		open, err := store.OpenJournals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d journals still open after 2 minutes", len(open))
		}
		var until time.Time
		for _, j := range open {
			if j.LeaseExpires.After(until) {
				until = j.LeaseExpires
			}
		}
		<-time.After(time.Until(until) + 10*time.Millisecond)
	}
	// The VMs that were busy with the victim's work.
	for _, req := range busy {
		req.Key += "-retry"
		_, err := o.Enroll(ctx, req)
		if err != nil && errs.CodeOf(err) != errs.FailedPrecondition {
			t.Errorf("retry %s: %v", req.VMID, err)
		}
	}
}

// migrateShared creates the test's shared firewall and guest state.
func migrateShared(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `
CREATE TABLE test_nat_rules (owner text PRIMARY KEY, public inet NOT NULL UNIQUE, local inet NOT NULL UNIQUE, rule jsonb NOT NULL);
CREATE TABLE test_guest_accounts (vm_id text PRIMARY KEY)`)
	return err
}

// pgFirewall is a natfw.Driver fake whose rules live in PostgreSQL, so
// that the processes of a test share one firewall (a real one would be
// shared the same way).
type pgFirewall struct{ db *pgxpool.Pool }

var _ natfw.Driver = (*pgFirewall)(nil)

func (f *pgFirewall) EnsureNAT(ctx context.Context, r natfw.Rule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(r.Normalize())
	if err != nil {
		return err
	}
	_, err = f.db.Exec(ctx, `INSERT INTO test_nat_rules (owner, public, local, rule) VALUES ($1, $2, $3, $4)
		ON CONFLICT (owner) DO UPDATE SET public = excluded.public, local = excluded.local, rule = excluded.rule`,
		r.Owner, r.Public, r.Local, b)
	if err != nil && strings.Contains(err.Error(), "23505") {
		return errs.Wrap(errs.AlreadyExists, "pgFirewall.EnsureNAT", err)
	}
	return err
}

func (f *pgFirewall) RemoveNAT(ctx context.Context, owner string) error {
	_, err := f.db.Exec(ctx, `DELETE FROM test_nat_rules WHERE owner = $1`, owner)
	return err
}

func (f *pgFirewall) Get(ctx context.Context, owner string) (natfw.Rule, error) {
	var r natfw.Rule
	err := f.db.QueryRow(ctx, `SELECT rule FROM test_nat_rules WHERE owner = $1`, owner).Scan(&r)
	if errors.Is(err, pgx.ErrNoRows) {
		return natfw.Rule{}, errs.Errorf(errs.NotFound, "pgFirewall.Get", "no rule for %q", owner)
	}
	return r, err
}

func (f *pgFirewall) List(ctx context.Context) ([]natfw.Rule, error) {
	rows, err := f.db.Query(ctx, `SELECT rule FROM test_nat_rules ORDER BY owner COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[natfw.Rule])
}
