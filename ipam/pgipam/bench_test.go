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

// BenchmarkAllocate measures new allocations per second from one /16 pool
// with 1, 4, 16 and 64 concurrent clients (one connection each), against
// the server in MANAGEDVM_PG_URL, and checks (outside the timer) that no
// address was handed out twice. b.N must stay within the pool: run it with
// -benchtime of at most 60000x.
func BenchmarkAllocate(b *testing.B) {
	for _, clients := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			m, _ := newIPAM(b, int32(clients))
			ctx := context.Background()
			p := ipam.Pool{Name: "bench", Prefix: netip.MustParsePrefix("10.20.0.0/16")}
			if err := m.CreatePool(ctx, p); err != nil {
				b.Fatal(err)
			}
			if b.N > 60000 {
				b.Fatalf("b.N = %d does not fit one /16: use -benchtime 60000x or less", b.N)
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
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
			as, err := m.Allocations(ctx, p.Name)
			if err != nil {
				b.Fatal(err)
			}
			seen := make(map[netip.Addr]string, len(as))
			for _, a := range as {
				if o, dup := seen[a.Address]; dup {
					b.Fatalf("address %s given to %s and %s", a.Address, o, a.Owner)
				}
				seen[a.Address] = a.Owner
			}
			if len(as) != b.N {
				b.Fatalf("%d allocations after %d Allocate calls", len(as), b.N)
			}
		})
	}
}
