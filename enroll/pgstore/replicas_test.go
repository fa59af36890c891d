package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

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
)

// The replica processes of TestReplicaProcessesNeverOverlap read these.
const (
	envReplica     = "MANAGEDVM_PGSTORE_REPLICA"
	envIncarnation = "MANAGEDVM_PGSTORE_INCARNATION"
)

const (
	rpVMs    = 16
	rpLease  = time.Second
	rpRounds = 8
)

// TestReplicaProcessesNeverOverlap: three orchestrator processes enroll and
// unenroll the same VMs over one database while, round after round, one of
// them is killed with SIGKILL and started again under its instance name.
// Every step call that touches a VM (IPAM Allocate and Release, the
// Configurator) is recorded in the database with its start and end (the
// kill's time for a call its process died in). Afterwards no two calls on
// one VM overlap in time, no caller of a live process lost its journal
// ("taken over", OutcomeUnknown), and a last orchestrator finishes what the
// dead left and enrolls every VM once.
func TestReplicaProcessesNeverOverlap(t *testing.T) {
	if name := os.Getenv(envReplica); name != "" {
		rpChild(t, name, os.Getenv(envIncarnation))
		return
	}
	if testing.Short() {
		t.Skip("starts many processes")
	}
	url := pgURL(t)
	schema := newSchema(t, url)
	pool := openPool(t, url, schema, 4)
	ctx := context.Background()
	for _, mig := range []func(context.Context, *pgxpool.Pool) error{pgstore.Migrate, pgipam.Migrate, pgcmdb.Migrate, migrateShared, migrateSteps} {
		if err := mig(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}
	if err := ipam.New(pgipam.NewDriver(pool, nil), nil).CreatePool(ctx, ipam.Pool{Name: tpPool, Prefix: netip.MustParsePrefix("203.0.113.0/24")}); err != nil {
		t.Fatal(err)
	}

	var (
		mu   sync.Mutex
		lost []string
		n    int
	)
	start := func(name string) *rpProc {
		mu.Lock()
		n++
		inc := fmt.Sprintf("%s#%d", name, n)
		mu.Unlock()
		p := rpStart(t, name, inc, schema)
		go func() {
			for line := range p.lines {
				if rest, ok := strings.CutPrefix(line, "LOST "); ok {
					mu.Lock()
					lost = append(lost, inc+": "+rest)
					mu.Unlock()
				}
			}
		}()
		return p
	}
	kill := func(p *rpProc) {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait() // dead for sure from here on
		if _, err := pool.Exec(ctx, `INSERT INTO test_kills (incarnation, at) VALUES ($1, clock_timestamp())`, p.incarnation); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"replica-a", "replica-b", "replica-c"}
	procs := make([]*rpProc, len(names))
	for i, name := range names {
		procs[i] = start(name)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for range rpRounds {
		time.Sleep(time.Duration(300+rng.IntN(400)) * time.Millisecond)
		i := rng.IntN(len(names))
		kill(procs[i])
		procs[i] = start(names[i])
	}
	time.Sleep(500 * time.Millisecond)
	for _, p := range procs {
		kill(p)
	}

	// A last orchestrator, in this process: it takes over what the dead
	// left once the leases expire, then enrolls every VM.
	final := rpOrchestrator(t, pool, "final", "final")
	deadline := time.Now().Add(30 * time.Second)
	store := pgstore.New(pool, nil)
	for {
		if _, err := final.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		open, err := store.OpenJournals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d journals still open", len(open))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range rpVMs {
		req := enroll.Request{Key: "final-" + tpVMID(i), Provider: tpProvider, VMID: tpVMID(i), Credentials: guest.Password("admin", tpPassword)}
		if _, err := final.Enroll(ctx, req); err != nil && !errs.Is(err, errs.FailedPrecondition) {
			t.Errorf("final enroll of %s: %v", req.VMID, err)
		}
	}

	// No two calls on one VM overlapped.
	var calls, killed, overlaps int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE ended IS NULL) FROM test_steps`).Scan(&calls, &killed); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `
		WITH s AS (
			SELECT st.id, st.vm, st.started, coalesce(st.ended, k.at, 'infinity') AS ended
			FROM test_steps st LEFT JOIN test_kills k ON k.incarnation = st.incarnation)
		SELECT count(*) FROM s a JOIN s b ON a.vm = b.vm AND a.id < b.id
		WHERE a.started < b.ended AND b.started < a.ended`).Scan(&overlaps); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d processes, %d step calls (%d ended by a kill), %d overlapping pairs, %d live callers lost a journal", n, calls, killed, overlaps, len(lost))
	if overlaps != 0 {
		t.Errorf("%d pairs of step calls on one VM overlapped", overlaps)
	}
	if killed == 0 {
		t.Errorf("no kill hit a step call in flight: the test proved nothing")
	}
	for _, l := range lost {
		t.Errorf("a live process lost a journal: %s", l)
	}

	// Every VM enrolled once: one address, one NAT rule, an enrolled record.
	recs, err := pgcmdb.New(pool, nil).List(ctx, cmdb.Filter{})
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
	enrolled := 0
	for _, r := range recs {
		if r.State == cmdb.Enrolled {
			enrolled++
		}
	}
	if enrolled != rpVMs || len(allocs) != rpVMs || len(rules) != rpVMs {
		t.Errorf("%d enrolled records, %d allocations, %d NAT rules for %d VMs", enrolled, len(allocs), len(rules), rpVMs)
	}
}

func migrateSteps(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `
CREATE TABLE test_steps (id bigserial PRIMARY KEY, vm text NOT NULL, kind text NOT NULL, incarnation text NOT NULL,
	started timestamptz NOT NULL, ended timestamptz);
CREATE TABLE test_kills (incarnation text PRIMARY KEY, at timestamptz NOT NULL)`)
	return err
}

type rpProc struct {
	*tpProc
	incarnation string
}

func rpStart(t *testing.T, name, incarnation, schema string) *rpProc {
	t.Helper()
	p := startChild(t, "TestReplicaProcessesNeverOverlap", incarnation,
		envReplica+"="+name, envIncarnation+"="+incarnation, envSchema+"="+schema)
	return &rpProc{tpProc: p, incarnation: incarnation}
}

// stepLog brackets a step call on a VM with a row in test_steps.
func stepLog(ctx context.Context, pool *pgxpool.Pool, incarnation, vm, kind string) (func(), error) {
	var id int64
	ctx = context.WithoutCancel(ctx)
	if err := pool.QueryRow(ctx, `INSERT INTO test_steps (vm, kind, incarnation, started) VALUES ($1, $2, $3, clock_timestamp()) RETURNING id`,
		vm, kind, incarnation).Scan(&id); err != nil {
		return nil, err
	}
	return func() {
		_, _ = pool.Exec(ctx, `UPDATE test_steps SET ended = clock_timestamp() WHERE id = $1`, id)
	}, nil
}

// loggedIPAM records Allocate and Release in test_steps.
type loggedIPAM struct {
	ipam.Driver
	pool        *pgxpool.Pool
	incarnation string
}

func (l *loggedIPAM) Allocate(ctx context.Context, req ipam.Request) (ipam.Allocation, error) {
	end, err := stepLog(ctx, l.pool, l.incarnation, req.Owner, "allocate")
	if err != nil {
		return ipam.Allocation{}, err
	}
	defer end()
	return l.Driver.Allocate(ctx, req)
}

func (l *loggedIPAM) Release(ctx context.Context, pool, owner string) error {
	end, err := stepLog(ctx, l.pool, l.incarnation, owner, "release")
	if err != nil {
		return err
	}
	defer end()
	return l.Driver.Release(ctx, pool, owner)
}

// rpOrchestrator builds one replica's orchestrator: an in-memory provider
// built alike in every process, everything shared in PostgreSQL, and every
// step call on a VM logged.
func rpOrchestrator(t *testing.T, pool *pgxpool.Pool, name, incarnation string) *enroll.Orchestrator {
	hv := tpProviderOf(t, rpVMs)
	configure := guest.ConfiguratorFunc(func(ctx context.Context, tg guest.Target, _ *guest.Executor) error {
		end, err := stepLog(ctx, pool, incarnation, tg.VM, "configure")
		if err != nil {
			return err
		}
		defer end()
		select {
		case <-time.After(time.Duration(20+rand.IntN(60)) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err = pool.Exec(ctx, `INSERT INTO test_guest_accounts (vm_id) VALUES ($1) ON CONFLICT DO NOTHING`, tg.VMID)
		return err
	})
	o, err := enroll.New(enroll.Config{
		Providers:    map[string]*provider.Provider{tpProvider: hv.Provider()},
		IPAM:         ipam.New(&loggedIPAM{Driver: pgipam.NewDriver(pool, nil), pool: pool, incarnation: incarnation}, nil),
		Firewall:     natfw.New(&pgFirewall{db: pool}, nil),
		CMDB:         pgcmdb.New(pool, nil),
		Store:        pgstore.New(pool, nil),
		Policy:       enroll.Policy{Pool: tpPool, ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		Configurator: configure,
		Credentials: enroll.CredentialFunc(func(context.Context, enroll.Journal) (guest.Credentials, error) {
			return guest.Password("admin", tpPassword), nil
		}),
	}, &enroll.Options{Instance: name, LeaseTTL: rpLease, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// rpChild is one replica process: until it is killed, its callers enroll
// and unenroll random VMs and its ResumeEvery loop runs.
func rpChild(t *testing.T, name, incarnation string) {
	ctx := context.Background()
	pool := openPool(t, pgURL(t), os.Getenv(envSchema), 12)
	o := rpOrchestrator(t, pool, name, incarnation)
	go func() { _ = o.ResumeEvery(ctx, 50*time.Millisecond, nil) }()
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(c)))
			for {
				vm := tpVMID(rng.IntN(rpVMs))
				cred := guest.Password("admin", tpPassword)
				var err error
				if rng.IntN(3) == 0 {
					_, err = o.Unenroll(ctx, enroll.UnenrollRequest{Provider: tpProvider, VMID: vm, Credentials: cred})
				} else {
					_, err = o.Enroll(ctx, enroll.Request{Provider: tpProvider, VMID: vm, Credentials: cred})
				}
				if err != nil && (errs.Is(err, errs.OutcomeUnknown) || strings.Contains(err.Error(), "taken over")) {
					say("LOST %s: %v", vm, err)
				}
				time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
			}
		}()
	}
	wg.Wait() // never: the parent kills this process
}
