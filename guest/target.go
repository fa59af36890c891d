package guest

import (
	"context"
	"net/netip"
	"slices"
	"strconv"

	"github.com/managedvm/managedvm/report"
)

// Target is the VM a Dialer, Configurator or RequirementCheck works on, in
// guest terms: plain values a transport or a configuration tool needs, with
// no type of the packages that compose them (enroll, cmdb, ipam, natfw,
// provider), so drivers never import the composer. The orchestrator
// (enroll) fills it from the enrollment's journal and the provider's facts.
type Target struct {
	// VM is the VM's key as the CMDB spells it ("provider/vmid");
	// Provider and VMID are its two halves (the provider's name in the
	// host's configuration and the VM's stable ID in that provider).
	VM       string
	Provider string
	VMID     string
	// Name is the VM's display name in the provider.
	Name string
	// Family is the guest OS family.
	Family OSFamily
	// PublicIP is the NAT'd address the guest is reached at (invalid
	// before the NAT exists); LocalIP its address in the customer network.
	PublicIP netip.Addr
	LocalIP  netip.Addr
	// Ports are the inbound ports the NAT opens to the guest.
	Ports []Port
	// Profile is the service profile's name ("" for the default policy).
	Profile string
}

// Clone returns a copy of t that shares no slice with it.
func (t Target) Clone() Target {
	t.Ports = slices.Clone(t.Ports)
	return t
}

// HasPort reports whether t.Ports opens the port number for protocol
// ("tcp" or "udp").
func (t Target) HasPort(protocol string, number uint16) bool {
	return slices.Contains(t.Ports, Port{Protocol: protocol, Number: number})
}

// Port is one inbound port the NAT opens to the guest.
type Port struct {
	// Protocol is "tcp" or "udp".
	Protocol string
	Number   uint16
}

// String formats the port as "tcp/22".
func (p Port) String() string { return p.Protocol + "/" + strconv.Itoa(int(p.Number)) }

// Dialer reaches a guest over the network: through its public IP, as the
// enrollment flow does (SSH for Linux, WinRM for Windows). The host application
// provides it (ssh.Dialer and winrm.Dialer are ready-made ones), choosing
// the transport, ports, host-key policy and TLS settings. It must return
// an Unauthenticated error when the credentials are refused.
type Dialer interface {
	Dial(ctx context.Context, t Target, cred Credentials) (*Executor, error)
}

// DialFunc adapts a function to Dialer.
type DialFunc func(ctx context.Context, t Target, cred Credentials) (*Executor, error)

// Dial calls f.
func (f DialFunc) Dial(ctx context.Context, t Target, cred Credentials) (*Executor, error) {
	return f(ctx, t, cred)
}

// Configurator makes the OS changes of enrollment (create the operator's
// service account, install its key, ...) through an executor. Configure
// must be idempotent. tasks.Set and ansible.Runner are Configurators.
type Configurator interface {
	Configure(ctx context.Context, t Target, ex *Executor) error
}

// Unconfigurer is implemented by Configurators that can undo their changes
// (on unenrollment and on compensation). Unconfigure must be idempotent.
type Unconfigurer interface {
	Unconfigure(ctx context.Context, t Target, ex *Executor) error
}

// ConfiguratorFunc adapts a function to Configurator.
type ConfiguratorFunc func(ctx context.Context, t Target, ex *Executor) error

// Configure calls f.
func (f ConfiguratorFunc) Configure(ctx context.Context, t Target, ex *Executor) error {
	return f(ctx, t, ex)
}

// RequirementCheck is a policy's own check run in the guest (see
// Requirements.Checks). It returns one report row; an error means the
// check could not run (and CheckRequirements returns it).
type RequirementCheck func(ctx context.Context, ex *Executor, facts Facts) (report.Check, error)
