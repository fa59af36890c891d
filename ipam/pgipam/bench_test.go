package pgipam_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/managedvm/managedvm/ipam"
)

// BenchmarkAllocate measures new allocations per second from one pool with
// 1, 4 and 16 concurrent clients (one connection each), against the
// server in MANAGEDVM_PG_URL.
func BenchmarkAllocate(b *testing.B) {
	for _, clients := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			m, _ := newIPAM(b, int32(clients))
			ctx := context.Background()
			p := ipam.Pool{Name: "bench", Prefix: netip.MustParsePrefix("10.0.0.0/8")}
			if err := m.CreatePool(ctx, p); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: fmt.Sprint("vm-", i)}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
		})
	}
}
