package cmdb

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/obs"
)

// Driver is what a CMDB driver implements: the storage logic only. The
// portable [CMDB] in front of it checks the context and validates every
// argument before calling it, so a driver is only ever given a live
// context and a valid record, key or filter; the record is a deep copy
// the driver may keep. It deep-copies the records the driver returns, so a
// driver may return records that share maps and slices with what it
// keeps, as long as it never changes them afterwards. It wraps the
// driver's errors with the operation's name: a driver returns errs errors
// with an empty Op.
//
// A driver may also implement io.Closer (called once, by CMDB.Close) and
// As(any) bool (the escape hatch, see CMDB.As).
type Driver interface {
	// Upsert writes r if r.Revision equals the stored revision (0 to
	// create) and returns the record as stored (see CMDB.Upsert). The
	// driver sets the bookkeeping fields, Revision, Created, Updated and
	// RetiredAt, and keeps every other field as given: the CMDB takes
	// only those four from its answer. r's maps and slices are the
	// caller's: a driver that keeps r keeps a deep copy (Record.Clone).
	Upsert(ctx context.Context, r Record) (Record, error)
	// Get returns a record, or NotFound.
	Get(ctx context.Context, key Key) (Record, error)
	// List returns the records that match f (Filter.Match), ordered by
	// key (Key.Compare).
	List(ctx context.Context, f Filter) ([]Record, error)
	// Retire marks the record retired, whatever its revision (see
	// CMDB.Retire).
	Retire(ctx context.Context, key Key) (Record, error)
}

// BatchDriver is the optional capability of a driver that writes many
// records in one round trip (pgcmdb: one statement). The CMDB uses it for
// UpsertMany when its driver has it, and calls Upsert once per record
// otherwise. It is given what Upsert is given, for each record: a live
// context, valid records with distinct keys, at most MaxBatch of them.
type BatchDriver interface {
	// UpsertMany writes each record of rs as Upsert would on its own
	// (the same revision check and bookkeeping) and returns, in rs's
	// order, the record as stored or the error that kept it from being
	// written (a conflict, wrapping ErrConflict); one record's conflict
	// does not keep the others from being written. Both slices have
	// len(rs) entries. rs is the driver's, but the records' maps and
	// slices are the caller's: a driver that keeps a record keeps a deep
	// copy (Record.Clone). A non-nil error (the third result) is a failure
	// of the whole call: its code says whether anything was written
	// (OutcomeUnknown when that is not known).
	UpsertMany(ctx context.Context, rs []Record) ([]Record, []error, error)
}

// Options configures a CMDB. A nil *Options is the zero value: no
// logging, tracing or metrics.
type Options struct {
	// Logger receives a Debug line per call (keys op, code, err,
	// duration); nil discards.
	Logger *slog.Logger
	// TracerProvider, if set, records a span per call.
	TracerProvider trace.TracerProvider
	// MeterProvider, if set, records the call metrics.
	MeterProvider metric.MeterProvider
}

// CMDB is the portable CMDB every caller holds: it validates, copies,
// instruments and forwards to a [Driver]. Create it with New (or a driver
// package's constructor, such as memcmdb.New). It is safe for concurrent
// use when its driver is.
type CMDB struct {
	drv    Driver
	in     *obs.Instrument
	closed obs.Closed
}

// New returns the portable CMDB over d. opts may be nil.
func New(d Driver, opts *Options) *CMDB {
	if opts == nil {
		opts = &Options{}
	}
	return &CMDB{drv: d, in: obs.New("cmdb", obs.DriverName(d), obs.Options{
		Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider,
	})}
}

func (c *CMDB) begin(ctx context.Context, op string) error {
	if err := c.closed.Check(op); err != nil {
		return err
	}
	return errs.FromContext(ctx, op)
}

// Upsert writes r if r.Revision equals the stored revision (0 to create).
// It returns the record as stored, with the new revision and timestamps.
// A stale revision is an error wrapping ErrConflict; a malformed record,
// or one beyond the limits, is InvalidArgument. Either changes nothing.
func (c *CMDB) Upsert(ctx context.Context, r Record) (Record, error) {
	const op = "cmdb.Upsert"
	ctx, call := c.in.Start(ctx, op)
	err := c.begin(ctx, op)
	if err == nil {
		err = r.validate()
	}
	var out Record
	if err == nil {
		out, err = c.drv.Upsert(ctx, r) // a driver copies what it keeps
	}
	if err != nil {
		return Record{}, call.End(ctx, err)
	}
	// The caller's own r with the stored bookkeeping: no second deep copy,
	// and nothing the driver keeps can leak out.
	r.Revision, r.Created, r.Updated, r.RetiredAt = out.Revision, out.Created, out.Updated, out.RetiredAt
	return r, call.End(ctx, nil)
}

// UpsertMany writes the records of rs as len(rs) Upserts would, each on
// its own (the same revision check, the same bookkeeping), in one call to
// the driver: one round trip for a driver with the BatchDriver capability
// (pgcmdb: one statement), Upsert in a loop for the others. It is one
// call for telemetry (one span, "cmdb.UpsertMany", one count).
//
// It returns the records as stored, in rs's order, each the caller's own
// record with the four bookkeeping fields the driver set (as Upsert). When
// some records were not written because their revision was stale, the
// others still are: the error is then a *BatchError (code
// FailedPrecondition, wrapping ErrConflict), whose Errs[i] says why rs[i]
// was not written, and the returned slice holds the written records and
// zero Records for the others. Any other error is the whole call's (for a
// driver without the capability, the first record that failed otherwise
// stops the loop, with the records before it written).
//
// Every record is validated as Upsert does; more than MaxBatch records,
// two with the same key, or one invalid record is InvalidArgument and
// nothing is written. An empty rs writes nothing and returns nil, nil.
func (c *CMDB) UpsertMany(ctx context.Context, rs []Record) ([]Record, error) {
	const op = "cmdb.UpsertMany"
	ctx, call := c.in.Start(ctx, op)
	err := c.begin(ctx, op)
	if err == nil {
		err = validBatch(rs)
	}
	if err != nil {
		return nil, call.End(ctx, err)
	}
	if len(rs) == 0 {
		return nil, call.End(ctx, nil)
	}
	var (
		out  []Record
		each []error
	)
	if bd, ok := c.drv.(BatchDriver); ok {
		// The driver gets a slice of its own; the records' maps and
		// slices stay the caller's (as for Upsert).
		out, each, err = bd.UpsertMany(ctx, slices.Clone(rs))
		if err == nil && (len(out) != len(rs) || len(each) != len(rs)) {
			err = errs.Errorf(errs.Internal, "", "the driver answered %d records and %d errors for %d records", len(out), len(each), len(rs))
		}
		for i := 0; err == nil && i < len(rs); i++ {
			if each[i] == nil && out[i].Key != rs[i].Key {
				err = errs.Errorf(errs.Internal, "", "the driver answered record %s for record %d, %s", limit.Quote(out[i].Key.String()), i+1, limit.Quote(rs[i].Key.String()))
			}
		}
	} else {
		out, each = make([]Record, len(rs)), make([]error, len(rs))
		for i, r := range rs {
			if err = errs.FromContext(ctx, ""); err != nil {
				break
			}
			out[i], err = c.drv.Upsert(ctx, r)
			if errors.Is(err, ErrConflict) {
				each[i], err = err, nil
				continue
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, call.End(ctx, err)
	}
	res := make([]Record, len(rs))
	var failed *BatchError
	for i, r := range rs {
		if each[i] != nil {
			if failed == nil {
				failed = &BatchError{Errs: make([]error, len(rs))}
			}
			failed.Errs[i] = each[i] // the call's error names op, once
			continue
		}
		o := out[i]
		r.Revision, r.Created, r.Updated, r.RetiredAt = o.Revision, o.Created, o.Updated, o.RetiredAt
		res[i] = r
	}
	if failed != nil {
		return res, call.End(ctx, failed)
	}
	return res, call.End(ctx, nil)
}

// validBatch checks a batch as UpsertMany does: at most MaxBatch records,
// each valid, no key twice.
func validBatch(rs []Record) error {
	if len(rs) > MaxBatch {
		return errs.Errorf(errs.InvalidArgument, "", "%d records, more than %d", len(rs), MaxBatch)
	}
	seen := make(map[Key]struct{}, len(rs))
	for i, r := range rs {
		if err := r.validate(); err != nil {
			return errs.Errorf(errs.InvalidArgument, "", "record %d of %d: %w", i+1, len(rs), err)
		}
		if _, dup := seen[r.Key]; dup {
			return errs.Errorf(errs.InvalidArgument, "", "record %d of %d: key %s given twice", i+1, len(rs), limit.Quote(r.Key.String()))
		}
		seen[r.Key] = struct{}{}
	}
	return nil
}

// Get returns a record, or NotFound. A key beyond the limits is
// InvalidArgument.
func (c *CMDB) Get(ctx context.Context, key Key) (Record, error) {
	const op = "cmdb.Get"
	ctx, call := c.in.Start(ctx, op)
	err := c.begin(ctx, op)
	if err == nil {
		err = key.validate()
	}
	var out Record
	if err == nil {
		out, err = c.drv.Get(ctx, key)
	}
	if err != nil {
		return Record{}, call.End(ctx, err)
	}
	return out.Clone(), call.End(ctx, nil)
}

// List returns the records that match f, ordered by key. A filter beyond
// the limits, or naming a state that does not exist, is InvalidArgument.
func (c *CMDB) List(ctx context.Context, f Filter) ([]Record, error) {
	const op = "cmdb.List"
	ctx, call := c.in.Start(ctx, op)
	err := c.begin(ctx, op)
	if err == nil {
		err = f.validate()
	}
	var rs []Record
	if err == nil {
		f.States = slices.Clone(f.States)
		rs, err = c.drv.List(ctx, f)
	}
	if err != nil {
		return nil, call.End(ctx, err)
	}
	out := make([]Record, len(rs))
	for i, r := range rs {
		out[i] = r.Clone()
	}
	return out, call.End(ctx, nil)
}

// Retire marks the record retired (the VM is gone), whatever its
// revision. Retiring a retired record changes nothing; a missing one is
// NotFound; a key beyond the limits is InvalidArgument.
func (c *CMDB) Retire(ctx context.Context, key Key) (Record, error) {
	const op = "cmdb.Retire"
	ctx, call := c.in.Start(ctx, op)
	err := c.begin(ctx, op)
	if err == nil {
		err = key.validate()
	}
	var out Record
	if err == nil {
		out, err = c.drv.Retire(ctx, key)
	}
	if err != nil {
		return Record{}, call.End(ctx, err)
	}
	return out.Clone(), call.End(ctx, nil)
}

// Close closes the driver (when it is an io.Closer) once; later calls of
// every method, Close aside, are FailedPrecondition. A second Close returns
// nil.
func (c *CMDB) Close() error {
	const op = "cmdb.Close"
	if !c.closed.Close() {
		return nil
	}
	cl, ok := c.drv.(io.Closer)
	if !ok {
		return nil
	}
	ctx, call := c.in.Start(context.Background(), op)
	return call.End(ctx, cl.Close())
}

// As is the escape hatch to the driver: it asks the driver's own As
// method first, if it has one (documented by each driver); otherwise, if
// target is a pointer to the driver's own type (for example
// **memcmdb.Driver or **pgcmdb.Driver), it sets *target to the driver and reports true.
func (c *CMDB) As(target any) bool { return obs.As(c.drv, target, false) }
