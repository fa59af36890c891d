package pgipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/pgsql"
	"github.com/managedvm/managedvm/ipam"
)

// migrationsTable records the applied schema versions of this package.
const migrationsTable = "ipam_schema_migrations"

// migrations is the schema, version by version. Never edit a released
// version: add a new one.
var migrations = []pgsql.Migration{{Version: 1, SQL: `
CREATE TABLE ipam_pools (
	id        bigserial PRIMARY KEY,
	name      text NOT NULL UNIQUE,
	prefix    cidr NOT NULL CHECK (family(prefix) = 4),
	gateway   inet,
	size      bigint NOT NULL CHECK (size >= 0),
	-- The free-address cursor: slots below it have been handed out at
	-- least once. Slot i is the pool's i-th allocatable address.
	next_slot bigint NOT NULL DEFAULT 0 CHECK (next_slot >= 0 AND next_slot <= size),
	created   timestamptz NOT NULL DEFAULT now()
);
-- The reserved ranges as given (the pool's definition).
CREATE TABLE ipam_excluded (
	pool_id    bigint NOT NULL REFERENCES ipam_pools (id) ON DELETE CASCADE,
	seq        integer NOT NULL,
	first_addr inet NOT NULL,
	last_addr  inet NOT NULL,
	PRIMARY KEY (pool_id, seq)
);
-- Every excluded span of the prefix (network, broadcast, gateway, reserved
-- ranges; merged), to map a slot to its address: slot i is at offset
-- i + excluded_through of the last span with first_slot <= i.
CREATE TABLE ipam_spans (
	pool_id          bigint NOT NULL REFERENCES ipam_pools (id) ON DELETE CASCADE,
	first_slot       bigint NOT NULL,
	excluded_through bigint NOT NULL,
	PRIMARY KEY (pool_id, first_slot)
);
-- Allocations keyed by owner, with the NAT relation (address <-> local_ip).
-- The foreign key has no cascade: a pool with allocations cannot be deleted.
CREATE TABLE ipam_allocations (
	pool_id  bigint NOT NULL REFERENCES ipam_pools (id),
	owner    text NOT NULL,
	address  inet NOT NULL CHECK (family(address) = 4 AND masklen(address) = 32),
	local_ip inet,
	created  timestamptz NOT NULL,
	updated  timestamptz NOT NULL,
	PRIMARY KEY (pool_id, owner),
	UNIQUE (pool_id, address)
);
-- Released addresses, reused oldest first once the cursor reached the end.
CREATE TABLE ipam_free (
	pool_id bigint NOT NULL REFERENCES ipam_pools (id) ON DELETE CASCADE,
	address inet NOT NULL,
	seq     bigserial,
	PRIMARY KEY (pool_id, address)
);
CREATE INDEX ipam_free_order ON ipam_free (pool_id, seq);
`}}

// Migrate creates or upgrades the schema of the IPAM in the database (in
// the pool's search_path). It is idempotent and safe to run from several
// processes at once (they take turns on an advisory lock). New does not
// migrate: call Migrate when the host deploys or starts.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgsql.Migrate(ctx, pool, "pgipam.Migrate", migrationsTable, migrations)
}

// Options configures the PostgreSQL IPAM. A nil *Options is ready to use.
type Options struct {
	// Logger receives pool changes at Info level, allocations and releases
	// at Debug level and exhaustion at Warn level, and (through
	// ipam.Options.Logger) the Debug line of every call. Nil discards.
	Logger *slog.Logger
	// TracerProvider and MeterProvider are passed to the ipam.IPAM Open
	// returns (ipam.Options): spans, call metrics and pool gauges.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Driver is the PostgreSQL ipam.Driver. [Open] returns it inside an
// ipam.IPAM, whose As reaches it (a *Driver target) and the connection pool
// (a **pgxpool.Pool target); [NewDriver] returns it alone, for a host that
// wraps drivers. It is safe for concurrent use, and any number of drivers
// in any number of processes may share one database.
type Driver struct {
	db  *pgxpool.Pool
	log *slog.Logger
}

var _ ipam.Driver = (*Driver)(nil)

// Open returns an IPAM over the pool's database, after checking that
// Migrate has made its schema (FailedPrecondition if not, naming the
// versions; Unavailable if the database cannot be reached). The caller
// keeps ownership of pool (and closes it); Close of the IPAM leaves it
// open.
func Open(ctx context.Context, pool *pgxpool.Pool, opts *Options) (*ipam.IPAM, error) {
	const op = "pgipam.Open"
	if pool == nil {
		return nil, errs.New(errs.InvalidArgument, op, "no connection pool")
	}
	if err := errs.FromContext(ctx, op); err != nil {
		return nil, err
	}
	var version int
	err := pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+migrationsTable).Scan(&version)
	switch {
	case pgsql.SQLState(err) == undefinedTable:
		version = 0
	case err != nil:
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	if want := migrations[len(migrations)-1].Version; version < want {
		return nil, errs.Errorf(errs.FailedPrecondition, op, "the schema is at version %d, this package needs %d: run pgipam.Migrate", version, want)
	}
	var o ipam.Options
	if opts != nil {
		o = ipam.Options{Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider}
	}
	return ipam.New(NewDriver(pool, opts), &o), nil
}

// NewDriver returns the driver over the pool's database, whose schema
// Migrate has made, without checking it. Only opts.Logger is used: the
// telemetry options belong to ipam.New.
func NewDriver(pool *pgxpool.Pool, opts *Options) *Driver {
	m := &Driver{db: pool}
	if opts != nil {
		m.log = opts.Logger
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m
}

// As reaches the connection pool: a **pgxpool.Pool target.
func (m *Driver) As(target any) bool {
	if p, ok := target.(**pgxpool.Pool); ok {
		*p = m.db
		return true
	}
	return false
}

// undefinedTable is the SQLSTATE of a missing table.
const undefinedTable = "42P01"

// maxAttempts bounds the driver's own retries of a call that lost a race
// (a deadlock, or a concurrent allocation for the same owner).
const maxAttempts = 10

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// CreatePool adds a pool. Creating an identical pool (same prefix, gateway
// and reserved list) again is a no-op; a different pool under an existing
// name is AlreadyExists.
func (m *Driver) CreatePool(ctx context.Context, p ipam.Pool) error {
	var existing *ipam.Pool
	err := m.inTx(ctx, func(tx pgx.Tx) error {
		existing = nil
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO ipam_pools (name, prefix, gateway, size) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO NOTHING RETURNING id`,
			p.Name, p.Prefix, addrArg(p.Gateway), p.Size()).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			info, _, err := loadPool(ctx, tx, p.Name)
			if err != nil {
				return err
			}
			existing = &info.Pool
			return nil
		}
		if err != nil {
			return err
		}
		var b pgx.Batch
		for i, r := range p.Reserved {
			b.Queue(`INSERT INTO ipam_excluded (pool_id, seq, first_addr, last_addr) VALUES ($1, $2, $3, $4)`, id, i, r.From, r.To)
		}
		base := u32(p.Prefix.Masked().Addr())
		var cum uint32
		for _, r := range p.ExcludedRanges() {
			from, to := u32(r.From)-base, u32(r.To)-base
			first := from - cum
			cum += to - from + 1
			b.Queue(`INSERT INTO ipam_spans (pool_id, first_slot, excluded_through) VALUES ($1, $2, $3)`, id, int64(first), int64(cum))
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return pgsql.Classify(ctx, "", err, true)
	}
	if existing != nil {
		if existing.Equal(p) {
			return nil
		}
		return errs.Errorf(errs.AlreadyExists, "", "pool %s already exists with a different definition (prefix %s)",
			limit.Quote(p.Name), existing.Prefix)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "ipam: pool created",
		slog.String("pool", p.Name), slog.String("prefix", p.Prefix.String()), slog.Int("size", p.Size()))
	return nil
}

// inTx runs f in a transaction, again when the server rolled it back for
// a deadlock or a serialization failure.
func (m *Driver) inTx(ctx context.Context, f func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, m.db, f)
		if err != nil && pgsql.Retryable(err) && attempt < maxAttempts {
			continue
		}
		return err
	}
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const poolColumns = `p.id, p.name, p.prefix, p.gateway, p.size,
	(SELECT count(*) FROM ipam_allocations a WHERE a.pool_id = p.id),
	coalesce((SELECT array_agg(host(e.first_addr) || '-' || host(e.last_addr) ORDER BY e.seq)
		FROM ipam_excluded e WHERE e.pool_id = p.id), '{}')`

func scanPool(row pgx.Row) (ipam.PoolInfo, int64, error) {
	var (
		info     ipam.PoolInfo
		id       int64
		gw       *netip.Addr
		size     int64
		used     int64
		reserved []string
	)
	if err := row.Scan(&id, &info.Name, &info.Prefix, &gw, &size, &used, &reserved); err != nil {
		return ipam.PoolInfo{}, 0, err
	}
	if gw != nil {
		info.Gateway = *gw
	}
	for _, r := range reserved {
		from, to, _ := strings.Cut(r, "-")
		a, err1 := netip.ParseAddr(from)
		b, err2 := netip.ParseAddr(to)
		if err := errors.Join(err1, err2); err != nil {
			return ipam.PoolInfo{}, 0, fmt.Errorf("pool %s: bad reserved range %s: %w", limit.Quote(info.Name), limit.Quote(r), err)
		}
		info.Reserved = append(info.Reserved, ipam.Range{From: a, To: b})
	}
	info.Size, info.Used = int(size), int(used)
	return info, id, nil
}

// loadPool reads a pool by name; pgx.ErrNoRows if there is none.
func loadPool(ctx context.Context, q querier, name string) (ipam.PoolInfo, int64, error) {
	return scanPool(q.QueryRow(ctx, `SELECT `+poolColumns+` FROM ipam_pools p WHERE p.name = $1`, name))
}

// DeletePool removes an empty pool.
func (m *Driver) DeletePool(ctx context.Context, name string) error {
	inUse := func() error {
		return errs.Errorf(errs.FailedPrecondition, "", "pool %s still has allocated addresses", limit.Quote(name))
	}
	for attempt := 1; ; attempt++ {
		// A pool with allocations is left alone without its released
		// addresses being touched: the cascade would lock them all until
		// the foreign key refused, and allocations skip locked ones.
		tag, err := m.db.Exec(ctx, `DELETE FROM ipam_pools p WHERE name = $1
			AND NOT EXISTS (SELECT 1 FROM ipam_allocations a WHERE a.pool_id = p.id)`, name)
		switch {
		case pgsql.Retryable(err) && attempt < maxAttempts:
			continue
		case pgsql.SQLState(err) == pgsql.ForeignKeyViolation:
			// An allocation committed after the check: the foreign key
			// of ipam_allocations sees every committed allocation, so a
			// pool never goes with an address in it.
			return inUse()
		case err != nil:
			return pgsql.Classify(ctx, "", err, true)
		case tag.RowsAffected() == 0:
			var exists bool
			if err := m.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ipam_pools WHERE name = $1)`, name).Scan(&exists); err != nil {
				return pgsql.Classify(ctx, "", err, false)
			}
			if exists {
				return inUse()
			}
			return noPool(name)
		}
		m.log.LogAttrs(ctx, slog.LevelInfo, "ipam: pool deleted", slog.String("pool", name))
		return nil
	}
}

// Pool returns a pool and its usage.
func (m *Driver) Pool(ctx context.Context, name string) (ipam.PoolInfo, error) {
	info, _, err := loadPool(ctx, m.db, name)
	if errors.Is(err, pgx.ErrNoRows) {
		return ipam.PoolInfo{}, noPool(name)
	}
	if err != nil {
		return ipam.PoolInfo{}, pgsql.Classify(ctx, "", err, false)
	}
	return info, nil
}

// Pools lists every pool, by name.
func (m *Driver) Pools(ctx context.Context) ([]ipam.PoolInfo, error) {
	rows, err := m.db.Query(ctx, `SELECT `+poolColumns+` FROM ipam_pools p ORDER BY p.name COLLATE "C"`)
	if err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	defer rows.Close()
	out := []ipam.PoolInfo{}
	for rows.Next() {
		info, _, err := scanPool(rows)
		if err != nil {
			return nil, pgsql.Classify(ctx, "", err, false)
		}
		out = append(out, info)
	}
	if err := rows.Err(); err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	return out, nil
}

// allocColumns are the columns of an allocation, as scanAlloc reads them.
const allocColumns = `address, local_ip, created, updated`

func scanAlloc(row pgx.Row, pool, owner string) (ipam.Allocation, error) {
	a := ipam.Allocation{Pool: pool, Owner: owner}
	var local *netip.Addr
	if err := row.Scan(&a.Address, &local, &a.Created, &a.Updated); err != nil {
		return ipam.Allocation{}, err
	}
	if local != nil {
		a.LocalIP = *local
	}
	return a, nil
}

// The allocation statements. Each is one autocommit statement: the pool
// row is locked from the cursor's increment to the commit, inside the
// server, never across a round trip.
const (
	// sqlFromCursor takes the cursor's next slot and records the owner at
	// its address, computed from the spans. It returns no row when the
	// cursor has reached the end (or the pool is gone).
	sqlFromCursor = `
WITH s AS (
	UPDATE ipam_pools SET next_slot = next_slot + 1
	WHERE id = $1 AND next_slot < size
	RETURNING id, prefix, next_slot - 1 AS slot
)
INSERT INTO ipam_allocations (pool_id, owner, address, local_ip, created, updated)
SELECT s.id, $2, host(s.prefix)::inet + (s.slot + coalesce((
		SELECT x.excluded_through FROM ipam_spans x
		WHERE x.pool_id = s.id AND x.first_slot <= s.slot
		ORDER BY x.first_slot DESC LIMIT 1), 0)),
	$3, now(), now()
FROM s
RETURNING ` + allocColumns
	// sqlFromFree takes the oldest released address nobody else is taking.
	sqlFromFree = `
WITH f AS (
	DELETE FROM ipam_free WHERE pool_id = $1 AND address = (
		SELECT address FROM ipam_free WHERE pool_id = $1
		ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
	RETURNING pool_id, address
)
INSERT INTO ipam_allocations (pool_id, owner, address, local_ip, created, updated)
SELECT f.pool_id, $2, f.address, $3, now(), now() FROM f
RETURNING ` + allocColumns
)

// Allocate gives req.Owner an address from req.Pool, or returns the one it
// holds (recording req.LocalIP when it is set and differs). A full pool is
// ResourceExhausted.
func (m *Driver) Allocate(ctx context.Context, req ipam.Request) (ipam.Allocation, error) {
	pause := time.Millisecond
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if attempt > 2 {
			// Whatever won the last two races still holds what it
			// took (the released addresses, say): give it time.
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return ipam.Allocation{}, errs.FromContext(ctx, "")
			case <-t.C:
			}
			pause = min(2*pause, 50*time.Millisecond)
		}
		a, done, err := m.allocateOnce(ctx, req)
		if done || err != nil {
			return a, err
		}
	}
	return ipam.Allocation{}, errs.Errorf(errs.Unavailable, "", "owner %s in pool %s: lost %d races in a row", limit.Quote(req.Owner), limit.Quote(req.Pool), maxAttempts)
}

// allocateOnce tries once; done false means it lost a race and should be
// tried again.
func (m *Driver) allocateOnce(ctx context.Context, req ipam.Request) (ipam.Allocation, bool, error) {
	// The pool, and the owner's allocation if it holds one.
	var (
		id      int64
		cursor  bool // the cursor has not reached the end (it never goes back)
		held    *netip.Addr
		local   *netip.Addr
		created *time.Time
		updated *time.Time
	)
	err := m.db.QueryRow(ctx, `SELECT p.id, p.next_slot < p.size, a.address, a.local_ip, a.created, a.updated
		FROM ipam_pools p LEFT JOIN ipam_allocations a ON a.pool_id = p.id AND a.owner = $2
		WHERE p.name = $1`, req.Pool, req.Owner).Scan(&id, &cursor, &held, &local, &created, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return ipam.Allocation{}, true, noPool(req.Pool)
	}
	if err != nil {
		return ipam.Allocation{}, true, pgsql.Classify(ctx, "", err, false)
	}
	if held != nil {
		a := ipam.Allocation{Pool: req.Pool, Owner: req.Owner, Address: *held, Created: *created, Updated: *updated}
		if local != nil {
			a.LocalIP = *local
		}
		if !req.LocalIP.IsValid() || req.LocalIP == a.LocalIP {
			return a, true, nil
		}
		a, err = scanAlloc(m.db.QueryRow(ctx, `UPDATE ipam_allocations SET local_ip = $3, updated = greatest(now(), created)
			WHERE pool_id = $1 AND owner = $2 RETURNING `+allocColumns, id, req.Owner, req.LocalIP), req.Pool, req.Owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return ipam.Allocation{}, false, nil // released meanwhile
		}
		if err != nil {
			return ipam.Allocation{}, true, pgsql.Classify(ctx, "", err, true)
		}
		return a, true, nil
	}
	stmts := []string{sqlFromCursor, sqlFromFree}
	if !cursor {
		stmts = stmts[1:]
	}
	for _, stmt := range stmts {
		a, err := scanAlloc(m.db.QueryRow(ctx, stmt, id, req.Owner, addrArg(req.LocalIP)), req.Pool, req.Owner)
		switch {
		case err == nil:
			if m.log.Enabled(ctx, slog.LevelDebug) {
				m.log.LogAttrs(ctx, slog.LevelDebug, "ipam: address allocated", slog.String("pool", a.Pool),
					slog.String("owner", a.Owner), slog.String("address", a.Address.String()))
			}
			return a, true, nil
		case errors.Is(err, pgx.ErrNoRows):
			continue // nothing there: try the next source
		case pgsql.SQLState(err) == pgsql.UniqueViolation, pgsql.Retryable(err):
			// The owner got an address from a concurrent call (the
			// statement rolled back, the slot was not used): look again.
			return ipam.Allocation{}, false, nil
		case pgsql.SQLState(err) == pgsql.ForeignKeyViolation:
			return ipam.Allocation{}, true, noPool(req.Pool) // deleted meanwhile
		default:
			return ipam.Allocation{}, true, pgsql.Classify(ctx, "", err, true)
		}
	}
	// Neither the cursor nor the released addresses had one: full, unless
	// the pool went meanwhile, a concurrent call for the same owner took
	// the last address (then that is the owner's answer), or the released
	// addresses were all locked by other transactions (SKIP LOCKED): other
	// allocations that may yet roll back, or a DeletePool about to fail.
	var (
		size, used int64
		holds      bool
	)
	err = m.db.QueryRow(ctx, `SELECT size,
			EXISTS (SELECT 1 FROM ipam_allocations WHERE pool_id = $1 AND owner = $2),
			(SELECT count(*) FROM ipam_allocations WHERE pool_id = $1)
		FROM ipam_pools WHERE id = $1`, id, req.Owner).Scan(&size, &holds, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ipam.Allocation{}, true, noPool(req.Pool)
	case err != nil:
		return ipam.Allocation{}, true, pgsql.Classify(ctx, "", err, false)
	case holds, used < size:
		return ipam.Allocation{}, false, nil
	}
	m.log.LogAttrs(ctx, slog.LevelWarn, "ipam: pool exhausted",
		slog.String("pool", req.Pool), slog.String("owner", req.Owner), slog.Int64("size", size))
	return ipam.Allocation{}, true, errs.Errorf(errs.ResourceExhausted, "",
		"pool %s is exhausted: all %d addresses are allocated", limit.Quote(req.Pool), size)
}

// Release frees the owner's address. Releasing what is not held is not an
// error; an unknown pool is NotFound.
func (m *Driver) Release(ctx context.Context, pool, owner string) error {
	for attempt := 1; ; attempt++ {
		var (
			found bool
			addr  *netip.Addr
		)
		err := m.db.QueryRow(ctx, `
WITH p AS (SELECT id FROM ipam_pools WHERE name = $1),
d AS (
	DELETE FROM ipam_allocations a USING p WHERE a.pool_id = p.id AND a.owner = $2
	RETURNING a.pool_id, a.address
),
f AS (INSERT INTO ipam_free (pool_id, address) SELECT pool_id, address FROM d)
SELECT EXISTS (SELECT 1 FROM p), (SELECT address FROM d)`, pool, owner).Scan(&found, &addr)
		switch {
		case pgsql.Retryable(err) && attempt < maxAttempts:
			continue
		case err != nil:
			return pgsql.Classify(ctx, "", err, true)
		case !found:
			return noPool(pool)
		}
		if addr != nil && m.log.Enabled(ctx, slog.LevelDebug) {
			m.log.LogAttrs(ctx, slog.LevelDebug, "ipam: address released", slog.String("pool", pool),
				slog.String("owner", owner), slog.String("address", addr.String()))
		}
		return nil
	}
}

// SetLocalIP records the owner's new local address; the zero netip.Addr
// clears it. An owner that holds no address is NotFound.
func (m *Driver) SetLocalIP(ctx context.Context, pool, owner string, local netip.Addr) (ipam.Allocation, error) {
	// Updated moves only when the local address changes.
	row := m.db.QueryRow(ctx, `
WITH p AS (SELECT id FROM ipam_pools WHERE name = $1),
u AS (
	UPDATE ipam_allocations a SET local_ip = $3, updated = greatest(now(), a.created)
	FROM p WHERE a.pool_id = p.id AND a.owner = $2 AND a.local_ip IS DISTINCT FROM $3::inet
	RETURNING a.address, a.local_ip, a.created, a.updated
),
cur AS (
	SELECT a.address, a.local_ip, a.created, a.updated FROM ipam_allocations a, p
	WHERE a.pool_id = p.id AND a.owner = $2
)
SELECT EXISTS (SELECT 1 FROM p), x.address, x.local_ip, x.created, x.updated
FROM (SELECT * FROM u UNION ALL SELECT * FROM cur WHERE NOT EXISTS (SELECT 1 FROM u)) x
RIGHT JOIN (SELECT 1) one ON true`, pool, owner, addrArg(local))
	return lookupResult(ctx, pool, owner, row, true)
}

// lookupResult reads a row of (pool exists, address, local_ip, created,
// updated), the allocation columns NULL when the owner holds nothing.
func lookupResult(ctx context.Context, pool, owner string, row pgx.Row, write bool) (ipam.Allocation, error) {
	var (
		found   bool
		addr    *netip.Addr
		local   *netip.Addr
		created *time.Time
		updated *time.Time
	)
	err := row.Scan(&found, &addr, &local, &created, &updated)
	switch {
	case err != nil:
		return ipam.Allocation{}, pgsql.Classify(ctx, "", err, write)
	case !found:
		return ipam.Allocation{}, noPool(pool)
	case addr == nil:
		return ipam.Allocation{}, notHeld(pool, owner)
	}
	a := ipam.Allocation{Pool: pool, Owner: owner, Address: *addr, Created: *created, Updated: *updated}
	if local != nil {
		a.LocalIP = *local
	}
	return a, nil
}

// Lookup returns the owner's allocation, or NotFound.
func (m *Driver) Lookup(ctx context.Context, pool, owner string) (ipam.Allocation, error) {
	row := m.db.QueryRow(ctx, `SELECT true, a.address, a.local_ip, a.created, a.updated
		FROM ipam_pools p LEFT JOIN ipam_allocations a ON a.pool_id = p.id AND a.owner = $2
		WHERE p.name = $1
		UNION ALL SELECT false, NULL, NULL, NULL, NULL
		WHERE NOT EXISTS (SELECT 1 FROM ipam_pools WHERE name = $1)`, pool, owner)
	return lookupResult(ctx, pool, owner, row, false)
}

// LookupAddress returns the allocation of a public address, or NotFound.
// The zero address is InvalidArgument.
func (m *Driver) LookupAddress(ctx context.Context, pool string, addr netip.Addr) (ipam.Allocation, error) {
	var (
		found   bool
		owner   *string
		local   *netip.Addr
		created *time.Time
		updated *time.Time
	)
	var arg any = addr
	if !addr.Is4() {
		arg = nil // pools are IPv4 only: an IPv6 (or IPv4-mapped) address is never allocated
	}
	err := m.db.QueryRow(ctx, `SELECT true, a.owner, a.local_ip, a.created, a.updated
		FROM ipam_pools p LEFT JOIN ipam_allocations a ON a.pool_id = p.id AND a.address = $2::inet
		WHERE p.name = $1
		UNION ALL SELECT false, NULL, NULL, NULL, NULL
		WHERE NOT EXISTS (SELECT 1 FROM ipam_pools WHERE name = $1)`, pool, arg).Scan(&found, &owner, &local, &created, &updated)
	switch {
	case err != nil:
		return ipam.Allocation{}, pgsql.Classify(ctx, "", err, false)
	case !found:
		return ipam.Allocation{}, noPool(pool)
	case owner == nil:
		return ipam.Allocation{}, errs.Errorf(errs.NotFound, "", "%s is not allocated in pool %s", addr, limit.Quote(pool))
	}
	a := ipam.Allocation{Pool: pool, Owner: *owner, Address: addr, Created: *created, Updated: *updated}
	if local != nil {
		a.LocalIP = *local
	}
	return a, nil
}

// Allocations lists a pool's allocations ordered by address.
func (m *Driver) Allocations(ctx context.Context, pool string) ([]ipam.Allocation, error) {
	// One statement, one snapshot: the pool's existence and its
	// allocations agree.
	rows, err := m.db.Query(ctx, `SELECT a.owner, a.address, a.local_ip, a.created, a.updated
		FROM ipam_pools p LEFT JOIN ipam_allocations a ON a.pool_id = p.id
		WHERE p.name = $1 ORDER BY a.address NULLS FIRST`, pool)
	if err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	defer rows.Close()
	found := false
	out := []ipam.Allocation{}
	for rows.Next() {
		found = true
		var (
			owner   *string
			a       ipam.Allocation
			addr    *netip.Addr
			local   *netip.Addr
			created *time.Time
			updated *time.Time
		)
		if err := rows.Scan(&owner, &addr, &local, &created, &updated); err != nil {
			return nil, pgsql.Classify(ctx, "", err, false)
		}
		if owner == nil {
			continue // the pool's row, without allocations
		}
		a = ipam.Allocation{Pool: pool, Owner: *owner, Address: *addr, Created: *created, Updated: *updated}
		if local != nil {
			a.LocalIP = *local
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, pgsql.Classify(ctx, "", err, false)
	}
	if !found {
		return nil, noPool(pool)
	}
	return out, nil
}

// noPool is the NotFound error for a pool that does not exist.
func noPool(name string) error {
	return errs.Errorf(errs.NotFound, "", "no pool %s", limit.Quote(name))
}

// notHeld is the NotFound error for an owner that holds no address.
func notHeld(pool, owner string) error {
	return errs.Errorf(errs.NotFound, "", "owner %s holds no address in pool %s", limit.Quote(owner), limit.Quote(pool))
}
