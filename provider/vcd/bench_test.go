package vcd_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	fakevcd "github.com/managedvm/managedvm/internal/fakes/vcd"
)

// BenchmarkList2000VMs: List of 2,000 VMs through the query service
// (pages of 128) beside reading each VM by id, with 1 ms added to every
// request. requests/op is what one op sends.
func BenchmarkList2000VMs(b *testing.B) {
	w := newWorld(b, nil, nil)
	for i := range 2000 {
		if _, err := w.s.AddVM(fakevcd.VMSpec{Name: fmt.Sprintf("b-%04d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	vms, err := w.pp.List(context.Background(), nil)
	if err != nil || len(vms) != 2000 {
		b.Fatalf("%d VMs, %v", len(vms), err)
	}
	w.s.SetLatency(time.Millisecond)
	b.Run("List", func(b *testing.B) {
		w.s.ResetCounts()
		for b.Loop() {
			if _, err := w.pp.List(context.Background(), nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(w.s.TotalRequests())/float64(b.N), "requests/op")
	})
	b.Run("GetEach", func(b *testing.B) {
		w.s.ResetCounts()
		for b.Loop() {
			for _, vm := range vms {
				if _, err := w.pp.Get(context.Background(), vm.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(w.s.TotalRequests())/float64(b.N), "requests/op")
	})
}

// BenchmarkEnsureNAT16: 16 owners change their rules at once on one
// gateway (1 ms per request, each gateway write holding the gateway for
// 2 ms); p50 and p99 of one EnsureNAT.
func BenchmarkEnsureNAT16(b *testing.B) {
	s := fakevcd.New(&fakevcd.Options{GatewayTaskDuration: 2 * time.Millisecond})
	b.Cleanup(s.Close)
	fw := newEdge(b, s)
	s.SetLatency(time.Millisecond)
	var mu sync.Mutex
	var lat []time.Duration
	round := 0
	for b.Loop() {
		round++
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				r := edgeRule(i)
				r.Sources = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(round)}), 32)}
				t0 := time.Now()
				if err := fw.EnsureNAT(context.Background(), r); err != nil {
					b.Error(err)
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(s.TotalRequests())/float64(16*b.N), "requests/EnsureNAT")
}
