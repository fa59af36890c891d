package pgipam_test

import (
	"testing"

	"github.com/managedvm/managedvm/internal/pgsql/pgtest"
	"github.com/managedvm/managedvm/ipam/pgipam"
)

// TestMigrateConcurrentAndIdempotent: eight processes' worth of pools
// migrate one empty schema at once; each version is applied once, and
// migrating again changes nothing.
func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	pgtest.CheckMigrate(t, pgipam.Migrate, "ipam_schema_migrations")
}
