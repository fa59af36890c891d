package ovirt_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	ovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
)

// BenchmarkList2000 lists 2,000 running VMs through go-ovirt: in pages of
// 500 with follow=reported_devices,nics (5 round trips, IPs included),
// and, for comparison, a list followed by one reported-devices call per
// VM (2,001 round trips), each with no added latency and with 1 ms added
// per request.
func BenchmarkList2000(b *testing.B) {
	s := ovirt.New(nil)
	defer s.Close()
	if _, err := s.AddVMs("vm", 2000); err != nil {
		b.Fatal(err)
	}
	for _, lat := range []time.Duration{0, time.Millisecond} {
		b.Run(fmt.Sprintf("paged-follow/latency=%v", lat), func(b *testing.B) {
			s.SetLatency(lat)
			vms := connect(b, s).SystemService().VmsService()
			vms.List().Max(1).MustSend() // log in outside the timing
			s.ResetCalls()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n := 0
				for page := 1; ; page++ {
					got := vms.List().Search(fmt.Sprintf("page %d", page)).Max(500).Follow("reported_devices,nics").MustSend().MustVms().Slice()
					for _, v := range got {
						if len(v.MustReportedDevices().Slice()) != 1 {
							b.Fatal("no reported device")
						}
					}
					n += len(got)
					if len(got) < 500 {
						break
					}
				}
				if n != 2000 {
					b.Fatalf("%d VMs", n)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(sum(s.Calls()))/float64(b.N), "requests/op")
		})
		b.Run(fmt.Sprintf("per-vm/latency=%v", lat), func(b *testing.B) {
			s.SetLatency(lat)
			vms := connect(b, s).SystemService().VmsService()
			vms.List().Max(1).MustSend()
			s.ResetCalls()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				all := vms.List().MustSend().MustVms().Slice()
				for _, v := range all {
					rd := vms.VmService(v.MustId()).ReportedDevicesService().List().MustSend().MustReportedDevice().Slice()
					if len(rd) != 1 {
						b.Fatal("no reported device")
					}
				}
				if len(all) != 2000 {
					b.Fatalf("%d VMs", len(all))
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(sum(s.Calls()))/float64(b.N), "requests/op")
		})
	}
	s.SetLatency(0)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// BenchmarkServe2000 is the fake's own share: all 2,000 VMs with
// follow=reported_devices,nics in one request over keep-alive HTTP, the
// body read and dropped (no client-side parsing).
func BenchmarkServe2000(b *testing.B) {
	s := ovirt.New(nil)
	defer s.Close()
	if _, err := s.AddVMs("vm", 2000); err != nil {
		b.Fatal(err)
	}
	tok := loginTB(b, s)
	c := s.Client()
	u := s.URL() + "/vms?follow=reported_devices%2Cnics"
	b.ResetTimer()
	var size int64
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
		size = n
	}
	b.ReportMetric(float64(size)/2000, "bytes/vm")
}

// BenchmarkAddVMs2000 fills an engine with 2,000 running VMs.
func BenchmarkAddVMs2000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s := ovirt.New(nil)
		if _, err := s.AddVMs("vm", 2000); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
