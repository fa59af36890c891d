// Package queue is the bounded, non-blocking delivery queue behind the
// notify observers: Offer never waits, a fixed number of workers deliver
// with retries and exponential backoff, and every item ends counted as
// sent, failed or dropped.
package queue

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/notify"
)

// Options configure a Queue; zero fields take the defaults of the caller.
type Options struct {
	Name       string // "smtp", "webhook": the notifier attribute
	Size       int
	Workers    int
	Retries    int
	Backoff    time.Duration
	MaxBackoff time.Duration
	Timeout    time.Duration
	Logger     *slog.Logger
	Meter      metric.MeterProvider
}

// Defaults fills the zero fields: Size 1024, Workers 2, Retries 5
// (negative: none), Backoff 1 s, MaxBackoff 1 min (at least Backoff),
// Timeout as given.
func (o *Options) Defaults(timeout time.Duration) {
	if o.Size <= 0 {
		o.Size = 1024
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Retries == 0 {
		o.Retries = 5
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	if o.Timeout <= 0 {
		o.Timeout = timeout
	}
}

// Retryable reports whether a failed delivery may be tried again.
func Retryable(err error) bool {
	switch errs.CodeOf(err) {
	case errs.Unavailable, errs.DeadlineExceeded, errs.ResourceExhausted, errs.OutcomeUnknown:
		return true
	}
	return false
}

// Queue delivers items of type T through send.
type Queue[T any] struct {
	opts   Options
	send   func(context.Context, T) error
	ch     chan T
	ctx    context.Context // canceled when Close gives up
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex // guards closed against Offer's send on ch
	closed bool

	queued, sent, failed, dropped, retries atomic.Uint64
	lastMu                                 sync.Mutex
	lastCode                               errs.Code
	lastErr                                string

	mSent, mFailed, mDropped, mRetries metric.Int64Counter
	attrs                              metric.MeasurementOption
}

// New starts the workers.
func New[T any](opts Options, send func(context.Context, T) error) *Queue[T] {
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue[T]{opts: opts, send: send, ch: make(chan T, opts.Size), ctx: ctx, cancel: cancel}
	if opts.Meter != nil {
		m := opts.Meter.Meter("github.com/managedvm/managedvm/notify")
		q.mSent, _ = m.Int64Counter("managedvm.notify.sent", metric.WithDescription("notifications delivered"))
		q.mFailed, _ = m.Int64Counter("managedvm.notify.failed", metric.WithDescription("notifications given up after their retries or refused"))
		q.mDropped, _ = m.Int64Counter("managedvm.notify.dropped", metric.WithDescription("notifications dropped: queue full or closed"))
		q.mRetries, _ = m.Int64Counter("managedvm.notify.retries", metric.WithDescription("delivery attempts after a retryable failure"))
		q.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("notifier", opts.Name)))
	}
	for i := 0; i < opts.Workers; i++ {
		q.wg.Add(1)
		go q.work()
	}
	return q
}

func (q *Queue[T]) count(c metric.Int64Counter, n *atomic.Uint64) {
	n.Add(1)
	if c != nil {
		c.Add(context.Background(), 1, q.attrs)
	}
}

// Offer queues v without ever waiting; false means it was dropped (queue
// full or closed), and counted.
func (q *Queue[T]) Offer(v T) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if !q.closed {
		select {
		case q.ch <- v:
			q.queued.Add(1)
			return true
		default:
		}
	}
	q.count(q.mDropped, &q.dropped)
	return false
}

func (q *Queue[T]) work() {
	defer q.wg.Done()
	for v := range q.ch {
		if q.ctx.Err() != nil {
			q.count(q.mDropped, &q.dropped)
			continue
		}
		q.deliver(v)
	}
}

func (q *Queue[T]) deliver(v T) {
	delay := q.opts.Backoff
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(q.ctx, q.opts.Timeout)
		err := q.send(ctx, v)
		cancel()
		if err == nil {
			q.count(q.mSent, &q.sent)
			return
		}
		q.note(err)
		if q.ctx.Err() != nil {
			q.count(q.mDropped, &q.dropped)
			return
		}
		if !Retryable(err) || try >= q.opts.Retries {
			q.count(q.mFailed, &q.failed)
			if q.opts.Logger != nil {
				q.opts.Logger.Warn("notification not delivered", "notifier", q.opts.Name, "code", errs.CodeOf(err).String(), "err", err, "attempts", try+1)
			}
			return
		}
		q.count(q.mRetries, &q.retries)
		if q.opts.Logger != nil {
			q.opts.Logger.Debug("notification retry", "notifier", q.opts.Name, "code", errs.CodeOf(err).String(), "err", err, "attempt", try+2, "in", delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-q.ctx.Done():
			t.Stop()
			q.count(q.mDropped, &q.dropped)
			return
		}
		delay *= 2
		if delay > q.opts.MaxBackoff {
			delay = q.opts.MaxBackoff
		}
	}
}

func (q *Queue[T]) note(err error) {
	q.lastMu.Lock()
	q.lastCode, q.lastErr = errs.CodeOf(err), limit.Cut(err.Error(), 512)
	q.lastMu.Unlock()
}

// Stats returns the counters.
func (q *Queue[T]) Stats() notify.Stats {
	q.lastMu.Lock()
	code, msg := q.lastCode, q.lastErr
	q.lastMu.Unlock()
	return notify.Stats{Queued: q.queued.Load(), Sent: q.sent.Load(), Failed: q.failed.Load(), Dropped: q.dropped.Load(),
		Retries: q.retries.Load(), Pending: len(q.ch), LastCode: code, LastError: msg}
}

// Close stops accepting items and waits for the queued ones until ctx is
// done; then it cancels the deliveries in flight, counts what was left as
// dropped and returns ctx's error (DeadlineExceeded or Canceled). A second
// Close waits again.
func (q *Queue[T]) Close(ctx context.Context, op string) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return errs.FromContext(ctx, op)
	}
}
