package memprovider

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// history is a bounded ring of events. Event number seq (from 1) has the
// cursor strconv.FormatUint(seq).
type history struct {
	size  int
	buf   []provider.Event // grows to size, then wraps
	start int              // index of the oldest event in buf
	last  uint64           // seq of the newest event; 0 before any
}

func (h *history) add(ev provider.Event) {
	if len(h.buf) < h.size {
		h.buf = append(h.buf, ev)
		return
	}
	h.buf[h.start] = ev
	h.start = (h.start + 1) % h.size
}

// oldest returns the seq of the oldest event kept (last+1 when none).
func (h *history) oldest() uint64 { return h.last - uint64(len(h.buf)) + 1 }

func (h *history) at(seq uint64) provider.Event {
	return h.buf[(h.start+int(seq-h.oldest()))%len(h.buf)]
}

// resumable reports whether the events after pos are all still kept.
func (h *history) resumable(pos uint64) bool {
	return pos <= h.last && (pos == h.last || pos+1 >= h.oldest())
}

// emit records an event for r as it is now and wakes the watchers. Call
// with p.mu held.
func (p *Provider) emit(typ provider.EventType, r *record) {
	p.emitEvent(provider.Event{Type: typ, VMID: r.vm.ID, VM: r.vm.Clone()})
}

func (p *Provider) emitDeleted(id string) {
	p.emitEvent(provider.Event{Type: provider.Deleted, VMID: id})
}

func (p *Provider) emitEvent(ev provider.Event) {
	p.hist.last++
	ev.Cursor = provider.Cursor(strconv.FormatUint(p.hist.last, 10))
	ev.Time = p.now()
	p.hist.add(ev)
	close(p.wake)
	p.wake = make(chan struct{})
}

// Cursor returns the position after the newest event: the number of events
// so far, as a decimal string.
func (p *Provider) Cursor(context.Context) (provider.Cursor, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return provider.Cursor(strconv.FormatUint(p.hist.last, 10)), nil
}

// Watch returns a stream of the events after cursor ("" means from now).
// A cursor that is malformed, from the future, or older than the kept
// history is an error wrapping provider.ErrCursorExpired.
func (p *Provider) Watch(_ context.Context, cursor provider.Cursor) (provider.DriverStream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pos := p.hist.last
	if cursor != "" {
		c := limit.Quote(string(cursor))
		n, err := strconv.ParseUint(string(cursor), 10, 64)
		if err != nil {
			return nil, expired("cursor %s is not one of this provider's cursors", c)
		}
		if n > p.hist.last {
			return nil, expired("cursor %s is ahead of the newest event (%d): it comes from another provider", c, p.hist.last)
		}
		if !p.hist.resumable(n) {
			return nil, expired("cursor %s is older than the kept history (oldest event %d)", c, p.hist.oldest())
		}
		pos = n
	}
	return &stream{p: p, pos: pos, closed: make(chan struct{})}, nil
}

func expired(format string, args ...any) error {
	return &errs.Error{Code: errs.FailedPrecondition, Msg: fmt.Sprintf(format, args...), Err: provider.ErrCursorExpired}
}

// stream is a Watch stream: a position in the provider's history.
type stream struct {
	p *Provider

	mu  sync.Mutex // serializes Next
	pos uint64     // seq of the last event delivered

	closeOnce sync.Once
	closed    chan struct{}
}

var _ provider.DriverStream = (*stream)(nil)

// Next returns the next event, blocking until there is one, ctx ends, or
// the stream is closed (an error wrapping provider.ErrStreamClosed). A
// watcher that fell behind the kept history gets an error wrapping
// provider.ErrCursorExpired.
func (s *stream) Next(ctx context.Context) (provider.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		p := s.p
		p.mu.Lock()
		if !p.hist.resumable(s.pos) {
			oldest := p.hist.oldest()
			p.mu.Unlock()
			return provider.Event{}, expired("the watcher fell behind: event %d is no longer kept (oldest %d)", s.pos+1, oldest)
		}
		if s.pos < p.hist.last {
			s.pos++
			ev := p.hist.at(s.pos) // never changed once kept: the portable type copies it
			p.mu.Unlock()
			return ev, nil
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-s.closed:
			return provider.Event{}, errs.Wrap(errs.FailedPrecondition, "", provider.ErrStreamClosed)
		case <-ctx.Done():
			return provider.Event{}, errs.FromContext(ctx, "")
		}
	}
}

// Close ends the stream and unblocks a waiting Next.
func (s *stream) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}
