package pgcmdb

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
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

// Options configures a CMDB. A nil *Options is ready to use.
type Options struct {
	// Logger receives debug records of writes (keys and revisions only).
	// Nil discards.
	Logger *slog.Logger
}

// CMDB is a cmdb.CMDB in PostgreSQL. Create it with [New]. It is safe for
// concurrent use by any number of processes sharing the database.
type CMDB struct {
	db  *pgxpool.Pool
	log *slog.Logger
}

var _ cmdb.CMDB = (*CMDB)(nil)

// New returns a CMDB over the pool's database, whose schema Migrate has
// made. The caller keeps ownership of pool (and closes it).
func New(pool *pgxpool.Pool, opts *Options) *CMDB {
	c := &CMDB{db: pool}
	if opts != nil {
		c.log = opts.Logger
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

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
		return cmdb.Record{}, errs.Errorf(errs.Internal, "pgcmdb", "record body: %w", err)
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
func (c *CMDB) Upsert(ctx context.Context, r cmdb.Record) (cmdb.Record, error) {
	const op = "pgcmdb.Upsert"
	if err := errs.FromContext(ctx, op); err != nil {
		return cmdb.Record{}, err
	}
	if err := r.Validate(); err != nil {
		return cmdb.Record{}, errs.WrapOp(op, err)
	}
	b, err := body(r)
	if err != nil {
		return cmdb.Record{}, errs.Wrap(errs.InvalidArgument, op, err)
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
		c.log.DebugContext(ctx, "pgcmdb: upsert", "key", r.Key.String(), "revision", out.Revision, "state", string(out.State))
		return out, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return cmdb.Record{}, pgsql.Classify(ctx, op, err, true)
	}
	var stored int64
	err = c.db.QueryRow(ctx, `SELECT revision FROM cmdb_records WHERE provider = $1 AND vm_id = $2`,
		r.Key.Provider, r.Key.VMID).Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, op, "record %s does not exist, but the write expects revision %d: %w", r.Key, r.Revision, cmdb.ErrConflict)
	case err != nil:
		return cmdb.Record{}, pgsql.Classify(ctx, op, err, false)
	case r.Revision == 0:
		return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, op, "record %s already exists (revision %d): %w", r.Key, stored, cmdb.ErrConflict)
	}
	return cmdb.Record{}, errs.Errorf(errs.FailedPrecondition, op, "record %s is at revision %d, the write expects %d: %w", r.Key, stored, r.Revision, cmdb.ErrConflict)
}

// Get returns the record stored under key, or NotFound.
func (c *CMDB) Get(ctx context.Context, key cmdb.Key) (cmdb.Record, error) {
	const op = "pgcmdb.Get"
	if err := errs.FromContext(ctx, op); err != nil {
		return cmdb.Record{}, err
	}
	if err := key.Validate(); err != nil {
		return cmdb.Record{}, errs.WrapOp(op, err)
	}
	r, err := scanRecord(c.db.QueryRow(ctx, `SELECT `+recordColumns+` FROM cmdb_records WHERE provider = $1 AND vm_id = $2`,
		key.Provider, key.VMID))
	if errors.Is(err, pgx.ErrNoRows) {
		return cmdb.Record{}, errs.Errorf(errs.NotFound, op, "no record %s", key)
	}
	if err != nil {
		return cmdb.Record{}, pgsql.Classify(ctx, op, err, false)
	}
	return r, nil
}

// List returns the records f matches, ordered by key (byte order, as
// cmdb.Key.Compare).
func (c *CMDB) List(ctx context.Context, f cmdb.Filter) ([]cmdb.Record, error) {
	const op = "pgcmdb.List"
	if err := errs.FromContext(ctx, op); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, errs.WrapOp(op, err)
	}
	states := make([]string, len(f.States))
	for i, s := range f.States {
		states[i] = string(s)
	}
	rows, err := c.db.Query(ctx, `SELECT `+recordColumns+` FROM cmdb_records
		WHERE ($1 = '' OR provider = $1) AND ($2 = '' OR zone = $2)
		AND CASE WHEN cardinality($3::text[]) > 0 THEN state = ANY ($3) ELSE state <> 'retired' OR $4 END
		ORDER BY provider COLLATE "C", vm_id COLLATE "C"`, f.Provider, f.Zone, states, f.IncludeRetired)
	if err != nil {
		return nil, pgsql.Classify(ctx, op, err, false)
	}
	defer rows.Close()
	out := []cmdb.Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, pgsql.Classify(ctx, op, err, false)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, pgsql.Classify(ctx, op, err, false)
	}
	return out, nil
}

// Retire marks the record Retired, whatever its revision: RetiredAt and
// Updated now, Revision incremented. A retired record is returned
// unchanged; a missing one is NotFound.
func (c *CMDB) Retire(ctx context.Context, key cmdb.Key) (cmdb.Record, error) {
	const op = "pgcmdb.Retire"
	if err := errs.FromContext(ctx, op); err != nil {
		return cmdb.Record{}, err
	}
	if err := key.Validate(); err != nil {
		return cmdb.Record{}, errs.WrapOp(op, err)
	}
	r, err := scanRecord(c.db.QueryRow(ctx, `UPDATE cmdb_records SET state = 'retired',
			revision = revision + 1, updated = greatest(now(), updated), retired_at = greatest(now(), updated)
		WHERE provider = $1 AND vm_id = $2 AND state <> 'retired'
		RETURNING `+recordColumns, key.Provider, key.VMID))
	if err == nil {
		c.log.DebugContext(ctx, "pgcmdb: retire", "key", key.String(), "revision", r.Revision)
		return r, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return cmdb.Record{}, pgsql.Classify(ctx, op, err, true)
	}
	r, err = c.Get(ctx, key)
	if err != nil {
		return cmdb.Record{}, errs.WrapOp(op, err)
	}
	return r, nil
}
