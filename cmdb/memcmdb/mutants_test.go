package memcmdb_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/cmdbtest"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
)

// The conformance suite must catch real bugs: each mutant is a driver with
// one plausible bug, and the test checks, in a child process, that the
// suite case meant to catch it fails. (Three mutants of the time before
// the portable type are gone: a driver that shares memory with its
// callers, ignores the context or skips filter validation can no longer
// hurt, because cmdb.CMDB copies, checks the context and validates before
// any driver runs; cmdb's TestPortableGuards holds it to that.)

const mutantEnv = "MEMCMDB_SUITE_MUTANT"

type mutantDB struct {
	*memcmdb.Driver
	upsert func(ctx context.Context, r cmdb.Record) (cmdb.Record, error)
	get    func(ctx context.Context, k cmdb.Key) (cmdb.Record, error)
	list   func(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error)
	retire func(ctx context.Context, k cmdb.Key) (cmdb.Record, error)
	// upsertMany, if set, replaces the Driver's batch capability.
	upsertMany func(ctx context.Context, rs []cmdb.Record) ([]cmdb.Record, []error, error)
}

func (m *mutantDB) UpsertMany(ctx context.Context, rs []cmdb.Record) ([]cmdb.Record, []error, error) {
	if m.upsertMany != nil {
		return m.upsertMany(ctx, rs)
	}
	return m.Driver.UpsertMany(ctx, rs)
}

func (m *mutantDB) Upsert(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
	if m.upsert != nil {
		return m.upsert(ctx, r)
	}
	return m.Driver.Upsert(ctx, r)
}

func (m *mutantDB) Get(ctx context.Context, k cmdb.Key) (cmdb.Record, error) {
	if m.get != nil {
		return m.get(ctx, k)
	}
	return m.Driver.Get(ctx, k)
}

func (m *mutantDB) List(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
	if m.list != nil {
		return m.list(ctx, f)
	}
	return m.Driver.List(ctx, f)
}

func (m *mutantDB) Retire(ctx context.Context, k cmdb.Key) (cmdb.Record, error) {
	if m.retire != nil {
		return m.retire(ctx, k)
	}
	return m.Driver.Retire(ctx, k)
}

type mutant struct {
	name    string
	catches []string
	build   func(db *memcmdb.Driver) *mutantDB
}

func mutants() []mutant {
	return []mutant{
		{"last write wins", []string{"StaleRevisionConflicts", "CreateTwiceConflicts", "ConcurrentIncrements"}, func(db *memcmdb.Driver) *mutantDB {
			var mu sync.Mutex
			return &mutantDB{Driver: db, upsert: func(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
				mu.Lock()
				defer mu.Unlock()
				r.Revision = 0
				if cur, err := db.Get(ctx, r.Key); err == nil {
					r.Revision = cur.Revision
				}
				return db.Upsert(ctx, r)
			}}
		}},
		{"check then write", []string{"ConcurrentIncrements", "ConcurrentCreate"}, func(db *memcmdb.Driver) *mutantDB {
			// The revision check and the write are not one atomic step.
			return &mutantDB{Driver: db, upsert: func(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
				cur, err := db.Get(ctx, r.Key)
				if (err == nil && cur.Revision != r.Revision) || (err != nil && r.Revision != 0) {
					return cmdb.Record{}, cmdb.ErrConflict
				}
				// Widen the window so that concurrent callers pass the
				// check too, even on a loaded machine (yielding alone let
				// one caller finish first there, and the mutant go free).
				time.Sleep(10 * time.Millisecond)
				r.Revision = 0
				if cur, err := db.Get(ctx, r.Key); err == nil {
					r.Revision = cur.Revision
				}
				out, err := db.Upsert(ctx, r)
				if err != nil {
					return cmdb.Record{}, cmdb.ErrConflict
				}
				return out, nil
			}}
		}},
		{"retire not idempotent", []string{"RetireIdempotent"}, func(db *memcmdb.Driver) *mutantDB {
			return &mutantDB{Driver: db, retire: func(ctx context.Context, k cmdb.Key) (cmdb.Record, error) {
				cur, err := db.Get(ctx, k)
				if err == nil && cur.State == cmdb.Retired {
					return db.Upsert(ctx, cur)
				}
				return db.Retire(ctx, k)
			}}
		}},
		{"retire without revision bump", []string{"RetireBumpsRevision", "Retire"}, func(db *memcmdb.Driver) *mutantDB {
			var mu sync.Mutex
			bumped := map[cmdb.Key]int64{}
			m := &mutantDB{Driver: db}
			m.retire = func(ctx context.Context, k cmdb.Key) (cmdb.Record, error) {
				mu.Lock()
				defer mu.Unlock()
				r, err := db.Retire(ctx, k)
				if err == nil && r.Revision > 1 {
					bumped[k]++
					r.Revision -= bumped[k]
				}
				return r, err
			}
			m.upsert = func(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
				mu.Lock()
				r.Revision += bumped[r.Key]
				mu.Unlock()
				return db.Upsert(ctx, r)
			}
			return m
		}},
		{"retired listed", []string{"ListFilters"}, func(db *memcmdb.Driver) *mutantDB {
			return &mutantDB{Driver: db, list: func(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
				f.IncludeRetired = true
				return db.List(ctx, f)
			}}
		}},
		{"zone filter ignored", []string{"ListFilters"}, func(db *memcmdb.Driver) *mutantDB {
			return &mutantDB{Driver: db, list: func(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
				f.Zone = ""
				return db.List(ctx, f)
			}}
		}},
		{"list unsorted", []string{"ListOrderedByKey"}, func(db *memcmdb.Driver) *mutantDB {
			return &mutantDB{Driver: db, list: func(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
				rs, err := db.List(ctx, f)
				slices.Reverse(rs)
				return rs, err
			}}
		}},
		{"batch ignores revisions", []string{"BatchConflicts", "BatchRetirement"}, func(db *memcmdb.Driver) *mutantDB {
			var mu sync.Mutex
			return &mutantDB{Driver: db, upsertMany: func(ctx context.Context, rs []cmdb.Record) ([]cmdb.Record, []error, error) {
				mu.Lock()
				defer mu.Unlock()
				for i := range rs {
					rs[i].Revision = 0
					if cur, err := db.Get(ctx, rs[i].Key); err == nil {
						rs[i].Revision = cur.Revision
					}
				}
				return db.UpsertMany(ctx, rs)
			}}
		}},
		{"batch all or nothing", []string{"BatchConflicts"}, func(db *memcmdb.Driver) *mutantDB {
			// One conflict fails every record (as one transaction that
			// rolls back would), so the good ones are not written.
			return &mutantDB{Driver: db, upsertMany: func(ctx context.Context, rs []cmdb.Record) ([]cmdb.Record, []error, error) {
				for _, r := range rs {
					cur, err := db.Get(ctx, r.Key)
					if (err == nil && cur.Revision != r.Revision) || (err != nil && r.Revision != 0) {
						each := make([]error, len(rs))
						for i := range each {
							each[i] = cmdb.ErrConflict
						}
						return make([]cmdb.Record, len(rs)), each, nil
					}
				}
				return db.UpsertMany(ctx, rs)
			}}
		}},
		{"batch answers in key order", []string{"BatchCreateUpdate"}, func(db *memcmdb.Driver) *mutantDB {
			return &mutantDB{Driver: db, upsertMany: func(ctx context.Context, rs []cmdb.Record) ([]cmdb.Record, []error, error) {
				out, each, err := db.UpsertMany(ctx, rs)
				slices.SortFunc(out, func(a, b cmdb.Record) int { return a.Key.Compare(b.Key) })
				return out, each, err
			}}
		}},
		{"batch moves RetiredAt", []string{"BatchRetirement"}, func(db *memcmdb.Driver) *mutantDB {
			// Every write of a retired record sets RetiredAt anew.
			return &mutantDB{Driver: db, upsertMany: func(ctx context.Context, rs []cmdb.Record) ([]cmdb.Record, []error, error) {
				out := make([]cmdb.Record, len(rs))
				each := make([]error, len(rs))
				for i, r := range rs {
					retired := r.State == cmdb.Retired
					if retired {
						r.State = cmdb.Available
					}
					out[i], each[i] = db.Upsert(ctx, r)
					if each[i] == nil && retired {
						out[i], each[i] = db.Retire(ctx, r.Key)
						out[i].Revision-- // one write
					}
				}
				return out, each, nil
			}}
		}},
		{"batch check then write", []string{"BatchConcurrent"}, func(db *memcmdb.Driver) *mutantDB {
			return &mutantDB{Driver: db, upsertMany: func(ctx context.Context, rs []cmdb.Record) ([]cmdb.Record, []error, error) {
				out := make([]cmdb.Record, len(rs))
				each := make([]error, len(rs))
				ok := make([]bool, len(rs))
				for i, r := range rs {
					cur, err := db.Get(ctx, r.Key)
					ok[i] = (err == nil && cur.Revision == r.Revision) || (err != nil && r.Revision == 0)
				}
				time.Sleep(10 * time.Millisecond)
				for i, r := range rs {
					if !ok[i] {
						each[i] = cmdb.ErrConflict
						continue
					}
					if cur, err := db.Get(ctx, r.Key); err == nil {
						r.Revision = cur.Revision
					}
					out[i], each[i] = db.Upsert(ctx, r)
				}
				return out, each, nil
			}}
		}},
		{"caller's timestamps", []string{"StoreOwnsTimestamps"}, func(db *memcmdb.Driver) *mutantDB {
			return &mutantDB{Driver: db, upsert: func(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
				out, err := db.Upsert(ctx, r)
				if err == nil && !r.Created.IsZero() {
					out.Created = r.Created
				}
				return out, err
			}}
		}},
	}
}

func TestMutantChild(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("only run as a child of TestSuiteCatchesMutants")
	}
	for _, m := range mutants() {
		if m.name == name {
			cmdbtest.Run(t, cmdbtest.Harness{New: func(*testing.T) cmdb.Driver { return m.build(memcmdb.NewDriver(nil)) }})
			return
		}
	}
	t.Fatalf("no mutant %q", name)
}

func TestSuiteCatchesMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child test process per mutant")
	}
	for _, m := range mutants() {
		for _, c := range m.catches {
			t.Run(m.name+"/"+c, func(t *testing.T) {
				t.Parallel()
				cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMutantChild$/^"+c+"$", "-test.v", "-test.count=1")
				cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("child: %v\n%s", err, out)
				}
				if !strings.Contains(string(out), "--- FAIL: TestMutantChild/"+c+" ") {
					t.Fatalf("the suite case %s did not catch the mutant %q:\n%s", c, m.name, out)
				}
			})
		}
	}
}
