// Command quickstart runs the whole guest OS services flow with no set-up:
// a simulated vCenter (provider/vsphere/vspheresim) driven by the real
// vSphere driver, and in-memory IPAM, firewall and CMDB:
//
//	go run ./examples/quickstart
//
// It discovers the VMs of the vCenter into the CMDB and enrolls three of
// them. web-01 enrolls: its credentials are validated in the guest through
// VMware Tools guest operations, its OS requirements checked, a public IP
// allocated, a 1:1 NAT added, the operator's service account created and
// the CMDB record marked enrolled. db-01 fails after its IP and NAT exist
// (its guest cannot create the service account), and the orchestrator
// undoes both. app-01 is refused a wrong password before anything exists.
// Last, web-01 is unenrolled. After each step it prints what the IPAM,
// the firewall and the CMDB hold.
//
// The guests are scripted (nothing runs on this machine): memguest tables
// say what each command the enrollment runs prints, as a Debian 12 guest
// would. The program uses public packages only: copy it into a module of
// your own and it runs there too.
package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/netreq"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

const (
	providerName = "vcenter-lab"
	zone         = "az1"
	pool         = "public-az1"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// What a Debian 12 guest prints for the OS facts script and for df.
const (
	debianFacts = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
__MANAGEDVM_UNAME__
6.1.0-28-amd64
x86_64
__MANAGEDVM_EXTRA__
PKG=apt-get
INIT=systemd
DISK=20480000
`
	debianDF = `Filesystem     1024-blocks    Used Available Capacity Mounted on
/dev/sda1         30830592 8000000  20480000      29% /
`
)

// debianGuest is a scripted Debian 12 guest: it answers the commands an
// enrollment runs (OS facts, free disk, the required commands, the
// service account's useradd and userdel), with useradd answered by
// useradd. Any other command is "not found".
func debianGuest(useradd memguest.Handler) *memguest.Driver {
	d := memguest.NewDriver(guest.Linux, nil)
	d.HandleScript("__MANAGEDVM_UNAME__", memguest.Reply(debianFacts))
	d.HandleArgs([]string{"df", "-Pk", "/"}, memguest.Reply(debianDF))
	// The check for required commands prints the missing ones: none.
	d.HandleArgsPrefix([]string{"sh", "-c"}, memguest.Reply(""))
	d.HandleArgsPrefix([]string{"useradd"}, useradd)
	d.HandleArgsPrefix([]string{"userdel"}, memguest.Reply(""))
	return d
}

// startVCenter starts the simulated vCenter: three running Debian VMs
// whose VMware Tools run and report an IP, guest operations for root. On
// db-01, useradd fails as it does when /etc/passwd is locked.
func startVCenter(ctx context.Context) (*vspheresim.Sim, error) {
	healthy := debianGuest(memguest.Reply(""))
	locked := debianGuest(memguest.Exit(1, "", "useradd: cannot lock /etc/passwd; try again later.\n"))
	sim, err := vspheresim.New(ctx, &vspheresim.Options{
		ModelVMs:      -1,
		GuestAccounts: map[string]string{"root": "customer-secret"},
		GuestHandler: vspheresim.ExecutorHandler(func(vm vspheresim.GuestVM) *guest.Executor {
			if vm.Name == "db-01" {
				return locked.Executor()
			}
			return healthy.Executor()
		}),
	})
	if err != nil {
		return nil, err
	}
	ips := map[string]string{"web-01": "192.168.10.11", "db-01": "192.168.10.12", "app-01": "192.168.10.13"}
	_, err = sim.CreateNamedVMs(ctx, slices.Sorted(maps.Keys(ips)), vspheresim.Placement{}, func(name string) *vspheresim.GuestState {
		return &vspheresim.GuestState{ToolsRunning: true, IP: ips[name], Hostname: name, Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)"}
	})
	if err != nil {
		_ = sim.Close()
		return nil, err
	}
	return sim, nil
}

func run(ctx context.Context, out io.Writer) error {
	// 1. The customer's hypervisor: a vCenter with three running VMs whose
	// VMware Tools run, reached through the vSphere driver (TLS verified
	// against the simulator's certificate).
	sim, err := startVCenter(ctx)
	if err != nil {
		return err
	}
	defer sim.Close()
	hv, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{
		RootCAs:           sim.CAs,
		Zones:             []vsphere.ZoneConfig{{Name: zone, Datacenters: []string{"DC0"}, Clusters: []string{"DC0_C0"}}},
		GuestPollInterval: 10 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	defer hv.Close()
	vms, err := hv.List(ctx, &provider.ListOptions{Zone: zone})
	if err != nil {
		return err
	}
	byName := map[string]provider.VM{}
	for _, vm := range vms {
		byName[vm.Name] = vm
	}

	// 2. The operator's systems: IPAM with a public pool, the firewall, the
	// CMDB, and the journal store.
	addrs := memipam.New(nil)
	if err := addrs.CreatePool(ctx, ipam.Pool{
		Name: pool, Prefix: netip.MustParsePrefix("203.0.113.0/28"),
		Gateway: netip.MustParseAddr("203.0.113.1"),
	}); err != nil {
		return err
	}
	fw := memfw.New(nil)
	db := memcmdb.New(nil)
	policy := enroll.Policy{
		Pool:              pool,
		ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Requirements: map[guest.OSFamily]guest.Requirements{
			guest.Linux: {
				Distributions:  map[string]string{"debian": "11", "ubuntu": "20.04", "rhel": "8"},
				MinFreeDiskMiB: 1024,
				Commands:       []string{"useradd", "sudo"},
			},
		},
	}
	orch, err := enroll.New(enroll.Config{
		Providers:    map[string]*provider.Provider{providerName: hv},
		IPAM:         addrs,
		Firewall:     fw,
		CMDB:         db,
		Store:        enroll.NewMemoryStore(nil),
		Policy:       policy,
		Configurator: serviceAccount{},
	}, &enroll.Options{Observer: enroll.ObserverFunc(func(e enroll.Event) { progress(out, e) })})
	if err != nil {
		return err
	}
	holdings := func() error { return printHoldings(ctx, out, addrs, fw, db) }

	// The firewall matrix of this set-up (netreq.Probe would check it).
	matrix, err := netreq.Derive(netreq.Config{Providers: map[string]*provider.Provider{providerName: hv}, Policy: policy})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "== network requirements")
	if err := matrix.WriteTable(out); err != nil {
		return err
	}

	// 3. Index the provider: every VM becomes a CMDB record, available.
	fmt.Fprintln(out, "== discovering devices")
	if err := orch.Indexer(nil).Sync(ctx, providerName); err != nil {
		return err
	}
	recs, err := db.List(ctx, cmdb.Filter{Provider: providerName})
	if err != nil {
		return err
	}
	slices.SortFunc(recs, func(a, b cmdb.Record) int { return strings.Compare(a.VM.Name, b.VM.Name) })
	for _, r := range recs {
		ip, _ := r.VM.PrimaryIP()
		fmt.Fprintf(out, "   %-8s %-14s %-30s %s\n", r.VM.Name, ip, r.VM.Guest.OSName, r.State)
	}

	// 4. Enroll web-01 with the right credentials.
	fmt.Fprintln(out, "\n== enrolling web-01")
	res, err := orch.Enroll(ctx, enroll.Request{
		Key: "req-1", Provider: providerName, VMID: byName["web-01"].ID,
		Credentials: guest.Password("root", "customer-secret"),
	})
	if err != nil {
		return fmt.Errorf("enrolling web-01: %w", err)
	}
	fmt.Fprintf(out, "   enrolled: public %s -> local %s, ports %s\n", res.PublicIP, res.LocalIP, join(res.Ports))
	rule, err := fw.Get(ctx, res.VM.String())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   firewall: NAT %s <-> %s, allowed %s from %s\n", rule.Public, rule.Local, join(rule.Ports), join(rule.Sources))
	if err := holdings(); err != nil {
		return err
	}

	// 5. Enroll db-01: its IP and NAT are set up, then creating the service
	// account fails in its guest; the orchestrator undoes the NAT and
	// releases the IP (the "undo" lines are its events).
	fmt.Fprintln(out, "\n== enrolling db-01 (its guest cannot create the service account)")
	res, err = orch.Enroll(ctx, enroll.Request{
		Key: "req-2", Provider: providerName, VMID: byName["db-01"].ID,
		Credentials: guest.Password("root", "customer-secret"),
	})
	if err == nil {
		return fmt.Errorf("db-01 enrolled although its guest cannot create the service account")
	}
	fmt.Fprintf(out, "   failed (%s) at step %q\n", errs.CodeOf(err), res.FailedStep)
	if err := printVM(ctx, out, "db-01", res.VM, addrs, fw); err != nil {
		return err
	}
	if err := holdings(); err != nil {
		return err
	}

	// 6. Enroll app-01 with a wrong password: refused in the guest before
	// anything exists, so there is nothing to undo.
	fmt.Fprintln(out, "\n== enrolling app-01 with a wrong password")
	res, err = orch.Enroll(ctx, enroll.Request{
		Key: "req-3", Provider: providerName, VMID: byName["app-01"].ID,
		Credentials: guest.Password("root", "not-the-password"),
	})
	if err == nil {
		return fmt.Errorf("app-01 enrolled with a wrong password")
	}
	fmt.Fprintf(out, "   failed (%s) at step %q\n", errs.CodeOf(err), res.FailedStep)
	if err := holdings(); err != nil {
		return err
	}

	// 7. Unenroll web-01: NAT removed, address released, record available.
	fmt.Fprintln(out, "\n== unenrolling web-01")
	if _, err := orch.Unenroll(ctx, enroll.UnenrollRequest{
		Provider: providerName, VMID: byName["web-01"].ID, Credentials: guest.Password("root", "customer-secret"),
	}); err != nil {
		return err
	}
	return holdings()
}

// printHoldings prints what the drivers hold: public addresses in use, NAT
// rules, and CMDB records by state.
func printHoldings(ctx context.Context, out io.Writer, addrs *ipam.IPAM, fw *natfw.Firewall, db *cmdb.CMDB) error {
	info, err := addrs.Pool(ctx, pool)
	if err != nil {
		return err
	}
	rules, err := fw.List(ctx)
	if err != nil {
		return err
	}
	recs, err := db.List(ctx, cmdb.Filter{Provider: providerName})
	if err != nil {
		return err
	}
	states := map[cmdb.State]int{}
	for _, r := range recs {
		states[r.State]++
	}
	var byState []string
	for _, s := range slices.Sorted(maps.Keys(states)) {
		byState = append(byState, fmt.Sprintf("%d %s", states[s], s))
	}
	fmt.Fprintf(out, "   holdings: ipam %d of %d public addresses in use; firewall %d NAT %s; cmdb %s\n",
		info.Used, info.Size, len(rules), plural(len(rules), "rule", "rules"), strings.Join(byState, ", "))
	return nil
}

// printVM prints what the IPAM and the firewall hold for one VM.
func printVM(ctx context.Context, out io.Writer, name string, vm cmdb.Key, addrs *ipam.IPAM, fw *natfw.Firewall) error {
	address, nat := "none", "none"
	a, err := addrs.Lookup(ctx, pool, vm.String())
	switch {
	case err == nil:
		address = a.Address.String()
	case errs.CodeOf(err) != errs.NotFound:
		return err
	}
	r, err := fw.Get(ctx, vm.String())
	switch {
	case err == nil:
		nat = r.Public.String() + " <-> " + r.Local.String()
	case errs.CodeOf(err) != errs.NotFound:
		return err
	}
	fmt.Fprintf(out, "   %s now: public address %s, NAT rule %s\n", name, address, nat)
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// join prints a list as "a, b".
func join[T fmt.Stringer](items []T) string {
	s := make([]string, len(items))
	for i, it := range items {
		s[i] = it.String()
	}
	return strings.Join(s, ", ")
}

// serviceAccount is a tiny Configurator: it creates the operator's service
// account in the guest (the SSH/WinRM task library does much more).
type serviceAccount struct{}

func (serviceAccount) Configure(ctx context.Context, t guest.Target, ex *guest.Executor) error {
	_, err := ex.Run(ctx, guest.Command{Args: []string{"useradd", "--create-home", "mvm-operator"}})
	return err
}

func (serviceAccount) Unconfigure(ctx context.Context, t guest.Target, ex *guest.Executor) error {
	_, err := ex.Run(ctx, guest.Command{Args: []string{"userdel", "--remove", "mvm-operator"}})
	return err
}

// progress prints the orchestrator's events as they happen.
func progress(out io.Writer, e enroll.Event) {
	var line string
	switch e.Kind {
	case enroll.StepSucceeded:
		line = "   ok   " + e.Step
		if e.Message != "" {
			line += " (" + e.Message + ")"
		}
	case enroll.StepFailed:
		line = fmt.Sprintf("   FAIL %s: %s", e.Step, e.Message)
	case enroll.CompensationDone:
		line = "   undo " + e.Step
		if e.Message != "" {
			line += " (" + e.Message + ")"
		}
	case enroll.CompensationFailed:
		line = fmt.Sprintf("   UNDO FAILED %s: %s", e.Step, e.Message)
	case enroll.RequirementsReported:
		line = "   requirements: " + e.Message
	default:
		return
	}
	fmt.Fprintln(out, line)
}
