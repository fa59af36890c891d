// Package e2e holds managedvm's end-to-end scale benchmark (issue 25,
// benchmark 3): BenchmarkEnrollEndToEnd enrolls many VMs of a simulated
// vCenter (provider/vsphere/vspheresim) through two orchestrator
// processes sharing PostgreSQL (pgipam, pgstore, pgcmdb), an nftables
// table in a network namespace, and one real OpenSSH sshd that every VM's
// address is dialled to. The package has no code of its own: see
// e2e_test.go for what is measured and checked, and README's Performance
// section for the figures.
//
// The benchmark needs what .ci/run starts (MANAGEDVM_PG_URL, the
// MANAGEDVM_SSHD_* variables, root with network namespaces); without one
// it skips naming it. With -short it enrolls 50 VMs instead of 1,000.
package e2e
