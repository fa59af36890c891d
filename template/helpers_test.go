package template_test

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/template"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// detOpts returns render options with a deterministic salt source.
func detOpts() *template.Options {
	return &template.Options{Rand: rand.NewChaCha8([32]byte{1, 2, 3})}
}

const (
	linuxPassword   = "s3cret! with spaces"
	windowsPassword = "P@ssw0rd!"
)

func linuxSettings() template.Settings {
	return template.Settings{
		InstanceID: "iid-web01-0001",
		Hostname:   "web01",
		Domain:     "example.com",
		Timezone:   "Europe/Paris",
		Users: []template.User{
			{
				Name:              "ops",
				Password:          guest.NewSecret(linuxPassword),
				SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqsZC3SWcqTUQH2jzzK0wqN ops@example"},
				Groups:            []string{"wheel", "adm"},
				Sudo:              true,
				Shell:             "/bin/bash",
			},
			{Name: "backup", SSHAuthorizedKeys: []string{"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 backup@example"}},
		},
		SSHPasswordAuth: true,
		Packages:        []string{"curl", "qemu-guest-agent"},
		Files: []template.File{
			{Path: "/etc/motd", Content: []byte("Managed by managedvm\n")},
			{Path: "/usr/local/bin/agent-setup", Content: []byte("#!/bin/sh\nset -eu\necho 'yes: no'\n"), Permissions: 0o755, Owner: "root:root"},
			{Path: "/etc/agent/token.bin", Content: []byte{0, 1, 2, 0xff}, Permissions: 0o600},
			{Path: "/home/ops/.agent.conf", Content: []byte("server=hcp.example.com\n"), Permissions: 0o600, Owner: "ops:adm"},
		},
		RunCmd: []string{
			"curl -Ls https://repo.example.com/agents/hcp_linux_agent.sh | bash -s https://repo.example.com/repo/LATEST AUTO_INSERT hcp.example.com_https://hcp.example.com 5671 docker.skip",
			"systemctl enable --now qemu-guest-agent",
		},
		NICs: []template.NIC{
			{
				MAC:  "00:50:56:AB:CD:EF",
				Name: "eth0",
				Static: &provider.StaticIP{
					Address: netip.MustParsePrefix("10.0.0.5/24"),
					Gateway: netip.MustParseAddr("10.0.0.1"),
					DNS:     []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")},
				},
				SearchDomains: []string{"example.com"},
			},
			{Name: "ens224"},
		},
	}
}

func linuxDHCPSettings() template.Settings {
	return template.Settings{
		InstanceID: "iid-db01",
		Hostname:   "db01",
		Users:      []template.User{{Name: "ops", Password: guest.NewSecret(linuxPassword)}},
		RunCmd:     []string{"echo ready"},
	}
}

func windowsConfig() template.Windows {
	return template.Windows{
		AdminPassword:  guest.NewSecret(windowsPassword),
		AutoLogonCount: 1,
		FirstLogonCommands: []string{
			`c:\WINDOWS\system32\WindowsPowerShell\v1.0\powershell.exe -ExecutionPolicy bypass -Command "Invoke-WebRequest https://repo.example.com/agents/hcp_agent_install_windows.ps1 -OutFile c:\hcp_agent_install_windows.ps1"`,
			`c:\WINDOWS\system32\WindowsPowerShell\v1.0\powershell.exe -ExecutionPolicy bypass -Command "c:\hcp_agent_install_windows.ps1 https://repo.example.com/ AUTO_INSERT hcp.example.com_https://hcp.example.com 5671 docker.skip"`,
		},
		TimeZone:               "UTC",
		RegisteredOwner:        "Operations",
		RegisteredOrganization: "Example & Co <ops>",
	}
}

func windowsSettings() template.Settings {
	w := windowsConfig()
	return template.Settings{
		Family:     guest.Windows,
		InstanceID: "iid-win01",
		Hostname:   "WIN01",
		Users: []template.User{{
			Name:              "svc_agent",
			SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqsZC3SWcqTUQH2jzzK0wqN ops@example"},
			Groups:            []string{"Administrators"},
		}},
		Files:  []template.File{{Path: `C:\ProgramData\agent\config.ini`, Content: []byte("[agent]\nserver=hcp.example.com\n")}},
		RunCmd: []string{`powershell.exe -NoProfile -Command "Set-Service -Name WinRM -StartupType Automatic"`},
		NICs: []template.NIC{{
			MAC: "00-50-56-01-02-03",
			Static: &provider.StaticIP{
				Address: netip.MustParsePrefix("192.0.2.10/24"),
				Gateway: netip.MustParseAddr("192.0.2.1"),
				DNS:     []netip.Addr{netip.MustParseAddr("192.0.2.53")},
			},
		}},
		Windows: &w,
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func isInvalid(err error) bool { return errs.CodeOf(err) == errs.InvalidArgument }
