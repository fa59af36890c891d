// Package testenv decides what level-3 tests do when a real component (sshd,
// PostgreSQL, ansible-playbook, nftables, root) is missing: skip with a
// message naming it on a developer's machine, fail under CI=true, where
// .ci/run has installed everything.
//
// A package whose tests call Missing or Env runs them through Main from its
// TestMain, which prints after the tests one line per missing component,
// so that skipped tests never pass for run ones unseen:
//
//	pgcmdb: 14 tests skipped: no PostgreSQL; set MANAGEDVM_PG_URL to a PostgreSQL URL (bash .ci/run starts a server).
package testenv
