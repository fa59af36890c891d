package ovirt_test

import (
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	ovirtsdk "github.com/ovirt/go-ovirt"

	fakeovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
	"github.com/managedvm/managedvm/provider"
)

// sdkConn is go-ovirt's own connection to the fake (keep-alives off, as
// go-ovirt builds its transport).
func sdkConn(b *testing.B, s *fakeovirt.Server) *ovirtsdk.Connection {
	b.Helper()
	c, err := ovirtsdk.NewConnectionBuilder().URL(s.URL()).Username(s.User()).Password(s.Password()).CACert(s.CACertPEM()).Build()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// BenchmarkList2000 lists 2,000 VMs with 1 ms added to every answer: the
// driver (pages of 100 with reported devices and NICs inlined, one
// keep-alive connection pool) beside the per-VM loop go-ovirt-client
// does (pages, then one reported-devices call per VM, over go-ovirt's
// Connection). Reported per op: round trips, TLS connections, and for
// the driver the heap retained per listed VM.
func BenchmarkList2000(b *testing.B) {
	w := newWorld(b, nil, nil)
	if _, err := w.s.AddVMs("bench", 2000); err != nil {
		b.Fatal(err)
	}
	w.s.SetLatency(time.Millisecond)
	b.Run("driver", func(b *testing.B) {
		var retained uint64
		st0 := w.s.Stats()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			b.StartTimer()
			vms, err := w.pp.List(bg, nil)
			if err != nil || len(vms) != 2000 {
				b.Fatalf("List: %d VMs, %v", len(vms), err)
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&m1)
			retained += m1.HeapAlloc - min(m0.HeapAlloc, m1.HeapAlloc)
			runtime.KeepAlive(vms)
			b.StartTimer()
		}
		st1 := w.s.Stats()
		b.ReportMetric(float64(st1.Requests-st0.Requests)/float64(b.N), "roundtrips/op")
		b.ReportMetric(float64(st1.Connections-st0.Connections)/float64(b.N), "conns/op")
		b.ReportMetric(float64(retained)/float64(b.N)/2000, "B-retained/VM")
	})
	b.Run("per-vm-sdk", func(b *testing.B) {
		c := sdkConn(b, w.s)
		st0 := w.s.Stats()
		for i := 0; i < b.N; i++ {
			var vms []*ovirtsdk.Vm
			for page := 1; ; page++ {
				r, err := c.SystemService().VmsService().List().Search("page " + strconv.Itoa(page)).Max(100).Send()
				if err != nil {
					b.Fatal(err)
				}
				s := r.MustVms().Slice()
				vms = append(vms, s...)
				if len(s) < 100 {
					break
				}
			}
			for _, v := range vms {
				if _, err := c.SystemService().VmsService().VmService(v.MustId()).ReportedDevicesService().List().Send(); err != nil {
					b.Fatal(err)
				}
			}
			if len(vms) != 2000 {
				b.Fatalf("%d VMs", len(vms))
			}
		}
		st1 := w.s.Stats()
		b.ReportMetric(float64(st1.Requests-st0.Requests)/float64(b.N), "roundtrips/op")
		b.ReportMetric(float64(st1.Connections-st0.Connections)/float64(b.N), "conns/op")
	})
}

// BenchmarkGet reads one VM: the driver's keep-alive client over
// go-ovirt's XML reader, beside go-ovirt's Connection (a TCP and TLS
// handshake per call). This is the measurement behind the choice of
// transport (see doc.go).
func BenchmarkGet(b *testing.B) {
	w := newWorld(b, nil, nil)
	id, err := w.s.AddVM(fakeovirt.VMSpec{Name: "get", Status: "up"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("driver", func(b *testing.B) {
		st0 := w.s.Stats()
		for i := 0; i < b.N; i++ {
			if _, err := w.pp.Get(bg, id); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(w.s.Stats().Connections-st0.Connections)/float64(b.N), "conns/op")
	})
	b.Run("sdk-connection", func(b *testing.B) {
		c := sdkConn(b, w.s)
		st0 := w.s.Stats()
		for i := 0; i < b.N; i++ {
			if _, err := c.SystemService().VmsService().VmService(id).Get().Follow("reported_devices,nics").Send(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(w.s.Stats().Connections-st0.Connections)/float64(b.N), "conns/op")
	})
}

// BenchmarkWatchLatency measures the time from an engine event (a VM
// added behind the driver's back) to the Created event from Next, with a
// 20 ms poll interval; p50 and p99 over b.N events.
func BenchmarkWatchLatency(b *testing.B) {
	w := newWorld(b, nil, nil)
	st, err := w.pp.Watch(bg, "")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	lat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		id, err := w.s.AddVM(fakeovirt.VMSpec{Name: "lat-" + strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		for {
			ev, err := st.Next(bg)
			if err != nil {
				b.Fatal(err)
			}
			if ev.VMID == id && ev.Type == provider.Created {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
