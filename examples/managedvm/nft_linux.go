package main

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"

	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/nftables"
)

const nftablesSupported = true

// newNFTables is the firewall driver of this Linux host's kernel.
func newNFTables(c *NFTablesConfig, log *slog.Logger, mp metric.MeterProvider) (*natfw.Firewall, error) {
	o := &nftables.Options{Logger: log, MeterProvider: mp}
	if c != nil {
		o.Table, o.NetNSPath, o.WANInterface = c.Table, c.NetNSPath, c.WANInterface
		o.ManagePublicAddress, o.LockDir = c.ManagePublicAddress, c.LockDir
	}
	return nftables.New(o)
}
