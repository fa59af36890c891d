// Package vspheresim builds simulated vCenters for tests and examples on top of
// govmomi's simulator, and fills its gaps (see TESTING.md):
//
//   - New starts a VPX model over TLS with real login checks (only the
//     configured accounts), its certificate's thumbprint and a CA pool.
//   - CreateVMs and CreateNamedVMs create powered-on VMs in parallel
//     (the simulator is slow serially), SetGuest sets what VMware Tools
//     report (tools running, IP, host name, OS), CreateTemplate and
//     CreateCustomizationSpec prepare provisioning, Rename and Delete
//     change the inventory behind a driver's back.
//   - GuestAccounts turns guest operations on: ValidateCredentialsInGuest,
//     StartProgramInGuest / ListProcessesInGuest / TerminateProcessInGuest
//     (programs run on this machine with /bin/sh, in their own process
//     group), temporary files and directories, moves, and file transfers
//     served over HTTP. Commands have their real semantics, so a guest
//     executor can pass the guest conformance suite.
//   - Privileges makes HasPrivilegeOnEntities compute its answer from the
//     stored roles and permissions (the stock simulator grants everything);
//     AddRole and SetRole set them up.
//   - SetDelay adds latency per call, CountCalls counts round trips,
//     OnCall runs a function when a given method is called, HoldLock keeps
//     an object busy (a task needing it waits), WaitTasks waits for every
//     task to end.
//   - CancelTask behaves as vCenter's: it records the request and the task
//     ends as it will (the stock simulator marks the task failed at once,
//     then overwrites that with success when its work completes).
//   - A client waiting for updates on a container view does not deadlock
//     the simulator while VMs in the view are created or powered on (the
//     stock simulator's property filters and views take each other's locks
//     in opposite orders, fixed upstream in govmomi #4109);
//     TestWatchBesideCreation proves it when MANAGEDVM_VCSIM_STRESS=1.
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
// # Concurrency
//
// A Sim is safe for concurrent use once built; SetDelay and CountCalls are
// meant to be called while no call is in flight.
package vspheresim
