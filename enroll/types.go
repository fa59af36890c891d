package enroll

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// Request asks for one VM's enrollment.
type Request struct {
	// Key is the idempotency key: repeating a request with the key of a
	// finished one returns that result. Empty means a fresh random key.
	Key string
	// Provider names the provider (a key of Config.Providers); VMID is the
	// VM's ID in it.
	Provider string
	VMID     string
	// Credentials are the guest OS account the customer gives. They are
	// used, never stored.
	Credentials guest.Credentials
	// Profile names the service profile (a key of Config.Profiles); empty
	// means Config.Policy.
	Profile string
}

// UnenrollRequest asks for one VM's unenrollment.
type UnenrollRequest struct {
	// Key is the idempotency key (empty: a fresh random key).
	Key      string
	Provider string
	VMID     string
	// Credentials, if given, let the Configurator undo its OS changes;
	// without them (and without a CredentialSource) the guest is left as
	// it is and only the NAT, the public IP and the CMDB are cleaned up.
	Credentials guest.Credentials
	// Force skips the guest (no Unconfigure): for guests that cannot be
	// reached any more.
	Force bool
}

// Result is the outcome of a request.
type Result struct {
	// Journal is the journal's ID (the request key).
	Journal string
	VM      cmdb.Key
	Op      Op
	// State is the CMDB state the VM ended in.
	State cmdb.State
	// PublicIP, LocalIP and Ports describe the NAT (enrolled VMs).
	PublicIP netip.Addr
	LocalIP  netip.Addr
	Ports    []natfw.Port
	// FailedStep names the step that failed, if any.
	FailedStep string
	// Err is nil on success.
	Err error
}

// RequirementsError reports the requirement checks that failed: the
// requirements step returns it when guest.CheckRequirements (which only
// reports) gives a report with failures. Its code is FailedPrecondition.
type RequirementsError struct {
	Report report.Report
}

func (e *RequirementsError) Error() string {
	msg := "the guest OS does not meet the requirements:"
	for _, c := range e.Report.Failures() {
		msg += " [" + c.Name
		if c.Detail != "" {
			msg += ": " + c.Detail
		}
		msg += "]"
	}
	return msg
}

// ErrorCode makes errs.CodeOf give FailedPrecondition.
func (e *RequirementsError) ErrorCode() errs.Code { return errs.FailedPrecondition }

// Is makes errors.Is(err, errs.FailedPrecondition) true.
func (e *RequirementsError) Is(target error) bool { return errs.IsCode(e, target) }

// Policy is a service profile: which guests may enroll, what they must
// meet, and how they are exposed.
type Policy struct {
	// Families lists the supported OS families (default Linux and Windows).
	Families []guest.OSFamily
	// Requirements per family.
	Requirements map[guest.OSFamily]guest.Requirements
	// Ports per family (default natfw.LinuxPorts() and natfw.WindowsPorts()).
	Ports map[guest.OSFamily][]natfw.Port
	// ManagementSources are the prefixes allowed to reach the ports.
	// Required.
	ManagementSources []netip.Prefix
	// Pool is the IPAM pool for public addresses; PoolByZone overrides it
	// per availability zone.
	Pool       string
	PoolByZone map[string]string
	// Reachability, when set, checks at the end of the firewall step that
	// the VM's management ports answer through its public IP from the
	// orchestrator's side (netreq.Reachability is one). An error fails
	// the firewall step, which is rolled back like any other failure; its
	// message says which port did not answer.
	Reachability Reachability
}

// Reachability checks that a VM's ports answer through its public
// address. Check returns nil when they all do; otherwise an error whose
// message names each port that did not (it must hold no secret).
type Reachability interface {
	Check(ctx context.Context, public netip.Addr, ports []natfw.Port) error
}

func (p Policy) poolFor(zone string) string {
	if pool, ok := p.PoolByZone[zone]; ok {
		return pool
	}
	return p.Pool
}

func (p Policy) portsFor(f guest.OSFamily) []natfw.Port {
	if ports, ok := p.Ports[f]; ok {
		return slices.Clone(ports)
	}
	if f == guest.Windows {
		return natfw.WindowsPorts()
	}
	return natfw.LinuxPorts()
}

func (p Policy) supports(f guest.OSFamily) bool {
	if len(p.Families) == 0 {
		return f == guest.Linux || f == guest.Windows
	}
	for _, x := range p.Families {
		if x == f {
			return true
		}
	}
	return false
}

// CredentialSource gives the orchestrator the credentials of a journal
// whose process crashed: credentials are never stored, so Resume asks the
// host (which may keep them in its secret store, or ask the customer). An
// error makes Resume roll the enrollment back.
type CredentialSource interface {
	Credentials(ctx context.Context, j Journal) (guest.Credentials, error)
}

// CredentialFunc adapts a function to CredentialSource.
type CredentialFunc func(ctx context.Context, j Journal) (guest.Credentials, error)

// Credentials calls f.
func (f CredentialFunc) Credentials(ctx context.Context, j Journal) (guest.Credentials, error) {
	return f(ctx, j)
}

// Config holds the drivers the orchestrator composes.
type Config struct {
	// Providers by name. The name is the first half of every CMDB key.
	Providers map[string]*provider.Provider
	IPAM      *ipam.IPAM
	Firewall  *natfw.Firewall
	CMDB      *cmdb.CMDB
	// Store keeps the journals and cursors (NewMemoryStore for one process).
	Store *Store
	// Policy is the default service profile; Profiles are named ones.
	Policy   Policy
	Profiles map[string]Policy
	// Configurator makes the OS changes (optional: without it the step
	// does nothing).
	Configurator guest.Configurator
	// Dialer reaches guests over the network through their public IP.
	// When nil, the provider's guest access (VMware Tools) is used instead.
	// A provider without guest access needs a Dialer: credentials are then
	// validated over the network right after the NAT exists.
	Dialer guest.Dialer
	// Credentials gives Resume the credentials it needs (optional).
	Credentials CredentialSource
}

// Options tune the orchestrator. The zero value is usable.
type Options struct {
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Observer receives every event; nil logs events through Logger.
	Observer Observer
	// Instance names this orchestrator instance for leases (default: a
	// random ID). It names a replica, not a process: give each running
	// replica its own stable name (a pod or host name) and keep it across
	// restarts. A process restarted under the name takes back, at once,
	// the journals its predecessor left open (each Orchestrator is a new
	// incarnation of the name, recorded in Journal.Incarnation); journals
	// of other instances it takes over only once their leases expire. Two
	// processes running at the same time under one name would take each
	// other's journals over: never share a name between live replicas.
	Instance string
	// LeaseTTL is how long a journal's lease lasts without renewal (default
	// 30s); it is renewed every third of it while work goes on.
	LeaseTTL time.Duration
	// CompensationTimeout bounds the compensations of one failure (default
	// 2m). They run on a context that survives the caller's cancellation.
	CompensationTimeout time.Duration
	// Retries is how many times a step failing with Unavailable or
	// OutcomeUnknown is tried again (default 2; negative: never).
	Retries int
	// RetryDelay is the pause before the first retry, doubled each time
	// (default 100ms).
	RetryDelay time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TracerProvider, when set, records a span per Enroll, Unenroll,
	// Cleanup and Resume, a child span per step ("enroll.step.<name>") and
	// per compensation ("enroll.undo.<name>"), and one per event the
	// Indexer applies; the drivers' own spans nest below them when the
	// drivers have the same provider. MeterProvider, when set, records the
	// call metrics of those spans and the gauges (see the package doc);
	// call Orchestrator.Close to stop the gauges. Nil: no telemetry work.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}
