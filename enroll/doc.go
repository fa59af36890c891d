// Package enroll is the orchestrator of managedvm: it composes a Provider,
// guest executors, IPAM, a Firewall and a CMDB into the Guest OS Services
// flow, and undoes it cleanly on failure, unenrollment or VM deletion.
//
// # Enrollment
//
// [Orchestrator.Enroll] runs these steps for one VM, each with an action and
// a compensation, both idempotent:
//
//  1. eligibility: the VM exists, is powered on, is not a template, is not
//     already enrolled; its OS family is supported by the service profile;
//     it reports a local IP. The CMDB record goes to "enrolling".
//  2. credentials: the customer's OS credentials are validated in the guest
//     through the provider's guest access (vSphere guest operations, which
//     need VMware Tools running). A wrong password is Unauthenticated with a
//     message the customer can act on.
//  3. requirements: the OS requirements of the profile are checked in the
//     guest (distribution and version, free disk, commands, the profile's
//     own checks); every failure is reported at once in a
//     *RequirementsError.
//  4. ipam: a public IP is allocated from the zone's pool, keyed by the VM,
//     with the local IP recorded (the NAT relation). The owner of the
//     allocation, and of the NAT rule of step 5, is the VM's CMDB key as a
//     string: the provider name (the key of Config.Providers), a slash and
//     the VM id, "vcenter-1/vm-42" ([cmdb.Key.String]), at most
//     [natfw.MaxOwner] (120) bytes: a request whose key is longer is
//     InvalidArgument before anything is changed. A host that looks up or
//     repairs what the orchestrator holds uses the same key:
//     ipam.Allocation.Owner and natfw.Rule.Owner.
//  5. firewall: the 1:1 NAT public -> local is ensured, with the inbound
//     ports of the OS family allowed only from the management sources.
//  6. configure: the Configurator makes the OS changes through an executor
//     reached over the network (Config.Dialer, through the public IP) or,
//     without a Dialer, through the guest access.
//  7. cmdb: the record is marked enrolled with the public IP and ports.
//
// When the provider has no guest access, credentials and requirements are
// checked over the network (Config.Dialer) right after the NAT exists, and
// a rejection compensates everything.
//
// On failure the compensations run in reverse, on a context that survives
// the caller's cancellation, with their own timeout
// (Options.CompensationTimeout); their errors are joined to the cause. The CMDB
// record ends "failed" with the reason and the failed step, never
// "enrolling". A step failing with Unavailable or OutcomeUnknown is tried
// again first (Options.Retries): every step is keyed by the VM, so trying
// again is how an unknown outcome is reconciled.
//
// # Unenrollment and cleanup
//
// [Orchestrator.Unenroll] undoes the OS configuration (when the
// Configurator is also an Unconfigurer and credentials are given), removes
// the NAT, releases the public IP and marks the record available.
// [Orchestrator.Cleanup] does the same for a VM that no longer exists,
// without the guest, and retires the record. Both are idempotent.
//
// # Journal, crash-resume and exclusivity
//
// Every operation is journaled to the host's [Store] after every step. The
// journal holds the request without its secrets (the user name only), the
// steps reached and the resources acquired. [Orchestrator.Resume] finishes
// or compensates every open journal nobody works on any more: an instance
// holds a lease on each journal it works on, renewed while it works
// (Options.LeaseTTL), and Resume takes over journals whose lease expired,
// and at once those an earlier process under the same instance name
// (Options.Instance) left behind. A journal under a live lease is never
// taken over from the run working on it, by another replica or by the same
// orchestrator's own Resume: one step of one VM never runs twice at once.
// Resuming a step that needs credentials asks Config.Credentials, since
// they were never stored; without them the enrollment is rolled back. A host
// calls Resume at start-up, and each replica runs
// [Orchestrator.ResumeEvery] so that a crashed replica's work is picked up
// once its leases expire.
//
// The Store keeps at most one open journal per VM, so two requests for the
// same VM, in one process or in many sharing a Store, never both proceed:
// the second gets an AlreadyExists error wrapping [ErrVMBusy]. A request's
// Key is its idempotency key: repeating a finished request returns its
// result.
//
// # The Store and its drivers
//
// [Store] is a portable type over a small [StoreDriver] (the Go CDK shape):
// the Store checks the context and its closed state, validates every
// journal, ID, VM key and cursor, wraps driver errors once with the
// operation's name ("enroll.Store.GetJournal: ..."), copies what it
// returns, and records telemetry; a driver does only the persistence.
// [NewMemoryStore] is the in-memory Store (NewMemoryStoreDriver its bare
// driver, to put behind [NewStore] with options); enroll/pgstore the
// PostgreSQL one; enroll/storetest the conformance suite every driver
// passes through the Store. To write a driver, implement StoreDriver (and
// optionally [JournalLister]) with errs-coded errors whose Op is empty,
// and run storetest.Run on it.
//
// The limits, identical for every driver (a value beyond them is
// InvalidArgument, its message quoting at most 64 bytes of it, and nothing
// is written):
//
//	journal ID, Holder, Incarnation     1-255 bytes of printable UTF-8 (Holder, Incarnation may be empty)
//	VM key                              provider 1-128 bytes, VM ID 1-255 bytes, printable
//	Profile, FailedStep, step names     at most 128 bytes, printable
//	Username                            at most MaxUsername (256) bytes, printable
//	Error, step errors                  at most MaxJournalError (1024) bytes, no NUL (the orchestrator cuts longer ones)
//	Steps, Resources.Ports              at most MaxJournalSteps / MaxJournalPorts (64) entries
//	Op, Phase, Access, step states      one of the package's constants
//	provider name (cursors)             1-128 bytes, printable; cursor at most MaxCursor (4096) bytes
//
// # The Indexer
//
// [Orchestrator.Indexer] keeps the CMDB in step with the providers: an
// initial sync (every VM recorded, records of vanished VMs cleaned up and
// retired), then a watch of each provider's events, one goroutine per
// provider, with the cursor kept in the Store.
//
// # Reaching guests
//
// The host decides how a VM is reached over the network by providing a
// guest.Dialer (Config.Dialer; ssh.Dialer and winrm.Dialer are ready-made):
// it receives the guest.Target (the VM's key, name, public and local IP, OS
// family, ports, profile) and the credentials, and returns a
// *guest.Executor (an SSH or WinRM one, a memguest in tests). The OS changes
// are a guest.Configurator (Config.Configurator: a tasks.Set, an
// ansible.Runner, or the host's own), undone on unenrollment when it is
// also a guest.Unconfigurer. These types live in package guest, not here,
// so that drivers never import the orchestrator that composes them.
//
// The requirements step runs guest.CheckRequirements with the profile's
// guest.Requirements (Policy.Requirements, per OS family) and fails with a
// *RequirementsError, which carries the whole report.Report, when a row
// failed. Credentials come with each Request; they are used and
// dropped, never stored, logged or put in errors or events.
//
// # Observing progress
//
// Every step's start, success, failure, retry and compensation is an [Event]
// delivered to Options.Observer (for progress display, audit and
// notifications); without one, events are logged through Options.Logger
// ([LogObserver]); without a logger they are dropped.
//
// # Telemetry
//
// With Options.TracerProvider set, every Enroll, Unenroll, Cleanup and
// Resume is a span ("enroll.Enroll", ...; attributes instance and vm), each
// step a child span "enroll.step.<name>" and each compensation
// "enroll.undo.<name>" (attributes journal and op), each event the Indexer
// applies "enroll.Indexer.apply" (attributes provider and event); a failed
// span has status Error and attribute error.type, the errs code. Give the
// drivers the same TracerProvider and their spans (ipam.Allocate, ...)
// nest below the steps. With Options.MeterProvider set, each of those spans
// also counts managedvm.calls and managedvm.errors (attributes op, code)
// and records managedvm.call.duration (seconds), and these gauges are
// observed at each collection:
//
//	managedvm.enroll.runs.active     runs of this orchestrator now (attribute instance)
//	managedvm.enroll.journals.open   open journals in the Store, every replica's (attributes op, phase)
//	managedvm.enroll.indexer.lag     seconds from a provider event to its CMDB write, last event (attribute provider)
//	managedvm.enroll.pool.used       allocated addresses per IPAM pool (attribute pool)
//	managedvm.enroll.pool.size       allocatable addresses per IPAM pool (attribute pool)
//
// The journal and pool gauges read the Store and the IPAM at each
// collection (bounded by 5 s). [Orchestrator.Close] stops them. Without the
// providers nothing is recorded and nothing is spent on it. The Store has
// the same per-call spans and metrics (StoreOptions), named
// "enroll.Store.<method>".
//
// # Errors
//
// Every error carries an errs code (errs.CodeOf, errors.Is(err,
// errs.NotFound)); the codes a host must handle, and where it meets them:
//
//   - InvalidArgument: a malformed request or Config (New, Enroll, ...): a
//     Key, provider name or VM id beyond the limits, a VM key longer than
//     natfw.MaxOwner as "provider/vmid", or an unknown service profile
//     (Request.Profile not in Config.Profiles). Nothing was changed.
//   - NotFound: an unknown provider (not in Config.Providers) or VM.
//   - FailedPrecondition: an ineligible VM (powered off, a template, already
//     enrolled, no local IP, an OS family the profile does not serve) or
//     failed requirements (a *RequirementsError with the whole report).
//   - Unauthenticated: the guest refused the customer's credentials; the
//     message says what to check. Everything was rolled back.
//   - PermissionDenied: a peer identity this side refused, or a privilege
//     the service account lacks. A vCenter, WinRM or PostgreSQL server
//     certificate that TLS verification refuses, an SSH host key that the
//     host key policy refuses (*ssh.HostKeyError), a missing vCenter
//     privilege, sudo refused in the guest. Retrying cannot help: fix the
//     trust configuration (CA, thumbprint, known_hosts) or the account.
//   - AlreadyExists: the VM is busy with another operation (wrapping
//     [ErrVMBusy]). (A Key reused for another operation or VM is
//     InvalidArgument.)
//   - ResourceExhausted: the IPAM pool has no free address.
//   - Unavailable, OutcomeUnknown: a driver could not be reached, or did not
//     answer a change, after Options.Retries tries; the step is keyed by the
//     VM, so a later Enroll or Resume reconciles it.
//   - Canceled, DeadlineExceeded: the caller's context ended; the
//     compensations still ran (on their own context).
//
// A failed Enroll returns its cause with the compensations' errors joined
// to it (errs.Join): errs.CodeOf gives the cause's code, unless a
// compensation's outcome is unknown (then OutcomeUnknown: something may be
// left behind, and Resume or a repeated request reconciles it).
//
// # Concurrency
//
// An Orchestrator is safe for concurrent use; [Orchestrator.EnrollAll] runs
// many enrollments with bounded concurrency.
package enroll
