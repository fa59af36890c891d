package cmdb

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
)

// State is a VM's enrollment state.
type State string

// The enrollment states.
const (
	// Available: discovered, not enrolled; can be enrolled.
	Available State = "available"
	// Enrolling: an enrollment is in progress.
	Enrolling State = "enrolling"
	// Enrolled: guest OS services are active.
	Enrolled State = "enrolled"
	// Failed: the last enrollment failed and was rolled back; Reason and
	// FailedStep say why. The VM can be enrolled again.
	Failed State = "failed"
	// Unenrolling: an unenrollment is in progress.
	Unenrolling State = "unenrolling"
	// Retired: the VM no longer exists.
	Retired State = "retired"
)

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	switch s {
	case Available, Enrolling, Enrolled, Failed, Unenrolling, Retired:
		return true
	}
	return false
}

// Key identifies a record: the provider's name and the VM's ID in it.
type Key struct {
	Provider string
	VMID     string
}

// String formats the key as "provider/vmid".
func (k Key) String() string { return k.Provider + "/" + k.VMID }

// Record is one configuration item: a VM, its facts and its enrollment.
type Record struct {
	Key Key
	// VM is the latest facts the provider reported.
	VM provider.VM
	// State is the enrollment state; Reason and FailedStep explain Failed.
	State      State
	Reason     string
	FailedStep string
	// PublicIP and Ports are set while enrolled.
	PublicIP netip.Addr
	Ports    []natfw.Port
	// Attributes holds free-form host data.
	Attributes map[string]string
	// Revision is the optimistic-concurrency token: 0 for a record that
	// does not exist yet; every successful write increments it.
	Revision int64
	// Created and Updated are set by the CMDB; EnrolledAt when enrollment
	// finished; RetiredAt when the record was retired.
	Created, Updated, EnrolledAt, RetiredAt time.Time
}

// Clone returns a deep copy of r.
func (r Record) Clone() Record {
	out := r
	out.VM = r.VM.Clone()
	out.Ports = slices.Clone(r.Ports)
	if r.Attributes != nil {
		out.Attributes = make(map[string]string, len(r.Attributes))
		for k, v := range r.Attributes {
			out.Attributes[k] = v
		}
	}
	return out
}

// Validate reports an InvalidArgument error for a malformed record.
func (r Record) Validate() error {
	const op = "cmdb.Record"
	switch {
	case r.Key.Provider == "" || r.Key.VMID == "":
		return errs.Errorf(errs.InvalidArgument, op, "record key %q is incomplete", r.Key)
	case !r.State.Valid():
		return errs.Errorf(errs.InvalidArgument, op, "record %s: invalid state %q", r.Key, r.State)
	case r.Revision < 0:
		return errs.Errorf(errs.InvalidArgument, op, "record %s: negative revision", r.Key)
	}
	return nil
}

// ErrConflict is wrapped by Upsert's error when the record's revision is not
// the stored one (someone else wrote it first). Its code is
// FailedPrecondition: Get the record again and reapply the change.
var ErrConflict = &errs.Error{Code: errs.FailedPrecondition, Msg: "cmdb revision conflict"}

// Filter narrows List. Zero fields match everything.
type Filter struct {
	Provider string
	Zone     string
	// States, if not empty, matches only these states.
	States []State
	// IncludeRetired also lists retired records (left out by default
	// unless States names Retired).
	IncludeRetired bool
}

// Match reports whether r passes the filter.
func (f Filter) Match(r Record) bool {
	if f.Provider != "" && r.Key.Provider != f.Provider {
		return false
	}
	if f.Zone != "" && r.VM.Zone != f.Zone {
		return false
	}
	if len(f.States) > 0 {
		return slices.Contains(f.States, r.State)
	}
	return r.State != Retired || f.IncludeRetired
}

// CMDB stores configuration-item records. Implementations are safe for
// concurrent use.
type CMDB interface {
	// Upsert writes r if r.Revision equals the stored revision (0 to
	// create). It returns the record as stored, with the new revision and
	// timestamps. A stale revision is an error wrapping ErrConflict.
	Upsert(ctx context.Context, r Record) (Record, error)
	// Get returns a record, or NotFound.
	Get(ctx context.Context, key Key) (Record, error)
	// List returns the records that match f, ordered by key.
	List(ctx context.Context, f Filter) ([]Record, error)
	// Retire marks the record retired (the VM is gone), whatever its
	// revision. Retiring a retired record changes nothing; a missing one is
	// NotFound.
	Retire(ctx context.Context, key Key) (Record, error)
}

// Validate reports an InvalidArgument error for a key with an empty
// Provider or VMID.
func (k Key) Validate() error {
	if k.Provider == "" || k.VMID == "" {
		return errs.Errorf(errs.InvalidArgument, "cmdb.Key", "record key %q is incomplete", k)
	}
	return nil
}

// Compare orders keys by Provider, then VMID: the order List returns.
func (k Key) Compare(o Key) int {
	if c := strings.Compare(k.Provider, o.Provider); c != 0 {
		return c
	}
	return strings.Compare(k.VMID, o.VMID)
}

// Validate reports an InvalidArgument error for a filter naming a state
// that does not exist (which would silently match nothing).
func (f Filter) Validate() error {
	for _, s := range f.States {
		if !s.Valid() {
			return errs.Errorf(errs.InvalidArgument, "cmdb.Filter", "invalid state %q", s)
		}
	}
	return nil
}
