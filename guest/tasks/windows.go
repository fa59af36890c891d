package tasks

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
)

var (
	winNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$`)
	winSvcRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$`)
	regPathRe = regexp.MustCompile(`^(HKLM|HKCU|HKCR|HKU|HKCC):\\[^*?\[\]\x00\r\n]{1,1000}$`)
)

func windowsOnly(name string, f guest.OSFamily) error {
	if f != guest.Windows {
		return errs.Errorf(errs.Unimplemented, invalidOp, "%s is a Windows task; the guest is %s", name, f)
	}
	return nil
}

func checkWinName(what, s string) error {
	if !winNameRe.MatchString(s) || strings.HasSuffix(s, " ") || strings.HasSuffix(s, ".") {
		return invalid("%s is not a valid Windows name (letters, digits and ._ -, at most 64 bytes)", what)
	}
	return nil
}

// WinUser ensures a local Windows user exists (created without a password,
// so it cannot log on with one until an administrator sets it) and is a
// member of Groups. Its reverse is WinUserAbsent.
type WinUser struct {
	Name        string
	Description string
	Groups      []string
}

// Describe describes the task.
func (u WinUser) Describe() string { return "windows user " + show(u.Name) }

// Reverse removes the user.
func (u WinUser) Reverse() Task { return WinUserAbsent{User: u.Name} }

const winUserBody = `$u = Get-LocalUser -Name $name -ErrorAction SilentlyContinue
if (-not $u) { Invoke-MvmChange { $null = New-LocalUser -Name $name -NoPassword -Description $desc } }
foreach ($g in ($groups -split "` + "`" + `n" | Where-Object { $_ -ne '' })) {
  $m = @(Get-LocalGroupMember -Group $g -ErrorAction Stop | Where-Object { ($_.Name -split '\\')[-1] -eq $name })
  if ($m.Count -eq 0) { Invoke-MvmChange { Add-LocalGroupMember -Group $g -Member $name } }
}`

// Command builds the task's script.
func (u WinUser) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := windowsOnly(u.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if err := checkWinName("user", u.Name); err != nil {
		return guest.Command{}, err
	}
	for _, g := range u.Groups {
		if err := checkWinName("group", g); err != nil {
			return guest.Command{}, err
		}
	}
	if len(u.Description) > MaxLine {
		return guest.Command{}, invalid("the description is longer than %d bytes", MaxLine)
	}
	if strings.ContainsAny(u.Description, "\x00\r\n") {
		return guest.Command{}, invalid("the description must be one line")
	}
	return guest.Command{Script: psScript(check, winUserBody, kv{"name", u.Name}, kv{"desc", u.Description}, kv{"groups", strings.Join(u.Groups, "\n")})}, nil
}

// WinUserAbsent ensures a local Windows user does not exist.
type WinUserAbsent struct {
	User string
}

// Describe describes the task.
func (u WinUserAbsent) Describe() string { return "windows user " + show(u.User) + " absent" }

const winUserAbsentBody = `if (Get-LocalUser -Name $name -ErrorAction SilentlyContinue) { Invoke-MvmChange { Remove-LocalUser -Name $name } }`

// Command builds the task's script.
func (u WinUserAbsent) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := windowsOnly(u.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if err := checkWinName("user", u.User); err != nil {
		return guest.Command{}, err
	}
	return guest.Command{Script: psScript(check, winUserAbsentBody, kv{"name", u.User})}, nil
}

// WinGroupMember ensures Member is in the local group Group. Its reverse
// removes the membership.
type WinGroupMember struct {
	Group, Member string
	// Absent removes the membership instead.
	Absent bool
}

// Describe describes the task.
func (g WinGroupMember) Describe() string {
	if g.Absent {
		return "windows group " + show(g.Group) + " without " + show(g.Member)
	}
	return "windows group " + show(g.Group) + " with " + show(g.Member)
}

// Reverse removes (or restores) the membership.
func (g WinGroupMember) Reverse() Task { g.Absent = !g.Absent; return g }

const winGroupMemberBody = `$m = @(Get-LocalGroupMember -Group $group -ErrorAction Stop | Where-Object { ($_.Name -split '\\')[-1] -eq (($member -split '\\')[-1]) })
if ($absent -eq '1') {
  if ($m.Count -gt 0) { Invoke-MvmChange { Remove-LocalGroupMember -Group $group -Member $member } }
} elseif ($m.Count -eq 0) { Invoke-MvmChange { Add-LocalGroupMember -Group $group -Member $member } }`

// Command builds the task's script.
func (g WinGroupMember) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := windowsOnly(g.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if err := checkWinName("group", g.Group); err != nil {
		return guest.Command{}, err
	}
	dom, user, ok := strings.Cut(g.Member, `\`)
	if !ok {
		dom, user = "", g.Member
	}
	if err := checkWinName("member", user); err != nil {
		return guest.Command{}, err
	}
	if dom != "" {
		if err := checkWinName("member domain", dom); err != nil {
			return guest.Command{}, err
		}
	}
	return guest.Command{Script: psScript(check, winGroupMemberBody, kv{"group", g.Group}, kv{"member", g.Member}, kv{"absent", b01(g.Absent)})}, nil
}

// WinService ensures a Windows service's startup type and that it runs.
type WinService struct {
	Service string
	// StartupType is Automatic (default), Manual or Disabled.
	StartupType string
	// Running starts the service if it is stopped.
	Running bool
}

// Describe describes the task.
func (s WinService) Describe() string { return "windows service " + show(s.Service) }

const winServiceBody = `$s = Get-Service -Name $name -ErrorAction Stop
if ([string]$s.StartType -ne $startType) { Invoke-MvmChange { Set-Service -Name $name -StartupType $startType } }
if ($running -eq '1' -and [string]$s.Status -ne 'Running') { Invoke-MvmChange { Start-Service -Name $name } }`

// Command builds the task's script.
func (s WinService) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := windowsOnly(s.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if !winSvcRe.MatchString(s.Service) {
		return guest.Command{}, invalid("service name is not valid (letters, digits and ._-, at most 256 bytes)")
	}
	st := s.StartupType
	switch st {
	case "":
		st = "Automatic"
	case "Automatic", "Manual", "Disabled":
	default:
		return guest.Command{}, invalid("startup type %s: want Automatic, Manual or Disabled", limit.Quote(s.StartupType))
	}
	return guest.Command{Script: psScript(check, winServiceBody, kv{"name", s.Service}, kv{"startType", st}, kv{"running", b01(s.Running)})}, nil
}

// WinFile ensures a file has the given content (compared by SHA-256,
// replaced through a temporary file and a move).
type WinFile struct {
	Path    string
	Content []byte
}

// Describe describes the task.
func (w WinFile) Describe() string { return "windows file " + show(w.Path) }

const winFileBody = `$same = $false
if (Test-Path -LiteralPath $path -PathType Leaf) { $same = ((Get-FileHash -LiteralPath $path -Algorithm SHA256).Hash -eq $hash) }
if (-not $same) { Invoke-MvmChange {
  $tmp = $path + '.mvm-' + [guid]::NewGuid().ToString('N')
  try { [IO.File]::WriteAllBytes($tmp, [Convert]::FromBase64String($content)); Move-Item -LiteralPath $tmp -Destination $path -Force }
  finally { if (Test-Path -LiteralPath $tmp) { Remove-Item -LiteralPath $tmp -Force } }
} }`

// Command builds the task's script.
func (w WinFile) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := windowsOnly(w.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if len(w.Path) > MaxPath || !utf8.ValidString(w.Path) {
		return guest.Command{}, invalid("the path is longer than %d bytes or not UTF-8", MaxPath)
	}
	if w.Path == "" || strings.ContainsAny(w.Path, "\x00\r\n*?\"<>|") {
		return guest.Command{}, invalid("the path is empty or has characters Windows refuses")
	}
	sum := sha256.Sum256(w.Content)
	return guest.Command{Script: psScript(check, winFileBody, kv{"path", w.Path},
		kv{"content", base64.StdEncoding.EncodeToString(w.Content)}, kv{"hash", strings.ToUpper(hex.EncodeToString(sum[:]))})}, nil
}

// RegistryValue ensures a registry value exists with a type and a value
// (the key is created if needed).
type RegistryValue struct {
	// Path is a key path such as `HKLM:\SOFTWARE\Example`.
	Path, Name string
	// Kind is String (default), ExpandString, DWord or QWord.
	Kind  string
	Value string
}

// Describe describes the task.
func (r RegistryValue) Describe() string { return "registry value " + show(r.Path+`\`+r.Name) }

const registryBody = `if (-not (Test-Path -LiteralPath $path)) { Invoke-MvmChange { $null = New-Item -Path $path -Force } }
$want = switch ($kind) { 'DWord' { [int]$value } 'QWord' { [long]$value } default { $value } }
$cur = $null; $curKind = $null
if (Test-Path -LiteralPath $path) {
  $k = Get-Item -LiteralPath $path
  if ($k.GetValueNames() -contains $name) { $cur = $k.GetValue($name, $null, 'DoNotExpandEnvironmentNames'); $curKind = [string]$k.GetValueKind($name) }
}
if ($curKind -ne $kind -or $cur -ne $want) { Invoke-MvmChange { $null = New-ItemProperty -LiteralPath $path -Name $name -PropertyType $kind -Value $want -Force } }`

// Command builds the task's script.
func (r RegistryValue) Command(f guest.OSFamily, check bool) (guest.Command, error) {
	if err := windowsOnly(r.Describe(), f); err != nil {
		return guest.Command{}, err
	}
	if !regPathRe.MatchString(r.Path) {
		return guest.Command{}, invalid("registry path must look like HKLM:\\Key\\Sub without wildcards")
	}
	if len(r.Name) > MaxLine {
		return guest.Command{}, invalid("the registry value name is longer than %d bytes", MaxLine)
	}
	if strings.ContainsAny(r.Name, "\x00\r\n") || strings.ContainsAny(r.Value, "\x00") {
		return guest.Command{}, invalid("registry value name or value has forbidden characters")
	}
	kind := r.Kind
	switch kind {
	case "":
		kind = "String"
	case "String", "ExpandString":
	case "DWord":
		if _, err := strconv.ParseInt(r.Value, 10, 32); err != nil {
			return guest.Command{}, invalid("a DWord value must be a 32-bit integer")
		}
	case "QWord":
		if _, err := strconv.ParseInt(r.Value, 10, 64); err != nil {
			return guest.Command{}, invalid("a QWord value must be a 64-bit integer")
		}
	default:
		return guest.Command{}, invalid("registry kind %s: want String, ExpandString, DWord or QWord", limit.Quote(r.Kind))
	}
	return guest.Command{Script: psScript(check, registryBody, kv{"path", r.Path}, kv{"name", r.Name}, kv{"kind", kind}, kv{"value", r.Value})}, nil
}
