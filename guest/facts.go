package guest

import (
	"context"
	"strconv"
	"strings"

	"github.com/managedvm/managedvm/errs"
)

// Facts are what managedvm knows of a guest's operating system.
type Facts struct {
	Family OSFamily
	// Distribution is the os-release ID on Linux ("debian", "rhel",
	// "ubuntu") and "windows" on Windows.
	Distribution string
	// Name is the human-readable name ("Debian GNU/Linux 12 (bookworm)",
	// "Microsoft Windows Server 2022 Datacenter").
	Name string
	// Version is the version ("12", "9.4", "10.0.20348").
	Version string
	// Kernel is the kernel release on Linux, the build number on Windows.
	Kernel string
	// Arch is the machine architecture ("x86_64", "aarch64", "AMD64").
	Arch string
	// FreeDiskMiB is the free space on the root file system ("/") or the
	// system drive (C:), in MiB; 0 when it was not measured.
	FreeDiskMiB int64
	// PackageManager is the guest's package tool: "apt", "dnf", "yum",
	// "zypper", "apk", "pacman" on Linux, "winget" or "choco" on Windows;
	// "" when none was found.
	PackageManager string
	// InitSystem is "systemd", "openrc", "upstart" or "sysvinit" on Linux
	// (what runs as PID 1) and "scm" (the Service Control Manager) on
	// Windows; "" when unknown.
	InitSystem string
}

// linuxFactsScript prints os-release, then a marker, the kernel release and
// the machine architecture.
const linuxFactsScript = `if [ -r /etc/os-release ]; then cat /etc/os-release; elif [ -r /usr/lib/os-release ]; then cat /usr/lib/os-release; fi
echo __MANAGEDVM_UNAME__
uname -r
uname -m
echo __MANAGEDVM_EXTRA__
for p in apt-get dnf yum zypper apk pacman; do if command -v "$p" >/dev/null 2>&1; then echo "PKG=$p"; break; fi; done
if [ -d /run/systemd/system ]; then echo INIT=systemd
elif command -v openrc >/dev/null 2>&1 || [ -d /run/openrc ]; then echo INIT=openrc
elif command -v initctl >/dev/null 2>&1 && initctl version 2>/dev/null | grep -q upstart; then echo INIT=upstart
elif [ -f /etc/inittab ] || [ -d /etc/init.d ]; then echo INIT=sysvinit
fi
df -Pk / 2>/dev/null | awk 'NR==2 {print "DISK=" $4}'`

// windowsFactsScript prints KEY=VALUE lines.
const windowsFactsScript = `$os = Get-CimInstance -ClassName Win32_OperatingSystem
"NAME=" + $os.Caption
"VERSION=" + $os.Version
"BUILD=" + $os.BuildNumber
"ARCH=" + $env:PROCESSOR_ARCHITECTURE
"INIT=scm"`

// windowsExtraFactsScript prints the free space of the system drive and
// the package manager. It runs as a command of its own, before the main
// script, and its failure only leaves those facts unknown.
const windowsExtraFactsScript = `try { "DISK=" + [string][math]::Floor((Get-PSDrive -Name ($env:SystemDrive.TrimEnd(':'))).Free / 1MB) } catch { }
if (Get-Command winget -ErrorAction SilentlyContinue) { "PKG=winget" } elseif (Get-Command choco -ErrorAction SilentlyContinue) { "PKG=choco" }`

// DetectFacts asks the guest behind ex for its OS facts: /etc/os-release and
// uname on Linux, Win32_OperatingSystem on Windows (by ex.Family()). A guest
// whose answer holds no facts at all (neither os-release nor uname on
// Linux; neither the OS name nor the build on Windows) is FailedPrecondition
// on both families: it is not the OS the executor speaks to.
func DetectFacts(ctx context.Context, ex *Executor) (Facts, error) {
	const op = "guest.DetectFacts"
	switch ex.Family() {
	case Windows:
		extra, err := Output(ctx, ex, Command{Script: windowsExtraFactsScript})
		if err != nil {
			if c := errs.CodeOf(err); c == errs.Canceled || c == errs.DeadlineExceeded {
				return Facts{}, errs.WrapOp(op, err)
			}
			extra = "" // best effort: free space and package manager stay unknown
		}
		out, err := Output(ctx, ex, Command{Script: windowsFactsScript})
		if err != nil {
			return Facts{}, errs.WrapOp(op, err)
		}
		kv := parseKV(out)
		if kv["NAME"] == "" && kv["BUILD"] == "" {
			return Facts{}, errs.New(errs.FailedPrecondition, op, "the guest printed no OS name or build from Win32_OperatingSystem: not a Windows guest?")
		}
		for k, v := range parseKV(extra) {
			if k == "DISK" || k == "PKG" {
				kv[k] = v
			}
		}
		return Facts{Family: Windows, Distribution: "windows", Name: kv["NAME"], Version: kv["VERSION"], Kernel: kv["BUILD"], Arch: kv["ARCH"],
			FreeDiskMiB: parseMiB(kv["DISK"], 0), PackageManager: kv["PKG"], InitSystem: kv["INIT"]}, nil
	default:
		out, err := Output(ctx, ex, Command{Script: linuxFactsScript})
		if err != nil {
			return Facts{}, errs.WrapOp(op, err)
		}
		release, uname, _ := strings.Cut(out, "__MANAGEDVM_UNAME__")
		uname, extra, _ := strings.Cut(uname, "__MANAGEDVM_EXTRA__")
		f := FactsFromOSRelease(release)
		kv := parseKV(extra)
		f.FreeDiskMiB = parseMiB(kv["DISK"], 10)
		f.PackageManager = kv["PKG"]
		if f.PackageManager == "apt-get" {
			f.PackageManager = "apt"
		}
		f.InitSystem = kv["INIT"]
		lines := strings.Fields(uname)
		if len(lines) > 0 {
			f.Kernel = lines[0]
		}
		if len(lines) > 1 {
			f.Arch = lines[1]
		}
		if f.Distribution == "" && f.Kernel == "" {
			return Facts{}, errs.New(errs.FailedPrecondition, op, "the guest printed neither os-release nor uname: not a Linux guest?")
		}
		return f, nil
	}
}

// parseMiB reads a number scaled by 2^shift into MiB: 0 if absent or
// malformed.
func parseMiB(s string, shift uint) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n >> shift
}

// ParseOSRelease parses os-release(5) content into its keys and unquoted
// values.
func ParseOSRelease(content string) map[string]string {
	return parseKV(content)
}

// FactsFromOSRelease builds Linux facts from os-release content.
func FactsFromOSRelease(content string) Facts {
	kv := parseKV(content)
	name := kv["PRETTY_NAME"]
	if name == "" {
		name = kv["NAME"]
	}
	return Facts{Family: Linux, Distribution: kv["ID"], Name: name, Version: kv["VERSION_ID"]}
}

func parseKV(content string) map[string]string {
	kv := make(map[string]string)
	for line := range strings.Lines(content) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		kv[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
	}
	return kv
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		q := v[0]
		v = v[1 : len(v)-1]
		if q == '"' {
			v = unescapeDoubleQuoted(v)
		}
	}
	return v
}

// unescapeDoubleQuoted undoes the backslash escapes os-release(5) allows in
// double quotes: \" \\ \$ and \`.
func unescapeDoubleQuoted(v string) string {
	if strings.IndexByte(v, '\\') < 0 {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\$`", v[i+1]) >= 0 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
