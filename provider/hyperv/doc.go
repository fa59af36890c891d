// Package hyperv is the Microsoft Hyper-V driver: a provider.Driver (and
// provider.GuestAccessDriver) for the nodes of one Windows Server
// failover cluster, each reached over its own WinRM endpoint (guest/winrm:
// HTTPS 5986, NTLM) with PowerShell. No agent is installed on the nodes.
// New returns the portable *provider.Provider in front of it, which hosts
// hold:
//
//	p, err := hyperv.New(ctx, []hyperv.Node{
//		{Name: "HV1", Host: "hv1.corp.example", WinRM: winrm.Options{CACertPEM: ca}},
//		{Name: "HV2", Host: "hv2.corp.example", WinRM: winrm.Options{CACertPEM: ca}},
//	}, guest.Password(`CORP\svc-managedvm`, pw), &hyperv.Options{
//		Zone:          "az1",
//		TemplatesPath: `C:\ClusterStorage\Templates`,
//		VMsPath:       `C:\ClusterStorage\VMs`,
//		Switch:        "vSwitch-Trunk",
//		VLANs:         []int{20, 30},
//	})
//	defer p.Close()
//
// New asks the first node that answers for the cluster (so bad
// credentials, an untrusted certificate or a wrong address fail there:
// Unauthenticated, PermissionDenied, Unavailable). Options.Logger,
// TracerProvider, MeterProvider and ProvisionTimeout go to the portable
// value (provider.Options), which validates every argument, bounds
// Provision and records the calls; the driver's errors have no Op of
// their own. The zone is the cluster (Options.Zone, or the cluster's
// name).
//
// # Preparing the cluster and the account
//
// The cluster: one CSV (or a directory on one) for the template .vhdx
// files (Options.TemplatesPath) and one for the VMs (Options.VMsPath);
// an External vmSwitch of the same name on every node, bound to the NIC
// whose physical switch port trunks the zone's VLANs (Options.Switch,
// Options.VLANs); DHCP on the VM VLANs. On every node a WinRM HTTPS
// listener (winrm quickconfig -transport:https, or New-Item
// WSMan:\localhost\Listener -Transport HTTPS with the node's
// certificate), whose CA the host trusts (winrm.Options.CACertPEM or a
// pin; verification is on by default).
//
// The account: a domain account, not in Domain Admins, in the local
// Administrators group of every node (Add-LocalGroupMember
// Administrators CORP\svc-managedvm), allowed to log on as a service, and
// with full access to the cluster (Grant-ClusterAccess -User
// CORP\svc-managedvm -Full, once, on any node), which
// Add-ClusterVirtualMachineRole and Remove-ClusterGroup need. Preflight
// checks each of these and names the fix of a failing row.
//
// Each template NAME.vhdx may have a sidecar NAME.json beside it, written
// when the template is prepared, for what the disk file cannot say:
//
//	{"family": "linux", "osName": "Ubuntu 24.04", "integrationServices": true}
//
// (Template.Family, OSName, ToolsInstalled; Preflight warns about a
// template without one). A template's guest reads its customization from
// the NoCloud seed (a volume labelled cidata) with cloud-init or
// cloudbase-init.
//
// # Nodes: one endpoint each, every cmdlet local
//
// Inside an NTLM WinRM session a node cannot act on another (the double
// hop: Get-VM -ComputerName othernode is access denied), and
// Add-ClusterVirtualMachineRole cannot run remotely without CredSSP,
// which the WinRM client lacks. So every node has its own endpoint (one
// executor, its shells kept for reuse) and every template runs on the
// node it concerns: no template passes -ComputerName (the simulator
// refuses one that does), and cluster-role operations run on the VM's
// owner node.
//
// # Scripts
//
// The driver runs a fixed set of PowerShell templates: inventory/1,
// get/1, cluster/1, events/1, powerevents/1, templates/1, power/1,
// remove/1, account/1, file/1, create/1, role/1, undo/1, rolecheck/1,
// switch/1, guest/1. A template's text never depends on the call: its
// parameters are one JSON document on the command's standard input
// (ConvertFrom-Json inside the script), so nothing is pasted into
// PowerShell and nothing, a password least of all, is on a command line.
// Answers are JSON objects whose every field is a string (enums cast
// with [string], lists forced with @()), written with ConvertTo-Json
// -Depth 6 -Compress with non-ASCII characters escaped, so that neither
// Windows PowerShell 5.1's enum numbers nor the console code page change
// what the driver reads; parameters are sent ASCII-only for the same
// reason. Each template fits one WinRM command line (8,191 characters).
// internal/fakes/hypervsim answers these templates by their header line;
// it does not interpret PowerShell, so the templates' PowerShell itself
// has been checked against the cmdlets' documentation, not run on a
// Windows Server.
//
// # Inventory
//
// List runs inventory/1 on every node at once (one command each) and
// joins the answers by VMId: names can collide, and a VM seen by two
// nodes (moving while they answered) is listed once. Every node must
// answer (else Unavailable naming the node): a list without one node's
// VMs would read as deletions. Get asks the node that last held the VM,
// then every other node at once; NotFound needs every node's answer. A
// VM's ID is its VMId (lower case); Power from State (Running: poweredOn;
// Off: poweredOff; Saved, Paused: suspended); CPUs; MemoryMiB from
// MemoryStartup; Annotation is Notes; Guest.ToolsRunning and ToolsStatus
// from the heartbeat integration service; Guest.IPs from the guest's KVP
// data (missing or late is not an error). Attributes: node, state,
// generation, clustered, integrationServicesState, nicN.mac,
// nicN.switch, nicN.vlan (access mode). Templates are the .vhdx files of
// TemplatesPath (ID: the full path; Name: the file name without .vhdx);
// with IncludeTemplates List adds them as VMs with Template set, Get
// answers a template's ID, and PowerOn, PowerOff and Destroy refuse it
// (FailedPrecondition). Measured on the simulator (BenchmarkList and
// BenchmarkPerVMGetLoop, 2,000 VMs on 4 nodes, 1 ms added per WinRM
// request, -count 6, benchstat): List 67 ms (± 34 % on shared cores) and
// 24 WinRM requests; a per-VM get/1 loop 10.2 s and 8,000 requests, about
// 150 times slower. Since guest/winrm ends a known-length standard input
// with its last chunk, a List takes 20 requests and the loop 6,000.
//
// # Watch
//
// A cursor holds, for every node, the record id of the last record read
// of its Microsoft-Windows-Hyper-V-VMMS-Admin log (13002 created: Created;
// 13003 deleted: Deleted) and of its Hyper-V-Worker-Admin log (18500
// started, 18502, 18504, 18508 turned off or shut down, 18510 saved,
// 18596 restored: Changed with that power). A stream reads both logs of
// every node after its positions every Options.PollInterval (default 2
// s), in time order across nodes; an empty cursor is now. Every
// Options.ResyncInterval (default 30 s) an inventory reports the other
// changes (a move to another node, failover or live migration, is
// Changed with the new node, never Deleted and Created; name, size,
// notes, addresses). A log that rolled over past a position, or a cursor
// of another cluster, is ErrCursorExpired.
//
// # Provision, power, destroy
//
// Provision: a VM whose Notes hold the request key's hash is returned
// (across process restarts too: its cluster role and power are finished
// if a process stopped before them); a VM of the same name with another
// key is AlreadyExists. The VM goes to the Up node with the fewest VMs,
// into its own directory on the VMs CSV (mvm-<hash of the key>): the
// cidata ISO (meta-data, user-data, network-config from the spec's
// Customization, written by package template) is written there (file/1,
// SHA-256 checked), then create/1 makes a differencing disk on the
// template (a full copy with Options.FullCopy), New-VM (Options.Generation,
// default 2), the processors, the NIC on the switch (the spec's
// Network.Name or Options.Switch) with the access VLAN, every integration
// service enabled, the ISO as a DVD drive and the key in Notes; "the
// process cannot access the file because it is being used by another
// process" right after New-VHD is retried with backoff. Then role/1
// (Add-ClusterVirtualMachineRole on the owner node) and, with PowerOn,
// power/1. Without CPUs or MemoryMiB the VM gets DefaultCPUs and
// DefaultMemoryMiB. On any failure, or when the spec's timeout ends it,
// undo/1 removes every VM of that key or directory (off, its cluster
// role, the VM) and the directory with the disk and ISO, on a context of
// its own (at most two minutes): nothing is left, and the cause is
// returned (with the removal's error joined, if it failed).
//
// PowerOn starts (or resumes) the VM on the node that holds it; PowerOff
// turns it off (Stop-VM -TurnOff, no guest shutdown; a saved state is
// discarded). Destroy turns it off and removes its cluster role, the VM
// and its disk and ISO files (never a file under TemplatesPath); a VM
// that does not exist is not an error. Each follows a VM that moved in
// between, once.
//
// # Guest access: PowerShell Direct
//
// Provider.GuestAccess reaches a guest with no network path over
// PowerShell Direct: guest/1 runs Invoke-Command -VMId -Credential on the
// node that holds the VM (VMBus), with the credentials and the guest's
// script and standard input in its JSON parameters only. ValidateCredentials
// opens a session with them (Unauthenticated when the guest refuses them,
// FailedPrecondition when the VM is not running or its guest does not
// answer); GuestExecutor returns a *guest.Executor (family Windows) whose
// commands run in a powershell.exe in the guest. PowerShell Direct needs
// a Windows guest (Windows 10 / Server 2016 or later) and the account's
// Hyper-V rights on the node; a Linux guest cannot be reached this way.
// The executor passes the guest conformance suite except what a
// template cannot do: output comes back when a command ends (no
// streaming to Command.Stdout; the cancel cases that wait for a first
// line), standard input travels whole (at most MaxDirectStdin bytes; an
// Upload at most three quarters of that), no Sudo. Options.Guest
// configures the executors (timeout, logger, telemetry).
//
// # Preflight
//
// Per node: hyperv.winrm (answers and runs the templates), hyperv.cluster
// (in the one cluster, under its Node.Name), hyperv.switch (Options.Switch
// exists and is External), hyperv.vlans (the switch's physical adapter
// filters no VLAN; whether the physical port trunks Options.VLANs cannot
// be seen from a node, and the row says so), hyperv.account (local
// administrator, not in Domain Admins: no group SID ending in -512),
// hyperv.role (a throw-away VM without disk made a cluster role and
// removed under the account: proves Grant-ClusterAccess). Once:
// hyperv.templates.csv and hyperv.vms.csv (the paths are on CSVs),
// hyperv.templates.files, and hyperv.templates.is per template (its
// sidecar says integration services run). An unreachable node is a
// failed row; only a context that ends is an error. Note that
// rolecheck/1 logs a VM created and deleted on the node, which a Watch
// may report as a Deleted of an unknown VM.
//
// # Errors
//
// A node that cannot be reached is Unavailable naming it; a refused
// login Unauthenticated; an untrusted certificate PermissionDenied. A
// template that fails is FailedPrecondition with its error text quoted
// (limit.Quote), or PermissionDenied for Hyper-V's and the cluster's
// access-denied texts. A VM that moved twice during an operation is
// Unavailable (try again).
//
// # As, concurrency, secrets
//
// The portable value's As reaches the driver (a **hyperv.Provider
// target). A Provider is safe for concurrent use; Provision calls with
// one key are serialized in the process, and the Notes make a key's VM
// findable by any process. The service account's password goes only to
// NTLM; guest passwords only into guest/1's standard input. Neither
// appears in errors, logs or spans (TestCanarySecrets).
package hyperv
