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

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
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
	// Logger receives revision conflicts and refused creations at Debug
	// level. Nil discards.
	Logger *slog.Logger
}

// Store is an enroll.Store in PostgreSQL. Create it with [New]. It is safe
// for concurrent use, and any number of orchestrators in any number of
// processes may share one database: that is where they coordinate.
type Store struct {
	db  *pgxpool.Pool
	log *slog.Logger
}

var _ enroll.Store = (*Store)(nil)

// New returns a Store over the pool's database, whose schema Migrate has
// made. The caller keeps ownership of pool (and closes it).
func New(pool *pgxpool.Pool, opts *Options) *Store {
	s := &Store{db: pool}
	if opts != nil {
		s.log = opts.Logger
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

func validJournal(op string, j enroll.Journal) error {
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
		return enroll.Journal{}, errs.Errorf(errs.Internal, "pgstore", "journal body: %w", err)
	}
	j.Revision, j.Created, j.Updated = rev, c, u
	return j, nil
}

// CreateJournal implements enroll.Store.
func (s *Store) CreateJournal(ctx context.Context, j enroll.Journal) (enroll.Journal, error) {
	const op = "pgstore.CreateJournal"
	if err := errs.FromContext(ctx, op); err != nil {
		return enroll.Journal{}, err
	}
	if err := validJournal(op, j); err != nil {
		return enroll.Journal{}, err
	}
	if j.Revision != 0 {
		return enroll.Journal{}, errs.Errorf(errs.InvalidArgument, op, "journal %s: a new journal has revision 0", j.ID)
	}
	b, err := body(j)
	if err != nil {
		return enroll.Journal{}, errs.Wrap(errs.InvalidArgument, op, err)
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
		return enroll.Journal{}, s.uniqueError(ctx, op, j, err, true)
	}
}

// maxAttempts bounds the retries of a statement the server rolled back
// for a deadlock.
const maxAttempts = 10

// uniqueError turns a unique violation into ErrJournalExists or ErrVMBusy.
func (s *Store) uniqueError(ctx context.Context, op string, j enroll.Journal, err error, create bool) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != pgsql.UniqueViolation {
		return pgsql.Classify(ctx, op, err, true)
	}
	if create {
		// Both can be true; the ID wins, as the memory Store does it.
		var exists bool
		if pe.ConstraintName == idxJournalID ||
			s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM enroll_journals WHERE id = $1)`, j.ID).Scan(&exists) == nil && exists {
			s.log.LogAttrs(ctx, slog.LevelDebug, "pgstore: journal exists", slog.String("journal", j.ID))
			return errs.Errorf(errs.AlreadyExists, op, "journal %s: %w", j.ID, enroll.ErrJournalExists)
		}
	}
	if pe.ConstraintName == idxOneOpen {
		s.log.LogAttrs(ctx, slog.LevelDebug, "pgstore: VM busy", slog.String("journal", j.ID), slog.String("vm", j.VM.String()))
		return errs.Errorf(errs.AlreadyExists, op, "VM %s: %w", j.VM, enroll.ErrVMBusy)
	}
	return pgsql.Classify(ctx, op, err, true)
}

// GetJournal implements enroll.Store.
func (s *Store) GetJournal(ctx context.Context, id string) (enroll.Journal, error) {
	const op = "pgstore.GetJournal"
	if err := errs.FromContext(ctx, op); err != nil {
		return enroll.Journal{}, err
	}
	j, err := scanJournal(s.db.QueryRow(ctx, `SELECT `+journalColumns+` FROM enroll_journals WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return enroll.Journal{}, errs.Errorf(errs.NotFound, op, "no journal %q", id)
	}
	if err != nil {
		return enroll.Journal{}, pgsql.Classify(ctx, op, err, false)
	}
	return j, nil
}

// UpdateJournal implements enroll.Store. The write is a compare-and-swap
// on the revision in one statement: of two writers holding the same
// revision, exactly one succeeds.
func (s *Store) UpdateJournal(ctx context.Context, j enroll.Journal) (enroll.Journal, error) {
	const op = "pgstore.UpdateJournal"
	if err := errs.FromContext(ctx, op); err != nil {
		return enroll.Journal{}, err
	}
	if err := validJournal(op, j); err != nil {
		return enroll.Journal{}, err
	}
	b, err := body(j)
	if err != nil {
		return enroll.Journal{}, errs.Wrap(errs.InvalidArgument, op, err)
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
			return enroll.Journal{}, s.uniqueError(ctx, op, j, err, false)
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
			return enroll.Journal{}, errs.Errorf(errs.NotFound, op, "no journal %q", j.ID)
		case err != nil:
			return enroll.Journal{}, pgsql.Classify(ctx, op, err, false)
		case rev != j.Revision:
			s.log.LogAttrs(ctx, slog.LevelDebug, "pgstore: revision conflict", slog.String("journal", j.ID),
				slog.Int64("revision", j.Revision), slog.Int64("stored", rev))
			return enroll.Journal{}, errs.Errorf(errs.FailedPrecondition, op, "journal %s: revision %d, stored %d: %w",
				j.ID, j.Revision, rev, enroll.ErrJournalConflict)
		case jop != string(j.Op) || prv != j.VM.Provider || vmid != j.VM.VMID:
			return enroll.Journal{}, errs.Errorf(errs.InvalidArgument, op, "journal %s: operation and VM cannot change", j.ID)
		}
		// The revision matched by now: it changed and came back? It
		// cannot (revisions only grow); the row was rewritten between
		// the two statements. Try again.
		if attempt >= maxAttempts {
			return enroll.Journal{}, errs.Errorf(errs.Unavailable, op, "journal %s: lost %d races", j.ID, attempt)
		}
	}
}

const openPhases = `phase IN ('running', 'compensating')`

// OpenJournals implements enroll.Store.
func (s *Store) OpenJournals(ctx context.Context) ([]enroll.Journal, error) {
	const op = "pgstore.OpenJournals"
	if err := errs.FromContext(ctx, op); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+journalColumns+` FROM enroll_journals WHERE `+openPhases+
		` ORDER BY created, id COLLATE "C"`)
	if err != nil {
		return nil, pgsql.Classify(ctx, op, err, false)
	}
	defer rows.Close()
	out := []enroll.Journal{}
	for rows.Next() {
		j, err := scanJournal(rows)
		if err != nil {
			return nil, pgsql.Classify(ctx, op, err, false)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, pgsql.Classify(ctx, op, err, false)
	}
	return out, nil
}

// OpenJournalFor implements enroll.Store.
func (s *Store) OpenJournalFor(ctx context.Context, vm cmdb.Key) (enroll.Journal, error) {
	const op = "pgstore.OpenJournalFor"
	if err := errs.FromContext(ctx, op); err != nil {
		return enroll.Journal{}, err
	}
	j, err := scanJournal(s.db.QueryRow(ctx, `SELECT `+journalColumns+` FROM enroll_journals
		WHERE vm_provider = $1 AND vm_id = $2 AND `+openPhases, vm.Provider, vm.VMID))
	if errors.Is(err, pgx.ErrNoRows) {
		return enroll.Journal{}, errs.Errorf(errs.NotFound, op, "no open journal for %s", vm)
	}
	if err != nil {
		return enroll.Journal{}, pgsql.Classify(ctx, op, err, false)
	}
	return j, nil
}

// Journals returns every journal, open and closed, ordered by ID (for
// tests and inspection).
func (s *Store) Journals(ctx context.Context) ([]enroll.Journal, error) {
	const op = "pgstore.Journals"
	if err := errs.FromContext(ctx, op); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+journalColumns+` FROM enroll_journals ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, pgsql.Classify(ctx, op, err, false)
	}
	defer rows.Close()
	out := []enroll.Journal{}
	for rows.Next() {
		j, err := scanJournal(rows)
		if err != nil {
			return nil, pgsql.Classify(ctx, op, err, false)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, pgsql.Classify(ctx, op, err, false)
	}
	return out, nil
}

// Cursor implements enroll.Store.
func (s *Store) Cursor(ctx context.Context, providerName string) (provider.Cursor, error) {
	const op = "pgstore.Cursor"
	if err := errs.FromContext(ctx, op); err != nil {
		return "", err
	}
	var c string
	err := s.db.QueryRow(ctx, `SELECT cursor FROM enroll_cursors WHERE provider = $1`, providerName).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", errs.Errorf(errs.NotFound, op, "no cursor for provider %q", providerName)
	}
	if err != nil {
		return "", pgsql.Classify(ctx, op, err, false)
	}
	return provider.Cursor(c), nil
}

// SetCursor implements enroll.Store.
func (s *Store) SetCursor(ctx context.Context, providerName string, c provider.Cursor) error {
	const op = "pgstore.SetCursor"
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	if providerName == "" {
		return errs.New(errs.InvalidArgument, op, "no provider name")
	}
	_, err := s.db.Exec(ctx, `INSERT INTO enroll_cursors (provider, cursor, updated) VALUES ($1, $2, now())
		ON CONFLICT (provider) DO UPDATE SET cursor = excluded.cursor, updated = excluded.updated`, providerName, string(c))
	return pgsql.Classify(ctx, op, err, true)
}
