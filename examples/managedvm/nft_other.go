//go:build !linux

package main

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
)

const nftablesSupported = false

// newNFTables refuses: natfw/nftables is Linux only (the configuration
// check says so first).
func newNFTables(*NFTablesConfig, *slog.Logger, metric.MeterProvider) (*natfw.Firewall, error) {
	return nil, errs.New(errs.Unimplemented, "", "firewall driver nftables runs on Linux only")
}
