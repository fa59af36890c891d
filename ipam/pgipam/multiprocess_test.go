package pgipam_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/pgipam"
)

// The child role of TestMultiProcessAllocate is selected by these
// variables; the parent sets them when it re-executes the test binary.
const (
	envChild  = "MANAGEDVM_PGIPAM_CHILD"
	envSchema = "MANAGEDVM_PGIPAM_SCHEMA"
	envOut    = "MANAGEDVM_PGIPAM_OUT"
)

const (
	mpProcesses = 4
	mpConns     = 16
	mpOwners    = 4200 // more than the /20 holds: the pool runs out
	mpPool      = "slash20"
	mpLockKey   = 727274 // the parent holds it until every child is ready
)

func mpPoolDef() ipam.Pool {
	return ipam.Pool{Name: mpPool, Prefix: netip.MustParsePrefix("198.18.0.0/20"), Gateway: netip.MustParseAddr("198.18.0.1")}
}

// mpResult is what a child reports for one owner.
type mpResult struct {
	Owner   string     `json:"owner"`
	Address netip.Addr `json:"address,omitzero"`
	Code    string     `json:"code"`
}

// TestMultiProcessAllocate: 4 OS processes with 16 connections each
// allocate, all at once, for the same 4,200 owners (each process in its own
// order) from one /20 of 4,093 addresses. Every address goes to exactly one
// owner, every owner holds at most one address and every process that got
// an answer for an owner got the same one, the pool ends full, and the
// owners refused are exactly those without an address.
func TestMultiProcessAllocate(t *testing.T) {
	if os.Getenv(envChild) != "" {
		mpChild(t)
		return
	}
	if testing.Short() {
		t.Skip("starts 4 processes")
	}
	url := pgURL(t)
	schema := newSchema(t, url)
	pool := openPool(t, url, schema, 2)
	ctx := context.Background()
	if err := pgipam.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	m := portable(pool)
	def := mpPoolDef()
	if err := m.CreatePool(ctx, def); err != nil {
		t.Fatal(err)
	}
	// The start barrier: children block on a shared advisory lock the
	// parent holds until each has said READY.
	gate, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Release()
	if _, err := gate.Exec(ctx, "SELECT pg_advisory_lock($1)", mpLockKey); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var (
		cmds  []*exec.Cmd
		ready sync.WaitGroup
	)
	for i := range mpProcesses {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessAllocate$", "-test.count=1")
		cmd.Env = append(os.Environ(), envChild+"="+strconv.Itoa(i+1), envSchema+"="+schema,
			envOut+"="+filepath.Join(dir, fmt.Sprintf("child%d.json", i)))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		ready.Add(1)
		go func() {
			sc := bufio.NewScanner(stdout)
			signalled := false
			for sc.Scan() {
				if !signalled && sc.Text() == "READY" {
					signalled = true
					ready.Done()
				}
				t.Logf("child %d: %s", i+1, sc.Text())
			}
			if !signalled {
				ready.Done()
			}
		}()
		t.Cleanup(func() {
			if stderr.Len() > 0 {
				t.Logf("child %d stderr: %s", i+1, stderr.String())
			}
		})
	}
	ready.Wait()
	if _, err := gate.Exec(ctx, "SELECT pg_advisory_unlock($1)", mpLockKey); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i+1, err)
		}
	}

	// What the processes were told.
	told := map[string]netip.Addr{}
	refused := map[string]bool{}
	for i := range mpProcesses {
		raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("child%d.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		var rs []mpResult
		if err := json.Unmarshal(raw, &rs); err != nil {
			t.Fatal(err)
		}
		if len(rs) != mpOwners {
			t.Fatalf("child %d reported %d owners, want %d", i+1, len(rs), mpOwners)
		}
		for _, r := range rs {
			switch r.Code {
			case "OK":
				if prev, ok := told[r.Owner]; ok && prev != r.Address {
					t.Errorf("owner %s was given %v and %v", r.Owner, prev, r.Address)
				}
				told[r.Owner] = r.Address
			case errs.ResourceExhausted.String():
				refused[r.Owner] = true
			default:
				t.Errorf("child %d: owner %s: %s", i+1, r.Owner, r.Code)
			}
		}
	}
	// What the database holds.
	allocs, err := m.Allocations(ctx, mpPool)
	if err != nil {
		t.Fatal(err)
	}
	if len(allocs) != def.Size() {
		t.Errorf("%d allocations, want the whole pool: %d", len(allocs), def.Size())
	}
	byAddr := map[netip.Addr]string{}
	byOwner := map[string]netip.Addr{}
	for _, a := range allocs {
		if prev, dup := byAddr[a.Address]; dup {
			t.Errorf("duplicate: %v held by %s and %s", a.Address, prev, a.Owner)
		}
		if _, dup := byOwner[a.Owner]; dup {
			t.Errorf("owner %s holds two addresses", a.Owner)
		}
		byAddr[a.Address], byOwner[a.Owner] = a.Owner, a.Address
		if def.Excluded(a.Address) {
			t.Errorf("excluded address %v allocated", a.Address)
		}
	}
	for owner, addr := range told {
		if got, ok := byOwner[owner]; !ok || got != addr {
			t.Errorf("lost allocation: %s was told %v, the database has %v", owner, addr, got)
		}
	}
	for owner := range byOwner {
		if _, ok := told[owner]; !ok {
			t.Errorf("owner %s holds an address no process was told about", owner)
		}
	}
	for owner := range refused {
		if _, ok := told[owner]; ok {
			t.Errorf("owner %s was refused by one process and given an address by another", owner)
		}
	}
	if len(told)+len(refused) != mpOwners {
		t.Errorf("%d owners allocated + %d refused, want %d in all", len(told), len(refused), mpOwners)
	}
	t.Logf("%d processes x %d connections: %d owners allocated, %d refused (pool of %d)", mpProcesses, mpConns, len(told), len(refused), def.Size())
}

// mpChild is one allocating process.
func mpChild(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(envChild))
	pool := openPool(t, pgURL(t), os.Getenv(envSchema), mpConns)
	ctx := context.Background()
	m := portable(pool)
	// Open every connection before the start.
	var conns sync.WaitGroup
	for range mpConns {
		conns.Go(func() {
			if err := pool.Ping(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	conns.Wait()
	gate, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY")
	if _, err := gate.Exec(ctx, "SELECT pg_advisory_lock_shared($1)", mpLockKey); err != nil {
		t.Fatal(err)
	}
	_, _ = gate.Exec(ctx, "SELECT pg_advisory_unlock_shared($1)", mpLockKey)
	gate.Release()

	order := rand.New(rand.NewPCG(uint64(n), 7)).Perm(mpOwners)
	out := make([]mpResult, mpOwners)
	next := make(chan int)
	var wg sync.WaitGroup
	for range mpConns {
		wg.Go(func() {
			for i := range next {
				owner := fmt.Sprintf("vm-%04d", i)
				a, err := m.Allocate(ctx, ipam.Request{Pool: mpPool, Owner: owner})
				out[i] = mpResult{Owner: owner, Address: a.Address, Code: errs.CodeOf(err).String()}
			}
		})
	}
	for _, i := range order {
		next <- i
	}
	close(next)
	wg.Wait()
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(envOut), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}
