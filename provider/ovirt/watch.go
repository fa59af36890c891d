package ovirt

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"time"

	ovirtsdk "github.com/ovirt/go-ovirt"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// The VM event codes a Watch stream reports; others only move its
// cursor.
var watchCodes = map[int64]provider.EventType{
	34:  provider.Created, // VM created
	53:  provider.Changed, // VM creation completed
	60:  provider.Deleted, // VM creation failed: the engine removed it
	36:  provider.Deleted, // VM removal finished
	113: provider.Changed, // VM removal initiated (the VM is image_locked)
	35:  provider.Changed, // VM updated
	153: provider.Changed, // VM started
	61:  provider.Changed, // VM down
	63:  provider.Changed, // migration completed
	934: provider.Changed, // VM interface updated (new addresses)
}

// lastEventIndex is the newest event's index (0 with no events).
func (p *Provider) lastEventIndex(ctx context.Context) (int64, error) {
	s, err := getMany(ctx, p.c, "/events", url.Values{"max": {"1"}}, ovirtsdk.XMLEventReadMany)
	if err != nil {
		return 0, err
	}
	if evs := s.Slice(); len(evs) > 0 {
		n, _ := evs[0].Index()
		return n, nil
	}
	return 0, nil
}

// eventsAfter reads every kept event with an index above from, newest
// first, as the engine sorts them. It asks for no max: from=N&max=M gives
// the newest M above N, not the next M.
func (p *Provider) eventsAfter(ctx context.Context, from int64) ([]*ovirtsdk.Event, error) {
	s, err := getMany(ctx, p.c, "/events", url.Values{"from": {strconv.FormatInt(from, 10)}}, ovirtsdk.XMLEventReadMany)
	if err != nil {
		return nil, err
	}
	return s.Slice(), nil
}

// readFrom reads the events after cursor (the index of the last event
// the stream saw), oldest first, and reports whether that event is still
// kept: when the nightly purge took it, events after it may be gone too
// (the engine answers from=N with what it keeps and no error).
func (p *Provider) readFrom(ctx context.Context, cursor int64) (evs []*ovirtsdk.Event, kept bool, err error) {
	all, err := p.eventsAfter(ctx, cursor-1)
	if err != nil {
		return nil, false, err
	}
	slices.Reverse(all)
	if len(all) == 0 {
		return nil, false, nil
	}
	if first, _ := all[0].Index(); first != cursor {
		return all, false, nil
	}
	return all[1:], true, nil
}

// Cursor returns the position after the newest event.
func (p *Provider) Cursor(ctx context.Context) (provider.Cursor, error) {
	n, err := p.lastEventIndex(ctx)
	if err != nil {
		return "", err
	}
	return provider.Cursor(strconv.FormatInt(n, 10)), nil
}

// expired is the error of a cursor the engine's history no longer holds.
func expired(cursor string) error {
	return errs.Errorf(errs.FailedPrecondition, "", "cursor %s: the engine's event log no longer holds it: %w", limit.Quote(cursor), provider.ErrCursorExpired)
}

// Watch streams VM events after cursor (empty: from now). A cursor is an
// event index; one whose event the engine purged, or that names no event,
// is ErrCursorExpired.
func (p *Provider) Watch(ctx context.Context, cursor provider.Cursor) (provider.DriverStream, error) {
	var from int64
	if cursor == "" {
		n, err := p.lastEventIndex(ctx)
		if err != nil {
			return nil, err
		}
		from = n
	} else {
		n, err := strconv.ParseInt(string(cursor), 10, 64)
		if err != nil || n <= 0 {
			return nil, expired(string(cursor))
		}
		_, kept, err := p.readFrom(ctx, n)
		if err != nil {
			return nil, err
		}
		if !kept {
			return nil, expired(string(cursor))
		}
		from = n
	}
	known, err := p.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.stop:
		return nil, errs.New(errs.FailedPrecondition, "", "driver closed")
	default:
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &stream{p: p, from: from, known: known, out: make(chan item), done: make(chan struct{}), cancel: cancel}
	p.streams.Add(1)
	go func() {
		defer p.streams.Done()
		defer close(s.done)
		s.run(sctx)
	}()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-s.done:
		}
	}()
	return s, nil
}

// fingerprint is what a resync compares.
type fingerprint struct {
	name, zone, status string
	power              provider.PowerState
	ips                string
}

func fingerprintOf(vm provider.VM) fingerprint {
	ips := ""
	for _, a := range vm.Guest.IPs {
		ips += a.String() + ","
	}
	return fingerprint{name: vm.Name, zone: vm.Zone, status: vm.Attributes["status"], power: vm.Power, ips: ips}
}

// snapshot lists the inventory (no templates) by id.
func (p *Provider) snapshot(ctx context.Context) (map[string]fingerprint, error) {
	vms, err := p.List(ctx, &provider.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]fingerprint, len(vms))
	for _, vm := range vms {
		out[vm.ID] = fingerprintOf(vm)
	}
	return out, nil
}

type item struct {
	ev  provider.Event
	err error
}

// stream is one Watch: a goroutine reading the event log every
// PollInterval and the whole inventory every ResyncInterval (and at once
// when the log lost events it had not read).
type stream struct {
	p      *Provider
	from   int64 // index of the last event read
	loose  bool  // the event at from may be purged (after a resync)
	known  map[string]fingerprint
	out    chan item
	done   chan struct{}
	cancel context.CancelFunc
}

func (s *stream) Next(ctx context.Context) (provider.Event, error) {
	select {
	case it, ok := <-s.out:
		if !ok {
			return provider.Event{}, errs.Wrap(errs.FailedPrecondition, "", provider.ErrStreamClosed)
		}
		return it.ev, it.err
	case <-s.done:
		return provider.Event{}, errs.Wrap(errs.FailedPrecondition, "", provider.ErrStreamClosed)
	case <-ctx.Done():
		return provider.Event{}, errs.FromContext(ctx, "")
	}
}

func (s *stream) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// emit hands ev to Next, or gives up when the stream ends.
func (s *stream) emit(ctx context.Context, ev provider.Event) bool {
	switch ev.Type {
	case provider.Deleted:
		delete(s.known, ev.VMID)
	default:
		s.known[ev.VMID] = fingerprintOf(ev.VM)
	}
	select {
	case s.out <- item{ev: ev}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *stream) run(ctx context.Context) {
	p := s.p
	poll := time.NewTicker(p.opts.PollInterval)
	defer poll.Stop()
	var resync <-chan time.Time
	if p.opts.ResyncInterval > 0 {
		t := time.NewTicker(p.opts.ResyncInterval)
		defer t.Stop()
		resync = t.C
	}
	backoff := p.opts.PollInterval
	for {
		err := s.pollOnce(ctx)
		if err == nil {
			backoff = p.opts.PollInterval
		} else if ctx.Err() != nil {
			return
		} else {
			// The engine is down or restarting: keep the position, try
			// again later (tokens are renewed by the connection).
			p.log.Debug("ovirt: reading events failed; retrying", "err", err)
			backoff = min(2*backoff, 30*time.Second)
		}
		wait := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-poll.C:
			wait.Stop()
		case <-wait.C:
		case <-resync:
			wait.Stop()
			if err := s.resync(ctx, s.from); err != nil && ctx.Err() == nil {
				p.log.Debug("ovirt: resync failed", "err", err)
			}
		}
	}
}

// pollOnce delivers the events after s.from. When the engine no longer
// keeps the event at s.from (purged), it resyncs from the inventory
// instead, so no removal is missed.
func (s *stream) pollOnce(ctx context.Context) error {
	var evs []*ovirtsdk.Event
	var err error
	if s.loose {
		// Just after a resync the purge may have taken the event at
		// s.from too: read what follows it.
		if evs, err = s.p.eventsAfter(ctx, s.from); err != nil {
			return err
		}
		slices.Reverse(evs)
	} else {
		var kept bool
		if evs, kept, err = s.p.readFrom(ctx, s.from); err != nil {
			return err
		}
		if !kept {
			s.p.log.Info("ovirt: events purged past the watch position; resyncing from the inventory")
			last, err := s.p.lastEventIndex(ctx)
			if err != nil {
				return err
			}
			if err := s.resync(ctx, last); err != nil {
				return err
			}
			s.from, s.loose = last, true
			return nil
		}
	}
	for _, e := range evs {
		idx, _ := e.Index()
		code, _ := e.Code()
		typ, ok := watchCodes[code]
		vmRef, hasVM := e.Vm()
		if !ok || !hasVM || str(vmRef.Id()) == "" {
			s.from = idx
			continue
		}
		id := str(vmRef.Id())
		ev := provider.Event{Type: typ, VMID: id, Cursor: provider.Cursor(strconv.FormatInt(idx, 10))}
		if t, ok := e.Time(); ok {
			ev.Time = t
		}
		if typ != provider.Deleted {
			vm, err := s.p.Get(ctx, id)
			switch {
			case errs.Is(err, errs.NotFound):
				// Gone since: the event is reported with what the log
				// says (its removal event follows).
				vm = provider.VM{ID: id, Attributes: map[string]string{"status": "removed"}}
			case err != nil:
				return err // s.from unchanged: this event is read again
			}
			ev.VM = vm
		}
		if !s.emit(ctx, ev) {
			return ctx.Err()
		}
		s.from = idx
	}
	if len(evs) > 0 {
		s.loose = false // s.from is an event just read
	}
	return nil
}

// resync lists the inventory and reports what differs from what the
// stream has reported: VMs gone (Deleted), new (Created), changed. VMs
// with events after from are left to the feed.
func (s *stream) resync(ctx context.Context, from int64) error {
	vms, err := s.p.List(ctx, &provider.ListOptions{})
	if err != nil {
		return err
	}
	// VMs the feed has events about that the stream has not read yet are
	// left to the feed (their events come in order after this).
	pending := map[string]bool{}
	if evs, err := s.p.eventsAfter(ctx, from); err == nil {
		for _, e := range evs {
			if v, ok := e.Vm(); ok {
				pending[str(v.Id())] = true
			}
		}
	}
	cur := provider.Cursor(strconv.FormatInt(from, 10))
	now := time.Now()
	seen := make(map[string]bool, len(vms))
	for _, vm := range vms {
		seen[vm.ID] = true
		if pending[vm.ID] {
			continue
		}
		old, ok := s.known[vm.ID]
		switch {
		case !ok:
			if !s.emit(ctx, provider.Event{Type: provider.Created, VMID: vm.ID, VM: vm, Cursor: cur, Time: now}) {
				return ctx.Err()
			}
		case old != fingerprintOf(vm):
			if !s.emit(ctx, provider.Event{Type: provider.Changed, VMID: vm.ID, VM: vm, Cursor: cur, Time: now}) {
				return ctx.Err()
			}
		}
	}
	var gone []string
	for id := range s.known {
		if !seen[id] && !pending[id] {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		if !s.emit(ctx, provider.Event{Type: provider.Deleted, VMID: id, Cursor: cur, Time: now}) {
			return ctx.Err()
		}
	}
	return nil
}
