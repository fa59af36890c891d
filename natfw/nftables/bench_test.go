//go:build linux

package nftables_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/nftables"
)

// benchRule is rule i of a benchmark. TEST-NET has too few addresses for
// 1,000 rules, so benchmark rules use 198.18.0.0/15 (RFC 2544, reserved
// for benchmarking). They are rule data inside a throwaway namespace
// only: never configured on an interface, never sent a packet.
func benchRule(i int) natfw.Rule {
	return natfw.Rule{
		Owner:       fmt.Sprintf("bench-%05d", i),
		Public:      netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(1 + i%250)}),
		Local:       netip.AddrFrom4([4]byte{198, 19, byte(i / 250), byte(1 + i%250)}),
		Ports:       natfw.LinuxPorts(),
		Sources:     []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Description: fmt.Sprintf("benchmark vm %d", i),
	}
}

func benchFirewall(b *testing.B, n int) *natfw.Firewall {
	b.Helper()
	fw := newFirewall(b, nftables.Options{NetNSPath: nsPath(newNS(b, "bench"))})
	start := time.Now()
	for i := range n {
		mustEnsure(b, fw, benchRule(i))
	}
	b.Logf("%d rules in place in %v", n, time.Since(start))
	return fw
}

// BenchmarkWith200Rules: single changes and reads with 200 rules in the
// kernel (the fixture is built once for all sub-benchmarks).
//
//   - EnsureNAT: a new owner (removed again outside the timer)
//   - RemoveNAT: an owner (added outside the timer)
//   - EnsureNATUnchanged: a rule already in place (the idempotent retry)
//   - List: the table unchanged since the last read
//   - ListFromKernel: through a new Firewall, so read from the kernel
func BenchmarkWith200Rules(b *testing.B) {
	fw := benchFirewall(b, 200)
	ctx := context.Background()
	b.Run("EnsureNAT", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := benchRule(200 + i%500)
			if err := fw.EnsureNAT(ctx, r); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := fw.RemoveNAT(ctx, r.Owner); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("RemoveNAT", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := benchRule(200 + i%500)
			b.StopTimer()
			if err := fw.EnsureNAT(ctx, r); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := fw.RemoveNAT(ctx, r.Owner); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EnsureNATUnchanged", func(b *testing.B) {
		r := benchRule(100)
		for i := 0; i < b.N; i++ {
			if err := fw.EnsureNAT(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("List", func(b *testing.B) { benchList(b, fw, 200) })
	b.Run("ListFromKernel", func(b *testing.B) { benchListFresh(b, fw, 200) })
}

// BenchmarkWith1000Rules: List with 1,000 rules in the kernel, unchanged
// since the last read and from the kernel.
func BenchmarkWith1000Rules(b *testing.B) {
	fw := benchFirewall(b, 1000)
	b.Run("List", func(b *testing.B) { benchList(b, fw, 1000) })
	b.Run("ListFromKernel", func(b *testing.B) { benchListFresh(b, fw, 1000) })
}

// benchListFresh lists through a new Firewall each time (a restarted
// process): every List reads and decodes the whole table from the kernel.
func benchListFresh(b *testing.B, fw *natfw.Firewall, n int) {
	ctx := context.Background()
	var d *nftables.Driver
	if !fw.As(&d) {
		b.Fatal("As(*nftables.Driver) = false")
	}
	opts := d.Options()
	for i := 0; i < b.N; i++ {
		f, err := nftables.New(&opts)
		if err != nil {
			b.Fatal(err)
		}
		rs, err := f.List(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(rs) != n {
			b.Fatalf("List returned %d rules, want %d", len(rs), n)
		}
		_ = f.Close()
	}
}

func benchList(b *testing.B, fw *natfw.Firewall, n int) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		rs, err := fw.List(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(rs) != n {
			b.Fatalf("List returned %d rules, want %d", len(rs), n)
		}
	}
}

// BenchmarkFill200: ensure 200 rules into an empty table, then remove them
// all; reports the cost per rule of each.
func BenchmarkFill200(b *testing.B) {
	fw := newFirewall(b, nftables.Options{NetNSPath: nsPath(newNS(b, "bench"))})
	ctx := context.Background()
	var ensure, remove time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for j := range 200 {
			if err := fw.EnsureNAT(ctx, benchRule(j)); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for j := range 200 {
			if err := fw.RemoveNAT(ctx, benchRule(j).Owner); err != nil {
				b.Fatal(err)
			}
		}
		ensure += t1.Sub(t0)
		remove += time.Since(t1)
	}
	b.ReportMetric(float64(ensure.Nanoseconds())/float64(200*b.N), "ensure-ns/rule")
	b.ReportMetric(float64(remove.Nanoseconds())/float64(200*b.N), "remove-ns/rule")
}

// BenchmarkManagedAddress: a new owner's EnsureNAT and its RemoveNAT on a
// Firewall bound to a WAN interface whose public addresses it manages, so
// each pair also adds and removes a /32 through rtnetlink and asks
// conntrack whether the namespace tracks anything. 20 other rules are in
// place.
func BenchmarkManagedAddress(b *testing.B) {
	ns := newNS(b, "bench")
	addWAN(b, ns)
	fw := newFirewall(b, nftables.Options{NetNSPath: nsPath(ns), WANInterface: "wan0", ManagePublicAddress: true})
	ctx := context.Background()
	for i := range 20 {
		mustEnsure(b, fw, benchRule(i))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := benchRule(20 + i%200)
		if err := fw.EnsureNAT(ctx, r); err != nil {
			b.Fatal(err)
		}
		if err := fw.RemoveNAT(ctx, r.Owner); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScale: single changes and a read from the kernel with 1,000,
// 5,000 and 20,000 rules in place (each fixture built once, through the
// Firewall, for its sub-benchmarks). A change must cost the same at every
// size; ListFromKernel (a new Firewall, so a full dump) grows with the
// table by nature.
//
//   - EnsureNAT: a new owner (removed again outside the timer)
//   - RemoveNAT: an owner (added outside the timer)
//   - ListFromKernel: through a new Firewall
//
// With -short (CI runs every benchmark once that way) only 1,000.
func BenchmarkScale(b *testing.B) {
	sizes := []int{1000, 5000, 20000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			fw := benchFirewall(b, n)
			ctx := context.Background()
			b.Run("EnsureNAT", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					r := benchRule(n + i%500)
					if err := fw.EnsureNAT(ctx, r); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := fw.RemoveNAT(ctx, r.Owner); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
			b.Run("RemoveNAT", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					r := benchRule(n + i%500)
					b.StopTimer()
					if err := fw.EnsureNAT(ctx, r); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if err := fw.RemoveNAT(ctx, r.Owner); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("ListFromKernel", func(b *testing.B) { benchListFresh(b, fw, n) })
		})
	}
}
