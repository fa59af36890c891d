package main

import (
	"net/http"
	"strings"
	"testing"
)

// BenchmarkDevicesPage2000 renders the Devices page (GET /devices over
// HTTPS, a logged-in operator) with 2,000 VMs indexed from the simulated
// vCenter, and the rows fragment the page fetches on each live update.
// The goal is under 300 ms per page on this machine.
func BenchmarkDevicesPage2000(b *testing.B) {
	p := startPortal(b, func(y string) string {
		return strings.Replace(y, "      vms:\n", "      generate: {count: 2000}\n      vms:\n", 1)
	})
	c := p.client()
	p.login(c, "demo")
	if r := p.get(c, "/devices"); strings.Count(r.body, "<tr>") < 2004 {
		b.Fatalf("the page has %d rows, want 2,005 VMs", strings.Count(r.body, "<tr>")-1)
	}
	for _, bc := range []struct{ name, path string }{
		{"page", "/devices"},
		{"sorted-by-ip-desc", "/devices?sort=local_ip&desc=1"},
		{"filtered", "/devices?q=vm-01"},
		{"rows", "/devices/rows"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				r := p.get(c, bc.path)
				if r.status != http.StatusOK {
					b.Fatalf("%s: %d", bc.path, r.status)
				}
				n = len(r.body)
			}
			b.ReportMetric(float64(n), "bytes/page")
		})
	}
}
