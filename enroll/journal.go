package enroll

import (
	"net/netip"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
)

// Op is what a journal records: an enrollment, an unenrollment, or the
// cleanup of a VM that disappeared.
type Op string

// The operations.
const (
	OpEnroll   Op = "enroll"
	OpUnenroll Op = "unenroll"
	// OpCleanup is an unenrollment of a deleted VM: nothing is done in the
	// guest, and the CMDB record ends retired.
	OpCleanup Op = "cleanup"
	// OpReaddress moves an enrolled VM's NAT to its new local IP.
	OpReaddress Op = "readdress"
)

// Access is how an enrollment reaches the guest.
type Access string

// The access modes.
const (
	// AccessGuest: credentials and requirements are checked through the
	// provider's guest access (VMware Tools) before any network path
	// exists.
	AccessGuest Access = "guest"
	// AccessNetwork: the provider has no guest access; credentials and
	// requirements are checked over the network (Config.Dialer) right after
	// the NAT exists.
	AccessNetwork Access = "network"
)

// Phase is where a journal stands.
type Phase string

// The phases. Running and Compensating are open; Succeeded and Failed are
// closed.
const (
	Running      Phase = "running"
	Compensating Phase = "compensating"
	Succeeded    Phase = "succeeded"
	Failed       Phase = "failed"
)

// Open reports whether the phase is not final.
func (p Phase) Open() bool { return p == Running || p == Compensating }

// StepState is one step's state in a journal.
type StepState string

// The step states.
const (
	StatePending     StepState = ""
	StateDone        StepState = "done"
	StateFailed      StepState = "failed"
	StateCompensated StepState = "compensated"
)

// StepRecord is one step of a journal.
type StepRecord struct {
	Name  string
	State StepState
	// Error is the step's error message (never a secret), Code its code.
	Error string
	Code  errs.Code
}

// Resources are what an enrollment acquired, kept so that compensation and
// unenrollment know what to undo.
type Resources struct {
	// Family is the guest OS family the enrollment used.
	Family string
	// LocalIP is the VM's local address; PublicIP the allocated one from
	// Pool.
	LocalIP  netip.Addr
	Pool     string
	PublicIP netip.Addr
	// Ports are the inbound ports of the NAT rule.
	Ports []natfw.Port
	// Marked reports that the CMDB record was set to enrolling or
	// unenrolling by this journal (so a failure must set it to failed).
	Marked bool
}

// Journal is the durable record of one enrollment or unenrollment: written
// to the Store after every step, so that a new process can finish or undo it
// (Resume). A journal never holds a secret: only the user name of the
// credentials is kept.
type Journal struct {
	// ID is the request's idempotency key.
	ID string
	Op Op
	// VM is the VM the journal works on. The Store keeps at most one open
	// journal per VM.
	VM cmdb.Key
	// Profile is the service profile's name; Username the guest account.
	Profile  string
	Username string
	// Access says how the guest is reached (enrollments only).
	Access Access
	// NewLocalIP is the address a readdress journal moves the NAT to.
	NewLocalIP netip.Addr
	// Phase and Steps say how far it got; Steps lists the plan in order.
	Phase Phase
	Steps []StepRecord
	// Resources are what was acquired.
	Resources Resources
	// ErrorCode and Error are the outcome of a failed journal; FailedStep
	// names the step that failed.
	ErrorCode  errs.Code
	Error      string
	FailedStep string
	// Holder is the orchestrator instance (Options.Instance) holding the
	// lease, until LeaseExpires; Incarnation tells apart the processes that
	// ran under that name (a random ID per Orchestrator value). Another
	// instance may take over an open journal whose lease has expired; a
	// process under the same instance name takes over, at once, the
	// journals of an earlier incarnation (see Orchestrator.Resume).
	Holder       string
	Incarnation  string
	LeaseExpires time.Time
	// Revision is the optimistic-concurrency token: 0 for a new journal,
	// incremented by every successful write.
	Revision         int64
	Created, Updated time.Time
}

// Clone returns a deep copy of j.
func (j Journal) Clone() Journal {
	out := j
	out.Steps = append([]StepRecord(nil), j.Steps...)
	out.Resources.Ports = append([]natfw.Port(nil), j.Resources.Ports...)
	return out
}

// ErrJournalConflict is wrapped by Store errors when a journal's revision is
// stale (another writer got there first, for example an instance that took
// over an expired lease). Its code is FailedPrecondition.
var ErrJournalConflict = &errs.Error{Code: errs.FailedPrecondition, Msg: "journal revision conflict"}

// ErrVMBusy is wrapped by CreateJournal errors when the VM already has an
// open journal. Its code is AlreadyExists.
var ErrVMBusy = &errs.Error{Code: errs.AlreadyExists, Msg: "another operation on this VM is in progress"}

// ErrJournalExists is wrapped by CreateJournal errors when a journal with
// the same ID exists. Its code is AlreadyExists.
var ErrJournalExists = &errs.Error{Code: errs.AlreadyExists, Msg: "a journal with this ID exists"}
