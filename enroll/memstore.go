package enroll

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/provider"
)

// MemoryStore is an in-memory Store: the embedded default, and what host
// tests use. It is safe for concurrent use by many orchestrators in one
// process.
type MemoryStore struct {
	mu       sync.Mutex
	now      func() time.Time
	journals map[string]Journal
	openVM   map[cmdb.Key]string
	cursors  map[string]provider.Cursor
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store. now, if not nil, is its clock.
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, journals: map[string]Journal{}, openVM: map[cmdb.Key]string{}, cursors: map[string]provider.Cursor{}}
}

func validJournal(op string, j Journal) error {
	switch {
	case j.ID == "":
		return errs.New(errs.InvalidArgument, op, "journal has no ID")
	case j.VM.Provider == "" || j.VM.VMID == "":
		return errs.Errorf(errs.InvalidArgument, op, "journal %s names no VM", j.ID)
	case j.Op == "":
		return errs.Errorf(errs.InvalidArgument, op, "journal %s has no operation", j.ID)
	}
	return nil
}

// CreateJournal implements Store.
func (s *MemoryStore) CreateJournal(ctx context.Context, j Journal) (Journal, error) {
	const op = "enroll.MemoryStore.CreateJournal"
	if err := errs.FromContext(ctx, op); err != nil {
		return Journal{}, err
	}
	if err := validJournal(op, j); err != nil {
		return Journal{}, err
	}
	if j.Revision != 0 {
		return Journal{}, errs.Errorf(errs.InvalidArgument, op, "journal %s: a new journal has revision 0", j.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.journals[j.ID]; ok {
		return Journal{}, errs.Errorf(errs.AlreadyExists, op, "journal %s: %w", j.ID, ErrJournalExists)
	}
	if j.Phase.Open() {
		if other, ok := s.openVM[j.VM]; ok {
			return Journal{}, errs.Errorf(errs.AlreadyExists, op, "VM %s (journal %s): %w", j.VM, other, ErrVMBusy)
		}
		s.openVM[j.VM] = j.ID
	}
	now := s.now()
	j = j.Clone()
	j.Revision, j.Created, j.Updated = 1, now, now
	s.journals[j.ID] = j
	return j.Clone(), nil
}

// GetJournal implements Store.
func (s *MemoryStore) GetJournal(ctx context.Context, id string) (Journal, error) {
	const op = "enroll.MemoryStore.GetJournal"
	if err := errs.FromContext(ctx, op); err != nil {
		return Journal{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.journals[id]
	if !ok {
		return Journal{}, errs.Errorf(errs.NotFound, op, "no journal %q", id)
	}
	return j.Clone(), nil
}

// UpdateJournal implements Store.
func (s *MemoryStore) UpdateJournal(ctx context.Context, j Journal) (Journal, error) {
	const op = "enroll.MemoryStore.UpdateJournal"
	if err := errs.FromContext(ctx, op); err != nil {
		return Journal{}, err
	}
	if err := validJournal(op, j); err != nil {
		return Journal{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.journals[j.ID]
	if !ok {
		return Journal{}, errs.Errorf(errs.NotFound, op, "no journal %q", j.ID)
	}
	if cur.Revision != j.Revision {
		return Journal{}, errs.Errorf(errs.FailedPrecondition, op, "journal %s: revision %d, stored %d: %w", j.ID, j.Revision, cur.Revision, ErrJournalConflict)
	}
	if cur.Op != j.Op || cur.VM != j.VM {
		return Journal{}, errs.Errorf(errs.InvalidArgument, op, "journal %s: operation and VM cannot change", j.ID)
	}
	if j.Phase.Open() && !cur.Phase.Open() {
		if other, ok := s.openVM[j.VM]; ok && other != j.ID {
			return Journal{}, errs.Errorf(errs.AlreadyExists, op, "VM %s (journal %s): %w", j.VM, other, ErrVMBusy)
		}
	}
	j = j.Clone()
	j.Revision = cur.Revision + 1
	j.Created, j.Updated = cur.Created, s.now()
	s.journals[j.ID] = j
	if j.Phase.Open() {
		s.openVM[j.VM] = j.ID
	} else if s.openVM[j.VM] == j.ID {
		delete(s.openVM, j.VM)
	}
	return j.Clone(), nil
}

// OpenJournals implements Store.
func (s *MemoryStore) OpenJournals(ctx context.Context) ([]Journal, error) {
	if err := errs.FromContext(ctx, "enroll.MemoryStore.OpenJournals"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Journal, 0, len(s.openVM))
	for _, id := range s.openVM {
		out = append(out, s.journals[id].Clone())
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Created.Equal(out[b].Created) {
			return out[a].Created.Before(out[b].Created)
		}
		return out[a].ID < out[b].ID
	})
	return out, nil
}

// OpenJournalFor implements Store.
func (s *MemoryStore) OpenJournalFor(ctx context.Context, vm cmdb.Key) (Journal, error) {
	const op = "enroll.MemoryStore.OpenJournalFor"
	if err := errs.FromContext(ctx, op); err != nil {
		return Journal{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.openVM[vm]
	if !ok {
		return Journal{}, errs.Errorf(errs.NotFound, op, "no open journal for %s", vm)
	}
	return s.journals[id].Clone(), nil
}

// Journals returns every journal, open and closed, ordered by ID (for tests
// and inspection).
func (s *MemoryStore) Journals() []Journal {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Journal, 0, len(s.journals))
	for _, j := range s.journals {
		out = append(out, j.Clone())
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// Cursor implements Store.
func (s *MemoryStore) Cursor(ctx context.Context, providerName string) (provider.Cursor, error) {
	const op = "enroll.MemoryStore.Cursor"
	if err := errs.FromContext(ctx, op); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cursors[providerName]
	if !ok {
		return "", errs.Errorf(errs.NotFound, op, "no cursor for provider %q", providerName)
	}
	return c, nil
}

// SetCursor implements Store.
func (s *MemoryStore) SetCursor(ctx context.Context, providerName string, c provider.Cursor) error {
	const op = "enroll.MemoryStore.SetCursor"
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	if providerName == "" {
		return errs.New(errs.InvalidArgument, op, "no provider name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursors[providerName] = c
	return nil
}
