// Package hypervsim is a Microsoft Hyper-V failover cluster in memory for
// the tests of provider/hyperv: nodes, Cluster Shared Volumes, VHDX
// files, virtual switches, VMs (keyed by VMId, each registered on its owner node) and
// each node's Microsoft-Windows-Hyper-V-VMMS-Admin log (13002 created,
// 13003 deleted, with per-node record ids) and Hyper-V-Worker-Admin log
// (power changes). Every node has its own WinRM
// endpoint (internal/fakes/winrmserver: HTTPS, NTLM), as the driver
// reaches each node directly.
//
// # What it answers
//
// A node answers the driver's templates by their identity: the
// -EncodedCommand is decoded by winrmserver, the template is recognised
// by its first line ("# managedvm-hyperv NAME/VERSION"), its JSON
// parameters are read from standard input, and the answer is computed
// from the cluster state and written as Windows PowerShell 5.1's
// ConvertTo-Json -Compress writes the template's hashtables (keys in hash
// order, not insertion order; <, >, &, ' as \u003c ...; every value a
// string, as the templates cast them; non-ASCII escaped as the templates
// do). Simulated templates:
//
//   - inventory/1: the VMs registered on the node;
//
//   - get/1: one VM by VMId, VM null when the node does not hold it (a
//     malformed GUID fails as Get-VM's parameter binding does);
//
//   - cluster/1: the cluster, its nodes with their states (SetNodeState),
//     CSVs and switches;
//
//   - events/1: 13002/13003 records after a record id, oldest first, at
//     most Max, with the log's oldest and newest record ids (VMIds upper
//     case, times in .NET's round-trip format); TrimLog drops the oldest
//     records as a full log overwrites them;
//
//   - powerevents/1: the same for the node's Hyper-V-Worker-Admin log,
//     which holds a record for each power change the simulator makes
//     (18500 started, 18502 turned off, 18510 saved, 18596 restored; no
//     record for pause and resume); TrimWorkerLog;
//
//   - templates/1: the .vhdx files of a directory with Get-VHD's format,
//     type, sizes and parent (a directory that is neither a CSV's root
//     nor holds a file fails as Get-ChildItem does);
//
//   - power/1: a VM on or off from any state, Found False when the node
//     does not hold it;
//
//   - remove/1: the VM gone (13003 logged) with its disk files (VM.Disks)
//     except those under Keep, Found False when the node does not hold it;
//
//   - account/1: who the session runs as (SetAccount): name, local
//     Administrators role, group SIDs;
//
//   - file/1: a file written from base64 (its SHA-256 checked, as the
//     template does), kept with AddFile's files (File reads one back);
//
//   - create/1: the VM whose Notes are Tag made on the node (or the one
//     it holds already): the differencing disk on the template (or a full
//     copy), the VM in Dir with a NIC on the switch and the access VLAN,
//     the ISO as a DVD medium, 13002 logged; DiskInUse makes it fail at
//     New-VM after the disk was made, as Hyper-V does while the new VHDX
//     is still held open;
//
//   - role/1: the VM made a cluster role (IsClustered); DenyClusterRoles
//     refuses it with the failover cluster's access-denied text;
//
//   - undo/1: every VM of the node whose Notes are Tag or whose Path is
//     Dir removed (13003), then every file under Dir; a Dir that is not
//     a mvm-* directory right under Under is refused;
//
//   - switch/1: a switch's type, the physical adapter of an External one
//     and that adapter's VlanID (Switch.Adapter, Switch.AdapterVLAN);
//
//   - rolecheck/1: a throw-away VM logged created and deleted, and the
//     role's access-denied text as Error when DenyClusterRoles is set.
//
//   - guest/1: PowerShell Direct into a Running VM given a guest
//     (SetGuest): the credentials checked against the guest's account
//     ("The credential is invalid." otherwise), the script run for real by
//     winrmserver's Interpreter over the guest's Root with the standard
//     input sent, its output and exit code answered; a VM without a guest
//     fails as one whose integration services do not answer. It runs
//     outside the Sim's lock and ends when the driver terminates it.
//
// templates/1 also answers the text of a sidecar NAME.json (AddFile)
// beside each NAME.vhdx.
//
// A VM's IPs (KVP) are reported only while it is Running.
//
// It does not interpret PowerShell. It refuses loudly (exit 1, a
// "hypervsim:" message on stderr) what a template must never do: a
// script without the header, one that does not read its parameters with
// ConvertFrom-Json from standard input or does not write with
// ConvertTo-Json -Depth -Compress, non-ASCII bytes on standard input
// (powershell.exe would decode them in the console code page), and a
// parameter value found in the script text (pasted instead of passed).
//
// # Faults
//
// NodeDown and NodeUp take a node off the network and back (each node's
// address is a TCP proxy in front of its WinRM server: connections are
// reset, the port stays); SetNodeHang delays every answer of a node
// until the driver terminates the command; SetNodeState changes only the
// cluster's view of a node; DiskInUse and DenyClusterRoles make the
// failures named above; TrimLog and TrimWorkerLog roll the logs over;
// BeforeAnswer runs code between a template's arrival and its answer (a
// failover in the middle of a List).
//
// # Double hop
//
// A script that names another node with -ComputerName (a literal, or
// $p.Field resolved from its parameters) fails with Hyper-V's
// access-denied text, as it does inside an NTLM WinRM session, where the
// node cannot pass the caller's credentials on.
//
// # Concurrency
//
// A Sim is safe for concurrent use.
package hypervsim
