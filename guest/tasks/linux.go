package tasks

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	xssh "golang.org/x/crypto/ssh"
)

var (
	// POSIX portable user and group names (useradd's default rule, plus a
	// trailing $ for Samba machine accounts).
	nameRe    = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}\$?$`)
	pkgRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+._:@-]{0,127}$`)
	svcRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$`)
	dropInRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	hostRe    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	invalidOp = "tasks"
)

func invalid(format string, args ...any) error {
	return errs.Errorf(errs.InvalidArgument, invalidOp, format, args...)
}

func checkName(what, s string) error {
	if !nameRe.MatchString(s) {
		return invalid("%s is not a valid POSIX name (a-z, 0-9, _ and -, at most 32 bytes)", what)
	}
	return nil
}

func checkPath(what, p string) error {
	switch {
	case len(p) > MaxPath:
		return invalid("%s is longer than %d bytes", what, MaxPath)
	case !utf8.ValidString(p):
		return invalid("%s is not valid UTF-8", what)
	case !strings.HasPrefix(p, "/"):
		return invalid("%s must be an absolute path", what)
	case strings.ContainsAny(p, "\x00\n"):
		return invalid("%s contains a NUL byte or a line break", what)
	case strings.HasSuffix(p, "/"):
		return invalid("%s names a directory", what)
	}
	return nil
}

func linuxOnly(name string, f guest.OSFamily) error {
	if f != guest.Linux {
		return errs.Errorf(errs.Unimplemented, invalidOp, "%s is a Linux task; the guest is %s", name, f)
	}
	return nil
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// User ensures a local Linux user exists with the given shell and
// (supplementary) groups, and optionally a locked password. Groups are
// added, never removed. Its reverse is UserAbsent.
type User struct {
	Name string
	// Shell is the login shell (default: useradd's).
	Shell string
	// Groups are supplementary groups that must exist already.
	Groups []string
	// Home is the home directory (default: useradd's).
	Home string
	// System creates a system account (useradd -r).
	System bool
	// LockPassword locks the password (key-only logins).
	LockPassword bool
	// RemoveHome makes the reverse task remove the home directory too.
	RemoveHome bool
}

// Describe describes the task.
func (u User) Describe() string { return "user " + show(u.Name) }

// Reverse removes the user.
func (u User) Reverse() Task { return UserAbsent{User: u.Name, RemoveHome: u.RemoveHome} }

const userBody = `if ! id -u "$name" >/dev/null 2>&1; then
  set -- -m
  [ -n "$shell" ] && set -- "$@" -s "$shell"
  [ -n "$groups" ] && set -- "$@" -G "$groups"
  [ -n "$home" ] && set -- "$@" -d "$home"
  [ "$system" = 1 ] && set -- "$@" -r
  change useradd "$@" "$name" >&2 || fail "useradd failed"
  if [ "$MVM_CHECK" = 1 ]; then finish; fi
else
  cur=$(getent passwd "$name" | cut -d: -f7)
  if [ -n "$shell" ] && [ "$cur" != "$shell" ]; then change usermod -s "$shell" "$name" >&2 || fail "usermod -s failed"; fi
  have=" $(id -nG "$name") "
  missing=""
  oldifs=$IFS; IFS=,
  for g in $groups; do
    case "$have" in *" $g "*) ;; *) missing="$missing,$g" ;; esac
  done
  IFS=$oldifs
  if [ -n "$missing" ]; then change usermod -a -G "${missing#,}" "$name" >&2 || fail "usermod -G failed"; fi
fi
if [ "$lock" = 1 ]; then
  st=$(passwd -S "$name" 2>/dev/null | awk '{print $2}')
  case "$st" in L|LK) ;; *) change usermod -L "$name" >&2 || fail "usermod -L failed" ;; esac
fi`

// Command builds the task's script.
func (u User) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := linuxOnly(u.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if err := checkName("user", u.Name); err != nil {
		return guest.Command{}, err
	}
	for _, g := range u.Groups {
		if err := checkName("group", g); err != nil {
			return guest.Command{}, err
		}
	}
	if u.Shell != "" {
		if err := checkPath("shell", u.Shell); err != nil {
			return guest.Command{}, err
		}
		if strings.Contains(u.Shell, ":") {
			return guest.Command{}, invalid("shell contains a colon")
		}
	}
	if u.Home != "" {
		if err := checkPath("home", u.Home); err != nil {
			return guest.Command{}, err
		}
		if strings.Contains(u.Home, ":") {
			return guest.Command{}, invalid("home contains a colon")
		}
	}
	return guest.Command{Script: shScript(check, userBody,
		kv{"name", u.Name}, kv{"shell", u.Shell}, kv{"groups", strings.Join(u.Groups, ",")},
		kv{"home", u.Home}, kv{"system", b01(u.System)}, kv{"lock", b01(u.LockPassword)})}, nil
}

// UserAbsent ensures a local Linux user does not exist (userdel, with -r
// when RemoveHome is set).
type UserAbsent struct {
	User       string
	RemoveHome bool
}

// Describe describes the task.
func (u UserAbsent) Describe() string { return "user " + show(u.User) + " absent" }

const userAbsentBody = `if id -u "$name" >/dev/null 2>&1; then
  if [ "$rmhome" = 1 ]; then change userdel -r "$name" >&2 2>/dev/null || change userdel -f -r "$name" >&2 || fail "userdel failed"
  else change userdel "$name" >&2 || fail "userdel failed"; fi
fi`

// Command builds the task's script.
func (u UserAbsent) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := linuxOnly(u.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if err := checkName("user", u.User); err != nil {
		return guest.Command{}, err
	}
	if u.User == "root" {
		return guest.Command{}, invalid("refusing to remove root")
	}
	return guest.Command{Script: shScript(check, userAbsentBody, kv{"name", u.User}, kv{"rmhome", b01(u.RemoveHome)})}, nil
}

// AuthorizedKey ensures a public key is in a user's
// ~/.ssh/authorized_keys (creating ~/.ssh with mode 700 and the file with
// mode 600, owned by the user). Its reverse removes the key.
type AuthorizedKey struct {
	User string
	// Key is one authorized_keys line ("ssh-ed25519 AAAA... comment",
	// options allowed).
	Key string
}

// Describe describes the task (the key's fingerprint, not the key).
func (a AuthorizedKey) Describe() string {
	return "authorized key " + keyFingerprint(a.Key) + " for " + show(a.User)
}

func keyFingerprint(line string) string {
	if len(line) > MaxAuthorizedKey {
		return "(malformed)"
	}
	pk, _, _, _, err := xssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "(malformed)"
	}
	return xssh.FingerprintSHA256(pk)
}

// Reverse removes the key.
func (a AuthorizedKey) Reverse() Task { return AuthorizedKeyAbsent(a) }

const keyPrelude = `ent=$(getent passwd "$user") || needs "no such user"
home=$(printf '%s' "$ent" | cut -d: -f6)
grp=$(id -gn "$user") || fail "no group for the user"
[ -n "$home" ] || fail "the user has no home directory"
f="$home/.ssh/authorized_keys"
if [ -L "$home/.ssh" ] || [ -L "$f" ]; then fail "refusing to follow a symbolic link in ~/.ssh"; fi
`

const keyBody = keyPrelude + `if [ ! -d "$home/.ssh" ]; then change install -d -m 700 -o "$user" -g "$grp" "$home/.ssh" || fail "cannot create ~/.ssh"; fi
if ! { [ -f "$f" ] && grep -qxF -- "$key" "$f"; }; then
  change sh -c 'if [ -s "$2" ] && [ -n "$(tail -c 1 "$2")" ]; then printf "\n" >> "$2"; fi; printf "%s\n" "$1" >> "$2" && chown "$3" "$2" && chmod 600 "$2"' sh "$key" "$f" "$user:$grp" || fail "cannot write authorized_keys"
fi`

// Command builds the task's script.
func (a AuthorizedKey) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	key, err := a.validate(f)
	if err != nil {
		return guest.Command{}, err
	}
	return guest.Command{Script: shScript(check, keyBody, kv{"user", a.User}, kv{"key", key})}, nil
}

func (a AuthorizedKey) validate(f guest.OSFamily) (string, error) {
	if err := linuxOnly("authorized key", f); err != nil {
		return "", err
	}
	if err := checkName("user", a.User); err != nil {
		return "", err
	}
	if len(a.Key) > MaxAuthorizedKey {
		return "", invalid("the authorized key is longer than %d bytes", MaxAuthorizedKey)
	}
	key := strings.TrimSpace(a.Key)
	if strings.ContainsAny(key, "\r\n\x00") {
		return "", invalid("the authorized key must be one line")
	}
	if _, _, _, _, err := xssh.ParseAuthorizedKey([]byte(key)); err != nil {
		return "", invalid("the authorized key is not an authorized_keys line")
	}
	return key, nil
}

// AuthorizedKeyAbsent ensures a key is not in a user's authorized_keys.
// A missing user or file counts as done.
type AuthorizedKeyAbsent AuthorizedKey

// Describe describes the task.
func (a AuthorizedKeyAbsent) Describe() string {
	return "authorized key " + keyFingerprint(a.Key) + " for " + show(a.User) + " absent"
}

const keyAbsentBody = `getent passwd "$user" >/dev/null || finish
` + keyPrelude + `if [ -f "$f" ] && grep -qxF -- "$key" "$f"; then
  change sh -c 't=$(mktemp) && { grep -vxF -- "$1" "$2" > "$t" || true; } && cat "$t" > "$2"; r=$?; rm -f "$t"; exit $r' sh "$key" "$f" || fail "cannot rewrite authorized_keys"
fi`

// Command builds the task's script.
func (a AuthorizedKeyAbsent) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	key, err := AuthorizedKey(a).validate(f)
	if err != nil {
		return guest.Command{}, err
	}
	return guest.Command{Script: shScript(check, keyAbsentBody, kv{"user", a.User}, kv{"key", key})}, nil
}

// SudoersDropIn ensures /etc/sudoers.d/<Name> holds Content (mode 0440,
// root:root). The content is checked with visudo -c before it is
// installed: a rule that does not parse is never installed. Its reverse
// removes the file.
type SudoersDropIn struct {
	// Name is the file name: letters, digits, _ and - (sudo ignores names
	// with a dot).
	Name    string
	Content string
}

// Describe describes the task.
func (s SudoersDropIn) Describe() string { return "sudoers drop-in " + show(s.Name) }

// Reverse removes the drop-in.
func (s SudoersDropIn) Reverse() Task {
	return FileAbsent{Path: "/etc/sudoers.d/" + s.Name}
}

const sudoersBody = `command -v visudo >/dev/null 2>&1 || fail "visudo not found (is sudo installed?)"
d=$(mktemp -d) || fail "mktemp failed"
trap 'rm -rf "$d"' EXIT
printf '%s' "$content" > "$d/rule"
visudo -cqf "$d/rule" >/dev/null 2>&1 || fail "the sudoers rule does not pass visudo -c"
f="/etc/sudoers.d/$name"
if [ -f "$f" ] && [ ! -L "$f" ] && cmp -s "$d/rule" "$f"; then
  [ "$(stat -c %a:%u:%g "$f")" = "440:0:0" ] || { change chown 0:0 "$f" && change chmod 440 "$f"; } || fail "cannot fix the drop-in's mode"
else
  [ -d /etc/sudoers.d ] || change install -d -m 750 /etc/sudoers.d || fail "cannot create /etc/sudoers.d"
  change sh -c 't=$(mktemp /etc/sudoers.d/.mvm.XXXXXX) && cat "$1" > "$t" && chown 0:0 "$t" && chmod 440 "$t" && mv -f "$t" "$2"' sh "$d/rule" "$f" || fail "cannot install the drop-in"
fi`

// Command builds the task's script.
func (s SudoersDropIn) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := linuxOnly(s.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if !dropInRe.MatchString(s.Name) {
		return guest.Command{}, invalid("sudoers drop-in name: use letters, digits, _ and - only, at most 64 bytes")
	}
	content := s.Content
	if strings.IndexByte(content, 0) >= 0 {
		return guest.Command{}, invalid("sudoers content contains a NUL byte")
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return guest.Command{Script: shScript(check, sudoersBody, kv{"name", s.Name}, kv{"content", content})}, nil
}

// Package ensures a package is installed with the guest's package manager
// (apt, dnf, yum or zypper).
type Package struct {
	Package string
}

const packageBody = `if command -v apt-get >/dev/null 2>&1; then
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    change env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >&2 ||
      { change apt-get update -q >&2 && change env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >&2; } ||
      fail "apt-get install failed"
  fi
elif command -v dnf >/dev/null 2>&1; then
  rpm -q "$pkg" >/dev/null 2>&1 || rpm -q --whatprovides "$pkg" >/dev/null 2>&1 || change dnf install -y -q "$pkg" >&2 || fail "dnf install failed"
elif command -v yum >/dev/null 2>&1; then
  rpm -q "$pkg" >/dev/null 2>&1 || rpm -q --whatprovides "$pkg" >/dev/null 2>&1 || change yum install -y -q "$pkg" >&2 || fail "yum install failed"
elif command -v zypper >/dev/null 2>&1; then
  rpm -q "$pkg" >/dev/null 2>&1 || rpm -q --whatprovides "$pkg" >/dev/null 2>&1 || change zypper --non-interactive install "$pkg" >&2 || fail "zypper install failed"
else
  fail "no supported package manager (apt, dnf, yum, zypper)"
fi`

// Describe describes the task.
func (p Package) Describe() string { return "package " + show(p.Package) }

// Command builds the task's script.
func (p Package) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := linuxOnly("package", f); err != nil {
		return guest.Command{}, err
	}
	if !pkgRe.MatchString(p.Package) {
		return guest.Command{}, invalid("package name is not valid (letters, digits and +._:@-, at most 128 bytes)")
	}
	return guest.Command{Script: shScript(check, packageBody, kv{"pkg", p.Package})}, nil
}

// Service ensures a service is enabled at boot and running: with systemd
// when it is PID 1, otherwise through service(8) and update-rc.d,
// chkconfig or rc-update.
type Service struct {
	Service string
	// Enabled and Running say what to ensure; both false means both true.
	Enabled, Running bool
}

const serviceBody = `if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if [ "$enable" = 1 ] && ! systemctl is-enabled --quiet "$svc" 2>/dev/null; then change systemctl enable "$svc" >&2 || fail "systemctl enable failed"; fi
  if [ "$run" = 1 ] && ! systemctl is-active --quiet "$svc" 2>/dev/null; then change systemctl start "$svc" >&2 || fail "systemctl start failed"; fi
else
  [ -x "/etc/init.d/$svc" ] || command -v rc-service >/dev/null 2>&1 || fail "no such service (and no systemd)"
  if [ "$enable" = 1 ]; then
    if command -v update-rc.d >/dev/null 2>&1; then
      ls /etc/rc[2345].d/S[0-9][0-9]"$svc" >/dev/null 2>&1 || change update-rc.d "$svc" enable >&2 || change update-rc.d "$svc" defaults >&2 || fail "update-rc.d failed"
    elif command -v chkconfig >/dev/null 2>&1; then
      chkconfig "$svc" >/dev/null 2>&1 || change chkconfig "$svc" on >&2 || fail "chkconfig failed"
    elif command -v rc-update >/dev/null 2>&1; then
      rc-update show default 2>/dev/null | grep -qw "$svc" || change rc-update add "$svc" default >&2 || fail "rc-update failed"
    else
      fail "cannot enable services on this init system"
    fi
  fi
  if [ "$run" = 1 ]; then
    if command -v service >/dev/null 2>&1; then
      service "$svc" status >/dev/null 2>&1 || change service "$svc" start >&2 || fail "service start failed"
    else
      "/etc/init.d/$svc" status >/dev/null 2>&1 || change "/etc/init.d/$svc" start >&2 || fail "service start failed"
    fi
  fi
fi`

// Describe describes the task.
func (s Service) Describe() string { return "service " + show(s.Service) }

// Command builds the task's script.
func (s Service) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := linuxOnly("service", f); err != nil {
		return guest.Command{}, err
	}
	if !svcRe.MatchString(s.Service) {
		return guest.Command{}, invalid("service name is not valid (letters, digits and _.@:-, at most 128 bytes)")
	}
	en, run := s.Enabled, s.Running
	if !en && !run {
		en, run = true, true
	}
	return guest.Command{Script: shScript(check, serviceBody, kv{"svc", s.Service}, kv{"enable", b01(en)}, kv{"run", b01(run)})}, nil
}

// File ensures a file has the given content, mode and owner. The content
// is replaced atomically (temporary file and rename). Its reverse is
// FileAbsent when RemoveOnReverse is set.
type File struct {
	Path    string
	Content []byte
	// Mode defaults to 0644.
	Mode fs.FileMode
	// Owner and Group, if set, are user and group names.
	Owner, Group string
	// RemoveOnReverse makes Reverse remove the file (otherwise the file
	// has no reverse).
	RemoveOnReverse bool
}

// Reverse removes the file when RemoveOnReverse is set; nil otherwise.
func (f File) Reverse() Task {
	if !f.RemoveOnReverse {
		return nil
	}
	return FileAbsent{Path: f.Path}
}

const fileBody = `d=$(mktemp -d) || fail "mktemp failed"
trap 'rm -rf "$d"' EXIT
printf '%s' "$content" | base64 -d > "$d/c" || fail "base64 -d failed"
if [ -L "$path" ]; then fail "refusing to replace a symbolic link"; fi
if [ ! -f "$path" ] || ! cmp -s "$d/c" "$path"; then
  change sh -c 't=$(mktemp "$(dirname "$2")/.mvm.XXXXXX") && cat "$1" > "$t" && chmod "$3" "$t" && mv -f "$t" "$2"' sh "$d/c" "$path" "$mode" || fail "cannot write the file"
fi
cur=$(stat -c %a "$path" 2>/dev/null || true)
[ "$cur" = "$mode" ] || change chmod "$mode" "$path" || fail "chmod failed"
if [ -n "$owner" ]; then
  want=$owner; fmt=%U
  if [ -n "$group" ]; then want="$owner:$group"; fmt=%U:%G; fi
  cur=$(stat -c "$fmt" "$path" 2>/dev/null || true)
  [ "$cur" = "$want" ] || change chown "$want" "$path" || fail "chown failed"
elif [ -n "$group" ]; then
  cur=$(stat -c %G "$path" 2>/dev/null || true)
  [ "$cur" = "$group" ] || change chgrp "$group" "$path" || fail "chgrp failed"
fi`

// Describe describes the task.
func (f File) Describe() string { return "file " + show(f.Path) }

// Command builds the task's script.
func (f File) Command(fam guest.OSFamily, check bool) (guest.Command, error) {
	if err := linuxOnly(f.Describe(), fam); err != nil {
		return guest.Command{}, err
	}
	if err := checkPath("path", f.Path); err != nil {
		return guest.Command{}, err
	}
	for _, n := range []string{f.Owner, f.Group} {
		if n != "" {
			if err := checkName("owner/group", n); err != nil {
				return guest.Command{}, err
			}
		}
	}
	mode := f.Mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if mode == 0 {
		mode = 0o644
	}
	return guest.Command{Script: shScript(check, fileBody, kv{"path", f.Path},
		kv{"content", base64.StdEncoding.EncodeToString(f.Content)}, kv{"mode", octal(mode)},
		kv{"owner", f.Owner}, kv{"group", f.Group})}, nil
}

// octal formats a mode the way stat -c %a prints it.
func octal(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%o", n)
}

// FileAbsent ensures a file does not exist.
type FileAbsent struct {
	Path string
}

// Describe describes the task.
func (f FileAbsent) Describe() string { return "file " + show(f.Path) + " absent" }

const fileAbsentBody = `if [ -e "$path" ] || [ -L "$path" ]; then
  [ -d "$path" ] && [ ! -L "$path" ] && fail "refusing to remove a directory"
  change rm -f "$path" || fail "rm failed"
fi`

// Command builds the task's script.
func (f FileAbsent) Command(fam guest.OSFamily, check bool) (guest.Command, error) {
	if err := linuxOnly(f.Describe(), fam); err != nil {
		return guest.Command{}, err
	}
	if err := checkPath("path", f.Path); err != nil {
		return guest.Command{}, err
	}
	return guest.Command{Script: shScript(check, fileAbsentBody, kv{"path", f.Path})}, nil
}

// Hostname ensures the guest's host name (hostnamectl under systemd,
// /etc/hostname and hostname(1) otherwise).
type Hostname struct {
	Hostname string
}

const hostnameBody = `cur=$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null || true)
file=$(cat /etc/hostname 2>/dev/null || true)
if [ "$cur" != "$name" ] || { [ -f /etc/hostname ] && [ "$file" != "$name" ]; }; then
  if [ -d /run/systemd/system ] && command -v hostnamectl >/dev/null 2>&1; then
    change hostnamectl set-hostname "$name" >&2 || fail "hostnamectl failed"
  else
    change sh -c 'printf "%s\n" "$1" > /etc/hostname && hostname "$1"' sh "$name" || fail "cannot set the host name"
  fi
fi`

// Describe describes the task.
func (h Hostname) Describe() string { return "hostname " + show(h.Hostname) }

// Command builds the task's script.
func (h Hostname) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := linuxOnly("hostname", f); err != nil {
		return guest.Command{}, err
	}
	if len(h.Hostname) > 253 || !hostRe.MatchString(h.Hostname) {
		return guest.Command{}, invalid("host name is not a valid DNS name")
	}
	return guest.Command{Script: shScript(check, hostnameBody, kv{"name", h.Hostname})}, nil
}

// LineInFile ensures a line is in a file (appended if missing, the file
// created if needed). With Match (an extended regular expression, as awk
// reads it), every line that matches is replaced by Line. With Absent, the
// line (and the lines that match Match) are removed instead. The file is
// rewritten in place, keeping its owner and mode.
type LineInFile struct {
	Path, Line, Match string
	Absent            bool
}

const lineBody = `if [ ! -f "$path" ]; then
  [ "$absent" = 1 ] && finish
  change sh -c 'printf "%s\n" "$1" > "$2"' sh "$line" "$path" || fail "cannot create the file"
  finish
fi
export MVM_LINE="$line" MVM_RE="$match"
if [ "$absent" = 1 ]; then
  n=$(awk 'BEGIN { n = 0 } $0 == ENVIRON["MVM_LINE"] || (ENVIRON["MVM_RE"] != "" && $0 ~ ENVIRON["MVM_RE"]) { n++ } END { print n }' "$path") || fail "awk failed"
  [ "$n" = 0 ] || change sh -c 't=$(mktemp) && awk '"'"'!($0 == ENVIRON["MVM_LINE"] || (ENVIRON["MVM_RE"] != "" && $0 ~ ENVIRON["MVM_RE"]))'"'"' "$1" > "$t" && cat "$t" > "$1"; r=$?; rm -f "$t"; exit $r' sh "$path" || fail "cannot rewrite the file"
  finish
fi
if [ -n "$match" ]; then
  n=$(awk 'BEGIN { n = 0 } $0 ~ ENVIRON["MVM_RE"] && $0 != ENVIRON["MVM_LINE"] { n++ } END { print n }' "$path") || fail "awk failed"
  if [ "$n" != 0 ]; then
    change sh -c 't=$(mktemp) && awk '"'"'{ if ($0 ~ ENVIRON["MVM_RE"]) print ENVIRON["MVM_LINE"]; else print }'"'"' "$1" > "$t" && cat "$t" > "$1"; r=$?; rm -f "$t"; exit $r' sh "$path" || fail "cannot rewrite the file"
    finish
  fi
fi
if ! grep -qxF -- "$line" "$path"; then
  change sh -c 'if [ -s "$2" ] && [ -n "$(tail -c 1 "$2")" ]; then printf "\n" >> "$2"; fi; printf "%s\n" "$1" >> "$2"' sh "$line" "$path" || fail "cannot append the line"
fi`

// Describe describes the task.
func (l LineInFile) Describe() string {
	if l.Absent {
		return "line absent in " + show(l.Path)
	}
	return "line in " + show(l.Path)
}

// Command builds the task's script.
func (l LineInFile) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := linuxOnly(l.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if err := checkPath("path", l.Path); err != nil {
		return guest.Command{}, err
	}
	if len(l.Line) > MaxLine || len(l.Match) > MaxLine {
		return guest.Command{}, invalid("the line and the pattern must be at most %d bytes", MaxLine)
	}
	if strings.ContainsAny(l.Line, "\n\r\x00") || strings.ContainsAny(l.Match, "\n\r\x00") {
		return guest.Command{}, invalid("the line and the pattern must be single lines")
	}
	if l.Match != "" {
		if _, err := regexp.CompilePOSIX(l.Match); err != nil {
			return guest.Command{}, invalid("the pattern is not a valid extended regular expression")
		}
	}
	return guest.Command{Script: shScript(check, lineBody, kv{"path", l.Path}, kv{"line", l.Line}, kv{"match", l.Match}, kv{"absent", b01(l.Absent)})}, nil
}
