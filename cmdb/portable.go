package cmdb

import (
	"context"
	"io"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
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
