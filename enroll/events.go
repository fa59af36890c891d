package enroll

import (
	"context"
	"log/slog"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
)

// EventKind says what an Event reports.
type EventKind string

// The event kinds.
const (
	// Saga progress.
	JournalStarted       EventKind = "journal.started"
	StepStarted          EventKind = "step.started"
	StepSucceeded        EventKind = "step.succeeded"
	StepFailed           EventKind = "step.failed"
	StepRetrying         EventKind = "step.retrying"
	CompensationStarted  EventKind = "compensation.started"
	CompensationDone     EventKind = "compensation.succeeded"
	CompensationFailed   EventKind = "compensation.failed"
	JournalSucceeded     EventKind = "journal.succeeded"
	JournalFailed        EventKind = "journal.failed"
	JournalResumed       EventKind = "journal.resumed"
	RequirementsReported EventKind = "requirements.reported"
	// Indexer.
	VMDiscovered EventKind = "vm.discovered"
	VMChanged    EventKind = "vm.changed"
	VMDeleted    EventKind = "vm.deleted"
	VMRetired    EventKind = "vm.retired"
	IndexerSync  EventKind = "indexer.sync"
	IndexerError EventKind = "indexer.error"
)

// Event is one thing that happened, for progress display, audit and
// notifications. Events never carry secrets.
type Event struct {
	Time time.Time
	Kind EventKind
	// Journal is the journal's ID and Op its operation (empty for Indexer
	// events that started none).
	Journal string
	Op      Op
	VM      cmdb.Key
	// Profile names the journal's service profile (empty for the default
	// profile and for Indexer events), so that an observer can route by
	// it (notify/smtpnotify: recipients per profile).
	Profile string
	// Step names the saga step.
	Step string
	// Code and Message describe an error (Code is OK when there is none);
	// Message also carries details such as the public IP.
	Code    errs.Code
	Message string
	// Attempt counts retries of a step (1 for the first try).
	Attempt int
}

// Observer receives events. Observe is called synchronously from the
// goroutine doing the work, possibly from many goroutines at once: keep it
// quick and safe for concurrent use.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f.
func (f ObserverFunc) Observe(e Event) { f(e) }

// LogObserver returns the default observer: every event becomes a log
// record of logger (Info, or Warn for failures).
func LogObserver(logger *slog.Logger) Observer {
	return ObserverFunc(func(e Event) {
		level := slog.LevelInfo
		switch e.Kind {
		case StepFailed, CompensationFailed, JournalFailed, IndexerError, StepRetrying:
			level = slog.LevelWarn
		}
		if !logger.Enabled(context.Background(), level) {
			return
		}
		attrs := []slog.Attr{slog.String("vm", e.VM.String())}
		if e.Journal != "" {
			attrs = append(attrs, slog.String("journal", e.Journal), slog.String("op", string(e.Op)))
		}
		if e.Step != "" {
			attrs = append(attrs, slog.String("step", e.Step))
		}
		if e.Code != errs.OK {
			attrs = append(attrs, slog.String("code", e.Code.String()))
		}
		if e.Message != "" {
			attrs = append(attrs, slog.String("detail", e.Message))
		}
		logger.LogAttrs(context.Background(), level, string(e.Kind), attrs...)
	})
}
