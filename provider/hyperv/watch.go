package hyperv

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/provider"
)

// The defaults of Options.PollInterval and Options.ResyncInterval.
const (
	DefaultPollInterval   = 2 * time.Second
	DefaultResyncInterval = 30 * time.Second
)

// watchBatch is how many records one events/1 call returns at most.
const watchBatch = 100

// stream is a Watch: Created and Deleted come from each node's
// VMMS-Admin records (13002, 13003), power changes (Changed) from its
// Hyper-V-Worker-Admin records (18500 started, 18502/18504/18508 off,
// 18510 saved, 18596 restored), all after the cursor's positions and in
// time order across nodes; the other changes come from a periodic
// inventory compared with what the stream knows (node, size, name,
// notes, addresses, and power a record has not told yet), so a VM that
// moves to another node is Changed, never Deleted and Created. The
// cursor holds both logs' positions on every node: a resumed stream
// replays the records after them; the Changed of a resync carry the
// positions delivered so far (a restart between two resyncs may miss a
// change that has no record: a host lists after a restart anyway).
type stream struct {
	d      *Provider
	poll   time.Duration
	resync time.Duration
	zone   string

	pos        map[string]int64 // upper-case node -> last VMMS-Admin record delivered
	wpos       map[string]int64 // upper-case node -> last Worker-Admin record delivered
	pending    []pendingEvent
	known      map[string]provider.VM
	told       map[string]provider.PowerState // power changes a resync reported before their record
	lastResync time.Time

	closed chan struct{}
	once   sync.Once
}

type pendingEvent struct {
	node   string // upper case
	order  int    // node index, to break time ties
	record int64  // 0 for a resync's Changed
	worker bool   // record is of the Worker-Admin log
	ev     provider.Event
	silent bool // advances the position only (a Created whose VM is gone)
}

// Watch resumes from cursor. It lists the VMs once, as the base of the
// Changed comparisons.
func (d *Provider) Watch(ctx context.Context, cursor provider.Cursor) (provider.DriverStream, error) {
	if cursor == "" {
		c, err := d.Cursor(ctx)
		if err != nil {
			return nil, err
		}
		cursor = c
	}
	cs, err := d.decodeCursor(cursor)
	if err != nil {
		return nil, err
	}
	vms, err := d.List(ctx, &provider.ListOptions{})
	if err != nil {
		return nil, err
	}
	zone, err := d.zoneName(ctx)
	if err != nil {
		return nil, err
	}
	s := &stream{d: d, zone: zone, poll: d.pollInterval, resync: d.resyncInterval, pos: cs.N, wpos: cs.W,
		known: make(map[string]provider.VM, len(vms)), told: map[string]provider.PowerState{}, lastResync: time.Now(), closed: make(chan struct{})}
	for _, vm := range vms {
		s.known[vm.ID] = vm
	}
	return s, nil
}

// Close ends the stream; a waiting Next returns ErrStreamClosed.
func (s *stream) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *stream) closedErr() error {
	return errs.Wrap(errs.FailedPrecondition, "", provider.ErrStreamClosed)
}

// Next returns the next event: pending ones first, then new records of
// every node, then (every ResyncInterval) the Changed of an inventory;
// between polls it waits PollInterval.
func (s *stream) Next(ctx context.Context) (provider.Event, error) {
	for {
		select {
		case <-s.closed:
			return provider.Event{}, s.closedErr()
		default:
		}
		for len(s.pending) > 0 {
			p := s.pending[0]
			s.pending = s.pending[1:]
			if p.record > 0 && p.worker {
				s.wpos[p.node] = p.record
			} else if p.record > 0 {
				s.pos[p.node] = p.record
			}
			if p.ev.Type == provider.Changed && p.worker {
				// A power record: silent when a resync told this change
				// first.
				if pw, ok := s.told[p.ev.VMID]; ok {
					delete(s.told, p.ev.VMID)
					if pw == p.ev.VM.Power {
						continue
					}
				}
			}
			switch p.ev.Type {
			case provider.Created, provider.Changed:
				s.known[p.ev.VMID] = p.ev.VM
			case provider.Deleted:
				delete(s.known, p.ev.VMID)
			}
			if p.silent {
				continue
			}
			p.ev.Cursor = encodeCursor(cursorState{N: maps.Clone(s.pos), W: maps.Clone(s.wpos)})
			return p.ev, nil
		}
		if err := s.pollNodes(ctx); err != nil {
			if errs.Is(err, errs.Canceled) || errs.Is(err, errs.DeadlineExceeded) || ctx.Err() != nil {
				select {
				case <-s.closed:
					return provider.Event{}, s.closedErr()
				default:
				}
			}
			return provider.Event{}, err
		}
		if len(s.pending) > 0 {
			continue
		}
		if time.Since(s.lastResync) >= s.resync {
			if err := s.resyncNow(ctx); err != nil {
				return provider.Event{}, err
			}
			if len(s.pending) > 0 {
				continue
			}
		}
		t := time.NewTimer(s.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return provider.Event{}, errs.FromContext(ctx, "")
		case <-s.closed:
			t.Stop()
			return provider.Event{}, s.closedErr()
		case <-t.C:
		}
	}
}

// pollNodes reads every node's new records and queues them in time
// order (ties: node order, then record).
func (s *stream) pollNodes(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	found := make([][]pendingEvent, len(s.d.nodes))
	idx := map[*nodeConn]int{}
	for i, n := range s.d.nodes {
		idx[n] = i
	}
	err := s.d.eachNode(ctx, func(ctx context.Context, n *nodeConn) error {
		i := idx[n]
		key := strings.ToUpper(n.name)
		evs, err := s.d.nodeEvents(ctx, n, scriptEvents, s.pos[key], watchBatch)
		if err != nil {
			return err
		}
		wevs, err := s.d.nodeEvents(ctx, n, scriptPowerEvents, s.wpos[key], watchBatch)
		if err != nil {
			return err
		}
		for k, e := range slices.Concat(evs, wevs) {
			p := pendingEvent{node: key, order: i, record: e.Record, worker: k >= len(evs), ev: provider.Event{Type: e.Type, VMID: e.VMID, Time: e.Time}}
			if e.Type == provider.Created || e.Type == provider.Changed {
				vm, err := s.d.Get(ctx, e.VMID)
				switch {
				case err == nil:
					p.ev.VM = vm
				case errs.Is(err, errs.NotFound) && e.Type == provider.Created:
					p.silent = true // gone already: its 13003 follows
				case errs.Is(err, errs.NotFound):
					// Gone since: the VM as last known, with the power
					// the record gives.
					if old, ok := s.known[e.VMID]; ok {
						p.ev.VM = old // read only: Next writes known after pollNodes returns
					} else {
						p.ev.VM = provider.VM{ID: e.VMID, Name: e.VMName, Zone: s.zone}
					}
				default:
					return err
				}
				if e.Type == provider.Changed {
					p.ev.VM.Power = e.Power
				}
			}
			found[i] = append(found[i], p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var all []pendingEvent
	for _, f := range found {
		all = append(all, f...)
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if !a.ev.Time.Equal(b.ev.Time) {
			return a.ev.Time.Before(b.ev.Time)
		}
		if a.order != b.order {
			return a.order < b.order
		}
		if a.worker != b.worker {
			return !a.worker
		}
		return a.record < b.record
	})
	s.pending = append(s.pending, all...)
	return nil
}

// resyncNow lists every VM and queues a Changed for each known VM that
// differs. It reports neither Created nor Deleted (the records do): a VM
// it does not know yet is learnt silently, one it misses is left to its
// 13003.
func (s *stream) resyncNow(ctx context.Context) error {
	vms, err := s.d.List(ctx, &provider.ListOptions{})
	if err != nil {
		return err
	}
	s.lastResync = time.Now()
	now := time.Now().UTC()
	for _, vm := range vms {
		old, ok := s.known[vm.ID]
		if !ok {
			s.known[vm.ID] = vm
			continue
		}
		if !sameVM(old, vm) {
			if old.Power != vm.Power {
				s.told[vm.ID] = vm.Power // its power record will follow
			}
			s.pending = append(s.pending, pendingEvent{ev: provider.Event{Type: provider.Changed, VMID: vm.ID, VM: vm, Time: now}})
		}
	}
	return nil
}

// sameVM compares what a host sees change.
func sameVM(a, b provider.VM) bool {
	return a.Name == b.Name && a.Power == b.Power && a.CPUs == b.CPUs && a.MemoryMiB == b.MemoryMiB &&
		a.Annotation == b.Annotation && a.Guest.ToolsRunning == b.Guest.ToolsRunning &&
		slices.Equal(a.Guest.IPs, b.Guest.IPs) && maps.Equal(a.Attributes, b.Attributes)
}
