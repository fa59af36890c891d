// Command quickstart runs the whole guest OS services flow with no set-up:
// a simulated vCenter (provider/vsphere/vspheresim, on govmomi's simulator) driven by the real
// vSphere driver, and in-memory IPAM, firewall and CMDB:
//
//	go run ./examples/quickstart
//
// It discovers the VMs of the vCenter into the CMDB, enrolls one
// (credentials validated in the guest through VMware Tools guest
// operations, OS requirements checked, a public IP allocated, a 1:1 NAT
// added, the operator's service account created, the CMDB record marked
// enrolled), shows a failed enrollment with a wrong password rolled back,
// and unenrolls the first VM again.
//
// The simulated guests run their commands on this machine with /bin/sh;
// the few commands that would change the machine (useradd, userdel) and the
// OS identity (os-release) are stand-ins from a temporary directory.
package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw/memfw"
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

// guestShims are stand-ins for the commands a simulated guest must not run
// on this machine for real, and its OS identity.
var guestShims = map[string]string{
	"useradd": "#!/bin/sh\nexit 0\n",
	"userdel": "#!/bin/sh\nexit 0\n",
	"sudo":    "#!/bin/sh\nexec \"$@\"\n",
	"cat": `#!/bin/sh
case "$1" in
/etc/os-release|/usr/lib/os-release)
	printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n' ;;
*) exec /bin/cat "$@" ;;
esac
`,
}

// startVCenter starts the simulated vCenter: three running Debian VMs whose
// VMware Tools run and report an IP, guest operations for root.
func startVCenter(ctx context.Context) (*vspheresim.Sim, func(), error) {
	shims, err := os.MkdirTemp("", "managedvm-quickstart-")
	if err != nil {
		return nil, nil, err
	}
	for name, body := range guestShims {
		if err := os.WriteFile(filepath.Join(shims, name), []byte(body), 0o755); err != nil {
			_ = os.RemoveAll(shims)
			return nil, nil, err
		}
	}
	sim, err := vspheresim.New(ctx, &vspheresim.Options{
		ModelVMs:      -1,
		GuestAccounts: map[string]string{"root": "customer-secret"},
		GuestEnv:      []string{"PATH=" + shims + ":/usr/sbin:/usr/bin:/sbin:/bin"},
	})
	if err != nil {
		_ = os.RemoveAll(shims)
		return nil, nil, err
	}
	ips := map[string]string{"web-01": "192.168.10.11", "db-01": "192.168.10.12", "app-01": "192.168.10.13"}
	_, err = sim.CreateNamedVMs(ctx, []string{"web-01", "db-01", "app-01"}, vspheresim.Placement{}, func(name string) *vspheresim.GuestState {
		return &vspheresim.GuestState{ToolsRunning: true, IP: ips[name], Hostname: name, Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)"}
	})
	if err != nil {
		sim.Close()
		_ = os.RemoveAll(shims)
		return nil, nil, err
	}
	return sim, func() { sim.Close(); _ = os.RemoveAll(shims) }, nil
}

func run(ctx context.Context, out io.Writer) error {
	// 1. The customer's hypervisor: a vCenter with three running VMs whose
	// VMware Tools run, reached through the vSphere driver (TLS verified
	// against the simulator's certificate).
	sim, stop, err := startVCenter(ctx)
	if err != nil {
		return err
	}
	defer stop()
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
	web, dbVM := byName["web-01"], byName["db-01"]

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

	orch, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{providerName: hv},
		IPAM:      addrs,
		Firewall:  fw,
		CMDB:      db,
		Store:     enroll.NewMemoryStore(nil),
		Policy: enroll.Policy{
			Pool:              pool,
			ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			Requirements: map[guest.OSFamily]guest.Requirements{
				guest.Linux: {
					Distributions:  map[string]string{"debian": "11", "ubuntu": "20.04", "rhel": "8"},
					MinFreeDiskMiB: 1024,
					Commands:       []string{"useradd", "sudo"},
				},
			},
		},
		Configurator: serviceAccount{},
	}, &enroll.Options{Observer: enroll.ObserverFunc(func(e enroll.Event) { progress(out, e) })})
	if err != nil {
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
	for _, r := range recs {
		ip, _ := r.VM.PrimaryIP()
		fmt.Fprintf(out, "   %-8s %-14s %-30s %s\n", r.VM.Name, ip, r.VM.Guest.OSName, r.State)
	}

	// 4. Enroll web-01 with the right credentials.
	fmt.Fprintln(out, "\n== enrolling web-01")
	res, err := orch.Enroll(ctx, enroll.Request{
		Key: "req-1", Provider: providerName, VMID: web.ID,
		Credentials: guest.Password("root", "customer-secret"),
	})
	if err != nil {
		return fmt.Errorf("enrolling web-01: %w", err)
	}
	fmt.Fprintf(out, "   enrolled: public %s -> local %s, ports %v\n", res.PublicIP, res.LocalIP, res.Ports)
	rule, err := fw.Get(ctx, res.VM.String())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   firewall: NAT %s <-> %s, allowed %v from %v\n", rule.Public, rule.Local, rule.Ports, rule.Sources)
	rec, err := db.Get(ctx, res.VM)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   cmdb:     %s state=%s public=%s\n", rec.Key, rec.State, rec.PublicIP)

	// 5. Enroll db-01 with a wrong password: refused in the guest, rolled back.
	fmt.Fprintln(out, "\n== enrolling db-01 with a wrong password")
	res, err = orch.Enroll(ctx, enroll.Request{
		Key: "req-2", Provider: providerName, VMID: dbVM.ID,
		Credentials: guest.Password("root", "not-the-password"),
	})
	if err == nil {
		return fmt.Errorf("db-01 enrolled with a wrong password")
	}
	fmt.Fprintf(out, "   failed (%s) at step %q\n", errs.CodeOf(err), res.FailedStep)
	rec, err = db.Get(ctx, res.VM)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   cmdb:     %s state=%s\n", rec.Key, rec.State)
	info, err := addrs.Pool(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   ipam:     %d of %d public addresses in use (web-01's only: db-01 holds none)\n", info.Used, info.Size)

	// 6. Unenroll web-01: NAT removed, address released, record available.
	fmt.Fprintln(out, "\n== unenrolling web-01")
	if _, err := orch.Unenroll(ctx, enroll.UnenrollRequest{
		Provider: providerName, VMID: web.ID, Credentials: guest.Password("root", "customer-secret"),
	}); err != nil {
		return err
	}
	rules, err := fw.List(ctx)
	if err != nil {
		return err
	}
	info, err = addrs.Pool(ctx, pool)
	if err != nil {
		return err
	}
	rec, err = db.Get(ctx, cmdb.Key{Provider: providerName, VMID: web.ID})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   cmdb: state=%s; firewall: %d NAT rules; ipam: %d addresses in use\n", rec.State, len(rules), info.Used)
	return nil
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
	case enroll.StepFailed:
		line = fmt.Sprintf("   FAIL %s: %s", e.Step, e.Message)
	case enroll.CompensationDone:
		line = "   undo " + e.Step
	case enroll.RequirementsReported:
		line = "   requirements: " + e.Message
	default:
		return
	}
	if e.Message != "" && e.Kind == enroll.StepSucceeded {
		line += " (" + e.Message + ")"
	}
	fmt.Fprintln(out, line)
}
