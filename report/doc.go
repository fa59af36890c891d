// Package report is the vocabulary of requirement checks, shared by
// provider preflight, template checks, guest OS requirements and (as they
// come) network requirement probes: a Report is a list of Check rows, each
// pass, warn or fail, with what was found and how to fix it.
//
// It is a leaf package (it imports only the standard library), so every
// layer, drivers included, can produce reports without importing the
// packages that compose them.
package report
