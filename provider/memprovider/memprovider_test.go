package memprovider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
	"github.com/managedvm/managedvm/report"
)

func wantCode(t *testing.T, what string, err error, want errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != want {
		t.Fatalf("%s: error %v has code %v, want %v", what, err, got, want)
	}
}

func cursorOf(t *testing.T, p *memprovider.Provider) provider.Cursor {
	t.Helper()
	c, err := p.Provider().Cursor(context.Background())
	must(t, err)
	return c
}

// drain returns every event after cur that is already there.
func drain(t *testing.T, p *memprovider.Provider, cur provider.Cursor) []provider.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	end := cursorOf(t, p)
	st, err := p.Provider().Watch(ctx, cur)
	must(t, err)
	defer st.Close()
	if cur == "" {
		cur = end // "" is "from now": nothing to drain
	}
	var out []provider.Event
	for cur != end {
		ev, err := st.Next(ctx)
		must(t, err)
		out = append(out, ev)
		cur = ev.Cursor
	}
	return out
}

func summary(evs []provider.Event) string {
	var s []string
	for _, ev := range evs {
		x := fmt.Sprintf("%s:%v:%s", ev.Cursor, ev.Type, ev.VMID)
		if ev.Type != provider.Deleted {
			x += ":" + string(ev.VM.Power)
		}
		s = append(s, x)
	}
	return strings.Join(s, " ")
}

func TestEveryChangeEmitsOneEvent(t *testing.T) {
	ctx := context.Background()
	p := memprovider.New(nil)
	must(t, p.AddZone(provider.Zone{Name: "z"})) // zones are not VMs: no event
	tmpl, err := p.AddTemplate(provider.Template{Zone: "z", Name: "t", ToolsInstalled: true})
	must(t, err)
	vm, err := p.AddVM(provider.VM{Name: "a", Zone: "z"})
	must(t, err)
	_, err = p.UpdateVM(vm.ID, func(vm *provider.VM) { vm.Annotation = "note" })
	must(t, err)
	must(t, p.SetGuestIPs(vm.ID, netip.MustParseAddr("10.0.0.9")))
	must(t, p.SetGuestAccount(vm.ID, "u", "pw")) // not a hypervisor change: no event
	must(t, p.Provider().PowerOn(ctx, vm.ID))
	must(t, p.Provider().PowerOn(ctx, vm.ID)) // no-op: no event
	must(t, p.Provider().PowerOff(ctx, vm.ID))
	must(t, p.Provider().PowerOff(ctx, vm.ID)) // no-op
	prov, err := p.Provider().Provision(ctx, provider.ProvisionSpec{Key: "k", Name: "b", Template: "t", Zone: "z", PowerOn: true})
	must(t, err)
	_, err = p.Provider().Provision(ctx, provider.ProvisionSpec{Key: "k", Name: "b", Template: "t", Zone: "z", PowerOn: true}) // repeat: no event
	must(t, err)
	must(t, p.Provider().Destroy(ctx, prov.ID))
	must(t, p.Provider().Destroy(ctx, prov.ID)) // no-op
	must(t, p.RemoveVM(vm.ID))

	want := fmt.Sprintf("1:created:%[1]s:poweredOff 2:created:%[2]s:poweredOff 3:changed:%[2]s:poweredOff 4:changed:%[2]s:poweredOff "+
		"5:changed:%[2]s:poweredOn 6:changed:%[2]s:poweredOff 7:created:%[3]s:poweredOff 8:changed:%[3]s:poweredOn "+
		"9:deleted:%[3]s 10:deleted:%[2]s", tmpl.ID, vm.ID, prov.ID)
	if got := summary(drain(t, p, "0")); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	if c := cursorOf(t, p); c != "10" {
		t.Errorf("Cursor() = %q, want 10", c)
	}
}

func TestEventsCarryTheVMAndTime(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	p := memprovider.New(&memprovider.Options{Now: func() time.Time { return at }})
	vm, err := p.AddVM(provider.VM{Name: "a", Attributes: map[string]string{"k": "v"}})
	must(t, err)
	must(t, p.RemoveVM(vm.ID))
	// Watch("") starts from now: its first event is the next change.
	st, err := p.Provider().Watch(context.Background(), "")
	must(t, err)
	defer st.Close()
	later, err := p.AddVM(provider.VM{Name: "later"})
	must(t, err)
	if ev, err := st.Next(context.Background()); err != nil || ev.VMID != later.ID || ev.Cursor != "3" {
		t.Fatalf("first event from Watch(\"\") = %+v, %v; want the Created of %s at cursor 3", ev, err, later.ID)
	}
	evs := drain(t, p, "0")[:2]
	if len(evs) != 2 {
		t.Fatalf("got %d events", len(evs))
	}
	if c := evs[0]; c.VM.Name != "a" || c.VM.Attributes["k"] != "v" || !c.Time.Equal(at) {
		t.Errorf("created event = %+v", c)
	}
	if d := evs[1]; d.VMID != vm.ID || d.VM.ID != "" || d.VM.Name != "" {
		t.Errorf("deleted event = %+v, want VMID only", d)
	}
	// Mutating a delivered event does not change what the next watcher sees.
	evs[0].VM.Attributes["k"] = "changed"
	if again := drain(t, p, "0"); again[0].VM.Attributes["k"] != "v" {
		t.Error("changing a delivered event changed the history")
	}
}

func TestCursorExpiry(t *testing.T) {
	ctx := context.Background()
	p := memprovider.New(&memprovider.Options{HistorySize: 3})
	for i := range 5 {
		_, err := p.AddVM(provider.VM{Name: fmt.Sprint("vm", i)})
		must(t, err)
	}
	// Events 3, 4, 5 are kept.
	for _, c := range []provider.Cursor{"0", "1", "6", "99", "x", "-1", " 3", "3.0", "18446744073709551616"} {
		_, err := p.Provider().Watch(ctx, c)
		if !errors.Is(err, provider.ErrCursorExpired) {
			t.Errorf("Watch(%q) = %v, want ErrCursorExpired", c, err)
		}
		wantCode(t, fmt.Sprintf("Watch(%q)", c), err, errs.FailedPrecondition)
	}
	for _, c := range []provider.Cursor{"2", "3", "4", "5", ""} {
		st, err := p.Provider().Watch(ctx, c)
		if err != nil {
			t.Errorf("Watch(%q): %v", c, err)
			continue
		}
		_ = st.Close()
	}
	if got := summary(drain(t, p, "2")); !strings.HasPrefix(got, "3:created") || strings.Count(got, "created") != 3 {
		t.Errorf("Watch(2) replayed %s", got)
	}

	// A watcher that falls behind the history is told to resync.
	st, err := p.Provider().Watch(ctx, "3")
	must(t, err)
	defer st.Close()
	for i := range 3 {
		_, err := p.AddVM(provider.VM{Name: fmt.Sprint("more", i)})
		must(t, err)
	}
	_, err = st.Next(ctx)
	if !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("Next of a lagging watcher = %v, want ErrCursorExpired", err)
	}
	wantCode(t, "Next of a lagging watcher", err, errs.FailedPrecondition)
}

func TestManyWatchersSeeEveryEventInOrder(t *testing.T) {
	ctx := context.Background()
	p := memprovider.New(nil)
	const watchers, writers, perWriter = 8, 4, 50
	start := cursorOf(t, p)
	var wg sync.WaitGroup
	results := make([][]provider.Cursor, watchers)
	for w := range watchers {
		st, err := p.Provider().Watch(ctx, start)
		must(t, err)
		defer st.Close()
		wg.Go(func() {
			for range writers * perWriter {
				ev, err := st.Next(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				results[w] = append(results[w], ev.Cursor)
			}
		})
	}
	for i := range writers {
		wg.Go(func() {
			for j := range perWriter {
				if _, err := p.AddVM(provider.VM{Name: fmt.Sprintf("w%d-%d", i, j)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var want []provider.Cursor
	for i := 1; i <= writers*perWriter; i++ {
		want = append(want, provider.Cursor(fmt.Sprint(i)))
	}
	for w, got := range results {
		if !slices.Equal(got, want) {
			t.Errorf("watcher %d saw %d events, not 1..%d in order", w, len(got), len(want))
		}
	}
}

func TestStreamCloseAndCancel(t *testing.T) {
	p := memprovider.New(nil)
	st, err := p.Provider().Watch(context.Background(), "")
	must(t, err)
	_, err = p.AddVM(provider.VM{Name: "a"})
	must(t, err)
	must(t, st.Close())
	must(t, st.Close())
	// Close wins over a pending event.
	_, err = st.Next(context.Background())
	if !errors.Is(err, provider.ErrStreamClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Provider().Watch(ctx, "")
	wantCode(t, "Watch with a canceled context", err, errs.Canceled)
}

func TestHelpersValidate(t *testing.T) {
	p, fx := world(t, nil)
	before := cursorOf(t, p)
	wantCode(t, "AddZone without a name", p.AddZone(provider.Zone{}), errs.InvalidArgument)
	wantCode(t, "AddZone twice", p.AddZone(provider.Zone{Name: "zone-a"}), errs.AlreadyExists)
	_, err := p.AddTemplate(provider.Template{Zone: "nope", Name: "t"})
	wantCode(t, "AddTemplate to an unknown zone", err, errs.NotFound)
	_, err = p.AddTemplate(provider.Template{Zone: "zone-a"})
	wantCode(t, "AddTemplate without a name", err, errs.InvalidArgument)
	_, err = p.AddTemplate(provider.Template{Zone: "zone-a", Name: "debian-12"})
	wantCode(t, "AddTemplate with a taken name", err, errs.AlreadyExists)
	_, err = p.AddTemplate(provider.Template{Zone: "zone-a", Name: "other", ID: fx.GuestVM})
	wantCode(t, "AddTemplate with a taken ID", err, errs.AlreadyExists)
	_, err = p.AddVM(provider.VM{})
	wantCode(t, "AddVM without a name", err, errs.InvalidArgument)
	_, err = p.AddVM(provider.VM{Name: "t", Template: true})
	wantCode(t, "AddVM of a template", err, errs.InvalidArgument)
	_, err = p.AddVM(provider.VM{Name: "dup", ID: fx.GuestVM})
	wantCode(t, "AddVM with a taken ID", err, errs.AlreadyExists)
	_, err = p.UpdateVM(fx.GuestVM, func(vm *provider.VM) { vm.ID = "other"; vm.Name = "renamed" })
	wantCode(t, "UpdateVM changing the ID", err, errs.InvalidArgument)
	_, err = p.UpdateVM(fx.GuestVM, func(vm *provider.VM) { vm.Template = true })
	wantCode(t, "UpdateVM changing Template", err, errs.InvalidArgument)
	_, err = p.AddVM(provider.VM{Name: "x", Zone: "no-such-zone"})
	wantCode(t, "AddVM into an unknown zone", err, errs.NotFound)
	_, err = p.UpdateVM(fx.GuestVM, func(vm *provider.VM) { vm.Zone = "no-such-zone" })
	wantCode(t, "UpdateVM moving to an unknown zone", err, errs.NotFound)
	_, err = p.UpdateVM("nope", func(*provider.VM) {})
	wantCode(t, "UpdateVM of an unknown VM", err, errs.NotFound)
	wantCode(t, "RemoveVM of an unknown VM", p.RemoveVM("nope"), errs.NotFound)
	wantCode(t, "SetGuestIPs of an unknown VM", p.SetGuestIPs("nope"), errs.NotFound)
	wantCode(t, "SetToolsRunning of an unknown VM", p.SetToolsRunning("nope", true), errs.NotFound)
	wantCode(t, "SetGuestAccount of an unknown VM", p.SetGuestAccount("nope", "u", "p"), errs.NotFound)
	wantCode(t, "SetGuestAccount without a user", p.SetGuestAccount(fx.GuestVM, "", "p"), errs.InvalidArgument)
	wantCode(t, "SetGuestHandler of an unknown VM", p.SetGuestHandler("nope", nil), errs.NotFound)
	if after := cursorOf(t, p); after != before {
		t.Errorf("rejected helper calls emitted events (cursor %s -> %s)", before, after)
	}
	if vm, _ := p.Provider().Get(context.Background(), fx.GuestVM); vm.Name != "guest-vm" {
		t.Errorf("a rejected UpdateVM changed the VM: %+v", vm)
	}
}

func TestIDs(t *testing.T) {
	p := memprovider.New(nil)
	a, err := p.AddVM(provider.VM{Name: "x", ID: "vm-2"})
	must(t, err)
	b, err := p.AddVM(provider.VM{Name: "x"})
	must(t, err)
	c, err := p.AddVM(provider.VM{Name: "x"})
	must(t, err)
	if a.ID != "vm-2" || b.ID != "vm-1" || c.ID != "vm-3" {
		t.Errorf("IDs %s %s %s, want vm-2 vm-1 vm-3 (a taken ID is skipped)", a.ID, b.ID, c.ID)
	}
	for i := 4; i <= 10; i++ {
		_, err := p.AddVM(provider.VM{Name: "x"})
		must(t, err)
	}
	vms, err := p.Provider().List(context.Background(), nil)
	must(t, err)
	var ids []string
	for _, vm := range vms {
		ids = append(ids, vm.ID)
	}
	if got := strings.Join(ids, ","); got != "vm-1,vm-2,vm-3,vm-4,vm-5,vm-6,vm-7,vm-8,vm-9,vm-10" {
		t.Errorf("List order %s", got)
	}
}

func TestProvisionDetails(t *testing.T) {
	ctx := context.Background()
	p, _ := world(t, nil)
	tmpls, err := p.Provider().Templates(ctx, "zone-a")
	must(t, err)
	tmpl := tmpls[0]
	_, err = p.UpdateVM(tmpl.ID, func(vm *provider.VM) {
		vm.CPUs, vm.MemoryMiB, vm.Guest.OSVersion = 4, 8192, "12"
	})
	must(t, err)
	must(t, p.SetGuestAccount(tmpl.ID, "admin", "from-template"))

	spec := provider.ProvisionSpec{
		Key: "k1", Name: "web-1", Template: tmpl.ID, Zone: "zone-a",
		Network: provider.Network{Name: "vlan-200", VLAN: 200},
		Customization: &provider.Customization{
			Hostname: "web-1.example.com", UserData: []byte("#cloud-config\n"),
			Static: &provider.StaticIP{Address: netip.MustParsePrefix("10.0.0.5/24"), Gateway: netip.MustParseAddr("10.0.0.1")},
		},
		PowerOn: true,
	}
	vm, err := p.Provider().Provision(ctx, spec)
	must(t, err)
	g := vm.Guest
	switch {
	case vm.CPUs != 4 || vm.MemoryMiB != 8192:
		t.Errorf("size %d/%d, want the template's 4/8192", vm.CPUs, vm.MemoryMiB)
	case g.Family != guest.Linux || g.OSName != tmpl.OSName || g.OSVersion != "12":
		t.Errorf("guest OS %+v, want the template's", g)
	case g.Hostname != "web-1.example.com" || !slices.Equal(g.IPs, []netip.Addr{netip.MustParseAddr("10.0.0.5")}):
		t.Errorf("guest %+v, want the customized host name and address", g)
	case !g.ToolsRunning:
		t.Error("tools not running after PowerOn of a VM from a template with tools")
	case vm.Attributes["template"] != tmpl.ID || vm.Attributes["network"] != "vlan-200" || vm.Attributes["vlan"] != "200":
		t.Errorf("attributes %v", vm.Attributes)
	}
	must(t, guestAccess(p).ValidateCredentials(ctx, vm.ID, guest.Password("admin", "from-template")))

	got, ok := p.ProvisionSpecOf(vm.ID)
	if !ok || string(got.Customization.UserData) != "#cloud-config\n" || got.Key != "k1" {
		t.Fatalf("ProvisionSpecOf = %+v, %v", got, ok)
	}
	got.Customization.UserData[0] = 'X'
	got.Customization.Static.Gateway = netip.Addr{}
	spec.Customization.UserData[1] = 'Y' // the caller's spec is not kept either
	if again, _ := p.ProvisionSpecOf(vm.ID); string(again.Customization.UserData) != "#cloud-config\n" || !again.Customization.Static.Gateway.IsValid() {
		t.Error("ProvisionSpecOf does not return a copy")
	}
	if _, ok := p.ProvisionSpecOf(tmpl.ID); ok {
		t.Error("ProvisionSpecOf of a template reports a spec")
	}

	// Overrides, name/network/zone checks.
	small, err := p.Provider().Provision(ctx, provider.ProvisionSpec{Key: "k2", Name: "web-2", Template: "debian-12", Zone: "zone-a", CPUs: 1, MemoryMiB: 512})
	must(t, err)
	if small.CPUs != 1 || small.MemoryMiB != 512 || small.Guest.Hostname != "web-2" || len(small.Guest.IPs) != 0 {
		t.Errorf("VM %+v", small)
	}
	before := cursorOf(t, p)
	for _, c := range []struct {
		spec provider.ProvisionSpec
		want errs.Code
	}{
		{provider.ProvisionSpec{Key: "k3", Name: "x", Template: "debian-12", Zone: "zone-a", Network: provider.Network{Name: "vlan-300"}}, errs.NotFound},
		{provider.ProvisionSpec{Key: "k3", Name: "x", Template: tmpl.ID, Zone: "zone-b"}, errs.NotFound},
		{provider.ProvisionSpec{Key: "k3", Name: "x", Template: "win-2022", Zone: "zone-a"}, errs.NotFound},
		{provider.ProvisionSpec{Key: "k3", Name: "debian-12", Template: "debian-12", Zone: "zone-a"}, errs.AlreadyExists},
		{provider.ProvisionSpec{Key: "k3", Name: "guest-vm", Template: "debian-12", Zone: "zone-a"}, errs.AlreadyExists},
	} {
		_, err := p.Provider().Provision(ctx, c.spec)
		wantCode(t, fmt.Sprintf("Provision(%+v)", c.spec), err, c.want)
	}
	if after := cursorOf(t, p); after != before {
		t.Error("rejected provisions emitted events")
	}
	// The same name in another zone is fine.
	_, err = p.Provider().Provision(ctx, provider.ProvisionSpec{Key: "k4", Name: "web-1", Template: "win-2022", Zone: "zone-b"})
	must(t, err)
}

func TestProvisionTimeout(t *testing.T) {
	p, fx := world(t, nil)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := p.Provider().Provision(ctx, provider.ProvisionSpec{Key: "k", Name: "n", Template: fx.Template, Zone: fx.Zone})
	wantCode(t, "Provision past its deadline", err, errs.DeadlineExceeded)
}

func TestToolsFollowPower(t *testing.T) {
	ctx := context.Background()
	p := memprovider.New(nil)
	must(t, p.AddZone(provider.Zone{Name: "z"}))
	_, err := p.AddTemplate(provider.Template{Zone: "z", Name: "bare"}) // no tools
	must(t, err)
	bare, err := p.Provider().Provision(ctx, provider.ProvisionSpec{Key: "a", Name: "a", Template: "bare", Zone: "z", PowerOn: true})
	must(t, err)
	if bare.Guest.ToolsRunning {
		t.Error("tools run in a VM from a template without them")
	}
	withVersion, err := p.AddVM(provider.VM{Name: "b", Guest: provider.GuestInfo{ToolsVersion: "12352"}})
	must(t, err)
	must(t, p.Provider().PowerOn(ctx, withVersion.ID))
	if vm, _ := p.Provider().Get(ctx, withVersion.ID); !vm.Guest.ToolsRunning {
		t.Error("tools not started in a VM with a tools version")
	}
	must(t, p.Provider().PowerOff(ctx, withVersion.ID))
	if vm, _ := p.Provider().Get(ctx, withVersion.ID); vm.Guest.ToolsRunning {
		t.Error("tools still running after PowerOff")
	}
	must(t, p.SetToolsRunning(bare.ID, true))
	must(t, p.Provider().PowerOff(ctx, bare.ID))
	must(t, p.Provider().PowerOn(ctx, bare.ID))
	if vm, _ := p.Provider().Get(ctx, bare.ID); !vm.Guest.ToolsRunning {
		t.Error("SetToolsRunning(true) did not mark the tools installed")
	}
}

func TestSuspendedPowerOff(t *testing.T) {
	ctx := context.Background()
	p := memprovider.New(nil)
	vm, err := p.AddVM(provider.VM{Name: "s", Power: provider.Suspended})
	must(t, err)
	must(t, p.Provider().PowerOff(ctx, vm.ID))
	if got, _ := p.Provider().Get(ctx, vm.ID); got.Power != provider.PoweredOff {
		t.Errorf("power %q after PowerOff of a suspended VM", got.Power)
	}
	added, err := p.AddVM(provider.VM{Name: "zero"})
	must(t, err)
	if added.Power != provider.PoweredOff {
		t.Errorf("AddVM with no power state gave %q", added.Power)
	}
}

func TestDiscoveryCopies(t *testing.T) {
	ctx := context.Background()
	p, _ := world(t, nil)
	zs, err := p.Provider().Zones(ctx)
	must(t, err)
	zs[0].Networks[0] = "changed"
	zs[0].Clusters[0] = "changed"
	ts, err := p.Provider().Templates(ctx, "")
	must(t, err)
	if len(ts) != 2 || ts[0].Name != "debian-12" || ts[1].Name != "win-2022" {
		t.Fatalf("Templates = %+v", ts)
	}
	ts[0].Name = "changed"
	zs2, _ := p.Provider().Zones(ctx)
	ts2, _ := p.Provider().Templates(ctx, "")
	if zs2[0].Networks[0] != "vlan-100" || zs2[0].Clusters[0] != "c1" || ts2[0].Name != "debian-12" {
		t.Error("changing returned zones or templates changed the provider")
	}
}

func TestGuestAccessErrors(t *testing.T) {
	ctx := context.Background()
	p, fx := world(t, nil)
	good := fx.GuestCredentials

	t.Run("ToolsNotRunning", func(t *testing.T) {
		must(t, p.SetToolsRunning(fx.GuestVM, false))
		defer func() { must(t, p.SetToolsRunning(fx.GuestVM, true)) }()
		err := guestAccess(p).ValidateCredentials(ctx, fx.GuestVM, good)
		wantCode(t, "tools not running", err, errs.FailedPrecondition)
		if !strings.Contains(err.Error(), "VMware Tools are not running in the guest") {
			t.Errorf("message %q does not say the tools are not running", err)
		}
	})
	t.Run("PoweredOff", func(t *testing.T) {
		must(t, p.Provider().PowerOff(ctx, fx.GuestVM))
		defer func() { must(t, p.Provider().PowerOn(ctx, fx.GuestVM)) }()
		err := guestAccess(p).ValidateCredentials(ctx, fx.GuestVM, good)
		wantCode(t, "powered off", err, errs.FailedPrecondition)
		if !strings.Contains(err.Error(), "not powered on") {
			t.Errorf("message %q does not say the VM is off", err)
		}
	})
	t.Run("Template", func(t *testing.T) {
		ts, _ := p.Provider().Templates(ctx, "zone-a")
		wantCode(t, "template", guestAccess(p).ValidateCredentials(ctx, ts[0].ID, good), errs.FailedPrecondition)
	})
	t.Run("WrongPasswordMessage", func(t *testing.T) {
		err := guestAccess(p).ValidateCredentials(ctx, fx.GuestVM, guest.Password("admin", "hunter2-wrong"))
		wantCode(t, "wrong password", err, errs.Unauthenticated)
		msg := fmt.Sprintf("%v %+v %#v", err, err, err)
		if strings.Contains(msg, "hunter2-wrong") || strings.Contains(msg, good.Password.Reveal()) {
			t.Errorf("the error shows a password: %s", msg)
		}
		if !strings.Contains(err.Error(), `"admin"`) || !strings.Contains(err.Error(), "guest-vm") {
			t.Errorf("message %q should name the user and the VM", err)
		}
	})
	t.Run("KeyOnly", func(t *testing.T) {
		c := guest.Credentials{Username: "admin", PrivateKey: guest.NewSecret("-----BEGIN KEY-----")}
		wantCode(t, "key-only credentials", guestAccess(p).ValidateCredentials(ctx, fx.GuestVM, c), errs.InvalidArgument)
	})
	t.Run("UserCase", func(t *testing.T) {
		wantCode(t, "Linux user names are case-sensitive", guestAccess(p).ValidateCredentials(ctx, fx.GuestVM, guest.Password("Admin", "correct horse")), errs.Unauthenticated)
		win, err := p.AddVM(provider.VM{Name: "win", Power: provider.PoweredOn, Guest: provider.GuestInfo{Family: guest.Windows, ToolsRunning: true}})
		must(t, err)
		must(t, p.SetGuestAccount(win.ID, `CORP\Administrator`, "pw"))
		must(t, guestAccess(p).ValidateCredentials(ctx, win.ID, guest.Password(`corp\administrator`, "pw")))
	})
	t.Run("PasswordChanged", func(t *testing.T) {
		ex, err := guestAccess(p).GuestExecutor(ctx, fx.GuestVM, good)
		must(t, err)
		defer ex.Close()
		must(t, p.SetGuestAccount(fx.GuestVM, "admin", "rotated"))
		defer func() { must(t, p.SetGuestAccount(fx.GuestVM, "admin", good.Password.Reveal())) }()
		_, err = ex.Run(ctx, guest.Command{Args: []string{"true"}})
		wantCode(t, "Run after the password changed", err, errs.Unauthenticated)
	})
}

func TestLogsNeverShowPasswords(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, fx := world(t, &memprovider.Options{Logger: log})
	must(t, p.SetGuestAccount(fx.GuestVM, "ops", "Top-Secret-1"))
	_ = guestAccess(p).ValidateCredentials(context.Background(), fx.GuestVM, guest.Password("ops", "Wrong-Secret-2"))
	if buf.Len() == 0 {
		t.Fatal("nothing was logged at debug level")
	}
	if s := buf.String(); strings.Contains(s, "Top-Secret-1") || strings.Contains(s, "Wrong-Secret-2") || strings.Contains(s, "correct horse") {
		t.Errorf("a password reached the log:\n%s", s)
	}
}

func TestExecutor(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var seen []memprovider.GuestRequest
	global := func(ctx context.Context, req memprovider.GuestRequest) (guest.Result, error) {
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		switch strings.Join(req.Command.Args, " ") {
		case "hostname":
			return guest.Result{Stdout: []byte(req.VM.Name + "\n")}, nil
		case "fail":
			return guest.Result{ExitCode: 3, Stdout: []byte("partial"), Stderr: []byte("boom\nmore")}, nil
		case "lost":
			return guest.Result{}, guest.SessionLost("test", errors.New("tools restarted"))
		case "big":
			return guest.Result{Stdout: bytes.Repeat([]byte("x"), guest.MaxOutput+10)}, nil
		case "block":
			<-ctx.Done()
			return guest.Result{}, ctx.Err()
		}
		return memprovider.DefaultGuestHandler(ctx, req)
	}
	p, fx := world(t, &memprovider.Options{GuestHandler: global})
	ex, err := guestAccess(p).GuestExecutor(ctx, fx.GuestVM, fx.GuestCredentials)
	must(t, err)
	defer ex.Close()

	var stdout, stderr bytes.Buffer
	out, err := guest.Output(ctx, ex, guest.Command{Args: []string{"hostname"}, Stdout: &stdout})
	must(t, err)
	if out != "guest-vm" || stdout.String() != "guest-vm\n" {
		t.Errorf("hostname: %q, streamed %q", out, stdout.String())
	}
	if len(seen) != 1 || seen[0].User != "admin" || seen[0].VM.ID != fx.GuestVM {
		t.Errorf("handler saw %+v", seen)
	}

	res, err := ex.Run(ctx, guest.Command{Args: []string{"fail"}, Stderr: &stderr})
	var ee *guest.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || res.ExitCode != 3 || string(res.Stdout) != "partial" || stderr.String() != "boom\nmore" {
		t.Fatalf("non-zero exit: res %+v, err %v", res, err)
	}
	wantCode(t, "non-zero exit", err, errs.FailedPrecondition)

	_, err = ex.Run(ctx, guest.Command{Args: []string{"lost"}})
	if !errors.Is(err, guest.ErrSessionLost) {
		t.Errorf("handler error not passed through: %v", err)
	}
	res, err = ex.Run(ctx, guest.Command{Args: []string{"big"}})
	must(t, err)
	if len(res.Stdout) != guest.MaxOutput {
		t.Errorf("output kept %d bytes, want %d", len(res.Stdout), guest.MaxOutput)
	}

	_, err = ex.Run(ctx, guest.Command{Args: []string{"block"}, Timeout: 10 * time.Millisecond})
	wantCode(t, "Run past the command's timeout", err, errs.DeadlineExceeded)

	n := len(seen)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = ex.Run(cctx, guest.Command{Args: []string{"hostname"}})
	wantCode(t, "Run with a canceled context", err, errs.Canceled)
	_, err = ex.Run(ctx, guest.Command{})
	wantCode(t, "Run of an empty command", err, errs.InvalidArgument)
	if len(seen) != n {
		t.Error("the handler ran for a canceled or invalid command")
	}

	// Default handler: unknown commands exit 127.
	_, err = ex.Run(ctx, guest.Command{Args: []string{"ls", "/"}})
	if !errors.As(err, &ee) || ee.Code != 127 || !strings.Contains(string(ee.Stderr), "no guest handler") {
		t.Errorf("unknown command: %v", err)
	}

	// A per-VM handler wins; nil goes back to the global one.
	must(t, p.SetGuestHandler(fx.GuestVM, func(context.Context, memprovider.GuestRequest) (guest.Result, error) {
		return guest.Result{Stdout: []byte("own")}, nil
	}))
	if out, _ := guest.Output(ctx, ex, guest.Command{Args: []string{"hostname"}}); out != "own" {
		t.Errorf("per-VM handler not used: %q", out)
	}
	must(t, p.SetGuestHandler(fx.GuestVM, nil))
	if out, _ := guest.Output(ctx, ex, guest.Command{Args: []string{"hostname"}}); out != "guest-vm" {
		t.Errorf("global handler not used again: %q", out)
	}

	// Powering off makes later commands fail.
	must(t, p.Provider().PowerOff(ctx, fx.GuestVM))
	_, err = ex.Run(ctx, guest.Command{Args: []string{"hostname"}})
	wantCode(t, "Run on a powered-off VM", err, errs.FailedPrecondition)
	must(t, p.Provider().PowerOn(ctx, fx.GuestVM))

	must(t, ex.Close())
	if err := ex.Close(); !errors.Is(err, guest.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	err = ex.Upload(ctx, "/tmp/x", strings.NewReader("x"), guest.UploadOptions{})
	if !errors.Is(err, guest.ErrClosed) {
		t.Errorf("Upload after Close = %v", err)
	}
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	p, fx := world(t, nil)
	ex, err := guestAccess(p).GuestExecutor(ctx, fx.GuestVM, fx.GuestCredentials)
	must(t, err)
	defer ex.Close()
	must(t, ex.Upload(ctx, "/etc/motd", strings.NewReader("hello"), guest.UploadOptions{}))
	must(t, ex.Upload(ctx, "/root/.ssh/authorized_keys", strings.NewReader("ssh-ed25519 AAAA"), guest.UploadOptions{Mode: 0o600, Owner: "root:root"}))
	f, ok := p.GuestFile(fx.GuestVM, "/etc/motd")
	if !ok || string(f.Data) != "hello" || f.Mode != 0o644 {
		t.Errorf("motd = %+v, %v", f, ok)
	}
	f.Data[0] = 'J'
	k, ok := p.GuestFile(fx.GuestVM, "/root/.ssh/authorized_keys")
	if !ok || k.Mode != 0o600 || k.Owner != "root:root" {
		t.Errorf("authorized_keys = %+v", k)
	}
	if again, _ := p.GuestFile(fx.GuestVM, "/etc/motd"); string(again.Data) != "hello" {
		t.Error("GuestFile does not return a copy")
	}
	if _, ok := p.GuestFile(fx.GuestVM, "/nope"); ok {
		t.Error("GuestFile found a file never uploaded")
	}
	wantCode(t, "Upload to an empty path", ex.Upload(ctx, "", strings.NewReader(""), guest.UploadOptions{}), errs.InvalidArgument)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	wantCode(t, "Upload with a canceled context", ex.Upload(cctx, "/x", strings.NewReader("x"), guest.UploadOptions{}), errs.Canceled)
	if _, ok := p.GuestFile(fx.GuestVM, "/x"); ok {
		t.Error("a canceled upload wrote the file")
	}
	must(t, p.RemoveVM(fx.GuestVM))
	if _, ok := p.GuestFile(fx.GuestVM, "/etc/motd"); ok {
		t.Error("files outlive their VM")
	}
}

func TestDefaultGuestHandlerFacts(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		g    provider.GuestInfo
		want guest.Facts
	}{
		{provider.GuestInfo{Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)"},
			guest.Facts{Family: guest.Linux, Distribution: "debian", Name: "Debian GNU/Linux 12 (bookworm)", Version: "12", Kernel: "6.1.0-memprovider", Arch: "x86_64"}},
		{provider.GuestInfo{Family: guest.Linux, OSName: "Ubuntu 22.04.4 LTS", OSVersion: "22.04"},
			guest.Facts{Family: guest.Linux, Distribution: "ubuntu", Name: "Ubuntu 22.04.4 LTS", Version: "22.04", Kernel: "6.1.0-memprovider", Arch: "x86_64"}},
		{provider.GuestInfo{Family: guest.Windows, OSName: "Microsoft Windows Server 2022 Datacenter", OSVersion: "10.0.20348"},
			guest.Facts{Family: guest.Windows, Distribution: "windows", Name: "Microsoft Windows Server 2022 Datacenter", Version: "10.0.20348", Kernel: "20348", Arch: "AMD64"}},
	}
	for _, c := range cases {
		p := memprovider.New(nil)
		g := c.g
		g.ToolsRunning = true
		vm, err := p.AddVM(provider.VM{Name: "v", Power: provider.PoweredOn, Guest: g})
		must(t, err)
		must(t, p.SetGuestAccount(vm.ID, "u", "p"))
		ex, err := guestAccess(p).GuestExecutor(ctx, vm.ID, guest.Password("u", "p"))
		must(t, err)
		f, err := guest.DetectFacts(ctx, ex)
		must(t, err)
		if f != c.want {
			t.Errorf("DetectFacts for %q = %+v, want %+v", c.g.OSName, f, c.want)
		}
		_ = ex.Close()
	}
}

func TestPreflight(t *testing.T) {
	ctx := context.Background()
	empty, err := memprovider.New(nil).Provider().Preflight(ctx)
	must(t, err)
	if empty.Status() != report.Fail || len(empty.Checks) != 1 || empty.Checks[0].ID != "memprovider.zones" {
		t.Errorf("empty provider report:\n%s", empty)
	}

	p := memprovider.New(&memprovider.Options{PreflightChecks: []report.Check{
		{ID: "svc.privileges", Name: "Service account privileges", Status: report.Fail, Detail: "missing Datastore.Browse", Fix: "grant Datastore > Browse"},
	}})
	must(t, p.AddZone(provider.Zone{Name: "a", Networks: []string{"vlan-100"}}))
	must(t, p.AddZone(provider.Zone{Name: "b"}))
	_, err = p.AddTemplate(provider.Template{Zone: "a", Name: "deb", ToolsInstalled: true})
	must(t, err)
	_, err = p.AddTemplate(provider.Template{Zone: "a", Name: "bare"})
	must(t, err)
	r, err := p.Provider().Preflight(ctx)
	must(t, err)
	want := `[PASS] At least one availability zone: 2 zone(s): a, b
[PASS] VM network in the zone (a): vlan-100
[PASS] VM templates pre-created in the zone (a): bare, deb
[WARN] VM network in the zone (b): the zone lists no VM network: provisioned VMs keep their template's network -- fix: list the zone's routable DHCP VLAN networks in Zone.Networks
[FAIL] VM templates pre-created in the zone (b): no template in the zone: nothing can be provisioned there -- fix: create a VM template in the zone and mark it as a template (memprovider: AddTemplate)
[WARN] Guest tools installed in the template (a/bare): guest tools are not installed: guest operations and customization will not work in VMs made from it -- fix: install the guest tools (VMware Tools / open-vm-tools) in the template
[PASS] Guest tools installed in the template (a/deb): installed
[FAIL] Service account privileges: missing Datastore.Browse -- fix: grant Datastore > Browse
`
	if got := r.String(); got != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
	p.SetPreflightChecks(nil)
	_, err = p.AddTemplate(provider.Template{Zone: "b", Name: "deb", ToolsInstalled: true})
	must(t, err)
	r, err = p.Provider().Preflight(ctx)
	must(t, err)
	if r.Status() != report.Warn || len(r.Failures()) != 0 || len(r.Warnings()) != 2 {
		t.Errorf("after fixing zone b and dropping the scripted row:\n%s", r)
	}
}

func TestNameIndexFollowsChanges(t *testing.T) {
	ctx := context.Background()
	p, fx := world(t, nil)
	spec := func(key, name string) provider.ProvisionSpec {
		return provider.ProvisionSpec{Key: key, Name: name, Template: fx.Template, Zone: fx.Zone}
	}
	vm, err := p.Provider().Provision(ctx, spec("k1", "alpha"))
	must(t, err)
	_, err = p.UpdateVM(vm.ID, func(vm *provider.VM) { vm.Name = "beta" })
	must(t, err)
	_, err = p.Provider().Provision(ctx, spec("k2", "beta"))
	wantCode(t, "Provision of a name taken by a rename", err, errs.AlreadyExists)
	_, err = p.Provider().Provision(ctx, spec("k3", "alpha"))
	must(t, err) // the old name is free
	_, err = p.UpdateVM(vm.ID, func(vm *provider.VM) { vm.Zone = "zone-b" })
	must(t, err)
	_, err = p.Provider().Provision(ctx, spec("k4", "beta"))
	must(t, err) // moved to another zone
	must(t, p.Provider().Destroy(ctx, vm.ID))
	_, err = p.Provider().Provision(ctx, provider.ProvisionSpec{Key: "k5", Name: "beta", Template: "win-2022", Zone: "zone-b"})
	must(t, err) // destroyed: free in zone-b too

	// A renamed template is found by its new name only.
	ts, _ := p.Provider().Templates(ctx, fx.Zone)
	_, err = p.UpdateVM(ts[0].ID, func(vm *provider.VM) { vm.Name = "debian-12-v2" })
	must(t, err)
	_, err = p.Provider().Provision(ctx, spec("k6", "gamma"))
	wantCode(t, "Provision from a template's old name", err, errs.NotFound)
	s := spec("k6", "gamma")
	s.Template = "debian-12-v2"
	_, err = p.Provider().Provision(ctx, s)
	must(t, err)
}
