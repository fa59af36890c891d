// Package memprovider is an in-memory provider driver: a complete
// provider.Driver, with guest access (provider.GuestAccessDriver), for
// host applications' tests and for examples. It passes the providertest
// conformance suite like every other driver.
//
// # The driver and its portable value
//
// New returns the *Provider: the driver and the control surface that
// sets up its world. Its method Provider returns the portable
// *provider.Provider in front of it, made once by New with the
// Options' Logger, TracerProvider, MeterProvider and ProvisionTimeout:
// that is the value to hand to the code under test (enroll.Config's
// Providers, an indexer). The portable value validates, traces and copies
// as for every driver; its As reaches the driver (a
// **memprovider.Provider target). The driver's own methods (List,
// Provision, ...) expect the arguments the portable value has checked:
// call them through Provider().
//
// # The world
//
// A new Provider is empty. The host sets up its world with exported
// helpers, which act "outside managedvm" as an operator in vCenter would,
// and emit the same events a real provider would show:
//
//	hv := memprovider.New(nil)
//	hv.AddZone(provider.Zone{Name: "zone-a", Networks: []string{"vlan-100"}})
//	tmpl, _ := hv.AddTemplate(provider.Template{Zone: "zone-a", Name: "debian-12",
//		Family: guest.Linux, OSName: "Debian GNU/Linux 12 (bookworm)", ToolsInstalled: true})
//	hv.SetGuestAccount(tmpl.ID, "admin", "s3cret")  // every clone has the account
//	vm, _ := hv.AddVM(provider.VM{Name: "legacy-db", Zone: "zone-a"})
//	p := hv.Provider()                             // what the code under test holds
//
// AddZone, AddTemplate and AddVM create; UpdateVM changes any field but the
// ID and the Template flag (Changed event); RemoveVM deletes (Deleted);
// SetGuestIPs and SetToolsRunning are shorthands for UpdateVM. IDs are
// assigned when empty ("vm-N", "template-N") and never reused. Names and
// IDs given to the helpers keep the provider package's limits
// (limit.Name, limit.Key), so the world holds only what a real provider
// could.
//
// # Provisioning
//
// Provision (the portable value has validated the spec) finds the zone, the template in that zone (by ID, else by name) and, when
// the zone lists networks, the network. VM names are unique per zone among
// provisioned VMs and templates. The new VM copies the template's size
// (unless the spec overrides it), guest OS, tools version and status, guest
// accounts and guest handler; its host name is Customization.Hostname or
// the VM name; a static customization sets its address; Attributes record
// "template", "network" and "vlan". ProvisionSpecOf returns the spec a VM
// was made with, customization included, so tests can check what reached
// the provider. A repeated key returns the VM as it is now; the key is
// forgotten when its VM is destroyed.
//
// PowerOn starts the guest tools (Guest.ToolsRunning) when they are
// installed: for VMs provisioned from a template with ToolsInstalled, and
// for VMs added with Guest.ToolsRunning or a Guest.ToolsVersion. PowerOff
// stops them. Provision with PowerOn emits Created then Changed; no-op
// power calls emit nothing; Destroy emits Deleted.
//
// # Events
//
// Every change emits an event into a bounded history (Options.HistorySize,
// DefaultHistorySize by default). A cursor is the number of events so far,
// as a decimal string; Watch replays the events after it, then waits for
// new ones. Any number of streams may watch at once. A cursor that is
// malformed, ahead of the newest event, or older than the history, and a
// stream that falls behind the history, get an error wrapping
// provider.ErrCursorExpired.
//
// # Guest access
//
// Provider implements provider.GuestAccessDriver (reach it with
// hv.Provider().GuestAccess()). Guest accounts are set per VM
// (SetGuestAccount, inherited by clones of a template). ValidateCredentials
// and GuestExecutor need the VM powered on with its tools running
// (FailedPrecondition, "VMware Tools are not running in the guest ...")
// and a matching user and password (Unauthenticated otherwise; the error
// names the user, never the password). Only password credentials work, as
// with vSphere guest operations.
//
// Commands run through a GuestExecutor go to a GuestHandler: the VM's own
// (SetGuestHandler), else Options.GuestHandler, else DefaultGuestHandler,
// which answers guest.DetectFacts from the VM's guest info and exits 127
// for anything else. A Result with a non-zero exit code becomes a
// *guest.ExitError. Uploads are kept per VM and read back with GuestFile.
//
// # Preflight
//
// Preflight computes rows from the state (a zone exists; each zone lists a
// network and has a template; each template has its guest tools) and
// appends the scripted rows of Options.PreflightChecks or
// SetPreflightChecks, so a test can stage any finding.
//
// # Errors
//
// Errors carry errs codes as the provider package documents: NotFound for
// unknown VMs, templates, zones and networks; AlreadyExists for taken
// names and IDs; InvalidArgument for malformed specs and helper arguments;
// FailedPrecondition for templates in lifecycle calls, guests that cannot
// be reached, and expired cursors; Unauthenticated for refused guest
// credentials; Canceled or DeadlineExceeded when the context has ended, in
// which case nothing changed (the portable value checks). Messages quote
// names and IDs with limit.Quote.
//
// # Concurrency
//
// A Provider is safe for concurrent use; one mutex guards its state, so
// every call is atomic (concurrent Provisions with one key make one VM).
// Every value the portable value returns is a copy (the driver hands out
// its stored values, which it never changes in place). Guest handlers run
// outside the lock and may be called concurrently.
package memprovider
