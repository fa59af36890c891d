// Package testenv decides what level-3 tests do when a real component (sshd,
// PostgreSQL, ansible-playbook, nftables, root) is missing: skip with a
// message naming it on a developer's machine, fail under CI=true, where
// .ci/run has installed everything.
package testenv
