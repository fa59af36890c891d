package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/pgsql"
	"github.com/managedvm/managedvm/provider"
)

// migrationsTable records the applied schema versions of this package.
const migrationsTable = "enroll_schema_migrations"

// migrations is the schema, version by version. Never edit a released
// version: add a new one.
var migrations = []pgsql.Migration{{Version: 1, SQL: `
-- One row per journal. body is the whole enroll.Journal as JSON (it holds
-- no secret: the orchestrator keeps only the guest user name); the columns
-- beside it are what the Store queries and enforces.
CREATE TABLE enroll_journals (
	id            text PRIMARY KEY,
	op            text NOT NULL,
	vm_provider   text NOT NULL,
	vm_id         text NOT NULL,
	phase         text NOT NULL,
	holder        text NOT NULL DEFAULT '',
	lease_expires timestamptz,
	revision      bigint NOT NULL CHECK (revision > 0),
	body          jsonb NOT NULL,
	created       timestamptz NOT NULL,
	updated       timestamptz NOT NULL
);
-- Per-VM exclusivity: at most one open journal per VM, across every
-- process sharing the database.
CREATE UNIQUE INDEX enroll_journals_one_open ON enroll_journals (vm_provider, vm_id)
	WHERE phase IN ('running', 'compensating');
CREATE INDEX enroll_journals_open_order ON enroll_journals (created, id)
	WHERE phase IN ('running', 'compensating');
-- The Indexer's watch cursors.
CREATE TABLE enroll_cursors (
	provider text PRIMARY KEY,
	cursor   text NOT NULL,
	updated  timestamptz NOT NULL
);
`}}

// The names of the unique indexes whose violations mean something.
const (
	idxJournalID = "enroll_journals_pkey"
	idxOneOpen   = "enroll_journals_one_open"
)

// Migrate creates or upgrades the Store's schema in the database (in the
// pool's search_path). It is idempotent and safe to run from several
// processes at once (they take turns on an advisory lock). New does not
// migrate: call Migrate when the host deploys or starts.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgsql.Migrate(ctx, pool, "pgstore.Migrate", migrationsTable, migrations)
}

// Options configures a Store. A nil *Options is ready to use.
type Options struct {
	// Logger receives the portable Store's Debug line per call and this
	// driver's revision conflicts and refused creations, at Debug level.
	// Nil discards.
	Logger *slog.Logger
	// TracerProvider and MeterProvider, when set, record a span and the
	// call metrics per Store call (see package enroll). Nil: none.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// driver is the enroll.StoreDriver in PostgreSQL.
type driver struct {
	db  *pgxpool.Pool
	log *slog.Logger
}

var (
	_ enroll.StoreDriver   = (*driver)(nil)
	_ enroll.JournalLister = (*driver)(nil)
)

// New returns an enroll.Store over the pool's database, whose schema
// Migrate has made. It is safe for concurrent use, and any number of
// orchestrators in any number of processes may share one database: that is
// where they coordinate. The caller keeps ownership of pool (and closes it;
// Store.Close leaves it open). Store.As reaches the pool: a
// **pgxpool.Pool target.
func New(pool *pgxpool.Pool, opts *Options) *enroll.Store {
	var o Options
	if opts != nil {
		o = *opts
	}
	return enroll.NewStore(NewDriver(pool, opts), &enroll.StoreOptions{Logger: o.Logger, TracerProvider: o.TracerProvider, MeterProvider: o.MeterProvider})
}

// NewDriver returns the bare driver, to put behind enroll.NewStore (or
// behind a wrapper of the host's own).
func NewDriver(pool *pgxpool.Pool, opts *Options) enroll.StoreDriver {
	d := &driver{db: pool}
	if opts != nil {
		d.log = opts.Logger
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d
}

// DriverName names the driver in telemetry.
func (s *driver) DriverName() string { return "pgstore" }

// As reaches the pool: target must be a **pgxpool.Pool.
func (s *driver) As(target any) bool {
	p, ok := target.(**pgxpool.Pool)
	if ok {
		*p = s.db
	}
	return ok
}

// body encodes j without the fields the columns own.
func body(j enroll.Journal) ([]byte, error) {
	j.Revision, j.Created, j.Updated = 0, time.Time{}, time.Time{}
	return json.Marshal(j)
}

func leaseArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

const journalColumns = `body, revision, created, updated`

func scanJournal(row pgx.Row) (enroll.Journal, error) {
	var (
		raw []byte
		j   enroll.Journal
		rev int64
		c   time.Time
		u   time.Time
	)
	if err := row.Scan(&raw, &rev, &c, &u); err != nil {
		return enroll.Journal{}, err
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return enroll.Journal{}, errs.Errorf(errs.Internal, "", "journal body: %w", err)
	}
	j.Revision, j.Created, j.Updated = rev, c, u
	return j, nil
}

// CreateJournal implements enroll.StoreDriver.
func (s *driver) CreateJournal(ctx context.Context, j enroll.Journal) (enroll.Journal, error) {
	b, err := body(j)
	if err != nil {
		return enroll.Journal{}, errs.Wrap(errs.Internal, "", err)
	}
	for attempt := 1; ; attempt++ {
		out, err := scanJournal(s.db.QueryRow(ctx, `INSERT INTO enroll_journals
			(id, op, vm_provider, vm_id, phase, holder, lease_expires, revision, body, created, updated)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, now(), now())
			RETURNING `+journalColumns,
			j.ID, string(j.Op), j.VM.Provider, j.VM.VMID, string(j.Phase), j.Holder, leaseArg(j.LeaseExpires), b))
		if err == nil {
			return out, nil
		}
		if pgsql.Retryable(err) && attempt < maxAttempts {
			continue
		}
		return enroll.Journal{}, s.uniqueError(ctx, j, err, true)
	}
}

// maxAttempts bounds the retries of a statement the server rolled back
// for a deadlock.
const maxAttempts = 10

// uniqueError turns a unique violation into ErrJournalExists or ErrVMBusy.
func (s *driver) uniqueError(ctx context.Context, j enroll.Journal, err error, create bool) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != pgsql.UniqueViolation {
		return pgsql.Classify(ctx, "", err, true)
	}
	if create {
		// Both can be true; the ID wins, as the memory Store does it.
		var exists bool
		if pe.ConstraintName == idxJournalID ||
			s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM enroll_journals WHERE id = $1)`, j.ID).Scan(&exists) == nil && exists {
			s.log.LogAttrs(ctx, slog.LevelDebug, "pgstore: journal exists", slog.String("journal", j.ID))
			return errs.Errorf(errs.AlreadyExists, "", "journal %s: %w", limit.Quote(j.ID), enroll.ErrJournalExists)
		}
	}
	if pe.ConstraintName == idxOneOpen {
		s.log.LogAttrs(ctx, slog.LevelDebug, "pgstore: VM busy", slog.String("journal", j.ID), slog.String("vm", j.VM.String()))
		return errs.Errorf(errs.AlreadyExists, "", "VM %s: %w", limit.Quote(j.VM.String()), enroll.ErrVMBusy)
	}
	return pgsql.Classify(ctx, "", err, true)
}

// GetJournal implements enroll.StoreDriver.
func (s *driver) GetJournal(ctx context.Context, id string) (enroll.Journal, error) {
	j, err := scanJournal(s.db.QueryRow(ctx, `SELECT `+journalColumns+` FROM enroll_journals WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return enroll.Journal{}, errs.Errorf(errs.NotFound, "", "no journal %s", limit.Quote(id))
	}
	if err != nil {
		return enroll.Journal{}, pgsql.Classify(ctx, "", err, false)
	}
	return j, nil
}

// UpdateJournal implements enroll.StoreDriver. The write is a compare-and-swap
// on the revision in one statement: of two writers holding the same
// revision, exactly one succeeds.
func (s *driver) UpdateJournal(ctx context.Context, j enroll.Journal) (enroll.Journal, error) {
	b, err := body(j)
	if err != nil {
		return enroll.Journal{}, errs.Wrap(errs.Internal, "", err)
	}
	for attempt := 1; ; attempt++ {
		out, err := scanJournal(s.db.QueryRow(ctx, `UPDATE enroll_journals SET
				phase = $6, holder = $7, lease_expires = $8, body = $9,
				revision = revision + 1, updated = greatest(now(), updated)
			WHERE id = $1 AND revision = $2 AND op = $3 AND vm_provider = $4 AND vm_id = $5
			RETURNING `+journalColumns,
			j.ID, j.Revision, string(j.Op), j.VM.Provider, j.VM.VMID,
			string(j.Phase), j.Holder, leaseArg(j.LeaseExpires), b))
		switch {
		case err == nil:
			return out, nil
		case pgsql.Retryable(err) && attempt < maxAttempts:
			continue
		case !errors.Is(err, pgx.ErrNoRows):
			return enroll.Journal{}, s.uniqueError(ctx, j, err, false)
		}
		// Nothing matched: say why.
		var (
			rev      int64
			jop, prv string
			vmid     string
		)
		err = s.db.QueryRow(ctx, `SELECT revision, op, vm_provider, vm_id FROM enroll_journals WHERE id = $1`, j.ID).
			Scan(&rev, &jop, &prv, &vmid)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return enroll.Journal{}, errs.Errorf(errs.NotFound, "", "no journal %s", limit.Quote(j.ID))
		case err != nil:
			return enroll.Journal{}, pgsql.Classify(ctx, "", err, false)
		case rev != j.Revision:
			s.log.LogAttrs(ctx, slog.LevelDebug, "pgstore: revision conflict", slog.String("journal", j.ID),
				slog.Int64("revision", j.Revision), slog.Int64("stored", rev))
			return enroll.Journal{}, errs.Errorf(errs.FailedPrecondition, "", "journal %s: revision %d, stored %d: %w",
				limit.Quote(j.ID), j.Revision, rev, enroll.ErrJournalConflict)
		case jop != string(j.Op) || prv != j.VM.Provider || vmid != j.VM.VMID:
			return enroll.Journal{}, errs.Errorf(errs.InvalidArgument, "", "journal %s: operation and VM cannot change", limit.Quote(j.ID))
		}
		// The revision matched by now: it changed and came back? It
		// cannot (revisions only grow); the row was rewritten between
		// the two statements. Try again.
		if attempt >= maxAttempts {
			return enroll.Journal{}, errs.Errorf(errs.Unavailable, "", "journal %s: lost %d races", limit.Quote(j.ID), attempt)
		}
	}
}

const openPhases = `phase IN ('running', 'compensating')`

// OpenJournals implements enroll.StoreDriver.
func (s *driver) OpenJournals(ctx context.Context) ([]enroll.Journal, error) {
	rows, err := s.db.Query(ctx, `SELECT `+journalColumns+` FROM enroll_journals WHERE `+openPhases+
		` ORDER BY created, id COLLATE "C"`)
	if err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	defer rows.Close()
	out := []enroll.Journal{}
	for rows.Next() {
		j, err := scanJournal(rows)
		if err != nil {
			return nil, pgsql.Classify(ctx, "", err, false)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	return out, nil
}

// OpenJournalFor implements enroll.StoreDriver.
func (s *driver) OpenJournalFor(ctx context.Context, vm cmdb.Key) (enroll.Journal, error) {
	j, err := scanJournal(s.db.QueryRow(ctx, `SELECT `+journalColumns+` FROM enroll_journals
		WHERE vm_provider = $1 AND vm_id = $2 AND `+openPhases, vm.Provider, vm.VMID))
	if errors.Is(err, pgx.ErrNoRows) {
		return enroll.Journal{}, errs.Errorf(errs.NotFound, "", "no open journal for %s", limit.Quote(vm.String()))
	}
	if err != nil {
		return enroll.Journal{}, pgsql.Classify(ctx, "", err, false)
	}
	return j, nil
}

// Journals implements enroll.JournalLister.
func (s *driver) Journals(ctx context.Context) ([]enroll.Journal, error) {
	rows, err := s.db.Query(ctx, `SELECT `+journalColumns+` FROM enroll_journals ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	defer rows.Close()
	out := []enroll.Journal{}
	for rows.Next() {
		j, err := scanJournal(rows)
		if err != nil {
			return nil, pgsql.Classify(ctx, "", err, false)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	return out, nil
}

// Cursor implements enroll.StoreDriver.
func (s *driver) Cursor(ctx context.Context, providerName string) (provider.Cursor, error) {
	var c string
	err := s.db.QueryRow(ctx, `SELECT cursor FROM enroll_cursors WHERE provider = $1`, providerName).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", errs.Errorf(errs.NotFound, "", "no cursor for provider %s", limit.Quote(providerName))
	}
	if err != nil {
		return "", pgsql.Classify(ctx, "", err, false)
	}
	return provider.Cursor(c), nil
}

// SetCursor implements enroll.StoreDriver.
func (s *driver) SetCursor(ctx context.Context, providerName string, c provider.Cursor) error {
	_, err := s.db.Exec(ctx, `INSERT INTO enroll_cursors (provider, cursor, updated) VALUES ($1, $2, now())
		ON CONFLICT (provider) DO UPDATE SET cursor = excluded.cursor, updated = excluded.updated`, providerName, string(c))
	return pgsql.Classify(ctx, "", err, true)
}
