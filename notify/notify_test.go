package notify_test

import (
	"fmt"
	"testing"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/notify"
)

func TestOutcomeOf(t *testing.T) {
	for _, c := range []struct {
		kind enroll.EventKind
		op   enroll.Op
		want notify.Outcome
		ok   bool
	}{
		{enroll.JournalSucceeded, enroll.OpEnroll, notify.Enrolled, true},
		{enroll.JournalSucceeded, enroll.OpUnenroll, notify.Unenrolled, true},
		{enroll.JournalSucceeded, enroll.OpCleanup, notify.CleanedUp, true},
		{enroll.JournalSucceeded, enroll.OpReaddress, "", false},
		{enroll.JournalFailed, enroll.OpEnroll, notify.Failed, true},
		{enroll.JournalFailed, enroll.OpUnenroll, notify.Failed, true},
		{enroll.StepFailed, enroll.OpEnroll, "", false},
		{enroll.VMDeleted, "", "", false},
	} {
		got, ok := notify.OutcomeOf(enroll.Event{Kind: c.kind, Op: c.op})
		if got != c.want || ok != c.ok {
			t.Errorf("%s %s: %q %v", c.kind, c.op, got, ok)
		}
	}
}

func TestMulti(t *testing.T) {
	var a, b []enroll.EventKind
	m := notify.Multi(enroll.ObserverFunc(func(e enroll.Event) { a = append(a, e.Kind) }), nil,
		enroll.ObserverFunc(func(e enroll.Event) { b = append(b, e.Kind) }))
	m.Observe(enroll.Event{Kind: enroll.StepStarted})
	m.Observe(enroll.Event{Kind: enroll.JournalSucceeded})
	if len(a) != 2 || len(b) != 2 || a[1] != enroll.JournalSucceeded {
		t.Fatalf("%v %v", a, b)
	}
}

// The outcome of an event, and what a template sees of it.
func ExampleDataOf() {
	e := enroll.Event{Kind: enroll.JournalFailed, Op: enroll.OpEnroll, Journal: "j-7", Profile: "gold",
		Step: enroll.StepCredentials, Code: errs.Unauthenticated, Message: "the guest refused the credentials of \"admin\""}
	e.VM.Provider, e.VM.VMID = "vc1", "vm-42"
	d := notify.DataOf(e)
	fmt.Println(d.Outcome, d.VM, d.Profile, d.Step, d.Code)
	fmt.Println(d.Message)
	// Output:
	// failed vc1/vm-42 gold credentials Unauthenticated
	// the guest refused the credentials of "admin"
}
