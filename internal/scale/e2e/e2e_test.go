//go:build linux

package e2e_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/pgcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/pgstore"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/guest/tasks"
	"github.com/managedvm/managedvm/internal/pgsql/pgtest"
	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/pgipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/nftables"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// What the benchmark sets up. Public addresses come from the benchmarking
// range (RFC 2544), local ones from 10.64.0.0/16; both exist only inside
// the benchmark's network namespace.
const (
	envChild = "MANAGEDVM_E2E_CHILD" // path of the child's configuration
	provName = "vc1"
	poolName = "public"
	poolCIDR = "198.18.0.0/20"
	mgmtCIDR = "192.0.2.0/24"
	opUser   = "mvme2e" // the operator account the task set creates
	table    = "mvme2e"
	// procs orchestrator processes with workersPer enrollments at a time
	// each: concurrency 32.
	procs      = 2
	workersPer = 16
	fullVMs    = 1000
	shortVMs   = 50
)

const sshHow = "set MANAGEDVM_SSHD_ADDR, _USER, _KEY and _KNOWN_HOSTS for an OpenSSH server (bash .ci/run starts one: .ci/components/30-sshd.sh)"

// pgHostPort returns the host:port of a PostgreSQL URL.
func pgHostPort(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// childConfig is what the parent hands each orchestrator process.
type childConfig struct {
	Role                     string
	PGURL, Schema            string
	SimURL, SimUser, SimPass string
	SimThumbprint            string
	VMIDs                    []string
	SSHAddr, KnownHosts      string
	CustUser, CustPass       string
	OperatorKey              string
	NetNS, LockDir           string
	Workers                  int
	SpansFile                string
}

// spanFile is what a child reports: every ended span's duration by name,
// and the first start and last end of its enrollments.
type spanFile struct {
	Durations  map[string][]time.Duration
	First, End time.Time
}

// BenchmarkEnrollEndToEnd enrolls 1,000 VMs (50 with -short) of a
// simulated vCenter through two orchestrator processes (this test binary
// re-executed, 16 enrollments at a time each: concurrency 32) sharing
// pgipam, pgstore and pgcmdb in one PostgreSQL database and one nftables
// table in a network namespace. Every enrollment validates the guest
// credentials through vSphere guest operations (vspheresim), allocates a
// public address, adds the NAT and applies the native enrollment task set
// (operator user, key, sudoers drop-in) over SSH to one real sshd, which
// the Dialer reaches for every VM (the account exists before the timed
// part, so each VM's task set runs and finds nothing to change, as a
// re-applied set does). The time is the wall time from the go signal to
// the last enrollment's end.
//
// Afterwards it checks (and reports as duplicates, leaks, failed): every
// VM enrolled once, no public address twice in the IPAM, the CMDB or the
// kernel, one DNAT rule per VM in the kernel and the kernel's rule count
// what the driver's layout gives for n rules, one CMDB row per VM, no
// open journal; then it unenrolls every VM and checks that no allocation,
// no kernel rule (but the table's shared one), no open journal and no
// enrolled record is left. Per-step p50/p99 come from the OpenTelemetry
// spans both processes recorded (tracetest.SpanRecorder).
func BenchmarkEnrollEndToEnd(b *testing.B) {
	if path := os.Getenv(envChild); path != "" {
		runChild(b, path)
		return
	}
	n := fullVMs
	if testing.Short() {
		n = shortVMs
	}
	env := components(b)
	for i := 0; i < b.N; i++ {
		runOnce(b, env, n)
	}
}

// env is the real components the benchmark found.
type env struct {
	pgURL                      string
	sshAddr, sshUser, sshKey   string
	sshKeyFile, knownHostsFile string
	hostKeys                   ssh.HostKeyPolicy
	// The customer's account: a user with a password and sudo rights
	// that need it (login shell /bin/sh).
	custUser, custPass string
}

func components(b *testing.B) env {
	b.Helper()
	e := env{pgURL: pgtest.URL(b)}
	e.sshAddr = testenv.Env(b, "MANAGEDVM_SSHD_ADDR", "OpenSSH sshd", sshHow)
	e.sshUser = testenv.Env(b, "MANAGEDVM_SSHD_USER", "OpenSSH sshd", sshHow)
	e.sshKeyFile = testenv.Env(b, "MANAGEDVM_SSHD_KEY", "OpenSSH sshd", sshHow)
	e.knownHostsFile = testenv.Env(b, "MANAGEDVM_SSHD_KNOWN_HOSTS", "OpenSSH sshd", sshHow)
	e.custUser = os.Getenv("MANAGEDVM_SSHD_PW_USER")
	e.custPass = os.Getenv("MANAGEDVM_SSHD_PW_PASSWORD")
	if e.custUser == "" || e.custPass == "" {
		testenv.Missing(b, "sshd user with a password", "set MANAGEDVM_SSHD_PW_USER and MANAGEDVM_SSHD_PW_PASSWORD for a user with a password and sudo (bash .ci/run creates one)")
	}
	if e.sshUser != "root" {
		testenv.Missing(b, "sshd root login", "set MANAGEDVM_SSHD_USER=root: the task set creates an account (bash .ci/run does)")
	}
	key, err := os.ReadFile(e.sshKeyFile)
	if err != nil {
		b.Fatal(err)
	}
	e.sshKey = string(key)
	kh, err := os.ReadFile(e.knownHostsFile)
	if err != nil {
		b.Fatal(err)
	}
	if e.hostKeys, err = ssh.KnownHosts(kh); err != nil {
		b.Fatal(err)
	}
	netnsOK(b)
	if _, err := exec.LookPath("nft"); err != nil {
		testenv.Missing(b, "nft (nftables)", "apt-get install nftables (bash .ci/run does): the benchmark counts the kernel's rules with it")
	}
	return e
}

// netnsOK stops the benchmark unless this process can create network
// namespaces.
func netnsOK(b *testing.B) {
	b.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "no ip (iproute2) on PATH"
	}
	if why != "" {
		testenv.Missing(b, "root + network namespaces (nftables)", "run as root with iproute2 ("+why+"); .ci/run does")
	}
}

func run(b *testing.B, name string, args ...string) string {
	b.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randHex(n int) string {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return fmt.Sprintf("%x", p)
}

// operatorKey returns a fresh authorized_keys line for the operator.
func operatorKey(b *testing.B) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	k, err := xssh.NewPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimSpace(string(xssh.MarshalAuthorizedKey(k))) + " managedvm-e2e"
}

func taskSet(b testing.TB, key string) *tasks.Set {
	ts, err := tasks.Enrollment(tasks.Operator{User: opUser, AuthorizedKeys: []string{key}})
	if err != nil {
		b.Fatal(err)
	}
	return tasks.NewSet(ts, nil)
}

func runOnce(b *testing.B, e env, n int) {
	b.StopTimer()
	ctx := context.Background()
	dir := b.TempDir()

	// PostgreSQL: one schema for the three drivers.
	schema := pgtest.NewSchema(b, e.pgURL, "e2e_")
	pool := pgtest.OpenPool(b, e.pgURL, schema, 8)
	for _, m := range []func(context.Context, *pgxpool.Pool) error{pgstore.Migrate, pgipam.Migrate, pgcmdb.Migrate} {
		if err := m(ctx, pool); err != nil {
			b.Fatal(err)
		}
	}
	addrs := ipam.New(pgipam.NewDriver(pool, nil), nil)
	if err := addrs.CreatePool(ctx, ipam.Pool{Name: poolName, Prefix: netip.MustParsePrefix(poolCIDR)}); err != nil {
		b.Fatal(err)
	}

	// The router's namespace.
	ns := "mvme2e-" + randHex(4)
	run(b, "ip", "netns", "add", ns)
	b.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run(b, "ip", "-n", ns, "link", "set", "lo", "up")
	nsPath := "/run/netns/" + ns
	lockDir := filepath.Join(dir, "locks")
	if err := os.Mkdir(lockDir, 0o755); err != nil {
		b.Fatal(err)
	}

	// The vCenter, its VMs and their guests' accounts.
	sim, err := vspheresim.New(ctx, &vspheresim.Options{ModelVMs: -1, GuestAccounts: map[string]string{e.custUser: e.custPass}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	names := make([]string, n)
	ipOf := map[string]int{}
	for i := range names {
		names[i] = fmt.Sprintf("e2e-%04d", i)
		ipOf[names[i]] = i
	}
	refs, err := sim.CreateNamedVMs(ctx, names, vspheresim.Placement{}, func(name string) *vspheresim.GuestState {
		i := ipOf[name] + 1
		return &vspheresim.GuestState{ToolsRunning: true, Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)",
			IP: fmt.Sprintf("10.64.%d.%d", i>>8, i&0xff)}
	})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i, r := range refs {
		ids[i] = sim.UUID(r)
	}

	// The operator account exists before the timed part (see the doc).
	key := operatorKey(b)
	root, err := ssh.Dial(ctx, ssh.Config{Addr: e.sshAddr, HostKeys: e.hostKeys,
		Credentials: guest.Credentials{Username: e.sshUser, PrivateKey: guest.NewSecret(e.sshKey)}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = root.Close() }) // after the revert below
	set := taskSet(b, key)
	if _, err := set.Apply(ctx, root); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if _, err := set.Revert(context.Background(), root); err != nil {
			b.Errorf("remove the operator account: %v", err)
		}
	})

	// Two orchestrator processes, each with half the VMs (interleaved).
	children := make([]*child, procs)
	for p := range procs {
		cfg := childConfig{
			Role: fmt.Sprintf("orchestrator-%d", p), PGURL: e.pgURL, Schema: schema,
			SimURL: sim.URL.String(), SimUser: sim.Username, SimPass: sim.Password, SimThumbprint: sim.Thumbprint,
			SSHAddr: e.sshAddr, KnownHosts: e.knownHostsFile, CustUser: e.custUser, CustPass: e.custPass,
			OperatorKey: key, NetNS: nsPath, LockDir: lockDir, Workers: workersPer,
			SpansFile: filepath.Join(dir, fmt.Sprintf("spans-%d.json", p)),
		}
		for i := p; i < n; i += procs {
			cfg.VMIDs = append(cfg.VMIDs, ids[i])
		}
		children[p] = startChild(b, dir, cfg)
	}
	for _, c := range children {
		c.expect(b, "READY")
	}
	sshdPID, pgPID := listener(e.sshAddr), listener(pgHostPort(e.pgURL))
	cpu0 := sampleCPU(sshdPID, pgPID, children)
	b.StartTimer()
	start := time.Now()
	for _, c := range children {
		c.send(b, "GO")
	}
	failed := 0
	for _, c := range children {
		var ok, bad int
		line := c.expect(b, "ENROLLED")
		if _, err := fmt.Sscanf(line, "ENROLLED %d %d", &ok, &bad); err != nil {
			b.Fatalf("%s: %q: %v", c.cfg.Role, line, err)
		}
		failed += bad
	}
	wall := time.Since(start)
	b.StopTimer()
	cpu := sampleCPU(sshdPID, pgPID, children).sub(cpu0)
	if sshdPID == 0 || pgPID == 0 {
		b.Logf("no CPU figures for sshd (pid %d) or PostgreSQL (pid %d): their listener was not found with ss", sshdPID, pgPID)
	}

	// The world after the enrollments.
	spans := readSpans(b, children)
	dups := checkEnrolled(b, ctx, pool, ns, ids)

	// Unenroll everything, then look for leftovers.
	for _, c := range children {
		c.send(b, "UNENROLL")
	}
	for _, c := range children {
		var ok, bad int
		line := c.expect(b, "UNENROLLED")
		if _, err := fmt.Sscanf(line, "UNENROLLED %d %d", &ok, &bad); err != nil || bad != 0 {
			b.Errorf("%s: %q (%v)", c.cfg.Role, line, err)
		}
	}
	for _, c := range children {
		c.stop(b)
	}
	leaks := checkClean(b, ctx, pool, ns, ids)

	report(b, n, wall, failed, dups, leaks, spans, cpu)
	if failed > 0 || dups > 0 || leaks > 0 {
		b.Errorf("%d failed enrollments, %d duplicates, %d leaks", failed, dups, leaks)
	}
}

// steps are the enrollment's step spans, in order.
var steps = []string{enroll.StepEligibility, enroll.StepCredentials, enroll.StepRequirements, enroll.StepIPAM,
	enroll.StepFirewall, enroll.StepConfigure, enroll.StepCMDB}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q * float64(len(d)))
	if i >= len(d) {
		i = len(d) - 1
	}
	return d[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// report gives the wall time, the rate, and per step p50, p99 and its
// share of the time the enrollments took (the sum over every
// enrollment): with 32 enrollments always in flight, the step with the
// largest share is where the workers wait, the one that bounds the
// throughput.
func report(b *testing.B, n int, wall time.Duration, failed, dups, leaks int, sf spanFile, cpu cpuSample) {
	b.ReportMetric(wall.Seconds(), "wall-s")
	b.ReportMetric(float64(n-failed)/wall.Seconds(), "enrollments/s")
	b.ReportMetric(float64(dups), "duplicates")
	b.ReportMetric(float64(leaks), "leaks")
	b.ReportMetric(float64(failed), "failed")
	var total time.Duration
	for _, d := range sf.Durations["enroll.Enroll"] {
		total += d
	}
	lines := []string{fmt.Sprintf("%d VMs, %d processes x %d workers: %.2f s wall, %.0f enrollments/s; in the children %.2f s from the first start to the last end",
		n, procs, workersPer, wall.Seconds(), float64(n-failed)/wall.Seconds(), sf.End.Sub(sf.First).Seconds())}
	// Where the machine's CPU went: the orchestrators, the simulated
	// vCenter (this process), the one sshd standing for every guest (its
	// sessions, shells and sudo), PostgreSQL, and whatever else ran.
	b.ReportMetric(cpu.orchestrators.Seconds(), "cpu-s-orchestrators")
	b.ReportMetric(cpu.parent.Seconds(), "cpu-s-vcsim")
	b.ReportMetric(cpu.sshd.Seconds(), "cpu-s-sshd")
	b.ReportMetric(cpu.pg.Seconds(), "cpu-s-postgres")
	b.ReportMetric(cpu.machine.Seconds(), "cpu-s-machine")
	other := cpu.machine - cpu.orchestrators - cpu.parent - cpu.sshd - cpu.pg
	lines = append(lines, fmt.Sprintf("CPU over the wall time (%.1f core-s available): orchestrators %.1f s (%.1f ms/VM), vCenter simulator %.1f s, sshd (the guests) %.1f s (%.1f ms/VM), PostgreSQL %.1f s, everything else on the machine %.1f s",
		float64(runtime.NumCPU())*wall.Seconds(), cpu.orchestrators.Seconds(), ms(cpu.orchestrators)/float64(n), cpu.parent.Seconds(),
		cpu.sshd.Seconds(), ms(cpu.sshd)/float64(n), cpu.pg.Seconds(), other.Seconds()))
	lines = append(lines, fmt.Sprintf("%-40s %6s %9s %9s %9s %7s", "span", "count", "p50 ms", "p99 ms", "mean ms", "share"))
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range sf.Durations {
			if !yield(k) {
				return
			}
		}
	})
	bound, boundShare := "", 0.0
	for _, name := range names {
		d := sf.Durations[name]
		slices.Sort(d)
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		share := 0.0
		if total > 0 {
			share = float64(sum) / float64(total)
		}
		lines = append(lines, fmt.Sprintf("%-40s %6d %9.2f %9.2f %9.2f %6.1f%%", name, len(d), ms(quantile(d, 0.5)), ms(quantile(d, 0.99)),
			ms(sum/time.Duration(len(d))), 100*share))
		if step, ok := strings.CutPrefix(name, "enroll.step."); ok && slices.Contains(steps, step) {
			b.ReportMetric(ms(quantile(d, 0.5)), step+"-p50-ms")
			b.ReportMetric(ms(quantile(d, 0.99)), step+"-p99-ms")
			if share > boundShare {
				bound, boundShare = step, share
			}
		}
	}
	lines = append(lines, fmt.Sprintf("bounding step: %s (%.0f%% of the enrollments' time)", bound, 100*boundShare))
	b.Log("\n" + strings.Join(lines, "\n"))
}

// readSpans merges the children's span files.
func readSpans(b *testing.B, cs []*child) spanFile {
	all := spanFile{Durations: map[string][]time.Duration{}}
	for _, c := range cs {
		data, err := os.ReadFile(c.cfg.SpansFile)
		if err != nil {
			b.Fatal(err)
		}
		var sf spanFile
		if err := json.Unmarshal(data, &sf); err != nil {
			b.Fatal(err)
		}
		for k, v := range sf.Durations {
			all.Durations[k] = append(all.Durations[k], v...)
		}
		if all.First.IsZero() || sf.First.Before(all.First) {
			all.First = sf.First
		}
		if sf.End.After(all.End) {
			all.End = sf.End
		}
	}
	return all
}

// kernelRules lists the rules of the benchmark's table as nft reads them
// from the kernel: chain and comment ("mvm:OWNER") of each.
func kernelRules(b *testing.B, ns string) [][2]string {
	b.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-j", "list", "table", "ip", table).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && strings.Contains(string(ee.Stderr), "No such file") {
			return nil // no table: no rules
		}
		b.Fatalf("nft list table: %v", err)
	}
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Chain   string `json:"chain"`
				Comment string `json:"comment"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		b.Fatal(err)
	}
	var rules [][2]string
	for _, o := range doc.Nftables {
		if o.Rule != nil {
			rules = append(rules, [2]string{o.Rule.Chain, o.Rule.Comment})
		}
	}
	return rules
}

// perOwnerRules is how many kernel rules one NAT rule of the benchmark
// takes (nftables doc.go, "Kernel layout"): DNAT, SNAT, one accept per
// source and port (one source, port 22), the drop. The table adds one
// shared rule (ct state established,related accept).
const perOwnerRules = 4

// firewallOf opens a new Firewall over the benchmark's table: its List
// reads the kernel.
func firewallOf(b *testing.B, ns string) *natfw.Firewall {
	fw, err := nftables.New(&nftables.Options{Table: table, NetNSPath: "/run/netns/" + ns, LockDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = fw.Close() })
	return fw
}

// checkEnrolled checks the shared world after the enrollments and returns
// how many duplicates (or missing pieces) it found.
func checkEnrolled(b *testing.B, ctx context.Context, pool *pgxpool.Pool, ns string, ids []string) int {
	bad := 0
	fail := func(format string, args ...any) { bad++; b.Errorf(format, args...) }
	owners := map[string]bool{}
	for _, id := range ids {
		owners[cmdb.Key{Provider: provName, VMID: id}.String()] = true
	}
	recs, err := pgcmdb.New(pool, nil).List(ctx, cmdb.Filter{IncludeRetired: true})
	if err != nil {
		b.Fatal(err)
	}
	byIP := map[netip.Addr]string{}
	rows := map[string]int{}
	for _, r := range recs {
		rows[r.Key.String()]++
		if r.State != cmdb.Enrolled {
			fail("%s is %s (%s at %s)", r.Key, r.State, r.Reason, r.FailedStep)
			continue
		}
		if o, dup := byIP[r.PublicIP]; dup {
			fail("CMDB: %v is the public IP of %s and %s", r.PublicIP, o, r.Key)
		}
		byIP[r.PublicIP] = r.Key.String()
	}
	for o := range owners {
		if rows[o] != 1 {
			fail("CMDB: %d rows for %s", rows[o], o)
		}
	}
	allocs, err := ipam.New(pgipam.NewDriver(pool, nil), nil).Allocations(ctx, poolName)
	if err != nil {
		b.Fatal(err)
	}
	seen := map[netip.Addr]string{}
	for _, a := range allocs {
		if o, dup := seen[a.Address]; dup {
			fail("IPAM: %v allocated to %s and %s", a.Address, o, a.Owner)
		}
		seen[a.Address] = a.Owner
		if byIP[a.Address] != a.Owner {
			fail("IPAM: %v held by %s, CMDB says %q", a.Address, a.Owner, byIP[a.Address])
		}
	}
	if len(allocs) != len(ids) {
		fail("IPAM: %d allocations for %d VMs", len(allocs), len(ids))
	}
	rules, err := firewallOf(b, ns).List(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pub := map[netip.Addr]string{}
	for _, r := range rules {
		if o, dup := pub[r.Public]; dup {
			fail("firewall: %v NAT'd for %s and %s", r.Public, o, r.Owner)
		}
		pub[r.Public] = r.Owner
		if seen[r.Public] != r.Owner {
			fail("firewall: %v -> %v of %s, IPAM gave it to %q", r.Public, r.Local, r.Owner, seen[r.Public])
		}
	}
	if len(rules) != len(ids) {
		fail("firewall: %d NAT rules for %d VMs", len(rules), len(ids))
	}
	kr := kernelRules(b, ns)
	dnat := map[string]int{}
	for _, r := range kr {
		if r[0] == "prerouting" {
			dnat[r[1]]++
		}
	}
	for o := range owners {
		if c := dnat["mvm:"+o]; c != 1 {
			fail("kernel: %d DNAT rules for %s", c, o)
		}
	}
	if want := perOwnerRules*len(ids) + 1; len(kr) != want {
		fail("kernel: %d rules in table %s, want %d for %d NAT rules", len(kr), table, want, len(ids))
	}
	store := pgstore.New(pool, nil)
	open, err := store.OpenJournals(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, j := range open {
		fail("journal %s of %s left open (%s, held by %s)", j.ID, j.VM, j.Phase, j.Holder)
	}
	js, err := store.Journals(ctx)
	if err != nil {
		b.Fatal(err)
	}
	succeeded := map[string]int{}
	for _, j := range js {
		if j.Op == enroll.OpEnroll && j.Phase == enroll.Succeeded {
			succeeded[j.VM.String()]++
		}
	}
	for o := range owners {
		if succeeded[o] != 1 {
			fail("%d succeeded enrollments of %s", succeeded[o], o)
		}
	}
	return bad
}

// checkClean looks for anything left after every VM was unenrolled and
// returns how many leftovers it found.
func checkClean(b *testing.B, ctx context.Context, pool *pgxpool.Pool, ns string, ids []string) int {
	bad := 0
	fail := func(format string, args ...any) { bad++; b.Errorf(format, args...) }
	allocs, err := ipam.New(pgipam.NewDriver(pool, nil), nil).Allocations(ctx, poolName)
	if err != nil {
		b.Fatal(err)
	}
	for _, a := range allocs {
		fail("leaked address %v of %s", a.Address, a.Owner)
	}
	rules, err := firewallOf(b, ns).List(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range rules {
		fail("leaked NAT rule %v -> %v of %s", r.Public, r.Local, r.Owner)
	}
	for _, r := range kernelRules(b, ns) {
		if strings.HasPrefix(r[1], "mvm:") {
			fail("leaked kernel rule in %s: %s", r[0], r[1])
		}
	}
	recs, err := pgcmdb.New(pool, nil).List(ctx, cmdb.Filter{IncludeRetired: true})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range recs {
		if r.State != cmdb.Available || r.PublicIP.IsValid() {
			fail("CMDB: %s is %s with public IP %v after unenrollment", r.Key, r.State, r.PublicIP)
		}
	}
	if len(recs) != len(ids) {
		fail("CMDB: %d rows for %d VMs", len(recs), len(ids))
	}
	open, err := pgstore.New(pool, nil).OpenJournals(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, j := range open {
		fail("journal %s of %s left open (%s)", j.ID, j.VM, j.Phase)
	}
	return bad
}

// child is one orchestrator process: this test binary re-executed with
// envChild set.
type child struct {
	cfg    childConfig
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lockedBuffer
}

func startChild(b *testing.B, dir string, cfg childConfig) *child {
	b.Helper()
	path := filepath.Join(dir, cfg.Role+".json")
	data, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	args := []string{"-test.run=^$", "-test.bench=^BenchmarkEnrollEndToEnd$", "-test.benchtime=1x", "-test.count=1"}
	// MANAGEDVM_E2E_PROFILE=DIR profiles each orchestrator process:
	// DIR/<role>.cpu (go tool pprof).
	if d := os.Getenv("MANAGEDVM_E2E_PROFILE"); d != "" {
		args = append(args, "-test.cpuprofile="+filepath.Join(d, cfg.Role+".cpu"))
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envChild+"="+path)
	c := &child{cfg: cfg, cmd: cmd, lines: make(chan string, 64), stderr: &lockedBuffer{}}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "E2E "); ok {
				c.lines <- l
			}
		}
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("%s stderr:\n%s", cfg.Role, c.stderr.String())
		}
	})
	return c
}

func (c *child) expect(b *testing.B, word string) string {
	b.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok || !strings.HasPrefix(l, word) {
			b.Fatalf("%s: %q, want %s (stderr:\n%s)", c.cfg.Role, l, word, c.stderr.String())
		}
		return l
	case <-time.After(5 * time.Minute):
		b.Fatalf("%s: no %s in 5 minutes (stderr:\n%s)", c.cfg.Role, word, c.stderr.String())
	}
	return ""
}

func (c *child) send(b *testing.B, line string) {
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		b.Fatalf("%s: %v", c.cfg.Role, err)
	}
}

func (c *child) stop(b *testing.B) {
	_ = c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		b.Errorf("%s: %v\n%s", c.cfg.Role, err, c.stderr.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// say writes a line for the parent.
func say(format string, args ...any) { fmt.Printf("E2E "+format+"\n", args...) }

// runChild is one orchestrator process: it builds its drivers over the
// shared components, says READY, enrolls its VMs on GO, writes its spans,
// says ENROLLED, and unenrolls them on UNENROLL.
func runChild(b *testing.B, path string) {
	ctx := context.Background()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var cfg childConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		b.Fatal(err)
	}
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(ctx) }()

	prov, err := vsphere.New(ctx, cfg.SimURL, cfg.SimUser, guest.NewSecret(cfg.SimPass), &vsphere.Options{Thumbprint: cfg.SimThumbprint, TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	defer prov.Close()
	pool := pgtest.OpenPool(b, cfg.PGURL, cfg.Schema, int32(cfg.Workers+4))
	addrs, err := pgipam.Open(ctx, pool, &pgipam.Options{TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	fw, err := nftables.New(&nftables.Options{Table: table, NetNSPath: cfg.NetNS, LockDir: cfg.LockDir, TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	defer fw.Close()
	kh, err := os.ReadFile(cfg.KnownHosts)
	if err != nil {
		b.Fatal(err)
	}
	hk, err := ssh.KnownHosts(kh)
	if err != nil {
		b.Fatal(err)
	}
	// Every VM's public address leads to the one sshd.
	dialer := guest.DialFunc(func(ctx context.Context, t guest.Target, cred guest.Credentials) (*guest.Executor, error) {
		return ssh.Dial(ctx, ssh.Config{Addr: cfg.SSHAddr, Credentials: cred, HostKeys: hk},
			&ssh.Options{Executor: &guest.Options{TracerProvider: tp}})
	})
	o, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{provName: prov},
		IPAM:      addrs, Firewall: fw,
		CMDB:         pgcmdb.New(pool, &pgcmdb.Options{TracerProvider: tp}),
		Store:        pgstore.New(pool, &pgstore.Options{TracerProvider: tp}),
		Policy:       enroll.Policy{Pool: poolName, ManagementSources: []netip.Prefix{netip.MustParsePrefix(mgmtCIDR)}},
		Configurator: taskSet(b, cfg.OperatorKey),
		Dialer:       dialer,
	}, &enroll.Options{Instance: cfg.Role, TracerProvider: tp, Observer: enroll.ObserverFunc(func(enroll.Event) {})})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	// The customer's account, for guest operations and SSH alike.
	cred := guest.Password(cfg.CustUser, cfg.CustPass)

	in := bufio.NewScanner(os.Stdin)
	wait := func(word string) {
		for in.Scan() {
			if in.Text() == word {
				return
			}
		}
		b.Fatalf("stdin ended before %s", word)
	}
	say("READY")
	wait("GO")
	reqs := make([]enroll.Request, len(cfg.VMIDs))
	for i, id := range cfg.VMIDs {
		reqs[i] = enroll.Request{Provider: provName, VMID: id, Credentials: cred}
	}
	results := o.EnrollAll(ctx, reqs, cfg.Workers)
	sf := spanFile{Durations: map[string][]time.Duration{}}
	for _, s := range sr.Ended() {
		sf.Durations[s.Name()] = append(sf.Durations[s.Name()], s.EndTime().Sub(s.StartTime()))
		if s.Name() == "enroll.Enroll" {
			if sf.First.IsZero() || s.StartTime().Before(sf.First) {
				sf.First = s.StartTime()
			}
			if s.EndTime().After(sf.End) {
				sf.End = s.EndTime()
			}
		}
	}
	out, err := json.Marshal(sf)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(cfg.SpansFile, out, 0o600); err != nil {
		b.Fatal(err)
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "enroll %s: %v\n", r.VM, r.Err)
		}
	}
	say("ENROLLED %d %d", len(results)-failed, failed)
	sr.Reset()

	wait("UNENROLL")
	var mu sync.Mutex
	failed = 0
	next := make(chan string)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for id := range next {
				// No credentials: the operator account stays (the
				// benchmark's parent removes it once).
				if _, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: id}); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
					fmt.Fprintf(os.Stderr, "unenroll %s: %v\n", id, err)
				}
			}
		})
	}
	for _, id := range cfg.VMIDs {
		next <- id
	}
	close(next)
	wg.Wait()
	say("UNENROLLED %d %d", len(cfg.VMIDs)-failed, failed)
	for in.Scan() { // until the parent closes stdin
	}
}
