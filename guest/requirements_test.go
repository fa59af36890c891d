package guest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/report"
)

const debian12Facts = "ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n__MANAGEDVM_UNAME__\n6.1\nx86_64\n__MANAGEDVM_EXTRA__\nPKG=apt\n"

func linuxGuest(df string) *memguest.Driver {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("/etc/os-release", memguest.Reply(debian12Facts))
	ex.HandleArgsPrefix([]string{"df", "-Pk"}, memguest.Reply(df))
	ex.HandleArgsPrefix([]string{"sh", "-c"}, func(_ context.Context, cmd guest.Command) (guest.Result, error) {
		var missing []string
		for _, c := range cmd.Args[4:] {
			if c != "useradd" && c != "sudo" {
				missing = append(missing, c)
			}
		}
		return guest.Result{Stdout: []byte(strings.Join(missing, "\n"))}, nil
	})
	return ex
}

const dfOut = "Filesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/sda1         20511312 9000000   2097152      45% /\n"

func row(t *testing.T, rep report.Report, id string) report.Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no %s row in %+v", id, rep.Checks)
	return report.Check{}
}

func TestCheckRequirementsLinux(t *testing.T) {
	ctx := context.Background()
	ex := linuxGuest(dfOut)
	rep, err := guest.CheckRequirements(ctx, ex.Executor(), guest.Linux, guest.Requirements{
		Distributions: map[string]string{"debian": "11", "rhel": "8"}, MinFreeDiskMiB: 1024, Commands: []string{"useradd", "sudo"},
	})
	if err != nil || !rep.OK() || len(rep.Checks) != 3 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	if c := row(t, rep, "os.disk"); c.Detail != "2048 MiB free" || c.Subject != "/" {
		t.Errorf("disk row %+v", c)
	}
	// Every failure is a row of its own.
	rep, err = guest.CheckRequirements(ctx, ex.Executor(), guest.Windows, guest.Requirements{
		Distributions: map[string]string{"debian": "13"}, MinFreeDiskMiB: 4096, Commands: []string{"useradd", "python3", "curl"},
	})
	if err != nil || len(rep.Failures()) != 4 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	if c := row(t, rep, "os.family"); c.Status != report.Fail {
		t.Errorf("family row %+v", c)
	}
	if c := row(t, rep, "os.distribution"); !strings.Contains(c.Detail, "older than the minimum 13") {
		t.Errorf("distribution row %+v", c)
	}
	if c := row(t, rep, "os.disk"); c.Detail != "2048 MiB free, 4096 MiB needed" || c.Fix != "free at least 2048 MiB on /" {
		t.Errorf("disk row %+v", c)
	}
	if c := row(t, rep, "os.commands"); c.Detail != "missing: python3, curl" {
		t.Errorf("commands row %+v", c)
	}
	rep, _ = guest.CheckRequirements(ctx, ex.Executor(), guest.Linux, guest.Requirements{Distributions: map[string]string{"rhel": "8", "alpine": ""}})
	if c := row(t, rep, "os.distribution"); c.Status != report.Fail || !strings.Contains(c.Detail, `"debian"`) || !strings.Contains(c.Detail, "alpine, rhel 8+") {
		t.Errorf("distribution row %+v", c)
	}
}

func TestCheckRequirementsEmptyRunsNothing(t *testing.T) {
	ex := linuxGuest(dfOut)
	var req guest.Requirements
	if !req.IsZero() {
		t.Fatal("zero requirements are not IsZero")
	}
	rep, err := guest.CheckRequirements(context.Background(), ex.Executor(), guest.Linux, req)
	if err != nil || len(rep.Checks) != 0 || len(ex.Commands()) != 0 {
		t.Fatalf("report %+v, %v, %d commands", rep, err, len(ex.Commands()))
	}
	for _, r := range []guest.Requirements{{MinFreeDiskMiB: 1}, {Commands: []string{"x"}}, {Distributions: map[string]string{"a": ""}}, {Checks: make([]guest.RequirementCheck, 1)}} {
		if r.IsZero() {
			t.Errorf("%+v is IsZero", r)
		}
	}
	// Without Distributions or Checks, no OS facts are asked for.
	if _, err := guest.CheckRequirements(context.Background(), ex.Executor(), guest.Linux, guest.Requirements{MinFreeDiskMiB: 1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range ex.Commands() {
		if strings.Contains(c.Script, "/etc/os-release") {
			t.Fatal("facts were probed for a disk-only check")
		}
	}
}

func TestCheckRequirementsMalformedDF(t *testing.T) {
	for name, out := range map[string]string{
		"one line":   "Filesystem 1024-blocks Used Available",
		"short":      "Filesystem 1024-blocks\n/dev/sda1 20\n",
		"not number": "Filesystem 1024-blocks Used Available\n/dev/sda1 20 10 lots 50% /\n",
		"hostile":    "h\n/dev/x 1 1 " + strings.Repeat("\n\x00x", 30000) + "\n",
	} {
		rep, err := guest.CheckRequirements(context.Background(), linuxGuest(out).Executor(), guest.Linux, guest.Requirements{MinFreeDiskMiB: 1})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := row(t, rep, "os.disk")
		if c.Status != report.Fail || !strings.Contains(c.Detail, "unexpected df output") {
			t.Errorf("%s: row %+v", name, c)
		}
	}
}

func TestCheckRequirementsWindows(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		out, detail string
		status      report.Status
	}{
		{"53687091200\r\n", "51200 MiB free", report.Pass},
		{"1073741824", "1024 MiB free, 4096 MiB needed", report.Fail},
		{"lots", `could not measure free space: unexpected output "lots"`, report.Fail},
		{strings.Repeat("9\r\n", 50000) + "x", "", report.Fail},
	} {
		ex := memguest.NewDriver(guest.Windows, nil)
		ex.HandleScript("Get-PSDrive -Name 'D'", memguest.Reply(c.out))
		rep, err := guest.CheckRequirements(ctx, ex.Executor(), guest.Windows, guest.Requirements{MinFreeDiskMiB: 4096, DiskPath: `D:\`})
		if err != nil {
			t.Fatal(err)
		}
		r := row(t, rep, "os.disk")
		if r.Status != c.status || (c.detail != "" && r.Detail != c.detail) || r.Subject != `D:\` {
			t.Errorf("output %.20q: row %+v", c.out, r)
		}
		if len(r.Detail) > 200 || strings.ContainsAny(r.Detail, "\r\n") {
			t.Errorf("unbounded detail %.100q", r.Detail)
		}
	}
	// Commands are looked up with Get-Command, each name quoted.
	ex := memguest.NewDriver(guest.Windows, nil)
	ex.HandleScript("Get-Command", memguest.Reply("ssh-agent\r\n"))
	rep, err := guest.CheckRequirements(ctx, ex.Executor(), guest.Windows, guest.Requirements{Commands: []string{"powershell", "ssh-agent"}})
	if err != nil || row(t, rep, "os.commands").Detail != "missing: ssh-agent" {
		t.Fatalf("report %+v, %v", rep, err)
	}
	if s := ex.Commands()[0].Script; !strings.Contains(s, "@('powershell','ssh-agent')") {
		t.Errorf("script %q", s)
	}
}

func TestCheckRequirementsPolicyChecks(t *testing.T) {
	ctx := context.Background()
	var gotFacts guest.Facts
	ok := func(_ context.Context, _ *guest.Executor, f guest.Facts) (report.Check, error) {
		gotFacts = f
		return report.Check{ID: "own", Name: "own", Status: report.Warn}, nil
	}
	rep, err := guest.CheckRequirements(ctx, linuxGuest(dfOut).Executor(), guest.Linux, guest.Requirements{Checks: []guest.RequirementCheck{ok}})
	if err != nil || len(rep.Warnings()) != 1 || gotFacts.Distribution != "debian" || gotFacts.PackageManager != "apt" {
		t.Fatalf("report %+v, %v, facts %+v", rep, err, gotFacts)
	}
	cannot := errs.New(errs.Unavailable, "check", "cannot run")
	failing := func(context.Context, *guest.Executor, guest.Facts) (report.Check, error) {
		return report.Check{}, cannot
	}
	_, err = guest.CheckRequirements(ctx, linuxGuest(dfOut).Executor(), guest.Linux, guest.Requirements{Checks: []guest.RequirementCheck{ok, failing}})
	if !errors.Is(err, cannot) {
		t.Fatalf("err %v", err)
	}
	testkit.WantCode(t, "failing check", err, errs.Unavailable)
}
