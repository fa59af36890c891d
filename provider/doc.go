// Package provider is the contract between managedvm and the hypervisor
// managers it drives: VMware vSphere, oVirt/KVM, Microsoft Hyper-V, VMware
// vCloud Director, and the in-memory provider of package memprovider.
//
// # The VM model
//
// A [VM] is what a provider knows of one virtual machine: a stable,
// provider-unique ID (it never changes, unlike the Name), the availability
// [Zone] it lives in, its power state, its size, what the guest tools report
// ([GuestInfo]: OS family and name, host name, addresses, whether the tools
// run) and provider-specific attributes. Templates are VMs too, with
// Template set; [Discovery].Templates describes them as [Template] values
// (guest OS, tools installed) for provisioning. [VM.PrimaryIP] picks the
// address the rest of managedvm uses (the first global unicast IPv4
// address), and [VM.Clone] makes a deep copy.
//
// A [Zone] is where VMs are placed; each driver maps it onto its own
// objects (datacenters, clusters, datastores and port groups on vSphere, a
// failover cluster and its CSVs on Hyper-V, an organization VDC on vCD).
//
// # Small interfaces, one Provider
//
// A [Provider] is five small interfaces composed:
//
//   - [Inventory]: List and Get. List leaves templates out unless
//     [ListOptions].IncludeTemplates is set, and can narrow to one zone.
//   - [Watcher]: Cursor and Watch, a resumable stream of [Event] values.
//   - [Lifecycle]: Provision a VM from a template into a zone (network,
//     size, guest customization, power on), PowerOn, PowerOff, Destroy.
//   - [Discovery]: Zones and Templates.
//   - [Preflighter]: Preflight, the provider's requirements as a [Report].
//
// Code that needs only one aspect takes only that interface (an indexer
// takes an Inventory and a Watcher), so tests can hand it something small.
//
// Provision is idempotent by [ProvisionSpec].Key: repeating a request with
// the same key returns the VM the first one made, even when the two
// requests race. A different key with a name already in use is
// AlreadyExists. Drivers call [ProvisionSpec.Validate] first, so a malformed
// spec is InvalidArgument everywhere and nothing is created. PowerOn,
// PowerOff and Destroy are idempotent; destroying a VM that does not exist
// is not an error. Powering a template on or off, or destroying one through
// Lifecycle, is FailedPrecondition: templates are not managed as VMs.
//
// # Watching: cursors and resync
//
// A [Stream] from Watch delivers Created, Changed and Deleted events in the
// order the provider saw them. Every event carries the [Cursor] just after
// it: store it, and after a restart Watch(cursor) resumes with the next
// event. An empty cursor means "from now".
//
// To build a complete picture without missing a change, take the cursor
// first, then List, then Watch from that cursor:
//
//	cur, err := p.Cursor(ctx)     // 1: remember where the stream is
//	vms, err := p.List(ctx, nil)  // 2: the full picture
//	st, err := p.Watch(ctx, cur)  // 3: every change since step 1
//	for {
//		ev, err := st.Next(ctx)
//		...
//	}
//
// Changes between steps 1 and 2 are both in the listing and in the stream,
// so events must be idempotent to apply: a Created for a VM already known
// is an update, a Changed carries the whole VM as it is now (not a delta),
// and a Deleted for a VM already gone is nothing.
//
// A provider keeps a bounded history. When it cannot resume from a cursor
// (too old, malformed, from another provider, or a watcher fell too far
// behind) Watch or Stream.Next returns an error wrapping [ErrCursorExpired]
// (code FailedPrecondition). The caller then resyncs: take a new Cursor,
// List everything again, and Watch from the new cursor.
//
//	if errors.Is(err, provider.ErrCursorExpired) { /* resync */ }
//
// Stream.Next honours its context (Canceled or DeadlineExceeded), and after
// Close it returns an error wrapping [ErrStreamClosed]. Close may be called
// from another goroutine to unblock a waiting Next.
//
// # Guest access
//
// Some providers can reach inside a guest without any network path, through
// the hypervisor (vSphere guest operations over VMware Tools). Such a
// provider also implements [GuestAccess]; find it with [GuestAccessOf]:
//
//	if ga, ok := provider.GuestAccessOf(p); ok {
//		err := ga.ValidateCredentials(ctx, vmID, cred)
//	}
//
// ValidateCredentials reports a refused user name or password as
// Unauthenticated and guest tools that are not running (or a powered-off VM)
// as FailedPrecondition. GuestExecutor returns a [guest.Executor] that runs
// commands in the guest as the credentials' user.
//
// # Preflight reports
//
// Preflight checks what a provider needs (in the terms of the HyperCloud
// provider requirements: zones, shared storage, networks, templates, guest
// tools, the service account's privileges) and returns a [Report]: one
// [Check] row per requirement, with a status (pass, warn, fail), what was
// found, and a fix for every row that does not pass. [Report.Status] is the
// worst row, [Report.Failures] and [Report.Warnings] pick rows out, and
// [Report.String] renders one line per row for an operator. Preflight
// returns an error only when it could not check at all; a failed
// requirement is a row, not an error.
//
// # Errors
//
// Every error carries an [errs.Code]; check it with errs.CodeOf or
// errors.Is(err, errs.NotFound):
//
//   - InvalidArgument: a malformed request (see [ProvisionSpec.Validate]).
//   - NotFound: an unknown VM, template or zone. Templates and List with a
//     zone that does not exist are NotFound too, not an empty list.
//   - AlreadyExists: a VM name taken by another VM.
//   - FailedPrecondition: the object is not in a state for the call
//     (powering a template on, guest tools not running); also
//     [ErrCursorExpired] and [ErrStreamClosed].
//   - Unauthenticated: guest credentials refused.
//   - Canceled, DeadlineExceeded: the context ended; a driver checks its
//     context before it changes anything.
//   - OutcomeUnknown: a request was sent and the answer lost; the change may
//     have happened. Reconcile (Get, List) rather than blindly retry.
//   - Unavailable: the provider could not be reached and surely did nothing.
//
// # Concurrency
//
// Providers are safe for concurrent use by many goroutines, including
// concurrent Provision calls with the same key (one VM results) and many
// concurrent watchers. Values returned (VMs, zones, templates, events) are
// copies: changing them changes nothing in the provider. A Stream is meant
// for one consumer goroutine; Close may be called from any goroutine.
//
// # Testing
//
// Package memprovider is a complete in-memory Provider (with guest access)
// for host applications' tests. Package providertest is the conformance
// suite every driver, memprovider included, passes.
package provider
