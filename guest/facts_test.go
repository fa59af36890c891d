package guest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
)

const (
	debian12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`
	ubuntu2204 = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
`
	rhel9 = `NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
HOME_URL="https://www.redhat.com/"
`
	sles15 = `NAME="SLES"
VERSION="15-SP5"
VERSION_ID="15.5"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"
ID="sles"
ID_LIKE="suse"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:suse:sles:15:sp5"
DOCUMENTATION_URL="https://documentation.suse.com/"
`
	// Quoting as os-release(5) allows: single quotes, escapes in double
	// quotes, comments, blank lines, spaces around the line.
	quoted = "# a comment\n" +
		"  ID='custom'\n" +
		"\n" +
		`NAME="Custom \"Quoted\" \$Linux\\ \` + "`" + ` "` + "\n" +
		"VERSION_ID=1.0\n" +
		"NOT A KEY VALUE LINE\n"
	// No PRETTY_NAME: NAME is used.
	minimal = "ID=alpine\nNAME=\"Alpine Linux\"\nVERSION_ID=3.19.1\n"
)

func TestFactsFromOSRelease(t *testing.T) {
	cases := []struct {
		name, content string
		want          guest.Facts
	}{
		{"debian 12", debian12, guest.Facts{Family: guest.Linux, Distribution: "debian", Name: "Debian GNU/Linux 12 (bookworm)", Version: "12"}},
		{"ubuntu 22.04", ubuntu2204, guest.Facts{Family: guest.Linux, Distribution: "ubuntu", Name: "Ubuntu 22.04.4 LTS", Version: "22.04"}},
		{"rhel 9", rhel9, guest.Facts{Family: guest.Linux, Distribution: "rhel", Name: "Red Hat Enterprise Linux 9.4 (Plow)", Version: "9.4"}},
		{"sles 15", sles15, guest.Facts{Family: guest.Linux, Distribution: "sles", Name: "SUSE Linux Enterprise Server 15 SP5", Version: "15.5"}},
		{"quoted", quoted, guest.Facts{Family: guest.Linux, Distribution: "custom", Name: "Custom \"Quoted\" $Linux\\ ` ", Version: "1.0"}},
		{"minimal", minimal, guest.Facts{Family: guest.Linux, Distribution: "alpine", Name: "Alpine Linux", Version: "3.19.1"}},
		{"CRLF", strings.ReplaceAll(debian12, "\n", "\r\n"), guest.Facts{Family: guest.Linux, Distribution: "debian", Name: "Debian GNU/Linux 12 (bookworm)", Version: "12"}},
		{"empty", "", guest.Facts{Family: guest.Linux}},
	}
	for _, c := range cases {
		if got := guest.FactsFromOSRelease(c.content); got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
	kv := guest.ParseOSRelease(rhel9)
	if kv["PLATFORM_ID"] != "platform:el9" || kv["ID_LIKE"] != "fedora" || len(kv) != 11 {
		t.Fatalf("ParseOSRelease: %v", kv)
	}
}

func TestDetectFactsLinux(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("/etc/os-release", memguest.Reply(rhel9+"__MANAGEDVM_UNAME__\n5.14.0-427.el9.x86_64\nx86_64\n"))
	f, err := guest.DetectFacts(context.Background(), ex.Executor())
	if err != nil {
		t.Fatal(err)
	}
	want := guest.Facts{Family: guest.Linux, Distribution: "rhel", Name: "Red Hat Enterprise Linux 9.4 (Plow)", Version: "9.4", Kernel: "5.14.0-427.el9.x86_64", Arch: "x86_64"}
	if f != want {
		t.Fatalf("facts %+v\nwant %+v", f, want)
	}
	// The script went to the guest's sh: check it is the Linux one.
	cmds := ex.Commands()
	if len(cmds) != 1 || !strings.Contains(cmds[0].Script, "uname -m") {
		t.Fatalf("commands %+v", cmds)
	}
}

func TestDetectFactsLinuxWithoutOSRelease(t *testing.T) {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("/etc/os-release", memguest.Reply("__MANAGEDVM_UNAME__\n4.19.0\naarch64\n"))
	f, err := guest.DetectFacts(context.Background(), ex.Executor())
	if err != nil {
		t.Fatal(err)
	}
	if f != (guest.Facts{Family: guest.Linux, Kernel: "4.19.0", Arch: "aarch64"}) {
		t.Fatalf("facts %+v", f)
	}
}

func TestDetectFactsWindows(t *testing.T) {
	ex := memguest.NewDriver(guest.Windows, nil)
	ex.HandleScript("Win32_OperatingSystem", memguest.Reply("NAME=Microsoft Windows Server 2022 Datacenter\r\nVERSION=10.0.20348\r\nBUILD=20348\r\nARCH=AMD64\r\n"))
	f, err := guest.DetectFacts(context.Background(), ex.Executor())
	if err != nil {
		t.Fatal(err)
	}
	want := guest.Facts{Family: guest.Windows, Distribution: "windows", Name: "Microsoft Windows Server 2022 Datacenter", Version: "10.0.20348", Kernel: "20348", Arch: "AMD64"}
	if f != want {
		t.Fatalf("facts %+v\nwant %+v", f, want)
	}
}

func TestDetectFactsErrors(t *testing.T) {
	ctx := context.Background()
	// A guest that prints nothing is not a Linux guest.
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleDefault(memguest.Reply(""))
	if _, err := guest.DetectFacts(ctx, ex.Executor()); errs.CodeOf(err) != errs.FailedPrecondition {
		t.Fatalf("empty output: %v", err)
	}
	// Nor is one a Windows guest: both families treat it alike.
	ex = memguest.NewDriver(guest.Windows, nil)
	ex.HandleDefault(memguest.Reply(""))
	if _, err := guest.DetectFacts(ctx, ex.Executor()); errs.CodeOf(err) != errs.FailedPrecondition || !strings.Contains(err.Error(), "not a Windows guest") {
		t.Fatalf("empty Windows output: %v", err)
	}
	// Transport errors keep their code and gain the operation.
	ex = memguest.NewDriver(guest.Windows, nil)
	ex.HandleDefault(memguest.Fail(errs.New(errs.Unauthenticated, "winrm", "401")))
	_, err := guest.DetectFacts(ctx, ex.Executor())
	if errs.CodeOf(err) != errs.Unauthenticated || !strings.HasPrefix(err.Error(), "guest.DetectFacts: ") {
		t.Fatalf("transport error: %v", err)
	}
	// A canceled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := guest.DetectFacts(cctx, memguest.New(guest.Linux, nil)); errs.CodeOf(err) != errs.Canceled {
		t.Fatalf("canceled: %v", err)
	}
}
