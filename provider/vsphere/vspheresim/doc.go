// Package vspheresim runs a simulated vCenter in the test's process, for
// host applications that integrate managedvm's vSphere driver (and for
// managedvm's own tests, examples and quickstart). It is govmomi's
// simulator (the vcsim model, real SOAP over TLS) with its gaps filled so
// the whole guest OS services flow works against it:
//
//	sim, err := vspheresim.New(ctx, &vspheresim.Options{
//		ModelVMs:      -1, // no stock VMs
//		GuestAccounts: map[string]string{"root": "customer-secret"},
//		GuestHandler:  vspheresim.ExecutorHandler(func(vspheresim.GuestVM) *guest.Executor { return scripted }),
//	})
//	defer sim.Close()
//	refs, err := sim.CreateNamedVMs(ctx, []string{"web-01"}, vspheresim.Placement{}, func(string) *vspheresim.GuestState {
//		return &vspheresim.GuestState{ToolsRunning: true, IP: "192.168.10.11", Family: "linuxGuest"}
//	})
//	p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), &vsphere.Options{RootCAs: sim.CAs})
//
// where scripted is a memguest executor whose tables (HandleArgs, ...)
// decide what each guest command prints and how it exits.
//
// # What is simulated
//
//   - A VPX model (Options.Datacenters, Clusters, Hosts, ModelVMs) served
//     over TLS on a loopback port: Sim.URL, Sim.CAs (a pool holding the
//     server certificate, so verification stays on) and Sim.Thumbprint.
//     Only the configured accounts log in (Options.Username/Password,
//     default "svc@vsphere.local"/"svc-pass", and Options.Users).
//   - VMs and templates: CreateVMs and CreateNamedVMs create powered-on
//     VMs in parallel (the simulator is slow serially); CreateTemplate a
//     template; CreateCustomizationSpec a Linux customization spec (host
//     name from the VM name, DHCP). SetGuest sets what VMware Tools report
//     (tools state, IP, host name, OS family and name), also in
//     summary.guest as vCenter does.
//   - Changes behind the driver's back, each seen by a driver's List, Get
//     and Watch: Rename, Delete (powers off first), PowerOn, PowerOff,
//     SetIP and SetToolsRunning, all by instance UUID (the vsphere
//     driver's VM ID); new VMs appear through CreateVMs/CreateNamedVMs.
//   - Guest operations (Options.GuestAccounts or Options.GuestHandler):
//     ValidateCredentialsInGuest (a wrong password is InvalidGuestLogin,
//     tools not running GuestOperationsUnavailable, a VM off
//     InvalidPowerState), StartProgramInGuest, ListProcessesInGuest,
//     TerminateProcessInGuest, temporary files and directories, moves,
//     attribute changes, and file transfers over HTTPS. Guest paths are
//     paths on this machine (files are real files in its temporary
//     directory and wherever a client writes).
//   - Programs in guests, one of two ways. With Options.GuestHandler
//     nothing runs on this machine: the program's command line is read as
//     a POSIX shell reads the subset below, and each command goes to the
//     handler, which decides its output and exit status (GuestHandler,
//     ExecutorHandler). Without one, programs run on this machine with
//     /bin/sh -c (Unix only), with their real semantics: what a guest
//     executor's conformance suite needs, and what Options.GuestEnv (a PATH
//     of stand-in commands, say) is for.
//   - Privileges (Options.Privileges): HasPrivilegeOnEntities answers from
//     the stored roles and permissions (the stock simulator grants
//     everything); AddRole and SetRole set them up.
//   - Test controls: SetDelay adds latency per call, CountCalls counts
//     round trips, OnCall runs a function when a given method is called,
//     HoldLock keeps an object busy (a task needing it waits), WaitTasks
//     waits for every task to end. Model, Server, Client, Context and Map
//     reach govmomi's simulator for anything else.
//
// # The shell subset of scripted guests
//
// With a GuestHandler, the line "ProgramPath Arguments" is read like this
// (the vsphere driver writes
// `/bin/sh -c 'exec </tmp/d/stdin >/tmp/d/stdout 2>/tmp/d/stderr; cd /srv && export A=1 && exec id -u'`):
// words unquoted, in '...' or "..." (backslash escapes \ " $ ` and
// newline), backslash escapes outside quotes; commands separated by ";"
// and "&&"; redirections <file, >file, >>file, 2>file, 2>>file, 2>&1;
// NAME=VALUE prefixes; the built-ins exec (with only redirections it
// applies them to what follows; with a command it runs it and ends the
// line), cd and export; a program that is itself a shell (sh, bash, dash)
// given -c LINE or a script file is read the same way. Every other
// command goes to the handler, "sh -c SCRIPT" (with nothing after
// SCRIPT) as a guest.Command with Script set, others with Args. Pipes, ||, &, $ expansions, backquotes,
// unquoted globs, subshells and comments are outside the subset: the
// program exits with status 2, as sh does for a syntax error.
//
// # What is not simulated
//
//   - Windows guests: the command lines of Windows guest operations
//     (cmd.exe, PowerShell) are not read; use Linux guests.
//   - Real guest OSes: a scripted guest runs no commands and has no
//     filesystem of its own; in /bin/sh mode the "guest" is this machine,
//     so run only harmless commands (or stand-ins on Options.GuestEnv's
//     PATH).
//   - Provisioning (cloning, customization) is govmomi's simulator's own
//     behaviour: nothing boots, and guest info changes only through
//     SetGuest, SetIP and SetToolsRunning.
//   - Known and left as is: a WaitForUpdatesEx re-reads every filter of
//     its PropertyCollector for every change anywhere in the simulator
//     (a task's progress, an event posted, a VM's property): with a
//     filter over 2,000 VMs that is about 200 ms a change, so a destroy
//     (a few dozen changes) keeps such a wait busy for seconds. Watch what
//     must be prompt (an EventHistoryCollector's latestPage) from a
//     PropertyCollector of its own.
//   - Known and left as is: the simulator's own tasks write some VM
//     properties (the name at creation, for one) without the VM's lock, so
//     a -race test that collects those properties while VMs are being
//     created can report a race inside the simulator.
//
// # Fixes over the stock simulator
//
//   - CancelTask behaves as vCenter's: it records the request and the task
//     ends as it will (the stock simulator marks the task failed at once,
//     then overwrites that with success when its work completes).
//   - A client waiting for updates on a container view does not deadlock
//     the simulator while VMs in the view are created or powered on (the
//     stock simulator's property filters and views take each other's locks
//     in opposite orders, fixed upstream in govmomi #4109);
//     TestWatchBesideCreation proves it when MANAGEDVM_VCSIM_STRESS=1.
//   - A destroy waits for earlier file deletions, and destroying an event
//     collector does not race with events being posted.
//
// # Errors
//
// Errors carry errs codes: an unknown VM, role, object or task is
// NotFound; a power change to the state a VM is already in, or to a VM
// busy with a task, FailedPrecondition; a duplicate name AlreadyExists; a
// negative count InvalidArgument; other simulator failures Unknown (or
// Internal when the model cannot be built). Untrusted values in messages
// are quoted.
//
// # Concurrency
//
// New may be called from parallel tests: it builds one model at a time
// (govmomi's simulator writes package-level state while it builds one).
// A Sim is safe for concurrent use once built; SetDelay and CountCalls are
// meant to be called while no call is in flight. GuestHandlers run
// concurrently (see GuestHandler). Close ends every guest program and may
// be called more than once.
package vspheresim
