package pgstore_test

import (
	"testing"

	"github.com/managedvm/managedvm/enroll/pgstore"
	"github.com/managedvm/managedvm/internal/pgsql/pgtest"
)

// TestMigrateConcurrentAndIdempotent: eight processes' worth of pools
// migrate one empty schema at once; each version is applied once, and
// migrating again changes nothing.
func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	pgtest.CheckMigrate(t, pgstore.Migrate, "enroll_schema_migrations")
}
