package main

import (
	"strings"
	"sync"
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
)

// opEvent is one orchestrator event of an operation, as the portal and
// the API show it (events never carry secrets).
type opEvent struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Step    string    `json:"step,omitempty"`
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
	Line    string    `json:"line"`
}

// op is an enrollment or unenrollment started from the portal or the API.
type op struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"` // enroll, unenroll
	User   string `json:"user"`
	Device Device `json:"device"`

	mu     sync.Mutex
	events []opEvent
	done   bool
	result *resultJSON
	subs   map[chan struct{}]struct{}
}

type opView struct {
	ID     string      `json:"id"`
	Kind   string      `json:"kind"`
	User   string      `json:"user"`
	Device Device      `json:"device"`
	Done   bool        `json:"done"`
	Events []opEvent   `json:"events"`
	Result *resultJSON `json:"result,omitempty"`
}

func (o *op) view() opView {
	o.mu.Lock()
	defer o.mu.Unlock()
	return opView{ID: o.ID, Kind: o.Kind, User: o.User, Device: o.Device, Done: o.done,
		Events: append([]opEvent{}, o.events...), Result: o.result}
}

// since returns the events from index i, and whether the op is done.
func (o *op) since(i int) ([]opEvent, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if i > len(o.events) {
		i = len(o.events)
	}
	return append([]opEvent{}, o.events[i:]...), o.done
}

func (o *op) subscribe() (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	o.mu.Lock()
	o.subs[ch] = struct{}{}
	o.mu.Unlock()
	return ch, func() { o.mu.Lock(); delete(o.subs, ch); o.mu.Unlock() }
}

func (o *op) notifyLocked() {
	for ch := range o.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (o *op) add(e opEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.events) < 256 {
		o.events = append(o.events, e)
	}
	o.notifyLocked()
}

func (o *op) finish(r resultJSON) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done, o.result = true, &r
	o.notifyLocked()
}

// AuditEntry is one finished enrollment, unenrollment or cleanup.
type AuditEntry struct {
	Time    time.Time `json:"time"`
	User    string    `json:"user"` // "indexer" for cleanups of deleted VMs
	Op      string    `json:"op"`
	VM      string    `json:"vm"`
	Name    string    `json:"name,omitempty"`
	Outcome string    `json:"outcome"` // succeeded, failed
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
	Journal string    `json:"journal"`
}

// hub is the orchestrator's Observer in serve: it feeds the operations'
// event lists, the audit trail and the device-change notifications.
type hub struct {
	mu    sync.Mutex
	ops   map[string]*op
	order []string
	audit []AuditEntry
	subs  map[chan struct{}]struct{}
	now   func() time.Time
}

const (
	maxOps   = 1000
	maxAudit = 10000
)

func newHub() *hub {
	return &hub{ops: map[string]*op{}, subs: map[chan struct{}]struct{}{}, now: time.Now}
}

func (h *hub) newOp(kind, user string, d Device) *op {
	o := &op{ID: kind + "-" + randomToken(12), Kind: kind, User: user, Device: d, subs: map[chan struct{}]struct{}{}}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops[o.ID] = o
	h.order = append(h.order, o.ID)
	if len(h.order) > maxOps {
		delete(h.ops, h.order[0])
		h.order = h.order[1:]
	}
	return o
}

func (h *hub) op(id string) *op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ops[id]
}

// Observe is called by the orchestrator, synchronously: it never blocks.
func (h *hub) Observe(e enroll.Event) {
	switch e.Kind {
	case enroll.VMDiscovered, enroll.VMChanged, enroll.VMDeleted, enroll.VMRetired,
		enroll.JournalSucceeded, enroll.JournalFailed, enroll.StepSucceeded:
		h.devicesChanged()
	}
	h.mu.Lock()
	o := h.ops[e.Journal]
	if e.Kind == enroll.JournalSucceeded || e.Kind == enroll.JournalFailed {
		a := AuditEntry{Time: e.Time.UTC(), User: "indexer", Op: string(e.Op), VM: e.VM.String(), Journal: e.Journal, Outcome: "succeeded"}
		if o != nil {
			a.User, a.Name = o.User, o.Device.Name
		} else if e.Op != enroll.OpCleanup && e.Op != enroll.OpReaddress {
			a.User = "command line or resume"
		}
		if e.Kind == enroll.JournalFailed {
			a.Outcome, a.Code, a.Message = "failed", e.Code.String(), e.Message
		}
		h.audit = append(h.audit, a)
		if len(h.audit) > maxAudit {
			h.audit = h.audit[1:]
		}
	}
	h.mu.Unlock()
	if o != nil {
		line := eventLine(e)
		if line == "" {
			line = "  " + strings.TrimSpace(string(e.Kind)+" "+e.Step)
		}
		ev := opEvent{Time: e.Time.UTC(), Kind: string(e.Kind), Step: e.Step, Message: e.Message, Line: line}
		if e.Code != errs.OK {
			ev.Code = e.Code.String()
		}
		o.add(ev)
	}
}

func (h *hub) auditTrail() []AuditEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]AuditEntry, len(h.audit))
	for i := range h.audit { // newest first
		out[i] = h.audit[len(h.audit)-1-i]
	}
	return out
}

func (h *hub) subscribe() (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() { h.mu.Lock(); delete(h.subs, ch); h.mu.Unlock() }
}

func (h *hub) devicesChanged() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending for this subscriber
		}
	}
}
