package provider

import (
	"context"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/report"
)

// Driver is what a provider driver (provider/vsphere, provider/memprovider)
// implements. Hosts do not call a Driver: they hold the
// [*Provider] that New puts in front of it, which checks the context,
// validates every argument, fills defaults, wraps errors once and records
// telemetry. A driver therefore keeps only protocol logic:
//
//   - every argument it gets is within the limits of the package
//     documentation (a VM ID is a limit.Key, a zone a limit.Name, a spec
//     passed ProvisionSpec.Validate, a cursor is at most MaxCursor bytes of
//     printable UTF-8); ctx was live when the call began;
//   - Provision's ctx carries the deadline of ProvisionSpec.Timeout (or of
//     Options.ProvisionTimeout), and opts of List is never nil;
//   - errors are *errs.Error values with an empty Op (the Provider adds the
//     operation's name) whose messages quote untrusted values (names, IDs,
//     cursors) with limit.Quote and never hold a secret;
//   - the slices it returns are fresh (the Provider copies their elements
//     in place), but their elements may share maps and slices with the
//     driver's state as long as the driver never changes those in place
//     afterwards: the Provider copies every VM, zone, template, event and
//     report before a caller sees it.
//
// The method contracts (NotFound, AlreadyExists, idempotency) are those of
// the Provider methods of the same names. A Driver must be safe for
// concurrent use. It may also implement io.Closer (Provider.Close calls it
// once), As(any) bool (Provider.As calls it) and the optional
// capabilities of this package ([GuestAccessDriver], [FlowsDriver]).
type Driver interface {
	// Inventory.
	List(ctx context.Context, opts *ListOptions) ([]VM, error)
	Get(ctx context.Context, id string) (VM, error)
	// Watch.
	Cursor(ctx context.Context) (Cursor, error)
	Watch(ctx context.Context, cursor Cursor) (DriverStream, error)
	// Lifecycle.
	Provision(ctx context.Context, spec ProvisionSpec) (VM, error)
	PowerOn(ctx context.Context, id string) error
	PowerOff(ctx context.Context, id string) error
	Destroy(ctx context.Context, id string) error
	// Discovery.
	Zones(ctx context.Context) ([]Zone, error)
	Templates(ctx context.Context, zone string) ([]Template, error)
	// Preflight.
	Preflight(ctx context.Context) (report.Report, error)
}

// DriverStream is the stream a Driver's Watch returns; the [*Stream] in
// front of it checks the context and the closed state before each Next,
// copies the events and wraps errors once. Next blocks until the next
// event, ctx ends, or the stream breaks (an error wrapping
// ErrCursorExpired when it cannot go on from where it is). Close ends the
// stream and unblocks a waiting Next, which then returns an error wrapping
// ErrStreamClosed; Close is called at most once, possibly from another
// goroutine than Next's.
type DriverStream interface {
	Next(ctx context.Context) (Event, error)
	Close() error
}

// GuestAccessDriver is the optional capability of a Driver that reaches a
// guest without a network path (vSphere guest operations over VMware
// Tools). Provider.GuestAccess finds it. vmID is a limit.Key and cred
// passed guest.Credentials.Validate when a method is called.
type GuestAccessDriver interface {
	ValidateCredentials(ctx context.Context, vmID string, cred guest.Credentials) error
	GuestExecutor(ctx context.Context, vmID string, cred guest.Credentials) (*guest.Executor, error)
}

// AdminPasswordDriver is the optional capability of a Driver whose
// provider sets Customization.AdminPassword in its own guest
// customization (provider/vcd). Provider.Provision refuses a spec that
// sets AdminPassword, with InvalidArgument, for a driver without it (or
// whose SetsAdminPassword is false), so that the password is never
// silently left unset; such a driver's guests take their passwords from
// the customization's user data.
type AdminPasswordDriver interface {
	SetsAdminPassword() bool
}
