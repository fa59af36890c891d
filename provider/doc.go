// Package provider is the contract between managedvm and the hypervisor
// managers it drives. Five drivers exist: VMware vSphere
// (provider/vsphere), oVirt/KVM (provider/ovirt), VMware Cloud Director
// (provider/vcd), Microsoft Hyper-V failover clusters (provider/hyperv)
// and the in-memory provider of package memprovider; the README's support
// table says what each driver does.
//
// # The VM model
//
// A [VM] is what a provider knows of one virtual machine: a stable,
// provider-unique ID (it never changes, unlike the Name), the availability
// [Zone] it lives in, its power state, its size, what the guest tools report
// ([GuestInfo]: OS family and name, host name, addresses, whether the tools
// run) and provider-specific attributes. Templates are VMs too, with
// Template set; [Provider.Templates] describes them as [Template] values
// (guest OS, tools installed) for provisioning. [VM.PrimaryIP] picks the
// address the rest of managedvm uses (the first global unicast IPv4
// address), and [VM.Clone] makes a deep copy.
//
// A [Zone] is where VMs are placed; each driver maps it onto its own
// objects (datacenters, clusters, datastores and port groups on vSphere).
//
// # The portable Provider over a Driver
//
// Callers hold a [*Provider]: the portable type, the same for every
// hypervisor. Drivers implement the small [Driver] interface (inventory,
// watch, lifecycle, discovery, preflight) and [New] puts a Provider in
// front of one; driver packages' constructors do it for the host
// (memprovider.New(...).Provider(), vsphere.New(ctx, url, user, password, opts)). Every method
// of the Provider records one span around the whole call and, in this
// order: returns FailedPrecondition after Close; checks the context;
// validates every argument against the limits below (InvalidArgument, and
// nothing reaches the driver); fills defaults (the provisioning deadline);
// calls the driver; copies what the driver returned; wraps the driver's
// error once with the operation's name ("provider.Get: VM \"vm-9\" not
// found"), counts the call and logs it. Rejected calls are counted and
// traced like the others. So a driver never repeats those steps, and every driver accepts and
// refuses exactly the same input.
//
//	Provider methods     List Get Cursor Watch Provision PowerOn PowerOff
//	                     Destroy Zones Templates Preflight GuestAccess As Close
//	Stream methods       Next Close
//	GuestAccess methods  ValidateCredentials GuestExecutor
//
// List leaves templates out unless [ListOptions].IncludeTemplates is set,
// and can narrow to one zone.
//
// // Provision is idempotent by [ProvisionSpec].Key: repeating a request with
// the same key returns the VM the first one made, even when the two
// requests race. A different key with a name already in use is
// AlreadyExists. The Provider calls [ProvisionSpec.Validate] first, so a malformed
// spec is InvalidArgument everywhere and nothing is created. A Provision
// is bounded by ProvisionSpec.Timeout, else by Options.ProvisionTimeout
// (DefaultProvisionTimeout, 10 minutes). PowerOn,
// PowerOff and Destroy are idempotent; destroying a VM that does not exist
// is not an error. Powering a template on or off, or destroying one through
// Lifecycle, is FailedPrecondition: templates are not managed as VMs.
//
// # Watching: cursors and resync
//
// A [*Stream] from Watch delivers Created, Changed and Deleted events in the
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
// from another goroutine to unblock a waiting Next; Provider.Close closes
// every open stream of the Provider.
//
// # Guest access
//
// Some providers can reach inside a guest without any network path, through
// the hypervisor (vSphere guest operations over VMware Tools). Their
// driver also implements [GuestAccessDriver]; the Provider detects it and
// surfaces it as a [*GuestAccess], validated and recorded like its own
// calls:
//
//	if ga, ok := p.GuestAccess(); ok {
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
// Preflight checks what a provider needs (in the terms of a provider
// requirements guide for multi-provider provisioning, the one package
// template follows: zones, shared storage, networks, templates, guest
// tools, the service account's privileges) and returns a [Report]: one
// [Check] row per requirement, with a status (pass, warn, fail), what was
// found, and a fix for every row that does not pass. [Report.Status] is the
// worst row, [Report.Failures] and [Report.Warnings] pick rows out, and
// [Report.String] renders one line per row for an operator. Preflight
// returns an error only when it could not check at all; a failed
// requirement is a row, not an error.
//
// # Limits
//
// The Provider enforces these limits for every driver (InvalidArgument,
// nothing changed, the value quoted with at most 64 bytes in the
// message); the limit classes are those of internal/limit:
//
//	VM id (Get, PowerOn, PowerOff, Destroy,      Key: 1-255 bytes of UTF-8, no
//	  ValidateCredentials, GuestExecutor)          control characters
//	ProvisionSpec.Key, ProvisionSpec.Template    Key
//	  (an ID or a name)
//	ProvisionSpec.Name, .Zone, .Network.Name,    Name: 1-128 bytes, as Key
//	  .Customization.SpecName; ListOptions.Zone;
//	  Templates' zone
//	Customization.Hostname                       RFC 1123 host name, at most
//	                                               MaxHostname (253) bytes
//	Customization.UserData, .MetaData,           at most MaxCustomizationData
//	  .NetworkConfig                               (64 KiB) each; never quoted
//	Customization.AdminPassword                  printable UTF-8, at most
//	                                               MaxAdminPassword (128)
//	                                               bytes; never quoted
//	Cursor (Watch)                               0-MaxCursor (4096) bytes,
//	                                               printable UTF-8 ("" = now)
//	guest user name                              Key, then guest.Credentials.Validate
//
// Optional fields (Network.Name, SpecName, Hostname, ListOptions.Zone)
// may be empty. Beside those, ProvisionSpec.Validate refuses blank
// required fields, negative sizes and timeouts, VLANs outside 0-4094 and
// malformed static addresses. A cursor within the limits that the
// provider cannot resume from is ErrCursorExpired, not InvalidArgument.
//
// # Errors
//
// Every error carries an [errs.Code]; check it with errs.CodeOf or
// errors.Is(err, errs.NotFound). Its message starts with the operation
// ("provider.Provision: ...") and quotes untrusted values with at most 64
// bytes of each:
//
//   - InvalidArgument: a malformed request (see Limits and
//     [ProvisionSpec.Validate]).
//   - NotFound: an unknown VM, template or zone. Templates and List with a
//     zone that does not exist are NotFound too, not an empty list.
//   - AlreadyExists: a VM name taken by another VM.
//   - FailedPrecondition: the object is not in a state for the call
//     (powering a template on, guest tools not running); a call after
//     Close; also [ErrCursorExpired] and [ErrStreamClosed].
//   - Unauthenticated: guest credentials refused.
//   - Canceled, DeadlineExceeded: the context ended; the Provider checks
//     the context before it calls the driver.
//   - OutcomeUnknown: a request was sent and the answer lost; the change may
//     have happened. Reconcile (Get, List) rather than blindly retry.
//   - Unavailable: the provider could not be reached and surely did nothing.
//
// # Telemetry
//
// With Options.TracerProvider and Options.MeterProvider unset nothing is
// recorded. Otherwise (instrumentation scope
// github.com/managedvm/managedvm/provider):
//
//	span per call           provider.List, provider.Get, provider.Cursor,
//	                        provider.Watch, provider.Provision, provider.PowerOn,
//	                        provider.PowerOff, provider.Destroy, provider.Zones,
//	                        provider.Templates, provider.Preflight,
//	                        provider.ValidateCredentials, provider.GuestExecutor,
//	                        provider.Close; attribute driver ("memprovider",
//	                        "vsphere"); on failure status Error and
//	                        error.type = the errs code
//	managedvm.calls          counter, attributes op, code, driver
//	managedvm.errors         counter of failed calls, attributes op, code, driver
//	managedvm.call.duration  histogram (s), attributes op, code, driver
//	managedvm.provider.events  counter of events Stream.Next delivered,
//	                        attributes kind (created, changed, deleted), driver
//
// Stream.Next records no span (a stream may deliver millions of events).
// Options.Logger gets one Debug record per call (keys op, code, err,
// duration). For an indexer-lag gauge, [Provider.WatchStats] gives the
// number of events its streams delivered, the Time of the
// last one (the provider's clock) and when it was delivered (this
// process's clock): LastDelivered - LastEventTime is how old the newest
// event was when it reached the caller, now - LastDelivered how long the
// stream has been quiet. WatchStats is safe to call from a metric
// callback.
//
// # Writing a driver
//
// A driver (provider/vsphere and provider/memprovider follow this) is a type
// that implements [Driver], and optionally [GuestAccessDriver], io.Closer
// and As(any) bool; its package's constructor returns provider.New(d,
// opts) so host code keeps one line. The driver:
//
//   - keeps protocol logic only: no `const op`, no context check on entry,
//     no ProvisionSpec.Validate, no closed check, no default timeout, no
//     copy of what it returns, no per-call log line (a retry, a reconnect,
//     a session re-established may be logged); every argument it gets is
//     within the limits above and ctx was live on entry;
//   - returns errors made with errs.New(code, "", msg) or
//     errs.Errorf(code, "", ...) — an empty Op: the Provider adds the
//     operation — and quotes every untrusted value (names, IDs, cursors
//     from the caller or from the hypervisor) with limit.Quote; it never
//     puts a secret in an error;
//   - maps its vendor's faults onto the errs codes (a request that may
//     have been carried out and whose answer was lost is OutcomeUnknown,
//     never Unavailable), and a cursor it cannot resume from onto an
//     error wrapping ErrCursorExpired;
//   - returns fresh slices, whose elements may share maps and slices with
//     its own state as long as it never changes those in place afterwards
//     (the Provider copies);
//   - honours ctx wherever it waits (a stream's Next, a task), and
//     returns ErrStreamClosed from a Next that Close unblocked;
//   - takes the telemetry options (Logger, TracerProvider, MeterProvider,
//     ProvisionTimeout) in its own Options and hands them to New;
//   - runs package providertest from its tests: the suite runs the driver
//     through New and checks the contract, the limits and the telemetry.
//
// # Escape hatches
//
// [Provider.As] reaches the driver: its As method's targets (vendor
// clients, listed in each driver's package documentation), else the driver
// itself (var d *vsphere.Provider; p.As(&d)). What As hands out bypasses
// the Provider's validation and telemetry.
//
// # Concurrency
//
// A Provider is safe for concurrent use by many goroutines, including
// concurrent Provision calls with the same key (one VM results) and many
// concurrent watchers; so must every Driver be. Values returned (VMs,
// zones, templates, events, report rows) are copies: changing them changes
// nothing in the provider. A Stream is meant for one consumer goroutine;
// Close may be called from any goroutine.
//
// # Testing
//
// Package memprovider is a complete in-memory driver (with guest access)
// for host applications' tests. Package providertest is the conformance
// suite every driver, memprovider included, passes.
package provider
