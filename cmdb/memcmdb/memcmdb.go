package memcmdb

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// Options configure a CMDB. The zero value is usable.
type Options struct {
	// Now is the clock for Created, Updated and RetiredAt; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives the portable type's Debug line per call; nil
	// discards. Logger, TracerProvider and MeterProvider are passed to
	// cmdb.New.
	Logger *slog.Logger
	// TracerProvider, if set, records a span per call.
	TracerProvider trace.TracerProvider
	// MeterProvider, if set, records the call metrics.
	MeterProvider metric.MeterProvider
}

// New returns an empty in-memory CMDB behind the portable *cmdb.CMDB.
// opts may be nil. Reach its Driver (for Len) with As.
func New(opts *Options) *cmdb.CMDB {
	if opts == nil {
		opts = &Options{}
	}
	return cmdb.New(NewDriver(opts), &cmdb.Options{
		Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider,
	})
}

// Driver is the in-memory cmdb.Driver. Create it with NewDriver (or New
// for the portable CMDB over one).
type Driver struct {
	now func() time.Time

	mu      sync.RWMutex
	records map[cmdb.Key]cmdb.Record
}

var (
	_ cmdb.Driver      = (*Driver)(nil)
	_ cmdb.BatchDriver = (*Driver)(nil)
)

// NewDriver returns an empty Driver, to wrap with cmdb.New. Only
// opts.Now is used; opts may be nil.
func NewDriver(opts *Options) *Driver {
	now := time.Now
	if opts != nil && opts.Now != nil {
		now = opts.Now
	}
	return &Driver{now: now, records: make(map[cmdb.Key]cmdb.Record)}
}

func (c *Driver) clock() time.Time { return c.now().Round(0) }

// Upsert writes r if r.Revision is the stored revision (0 to create) and
// returns the record as stored: Revision incremented, Created kept from the
// stored record (set now on creation), Updated now, RetiredAt set now when
// the record becomes Retired and cleared when it leaves Retired. The
// caller's Created, Updated and RetiredAt are ignored; EnrolledAt is the
// caller's.
//
// r is kept (the portable type hands over a deep copy); the record
// returned shares its maps with the stored one, which is never changed in
// place (the portable type copies it).
func (c *Driver) Upsert(_ context.Context, r cmdb.Record) (cmdb.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upsert(r, c.clock())
}

// UpsertMany writes each record as Upsert would, all under one lock and at
// one instant: a reader sees all of the batch's writes or none.
func (c *Driver) UpsertMany(_ context.Context, rs []cmdb.Record) ([]cmdb.Record, []error, error) {
	out, each := make([]cmdb.Record, len(rs)), make([]error, len(rs))
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	for i, r := range rs {
		out[i], each[i] = c.upsert(r, now)
	}
	return out, each, nil
}

// upsert is Upsert with c.mu held.
func (c *Driver) upsert(r cmdb.Record, now time.Time) (cmdb.Record, error) {
	cur, exists := c.records[r.Key]
	switch {
	case !exists && r.Revision != 0:
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, "", "record %s does not exist, but the write expects revision %d: %w", limit.Quote(r.Key.String()), r.Revision, cmdb.ErrConflict)
	case exists && r.Revision == 0:
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, "", "record %s already exists (revision %d): %w", limit.Quote(r.Key.String()), cur.Revision, cmdb.ErrConflict)
	case exists && r.Revision != cur.Revision:
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, "", "record %s is at revision %d, the write expects %d: %w", limit.Quote(r.Key.String()), cur.Revision, r.Revision, cmdb.ErrConflict)
	}
	out := r.Clone() // r's maps and slices are the caller's
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
	return out, nil
}

// Get returns the record stored under key (sharing its maps, as Upsert).
func (c *Driver) Get(_ context.Context, key cmdb.Key) (cmdb.Record, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.records[key]
	if !ok {
		return cmdb.Record{}, errs.Errorf(errs.NotFound, "", "no record %s", limit.Quote(key.String()))
	}
	return r, nil
}

// List returns the records f matches, ordered by key (sharing maps, as
// Upsert).
func (c *Driver) List(_ context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
	c.mu.RLock()
	out := make([]cmdb.Record, 0, len(c.records))
	for _, r := range c.records {
		if f.Match(r) {
			out = append(out, r)
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b cmdb.Record) int { return a.Key.Compare(b.Key) })
	return out, nil
}

// Retire marks the record Retired, whatever its revision: State Retired,
// RetiredAt and Updated now, Revision incremented. A retired record is
// returned unchanged.
func (c *Driver) Retire(_ context.Context, key cmdb.Key) (cmdb.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.records[key]
	if !ok {
		return cmdb.Record{}, errs.Errorf(errs.NotFound, "", "no record %s", limit.Quote(key.String()))
	}
	if r.State == cmdb.Retired {
		return r, nil
	}
	now := c.clock()
	r.State = cmdb.Retired
	r.RetiredAt = now
	r.Updated = now
	r.Revision++
	c.records[key] = r
	return r, nil
}

// Len returns how many records are stored, retired ones included.
func (c *Driver) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.records)
}
