package hyperv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
)

// A script is one of the fixed PowerShell templates the driver runs on a
// node. Its text never changes with the call: the parameters travel as
// one JSON document on the command's standard input, which the script
// reads with [Console]::In.ReadToEnd() and ConvertFrom-Json, so no value
// is ever pasted into PowerShell text and none is on the command line.
// The first line names the template ("# managedvm-hyperv NAME/VERSION"),
// which is how the simulator (internal/fakes/hypervsim) recognises it.
//
// Every script answers with one JSON object on standard output, built
// from hashtables whose fields are strings (enums cast with [string],
// lists forced with @()), written by ConvertTo-Json -Depth N -Compress
// and with every non-ASCII character escaped as \uXXXX, so that the
// console code page of the remote powershell.exe cannot change it.
type script struct {
	name string
	text string
}

// The header each template starts with.
const scriptHeader = "# managedvm-hyperv "

// paramsLine reads the JSON parameters from standard input.
// Remove-TypeData keeps Windows PowerShell 5.1 from writing arrays as
// {"value":[...],"Count":n} when they went through the pipeline.
const paramsLine = "Remove-TypeData System.Array -ErrorAction SilentlyContinue\n" +
	"$p = [Console]::In.ReadToEnd() | ConvertFrom-Json\n"

// emitFunc writes an object as compressed JSON, non-ASCII escaped.
const emitFunc = "function emit($o) { $j = ConvertTo-Json -InputObject $o -Depth 6 -Compress; " +
	"[Console]::Out.Write([regex]::Replace($j, '[^\\x00-\\x7f]', { param($m) '\\u{0:x4}' -f [int][char]$m.Value })) }\n"

// vmFunc turns one Microsoft.HyperV.PowerShell.VirtualMachine into the
// hashtable the driver reads (see wireVM).
const vmFunc = "function vmj($v) {\n" +
	"$a = @(foreach ($n in @(Get-VMNetworkAdapter -VM $v)) { @{ Mac = [string]$n.MacAddress; Switch = [string]$n.SwitchName; " +
	"IPs = @(foreach ($i in @($n.IPAddresses)) { [string]$i }); VlanMode = [string]$n.VlanSetting.OperationMode; Vlan = [string]$n.VlanSetting.AccessVlanId } })\n" +
	"@{ Id = [string]$v.VMId; Name = [string]$v.Name; State = [string]$v.State; CPUs = [string]$v.ProcessorCount; Memory = [string]$v.MemoryStartup; " +
	"Gen = [string]$v.Generation; Clustered = [string]$v.IsClustered; Notes = [string]$v.Notes; Heartbeat = [string]$v.Heartbeat; " +
	"IS = [string]$v.IntegrationServicesState; Node = [string]$v.ComputerName; Adapters = $a }\n}\n"

func newScript(name, body string) script {
	return script{name: name, text: scriptHeader + name + "\n" + paramsLine + emitFunc + body}
}

// The templates. inventory lists every VM registered on the node it runs
// on (in a failover cluster a VM is registered on its owner node only);
// get returns one VM by its VMId, or VM null when the node does not hold
// it; cluster describes the failover cluster, its nodes, CSVs and the
// node's virtual switches.
var (
	scriptInventory = newScript("inventory/1", vmFunc+
		"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; VMs = @(foreach ($v in @(Get-VM)) { vmj $v }) }\n")
	scriptGet = newScript("get/1", vmFunc+
		"$v = @(Get-VM -Id $p.Id -ErrorAction SilentlyContinue)\n"+
		"if ($v.Count -eq 0) { emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; VM = $null } } else { emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; VM = (vmj $v[0]) } }\n")
	scriptCluster = newScript("cluster/1",
		"$c = Get-Cluster\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Cluster = [string]$c.Name; Domain = [string]$c.Domain; "+
			"Nodes = @(foreach ($n in @(Get-ClusterNode)) { @{ Name = [string]$n.Name; State = [string]$n.State } }); "+
			"CSVs = @(foreach ($s in @(Get-ClusterSharedVolume)) { @{ Name = [string]$s.Name; State = [string]$s.State; Owner = [string]$s.OwnerNode.Name; "+
			"Path = [string]@($s.SharedVolumeInfo)[0].FriendlyVolumeName } }); "+
			"Switches = @(foreach ($w in @(Get-VMSwitch)) { @{ Name = [string]$w.Name; Type = [string]$w.SwitchType } }) }\n")
	// events reads the node's VMMS-Admin log after record After: at most
	// Max records 13002 (created) and 13003 (deleted), oldest first, with
	// the log's oldest and newest record ids (to see a rollover and to
	// start a cursor). The XPath holds After only as an [int64].
	scriptEvents = newScript("events/1",
		"$l = 'Microsoft-Windows-Hyper-V-VMMS-Admin'; $a = [int64]$p.After; $m = [int]$p.Max\n"+
			"$o = @(Get-WinEvent -LogName $l -Oldest -MaxEvents 1 -ErrorAction SilentlyContinue); $z = @(Get-WinEvent -LogName $l -MaxEvents 1 -ErrorAction SilentlyContinue)\n"+
			"$e = @(Get-WinEvent -LogName $l -Oldest -MaxEvents $m -FilterXPath \"*[System[(EventID=13002 or EventID=13003) and EventRecordID > $a]]\" -ErrorAction SilentlyContinue)\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Oldest = [string]@($o | % { $_.RecordId })[0]; Last = [string]@($z | % { $_.RecordId })[0]; "+
			"Events = @(foreach ($x in $e) { $u = ([xml]$x.ToXml()).Event.UserData.VmlEventLog; "+
			"@{ RecordId = [string]$x.RecordId; Id = [string]$x.Id; VMId = [string]$u.VmId; VMName = [string]$u.VmName; Time = $x.TimeCreated.ToUniversalTime().ToString('o') } }) }\n")
	// templates lists the .vhdx files of directory Path (the templates
	// CSV) with what Get-VHD says of each and the text of the sidecar
	// file NAME.json beside it, if there is one (Meta).
	scriptTemplates = newScript("templates/1",
		"$d = [string]$p.Path\n"+
			"$f = @(Get-ChildItem -LiteralPath $d -Filter *.vhdx -File)\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Files = @(foreach ($x in $f) { $h = Get-VHD -Path $x.FullName; "+
			"$s = [IO.Path]::ChangeExtension($x.FullName, '.json'); $m = ''; if (Test-Path -LiteralPath $s) { $m = [string](Get-Content -LiteralPath $s -Raw) }\n"+
			"@{ Path = [string]$x.FullName; Format = [string]$h.VhdFormat; Type = [string]$h.VhdType; Size = [string]$h.Size; FileSize = [string]$h.FileSize; Parent = [string]$h.ParentPath; Meta = $m } }) }\n")
	// power turns VM Id on (Start-VM, or Resume-VM when Paused) or off
	// (Stop-VM -TurnOff, or Remove-VMSavedState when Saved) when it is not
	// so already, and answers its state after; Found 'False' when the
	// node does not hold the VM (it moved).
	scriptPower = newScript("power/1",
		"$v = @(Get-VM -Id $p.Id -ErrorAction SilentlyContinue)\n"+
			"if ($v.Count -eq 0) { emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Found = 'False'; State = '' } } else {\n"+
			"$v = $v[0]; $s = [string]$v.State\n"+
			"if ($p.On) { if ($s -eq 'Paused') { Resume-VM -VM $v } elseif ($s -ne 'Running') { Start-VM -VM $v } }\n"+
			"else { if ($s -eq 'Saved') { Remove-VMSavedState -VM $v } elseif ($s -ne 'Off') { Stop-VM -VM $v -TurnOff -Force } }\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Found = 'True'; State = [string](Get-VM -Id $p.Id).State } }\n")
	// remove turns VM Id off, removes its cluster role
	// (Remove-ClusterGroup -VMId -RemoveResources), the VM and the files
	// of its hard disks and DVD drives, except files under directory Keep
	// (the templates: a VM that uses a template file itself must not take
	// it away). Found 'False' when the node does not hold the VM.
	scriptRemove = newScript("remove/1",
		"$v = @(Get-VM -Id $p.Id -ErrorAction SilentlyContinue)\n"+
			"if ($v.Count -eq 0) { emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Found = 'False'; Removed = @(); Kept = @() } } else {\n"+
			"$v = $v[0]; $k = ([string]$p.Keep).TrimEnd('\\') + '\\'\n"+
			"$f = @(@(Get-VMHardDiskDrive -VM $v) + @(Get-VMDvdDrive -VM $v) | % { [string]$_.Path } | ? { $_ })\n"+
			"if ([string]$v.State -ne 'Off') { Stop-VM -VM $v -TurnOff -Force }\n"+
			"if ($v.IsClustered) { Remove-ClusterGroup -VMId $v.VMId -RemoveResources -Force }\n"+
			"Remove-VM -VM $v -Force\n"+
			"$r = @(); $n = @(); foreach ($x in $f) { if ($x.StartsWith($k, [StringComparison]::OrdinalIgnoreCase)) { $n += $x } else { Remove-Item -LiteralPath $x -Force -ErrorAction SilentlyContinue; $r += $x } }\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Found = 'True'; Removed = @($r); Kept = @($n) } }\n")
	// account says who the session runs as on the node: whether the token
	// is in the local Administrators role, and its group SIDs (a domain
	// SID ending in -512 is Domain Admins).
	scriptAccount = newScript("account/1",
		"$i = [Security.Principal.WindowsIdentity]::GetCurrent()\n"+
			"$a = ([Security.Principal.WindowsPrincipal]$i).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; User = [string]$i.Name; Admin = [string]$a; Groups = @(foreach ($g in @($i.Groups)) { [string]$g.Value }) }\n")
	// file writes the bytes Data (base64) to Path through a temporary
	// name, checks their SHA-256 against Sha256 and renames the file into
	// place (the cidata ISO on the VMs CSV).
	scriptFile = newScript("file/1",
		"$b = [Convert]::FromBase64String([string]$p.Data); $t = [string]$p.Path + '.partial'\n"+
			"New-Item -ItemType Directory -Force -Path ([IO.Path]::GetDirectoryName([string]$p.Path)) | Out-Null\n"+
			"[IO.File]::WriteAllBytes($t, $b)\n"+
			"$h = (Get-FileHash -LiteralPath $t -Algorithm SHA256).Hash\n"+
			"if ($h -ne [string]$p.Sha256) { Remove-Item -LiteralPath $t -Force; throw 'the file written does not have the SHA-256 sent' }\n"+
			"Move-Item -LiteralPath $t -Destination ([string]$p.Path) -Force\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Path = [string]$p.Path; Sha256 = [string]$h; Size = [string]$b.Length }\n")
	// create makes the VM whose Notes are Tag, unless the node holds it
	// already: the disk (a differencing disk on the template Parent, or a
	// full copy when Full) at Disk, New-VM in Dir with that disk and a NIC
	// on Switch, the processor count, the access VLAN, every integration
	// service enabled, the ISO as a DVD drive. A disk that exists is
	// reused, so a retry after a failure goes on where it stopped.
	scriptCreate = newScript("create/1", vmFunc+
		"$v = @(Get-VM | ? { [string]$_.Notes -eq [string]$p.Tag })\n"+
		"if ($v.Count -eq 0) {\n"+
		"New-Item -ItemType Directory -Force -Path ([string]$p.Dir) | Out-Null\n"+
		"if (-not (Test-Path -LiteralPath ([string]$p.Disk))) { if ($p.Full) { Copy-Item -LiteralPath ([string]$p.Parent) -Destination ([string]$p.Disk) } "+
		"else { New-VHD -Path ([string]$p.Disk) -ParentPath ([string]$p.Parent) -Differencing | Out-Null } }\n"+
		"$x = New-VM -Name ([string]$p.Name) -Generation ([int]$p.Gen) -MemoryStartupBytes ([int64]$p.Memory) -VHDPath ([string]$p.Disk) -Path ([string]$p.Dir) -SwitchName ([string]$p.Switch)\n"+
		"Set-VM -VM $x -Notes ([string]$p.Tag) -ProcessorCount ([int]$p.CPUs)\n"+
		"if ([int]$p.Vlan -ne 0) { Set-VMNetworkAdapterVlan -VMNetworkAdapter @(Get-VMNetworkAdapter -VM $x)[0] -Access -VlanId ([int]$p.Vlan) }\n"+
		"Get-VMIntegrationService -VM $x | ? { -not $_.Enabled } | Enable-VMIntegrationService\n"+
		"if ([string]$p.ISO) { Add-VMDvdDrive -VM $x -Path ([string]$p.ISO) }\n"+
		"$v = @(Get-VM -Id $x.VMId) }\n"+
		"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; VM = (vmj $v[0]) }\n")
	// role makes VM Id a clustered role (Add-ClusterVirtualMachineRole on
	// its owner node: it cannot run remotely without CredSSP) unless it is
	// one already. Found 'False' when the node does not hold it.
	scriptRole = newScript("role/1", vmFunc+
		"$v = @(Get-VM -Id $p.Id -ErrorAction SilentlyContinue)\n"+
		"if ($v.Count -eq 0) { emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Found = 'False'; VM = $null } } else {\n"+
		"if (-not $v[0].IsClustered) { Add-ClusterVirtualMachineRole -VMId $v[0].VMId | Out-Null }\n"+
		"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Found = 'True'; VM = (vmj (Get-VM -Id $p.Id)) } }\n")
	// undo removes what a provisioning left on the node: every VM whose
	// Notes are Tag or whose configuration is in Dir (off, its cluster
	// role, the VM), then Dir itself with the disk and ISO in it. Dir must
	// be a mvm-* directory directly under Under (the VMs path).
	scriptUndo = newScript("undo/1",
		"$d = ([string]$p.Dir).TrimEnd('\\'); $u = ([string]$p.Under).TrimEnd('\\') + '\\'\n"+
			"if (-not $d.StartsWith($u + 'mvm-', [StringComparison]::OrdinalIgnoreCase) -or $d.Substring($u.Length).Contains('\\')) { throw 'undo/1: Dir is not a provisioning directory' }\n"+
			"$r = @(); foreach ($v in @(Get-VM | ? { [string]$_.Notes -eq [string]$p.Tag -or ([string]$_.Path).TrimEnd('\\') -eq $d })) {\n"+
			"if ([string]$v.State -ne 'Off') { Stop-VM -VM $v -TurnOff -Force }\n"+
			"if ($v.IsClustered) { Remove-ClusterGroup -VMId $v.VMId -RemoveResources -Force }\n"+
			"Remove-VM -VM $v -Force; $r += [string]$v.VMId }\n"+
			"if (Test-Path -LiteralPath $d) { Remove-Item -LiteralPath $d -Recurse -Force }\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Removed = @($r) }\n")
	// rolecheck proves the account may make and remove a cluster role on
	// the node: a VM without disk named Name in Dir, made a clustered role
	// and removed again; the error text of the step that failed, if one
	// did. Everything it made is removed whatever happened.
	scriptRoleCheck = newScript("rolecheck/1",
		"$e = ''; $x = $null\n"+
			"try { $x = New-VM -Name ([string]$p.Name) -NoVHD -Generation 2 -MemoryStartupBytes 512MB -Path ([string]$p.Dir) -ErrorAction Stop\n"+
			"Add-ClusterVirtualMachineRole -VMId $x.VMId -ErrorAction Stop | Out-Null\n"+
			"Remove-ClusterGroup -VMId $x.VMId -RemoveResources -Force -ErrorAction Stop }\n"+
			"catch { $e = [string]$_.Exception.Message }\n"+
			"finally { if ($x) { Remove-VM -VM $x -Force -ErrorAction SilentlyContinue }; Remove-Item -LiteralPath ([string]$p.Dir) -Recurse -Force -ErrorAction SilentlyContinue }\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Error = $e }\n")
	// switch describes vmSwitch Name on the node as far as its VLAN trunk
	// can be seen there: its type, the physical adapter it is bound to and
	// that adapter's own VLAN filter (the driver's VlanID property: a
	// value other than 0 passes only that VLAN, so no trunk).
	scriptSwitch = newScript("switch/1",
		"$w = @(Get-VMSwitch -Name ([string]$p.Name) -ErrorAction SilentlyContinue)\n"+
			"if ($w.Count -eq 0) { emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Found = 'False'; Type = ''; Adapter = ''; AdapterVlan = '' } } else {\n"+
			"$a = ''; $l = ''; if ([string]$w[0].SwitchType -eq 'External') { $n = @(Get-NetAdapter -InterfaceDescription ([string]$w[0].NetAdapterInterfaceDescription) -ErrorAction SilentlyContinue)\n"+
			"if ($n.Count -gt 0) { $a = [string]$n[0].Name; $l = [string](@(Get-NetAdapterAdvancedProperty -Name $a -RegistryKeyword VlanID -ErrorAction SilentlyContinue) | % { $_.RegistryValue } | Select-Object -First 1) } }\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Found = 'True'; Type = [string]$w[0].SwitchType; Adapter = $a; AdapterVlan = $l } }\n")
	// powerevents is events for the node's Hyper-V-Worker-Admin log, the
	// power records: 18500 started, 18502 turned off, 18504 shut down by
	// the guest, 18508 shut down through the integration service, 18510
	// saved, 18596 restored.
	scriptPowerEvents = newScript("powerevents/1",
		"$l = 'Microsoft-Windows-Hyper-V-Worker-Admin'; $a = [int64]$p.After; $m = [int]$p.Max\n"+
			"$o = @(Get-WinEvent -LogName $l -Oldest -MaxEvents 1 -ErrorAction SilentlyContinue); $z = @(Get-WinEvent -LogName $l -MaxEvents 1 -ErrorAction SilentlyContinue)\n"+
			"$e = @(Get-WinEvent -LogName $l -Oldest -MaxEvents $m -FilterXPath \"*[System[(EventID=18500 or EventID=18502 or EventID=18504 or EventID=18508 or EventID=18510 or EventID=18596) and EventRecordID > $a]]\" -ErrorAction SilentlyContinue)\n"+
			"emit @{ V = '1'; Node = [string]$env:COMPUTERNAME; Oldest = [string]@($o | % { $_.RecordId })[0]; Last = [string]@($z | % { $_.RecordId })[0]; "+
			"Events = @(foreach ($x in $e) { $u = ([xml]$x.ToXml()).Event.UserData.VmlEventLog; "+
			"@{ RecordId = [string]$x.RecordId; Id = [string]$x.Id; VMId = [string]$u.VmId; VMName = [string]$u.VmName; Time = $x.TimeCreated.ToUniversalTime().ToString('o') } }) }\n")
	// guest runs the PowerShell script Script in VM Id over PowerShell
	// Direct (Invoke-Command -VMId -Credential on the node that holds
	// it: VMBus, no network) as User with Password, with the bytes Stdin
	// (base64) on its standard input; it answers the script's standard
	// output and error (base64) and exit code, or the error text of the
	// session (Error), or the VM's State when it is not running. The
	// credentials exist only in the parameters and the PSCredential.
	scriptGuest = newScript("guest/1",
		"$v = @(Get-VM -Id $p.Id -ErrorAction SilentlyContinue); $o = @{ V = '1'; Node = [string]$env:COMPUTERNAME; Found = 'False'; State = ''; Error = ''; Out = ''; Err = ''; Code = '' }\n"+
			"if ($v.Count -gt 0) { $o.Found = 'True'; $o.State = [string]$v[0].State }\n"+
			"if ($o.State -eq 'Running') {\n"+
			"$c = New-Object System.Management.Automation.PSCredential ([string]$p.User), (ConvertTo-SecureString ([string]$p.Password) -AsPlainText -Force)\n"+
			"try { $r = Invoke-Command -VMId $v[0].VMId -Credential $c -ErrorAction Stop -ArgumentList ([string]$p.Script), ([string]$p.Stdin) -ScriptBlock { param($s, $i)\n"+
			"$q = New-Object Diagnostics.ProcessStartInfo 'powershell.exe', ('-NoProfile -NonInteractive -EncodedCommand ' + [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($s)))\n"+
			"$q.UseShellExecute = $false; $q.RedirectStandardInput = $true; $q.RedirectStandardOutput = $true; $q.RedirectStandardError = $true\n"+
			"$x = [Diagnostics.Process]::Start($q); $mo = New-Object IO.MemoryStream; $me = New-Object IO.MemoryStream\n"+
			"$a = $x.StandardOutput.BaseStream.CopyToAsync($mo); $b = $x.StandardError.BaseStream.CopyToAsync($me)\n"+
			"$d = [Convert]::FromBase64String($i); $x.StandardInput.BaseStream.Write($d, 0, $d.Length); $x.StandardInput.Close()\n"+
			"$x.WaitForExit(); $a.Wait(); $b.Wait()\n"+
			"@{ Out = [Convert]::ToBase64String($mo.ToArray()); Err = [Convert]::ToBase64String($me.ToArray()); Code = [string]$x.ExitCode } }\n"+
			"$o.Out = [string]$r.Out; $o.Err = [string]$r.Err; $o.Code = [string]$r.Code } catch { $o.Error = [string]$_.Exception.Message } }\n"+
			"emit $o\n")
)

// scripts is every template, for the tests that check each one fits a
// WinRM command line.
var scripts = []script{scriptInventory, scriptGet, scriptCluster, scriptEvents, scriptTemplates, scriptPower, scriptRemove, scriptAccount,
	scriptFile, scriptCreate, scriptRole, scriptUndo, scriptRoleCheck, scriptSwitch, scriptPowerEvents, scriptGuest}

// asciiJSON marshals v as JSON with every non-ASCII character escaped, so
// the bytes read the same in any console code page.
func asciiJSON(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, r := range string(raw) {
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	return b.Bytes(), nil
}

// run runs s on the node behind ex with params as its JSON input and
// decodes its JSON answer into out. node names the node in messages.
func run(ctx context.Context, ex *guest.Executor, node string, s script, params, out any) error {
	if params == nil {
		params = struct{}{}
	}
	in, err := asciiJSON(params)
	if err != nil {
		return errs.Errorf(errs.Internal, "", "hyperv: encoding the %s parameters: %v", s.name, err)
	}
	res, err := ex.Run(ctx, guest.Command{Script: s.text, Stdin: bytes.NewReader(in)})
	if err != nil {
		var ee *guest.ExitError
		if errors.As(err, &ee) {
			return scriptError(node, s, ee.Stderr)
		}
		return errs.Wrap(errs.CodeOf(err), "", fmt.Errorf("hyperv: node %s: %s: %w", limit.Quote(node), s.name, err))
	}
	if err := json.Unmarshal(bytes.TrimSpace(res.Stdout), out); err != nil {
		return errs.Errorf(errs.Internal, "", "hyperv: node %s: the %s answer is not the JSON the script writes: %v", limit.Quote(node), s.name, err)
	}
	return nil
}

// scriptError maps a failed script's error text to a code: Hyper-V's and
// the cluster's access-denied texts are PermissionDenied, anything else
// FailedPrecondition. The text is quoted (cut), as it may carry names.
func scriptError(node string, s script, stderr []byte) error {
	msg := strings.TrimSpace(string(stderr))
	code := errs.FailedPrecondition
	low := strings.ToLower(msg)
	if strings.Contains(low, "required permission") || strings.Contains(low, "access is denied") || strings.Contains(low, "accessdenied") {
		code = errs.PermissionDenied
	}
	err := errs.Errorf(code, "", "hyperv: node %s: %s failed: %s", limit.Quote(node), s.name, limit.Quote(msg))
	if strings.Contains(low, "being used by another process") {
		return &inUseError{err}
	}
	return err
}

// inUseError marks a script that failed because a file it needed was
// held open by another process (a VHDX right after New-VHD): worth a
// retry.
type inUseError struct{ error }

func (e *inUseError) Unwrap() error { return e.error }
