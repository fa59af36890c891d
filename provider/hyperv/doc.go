// Package hyperv is the beginning of a provider driver for Microsoft
// Hyper-V failover clusters, reached over WinRM (guest/winrm) with
// PowerShell on every node. It is not complete (see PLAN.md in this
// directory): it runs the script templates inventory, get, cluster,
// events, templates, power, remove and account, and its driver answers List, Get, Zones,
// Templates, Cursor, Watch (Created and Deleted from each node's
// VMMS-Admin records, Changed from a periodic inventory), PowerOn,
// PowerOff, Destroy and a Preflight of the rows it can check so far; it
// does not implement provider.Driver yet (Provision is missing) and so
// offers no *provider.Provider.
//
// # Scripts
//
// The driver runs a fixed set of PowerShell templates. A template's text
// never depends on the call: its parameters are one JSON document sent on
// the command's standard input (ConvertFrom-Json inside the script), so
// nothing is pasted into PowerShell and nothing is on the command line.
// Answers are JSON objects whose fields are all strings (enums cast with
// [string], lists forced with @()), written with ConvertTo-Json -Depth 6
// -Compress and with non-ASCII characters escaped, so that neither
// Windows PowerShell 5.1's enum numbers nor the console code page change
// what the driver reads. Parameters are sent ASCII-only for the same
// reason. Each template fits one WinRM command line (8191 characters).
//
// # Nodes
//
// Every node has its own WinRM endpoint and every cmdlet runs on the node
// it concerns: inside an NTLM WinRM session a node cannot act on another
// (the double hop), so the driver never passes -ComputerName. A VM is
// registered on its owner node only; List asks every node and keys VMs on
// VMId (names can collide).
package hyperv
