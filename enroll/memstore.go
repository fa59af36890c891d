package enroll

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// memStore is the in-memory StoreDriver behind NewMemoryStore.
type memStore struct {
	mu       sync.Mutex
	now      func() time.Time
	journals map[string]Journal
	openVM   map[cmdb.Key]string
	cursors  map[string]provider.Cursor
}

var (
	_ StoreDriver   = (*memStore)(nil)
	_ JournalLister = (*memStore)(nil)
)

// MemoryStoreOptions tune the in-memory Store. A nil *MemoryStoreOptions
// is ready to use.
type MemoryStoreOptions struct {
	// StoreOptions are the portable Store's (logger, telemetry).
	StoreOptions
	// Now is the store's clock for Created and Updated (default
	// time.Now).
	Now func() time.Time
}

// NewMemoryStore returns an empty in-memory Store: the embedded default,
// and what host tests use. It is safe for concurrent use by many
// orchestrators in one process (not across processes: use pgstore).
func NewMemoryStore(opts *MemoryStoreOptions) *Store {
	var so *StoreOptions
	if opts != nil {
		so = &opts.StoreOptions
	}
	return NewStore(NewMemoryStoreDriver(opts), so)
}

// NewMemoryStoreDriver returns the bare in-memory StoreDriver (for
// storetest, or to wrap before NewStore). Only opts.Now is used.
func NewMemoryStoreDriver(opts *MemoryStoreOptions) StoreDriver {
	now := time.Now
	if opts != nil && opts.Now != nil {
		now = opts.Now
	}
	return &memStore{now: now, journals: map[string]Journal{}, openVM: map[cmdb.Key]string{}, cursors: map[string]provider.Cursor{}}
}

// DriverName names the driver in telemetry.
func (s *memStore) DriverName() string { return "memory" }

func (s *memStore) CreateJournal(_ context.Context, j Journal) (Journal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.journals[j.ID]; ok {
		return Journal{}, errs.Errorf(errs.AlreadyExists, "", "journal %s: %w", limit.Quote(j.ID), ErrJournalExists)
	}
	if j.Phase.Open() {
		if other, ok := s.openVM[j.VM]; ok {
			return Journal{}, errs.Errorf(errs.AlreadyExists, "", "VM %s (journal %s): %w", limit.Quote(j.VM.String()), limit.Quote(other), ErrVMBusy)
		}
		s.openVM[j.VM] = j.ID
	}
	now := s.now()
	j = j.Clone() // the caller keeps its slices
	j.Revision, j.Created, j.Updated = 1, now, now
	s.journals[j.ID] = j
	return j, nil
}

func (s *memStore) GetJournal(_ context.Context, id string) (Journal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.journals[id]
	if !ok {
		return Journal{}, errs.Errorf(errs.NotFound, "", "no journal %s", limit.Quote(id))
	}
	return j, nil
}

func (s *memStore) UpdateJournal(_ context.Context, j Journal) (Journal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.journals[j.ID]
	if !ok {
		return Journal{}, errs.Errorf(errs.NotFound, "", "no journal %s", limit.Quote(j.ID))
	}
	if cur.Revision != j.Revision {
		return Journal{}, errs.Errorf(errs.FailedPrecondition, "", "journal %s: revision %d, stored %d: %w", limit.Quote(j.ID), j.Revision, cur.Revision, ErrJournalConflict)
	}
	if cur.Op != j.Op || cur.VM != j.VM {
		return Journal{}, errs.Errorf(errs.InvalidArgument, "", "journal %s: operation and VM cannot change", limit.Quote(j.ID))
	}
	if j.Phase.Open() && !cur.Phase.Open() {
		if other, ok := s.openVM[j.VM]; ok && other != j.ID {
			return Journal{}, errs.Errorf(errs.AlreadyExists, "", "VM %s (journal %s): %w", limit.Quote(j.VM.String()), limit.Quote(other), ErrVMBusy)
		}
	}
	j = j.Clone() // the caller keeps its slices
	j.Revision = cur.Revision + 1
	j.Created, j.Updated = cur.Created, s.now()
	s.journals[j.ID] = j
	if j.Phase.Open() {
		s.openVM[j.VM] = j.ID
	} else if s.openVM[j.VM] == j.ID {
		delete(s.openVM, j.VM)
	}
	return j, nil
}

func (s *memStore) OpenJournals(context.Context) ([]Journal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Journal, 0, len(s.openVM))
	for _, id := range s.openVM {
		out = append(out, s.journals[id])
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Created.Equal(out[b].Created) {
			return out[a].Created.Before(out[b].Created)
		}
		return out[a].ID < out[b].ID
	})
	return out, nil
}

func (s *memStore) OpenJournalFor(_ context.Context, vm cmdb.Key) (Journal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.openVM[vm]
	if !ok {
		return Journal{}, errs.Errorf(errs.NotFound, "", "no open journal for %s", limit.Quote(vm.String()))
	}
	return s.journals[id], nil
}

func (s *memStore) Journals(context.Context) ([]Journal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Journal, 0, len(s.journals))
	for _, j := range s.journals {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, nil
}

func (s *memStore) Cursor(_ context.Context, providerName string) (provider.Cursor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cursors[providerName]
	if !ok {
		return "", errs.Errorf(errs.NotFound, "", "no cursor for provider %s", limit.Quote(providerName))
	}
	return c, nil
}

func (s *memStore) SetCursor(_ context.Context, providerName string, c provider.Cursor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursors[providerName] = c
	return nil
}
