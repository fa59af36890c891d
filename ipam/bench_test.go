package ipam_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/managedvm/managedvm/ipam"
)

// constDriver answers Allocate at once, so that BenchmarkPortableAllocate
// measures the portable layer alone.
type constDriver struct{ ipam.Driver }

func (constDriver) Allocate(_ context.Context, req ipam.Request) (ipam.Allocation, error) {
	return ipam.Allocation{Pool: req.Pool, Owner: req.Owner, Address: netip.AddrFrom4([4]byte{203, 0, 113, 7})}, nil
}

// BenchmarkPortableAllocate: the cost of the portable layer (checks,
// validation of a pool name and a 52-byte owner, the call bookkeeping)
// around a driver that does nothing; "direct" calls the driver itself.
func BenchmarkPortableAllocate(b *testing.B) {
	ctx := context.Background()
	req := ipam.Request{Pool: "bench", Owner: "vsphere-prod/42110000-9c3e-5e6b-8f0a-000000000001"}
	b.Run("direct", func(b *testing.B) {
		var d ipam.Driver = constDriver{}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Allocate(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("portable", func(b *testing.B) {
		m := ipam.New(constDriver{}, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Allocate(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("validate", func(b *testing.B) {
		for b.Loop() {
			if err := req.Validate(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
