package vcd_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmware/go-vcloud-director/v2/util"

	"github.com/managedvm/managedvm/internal/fakes/vcd"
)

func addVMs(tb testing.TB, s *vcd.Server, n int) {
	tb.Helper()
	for i := range n {
		if _, err := s.AddVM(vcd.VMSpec{Name: fmt.Sprintf("vm-%05d", i), CPUs: 2, MemoryMB: 4096, PoweredOn: i%3 != 0, Tools: true}); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkQueryList2000VMs lists 2,000 VMs through the query service
// with the SDK, 128 records per page (VCD's default maximum), with no
// added latency and with 1 ms per request; "resplog=off" turns off the
// SDK's response-text processing (util.LogHttpResponse, on by default:
// it runs its password-masking regular expressions over every body even
// when nothing is logged).
func BenchmarkQueryList2000VMs(b *testing.B) {
	for _, lat := range []time.Duration{0, time.Millisecond} {
		for _, off := range []bool{false, true} {
			b.Run(fmt.Sprintf("latency=%v/resplog=%s", lat, map[bool]string{false: "on", true: "off"}[off]), func(b *testing.B) {
				saved := util.LogHttpResponse
				util.LogHttpResponse = !off
				defer func() { util.LogHttpResponse = saved }()
				benchList(b, lat)
			})
		}
	}
}

func benchList(b *testing.B, lat time.Duration) {
	{
		{
			s := start(b, nil)
			addVMs(b, s, 2000)
			c := login(b, s)
			s.SetLatency(lat)
			s.ResetCounts()
			b.ResetTimer()
			for b.Loop() {
				if got := len(queryVMs(b, c, "isVAppTemplate==false")); got != 2000 {
					b.Fatalf("listed %d", got)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(s.Requests("GET /api/query"))/float64(b.N), "requests/op")
		}
	}
}

// TestScaleFiveThousandVMs keeps adding and listing thousands of VMs quick.
func TestScaleFiveThousandVMs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a timing check: skipped with -short and -race")
	}
	s := start(t, nil)
	t0 := time.Now()
	addVMs(t, s, 5000)
	add := time.Since(t0)
	c := login(t, s)
	t0 = time.Now()
	if got := len(queryVMs(t, c, "isVAppTemplate==false")); got != 5000 {
		t.Fatalf("listed %d", got)
	}
	t.Logf("added 5,000 VMs in %v, listed them in %v (%d query pages)", add, time.Since(t0), s.Requests("GET /api/query"))
}
