package notify_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/fakes/smtprelay"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/notify"
	"github.com/managedvm/managedvm/notify/smtpnotify"
	"github.com/managedvm/managedvm/notify/webhook"
	"github.com/managedvm/managedvm/provider"
)

// The setup of enroll's BenchmarkEnrollOverhead: drivers that answer at
// once, so that what is measured is the orchestrator's own work, here
// with and without the notification observers.

type nopProvider struct {
	provider.Driver
	vm provider.VM
}

func (p nopProvider) Get(_ context.Context, id string) (provider.VM, error) {
	vm := p.vm
	vm.ID = id
	return vm, nil
}
func (nopProvider) ValidateCredentials(context.Context, string, guest.Credentials) error { return nil }
func (nopProvider) GuestExecutor(context.Context, string, guest.Credentials) (*guest.Executor, error) {
	return guest.New(nopExec{}, nil), nil
}

type nopExec struct{}

var debianFacts = []byte("ID=debian\nVERSION_ID=\"12\"\n__MANAGEDVM_UNAME__\n6.1.0\nx86_64\n")

func (nopExec) Run(context.Context, guest.Command) (guest.Result, error) {
	return guest.Result{Stdout: debianFacts}, nil
}
func (nopExec) Upload(context.Context, string, io.Reader, guest.UploadOptions) error { return nil }
func (nopExec) Family() guest.OSFamily                                               { return guest.Linux }
func (nopExec) Close() error                                                         { return nil }

type nopIPAM struct{ ipam.Driver }

func (nopIPAM) Allocate(_ context.Context, r ipam.Request) (ipam.Allocation, error) {
	return ipam.Allocation{Pool: r.Pool, Owner: r.Owner, Address: netip.AddrFrom4([4]byte{203, 0, 113, 7}), LocalIP: r.LocalIP}, nil
}

type nopFW struct{ natfw.Driver }

func (nopFW) EnsureNAT(context.Context, natfw.Rule) error { return nil }

type nopCMDB struct{ cmdb.Driver }

func (nopCMDB) Get(_ context.Context, k cmdb.Key) (cmdb.Record, error) {
	return cmdb.Record{}, errs.New(errs.NotFound, "nop", "no record")
}
func (nopCMDB) Upsert(_ context.Context, r cmdb.Record) (cmdb.Record, error) {
	r.Revision++
	return r, nil
}

type nopStore struct{ enroll.StoreDriver }

func (nopStore) CreateJournal(_ context.Context, j enroll.Journal) (enroll.Journal, error) {
	j.Revision = 1
	return j, nil
}
func (nopStore) UpdateJournal(_ context.Context, j enroll.Journal) (enroll.Journal, error) {
	j.Revision++
	return j, nil
}

// hung accepts connections and never answers.
func hung(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// BenchmarkEnrollObservers is enroll's BenchmarkEnrollOverhead with
// observer=none (a no-op), observer=hung (mail and webhook to a relay and a
// receiver that accept and never answer: the queues fill and drop) and
// observer=live (mail to an in-process SMTP relay over STARTTLS and AUTH,
// posts to an httptest TLS receiver, delivered in the background on the
// same cores). Compare with benchstat -col /observer.
func BenchmarkEnrollObservers(b *testing.B) {
	for _, conc := range []int{1, 8} {
		for _, kind := range []string{"none", "hung", "live"} {
			b.Run(fmt.Sprintf("observer=%s/concurrency=%d", kind, conc), func(b *testing.B) {
				obs, closeAll := observers(b, kind)
				benchOverhead(b, conc, obs)
				b.StopTimer()
				// A hung relay never drains: give up at once (what was
				// queued is counted as dropped).
				wait := 5 * time.Second
				if kind == "hung" {
					wait = 50 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				closeAll(ctx)
			})
		}
	}
}

func observers(b *testing.B, kind string) (enroll.Observer, func(context.Context)) {
	if kind == "none" {
		return enroll.ObserverFunc(func(enroll.Event) {}), func(context.Context) {}
	}
	const key = "benchmark-webhook-key"
	rcpt := &smtpnotify.Options{Recipients: []string{"ops@example.com"}, Retries: -1}
	var relay smtpnotify.Relay
	var urls []string
	var who *webhook.Options
	if kind == "hung" {
		relay = smtpnotify.Relay{Addr: hung(b)}
		urls = []string{"https://" + hung(b) + "/hook"}
		who = &webhook.Options{Retries: -1}
	} else {
		r, err := smtprelay.Start(smtprelay.Options{Username: "u", Password: "p"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		relay = smtpnotify.Relay{Addr: r.Addr, RootCAs: r.PKI.Pool, Username: "u", Password: guest.NewSecret("p")}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		b.Cleanup(srv.Close)
		urls = []string{srv.URL}
		who = &webhook.Options{Retries: -1, RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	}
	m, err := smtpnotify.New(relay, "managedvm@example.com", rcpt)
	if err != nil {
		b.Fatal(err)
	}
	h, err := webhook.New(urls, guest.NewSecret(key), who)
	if err != nil {
		b.Fatal(err)
	}
	return notify.Multi(m, h), func(ctx context.Context) {
		_ = m.Close(ctx)
		_ = h.Close(ctx)
		ms, hs := m.Stats(), h.Stats()
		b.ReportMetric(float64(ms.Dropped+hs.Dropped)/float64(b.N), "dropped/op")
	}
}

func benchOverhead(b *testing.B, conc int, obs enroll.Observer) {
	prov := nopProvider{vm: provider.VM{Zone: "az1", Power: provider.PoweredOn,
		Guest: provider.GuestInfo{Family: guest.Linux, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, ToolsRunning: true}}}
	o, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{"vc1": provider.New(prov, nil)},
		IPAM:      ipam.New(nopIPAM{}, nil),
		Firewall:  natfw.New(nopFW{}, nil),
		CMDB:      cmdb.New(nopCMDB{}, nil),
		Store:     enroll.NewStore(nopStore{}, nil),
		Policy: enroll.Policy{Pool: "pub", ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			Requirements: map[guest.OSFamily]guest.Requirements{guest.Linux: {Distributions: map[string]string{"debian": "11"}}}},
	}, &enroll.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	cred := guest.Password("admin", "pw")
	var next, failed atomic.Int64
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		wg.Go(func() {
			for int(next.Add(1)) <= b.N {
				if _, err := o.Enroll(context.Background(), enroll.Request{Provider: "vc1", VMID: "vm", Credentials: cred}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if failed.Load() > 0 {
		b.Fatalf("%d enrollments failed", failed.Load())
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enrollments/s")
}
