package memcmdb

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
)

// Options configure a CMDB. The zero value is usable.
type Options struct {
	// Now is the clock for Created, Updated and RetiredAt; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives debug records of writes (keys and revisions only);
	// nil discards them.
	Logger *slog.Logger
}

// CMDB is an in-memory cmdb.CMDB. Create it with New.
type CMDB struct {
	now func() time.Time
	log *slog.Logger

	mu      sync.RWMutex
	records map[cmdb.Key]cmdb.Record
}

var _ cmdb.CMDB = (*CMDB)(nil)

// New returns an empty CMDB. opts may be nil.
func New(opts *Options) *CMDB {
	if opts == nil {
		opts = &Options{}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &CMDB{now: now, log: log, records: make(map[cmdb.Key]cmdb.Record)}
}

func (c *CMDB) clock() time.Time { return c.now().Round(0) }

// Upsert writes r if r.Revision is the stored revision (0 to create) and
// returns the record as stored: Revision incremented, Created kept from the
// stored record (set now on creation), Updated now, RetiredAt set now when
// the record becomes Retired and cleared when it leaves Retired. The
// caller's Created, Updated and RetiredAt are ignored; EnrolledAt is the
// caller's.
func (c *CMDB) Upsert(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
	const op = "memcmdb.Upsert"
	if err := errs.FromContext(ctx, op); err != nil {
		return cmdb.Record{}, err
	}
	if err := r.Validate(); err != nil {
		return cmdb.Record{}, errs.WrapOp(op, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, exists := c.records[r.Key]
	switch {
	case !exists && r.Revision != 0:
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, op, "record %s does not exist, but the write expects revision %d: %w", r.Key, r.Revision, cmdb.ErrConflict)
	case exists && r.Revision == 0:
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, op, "record %s already exists (revision %d): %w", r.Key, cur.Revision, cmdb.ErrConflict)
	case exists && r.Revision != cur.Revision:
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, op, "record %s is at revision %d, the write expects %d: %w", r.Key, cur.Revision, r.Revision, cmdb.ErrConflict)
	}
	now := c.clock()
	out := r.Clone()
	out.Revision = r.Revision + 1
	out.Updated = now
	out.Created = now
	if exists {
		out.Created = cur.Created
	}
	switch {
	case out.State != cmdb.Retired:
		out.RetiredAt = time.Time{}
	case exists && cur.State == cmdb.Retired:
		out.RetiredAt = cur.RetiredAt
	default:
		out.RetiredAt = now
	}
	c.records[r.Key] = out
	c.log.DebugContext(ctx, "memcmdb: upsert", "key", r.Key.String(), "revision", out.Revision, "state", string(out.State))
	return out.Clone(), nil
}

// Get returns a copy of the record stored under key.
func (c *CMDB) Get(ctx context.Context, key cmdb.Key) (cmdb.Record, error) {
	const op = "memcmdb.Get"
	if err := errs.FromContext(ctx, op); err != nil {
		return cmdb.Record{}, err
	}
	if err := key.Validate(); err != nil {
		return cmdb.Record{}, errs.WrapOp(op, err)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.records[key]
	if !ok {
		return cmdb.Record{}, errs.Errorf(errs.NotFound, op, "no record %s", key)
	}
	return r.Clone(), nil
}

// List returns copies of the records f matches, ordered by key.
func (c *CMDB) List(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
	const op = "memcmdb.List"
	if err := errs.FromContext(ctx, op); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, errs.WrapOp(op, err)
	}
	c.mu.RLock()
	out := make([]cmdb.Record, 0, len(c.records))
	for _, r := range c.records {
		if f.Match(r) {
			out = append(out, r.Clone())
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b cmdb.Record) int { return a.Key.Compare(b.Key) })
	return out, nil
}

// Retire marks the record Retired, whatever its revision: State Retired,
// RetiredAt and Updated now, Revision incremented. A retired record is
// returned unchanged.
func (c *CMDB) Retire(ctx context.Context, key cmdb.Key) (cmdb.Record, error) {
	const op = "memcmdb.Retire"
	if err := errs.FromContext(ctx, op); err != nil {
		return cmdb.Record{}, err
	}
	if err := key.Validate(); err != nil {
		return cmdb.Record{}, errs.WrapOp(op, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.records[key]
	if !ok {
		return cmdb.Record{}, errs.Errorf(errs.NotFound, op, "no record %s", key)
	}
	if r.State == cmdb.Retired {
		return r.Clone(), nil
	}
	now := c.clock()
	r.State = cmdb.Retired
	r.RetiredAt = now
	r.Updated = now
	r.Revision++
	c.records[key] = r
	c.log.DebugContext(ctx, "memcmdb: retire", "key", key.String(), "revision", r.Revision)
	return r.Clone(), nil
}

// Len returns how many records are stored, retired ones included.
func (c *CMDB) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.records)
}
