package template

import (
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
)

// Settings are what a new guest is told on its first boot. One Settings
// value renders every format of this package: NoCloud, ConfigDrive, VMware
// guestinfo and the vSphere customization spec. Windows guests also need a
// [Windows] value, used by the vSphere sysprep spec (cloudbase-init's own
// files are rendered from a Windows value alone, by [RenderCloudbaseInit]).
//
// Settings.Validate gives the rules; every renderer applies them first.
type Settings struct {
	// Family is the guest OS family: Linux (cloud-init) or Windows
	// (cloudbase-init). Empty means Linux.
	Family guest.OSFamily
	// InstanceID identifies this instance to cloud-init: a new ID makes
	// cloud-init run its first-boot modules again. Required.
	InstanceID string
	// Hostname is the host name, one RFC 1123 label (15 characters at most
	// on Windows). Required.
	Hostname string
	// Domain, if set, makes the FQDN Hostname.Domain.
	Domain string
	// Timezone is an IANA time zone ("Europe/Paris") for Linux guests.
	// Windows time zones are set in Windows.
	Timezone string
	// Users are the accounts to create. On Linux they replace the
	// distribution's default user.
	Users []User
	// SSHPasswordAuth enables SSH password authentication (ssh_pwauth).
	SSHPasswordAuth bool
	// AllowRootLogin allows root to log in over SSH (disable_root: false).
	AllowRootLogin bool
	// Packages are installed on first boot (Linux only).
	Packages []string
	// Files are written on first boot (write_files).
	Files []File
	// RunCmd are shell command lines run once on first boot, in order
	// (runcmd): for example the monitoring agent's install command. They
	// run under /bin/sh on Linux.
	RunCmd []string
	// NICs configure the network interfaces. Empty leaves the guest's
	// default (DHCP on the first interface) and writes no network config.
	NICs []NIC
	// Windows holds the Windows-only settings; it must be nil for Linux.
	Windows *Windows
}

// User is an account created on first boot.
type User struct {
	// Name is the user name: a POSIX name on Linux
	// ([a-z_][a-z0-9_-]*, 32 characters at most, not "default", which
	// cloud-init reads as the distribution's default user), a local
	// account name on Windows (20 characters at most). An account that
	// already exists in the template (root, or one baked in) is not
	// created again; its password, keys and sudo rule are still applied.
	Name string
	// Password is the account's password. On Linux it is rendered only as
	// a SHA-512 crypt hash. cloudbase-init cannot take a hash, so Windows
	// users may not have one here: set Windows.AdminPassword instead.
	Password guest.Secret
	// PasswordHash is a crypt(3) hash ($6$, $5$, $y$, $2b$ ...) used as
	// is; an alternative to Password (Linux only).
	PasswordHash string
	// SSHAuthorizedKeys are authorized_keys lines.
	SSHAuthorizedKeys []string
	// Groups the user is added to.
	Groups []string
	// Sudo grants passwordless sudo (Linux).
	Sudo bool
	// Shell is the login shell (Linux): a clean absolute path of letters,
	// digits and "._+-" ("/bin/bash"). It applies only to accounts
	// cloud-init creates: useradd sets it, an existing account keeps its
	// own.
	Shell string
}

// File is a file written on first boot.
type File struct {
	// Path is absolute: "/etc/motd", or "C:\path\file" on Windows.
	Path string
	// Content is written as is. Content that is not plain text is carried
	// base64-encoded.
	Content []byte
	// Permissions are the file's permission bits (Linux); zero means 0644.
	Permissions fs.FileMode
	// Owner is "user" or "user:group" (Linux); empty means root. A file
	// owned by a user or group the same Settings create is written in
	// cloud-init's final stage (write_files defer: true), after the users
	// exist and packages are installed and before runcmd runs; other files
	// are written before users are created.
	Owner string
}

// NIC configures one network interface.
type NIC struct {
	// MAC selects the interface by hardware address. Windows NICs need it.
	MAC string
	// Name is the guest's interface name ("eth0", "ens192"). With MAC set
	// the interface is renamed to it; without MAC it selects the interface
	// by name. A glob such as "ens*" selects by pattern with netplan and
	// systemd-networkd only (ifupdown's /etc/network/interfaces and
	// sysconfig take it as a literal name), and not in ConfigDrive. One of
	// MAC and Name is required.
	Name string
	// Static, if set, configures a static address; nil means DHCP.
	Static *provider.StaticIP
	// SearchDomains are DNS search domains.
	SearchDomains []string
}

// Windows holds the settings of a Windows guest: the sysprep answer file
// (Unattend.xml), cloudbase-init's configuration, and the vSphere sysprep
// customization.
type Windows struct {
	// AdminPassword is the built-in Administrator's password. Unattend.xml
	// carries it in the obfuscated form Windows defines (PlainText=false),
	// which is not encryption: treat rendered answer files as secret.
	AdminPassword guest.Secret
	// AutoLogonCount is how many times Windows logs on automatically as
	// Administrator (the reference asks for 1). Zero disables it; it needs
	// AdminPassword.
	AutoLogonCount int
	// FirstLogonCommands are command lines run at the first logon, in order
	// (FirstLogonCommands in Unattend.xml, Run Once in a vSphere spec):
	// for example the agent install command.
	FirstLogonCommands []string
	// TimeZone is a Windows time zone ID ("UTC", "W. Europe Standard
	// Time") for Unattend.xml.
	TimeZone string
	// TimeZoneIndex is the Microsoft time zone index for a vSphere sysprep
	// spec; zero means 85 (GMT Standard Time).
	TimeZoneIndex int
	// RegisteredOwner and RegisteredOrganization are the Windows
	// registration names; empty means "Administrator" and "Managed".
	RegisteredOwner        string
	RegisteredOrganization string
	// Workgroup is joined by a vSphere sysprep spec; empty means
	// "WORKGROUP".
	Workgroup string
	// Cloudbase configures cloudbase-init.
	Cloudbase Cloudbase
}

// Options tune rendering. A nil *Options means the defaults.
type Options struct {
	// Rand supplies password salts; nil means crypto/rand. Tests pass a
	// deterministic reader to get stable output.
	Rand io.Reader
	// Rounds is the SHA-512 crypt rounds count (1,000 to 999,999,999);
	// zero means the default, 5,000.
	Rounds int
	// Compress renders VMware guestinfo values as "gzip+base64" instead of
	// "base64".
	Compress bool
	// Logger receives debug records (sizes and names, never secrets);
	// nil discards them.
	Logger *slog.Logger
}

func (o *Options) logger() *slog.Logger {
	if o == nil || o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

var (
	linuxNameRE   = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	packageRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_:~=-]{0,255}$`)
	ownerRE       = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$`)
	cryptHashRE   = regexp.MustCompile(`^\$(1|5|6|y|2a|2b|2y|gy|7)\$[./0-9A-Za-z$=,]+$`)
	timezoneRE    = regexp.MustCompile(`^[A-Za-z0-9_+/-]{1,64}$`)
	winTimezoneRE = regexp.MustCompile(`^[A-Za-z0-9 ().+,-]{1,64}$`)
	ifnameRE      = regexp.MustCompile(`^[A-Za-z0-9_.*-]{1,15}$`)
	// shellRE is an absolute path of the characters user names and
	// Debian's /etc/shells use; useradd refuses ':' and line breaks.
	shellRE      = regexp.MustCompile(`^(/[A-Za-z0-9._+-]+)+$`)
	instanceIDRE = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)
	workgroupRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,15}$`)
)

// windowsNameProblem checks a Windows local user or group name.
func windowsNameProblem(name string, max int) string {
	switch {
	case name == "":
		return "is empty"
	case len([]rune(name)) > max:
		return "is too long"
	case strings.ContainsAny(name, `"/\[]:;|=,+*?<>@`):
		return `contains one of "/\[]:;|=,+*?<>@`
	case strings.Trim(name, ". ") == "":
		return "is only dots and spaces"
	case strings.HasSuffix(name, "."):
		return "ends with a dot"
	}
	if why := textProblem(name, false); why != "" {
		return why
	}
	return ""
}

// Validate reports an InvalidArgument error listing every problem with s:
// a missing or malformed instance ID, an invalid host name (RFC 1123; 15
// characters at most on Windows), invalid or duplicate user names, a user
// with both Password and PasswordHash, a password or hash where the format
// cannot hash it (Windows), text that is not valid UTF-8 or holds control
// characters, relative file paths, malformed MAC addresses, static addresses
// whose gateway is outside their prefix, and settings of the other OS
// family.
func (s Settings) Validate() error {
	p := &problems{op: "template.Settings.Validate"}
	s.validate(p)
	return p.err()
}

func (s Settings) family() guest.OSFamily {
	if s.Family == guest.FamilyUnknown {
		return guest.Linux
	}
	return s.Family
}

// FQDN returns Hostname.Domain, or Hostname when there is no domain.
func (s Settings) FQDN() string {
	if s.Domain == "" {
		return s.Hostname
	}
	return s.Hostname + "." + s.Domain
}

func (s Settings) validate(p *problems) {
	fam := s.family()
	if fam != guest.Linux && fam != guest.Windows {
		p.addf("family %s is neither linux nor windows", quoteName(string(s.Family)))
		return
	}
	windows := fam == guest.Windows

	switch {
	case s.InstanceID == "":
		p.addf("instance ID is empty")
	case !instanceIDRE.MatchString(s.InstanceID):
		p.addf("instance ID %s must be 1 to 255 printable ASCII characters without spaces", quoteName(s.InstanceID))
	}
	if windows {
		if why := computerNameProblem(s.Hostname); why != "" {
			p.addf("hostname %s %s", quoteName(s.Hostname), why)
		}
	} else if why := singleLabelProblem(s.Hostname); why != "" {
		p.addf("hostname %s %s", quoteName(s.Hostname), why)
	}
	if s.Domain != "" {
		if why := hostnameProblem(s.Domain); why != "" {
			p.addf("domain %s %s", quoteName(s.Domain), why)
		} else if len(s.FQDN()) > 253 {
			p.addf("FQDN is longer than 253 characters")
		}
	}
	if s.Timezone != "" {
		if windows {
			p.addf("timezone is for Linux guests; set Windows.TimeZone")
		} else if !timezoneRE.MatchString(s.Timezone) || strings.Contains(s.Timezone, "..") {
			p.addf("timezone %s is not an IANA time zone name", quoteName(s.Timezone))
		}
	}

	seen := map[string]int{}
	for i, u := range s.Users {
		s.validateUser(p, i, u, windows)
		key := u.Name
		if windows {
			key = strings.ToLower(key)
		}
		if j, dup := seen[key]; dup && u.Name != "" {
			p.addf("users[%d] %s duplicates users[%d]", i, quoteName(u.Name), j)
		} else {
			seen[key] = i
		}
	}

	if windows {
		if s.SSHPasswordAuth {
			p.addf("SSHPasswordAuth is for Linux guests")
		}
		if s.AllowRootLogin {
			p.addf("AllowRootLogin is for Linux guests")
		}
		if len(s.Packages) > 0 {
			p.addf("packages are not supported by cloudbase-init")
		}
	}
	for i, pkg := range s.Packages {
		if !packageRE.MatchString(pkg) {
			p.addf("packages[%d] %s is not a package name", i, quoteName(pkg))
		}
	}

	paths := map[string]int{}
	for i, f := range s.Files {
		validateFile(p, i, f, windows)
		key := f.Path
		if windows {
			key = strings.ToLower(key)
		}
		if j, dup := paths[key]; dup && f.Path != "" {
			p.addf("files[%d] writes the same path as files[%d]", i, j)
		} else {
			paths[key] = i
		}
	}

	for i, c := range s.RunCmd {
		switch {
		case strings.TrimSpace(c) == "":
			p.addf("runcmd[%d] is empty", i)
		case len(c) > 64<<10:
			p.addf("runcmd[%d] is longer than 64 KiB", i)
		default:
			p.checkText("runcmd["+strconv.Itoa(i)+"]", c, true)
		}
	}

	validateNICs(p, s.NICs, windows)

	switch {
	case windows && s.Windows != nil:
		s.Windows.validate(p)
	case !windows && s.Windows != nil:
		p.addf("windows settings given for a linux guest")
	}
}

func (s Settings) validateUser(p *problems, i int, u User, windows bool) {
	field := "users[" + strconv.Itoa(i) + "]"
	if windows {
		if why := windowsNameProblem(u.Name, 20); why != "" {
			p.addf("%s name %s %s", field, quoteName(u.Name), why)
		}
		if !u.Password.IsZero() || u.PasswordHash != "" {
			p.addf("%s has a password: cloudbase-init takes passwords only in clear text; set Windows.AdminPassword (Unattend.xml) or use SSH keys", field)
		}
		if u.Sudo {
			p.addf("%s: sudo is for Linux guests", field)
		}
		if u.Shell != "" {
			p.addf("%s: shell is for Linux guests", field)
		}
	} else {
		switch {
		case !linuxNameRE.MatchString(u.Name):
			p.addf("%s name %s is not a POSIX user name ([a-z_][a-z0-9_-]*, 32 characters at most)", field, quoteName(u.Name))
		case u.Name == "default":
			p.addf("%s name \"default\" is cloud-init's name for the distribution's default user (debian, ubuntu, ...); name the account", field)
		}
		if !u.Password.IsZero() {
			if u.PasswordHash != "" {
				p.addf("%s has both Password and PasswordHash", field)
			}
			if why := textProblem(u.Password.Reveal(), false); why != "" {
				p.addf("%s password %s", field, why)
			}
		}
		if u.PasswordHash != "" && !cryptHashRE.MatchString(u.PasswordHash) {
			p.addf("%s password hash is not a crypt(3) hash", field)
		}
		if u.Shell != "" && (!shellRE.MatchString(u.Shell) || path.Clean(u.Shell) != u.Shell) {
			p.addf("%s shell %s is not a clean absolute path of letters, digits and ._+-", field, quoteName(u.Shell))
		}
	}
	for j, k := range u.SSHAuthorizedKeys {
		kf := field + " key[" + strconv.Itoa(j) + "]"
		switch {
		case len(strings.Fields(k)) < 2:
			p.addf("%s is not an authorized_keys line", kf)
		case len(k) > 16<<10:
			p.addf("%s is longer than 16 KiB", kf)
		default:
			p.checkText(kf, k, false)
		}
	}
	for j, g := range u.Groups {
		if windows {
			if why := windowsNameProblem(g, 256); why != "" {
				p.addf("%s group[%d] %s %s", field, j, quoteName(g), why)
			}
		} else if !linuxNameRE.MatchString(g) {
			p.addf("%s group[%d] %s is not a POSIX group name", field, j, quoteName(g))
		}
	}
}

func validateFile(p *problems, i int, f File, windows bool) {
	field := "files[" + strconv.Itoa(i) + "]"
	if windows {
		if !isWindowsAbsPath(f.Path) {
			p.addf("%s path %s is not an absolute Windows path", field, quoteName(f.Path))
		}
		if f.Permissions != 0 || f.Owner != "" {
			p.addf("%s: permissions and owner are for Linux guests", field)
		}
	} else {
		if !strings.HasPrefix(f.Path, "/") || path.Clean(f.Path) != f.Path || f.Path == "/" || textProblem(f.Path, false) != "" {
			p.addf("%s path %s is not a clean absolute path", field, quoteName(f.Path))
		}
		if f.Permissions&^fs.ModePerm != 0 {
			p.addf("%s permissions %v have bits other than rwx", field, f.Permissions)
		}
		if f.Owner != "" && !ownerRE.MatchString(f.Owner) {
			p.addf("%s owner %s is not user or user:group", field, quoteName(f.Owner))
		}
	}
	if len(f.Content) > 16<<20 {
		p.addf("%s content is larger than 16 MiB", field)
	}
}

// isWindowsAbsPath accepts "C:\dir\file" style paths without characters
// Windows forbids in names.
func isWindowsAbsPath(s string) bool {
	if len(s) < 4 || !(s[0] >= 'A' && s[0] <= 'Z' || s[0] >= 'a' && s[0] <= 'z') || s[1] != ':' || s[2] != '\\' {
		return false
	}
	rest := s[3:]
	if strings.ContainsAny(rest, `<>:"/|?*`) || strings.Contains(rest, `\\`) || strings.HasSuffix(rest, `\`) {
		return false
	}
	for _, part := range strings.Split(rest, `\`) {
		if part == "." || part == ".." {
			return false
		}
	}
	return textProblem(s, false) == ""
}

func validateNICs(p *problems, nics []NIC, windows bool) {
	macs := map[string]int{}
	names := map[string]int{}
	for i, n := range nics {
		field := "nics[" + strconv.Itoa(i) + "]"
		if n.MAC == "" && n.Name == "" {
			p.addf("%s needs a MAC address or an interface name", field)
		}
		if windows && n.MAC == "" {
			p.addf("%s needs a MAC address (cloudbase-init matches interfaces by MAC)", field)
		}
		if n.MAC != "" {
			hw, err := net.ParseMAC(n.MAC)
			if err != nil || len(hw) != 6 {
				p.addf("%s MAC %s is not a 48-bit MAC address", field, quoteName(n.MAC))
			} else if j, dup := macs[hw.String()]; dup {
				p.addf("%s MAC duplicates nics[%d]", field, j)
			} else {
				macs[hw.String()] = i
			}
		}
		if n.Name != "" {
			switch {
			case !ifnameRE.MatchString(n.Name):
				p.addf("%s name %s is not an interface name", field, quoteName(n.Name))
			case n.MAC != "" && strings.Contains(n.Name, "*"):
				p.addf("%s name %s: a glob cannot be set as a name", field, quoteName(n.Name))
			}
			if j, dup := names[n.Name]; dup {
				p.addf("%s name duplicates nics[%d]", field, j)
			} else {
				names[n.Name] = i
			}
		}
		if st := n.Static; st != nil {
			validateStatic(p, field, st)
		}
		for j, d := range n.SearchDomains {
			if why := hostnameProblem(d); why != "" {
				p.addf("%s search domain[%d] %s %s", field, j, quoteName(d), why)
			}
		}
	}
}

func validateStatic(p *problems, field string, st *provider.StaticIP) {
	a := st.Address
	switch {
	case !a.IsValid():
		p.addf("%s static address is not set", field)
		return
	case a.Addr().Zone() != "":
		p.addf("%s static address has a zone", field)
		return
	case a.Addr().IsUnspecified() || a.Addr().IsMulticast() || a.Addr().IsLoopback():
		p.addf("%s static address %s is not a unicast host address", field, a)
		return
	case a.Addr().Is4In6():
		p.addf("%s static address %s is an IPv4-mapped IPv6 address", field, a)
		return
	}
	if st.Gateway.IsValid() {
		g := st.Gateway
		switch {
		case g.Is4() != a.Addr().Is4() || g.Is4In6():
			p.addf("%s gateway %s is not of the address's family", field, g)
		case g == a.Addr():
			p.addf("%s gateway is the address itself", field)
		case !a.Masked().Contains(g):
			p.addf("%s gateway %s is outside %s", field, g, a.Masked())
		}
	}
	for j, d := range st.DNS {
		if !d.IsValid() || d.IsUnspecified() || d.Zone() != "" {
			p.addf("%s DNS[%d] is not a valid address", field, j)
		}
	}
}

func (w *Windows) validate(p *problems) {
	if !w.AdminPassword.IsZero() {
		pw := w.AdminPassword.Reveal()
		if why := textProblem(pw, false); why != "" {
			p.addf("windows admin password %s", why)
		} else if len([]rune(pw)) > 127 {
			p.addf("windows admin password is longer than 127 characters")
		}
	}
	switch {
	case w.AutoLogonCount < 0 || w.AutoLogonCount > 999:
		p.addf("windows auto logon count %d is outside 0..999", w.AutoLogonCount)
	case w.AutoLogonCount > 0 && w.AdminPassword.IsZero():
		p.addf("windows auto logon needs AdminPassword")
	}
	if len(w.FirstLogonCommands) > 500 {
		p.addf("windows has more than 500 first logon commands")
	}
	for i, c := range w.FirstLogonCommands {
		field := "windows first logon command[" + strconv.Itoa(i) + "]"
		switch {
		case strings.TrimSpace(c) == "":
			p.addf("%s is empty", field)
		case len([]rune(c)) > 1024:
			p.addf("%s is longer than 1024 characters", field)
		default:
			p.checkText(field, c, false)
		}
	}
	if w.TimeZone != "" && !winTimezoneRE.MatchString(w.TimeZone) {
		p.addf("windows time zone %s is not a Windows time zone ID", quoteName(w.TimeZone))
	}
	if w.TimeZoneIndex < 0 || w.TimeZoneIndex > 0x7fffffff {
		p.addf("windows time zone index %d is negative", w.TimeZoneIndex)
	}
	for _, f := range []struct{ name, v string }{
		{"registered owner", w.RegisteredOwner},
		{"registered organization", w.RegisteredOrganization},
	} {
		if len([]rune(f.v)) > 256 {
			p.addf("windows %s is longer than 256 characters", f.name)
		} else {
			p.checkText("windows "+f.name, f.v, false)
		}
	}
	if w.Workgroup != "" && !workgroupRE.MatchString(w.Workgroup) {
		p.addf("windows workgroup %s is not a NetBIOS name", quoteName(w.Workgroup))
	}
	w.Cloudbase.validate(p)
}

// macString returns the canonical form of a MAC address.
func macString(s string) string {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return s
	}
	return hw.String()
}

// addrStrings formats addresses.
func addrStrings(as []netip.Addr) []string {
	if len(as) == 0 {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
