package obs

import (
	"context"
	"testing"
)

var sinkErr error

// BenchmarkCallOff is the cost of Start and End around a call when
// nothing is recorded (no logger, tracer or meter): what every portable
// type's method pays on top of its checks and its driver.
func BenchmarkCallOff(b *testing.B) {
	in := New("bench", "nop", Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		cctx, c := in.Start(ctx, "bench.Call")
		sinkErr = c.End(cctx, nil)
	}
}
