// Package pgsql holds what managedvm's PostgreSQL drivers (ipam/pgipam,
// enroll/pgstore, cmdb/pgcmdb) share: the mapping of database errors to
// errs codes, and versioned schema migrations.
package pgsql

import (
	"context"
	"errors"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/certerr"
)

// PostgreSQL error codes the driver acts on.
const (
	UniqueViolation      = "23505"
	ForeignKeyViolation  = "23503"
	SerializationFailure = "40001"
	DeadlockDetected     = "40P01"
	QueryCanceled        = "57014"
)

// SQLState returns the SQLSTATE of a server error, or "".
func SQLState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Retryable reports a transaction the server rolled back because of
// concurrency: running it again is safe and may succeed.
func Retryable(err error) bool {
	s := SQLState(err)
	return s == SerializationFailure || s == DeadlockDetected
}

// Classify maps an error of the database to an errs code. write says that
// the failed call may have changed the database: if the server may have
// applied it (the request was sent and no answer came back), the error is
// OutcomeUnknown, never Unavailable.
func Classify(ctx context.Context, op string, err error, write bool) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// The server answered with an error: the statement (and an
		// autocommit transaction) was rolled back.
		switch {
		case pe.Code == UniqueViolation:
			return errs.Wrap(errs.AlreadyExists, op, err)
		case pe.Code == SerializationFailure || pe.Code == DeadlockDetected:
			return errs.Wrap(errs.Unavailable, op, err)
		case pe.Code == QueryCanceled && ctx.Err() != nil:
			return errs.Wrap(errs.CodeOf(ctx.Err()), op, err)
		case class(pe.Code) == "08" || class(pe.Code) == "57" || class(pe.Code) == "53":
			// connection exceptions, operator intervention (shutdown),
			// insufficient resources
			return errs.Wrap(errs.Unavailable, op, err)
		case class(pe.Code) == "22" || class(pe.Code) == "23":
			return errs.Wrap(errs.InvalidArgument, op, err)
		}
		return errs.Wrap(errs.Internal, op, err)
	}
	if certerr.Refused(err) {
		// sslmode verify-ca or verify-full refused the server's
		// certificate: retrying cannot help.
		return errs.Wrap(errs.PermissionDenied, op, err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		// No connection: nothing was sent.
		return errs.Wrap(errs.Unavailable, op, err)
	}
	// pgx calls an error safe to retry when the request was surely not
	// sent, except that a connection that broke while the answer was read
	// shows up as ErrConnClosed, marked safe: for a write that is unknown.
	if write && (!pgconn.SafeToRetry(err) || errors.Is(err, pgconn.ErrConnClosed)) {
		return errs.Wrap(errs.OutcomeUnknown, op, err)
	}
	if c := ctx.Err(); c != nil {
		return errs.Wrap(errs.CodeOf(c), op, err)
	}
	return errs.Wrap(errs.Unavailable, op, err)
}

// class returns the class (first two characters) of a SQLSTATE.
func class(code string) string {
	if len(code) < 2 {
		return code
	}
	return code[:2]
}

// Migration is one step of a schema.
type Migration struct {
	Version int
	SQL     string
}

// Migrate applies the migrations newer than the recorded version, in one
// transaction under a transaction-level advisory lock, so that processes
// migrating at once take turns and each version is applied exactly once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, op, table string, steps []Migration) error {
	if err := errs.FromContext(ctx, op); err != nil {
		return err
	}
	h := fnv.New64a()
	h.Write([]byte("managedvm:" + table))
	lock := int64(h.Sum64())
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+
				" (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"); err != nil {
				return err
			}
			var cur int
			if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+table).Scan(&cur); err != nil {
				return err
			}
			for _, m := range steps {
				if m.Version <= cur {
					continue
				}
				if _, err := tx.Exec(ctx, m.SQL); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (version) VALUES ($1)", m.Version); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && Retryable(err) && attempt < 5 {
			continue
		}
		// DDL in a transaction: on any failure nothing was applied,
		// except when the commit's answer was lost.
		return Classify(ctx, op, err, true)
	}
}
