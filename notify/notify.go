package notify

import (
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
)

// Outcome is what a finished operation came to, the unit a notification
// reports.
type Outcome string

// The outcomes.
const (
	// Enrolled: an enrollment succeeded (enroll.JournalSucceeded, OpEnroll).
	Enrolled Outcome = "enrolled"
	// Failed: an operation failed (enroll.JournalFailed, any Op); the
	// reason is the event's Message and Code.
	Failed Outcome = "failed"
	// Unenrolled: an unenrollment succeeded (JournalSucceeded, OpUnenroll).
	Unenrolled Outcome = "unenrolled"
	// CleanedUp: a VM deleted from its provider was cleaned up
	// (JournalSucceeded, OpCleanup).
	CleanedUp Outcome = "cleaned-up"
)

// Outcomes lists every Outcome, in a fixed order.
func Outcomes() []Outcome { return []Outcome{Enrolled, Failed, Unenrolled, CleanedUp} }

// OutcomeOf says which Outcome e reports; ok is false for every other
// event (step progress, Indexer events, a readdress that succeeded).
func OutcomeOf(e enroll.Event) (o Outcome, ok bool) {
	switch e.Kind {
	case enroll.JournalFailed:
		return Failed, true
	case enroll.JournalSucceeded:
		switch e.Op {
		case enroll.OpEnroll:
			return Enrolled, true
		case enroll.OpUnenroll:
			return Unenrolled, true
		case enroll.OpCleanup:
			return CleanedUp, true
		}
	}
	return "", false
}

// Data is what a template sees: the event's fields, flattened.
type Data struct {
	Outcome  Outcome
	Kind     string
	Time     time.Time
	Journal  string
	Op       string
	Provider string
	VMID     string
	// VM is "provider/vmid".
	VM      string
	Profile string
	Step    string
	// Code is the errs code name ("OK" on success).
	Code string
	// Message is the event's detail: the public and local IP on success,
	// the reason on failure.
	Message string
	Attempt int
}

// DataOf flattens e for a template.
func DataOf(e enroll.Event) Data {
	o, _ := OutcomeOf(e)
	return Data{Outcome: o, Kind: string(e.Kind), Time: e.Time, Journal: e.Journal, Op: string(e.Op),
		Provider: e.VM.Provider, VMID: e.VM.VMID, VM: e.VM.String(), Profile: e.Profile, Step: e.Step,
		Code: e.Code.String(), Message: e.Message, Attempt: e.Attempt}
}

// Stats counts a notifier's deliveries. Every event a notifier accepts
// (Queued) ends Sent, Failed or Dropped, or is still Pending.
type Stats struct {
	// Queued: accepted into the queue.
	Queued uint64
	// Sent: delivered (the relay accepted the mail, the receiver answered 2xx).
	Sent uint64
	// Failed: given up after the retries, or refused for good (a 5xx, a
	// refused certificate or credential).
	Failed uint64
	// Dropped: not delivered because the queue was full, the notifier was
	// closed, or Close's deadline passed first.
	Dropped uint64
	// Retries: attempts after a retryable failure.
	Retries uint64
	// Pending: waiting in the queue now.
	Pending int
	// LastCode and LastError describe the last failed attempt (OK and
	// empty when none failed); LastError is at most 512 bytes and never
	// holds a secret.
	LastCode  errs.Code
	LastError string
}

// Multi returns an Observer that hands every event to each of obs in turn
// (nil entries are skipped), so that a host can log, mail and post the same
// events through the single enroll.Options.Observer.
func Multi(obs ...enroll.Observer) enroll.Observer {
	var list []enroll.Observer
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	return enroll.ObserverFunc(func(e enroll.Event) {
		for _, o := range list {
			o.Observe(e)
		}
	})
}
