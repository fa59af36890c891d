// Package providertest is the conformance suite for provider.Driver
// implementations. Every driver (provider/vsphere and the in-memory
// memprovider today) runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		providertest.Run(t, providertest.HarnessFunc(func(t *testing.T) (provider.Driver, providertest.Fixture) {
//			d := newDriverAgainstSimulator(t)
//			return d, providertest.Fixture{Zone: "zone-a", Template: "debian-12"}
//		}))
//	}
//
// The suite always runs the driver through provider.New, as hosts do, so
// it checks the driver and the portable type together. A driver whose
// constructor returns the portable *provider.Provider hands the suite the
// driver behind it (p.As(&d)). The [Harness] builds the provider's world; the [Fixture] tells the suite
// which zone and template to provision from and, optionally, a second zone,
// a network, a VM and credentials for the guest-access cases, and hooks
// that change a VM behind the provider's back. Cases that need something
// the fixture does not give are skipped with a message saying what is
// missing.
//
// # Cases
//
// Each case is a subtest named Group/Case, so one can be run alone with
// go test -run 'Conformance/Watch/Resume':
//
//   - Discovery: Zones lists the fixture zones (once each); Templates lists
//     the fixture template in its zone, only that zone's templates for a
//     zone, all of them for ""; an unknown zone is NotFound.
//   - Inventory: List leaves templates out unless IncludeTemplates, and
//     Get of a template says Template; Get of an unknown ID and List of an
//     unknown zone are NotFound; changing returned VMs changes nothing;
//     canceled contexts are Canceled.
//   - Provision: the happy path (name, zone, not a template, off unless
//     PowerOn, in List once and in its zone only); PowerOn; size overrides;
//     template by ID and by name; idempotent by key; a taken name is
//     AlreadyExists and does not claim the key; each malformed spec
//     (no key, name, template or zone; negative CPUs, memory or timeout; bad
//     VLAN, hostname or static address) is InvalidArgument; unknown
//     template or zone is NotFound; a canceled context is Canceled. Every
//     rejected call leaves the inventory unchanged.
//   - Power: on/off idempotent and reflected by Get; unknown VM NotFound; a
//     template FailedPrecondition; canceled contexts change nothing.
//   - Destroy: destroys a running VM, Get then NotFound, again nil, a VM
//     that never existed nil, the key is free again; a template
//     FailedPrecondition; a canceled context changes nothing.
//   - Watch: Created, Changed (on), Changed (off), Deleted in order;
//     resuming from the Created event's cursor replays exactly the later
//     events; a cursor taken before List delivers what List already showed;
//     an empty cursor means from now; bogus cursors wrap ErrCursorExpired
//     (FailedPrecondition); Next honours a canceled context and a deadline;
//     Close unblocks Next with ErrStreamClosed; two watchers both see an
//     event; out-of-band renames and deletions (with the fixture's hooks).
//   - Concurrency: Fixture.Parallelism (32) goroutines provisioning distinct
//     VMs while others List: every VM exists exactly once; the same number
//     provisioning with one key: one VM, one ID.
//   - Preflight: a report with rows that have an ID, a name, a valid status
//     and a fix for every row that does not pass; a canceled context.
//   - GuestAccess (drivers implementing provider.GuestAccessDriver, with
//     Fixture.GuestVM): good credentials pass; a wrong password and an
//     unknown user are Unauthenticated with no password in the error;
//     credentials without a user or secret are InvalidArgument; an unknown
//     VM NotFound; a powered-off VM FailedPrecondition; an executor has the
//     VM's family and refuses commands after Close; an executor with a
//     wrong password fails with Unauthenticated (at creation or first Run).
//   - Limits: every limited value (VM ids of Get, PowerOn, PowerOff,
//     Destroy and guest access; List's and Templates' zone; every string
//     field of a ProvisionSpec, the cloud-init documents, Watch's cursor,
//     the guest user name) with the empty value (when required), its
//     class's maximum plus one, a NUL, a newline, invalid UTF-8 and 16 kB:
//     InvalidArgument, nothing changed, a message of at most 300 bytes
//     without control characters (and without the documents); the longest
//     valid value reaches the driver (NotFound, or ErrCursorExpired for a
//     cursor).
//   - Close: after the Provider's Close, its streams return
//     ErrStreamClosed and every method FailedPrecondition; Close twice is
//     fine. (The suite hides the driver's own Close: harnesses may share
//     a driver.)
//   - Telemetry: with an in-memory TracerProvider and MeterProvider, one
//     span per call with error.type on failures, managedvm.calls and
//     managedvm.errors by op and code, no span per Stream.Next but
//     managedvm.provider.events by kind, and WatchStats.
//
// # Errors
//
// Every case asserts the error code (testkit.WantCode / MustCode), never
// only that an error happened, and checks that a rejected call changed
// nothing.
//
// # Concurrency
//
// Cases run one after another (the provider may be a shared, real
// system); the concurrency cases start their own goroutines. VMs the
// suite makes are named "ct<random>-<n>-<label>" and destroyed in
// t.Cleanup.
package providertest
