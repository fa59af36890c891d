package vcd_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	fakevcd "github.com/managedvm/managedvm/internal/fakes/vcd"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/natfwtest"
	"github.com/managedvm/managedvm/provider/vcd"
)

func newEdge(t testing.TB, s *fakevcd.Server) *natfw.Firewall {
	t.Helper()
	fw, err := vcd.NewFirewall(context.Background(), s.URL(), tenantCred(s), s.Options().EdgeGateway,
		&vcd.FirewallOptions{CACertPEM: s.CACertPEM(), TaskPoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fw.Close() })
	return fw
}

func TestEdgeConformance(t *testing.T) {
	natfwtest.Run(t, natfwtest.Harness{New: func(t *testing.T) natfw.Driver {
		s := fakevcd.New(nil)
		t.Cleanup(s.Close)
		var d *vcd.Edge
		if !newEdge(t, s).As(&d) {
			t.Fatal("As(**vcd.Edge) found no driver")
		}
		return d
	}})
}

func edgeRule(i int) natfw.Rule {
	return natfw.Rule{
		Owner:   fmt.Sprintf("vm-%02d", i),
		Public:  netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}),
		Local:   netip.AddrFrom4([4]byte{10, 10, 1, byte(10 + i)}),
		Ports:   natfw.LinuxPorts(),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}
}

// Sixteen owners at once while another client keeps the gateway busy
// at the start and every write holds it for 15 ms: all succeed.
func TestEdgeConcurrentDespiteBusy(t *testing.T) {
	s := fakevcd.New(&fakevcd.Options{GatewayTaskDuration: 15 * time.Millisecond})
	defer s.Close()
	fw := newEdge(t, s)
	if err := s.SetGatewayBusy(s.Options().EdgeGateway, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ensureAll(t, []*natfw.Firewall{fw})
	checkAll(t, s, fw)
}

// Two processes (two clients, two sessions, so BUSY_ENTITY reaches both)
// writing one gateway at once: every call succeeds and, with no second
// pass, every owner's rules are on the gateway, though each firewall
// write replaces the whole list: a writer re-reads the list right before
// each PUT and checks, once the other writes have settled, that its rule
// is still there. Then half the owners are removed while the other half
// are written again: removals delete one rule each and drop no other.
func TestEdgeTwoProcesses(t *testing.T) {
	// With latency, a list read while another write's task runs reaches
	// VCD as a PUT after that task ended: the stale PUT the read-back
	// after the settling time repairs.
	for _, lat := range []time.Duration{0, 0, 2 * time.Millisecond, 2 * time.Millisecond} {
		t.Run(fmt.Sprint("latency-", lat), func(t *testing.T) {
			s := fakevcd.New(&fakevcd.Options{GatewayTaskDuration: 5 * time.Millisecond})
			defer s.Close()
			s.SetLatency(lat)
			fws := []*natfw.Firewall{newEdge(t, s), newEdge(t, s)}
			ensureAll(t, fws)
			checkAll(t, s, fws[1])

			var wg sync.WaitGroup
			for i := range 16 {
				wg.Go(func() {
					fw := fws[i%2]
					var err error
					if i < 8 {
						err = fw.RemoveNAT(context.Background(), edgeRule(i).Owner)
					} else {
						r := edgeRule(i)
						r.Description = "again"
						err = fw.EnsureNAT(context.Background(), r)
					}
					if err != nil {
						t.Errorf("owner %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			rs, err := fws[0].List(context.Background())
			if err != nil || len(rs) != 8 {
				t.Fatalf("List after removals: %d rules, %v", len(rs), err)
			}
			if n := len(s.FirewallRules(s.Options().EdgeGateway)); n != 8 {
				t.Fatalf("%d firewall rules on the gateway, want 8", n)
			}
		})
	}
}

func ensureAll(t *testing.T, fws []*natfw.Firewall) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if err := fws[i%len(fws)].EnsureNAT(context.Background(), edgeRule(i)); err != nil {
				t.Errorf("EnsureNAT(%d): %v", i, err)
			}
		})
	}
	wg.Wait()
}

func checkAll(t *testing.T, s *fakevcd.Server, fw *natfw.Firewall) {
	t.Helper()
	rs, err := fw.List(context.Background())
	if err != nil || len(rs) != 16 {
		t.Fatalf("List: %d rules, %v", len(rs), err)
	}
	for i, r := range rs {
		if !r.Equal(edgeRule(i)) {
			t.Errorf("rule %d = %+v", i, r)
		}
	}
	if n := len(s.NATRules(s.Options().EdgeGateway)); n != 16 {
		t.Fatalf("%d NAT rules on the gateway", n)
	}
	if n := len(s.FirewallRules(s.Options().EdgeGateway)); n != 16 {
		t.Fatalf("%d firewall rules on the gateway", n)
	}
}

// A replaced rule leaves no unused IP set or port profile; a removed one
// leaves nothing of the owner.
func TestEdgeReplaceAndRemoveCollect(t *testing.T) {
	s := fakevcd.New(nil)
	defer s.Close()
	fw := newEdge(t, s)
	ctx := context.Background()
	r := edgeRule(1)
	if err := fw.EnsureNAT(ctx, r); err != nil {
		t.Fatal(err)
	}
	gw := s.Options().EdgeGateway
	if n := len(s.FirewallGroups(gw)); n != 2 {
		t.Fatalf("%d IP sets, want 2 (sources, local)", n)
	}
	r.Sources = []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}
	r.Ports = natfw.WindowsPorts()
	if err := fw.EnsureNAT(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := fw.Get(ctx, r.Owner)
	if err != nil || !got.Equal(r) {
		t.Fatalf("Get %+v %v", got, err)
	}
	if n := len(s.FirewallGroups(gw)); n != 2 {
		t.Fatalf("%d IP sets after a replace, want 2", n)
	}
	nat := s.NATRules(gw)
	if len(nat) != 1 || nat[0].Type != "REFLEXIVE" || nat[0].ExternalAddresses != "203.0.113.11" {
		t.Fatalf("NAT rules %+v", nat)
	}
	if err := fw.RemoveNAT(ctx, r.Owner); err != nil {
		t.Fatal(err)
	}
	if len(s.NATRules(gw))+len(s.FirewallRules(gw))+len(s.FirewallGroups(gw)) != 0 {
		t.Fatalf("RemoveNAT left %v %v %v", s.NATRules(gw), s.FirewallRules(gw), s.FirewallGroups(gw))
	}
}
