package template_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/template"
)

func TestValidateHostname(t *testing.T) {
	good := []string{"web01", "a", "web-01.example.com", "x1", "0web", strings.Repeat("a", 63), "1.example.com"}
	bad := []string{"", "-web", "web-", "web_01", "web 01", "web..example", ".web", "web.", strings.Repeat("a", 64),
		"12345", "1.2.3.4", "wéb", "web\n01", strings.Repeat("a.", 127) + "ab"}
	for _, h := range good {
		if err := template.ValidateHostname(h); err != nil {
			t.Errorf("ValidateHostname(%q) = %v", h, err)
		}
	}
	for _, h := range bad {
		if err := template.ValidateHostname(h); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("ValidateHostname(%q) = %v, want InvalidArgument", h, err)
		}
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{{"WIN01", true}, {"ABCDEFGHIJKLMNO", true}, {"ABCDEFGHIJKLMNOP", false}, {"win.example", false}, {"123", false}, {"W-1", true}, {"", false}} {
		err := template.ValidateComputerName(c.name)
		if (err == nil) != c.ok || (err != nil && errs.CodeOf(err) != errs.InvalidArgument) {
			t.Errorf("ValidateComputerName(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// TestSettingsRejected checks that bad input is rejected with
// InvalidArgument by Validate and by every renderer, and that the message
// says what is wrong without showing a password.
func TestSettingsRejected(t *testing.T) {
	static := func(addr, gw string) *provider.StaticIP {
		st := &provider.StaticIP{Address: netip.MustParsePrefix(addr)}
		if gw != "" {
			st.Gateway = netip.MustParseAddr(gw)
		}
		return st
	}
	cases := []struct {
		name   string
		base   func() template.Settings
		mutate func(*template.Settings)
		want   string // part of the message
	}{
		{"empty instance id", linuxSettings, func(s *template.Settings) { s.InstanceID = "" }, "instance ID is empty"},
		{"instance id with space", linuxSettings, func(s *template.Settings) { s.InstanceID = "a b" }, "instance ID"},
		{"empty hostname", linuxSettings, func(s *template.Settings) { s.Hostname = "" }, "hostname"},
		{"hostname underscore", linuxSettings, func(s *template.Settings) { s.Hostname = "web_01" }, "hostname"},
		{"hostname leading hyphen", linuxSettings, func(s *template.Settings) { s.Hostname = "-web" }, "hostname"},
		{"hostname with dot", linuxSettings, func(s *template.Settings) { s.Hostname = "web.example.com" }, "single label"},
		{"hostname all digits", linuxSettings, func(s *template.Settings) { s.Hostname = "1234" }, "all digits"},
		{"hostname yaml injection", linuxSettings, func(s *template.Settings) { s.Hostname = "web\nruncmd: [reboot]" }, "hostname"},
		{"windows hostname too long", windowsSettings, func(s *template.Settings) { s.Hostname = "WINDOWS-SERVER-01" }, "15 characters"},
		{"bad domain", linuxSettings, func(s *template.Settings) { s.Domain = "exa mple.com" }, "domain"},
		{"duplicate users", linuxSettings, func(s *template.Settings) { s.Users[1].Name = s.Users[0].Name }, "duplicates users[0]"},
		{"duplicate windows users differ in case", windowsSettings, func(s *template.Settings) {
			s.Users = append(s.Users, template.User{Name: strings.ToUpper(s.Users[0].Name)})
		}, "duplicates"},
		{"bad user name", linuxSettings, func(s *template.Settings) { s.Users[0].Name = "Ops" }, "POSIX user name"},
		{"user name injection", linuxSettings, func(s *template.Settings) { s.Users[0].Name = "ops\n  sudo: ALL" }, "POSIX user name"},
		{"password and hash", linuxSettings, func(s *template.Settings) { s.Users[0].PasswordHash = "$6$abc$def" }, "both Password and PasswordHash"},
		{"hash not crypt", linuxSettings, func(s *template.Settings) { s.Users[1].PasswordHash = "plaintext" }, "crypt(3)"},
		{"windows user password", windowsSettings, func(s *template.Settings) { s.Users[0].Password = guest.NewSecret("hunter2") }, "clear text"},
		{"password control char", linuxSettings, func(s *template.Settings) { s.Users[0].Password = guest.NewSecret("a\x00b") }, "password contains a control character"},
		{"key with newline", linuxSettings, func(s *template.Settings) {
			s.Users[0].SSHAuthorizedKeys = []string{"ssh-ed25519 AAAA\nssh-rsa BBBB x"}
		}, "line break"},
		{"key one field", linuxSettings, func(s *template.Settings) { s.Users[0].SSHAuthorizedKeys = []string{"AAAA"} }, "authorized_keys"},
		{"group bad", linuxSettings, func(s *template.Settings) { s.Users[0].Groups = []string{"wheel,root"} }, "group"},
		{"shell relative", linuxSettings, func(s *template.Settings) { s.Users[0].Shell = "bash" }, "shell"},
		// useradd refuses a shell with ':' (the passwd field separator), and
		// the user is then not created at all.
		{"shell with colon", linuxSettings, func(s *template.Settings) { s.Users[0].Shell = "/bin/b:sh" }, "shell"},
		{"shell with space", linuxSettings, func(s *template.Settings) { s.Users[0].Shell = "/bin/ba sh" }, "shell"},
		// cloud-init maps "default" to the distribution's default user.
		{"user named default", linuxSettings, func(s *template.Settings) { s.Users[1].Name = "default" }, "default user"},
		{"package with space", linuxSettings, func(s *template.Settings) { s.Packages = []string{"curl wget"} }, "package name"},
		{"windows packages", windowsSettings, func(s *template.Settings) { s.Packages = []string{"curl"} }, "cloudbase-init"},
		{"relative file", linuxSettings, func(s *template.Settings) { s.Files[0].Path = "etc/motd" }, "absolute path"},
		{"unclean file", linuxSettings, func(s *template.Settings) { s.Files[0].Path = "/etc/../etc/motd" }, "absolute path"},
		{"duplicate file", linuxSettings, func(s *template.Settings) { s.Files[1].Path = s.Files[0].Path }, "same path"},
		{"file setuid", linuxSettings, func(s *template.Settings) { s.Files[0].Permissions = 0o4755 | (1 << 23) }, "permissions"},
		{"file bad owner", linuxSettings, func(s *template.Settings) { s.Files[0].Owner = "root:root:x" }, "owner"},
		{"windows file path", windowsSettings, func(s *template.Settings) { s.Files[0].Path = "/etc/motd" }, "Windows path"},
		{"empty command", linuxSettings, func(s *template.Settings) { s.RunCmd = []string{"  "} }, "runcmd[0] is empty"},
		{"command control char", linuxSettings, func(s *template.Settings) { s.RunCmd = []string{"echo \x1b[31m"} }, "control character"},
		{"command invalid utf8", linuxSettings, func(s *template.Settings) { s.RunCmd = []string{"echo \xff"} }, "UTF-8"},
		{"nic without identity", linuxSettings, func(s *template.Settings) { s.NICs[1].Name = "" }, "MAC address or an interface name"},
		{"windows nic without mac", windowsSettings, func(s *template.Settings) { s.NICs[0].MAC = "" }, "needs a MAC"},
		{"bad mac", linuxSettings, func(s *template.Settings) { s.NICs[0].MAC = "00:50:56:zz:00:01" }, "MAC"},
		{"duplicate mac", linuxSettings, func(s *template.Settings) { s.NICs[1].MAC = "00-50-56-ab-cd-ef" }, "duplicates"},
		{"gateway outside", linuxSettings, func(s *template.Settings) { s.NICs[0].Static = static("10.0.0.5/24", "10.0.1.1") }, "outside"},
		{"gateway family", linuxSettings, func(s *template.Settings) { s.NICs[0].Static = static("10.0.0.5/24", "2001:db8::1") }, "family"},
		{"unset static", linuxSettings, func(s *template.Settings) { s.NICs[0].Static = &provider.StaticIP{} }, "not set"},
		{"glob with mac", linuxSettings, func(s *template.Settings) { s.NICs[0].Name = "en*" }, "glob"},
		{"linux with windows settings", linuxSettings, func(s *template.Settings) { s.Windows = &template.Windows{} }, "windows settings"},
		{"unknown family", linuxSettings, func(s *template.Settings) { s.Family = "plan9" }, "neither linux nor windows"},
		{"windows autologon without password", windowsSettings, func(s *template.Settings) { s.Windows.AdminPassword = guest.Secret{} }, "auto logon needs AdminPassword"},
		{"windows command newline", windowsSettings, func(s *template.Settings) {
			s.Windows.FirstLogonCommands = []string{"cmd /c echo a\r\ncmd /c echo b"}
		}, "line break"},
		{"windows bad plugin", windowsSettings, func(s *template.Settings) { s.Windows.Cloudbase.Plugins = []string{"not a class"} }, "class path"},
		{"windows username dollar", windowsSettings, func(s *template.Settings) { s.Windows.Cloudbase.Username = "adm$n" }, "oslo.config"},
		{"linux timezone on windows", windowsSettings, func(s *template.Settings) { s.Timezone = "Europe/Paris" }, "Windows.TimeZone"},
		{"bad timezone", linuxSettings, func(s *template.Settings) { s.Timezone = "../../etc/passwd" }, "timezone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.base()
			tc.mutate(&s)
			check := func(what string, err error) {
				t.Helper()
				if errs.CodeOf(err) != errs.InvalidArgument {
					t.Fatalf("%s: %v, want InvalidArgument", what, err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %q does not mention %q", what, err, tc.want)
				}
				for _, secret := range []string{linuxPassword, windowsPassword, "hunter2"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("%s: error shows a password: %q", what, err)
					}
				}
			}
			check("Validate", s.Validate())
			_, err := template.RenderNoCloud(s, detOpts())
			check("RenderNoCloud", err)
			_, err = template.RenderConfigDrive(s, detOpts())
			check("RenderConfigDrive", err)
			_, err = template.RenderGuestInfo(s, detOpts())
			check("RenderGuestInfo", err)
			_, err = template.BuildCustomizationSpec("spec", s, nil)
			check("BuildCustomizationSpec", err)
		})
	}
}

func TestSettingsValidateListsEveryProblem(t *testing.T) {
	s := linuxSettings()
	s.InstanceID = ""
	s.Hostname = "bad_host"
	s.Users[1].Name = s.Users[0].Name
	err := s.Validate()
	for _, want := range []string{"instance ID", "hostname", "duplicates"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %q", err, want)
		}
	}
}

func TestSamplesValid(t *testing.T) {
	for _, s := range []template.Settings{linuxSettings(), linuxDHCPSettings(), windowsSettings()} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", s.Hostname, err)
		}
	}
}

func TestConfigDriveRejectsGlob(t *testing.T) {
	s := linuxSettings()
	s.NICs[1].Name = "ens*"
	if _, err := template.RenderNoCloud(s, detOpts()); err != nil {
		t.Fatalf("NoCloud accepts a glob (netplan): %v", err)
	}
	if _, err := template.RenderConfigDrive(s, detOpts()); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("RenderConfigDrive with a name glob: %v, want InvalidArgument", err)
	}
}

func TestCustomizationSpecRejectsIPv6(t *testing.T) {
	s := linuxSettings()
	s.NICs[0].Static = &provider.StaticIP{Address: netip.MustParsePrefix("2001:db8::5/64"), Gateway: netip.MustParseAddr("2001:db8::1")}
	if _, err := template.RenderNoCloud(s, detOpts()); err != nil {
		t.Fatalf("NoCloud with IPv6: %v", err)
	}
	if _, err := template.BuildCustomizationSpec("spec", s, nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("BuildCustomizationSpec with IPv6: %v, want InvalidArgument", err)
	}
	if _, err := template.BuildCustomizationSpec("", linuxSettings(), nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("BuildCustomizationSpec without a name: %v, want InvalidArgument", err)
	}
}
