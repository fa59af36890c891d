//go:build linux

package nftables_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	nft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/nftables"
)

// testRule is a valid rule on TEST-NET addresses (i < 250).
func testRule(i int) natfw.Rule {
	return natfw.Rule{
		Owner:       fmt.Sprintf("vm-%03d", i),
		Public:      netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + i)}),
		Local:       netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}),
		Ports:       natfw.LinuxPorts(),
		Sources:     []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Description: fmt.Sprintf("vm %d", i),
	}
}

// kernelConn is a raw nftables connection into a namespace, for looking at
// (and tampering with) what the driver wrote.
func kernelConn(t testing.TB, ns string) *nft.Conn {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	c, err := nft.New(nft.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rulesOf(t testing.TB, c *nft.Conn, table, chain string) []*nft.Rule {
	t.Helper()
	tb := &nft.Table{Name: table, Family: nft.TableFamilyIPv4}
	rs, err := c.GetRules(tb, &nft.Chain{Name: chain, Table: tb})
	if err != nil {
		t.Fatalf("rules of %s/%s: %v", table, chain, err)
	}
	return rs
}

func mustList(t testing.TB, fw *natfw.Firewall) []natfw.Rule {
	t.Helper()
	rs, err := fw.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return rs
}

func wantList(t testing.TB, fw *natfw.Firewall, want ...natfw.Rule) {
	t.Helper()
	got := mustList(t, fw)
	if len(got) != len(want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("List()[%d] = %+v, want %+v", i, got[i], want[i].Normalize())
		}
	}
}

func mustEnsure(t testing.TB, fw *natfw.Firewall, r natfw.Rule) {
	t.Helper()
	if err := fw.EnsureNAT(context.Background(), r); err != nil {
		t.Fatalf("EnsureNAT(%s): %v", r.Owner, err)
	}
}

func TestNewOptions(t *testing.T) {
	_, err := nftables.New(&nftables.Options{ManagePublicAddress: true})
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("ManagePublicAddress without WANInterface: %v, want InvalidArgument", err)
	}
	_, err = nftables.New(&nftables.Options{WANInterface: "a-name-longer-than-15"})
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("long interface name: %v, want InvalidArgument", err)
	}
	_, err = nftables.New(&nftables.Options{NetNSPath: "/run/netns/managedvm-does-not-exist-" + randHex()})
	if errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("missing namespace: %v, want NotFound", err)
	}
	fw, err := nftables.New(nil)
	if err != nil {
		t.Fatalf("New(nil): %v", err)
	}
	if err := fw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	if err := fw.EnsureNAT(ctx, testRule(1)); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("EnsureNAT after Close: %v, want FailedPrecondition", err)
	}
	if err := fw.RemoveNAT(ctx, "x"); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("RemoveNAT after Close: %v, want FailedPrecondition", err)
	}
	if _, err := fw.Get(ctx, "x"); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("Get after Close: %v, want FailedPrecondition", err)
	}
}

// A second Firewall over the same namespace and table (a restarted
// process) sees exactly what the first wrote, and changes through either
// are seen by both: nothing is cached.
func TestRestartSeesKernelState(t *testing.T) {
	ns := newNS(t, "rst")
	opts := nftables.Options{NetNSPath: nsPath(ns), Table: "edge"}
	fw1 := newFirewall(t, opts)
	a, b, c := testRule(1), testRule(2), testRule(3)
	b.Ports = natfw.WindowsPorts()
	b.Sources = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/25"), netip.MustParsePrefix("192.0.2.200/32")}
	c.Ports = []natfw.Port{{Protocol: natfw.UDP, Number: 53}, {Protocol: natfw.TCP, Number: 65535}}
	c.Sources = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	c.Description = ""
	for _, r := range []natfw.Rule{c, a, b} {
		mustEnsure(t, fw1, r)
	}
	fw2 := newFirewall(t, opts)
	wantList(t, fw2, a, b, c)
	got, err := fw2.Get(context.Background(), b.Owner)
	if err != nil || !got.Equal(b) {
		t.Fatalf("Get after restart = %+v, %v", got, err)
	}
	// The new instance enforces the old instance's addresses.
	d := testRule(4)
	d.Public = a.Local
	if err := fw2.EnsureNAT(context.Background(), d); errs.CodeOf(err) != errs.AlreadyExists {
		t.Fatalf("EnsureNAT on an address held before the restart: %v, want AlreadyExists", err)
	}
	if err := fw2.RemoveNAT(context.Background(), a.Owner); err != nil {
		t.Fatalf("RemoveNAT: %v", err)
	}
	wantList(t, fw1, b, c)
	// Another table in the same namespace is another firewall.
	other := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns), Table: "other"})
	wantList(t, other)
}

// The driver never touches a table it does not own, and its changes leave
// the other tables' rules exactly as they were.
func TestOtherTablesUntouched(t *testing.T) {
	ns := newNS(t, "iso")
	c := kernelConn(t, ns)
	foreign := &nft.Table{Name: "host-filter", Family: nft.TableFamilyIPv4}
	c.AddTable(foreign)
	ch := c.AddChain(&nft.Chain{Name: "forward", Table: foreign, Type: nft.ChainTypeFilter,
		Hooknum: nft.ChainHookForward, Priority: nft.ChainPriorityFilter})
	c.AddRule(&nft.Rule{Table: foreign, Chain: ch, Exprs: []expr.Any{&expr.Counter{}},
		UserData: []byte{0, 8, 'm', 'v', 'm', ':', 'v', 'm', '1', 0}}) // looks like ours, but isn't in our table
	if err := c.Flush(); err != nil {
		t.Fatalf("foreign table: %v", err)
	}
	fwA := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns), Table: "mvm-a"})
	fwB := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns), Table: "mvm-b"})
	rb := testRule(9)
	mustEnsure(t, fwB, rb)
	bBefore := rulesOf(t, c, "mvm-b", "forward")

	r := testRule(1)
	r.Owner = "vm1"
	mustEnsure(t, fwA, r)
	r.Ports = natfw.WindowsPorts()
	mustEnsure(t, fwA, r)
	if err := fwA.RemoveNAT(context.Background(), r.Owner); err != nil {
		t.Fatal(err)
	}
	mustEnsure(t, fwA, testRule(2))
	var dA *nftables.Driver
	if !fwA.As(&dA) {
		t.Fatal("As(*nftables.Driver) = false")
	}
	if err := dA.DeleteTable(context.Background()); err != nil {
		t.Fatalf("DeleteTable: %v", err)
	}
	wantList(t, fwA)
	if err := dA.DeleteTable(context.Background()); err != nil {
		t.Fatalf("DeleteTable of a missing table: %v", err)
	}

	if fr := rulesOf(t, c, "host-filter", "forward"); len(fr) != 1 {
		t.Fatalf("foreign table has %d rules, want 1", len(fr))
	}
	bAfter := rulesOf(t, c, "mvm-b", "forward")
	if len(bAfter) != len(bBefore) {
		t.Fatalf("table mvm-b went from %d to %d forward rules", len(bBefore), len(bAfter))
	}
	for i := range bAfter {
		if bAfter[i].Handle != bBefore[i].Handle {
			t.Fatalf("table mvm-b rule %d changed handle: %d -> %d", i, bBefore[i].Handle, bAfter[i].Handle)
		}
	}
	wantList(t, fwB, rb)
}

// Owner and description travel in the kernel's rule userdata, which holds
// at most 256 bytes: the driver refuses what does not fit, and round-trips
// what does.
func TestUserdataLimits(t *testing.T) {
	fw := newFirewall(t, nftables.Options{NetNSPath: nsPath(newNS(t, "lim"))})
	ctx := context.Background()
	big := testRule(1)
	big.Owner = strings.Repeat("o", 120)
	big.Description = strings.Repeat("d", 120)
	mustEnsure(t, fw, big)
	wantList(t, fw, big)
	for name, mod := range map[string]func(*natfw.Rule){
		"LongOwner":       func(r *natfw.Rule) { r.Owner = strings.Repeat("o", 121) },
		"LongDescription": func(r *natfw.Rule) { r.Description = strings.Repeat("d", 121) },
		"NULOwner":        func(r *natfw.Rule) { r.Owner = "a\x00b" },
		"NULDescription":  func(r *natfw.Rule) { r.Description = "a\x00b" },
	} {
		r := testRule(2)
		mod(&r)
		if err := fw.EnsureNAT(ctx, r); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("%s: EnsureNAT = %v, want InvalidArgument", name, err)
		}
	}
	wantList(t, fw, big)
	// Multi-byte owners survive.
	u := testRule(3)
	u.Owner, u.Description = "vsphere/ünïcødé-✓", "описание"
	mustEnsure(t, fw, u)
	wantList(t, fw, big, u)
}

// An owner whose kernel rules someone removed in part is not listed, and
// EnsureNAT / RemoveNAT clean up what is left.
func TestIncompleteRuleRepaired(t *testing.T) {
	ns := newNS(t, "rep")
	fw := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns)})
	a, b := testRule(1), testRule(2)
	mustEnsure(t, fw, a)
	mustEnsure(t, fw, b)
	c := kernelConn(t, ns)
	for _, owner := range []string{a.Owner, b.Owner} {
		for _, r := range rulesOf(t, c, nftables.DefaultTable, "prerouting") {
			if strings.Contains(string(r.UserData), owner) {
				if err := c.DelRule(r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	wantList(t, fw)
	if _, err := fw.Get(context.Background(), a.Owner); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("Get of a broken rule = %v, want NotFound", err)
	}
	mustEnsure(t, fw, a)
	wantList(t, fw, a)
	if err := fw.RemoveNAT(context.Background(), b.Owner); err != nil {
		t.Fatal(err)
	}
	// Only a's rules and the base rule are left.
	n := 0
	for _, chain := range []string{"prerouting", "postrouting", "forward"} {
		n += len(rulesOf(t, c, nftables.DefaultTable, chain))
	}
	if want := 3 + 1 + 1; n != want { // dnat, snat, accept, drop + base
		t.Fatalf("table holds %d kernel rules, want %d", n, want)
	}
}

// Every change is one netlink batch: the kernel reports it as one
// generation holding all its rule deletions and additions.
func TestOneBatchPerChange(t *testing.T) {
	ns := newNS(t, "gen")
	fw := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns)})
	a := testRule(1)
	mustEnsure(t, fw, a)

	c := kernelConn(t, ns)
	mon := nft.NewMonitor() // all objects: v0.3.0 filters narrower monitors wrongly and drops NEWGEN
	gens, err := c.AddGenerationalMonitor(mon)
	if err != nil {
		t.Fatalf("monitor: %v", err)
	}
	t.Cleanup(func() { _ = mon.Close() })
	next := func() (news, dels int) {
		t.Helper()
		select {
		case g, ok := <-gens:
			if !ok {
				t.Fatal("monitor closed")
			}
			for _, ch := range g.Changes {
				switch ch.Type {
				case nft.MonitorEventTypeNewRule:
					news++
				case nft.MonitorEventTypeDelRule:
					dels++
				}
			}
			return news, dels
		case <-time.After(10 * time.Second):
			t.Fatal("no generation from the kernel within 10s")
			return 0, 0
		}
	}

	// Replace a (4 kernel rules) with 3 ports x 2 sources (3 + 6 rules).
	r := a
	r.Ports = natfw.WindowsPorts()
	r.Sources = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("192.0.2.200/32")}
	mustEnsure(t, fw, r)
	if news, dels := next(); news != 9 || dels != 4 {
		t.Fatalf("replacement: one generation with %d new and %d deleted rules, want 9 and 4", news, dels)
	}
	if err := fw.RemoveNAT(context.Background(), r.Owner); err != nil {
		t.Fatal(err)
	}
	if news, dels := next(); news != 0 || dels != 9 {
		t.Fatalf("removal: one generation with %d new and %d deleted rules, want 0 and 9", news, dels)
	}
}

// addrsOn returns the IPv4 addresses on dev inside ns.
func addrsOn(t testing.TB, ns, dev string) []string {
	t.Helper()
	var out []string
	for _, f := range strings.Fields(run(t, "ip", "-n", ns, "-4", "-o", "addr", "show", "dev", dev)) {
		if strings.Count(f, ".") == 3 && strings.Contains(f, "/") {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func TestManagePublicAddress(t *testing.T) {
	ns := newNS(t, "addr")
	addWAN(t, ns)
	run(t, "ip", "-n", ns, "addr", "add", "203.0.113.1/24", "dev", "wan0")
	fw := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns), WANInterface: "wan0", ManagePublicAddress: true})
	ctx := context.Background()
	want := func(addrs ...string) {
		t.Helper()
		if got := addrsOn(t, ns, "wan0"); !slices.Equal(got, addrs) {
			t.Fatalf("addresses on wan0 = %v, want %v", got, addrs)
		}
	}
	r := testRule(10) // public 203.0.113.11
	mustEnsure(t, fw, r)
	want("203.0.113.1/24", "203.0.113.11/32")
	// Someone removes the address: the idempotent EnsureNAT puts it back.
	run(t, "ip", "-n", ns, "addr", "del", "203.0.113.11/32", "dev", "wan0")
	mustEnsure(t, fw, r)
	want("203.0.113.1/24", "203.0.113.11/32")
	// A new public address replaces the old one.
	r.Public = netip.MustParseAddr("203.0.113.12")
	mustEnsure(t, fw, r)
	want("203.0.113.1/24", "203.0.113.12/32")
	// A refused rule adds nothing.
	o := testRule(20)
	o.Local = r.Local
	if err := fw.EnsureNAT(ctx, o); errs.CodeOf(err) != errs.AlreadyExists {
		t.Fatalf("conflicting EnsureNAT = %v, want AlreadyExists", err)
	}
	want("203.0.113.1/24", "203.0.113.12/32")
	if err := fw.RemoveNAT(ctx, r.Owner); err != nil {
		t.Fatal(err)
	}
	want("203.0.113.1/24")
	// A missing interface is reported, after the rule is in place.
	fwx := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns), Table: "x", WANInterface: "nope0", ManagePublicAddress: true})
	if err := fwx.EnsureNAT(ctx, testRule(30)); errs.CodeOf(err) != errs.OutcomeUnknown {
		t.Fatalf("EnsureNAT with a missing WAN interface = %v, want OutcomeUnknown", err)
	}
}

// The driver reuses what it read while the kernel's ruleset generation
// stands still; a change by anyone else moves it, and the next read sees
// the change.
func TestSeesForeignChangesAtOnce(t *testing.T) {
	ns := newNS(t, "gen2")
	fw := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns)})
	a, b := testRule(1), testRule(2)
	mustEnsure(t, fw, a)
	mustEnsure(t, fw, b)
	wantList(t, fw, a, b)
	wantList(t, fw, a, b) // from the last read
	c := kernelConn(t, ns)
	for _, r := range rulesOf(t, c, nftables.DefaultTable, "prerouting") {
		if strings.Contains(string(r.UserData), a.Owner) {
			if err := c.DelRule(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	wantList(t, fw, b)
	// A change elsewhere in the namespace (another table) moves the
	// generation too; the rules read again are the same.
	other := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns), Table: "other"})
	mustEnsure(t, other, testRule(5))
	wantList(t, fw, b)
	// Someone else's instance on the same table.
	fw2 := newFirewall(t, nftables.Options{NetNSPath: nsPath(ns)})
	mustEnsure(t, fw2, a)
	wantList(t, fw, a, b)
}

// Two Firewalls on one table (two orchestrator processes) that want the
// same public address for different owners: exactly one wins.
func TestTwoInstancesContendForAnAddress(t *testing.T) {
	ns := newNS(t, "two")
	fws := []*natfw.Firewall{
		newFirewall(t, nftables.Options{NetNSPath: nsPath(ns)}),
		newFirewall(t, nftables.Options{NetNSPath: nsPath(ns)}),
	}
	const n = 16
	for round := range 3 {
		contested := netip.AddrFrom4([4]byte{203, 0, 113, byte(200 + round)})
		results := make([]error, n)
		start := make(chan struct{})
		done := make(chan int)
		for i := range n {
			go func() {
				r := testRule(20*round + i)
				r.Public = contested
				<-start
				results[i] = fws[i%2].EnsureNAT(context.Background(), r)
				done <- i
			}()
		}
		close(start)
		for range n {
			<-done
		}
		won := 0
		for i, err := range results {
			switch errs.CodeOf(err) {
			case errs.OK:
				won++
			case errs.AlreadyExists:
			default:
				t.Fatalf("round %d: EnsureNAT(%d) = %v", round, i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d owners got %s, want exactly 1; List: %v", round, won, contested, mustList(t, fws[0]))
		}
	}
}
