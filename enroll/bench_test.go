package enroll_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

// benchWorld is the in-memory drivers without fault wrappers, n VMs.
func benchWorld(b *testing.B, n int, observe func(enroll.Event)) (*enroll.Orchestrator, *memprovider.Provider, *cmdb.CMDB, []string) {
	ctx := context.Background()
	hv := memprovider.New(&memprovider.Options{HistorySize: 16})
	if err := hv.AddZone(provider.Zone{Name: zoneName}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		vm, err := hv.AddVM(provider.VM{Name: "vm" + strconv.Itoa(i), Zone: zoneName, Power: provider.PoweredOn,
			Guest: provider.GuestInfo{Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)", OSVersion: "12", IPs: []netip.Addr{ip}, ToolsRunning: true}})
		if err != nil {
			b.Fatal(err)
		}
		if err := hv.SetGuestAccount(vm.ID, "admin", "pw"); err != nil {
			b.Fatal(err)
		}
		ids[i] = vm.ID
	}
	addrs := memipam.New(nil)
	if err := addrs.CreatePool(ctx, ipam.Pool{Name: poolName, Prefix: netip.MustParsePrefix("100.64.0.0/10")}); err != nil {
		b.Fatal(err)
	}
	db := memcmdb.New(nil)
	o, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{provName: hv.Provider()},
		IPAM:      addrs, Firewall: memfw.New(nil), CMDB: db, Store: enroll.NewMemoryStore(nil),
		Policy: enroll.Policy{Pool: poolName, ManagementSources: []netip.Prefix{mgmt},
			Requirements: map[guest.OSFamily]guest.Requirements{guest.Linux: {Distributions: map[string]string{"debian": "11"}}}},
		Configurator: guest.ConfiguratorFunc(func(ctx context.Context, t guest.Target, ex *guest.Executor) error { return nil }),
	}, &enroll.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: enroll.ObserverFunc(observe)})
	if err != nil {
		b.Fatal(err)
	}
	return o, hv, db, ids
}

// BenchmarkEnroll measures the orchestrator's enrollment throughput on the
// in-memory drivers at several concurrencies.
func BenchmarkEnroll(b *testing.B) {
	for _, conc := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			o, _, _, ids := benchWorld(b, b.N, func(enroll.Event) {})
			cred := guest.Password("admin", "pw")
			var next atomic.Int64
			var failed atomic.Int64
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := 0; g < conc; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1) - 1)
						if i >= len(ids) {
							return
						}
						if _, err := o.Enroll(context.Background(), enroll.Request{Provider: provName, VMID: ids[i], Credentials: cred}); err != nil {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			cpu := cpuTime() - cpu0
			if failed.Load() > 0 {
				b.Fatalf("%d enrollments failed", failed.Load())
			}
			perSec := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(perSec, "enrollments/s")
			// CPU time (all goroutines, GC included) is what a core
			// spends per enrollment, whatever else the machine runs.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "enrollments/cpu-s")
		})
	}
}

// BenchmarkIndexerLatency measures the time from a provider event to the
// CMDB update, with events arriving at 100 per second.
func BenchmarkIndexerLatency(b *testing.B) {
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	done := make(chan struct{}, 1)
	seen := 0
	obs := func(e enroll.Event) {
		if e.Kind != enroll.VMChanged || !strings.HasPrefix(e.Message, "ev-") {
			return
		}
		now := time.Now()
		mu.Lock()
		if t0, ok := sent[e.Message]; ok {
			lat = append(lat, now.Sub(t0))
			delete(sent, e.Message)
			seen++
			if seen == b.N {
				select {
				case done <- struct{}{}:
				default:
				}
			}
		}
		mu.Unlock()
	}
	o, hv, _, ids := benchWorld(b, 100, obs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ix := o.Indexer(nil)
	if err := ix.Sync(ctx, provName); err != nil {
		b.Fatal(err)
	}
	go func() { _ = ix.Run(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		name := "ev-" + strconv.Itoa(i)
		mu.Lock()
		sent[name] = time.Now()
		mu.Unlock()
		if _, err := hv.UpdateVM(ids[i%len(ids)], func(vm *provider.VM) { vm.Name = name }); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.Fatalf("only %d of %d events reached the CMDB", seen, b.N)
	}
	b.StopTimer()
	sort.Slice(lat, func(a, c int) bool { return lat[a] < lat[c] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds()), "p99-µs")
}
