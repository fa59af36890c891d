package provider

import (
	"net/netip"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

// PowerState is a VM's power state.
type PowerState string

// The power states.
const (
	PowerUnknown PowerState = ""
	PoweredOn    PowerState = "poweredOn"
	PoweredOff   PowerState = "poweredOff"
	Suspended    PowerState = "suspended"
)

// VM is what a provider knows of one virtual machine (or template).
type VM struct {
	// ID is the provider-unique, stable identifier (the instanceUuid on
	// vSphere). It never changes for the VM's lifetime, unlike Name.
	ID string
	// Name is the display name.
	Name string
	// Zone is the availability zone the VM is in.
	Zone string
	// Power is the power state.
	Power PowerState
	// Template reports that the VM is a template.
	Template bool
	// CPUs and MemoryMiB are the configured size.
	CPUs      int
	MemoryMiB int64
	// Guest holds what the guest tools report.
	Guest GuestInfo
	// Annotation is the provider's free-form note on the VM.
	Annotation string
	// Attributes holds provider-specific facts (datacenter, cluster, host,
	// folder, ...), for display and CMDB records.
	Attributes map[string]string
}

// GuestInfo is what the guest tools/agent report about the guest OS.
type GuestInfo struct {
	Family    guest.OSFamily
	OSName    string
	OSVersion string
	Hostname  string
	// IPs are the guest's addresses, the primary one first.
	IPs []netip.Addr
	// ToolsRunning reports that the provider's guest tools (VMware Tools
	// on vSphere) are running.
	ToolsRunning bool
	// ToolsVersion and ToolsStatus are as the provider reports them
	// (e.g. "12352", "toolsOk" / "toolsOld").
	ToolsVersion string
	ToolsStatus  string
}

// PrimaryIP returns the VM's first global unicast IPv4 address, or else its
// first global unicast address of any kind.
func (vm VM) PrimaryIP() (netip.Addr, bool) {
	for _, a := range vm.Guest.IPs {
		if a.Is4() && a.IsGlobalUnicast() {
			return a, true
		}
	}
	for _, a := range vm.Guest.IPs {
		if a.IsGlobalUnicast() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// Clone returns a deep copy of vm.
func (vm VM) Clone() VM {
	out := vm
	out.Guest.IPs = append([]netip.Addr(nil), vm.Guest.IPs...)
	if vm.Attributes != nil {
		out.Attributes = make(map[string]string, len(vm.Attributes))
		for k, v := range vm.Attributes {
			out.Attributes[k] = v
		}
	}
	return out
}

// Zone is an availability zone: where VMs are placed. Each driver maps it
// onto its own objects: on vSphere, datacenters, clusters, shared
// datastores and distributed port groups.
type Zone struct {
	Name        string
	Datacenters []string
	Clusters    []string
	Datastores  []string
	Networks    []string
	// Attributes holds provider-specific settings (template CSV path, ...).
	Attributes map[string]string
}

// Template is a VM template that Provision can clone.
type Template struct {
	ID   string
	Name string
	Zone string
	// Family, OSName are the guest OS the template holds, where known.
	Family guest.OSFamily
	OSName string
	// ToolsInstalled reports that the guest tools are installed.
	ToolsInstalled bool
	// Attributes holds provider-specific facts.
	Attributes map[string]string
}

// EventType says what happened to a VM.
type EventType int

// The event types.
const (
	Created EventType = iota + 1
	Changed
	Deleted
)

func (t EventType) String() string {
	switch t {
	case Created:
		return "created"
	case Changed:
		return "changed"
	case Deleted:
		return "deleted"
	}
	return "unknown"
}

// Cursor is an opaque, resumable position in a provider's event stream.
// Hosts store it and hand it back to Watch after a restart.
type Cursor string

// Event reports a change to one VM.
type Event struct {
	Type EventType
	// VMID is the VM's ID.
	VMID string
	// VM is the VM as it is after the change (zero for Deleted).
	VM VM
	// Cursor is the stream position just after this event: Watch(cursor)
	// resumes with the next one.
	Cursor Cursor
	// Time is when the provider saw the change, if it says.
	Time time.Time
}

// ListOptions narrows List.
type ListOptions struct {
	// Zone, if set, lists only that zone's VMs.
	Zone string
	// IncludeTemplates also lists templates (they are left out by default).
	IncludeTemplates bool
}

// Network is where a provisioned VM's NIC is connected.
type Network struct {
	// Name is the port group / network name in the zone.
	Name string
	// VLAN, if not zero, selects the VLAN.
	VLAN int
}

// StaticIP is a static IPv4 setting for a provisioned VM.
type StaticIP struct {
	Address netip.Prefix
	Gateway netip.Addr
	DNS     []netip.Addr
}

// Customization is what a provisioned guest is told on first boot.
type Customization struct {
	// Hostname; empty means the VM name.
	Hostname string
	// SpecName names a provider-side customization spec (vSphere). Empty
	// with UseTemplateSpec set means "the spec named like the template".
	SpecName        string
	UseTemplateSpec bool
	// UserData, MetaData and NetworkConfig are cloud-init (or
	// cloudbase-init) documents passed through the provider's channel
	// (guestinfo, config drive, ...).
	UserData      []byte
	MetaData      []byte
	NetworkConfig []byte
	// Static, if set, configures a static address instead of DHCP.
	Static *StaticIP
	// AdminPassword, if set, is the guest administrator's (root's,
	// Administrator's) password for drivers whose provider sets it in
	// its own guest customization (provider/vcd, see
	// AdminPasswordDriver); empty, such a driver has the provider generate
	// one. Provision refuses it (InvalidArgument) on a driver without that
	// channel; there the password goes in UserData. It is never logged or
	// quoted; at most MaxAdminPassword bytes of printable UTF-8.
	AdminPassword guest.Secret
}

// ProvisionSpec asks for a VM cloned from a template.
type ProvisionSpec struct {
	// Key makes Provision idempotent: a repeated request with the same key
	// returns the VM the first one made. Required.
	Key string
	// Name is the new VM's name. Required.
	Name string
	// Template is the template's ID or name. Required.
	Template string
	// Zone is the availability zone. Required.
	Zone string
	// Network connects the VM's NIC; zero keeps the template's.
	Network Network
	// CPUs and MemoryMiB override the template's size when not zero.
	CPUs      int
	MemoryMiB int64
	// Customization, if not nil, customizes the guest.
	Customization *Customization
	// PowerOn powers the VM on once created.
	PowerOn bool
	// Timeout bounds the whole provisioning; zero means
	// Options.ProvisionTimeout of the Provider.
	Timeout time.Duration
}

// ErrCursorExpired is wrapped by Watch and Stream.Next errors when the
// provider cannot resume from the given cursor (history too short, unknown
// cursor). Its code is FailedPrecondition. The caller lists everything again
// and starts a new watch from a fresh Cursor.
var ErrCursorExpired = &errs.Error{Code: errs.FailedPrecondition, Msg: "watch cursor expired: resync"}

// ErrStreamClosed is wrapped by Stream.Next errors after the stream was
// closed. Its code is FailedPrecondition.
var ErrStreamClosed = &errs.Error{Code: errs.FailedPrecondition, Msg: "watch stream closed"}
