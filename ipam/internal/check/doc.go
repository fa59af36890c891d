// Package check holds the argument checks and not-found errors that the
// IPAM drivers (memipam, pgipam) share, so that they word and code them
// alike.
package check
