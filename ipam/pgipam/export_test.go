package pgipam

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/internal/pgsql"
)

// MigrateTo applies the migrations up to version (for upgrade tests).
func MigrateTo(ctx context.Context, pool *pgxpool.Pool, version int) error {
	var ms []pgsql.Migration
	for _, m := range migrations {
		if m.Version <= version {
			ms = append(ms, m)
		}
	}
	return pgsql.Migrate(ctx, pool, "pgipam.MigrateTo", migrationsTable, ms)
}
