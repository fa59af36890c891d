package pgcmdb

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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

var _ cmdb.Driver = (*Driver)(nil)

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

func scanRecord(row pgx.Row) (cmdb.Record, error) {
	var (
		raw     []byte
		r       cmdb.Record
		state   string
		rev     int64
		c, u    time.Time
		retired *time.Time
	)
	if err := row.Scan(&raw, &state, &rev, &c, &u, &retired); err != nil {
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
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, "", "record %s does not exist, but the write expects revision %d: %w", limit.Quote(r.Key.String()), r.Revision, cmdb.ErrConflict)
	case err != nil:
		return cmdb.Record{}, pgsql.Classify(ctx, "", err, false)
	case r.Revision == 0:
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, "", "record %s already exists (revision %d): %w", limit.Quote(r.Key.String()), stored, cmdb.ErrConflict)
	}
	return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, "", "record %s is at revision %d, the write expects %d: %w", limit.Quote(r.Key.String()), stored, r.Revision, cmdb.ErrConflict)
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
