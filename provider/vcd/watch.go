package vcd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// A cursor is "vcd1:<milliseconds>:<h1>.<h2>...": the timestamp of the
// last event delivered and short hashes of the events at that timestamp
// already delivered (VCD's audit timestamps have millisecond precision
// and several events can share one). "vcd1:0:" is the start of the
// trail.
const cursorPrefix = "vcd1:"

// maxTies bounds the hashes a cursor holds (MaxCursor is 4096 bytes).
const maxTies = 300

type position struct {
	ms   int64
	seen []string // hashes of the events at ms already delivered
}

func (p position) cursor() provider.Cursor {
	return provider.Cursor(cursorPrefix + strconv.FormatInt(p.ms, 10) + ":" + strings.Join(p.seen, "."))
}

func parseCursor(c provider.Cursor) (position, error) {
	rest, ok := strings.CutPrefix(string(c), cursorPrefix)
	ms, ties, ok2 := strings.Cut(rest, ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || !ok2 || err != nil || n < 0 || n > 1e15 {
		return position{}, errs.Wrap(errs.FailedPrecondition, "", provider.ErrCursorExpired)
	}
	p := position{ms: n}
	if ties != "" {
		p.seen = strings.Split(ties, ".")
		for _, h := range p.seen {
			if len(h) != 12 {
				return position{}, errs.Wrap(errs.FailedPrecondition, "", provider.ErrCursorExpired)
			}
		}
	}
	return p, nil
}

func eventHash(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:6])
}

// auditEvent is an AuditTrailEvent of the VCD OpenAPI (the fields read).
type auditEvent struct {
	EventID     string `json:"eventId"`
	EventType   string `json:"eventType"`
	EventStatus string `json:"eventStatus"`
	Timestamp   string `json:"timestamp"`
	EventEntity struct {
		Name string `json:"name"`
		ID   string `json:"id"`
	} `json:"eventEntity"`
}

type auditPage struct {
	ResultTotal int          `json:"resultTotal"`
	PageCount   int          `json:"pageCount"`
	Page        int          `json:"page"`
	Values      []auditEvent `json:"values"`
}

func (e auditEvent) time() (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, e.Timestamp)
	return t, err == nil
}

// auditSince reads the audit trail from ms on (timestamp=ge=, oldest
// first), every page, at most limit events.
func (p *Provider) auditSince(ctx context.Context, ms int64, limit int) ([]auditEvent, error) {
	var out []auditEvent
	from := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
	for page := 1; ; page++ {
		q := url.Values{"filter": {"timestamp=ge=" + from}, "sortAsc": {"timestamp"},
			"page": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(p.opts.PageSize)}}
		var pg auditPage
		if err := p.c.getJSON(ctx, "/cloudapi/1.0.0/auditTrail", q, &pg); err != nil {
			return nil, err
		}
		out = append(out, pg.Values...)
		if len(pg.Values) == 0 || page >= pg.PageCount || len(out) >= limit {
			return out, nil
		}
	}
}

// Cursor is the position after the newest audit event.
func (p *Provider) Cursor(ctx context.Context) (provider.Cursor, error) {
	q := url.Values{"sortDesc": {"timestamp"}, "page": {"1"}, "pageSize": {"1"}}
	var pg auditPage
	if err := p.c.getJSON(ctx, "/cloudapi/1.0.0/auditTrail", q, &pg); err != nil {
		return "", err
	}
	if len(pg.Values) == 0 {
		return position{}.cursor(), nil
	}
	t, ok := pg.Values[0].time()
	if !ok {
		return "", errs.New(errs.Internal, "", "audit event without a valid timestamp")
	}
	evs, err := p.auditSince(ctx, t.UnixMilli(), 1<<20)
	if err != nil {
		return "", err
	}
	pos := position{ms: t.UnixMilli()}
	for _, e := range evs {
		if et, ok := e.time(); ok && et.UnixMilli() == pos.ms {
			pos.seen = append(pos.seen, eventHash(e.EventID))
		} else if ok && et.UnixMilli() > pos.ms { // newer events arrived meanwhile
			pos = position{ms: et.UnixMilli(), seen: []string{eventHash(e.EventID)}}
		}
	}
	if len(pos.seen) > maxTies {
		pos.seen = pos.seen[len(pos.seen)-maxTies:]
	}
	return pos.cursor(), nil
}

// Watch follows the audit trail from cursor ("" : from now).
func (p *Provider) Watch(ctx context.Context, cursor provider.Cursor) (provider.DriverStream, error) {
	if cursor == "" {
		c, err := p.Cursor(ctx)
		if err != nil {
			return nil, err
		}
		cursor = c
	}
	pos, err := parseCursor(cursor)
	if err != nil {
		return nil, err
	}
	if len(pos.seen) > 0 {
		// The cursor's own events must still be in the trail: VCD
		// purges it past its retention, oldest first, and a cursor
		// whose events are gone may have missed others purged after
		// them.
		evs, err := p.auditSince(ctx, pos.ms, p.opts.PageSize)
		if err != nil {
			return nil, err
		}
		if !holds(evs, pos) {
			return nil, expiredCursor(cursor)
		}
	}
	s := &stream{p: p, pos: pos, closed: make(chan struct{}), lastResync: time.Now(), lastFill: time.Now()}
	if p.opts.ResyncInterval > 0 {
		s.resync(ctx) // the inventory the first resync compares with
	}
	return s, nil
}

// expiredCursor is the error of a cursor the audit trail no longer
// reaches.
func expiredCursor(c provider.Cursor) error {
	return errs.Errorf(errs.FailedPrecondition, "", "cursor %s: VCD's audit trail no longer holds its events (purged past the retention): %w", limit.Quote(string(c)), provider.ErrCursorExpired)
}

// holds reports whether evs (the trail from pos.ms on, oldest first)
// still has one of the events pos names as delivered at pos.ms.
func holds(evs []auditEvent, pos position) bool {
	seen := make(map[string]bool, len(pos.seen))
	for _, h := range pos.seen {
		seen[h] = true
	}
	for _, e := range evs {
		t, ok := e.time()
		if !ok {
			continue
		}
		if t.UnixMilli() > pos.ms {
			return false
		}
		if t.UnixMilli() == pos.ms && seen[eventHash(e.EventID)] {
			return true
		}
	}
	return false
}

// stream is a Watch stream: it reads the audit trail when its buffer is
// empty, every Options.PollInterval, and the whole inventory every
// Options.ResyncInterval.
type stream struct {
	p *Provider

	mu         sync.Mutex
	pos        position
	buf        []provider.Event
	known      map[string]provider.VM // from the last resync
	lastResync time.Time
	lastFill   time.Time // when the trail was last read whole up to now

	closeOnce sync.Once
	closed    chan struct{}
}

func (s *stream) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *stream) Next(ctx context.Context) (provider.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		select {
		case <-s.closed:
			return provider.Event{}, errs.Wrap(errs.FailedPrecondition, "", provider.ErrStreamClosed)
		case <-s.p.stop:
			return provider.Event{}, errs.Wrap(errs.FailedPrecondition, "", provider.ErrStreamClosed)
		default:
		}
		if len(s.buf) > 0 {
			ev := s.buf[0]
			s.buf = s.buf[1:]
			return ev, nil
		}
		if err := s.fill(ctx); err != nil {
			return provider.Event{}, err
		}
		if len(s.buf) > 0 {
			continue
		}
		t := time.NewTimer(s.p.opts.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return provider.Event{}, errs.FromContext(ctx, "")
		case <-s.closed:
			t.Stop()
		case <-s.p.stop:
			t.Stop()
		case <-t.C:
		}
	}
}

// fill reads the audit trail after the position into the buffer, and
// resyncs when it is time.
func (s *stream) fill(ctx context.Context) error {
	started := time.Now()
	evs, err := s.p.auditSince(ctx, s.pos.ms, 10*s.p.opts.PageSize)
	if err != nil {
		return err
	}
	if len(s.pos.seen) > 0 && len(evs) > 0 && !holds(evs, s.pos) {
		// The position's events were purged. Events after the last
		// read can have been purged unread only when that read is
		// older than the retention and the oldest event left is newer
		// than it (the purge goes oldest first).
		if t, ok := evs[0].time(); ok && t.After(s.lastFill) && started.Sub(s.lastFill) > s.p.opts.AuditRetention {
			return expiredCursor(s.pos.cursor())
		}
	}
	if len(evs) < 10*s.p.opts.PageSize {
		s.lastFill = started
	}
	seen := map[string]bool{}
	for _, h := range s.pos.seen {
		seen[h] = true
	}
	for _, e := range evs {
		t, ok := e.time()
		if !ok {
			continue
		}
		ms, h := t.UnixMilli(), eventHash(e.EventID)
		if ms < s.pos.ms || ms == s.pos.ms && seen[h] {
			continue
		}
		if ms > s.pos.ms {
			s.pos = position{ms: ms}
			seen = map[string]bool{}
		}
		s.pos.seen = append(s.pos.seen, h)
		if len(s.pos.seen) > maxTies {
			s.pos.seen = s.pos.seen[1:]
		}
		seen[h] = true
		if ev, ok := s.p.eventOf(ctx, e, t); ok {
			ev.Cursor = s.pos.cursor()
			s.buf = append(s.buf, ev)
		}
	}
	if ri := s.p.opts.ResyncInterval; ri > 0 && time.Since(s.lastResync) >= ri {
		s.resync(ctx)
	}
	return nil
}

// eventOf maps an audit event of a VM: vm/create Created, vm/delete
// Deleted, vm/modify, vm/deploy and vm/undeploy Changed, each with the VM
// re-read (deploy and undeploy set Power as the event says: the VM may
// have changed again since). A VM gone since is described from the
// event. Other events (vApps, failures) are skipped.
func (p *Provider) eventOf(ctx context.Context, e auditEvent, t time.Time) (provider.Event, bool) {
	const pre = "com/vmware/vcloud/event/vm/"
	kind, ok := strings.CutPrefix(e.EventType, pre)
	if !ok || (e.EventStatus != "" && e.EventStatus != "SUCCESS") || !strings.HasPrefix(e.EventEntity.ID, "urn:vcloud:vm:") {
		return provider.Event{}, false
	}
	id := "vm-" + urnUUID(e.EventEntity.ID)
	ev := provider.Event{VMID: id, Time: t}
	switch kind {
	case "create":
		ev.Type = provider.Created
	case "delete":
		ev.Type = provider.Deleted
		return ev, true
	case "modify", "deploy", "undeploy":
		ev.Type = provider.Changed
	default:
		return provider.Event{}, false
	}
	vm, err := p.Get(ctx, id)
	if err != nil {
		vm = provider.VM{ID: id, Name: e.EventEntity.Name}
	}
	switch kind {
	case "deploy":
		vm.Power = provider.PoweredOn
	case "undeploy":
		vm.Power = provider.PoweredOff
	}
	ev.VM = vm
	return ev, true
}

// resync lists every VM and reports what differs from the last resync
// (the first one, when Watch starts, only records the inventory): changes
// the audit trail did not show. Its events carry the stream's current
// cursor.
func (s *stream) resync(ctx context.Context) {
	s.lastResync = time.Now()
	vms, err := s.p.List(ctx, &provider.ListOptions{})
	if err != nil {
		s.p.log.Warn("vcd: watch resync failed", "err", err)
		return
	}
	now := make(map[string]provider.VM, len(vms))
	for _, vm := range vms {
		now[vm.ID] = vm
	}
	if s.known != nil {
		cur := s.pos.cursor()
		for id, vm := range now {
			old, ok := s.known[id]
			switch {
			case !ok:
				s.buf = append(s.buf, provider.Event{Type: provider.Created, VMID: id, VM: vm, Cursor: cur})
			case old.Name != vm.Name || old.Power != vm.Power || old.CPUs != vm.CPUs || old.MemoryMiB != vm.MemoryMiB:
				s.buf = append(s.buf, provider.Event{Type: provider.Changed, VMID: id, VM: vm, Cursor: cur})
			}
		}
		for id := range s.known {
			if _, ok := now[id]; !ok {
				s.buf = append(s.buf, provider.Event{Type: provider.Deleted, VMID: id, Cursor: cur})
			}
		}
	}
	s.known = now
	s.p.log.Debug("vcd: watch resync", "vms", len(vms), "cursor", string(s.pos.cursor()))
}
