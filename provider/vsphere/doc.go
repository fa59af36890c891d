// Package vsphere is the VMware vSphere driver: a provider.Driver (with
// provider.GuestAccessDriver) over govmomi, for a vCenter Server. New
// returns the portable *provider.Provider in front of it, which hosts
// hold:
//
//	p, err := vsphere.New(ctx, "https://vcenter.example/sdk", "svc-managedvm@vsphere.local", guest.NewSecret(pw), &vsphere.Options{
//		RootCAs: pool, // or Thumbprint: "AB:CD:...", never Insecure in production
//		Zones:   []vsphere.ZoneConfig{{Name: "az1", Datacenters: []string{"DC1"}, Clusters: []string{"C1"}}},
//	})
//	defer p.Close()
//
// The SDK URL, the service account's user name and its password are
// required; a nil *Options means every default (the system's CA pool, one
// zone per datacenter).
//
// Options.Logger, TracerProvider, MeterProvider and ProvisionTimeout go to
// the portable value (provider.Options); the portable value validates
// every argument, bounds Provision and records the calls, so the driver
// holds protocol logic only. Its errors have no Op of their own: a
// failed Get reads "provider.Get: no VM with ID ...".
//
// # Connection
//
// New logs in once; every call reuses that one session (concurrent callers
// included). A keep-alive touches it while idle, and when vCenter answers
// NotAuthenticated (the session expired or was terminated) the driver logs
// in again, once for all waiting callers, and retries the call: vCenter
// did nothing with a request it refused as unauthenticated. Close logs
// out. Certificates are verified by default, against Options.RootCAs (or
// the system pool) or against a pinned Options.Thumbprint (SHA-256 or
// SHA-1); Options.Insecure turns verification off and must be asked for.
// A refused certificate (unknown authority, a host name it does not name,
// expired or otherwise invalid, a thumbprint that does not match) is
// errs.PermissionDenied, the code SSH's host-key mismatch has, not
// Unavailable: no request was sent, and retrying cannot help until the
// certificate or the configuration changes.
// The password is a guest.Secret: it never appears in logs or errors.
//
// # Inventory
//
// List reads every VM with one ContainerView: one call reads the view's
// VM references, then RetrievePropertiesEx calls read their properties in
// pages (Options.PageSize, default 500 VMs a page), Options.ListConcurrency
// pages at a time (default 4), asking only for the properties the VM model
// uses: name, config.annotation, summary.config, runtime.powerState,
// runtime.host, guest.guestFamily, guest.net and summary.guest (the
// summaries carry a dozen facts in two properties). N VMs cost
// 3 + ceil(N/PageSize) round trips (create view, its list, one per page,
// destroy view), not one per VM; a Provider's first call also reads the
// topology (3 more: view, one page, destroy). Measured on the simulator
// (BenchmarkListRoundTrips, TestListRoundTrips): 2,000 VMs take 10 round
// trips on the first List and 7 on later ones; the default model's 4 VMs
// plus 2,000 (a fifth page) take 11 and 8. A VM destroyed while List runs
// is left out.
//
// Get finds a VM by its instance UUID (the VM's stable ID) with the
// SearchIndex. The datacenter, cluster and zone of a VM come from a cached
// topology (datacenters, clusters, hosts, datastores, distributed port
// groups), read with one ContainerView and refreshed when an unknown host
// appears. VM.Attributes holds "datacenter", "cluster", "host" and
// "moref" (the managed object reference).
//
// # Zones and templates
//
// A zone is a set of datacenters and clusters with their shared datastores
// and distributed port groups (ZoneConfig); without Options.Zones each
// datacenter is a zone. Templates are the VMs marked as templates.
//
// # Provisioning
//
// Provision clones a template into the zone's first cluster's resource
// pool, on the zone datastore with the most free space, into the
// datacenter's VM folder, with the NIC on the named distributed port group
// (matching the VLAN if one is asked), CPU and memory overrides, and a
// fresh instance UUID. Guest customization: Customization.SpecName, or
// with UseTemplateSpec the spec named like the template (first
// "<Environment>-<template>" when Options.Environment is set, then exactly
// the template's name, the rule of the HyperCloud provider requirements
// guide that package template follows); else a spec built from the
// host name and static address (see VimCustomizationSpec); cloud-init
// user-data, meta-data and network config go to guestinfo (base64). The
// provisioning key is stored in the VM's extraConfig ("managedvm.key"):
// a repeated request finds the VM by name and key instead of failing with
// DuplicateName, and requests with one key are serialized. The clone task
// is bounded by the deadline the portable value puts on Provision's
// context: spec.Timeout, else Options.ProvisionTimeout (10 minutes by
// default). On failure the VM
// the task made, if any, is destroyed. On timeout the task is canceled and
// Provision waits (up to two minutes) for it to end: a task that was past
// the point where it could stop ends in success anyway, and its VM is
// destroyed too; the error is DeadlineExceeded (OutcomeUnknown if the task
// was still running after those two minutes). If the clone request itself
// ran out of time, whether vCenter started it is unknown: the error is
// OutcomeUnknown, and Provision again with the same key returns the VM it
// made, if any (or Destroy removes it).
//
// # Watch
//
// The cursor is the key of a vCenter event ("vc1:<key>"). Created, power
// changes and Deleted come from the event history (VmCreatedEvent,
// VmClonedEvent, VmPoweredOnEvent, VmRemovedEvent, ...), read in order
// with ReadNextEvents from an EventHistoryCollector of the stream's own
// (it holds only the events from the cursor on), so a stream resumed from
// an event's cursor replays exactly the later events with the same
// cursors. A PropertyCollector of its own watches that collector's
// latestPage (one event a page) to learn within one round trip that
// events were posted; the reads never wait behind the inventory.
//
// Other changes (name, addresses, tools, size through
// config.changeVersion) come from WaitForUpdatesEx on a ContainerView of
// the VMs, in a second PropertyCollector. Its first answer, read to the
// end of its truncated pages, is the baseline; later "modify" updates
// carry only the properties that changed and are merged into the last
// state of the VM, so a Changed event always carries the whole VM. Its
// power is the one the VM's last power event told (or the property, for a
// VM no event has told about yet). These changes are not in the event
// history: a stream resumed from a cursor starts from the VMs as they are
// then, and does not report the property changes made while no stream
// ran (a host resyncs with List after a long outage).
//
// A deletion is reported from VmRemovedEvent, or from the
// PropertyCollector's "leave" when no event comes within two seconds: the
// simulator loses some "leave" updates, and a real vCenter may trim
// events, so neither is trusted alone. A cursor older than the event
// history, a deleted VM the stream cannot name, or a stream that fell so
// far behind that its collector dropped events it had not read yet, is
// provider.ErrCursorExpired: resync with List.
//
// Latency, measured on the simulator with 2,000 running VMs, from the
// change to the record in the CMDB through enroll's Indexer (memcmdb), 20
// tries of each one after the other (so p99 is the slowest try), on a
// 2-core machine shared with other work:
//
//	                      p50      p99      (before: deletions behind the inventory's wait)
//	guest IP change       265 ms   308 ms   (461 ms, 603 ms)
//	deletion (destroy)     30 ms    59 ms   (12.3 s, 16.2 s)
//
// A second run gave 267/383 ms and 28/104 ms. An IP change costs what
// the simulator takes to re-read its 2,000 VMs for one change (about 200
// ms: it re-collects every filter for every update, where a real vCenter
// sends the change alone), so changes made while the simulator is busy
// with others wait longer; events do not wait on it. Reproduce with
//
//	MANAGEDVM_VSPHERE_LATENCY=1 go test -count=1 -run TestWatchLatencyToCMDB -v ./provider/vsphere/
//
// # Guest operations
//
// ValidateCredentials uses ValidateCredentialsInGuest (InvalidGuestLogin
// is Unauthenticated; a powered-off VM or tools not running is
// FailedPrecondition). GuestExecutor returns an *Executor: each Run makes
// a temporary directory in the guest, uploads standard input (and the
// command line when it holds bytes SOAP cannot carry), starts /bin/sh with
// stdout and stderr redirected to files there (PowerShell with
// -EncodedCommand on Windows), polls ListProcessesInGuest until the
// program ends (streaming the output files to Command.Stdout/Stderr while
// it runs), downloads the output and removes the directory. Canceling
// terminates the guest process. Uploads go to a temporary file beside the
// target, then MoveFileInGuest. Guest operations have no pipes: a program
// cannot receive input in answer to its own output, and Command.Sudo is
// Unimplemented (the command runs as the credentials' user).
//
// # Preflight
//
// Preflight reports: vsphere.vcenter (a vCenter, not a standalone ESXi);
// per zone vsphere.zone.datacenters, vsphere.zone.clusters,
// vsphere.zone.datastores (shared by every host of the zone's clusters),
// vsphere.zone.networks (distributed port groups exist) and
// vsphere.zone.vlans (VLAN-backed, a warning if not); per template the
// template package's vSphere rows (marked as a template, VMware Tools
// installed and current, a customization spec named like it, ...);
// vsphere.privileges: HasPrivilegeOnEntities for RequiredPrivileges on the
// root folder and every zone datacenter.
//
// # Errors
//
// Every error carries an errs code. vSphere faults map to codes:
// NotAuthenticated, InvalidLogin and InvalidGuestLogin are
// Unauthenticated; NoPermission PermissionDenied; ManagedObjectNotFound
// and FileNotFound NotFound; DuplicateName and AlreadyExists
// AlreadyExists; InvalidArgument InvalidArgument; InvalidPowerState,
// InvalidState and GuestOperationsUnavailable FailedPrecondition; a
// refused server certificate PermissionDenied (see Connection); a lost
// connection is Unavailable for reads and OutcomeUnknown for changes.
// FaultOf returns the vendor fault (types.BaseMethodFault) of an error.
//
// # Escape hatches
//
// As of the portable *provider.Provider reaches a **vim25.Client (the
// vendor client, on the driver's session) and a **vsphere.Provider (the
// driver: Logins, its GuestAccessDriver methods).
//
// # Testing
//
// provider/vsphere/vspheresim runs a simulated vCenter in the test's
// process (govmomi's simulator with working guest operations, scriptable
// guests and changes behind the driver's back): connect New to its URL
// with its CA pool, as the package example does.
//
// # Concurrency
//
// A Provider is safe for concurrent use; so is an Executor. A Stream is
// read by one goroutine; Close may be called from any. Closing the
// portable Provider closes its streams, then the driver, which ends every
// stream of its own (their Next then returns ErrStreamClosed) before it
// logs out; every call after Close is FailedPrecondition.
package vsphere
