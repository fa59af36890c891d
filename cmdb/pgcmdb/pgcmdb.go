package pgcmdb

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/pgsql"
)

// migrationsTable records the applied schema versions of this package.
const migrationsTable = "cmdb_schema_migrations"

// migrations is the schema, version by version. Never edit a released
// version: add a new one.
var migrations = []pgsql.Migration{{Version: 1, SQL: `
-- One row per configuration item. body is the record as JSON without the
-- fields the columns own (state, revision and the store's timestamps).
CREATE TABLE cmdb_records (
	provider   text NOT NULL,
	vm_id      text NOT NULL,
	state      text NOT NULL,
	zone       text NOT NULL DEFAULT '',
	revision   bigint NOT NULL CHECK (revision > 0),
	body       jsonb NOT NULL,
	created    timestamptz NOT NULL,
	updated    timestamptz NOT NULL,
	retired_at timestamptz,
	PRIMARY KEY (provider, vm_id)
);
CREATE INDEX cmdb_records_state ON cmdb_records (state);
`}}

// Migrate creates or upgrades the CMDB's schema in the database (in the
// pool's search_path). It is idempotent and safe to run from several
// processes at once (they take turns on an advisory lock). New does not
// migrate: call Migrate when the host deploys or starts.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgsql.Migrate(ctx, pool, "pgcmdb.Migrate", migrationsTable, migrations)
}

// Options configures the CMDB New returns. A nil *Options is ready to
// use. The three fields are passed to cmdb.New.
type Options struct {
	// Logger receives the portable type's Debug line per call (keys op,
	// code, err, duration). Nil discards.
	Logger *slog.Logger
	// TracerProvider, if set, records a span per call.
	TracerProvider trace.TracerProvider
	// MeterProvider, if set, records the call metrics.
	MeterProvider metric.MeterProvider
}

// New returns the portable CMDB over a Driver on the pool's database,
// whose schema Migrate has made. The caller keeps ownership of pool (and
// closes it); opts may be nil.
func New(pool *pgxpool.Pool, opts *Options) *cmdb.CMDB {
	if opts == nil {
		opts = &Options{}
	}
	return cmdb.New(NewDriver(pool), &cmdb.Options{
		Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider,
	})
}

// Driver is the cmdb.Driver in PostgreSQL. Create it with NewDriver (or
// New for the portable CMDB over one). It is safe for concurrent use by
// any number of processes sharing the database.
type Driver struct {
	db *pgxpool.Pool
}

var (
	_ cmdb.Driver      = (*Driver)(nil)
	_ cmdb.BatchDriver = (*Driver)(nil)
)

// NewDriver returns a Driver over the pool's database, to wrap with
// cmdb.New. The caller keeps ownership of pool.
func NewDriver(pool *pgxpool.Pool) *Driver { return &Driver{db: pool} }

// Pool returns the pool the Driver uses (reach the Driver from the
// portable CMDB with As).
func (c *Driver) Pool() *pgxpool.Pool { return c.db }

// body encodes r without the fields the columns own.
func body(r cmdb.Record) ([]byte, error) {
	r.State, r.Revision, r.Created, r.Updated, r.RetiredAt = "", 0, time.Time{}, time.Time{}, time.Time{}
	return json.Marshal(r)
}

const recordColumns = `body, state, revision, created, updated, retired_at`

func scanRecord(row pgx.Row) (cmdb.Record, error) { return scanRecordAfter(row) }

// scanRecordAfter scans a row of recordColumns preceded by the columns
// first points to.
func scanRecordAfter(row pgx.Row, first ...any) (cmdb.Record, error) {
	var (
		raw     []byte
		r       cmdb.Record
		state   string
		rev     int64
		c, u    time.Time
		retired *time.Time
	)
	if err := row.Scan(append(first, &raw, &state, &rev, &c, &u, &retired)...); err != nil {
		return cmdb.Record{}, err
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return cmdb.Record{}, errs.Errorf(errs.Internal, "", "record body: %w", err)
	}
	r.State, r.Revision, r.Created, r.Updated = cmdb.State(state), rev, c, u
	if retired != nil {
		r.RetiredAt = *retired
	}
	return r, nil
}

// Upsert writes r if r.Revision is the stored revision (0 to create) and
// returns the record as stored: Revision incremented, Created kept (set on
// creation), Updated now, RetiredAt set when the record becomes Retired
// and cleared when it leaves Retired, all by the database's clock. The
// caller's Created, Updated and RetiredAt are ignored.
func (c *Driver) Upsert(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
	b, err := body(r)
	if err != nil {
		return cmdb.Record{}, errs.Wrap(errs.InvalidArgument, "", err)
	}
	var out cmdb.Record
	if r.Revision == 0 {
		out, err = scanRecord(c.db.QueryRow(ctx, `INSERT INTO cmdb_records
			(provider, vm_id, state, zone, revision, body, created, updated, retired_at)
			VALUES ($1, $2, $3, $4, 1, $5, now(), now(), CASE WHEN $3 = 'retired' THEN now() END)
			ON CONFLICT (provider, vm_id) DO NOTHING
			RETURNING `+recordColumns, r.Key.Provider, r.Key.VMID, string(r.State), r.VM.Zone, b))
	} else {
		out, err = scanRecord(c.db.QueryRow(ctx, `UPDATE cmdb_records SET
				state = $4, zone = $5, body = $6, revision = revision + 1,
				updated = greatest(now(), updated),
				retired_at = CASE WHEN $4 <> 'retired' THEN NULL
					WHEN state = 'retired' THEN retired_at ELSE greatest(now(), updated) END
			WHERE provider = $1 AND vm_id = $2 AND revision = $3
			RETURNING `+recordColumns, r.Key.Provider, r.Key.VMID, r.Revision, string(r.State), r.VM.Zone, b))
	}
	if err == nil {
		return out, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return cmdb.Record{}, pgsql.Classify(ctx, "", err, true)
	}
	var stored int64
	err = c.db.QueryRow(ctx, `SELECT revision FROM cmdb_records WHERE provider = $1 AND vm_id = $2`,
		r.Key.Provider, r.Key.VMID).Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return cmdb.Record{}, conflict(r, 0, false)
	case err != nil:
		return cmdb.Record{}, pgsql.Classify(ctx, "", err, false)
	}
	return cmdb.Record{}, conflict(r, stored, true)
}

// conflict is the error of a write of r that did not match the stored
// revision (exists says whether a record is stored at all).
func conflict(r cmdb.Record, stored int64, exists bool) error {
	switch {
	case !exists:
		return errs.Errorf(errs.FailedPrecondition, "", "record %s does not exist, but the write expects revision %d: %w", limit.Quote(r.Key.String()), r.Revision, cmdb.ErrConflict)
	case r.Revision == 0:
		return errs.Errorf(errs.FailedPrecondition, "", "record %s already exists (revision %d): %w", limit.Quote(r.Key.String()), stored, cmdb.ErrConflict)
	}
	return errs.Errorf(errs.FailedPrecondition, "", "record %s is at revision %d, the write expects %d: %w", limit.Quote(r.Key.String()), stored, r.Revision, cmdb.ErrConflict)
}

// upsertManySQL writes a batch as Upsert writes each record, in one
// statement: the records given with revision 0 are inserted unless their
// key exists, the others updated where the stored revision is the one
// given, with the same bookkeeping as Upsert's two statements. It returns
// each written record with its position in the input (1-based); a record
// not returned was not written (a conflict).
const upsertManySQL = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
		WITH ORDINALITY AS t(provider, vm_id, state, zone, revision, body, ord)
), created AS (
	INSERT INTO cmdb_records AS r (provider, vm_id, state, zone, revision, body, created, updated, retired_at)
	SELECT provider, vm_id, state, zone, 1, body::jsonb, now(), now(), CASE WHEN state = 'retired' THEN now() END
	FROM input WHERE revision = 0
	ORDER BY provider, vm_id
	ON CONFLICT (provider, vm_id) DO NOTHING
	RETURNING r.provider, r.vm_id, ` + returnColumns + `
), updated AS (
	UPDATE cmdb_records AS r SET
		state = i.state, zone = i.zone, body = i.body::jsonb, revision = r.revision + 1,
		updated = greatest(now(), r.updated),
		retired_at = CASE WHEN i.state <> 'retired' THEN NULL
			WHEN r.state = 'retired' THEN r.retired_at ELSE greatest(now(), r.updated) END
	FROM input AS i
	WHERE i.revision > 0 AND r.provider = i.provider AND r.vm_id = i.vm_id AND r.revision = i.revision
	RETURNING i.ord, ` + returnColumns + `
)
SELECT i.ord, c.body, c.state, c.revision, c.created, c.updated, c.retired_at
	FROM created AS c JOIN input AS i USING (provider, vm_id)
UNION ALL
SELECT * FROM updated`

// returnColumns are recordColumns of the table aliased r.
const returnColumns = `r.body, r.state, r.revision, r.created, r.updated, r.retired_at`

// UpsertMany writes rs as Upsert writes each record, in one statement (so
// one round trip, and atomically: a reader sees all of its writes or
// none), plus one query for the revisions of the records not written,
// when there are some. The records given are sorted by key first, so two
// batches over the same records take their row locks in the same order.
func (c *Driver) UpsertMany(ctx context.Context, rs []cmdb.Record) ([]cmdb.Record, []error, error) {
	n := len(rs)
	order := make([]int, n) // order[j]: the index in rs of the j-th row sent
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return rs[a].Key.Compare(rs[b].Key) })
	provs, ids, states, zones, bodies := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	revs := make([]int64, n)
	for j, i := range order {
		r := rs[i]
		b, err := body(r)
		if err != nil {
			return nil, nil, errs.Wrap(errs.InvalidArgument, "", err)
		}
		provs[j], ids[j], states[j], zones[j], revs[j], bodies[j] = r.Key.Provider, r.Key.VMID, string(r.State), r.VM.Zone, r.Revision, string(b)
	}
	rows, err := c.db.Query(ctx, upsertManySQL, provs, ids, states, zones, revs, bodies)
	if err != nil {
		return nil, nil, pgsql.Classify(ctx, "", err, true)
	}
	out := make([]cmdb.Record, n)
	written := make([]bool, n)
	for rows.Next() {
		var ord int64
		r, err := scanRecordAfter(rows, &ord)
		if err == nil && (ord < 1 || ord > int64(n) || written[order[ord-1]]) {
			err = errs.Errorf(errs.Internal, "", "the batch statement returned row %d twice or out of range", ord)
		}
		if err != nil {
			rows.Close()
			return nil, nil, pgsql.Classify(ctx, "", err, true)
		}
		i := order[ord-1]
		written[i], out[i] = true, r
	}
	if err := rows.Err(); err != nil {
		return nil, nil, pgsql.Classify(ctx, "", err, true)
	}
	each := make([]error, n)
	var missP, missV []string
	for i, ok := range written {
		if !ok {
			missP, missV = append(missP, rs[i].Key.Provider), append(missV, rs[i].Key.VMID)
		}
	}
	if len(missP) == 0 {
		return out, each, nil
	}
	// Why the others were not written: their stored revisions.
	stored := make(map[cmdb.Key]int64, len(missP))
	rows, err = c.db.Query(ctx, `SELECT r.provider, r.vm_id, r.revision FROM cmdb_records AS r
		JOIN unnest($1::text[], $2::text[]) AS k(provider, vm_id) USING (provider, vm_id)`, missP, missV)
	if err != nil {
		return nil, nil, pgsql.Classify(ctx, "", err, false)
	}
	for rows.Next() {
		var (
			k   cmdb.Key
			rev int64
		)
		if err := rows.Scan(&k.Provider, &k.VMID, &rev); err != nil {
			rows.Close()
			return nil, nil, pgsql.Classify(ctx, "", err, false)
		}
		stored[k] = rev
	}
	if err := rows.Err(); err != nil {
		return nil, nil, pgsql.Classify(ctx, "", err, false)
	}
	for i, ok := range written {
		if !ok {
			rev, exists := stored[rs[i].Key]
			each[i] = conflict(rs[i], rev, exists)
		}
	}
	return out, each, nil
}

// Get returns the record stored under key, or NotFound.
func (c *Driver) Get(ctx context.Context, key cmdb.Key) (cmdb.Record, error) {
	r, err := scanRecord(c.db.QueryRow(ctx, `SELECT `+recordColumns+` FROM cmdb_records WHERE provider = $1 AND vm_id = $2`,
		key.Provider, key.VMID))
	if errors.Is(err, pgx.ErrNoRows) {
		return cmdb.Record{}, errs.Errorf(errs.NotFound, "", "no record %s", limit.Quote(key.String()))
	}
	if err != nil {
		return cmdb.Record{}, pgsql.Classify(ctx, "", err, false)
	}
	return r, nil
}

// List returns the records f matches, ordered by key (byte order, as
// cmdb.Key.Compare).
func (c *Driver) List(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
	states := make([]string, len(f.States))
	for i, s := range f.States {
		states[i] = string(s)
	}
	rows, err := c.db.Query(ctx, `SELECT `+recordColumns+` FROM cmdb_records
		WHERE ($1 = '' OR provider = $1) AND ($2 = '' OR zone = $2)
		AND CASE WHEN cardinality($3::text[]) > 0 THEN state = ANY ($3) ELSE state <> 'retired' OR $4 END
		ORDER BY provider COLLATE "C", vm_id COLLATE "C"`, f.Provider, f.Zone, states, f.IncludeRetired)
	if err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	defer rows.Close()
	out := []cmdb.Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, pgsql.Classify(ctx, "", err, false)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	return out, nil
}

// Retire marks the record Retired, whatever its revision: RetiredAt and
// Updated now, Revision incremented. A retired record is returned
// unchanged; a missing one is NotFound.
func (c *Driver) Retire(ctx context.Context, key cmdb.Key) (cmdb.Record, error) {
	r, err := scanRecord(c.db.QueryRow(ctx, `UPDATE cmdb_records SET state = 'retired',
			revision = revision + 1, updated = greatest(now(), updated), retired_at = greatest(now(), updated)
		WHERE provider = $1 AND vm_id = $2 AND state <> 'retired'
		RETURNING `+recordColumns, key.Provider, key.VMID))
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return cmdb.Record{}, pgsql.Classify(ctx, "", err, true)
	}
	return c.Get(ctx, key)
}
