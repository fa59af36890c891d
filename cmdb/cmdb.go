package cmdb

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/obs"
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

// The limits of a record (see the package doc) besides those of
// internal/limit's classes.
const (
	// MaxAttributes is the most entries Record.Attributes, and
	// Record.VM.Attributes, may each hold.
	MaxAttributes = 64
	// MaxItems is the most entries Record.Ports and Record.VM.Guest.IPs
	// may each hold.
	MaxItems = 64
	// MaxFilterStates is the most entries Filter.States may hold.
	MaxFilterStates = 16
)

// Validate reports an InvalidArgument error for a malformed record or one
// beyond the limits (see the package doc). Values are quoted with
// limit.Quote, so the message stays short whatever the record holds.
func (r Record) Validate() error { return obs.Wrap("cmdb.Record", r.validate()) }

// validate is Validate with no Op: the portable type names its own.
func (r Record) validate() error {
	if err := r.Key.validate(); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return errs.Errorf(errs.InvalidArgument, "", "record %s: "+format, append([]any{limit.Quote(r.Key.String())}, args...)...)
	}
	switch {
	case !r.State.Valid():
		return bad("invalid state %s", limit.Quote(string(r.State)))
	case r.Revision < 0:
		return bad("negative revision")
	case len(r.Ports) > MaxItems:
		return bad("%d ports, more than %d", len(r.Ports), MaxItems)
	case len(r.VM.Guest.IPs) > MaxItems:
		return bad("%d guest IPs, more than %d", len(r.VM.Guest.IPs), MaxItems)
	}
	fields := []struct {
		name      string
		v         string
		min, max  int
		printable bool
	}{
		{"VM.ID", r.VM.ID, 0, limit.MaxKey, true},
		{"VM.Name", r.VM.Name, 0, limit.MaxName, true},
		{"VM.Zone", r.VM.Zone, 0, limit.MaxName, true},
		{"VM.Power", string(r.VM.Power), 0, limit.MaxLabel, true},
		{"VM.Annotation", r.VM.Annotation, 0, limit.MaxText, false},
		{"VM.Guest.Family", string(r.VM.Guest.Family), 0, limit.MaxLabel, true},
		{"VM.Guest.OSName", r.VM.Guest.OSName, 0, limit.MaxText, false},
		{"VM.Guest.OSVersion", r.VM.Guest.OSVersion, 0, limit.MaxText, false},
		{"VM.Guest.Hostname", r.VM.Guest.Hostname, 0, limit.MaxText, false},
		{"VM.Guest.ToolsVersion", r.VM.Guest.ToolsVersion, 0, limit.MaxText, false},
		{"VM.Guest.ToolsStatus", r.VM.Guest.ToolsStatus, 0, limit.MaxText, false},
		{"Reason", r.Reason, 0, limit.MaxText, false},
		{"FailedStep", r.FailedStep, 0, limit.MaxText, false},
	}
	for _, f := range fields {
		if why := limit.Why(f.v, f.min, f.max, f.printable); why != "" {
			return bad("%s %s %s", f.name, limit.Quote(f.v), why)
		}
	}
	for _, m := range []struct {
		name  string
		attrs map[string]string
	}{{"attribute", r.Attributes}, {"VM attribute", r.VM.Attributes}} {
		if len(m.attrs) > MaxAttributes {
			return bad("%d %ss, more than %d", len(m.attrs), m.name, MaxAttributes)
		}
		for k, v := range m.attrs {
			if why := limit.Why(k, 1, limit.MaxLabel, true); why != "" {
				return bad("%s key %s %s", m.name, limit.Quote(k), why)
			}
			if why := limit.Why(v, 0, limit.MaxText, false); why != "" {
				return bad("%s %s: value %s %s", m.name, limit.Quote(k), limit.Quote(v), why)
			}
		}
	}
	return nil
}

// ErrConflict is wrapped by Upsert's error when the record's revision is not
// the stored one (someone else wrote it first). Its code is
// FailedPrecondition: Get the record again and reapply the change.
var ErrConflict = &errs.Error{Code: errs.FailedPrecondition, Msg: "cmdb revision conflict"}

// MaxBatch is the most records one UpsertMany call may write.
const MaxBatch = 1000

// BatchError is UpsertMany's error when some of its records were not
// written because their revision was stale (the others were). Errs has
// one entry per record given, nil for the records written. Its code is
// FailedPrecondition and it wraps every entry's error, so
// errors.Is(err, ErrConflict) holds.
type BatchError struct {
	Errs []error
}

// Error says how many records were not written and why the first was not.
func (e *BatchError) Error() string {
	n, first := 0, error(nil)
	for _, err := range e.Errs {
		if err != nil {
			if n == 0 {
				first = err
			}
			n++
		}
	}
	if first == nil {
		return "every record written"
	}
	return fmt.Sprintf("%d of %d records not written; the first: %v", n, len(e.Errs), first)
}

// Unwrap returns the errors of the records not written.
func (e *BatchError) Unwrap() []error {
	var out []error
	for _, err := range e.Errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// ErrorCode is FailedPrecondition (errs.CodeOf).
func (e *BatchError) ErrorCode() errs.Code { return errs.FailedPrecondition }

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

// Validate reports an InvalidArgument error for a key whose Provider is
// not a limit.Name (1 to 128 bytes of printable UTF-8) or whose VMID is not
// a limit.Key (1 to 255 bytes, printable).
func (k Key) Validate() error { return obs.Wrap("cmdb.Key", k.validate()) }

func (k Key) validate() error {
	if why := limit.Why(k.Provider, 1, limit.MaxName, true); why != "" {
		return errs.Errorf(errs.InvalidArgument, "", "record key %s: provider %s", limit.Quote(k.String()), why)
	}
	if why := limit.Why(k.VMID, 1, limit.MaxKey, true); why != "" {
		return errs.Errorf(errs.InvalidArgument, "", "record key %s: VM ID %s", limit.Quote(k.String()), why)
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
// that does not exist (which would silently match nothing), more than
// MaxFilterStates states, or a Provider or Zone that is not empty or a
// limit.Name.
func (f Filter) Validate() error { return obs.Wrap("cmdb.Filter", f.validate()) }

func (f Filter) validate() error {
	if len(f.States) > MaxFilterStates {
		return errs.Errorf(errs.InvalidArgument, "", "filter: %d states, more than %d", len(f.States), MaxFilterStates)
	}
	for _, s := range f.States {
		if !s.Valid() {
			return errs.Errorf(errs.InvalidArgument, "", "filter: invalid state %s", limit.Quote(string(s)))
		}
	}
	if why := limit.Why(f.Provider, 0, limit.MaxName, true); why != "" {
		return errs.Errorf(errs.InvalidArgument, "", "filter: provider %s %s", limit.Quote(f.Provider), why)
	}
	if why := limit.Why(f.Zone, 0, limit.MaxName, true); why != "" {
		return errs.Errorf(errs.InvalidArgument, "", "filter: zone %s %s", limit.Quote(f.Zone), why)
	}
	return nil
}
