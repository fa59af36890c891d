// Command quickstart runs the whole guest OS services flow on embedded,
// in-memory drivers with no set-up:
//
//	go run ./examples/quickstart
//
// It discovers the VMs of a simulated hypervisor into the CMDB, enrolls one
// (credentials validated in the guest, OS requirements checked, a public IP
// allocated, a 1:1 NAT added, the operator's service account created, the
// CMDB record marked enrolled), shows a failed enrollment with a wrong
// password rolled back, and unenrolls the first VM again.
package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

const (
	providerName = "vcenter-lab"
	zone         = "az1"
	pool         = "public-az1"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// 1. The customer's hypervisor: three running VMs with guest tools.
	hv := memprovider.New(&memprovider.Options{GuestHandler: guestOS})
	if err := hv.AddZone(provider.Zone{Name: zone, Datacenters: []string{"DC0"}, Clusters: []string{"DC0_C0"}}); err != nil {
		return err
	}
	vms := []provider.VM{
		linuxVM("web-01", "192.168.10.11"),
		linuxVM("db-01", "192.168.10.12"),
		linuxVM("app-01", "192.168.10.13"),
	}
	for i, vm := range vms {
		added, err := hv.AddVM(vm)
		if err != nil {
			return err
		}
		vms[i] = added
		if err := hv.SetGuestAccount(added.ID, "root", "customer-secret"); err != nil {
			return err
		}
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

	orch, err := enroll.New(enroll.Config{
		Providers: map[string]provider.Provider{providerName: hv},
		IPAM:      addrs,
		Firewall:  fw,
		CMDB:      db,
		Store:     enroll.NewMemoryStore(nil),
		Policy: enroll.Policy{
			Pool:              pool,
			ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			Requirements: map[guest.OSFamily]enroll.Requirements{
				guest.Linux: {
					Distributions:  map[string]string{"debian": "11", "ubuntu": "20.04", "rhel": "8"},
					MinFreeDiskMiB: 1024,
					Commands:       []string{"useradd", "sudo"},
				},
			},
		},
		Configurator: serviceAccount{},
	}, &enroll.Options{Observer: enroll.ObserverFunc(progress)})
	if err != nil {
		return err
	}

	// 3. Index the provider: every VM becomes a CMDB record, available.
	fmt.Println("== discovering devices")
	if err := orch.Indexer(nil).Sync(ctx, providerName); err != nil {
		return err
	}
	recs, err := db.List(ctx, cmdb.Filter{Provider: providerName})
	if err != nil {
		return err
	}
	for _, r := range recs {
		ip, _ := r.VM.PrimaryIP()
		fmt.Printf("   %-8s %-14s %-30s %s\n", r.VM.Name, ip, r.VM.Guest.OSName, r.State)
	}

	// 4. Enroll web-01 with the right credentials.
	fmt.Println("\n== enrolling web-01")
	res, err := orch.Enroll(ctx, enroll.Request{
		Key: "req-1", Provider: providerName, VMID: vms[0].ID,
		Credentials: guest.Password("root", "customer-secret"),
	})
	if err != nil {
		return fmt.Errorf("enrolling web-01: %w", err)
	}
	fmt.Printf("   enrolled: public %s -> local %s, ports %v\n", res.PublicIP, res.LocalIP, res.Ports)
	rule, err := fw.Get(ctx, res.VM.String())
	if err != nil {
		return err
	}
	fmt.Printf("   firewall: NAT %s <-> %s, allowed %v from %v\n", rule.Public, rule.Local, rule.Ports, rule.Sources)
	rec, err := db.Get(ctx, res.VM)
	if err != nil {
		return err
	}
	fmt.Printf("   cmdb:     %s state=%s public=%s\n", rec.Key, rec.State, rec.PublicIP)

	// 5. Enroll db-01 with a wrong password: refused in the guest, rolled back.
	fmt.Println("\n== enrolling db-01 with a wrong password")
	res, err = orch.Enroll(ctx, enroll.Request{
		Key: "req-2", Provider: providerName, VMID: vms[1].ID,
		Credentials: guest.Password("root", "not-the-password"),
	})
	if err == nil {
		return fmt.Errorf("db-01 enrolled with a wrong password")
	}
	fmt.Printf("   failed (%s) at step %q\n", errs.CodeOf(err), res.FailedStep)
	rec, err = db.Get(ctx, res.VM)
	if err != nil {
		return err
	}
	fmt.Printf("   cmdb:     %s state=%s\n", rec.Key, rec.State)
	info, err := addrs.Pool(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Printf("   ipam:     %d of %d public addresses in use (web-01's only: db-01 holds none)\n", info.Used, info.Size)

	// 6. Unenroll web-01: NAT removed, address released, record available.
	fmt.Println("\n== unenrolling web-01")
	if _, err := orch.Unenroll(ctx, enroll.UnenrollRequest{
		Provider: providerName, VMID: vms[0].ID, Credentials: guest.Password("root", "customer-secret"),
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
	rec, err = db.Get(ctx, cmdb.Key{Provider: providerName, VMID: vms[0].ID})
	if err != nil {
		return err
	}
	fmt.Printf("   cmdb: state=%s; firewall: %d NAT rules; ipam: %d addresses in use\n", rec.State, len(rules), info.Used)
	return nil
}

func linuxVM(name, ip string) provider.VM {
	return provider.VM{
		Name: name, Zone: zone, Power: provider.PoweredOn, CPUs: 2, MemoryMiB: 4096,
		Guest: provider.GuestInfo{
			Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)", OSVersion: "12",
			Hostname: name, IPs: []netip.Addr{netip.MustParseAddr(ip)}, ToolsRunning: true,
		},
	}
}

// guestOS plays the guests' operating system: the facts probe is answered
// by memprovider's default handler, df and command lookups here, and the
// service-account commands succeed.
func guestOS(ctx context.Context, req memprovider.GuestRequest) (guest.Result, error) {
	args := req.Command.Args
	switch {
	case len(args) > 0 && args[0] == "df":
		return guest.Result{Stdout: []byte("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 20511312 4194304 15268528 22% /\n")}, nil
	case len(args) > 2 && strings.Contains(args[2], "command -v"):
		return guest.Result{}, nil // every command is present
	case len(args) > 0 && (args[0] == "useradd" || args[0] == "userdel" || args[0] == "id"):
		return guest.Result{}, nil
	}
	return memprovider.DefaultGuestHandler(ctx, req)
}

// serviceAccount is a tiny Configurator: it creates the operator's service
// account in the guest (the SSH/WinRM task library does much more).
type serviceAccount struct{}

func (serviceAccount) Configure(ctx context.Context, t enroll.Target, ex guest.Executor) error {
	_, err := ex.Run(ctx, guest.Command{Args: []string{"useradd", "--create-home", "mvm-operator"}})
	return err
}

func (serviceAccount) Unconfigure(ctx context.Context, t enroll.Target, ex guest.Executor) error {
	_, err := ex.Run(ctx, guest.Command{Args: []string{"userdel", "--remove", "mvm-operator"}})
	return err
}

// progress prints the orchestrator's events as they happen.
func progress(e enroll.Event) {
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
	fmt.Println(line)
}
