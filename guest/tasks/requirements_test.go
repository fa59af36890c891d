package tasks_test

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/guest/tasks"
	"github.com/managedvm/managedvm/report"
)

func factsGuest(extra string) *memguest.Driver {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("/etc/os-release", memguest.Reply("ID=alpine\nVERSION_ID=3.19\n__MANAGEDVM_UNAME__\n6.6\nx86_64\n__MANAGEDVM_EXTRA__\n"+extra))
	return ex
}

func TestRequirementChecks(t *testing.T) {
	req := guest.Requirements{Checks: []guest.RequirementCheck{tasks.RequirePackageManager(), tasks.RequireInitSystem()}}
	rep, err := guest.CheckRequirements(context.Background(), factsGuest("PKG=apk\nINIT=openrc\n").Executor(), guest.Linux, req)
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Failures(); len(f) != 2 || f[0].ID != "os.package-manager" || f[1].ID != "os.init-system" || f[0].Fix == "" {
		t.Fatalf("failures %+v", f)
	}
	rep, err = guest.CheckRequirements(context.Background(), factsGuest("PKG=apt-get\nINIT=systemd\n").Executor(), guest.Linux, req)
	if err != nil || len(rep.Failures()) != 0 || len(rep.Checks) != 2 || rep.Checks[0].Status != report.Pass {
		t.Fatalf("debian-like guest: %v %+v", err, rep)
	}
	// Custom lists.
	rep, _ = guest.CheckRequirements(context.Background(), factsGuest("PKG=apk\nINIT=openrc\n").Executor(), guest.Linux,
		guest.Requirements{Checks: []guest.RequirementCheck{tasks.RequirePackageManager("apk"), tasks.RequireInitSystem("openrc")}})
	if len(rep.Failures()) != 0 {
		t.Fatalf("custom lists: %+v", rep.Failures())
	}
}
