package guest_test

import (
	"context"
	"os/exec"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
)

func TestDetectFactsLinuxExtra(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("/etc/os-release", memguest.Reply(rhel9+"__MANAGEDVM_UNAME__\n5.14.0\nx86_64\n__MANAGEDVM_EXTRA__\nPKG=dnf\nINIT=systemd\nDISK=2097152\n"))
	f, err := guest.DetectFacts(context.Background(), ex.Executor())
	if err != nil {
		t.Fatal(err)
	}
	if f.Kernel != "5.14.0" || f.Arch != "x86_64" || f.PackageManager != "dnf" || f.InitSystem != "systemd" || f.FreeDiskMiB != 2048 {
		t.Fatalf("facts %+v", f)
	}
	// apt-get is reported as apt; a malformed size is 0 (not measured).
	ex = memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("/etc/os-release", memguest.Reply("ID=debian\n__MANAGEDVM_UNAME__\n6.1\nx86_64\n__MANAGEDVM_EXTRA__\nPKG=apt-get\nDISK=lots\n"))
	f, err = guest.DetectFacts(context.Background(), ex.Executor())
	if err != nil {
		t.Fatal(err)
	}
	if f.PackageManager != "apt" || f.FreeDiskMiB != 0 || f.InitSystem != "" {
		t.Fatalf("facts %+v", f)
	}
}

func TestDetectFactsWindowsExtra(t *testing.T) {
	ex := memguest.NewDriver(guest.Windows, nil)
	ex.HandleScript("Get-PSDrive", memguest.Reply("DISK=51200\r\nPKG=winget\r\n"))
	ex.HandleScript("Win32_OperatingSystem", memguest.Reply("NAME=Windows\r\nVERSION=10.0.20348\r\nBUILD=20348\r\nARCH=AMD64\r\nINIT=scm\r\n"))
	f, err := guest.DetectFacts(context.Background(), ex.Executor())
	if err != nil {
		t.Fatal(err)
	}
	if f.InitSystem != "scm" || f.FreeDiskMiB != 51200 || f.PackageManager != "winget" || f.Version != "10.0.20348" {
		t.Fatalf("facts %+v", f)
	}
	// The extra facts are best effort: their script failing leaves them
	// unknown, the rest is still detected.
	ex = memguest.NewDriver(guest.Windows, nil)
	ex.HandleScript("Get-PSDrive", memguest.Exit(1, "", "Get-PSDrive : access denied\r\n"))
	ex.HandleScript("Win32_OperatingSystem", memguest.Reply("NAME=Windows\r\nVERSION=10.0.20348\r\nBUILD=20348\r\nARCH=AMD64\r\nINIT=scm\r\n"))
	f, err = guest.DetectFacts(context.Background(), ex.Executor())
	if err != nil || f.FreeDiskMiB != 0 || f.PackageManager != "" || f.Version != "10.0.20348" {
		t.Fatalf("facts %+v, %v", f, err)
	}
}

// TestDetectFactsLinuxRealShell runs the real script with this machine's sh.
func TestDetectFactsLinuxRealShell(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleDefault(func(ctx context.Context, cmd guest.Command) (guest.Result, error) {
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", guest.ShellCommandLine(cmd)).Output()
		return guest.Result{Stdout: out}, err
	})
	f, err := guest.DetectFacts(context.Background(), ex.Executor())
	if err != nil {
		t.Fatal(err)
	}
	if f.FreeDiskMiB <= 0 || f.Kernel == "" {
		t.Fatalf("facts from this machine: %+v", f)
	}
	if _, err := exec.LookPath("apt-get"); err == nil && f.PackageManager != "apt" {
		t.Fatalf("this machine has apt-get, facts say %q", f.PackageManager)
	}
	if f.InitSystem == "" {
		t.Fatalf("no init system detected: %+v", f)
	}
}
