package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/provider"
)

// hostile are the values every limited field is tried with, beside the
// longest accepted one.
func hostile(max int) map[string]string {
	return map[string]string{
		"max+1":   strings.Repeat("k", max+1),
		"16kB":    strings.Repeat("k", 16<<10),
		"NUL":     "a\x00b",
		"newline": "a\nb",
		"badUTF8": "a\xffb",
	}
}

// testLimits: every field with a limit is refused beyond it with
// InvalidArgument and a bounded message, nothing is stored, and the
// longest accepted value round-trips. The same for every driver.
func testLimits(t *testing.T, h Harness) {
	ctx := context.Background()
	s := enroll.NewStore(h(t), nil)
	fields := []struct {
		name string
		max  int
		set  func(j *enroll.Journal, v string)
		// empty is whether "" is refused.
		empty bool
	}{
		{"ID", limit.MaxKey, func(j *enroll.Journal, v string) { j.ID = v }, true},
		{"VM.Provider", limit.MaxName, func(j *enroll.Journal, v string) { j.VM.Provider = v }, true},
		{"VM.VMID", limit.MaxKey, func(j *enroll.Journal, v string) { j.VM.VMID = v }, true},
		{"Profile", limit.MaxName, func(j *enroll.Journal, v string) { j.Profile = v }, false},
		{"Username", enroll.MaxUsername, func(j *enroll.Journal, v string) { j.Username = v }, false},
		{"Holder", limit.MaxKey, func(j *enroll.Journal, v string) { j.Holder = v }, false},
		{"Step name", limit.MaxName, func(j *enroll.Journal, v string) { j.Steps[0].Name = v }, true},
	}
	n := 0
	for _, f := range fields {
		cases := hostile(f.max)
		if f.empty {
			cases["empty"] = ""
		}
		for what, v := range cases {
			j := journal("limits-"+f.name, "vm-limits")
			f.set(&j, v)
			_, err := s.CreateJournal(ctx, j)
			testkit.WantCode(t, f.name+" "+what, err, errs.InvalidArgument)
			testkit.Bounded(t, f.name+" "+what, err, 400)
		}
		// The longest accepted value round-trips.
		n++
		j := journal("limits-ok-"+f.name, "vm-limits-"+f.name)
		f.set(&j, strings.Repeat("k", f.max))
		got, err := s.CreateJournal(ctx, j)
		if err != nil {
			t.Fatalf("%s of %d bytes: %v", f.name, f.max, err)
		}
		back, err := s.GetJournal(ctx, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, back, withMeta(j, got))
		// Close it, so the next field's journal does not meet it.
		back.Phase = enroll.Succeeded
		if _, err := s.UpdateJournal(ctx, back); err != nil {
			t.Fatal(err)
		}
	}
	// A journal error message beyond MaxJournalError, or with a NUL.
	for what, v := range map[string]string{"long": strings.Repeat("e", enroll.MaxJournalError+1), "NUL": "a\x00b"} {
		j := journal("limits-error", "vm-limits-error")
		j.Error = v
		_, err := s.CreateJournal(ctx, j)
		testkit.WantCode(t, "Error "+what, err, errs.InvalidArgument)
		testkit.Bounded(t, "Error "+what, err, 400)
	}
	// Too many steps.
	j := journal("limits-steps", "vm-limits-steps")
	for len(j.Steps) <= enroll.MaxJournalSteps {
		j.Steps = append(j.Steps, enroll.StepRecord{Name: "x"})
	}
	_, err := s.CreateJournal(ctx, j)
	testkit.WantCode(t, "too many steps", err, errs.InvalidArgument)
	// Unknown operation and phase.
	j = journal("limits-op", "vm-limits-op")
	j.Op = "drop-tables"
	_, err = s.CreateJournal(ctx, j)
	testkit.WantCode(t, "unknown op", err, errs.InvalidArgument)
	j = journal("limits-op", "vm-limits-op")
	j.Phase = "sideways"
	_, err = s.CreateJournal(ctx, j)
	testkit.WantCode(t, "unknown phase", err, errs.InvalidArgument)

	// Nothing refused was stored.
	all, err := s.Journals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("%d journals stored, want the %d accepted ones", len(all), n)
	}
	// Look-ups with hostile keys are refused too, before the driver.
	for what, v := range hostile(limit.MaxKey) {
		_, err := s.GetJournal(ctx, v)
		testkit.WantCode(t, "GetJournal "+what, err, errs.InvalidArgument)
		testkit.Bounded(t, "GetJournal "+what, err, 400)
	}

	// Cursors: provider names are names, cursors at most MaxCursor bytes.
	for what, v := range hostile(limit.MaxName) {
		err := s.SetCursor(ctx, v, "c")
		testkit.WantCode(t, "SetCursor provider "+what, err, errs.InvalidArgument)
		_, err = s.Cursor(ctx, v)
		testkit.WantCode(t, "Cursor provider "+what, err, errs.InvalidArgument)
	}
	for what, v := range hostile(enroll.MaxCursor) {
		err := s.SetCursor(ctx, "p-limits", provider.Cursor(v))
		testkit.WantCode(t, "SetCursor cursor "+what, err, errs.InvalidArgument)
		testkit.Bounded(t, "SetCursor cursor "+what, err, 400)
	}
	if _, err := s.Cursor(ctx, "p-limits"); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("a refused cursor was stored: %v", err)
	}
	long := provider.Cursor(strings.Repeat("c", enroll.MaxCursor))
	if err := s.SetCursor(ctx, strings.Repeat("p", limit.MaxName), long); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Cursor(ctx, strings.Repeat("p", limit.MaxName)); err != nil || got != long {
		t.Fatalf("longest cursor: %d bytes, %v", len(got), err)
	}
}

// testClosed: every call after Close is FailedPrecondition.
func testClosed(t *testing.T, h Harness) {
	ctx := context.Background()
	s := enroll.NewStore(h(t), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := s.CreateJournal(ctx, journal("j1", "vm-1"))
	testkit.WantCode(t, "CreateJournal after Close", err, errs.FailedPrecondition)
	_, err = s.GetJournal(ctx, "j1")
	testkit.WantCode(t, "GetJournal after Close", err, errs.FailedPrecondition)
	_, err = s.OpenJournals(ctx)
	testkit.WantCode(t, "OpenJournals after Close", err, errs.FailedPrecondition)
	err = s.SetCursor(ctx, "p", "c")
	testkit.WantCode(t, "SetCursor after Close", err, errs.FailedPrecondition)
}
