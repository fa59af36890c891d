package vsphere

import (
	"context"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// cursorPrefix versions the cursor format: "vc1:<event key>".
const cursorPrefix = "vc1:"

// watchEvents are the vCenter events the stream is built on.
var watchEvents = []string{
	"VmCreatedEvent", "VmClonedEvent", "VmDeployedEvent", "VmRegisteredEvent",
	"VmPoweredOnEvent", "VmPoweredOffEvent", "VmSuspendedEvent", "VmRemovedEvent",
	"VmInstanceUuidAssignedEvent",
}

// watchProps are the VM properties the stream watches.
var watchProps = append(slices.Clone(vmProps), "config.changeVersion")

// leaveGrace is how long a PropertyCollector "enter" or "leave" waits for
// its vCenter event (which carries the cursor) before it is reported alone.
const leaveGrace = 2 * time.Second

// latestEvent returns the key and time of vCenter's newest event of any
// kind (EventManager.latestEvent is not kept current by every vCenter, the
// simulator included).
func (p *Provider) latestEvent(ctx context.Context) (int32, time.Time, error) {
	res, err := methods.QueryEvents(ctx, p.client, &types.QueryEvents{This: *p.client.ServiceContent.EventManager, Filter: types.EventFilterSpec{MaxCount: 1}})
	if err != nil {
		return 0, time.Time{}, err
	}
	var (
		k  int32
		at time.Time
	)
	for _, ev := range res.Returnval {
		if e := ev.GetEvent(); e.Key > k {
			k, at = e.Key, e.CreatedTime
		}
	}
	return k, at, nil
}

func cursorOf(key int32) provider.Cursor {
	return provider.Cursor(cursorPrefix + strconv.Itoa(int(key)))
}

func parseCursor(c provider.Cursor) (int32, bool) {
	s, ok := strings.CutPrefix(string(c), cursorPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0, false
	}
	return int32(n), true
}

// Cursor returns the current position: the key of vCenter's latest event.
func (p *Provider) Cursor(ctx context.Context) (provider.Cursor, error) {
	k, _, err := p.latestEvent(ctx)
	if err != nil {
		return "", mapErr("", err, false)
	}
	return cursorOf(k), nil
}

// Watch streams VM changes after cur. Created, power changes and Deleted
// come from vCenter's event history, read in order with ReadNextEvents
// from an EventHistoryCollector that a PropertyCollector of its own
// watches (so an event reaches the stream within one round trip of being
// posted, whatever the size of the inventory); their keys are the cursors,
// so a resumed stream replays exactly the later events. Other changes
// (name, addresses, tools, size through config.changeVersion) come from
// WaitForUpdatesEx on a ContainerView of the VMs, in a second
// PropertyCollector, merged into the last state of each VM. A
// PropertyCollector "leave" without its VmRemovedEvent still reports
// Deleted after a short grace, and a VmRemovedEvent is enough without a
// "leave" (the simulator loses some), so a deletion is never missed.
func (p *Provider) Watch(ctx context.Context, cur provider.Cursor) (provider.DriverStream, error) {
	latest, latestAt, err := p.latestEvent(ctx)
	if err != nil {
		return nil, mapErr("", err, false)
	}
	from, resume := latest, false
	if cur != "" {
		k, ok := parseCursor(cur)
		if !ok || k > latest {
			return nil, &errs.Error{Code: errs.FailedPrecondition, Err: provider.ErrCursorExpired,
				Msg: "cursor " + limit.Quote(string(cur)) + " is not a position in this vCenter's event history"}
		}
		from, resume = k, true
	}
	// The stream's own calls outlive Watch's ctx; Close ends the waits in
	// flight (CancelWaitForUpdates), and the server-side collectors are
	// destroyed only once no wait runs on them.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st := &stream{
		p: p, ctx: sctx, cancel: cancel, out: make(chan provider.Event, 4096),
		done: make(chan struct{}), closed: make(chan struct{}), quit: make(chan struct{}),
		updates: make(chan *types.UpdateSet), events: make(chan []types.BaseEvent), fail: make(chan error, 2),
		props:   map[types.ManagedObjectReference]map[string]types.AnyType{},
		known:   map[types.ManagedObjectReference]provider.VM{},
		partial: map[types.ManagedObjectReference]bool{},
		removed: map[types.ManagedObjectReference]bool{},
		pendC:   map[types.ManagedObjectReference]time.Time{},
		pendD:   map[types.ManagedObjectReference]time.Time{},
		uuids:   map[types.ManagedObjectReference]string{},
		lastKey: from,
	}
	since := latestAt
	if resume {
		since = time.Time{} // the cursor's event's time, from the history
	}
	if err := st.start(ctx, resume, since); err != nil {
		st.cleanup()
		cancel()
		return nil, errs.WrapOp("", err)
	}
	if !p.addStream() {
		st.cleanup()
		cancel()
		return nil, errs.New(errs.FailedPrecondition, "", "the provider is closed")
	}
	go func() {
		select {
		case <-p.stop:
			// Nothing more reaches vCenter: Close logs out, which
			// releases the stream's server-side objects.
			cancel()
			st.Close()
		case <-st.quit:
		}
	}()
	go func() {
		defer p.streams.Done()
		st.run()
	}()
	return st, nil
}

// readBatch is how many events one ReadNextEvents call asks for.
const readBatch = 1000

type stream struct {
	p      *Provider
	ctx    context.Context
	cancel context.CancelFunc
	out    chan provider.Event
	done   chan struct{} // closed when run stops sending
	err    error         // set before done closes

	closeOnce sync.Once
	closed    chan struct{} // closed by Close
	quit      chan struct{} // closed when run ends: the readers stop
	readers   sync.WaitGroup

	// The inventory: a PropertyCollector with one filter on a
	// ContainerView of the VMs. Its version is the reader's.
	pc, view types.ManagedObjectReference
	version  string
	// The events: an EventHistoryCollector, read with ReadNextEvents,
	// and a PropertyCollector watching its latestPage to know when.
	epc, collector types.ManagedObjectReference
	eversion       string
	readKey        int32 // the newest event key ReadNextEvents gave

	updates chan *types.UpdateSet
	events  chan []types.BaseEvent
	fail    chan error

	// The state below is run's (start's before run begins).
	props   map[types.ManagedObjectReference]map[string]types.AnyType // merged watched properties
	known   map[types.ManagedObjectReference]provider.VM              // as last reported
	partial map[types.ManagedObjectReference]bool                     // known only from events or a cache (VMs gone since the cursor)
	removed map[types.ManagedObjectReference]bool                     // a VmRemovedEvent was seen
	pendC   map[types.ManagedObjectReference]time.Time
	pendD   map[types.ManagedObjectReference]time.Time
	uuids   map[types.ManagedObjectReference]string
	lastKey int32
	// buf holds the events run has not handed to out yet.
	buf []provider.Event
}

func (s *stream) start(ctx context.Context, resume bool, since time.Time) error {
	p := s.p
	c := p.client
	var history []types.BaseEvent
	if resume {
		// The recent history: whether it reaches the cursor, and what
		// the VMs were then.
		q, err := methods.QueryEvents(ctx, c, &types.QueryEvents{This: *c.ServiceContent.EventManager, Filter: types.EventFilterSpec{EventTypeId: watchEvents, MaxCount: readBatch}})
		if err != nil {
			return mapErr("", err, false)
		}
		history = q.Returnval
		sort.Slice(history, func(i, j int) bool { return history[i].GetEvent().Key < history[j].GetEvent().Key })
		if len(history) >= readBatch && history[0].GetEvent().Key > s.lastKey+1 {
			return provider.ErrCursorExpired // the history no longer reaches the cursor
		}
		for _, ev := range history {
			if e := ev.GetEvent(); e.Key <= s.lastKey {
				since = e.CreatedTime
			}
		}
	}
	// The events: the collector holds every event from the cursor on (the
	// replay) and every later one.
	filter := types.EventFilterSpec{EventTypeId: watchEvents}
	if !since.IsZero() {
		// Only what is new (a vCenter's history can be long): a second
		// early, as the keys decide.
		b := since.Add(-time.Second)
		filter.Time = &types.EventFilterSpecByTime{BeginTime: &b}
	}
	col, err := methods.CreateCollectorForEvents(ctx, c, &types.CreateCollectorForEvents{This: *c.ServiceContent.EventManager, Filter: filter})
	if err != nil {
		return mapErr("", err, false)
	}
	s.collector = col.Returnval
	// latestPage is only watched to learn that events were posted: one
	// event is enough.
	if _, err := methods.SetCollectorPageSize(ctx, c, &types.SetCollectorPageSize{This: s.collector, MaxCount: 1}); err != nil {
		return mapErr("", err, false)
	}
	epc, err := methods.CreatePropertyCollector(ctx, c, &types.CreatePropertyCollector{This: c.ServiceContent.PropertyCollector})
	if err != nil {
		return mapErr("", err, false)
	}
	s.epc = epc.Returnval
	if _, err := methods.CreateFilter(ctx, c, &types.CreateFilter{This: s.epc, Spec: types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: s.collector}},
		PropSet:   []types.PropertySpec{{Type: "EventHistoryCollector", PathSet: []string{"latestPage"}}},
	}}); err != nil {
		return mapErr("", err, false)
	}
	// The inventory.
	pc, err := methods.CreatePropertyCollector(ctx, c, &types.CreatePropertyCollector{This: c.ServiceContent.PropertyCollector})
	if err != nil {
		return mapErr("", err, false)
	}
	s.pc = pc.Returnval
	cv, err := methods.CreateContainerView(ctx, c, &types.CreateContainerView{
		This: *c.ServiceContent.ViewManager, Container: c.ServiceContent.RootFolder, Type: []string{"VirtualMachine"}, Recursive: true,
	})
	if err != nil {
		return mapErr("", err, false)
	}
	s.view = cv.Returnval
	if _, err := methods.CreateFilter(ctx, c, &types.CreateFilter{This: s.pc, Spec: types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: s.view, Skip: types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}}}},
		PropSet: []types.PropertySpec{{Type: "VirtualMachine", PathSet: watchProps}},
	}, PartialUpdates: true}); err != nil {
		return mapErr("", err, false)
	}
	// The baseline: the whole current state, which vCenter hands out in
	// pages (truncated update sets, 100 objects each on the simulator).
	for {
		set, err := s.wait(ctx, s.pc, &s.version, 0)
		if err != nil {
			return err
		}
		s.applyVMs(set)
		if set == nil || set.Truncated == nil || !*set.Truncated {
			break
		}
	}
	// Everything the collector holds now: the replay after the cursor,
	// and what came since Watch read the latest event.
	fresh, err := s.readEvents(ctx)
	if err != nil {
		return err
	}
	// VMs that existed at the cursor are known; those created after it
	// are not (yet).
	firstCreate := map[types.ManagedObjectReference]int32{}
	for _, evs := range [][]types.BaseEvent{history, fresh} {
		for _, ev := range evs {
			ref, ok := vmRef(ev)
			if !ok {
				continue
			}
			if u, ok := ev.(*types.VmInstanceUuidAssignedEvent); ok {
				s.uuids[ref] = u.InstanceUuid
			}
			if k := ev.GetEvent().Key; isCreation(ev) && k > s.lastKey {
				if first, seen := firstCreate[ref]; !seen || k < first {
					firstCreate[ref] = k
				}
			}
		}
	}
	for ref := range s.props {
		if _, ok := firstCreate[ref]; ok {
			continue
		}
		if vm, ok := s.vm(ref); ok {
			s.known[ref] = vm
		}
	}
	// VMs gone since that the history shows existing at the cursor: what
	// this provider last saw of them, else what their last event tells.
	existed := map[types.ManagedObjectReference]types.BaseEvent{}
	for _, ev := range history {
		if ev.GetEvent().Key > s.lastKey {
			break
		}
		if ref, ok := vmRef(ev); ok {
			if _, removed := ev.(*types.VmRemovedEvent); removed {
				delete(existed, ref)
			} else {
				existed[ref] = ev
			}
		}
	}
	for ref, last := range existed {
		if _, live := s.props[ref]; live {
			continue
		}
		s.p.cacheMu.Lock()
		vm, cached := s.p.last[ref]
		s.p.cacheMu.Unlock()
		switch {
		case cached:
			s.known[ref] = vm.Clone()
		case s.uuids[ref] != "":
			s.known[ref] = s.fromEvent(last.GetEvent(), s.uuids[ref])
		default:
			continue
		}
		s.partial[ref] = true
	}
	for _, ev := range fresh {
		if ev.GetEvent().Key <= s.lastKey {
			continue
		}
		if err := s.handleEvent(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// readEvents reads the events the collector holds after the last read, in
// order.
func (s *stream) readEvents(ctx context.Context) ([]types.BaseEvent, error) {
	var out []types.BaseEvent
	for {
		res, err := methods.ReadNextEvents(ctx, s.p.client, &types.ReadNextEvents{This: s.collector, MaxCount: readBatch})
		if err != nil {
			return nil, mapErr("", err, false)
		}
		for _, ev := range res.Returnval {
			if k := ev.GetEvent().Key; k > s.readKey {
				s.readKey = k
			}
		}
		out = append(out, res.Returnval...)
		if len(res.Returnval) < readBatch {
			return out, nil
		}
	}
}

func vmRef(ev types.BaseEvent) (types.ManagedObjectReference, bool) {
	e := ev.GetEvent()
	if e.Vm == nil {
		return types.ManagedObjectReference{}, false
	}
	return e.Vm.Vm, true
}

func isCreation(ev types.BaseEvent) bool {
	switch ev.(type) {
	case *types.VmCreatedEvent, *types.VmClonedEvent, *types.VmDeployedEvent, *types.VmRegisteredEvent:
		return true
	}
	return false
}

// wait calls WaitForUpdatesEx on the collector pc once (maxWait seconds; 0
// returns at once with the pending changes).
func (s *stream) wait(ctx context.Context, pc types.ManagedObjectReference, version *string, maxWait int32) (*types.UpdateSet, error) {
	res, err := methods.WaitForUpdatesEx(ctx, s.p.client, &types.WaitForUpdatesEx{
		This: pc, Version: *version, Options: &types.WaitOptions{MaxWaitSeconds: &maxWait},
	})
	if err != nil {
		return nil, mapErr("", err, false)
	}
	if res.Returnval == nil {
		return nil, nil
	}
	*version = res.Returnval.Version
	return res.Returnval, nil
}

// applyVMs merges the VM property changes of set into the state of each
// VM: a "modify" carries only the properties that changed.
func (s *stream) applyVMs(set *types.UpdateSet) {
	if set == nil {
		return
	}
	now := time.Now()
	for _, fu := range set.FilterSet {
		for _, ou := range fu.ObjectSet {
			ref := ou.Obj
			if ref.Type != "VirtualMachine" || s.removed[ref] {
				continue
			}
			switch ou.Kind {
			case types.ObjectUpdateKindLeave:
				if _, ok := s.known[ref]; ok {
					if _, pending := s.pendD[ref]; !pending {
						s.pendD[ref] = now
					}
				}
				delete(s.props, ref)
				delete(s.pendC, ref)
				continue
			case types.ObjectUpdateKindEnter:
				s.props[ref] = map[string]types.AnyType{}
				delete(s.pendD, ref)
			}
			m := s.props[ref]
			if m == nil {
				m = map[string]types.AnyType{}
				s.props[ref] = m
			}
			for _, ch := range ou.ChangeSet {
				if ch.Op == types.PropertyChangeOpRemove || ch.Op == types.PropertyChangeOpIndirectRemove || ch.Val == nil {
					delete(m, ch.Name)
				} else {
					m[ch.Name] = ch.Val
				}
			}
		}
	}
}

// vm builds the VM of ref from its watched properties.
func (s *stream) vm(ref types.ManagedObjectReference) (provider.VM, bool) {
	m := s.props[ref]
	if m == nil {
		return provider.VM{}, false
	}
	props := make([]types.DynamicProperty, 0, len(m))
	for k, v := range m {
		props = append(props, types.DynamicProperty{Name: k, Val: v})
	}
	f := factsFrom(ref, props)
	if !f.hasConfig || f.uuid == "" {
		return provider.VM{}, false
	}
	topo, err := s.p.topology(s.ctx, false)
	if err != nil {
		return provider.VM{}, false
	}
	if f.host != nil && topo.hosts[*f.host] == nil {
		if t, err := s.p.topology(s.ctx, true); err == nil {
			topo = t
		}
	}
	vm := topo.toVM(&f)
	s.p.rememberRef(ref, vm)
	return vm, true
}

// current is the VM as it is now (watched properties, else a direct read,
// else the last one seen). complete is false when it is only what was last
// seen of a VM that is gone.
func (s *stream) current(ctx context.Context, ref types.ManagedObjectReference) (vm provider.VM, complete, ok bool) {
	if vm, ok := s.vm(ref); ok {
		return vm, true, true
	}
	if f, err := s.p.readFacts(ctx, ref, watchProps); err == nil && f.hasConfig {
		if vm, err := s.p.toVM(ctx, &f); err == nil {
			return vm, true, true
		}
	}
	if vm, ok := s.known[ref]; ok {
		return vm, false, true
	}
	s.p.cacheMu.Lock()
	vm, ok = s.p.last[ref]
	s.p.cacheMu.Unlock()
	return vm.Clone(), false, ok
}

func (s *stream) emit(typ provider.EventType, ref types.ManagedObjectReference, vm provider.VM, key int32, at time.Time) {
	ev := provider.Event{Type: typ, VMID: vm.ID, Cursor: cursorOf(key), Time: at}
	if typ == provider.Deleted {
		delete(s.known, ref)
	} else {
		ev.VM = vm.Clone()
		s.known[ref] = vm
	}
	s.buf = append(s.buf, ev)
}

func (s *stream) handleEvent(ctx context.Context, ev types.BaseEvent) error {
	e := ev.GetEvent()
	key := e.Key
	if key > s.lastKey {
		s.lastKey = key
	}
	ref, ok := vmRef(ev)
	if !ok {
		return nil
	}
	if u, ok := ev.(*types.VmInstanceUuidAssignedEvent); ok {
		s.uuids[ref] = u.InstanceUuid
		return nil
	}
	_, known := s.known[ref]
	switch x := ev.(type) {
	case *types.VmRemovedEvent:
		if len(s.removed) > 100000 {
			clear(s.removed)
		}
		s.removed[ref] = true
		delete(s.pendD, ref)
		delete(s.pendC, ref)
		_, live := s.props[ref]
		delete(s.props, ref)
		vm, ok := s.known[ref]
		if !ok {
			if live {
				return nil // never reported: nothing to delete
			}
			// A VM deleted since the cursor that this process never saw:
			// its ID cannot be told, so the caller must resync.
			if id := s.uuids[ref]; id != "" {
				vm = provider.VM{ID: id}
			} else {
				s.p.cacheMu.Lock()
				vm, ok = s.p.last[ref]
				s.p.cacheMu.Unlock()
				if !ok {
					return provider.ErrCursorExpired
				}
			}
		}
		delete(s.partial, ref)
		s.emit(provider.Deleted, ref, vm, key, e.CreatedTime)
	default:
		power := provider.PowerUnknown
		switch x.(type) {
		case *types.VmPoweredOnEvent:
			power = provider.PoweredOn
		case *types.VmPoweredOffEvent:
			power = provider.PoweredOff
		case *types.VmSuspendedEvent:
			power = provider.Suspended
		}
		if isCreation(ev) && known {
			return nil
		}
		vm, complete, ok := s.current(ctx, ref)
		if !ok {
			// Gone since, and never seen by this process: what the
			// event tells (a host replaying after a restart still gets
			// the VM's whole life).
			id := s.uuids[ref]
			if id == "" {
				return nil
			}
			vm = s.fromEvent(e, id)
		}
		if vm.ID == "" {
			vm.ID = s.uuids[ref]
		}
		delete(s.pendC, ref)
		if complete {
			delete(s.partial, ref)
		}
		if !known {
			if power != provider.PowerUnknown {
				vm.Power = power
			}
			s.emit(provider.Created, ref, vm, key, e.CreatedTime)
			return nil
		}
		if power == provider.PowerUnknown {
			return nil
		}
		vm.Power = power
		s.emit(provider.Changed, ref, vm, key, e.CreatedTime)
	}
	return nil
}

// fromEvent builds what an event says of a VM that no longer exists.
func (s *stream) fromEvent(e *types.Event, id string) provider.VM {
	vm := provider.VM{ID: id, Attributes: map[string]string{"moref": e.Vm.Vm.Value}}
	vm.Name = e.Vm.Name
	topo, err := s.p.topology(s.ctx, false)
	if err != nil {
		return vm
	}
	if e.Datacenter != nil {
		vm.Attributes["datacenter"] = e.Datacenter.Name
	}
	if e.ComputeResource != nil {
		vm.Attributes["cluster"] = e.ComputeResource.Name
		for ref, c := range topo.computes {
			if c.name == e.ComputeResource.Name && (e.Datacenter == nil || topo.dcs[c.dc] != nil && topo.dcs[c.dc].name == e.Datacenter.Name) {
				vm.Zone = topo.zoneOf(ref, c.dc)
			}
		}
	}
	return vm
}

// sameButPower compares what the PropertyCollector reports (power comes
// from events).
func sameButPower(a, b provider.VM) bool {
	a.Power, b.Power = "", ""
	return reflect.DeepEqual(a, b)
}

// inventory handles an update set of the VM PropertyCollector: the
// changes are merged into each VM's state, and a VM reported before whose
// state now differs is Changed, whole. Its power stays the one its last
// event told (a power change is reported by its event, with its cursor),
// unless no event told one.
func (s *stream) inventory(set *types.UpdateSet) {
	s.applyVMs(set)
	now := time.Now()
	for _, fu := range set.FilterSet {
		for _, ou := range fu.ObjectSet {
			ref := ou.Obj
			if ref.Type != "VirtualMachine" || ou.Kind == types.ObjectUpdateKindLeave || s.removed[ref] {
				continue
			}
			old, known := s.known[ref]
			if !known {
				if _, pending := s.pendC[ref]; !pending {
					s.pendC[ref] = now
				}
				continue
			}
			vm, ok := s.vm(ref)
			if !ok {
				continue
			}
			partial := s.partial[ref]
			if old.Power != provider.PowerUnknown && !partial {
				vm.Power = old.Power
			}
			if partial || !sameButPower(vm, old) {
				delete(s.partial, ref)
				s.emit(provider.Changed, ref, vm, s.lastKey, now)
			}
		}
	}
}

// expire reports what waited longer than leaveGrace for its event: a VM
// that appeared (Created) or vanished (Deleted) in the PropertyCollector
// only.
func (s *stream) expire(now time.Time) {
	for ref, since := range s.pendC {
		if now.Sub(since) < leaveGrace {
			continue
		}
		delete(s.pendC, ref)
		if _, known := s.known[ref]; known || s.removed[ref] {
			continue
		}
		if vm, ok := s.vm(ref); ok {
			s.emit(provider.Created, ref, vm, s.lastKey, now)
		}
	}
	for ref, since := range s.pendD {
		if now.Sub(since) < leaveGrace {
			continue
		}
		delete(s.pendD, ref)
		if vm, ok := s.known[ref]; ok {
			delete(s.partial, ref)
			s.emit(provider.Deleted, ref, vm, s.lastKey, now)
		}
	}
}

// readInventory waits for VM property changes and hands them to run.
func (s *stream) readInventory() {
	defer s.readers.Done()
	for {
		set, err := s.wait(s.ctx, s.pc, &s.version, 1)
		if err != nil {
			s.failed(err)
			return
		}
		if set == nil {
			select {
			case <-s.quit:
				return
			default:
				continue
			}
		}
		select {
		case s.updates <- set:
		case <-s.quit:
			return
		}
	}
}

// readEventsLoop waits until the collector's latestPage changes (or a
// second passes), then reads the new events in order and hands them to
// run. If the newest event the page showed was not among those read,
// the collector lost its place (more events came than it keeps between
// two reads): the stream cannot tell what it missed.
func (s *stream) readEventsLoop() {
	defer s.readers.Done()
	var newest int32
	for {
		set, err := s.wait(s.ctx, s.epc, &s.eversion, 1)
		if err != nil {
			s.failed(err)
			return
		}
		if set != nil {
			for _, fu := range set.FilterSet {
				for _, ou := range fu.ObjectSet {
					for _, ch := range ou.ChangeSet {
						if arr, ok := ch.Val.(types.ArrayOfEvent); ok && ch.Name == "latestPage" {
							for _, ev := range arr.Event {
								newest = max(newest, ev.GetEvent().Key)
							}
						}
					}
				}
			}
		}
		evs, err := s.readEvents(s.ctx)
		if err != nil {
			s.failed(err)
			return
		}
		if newest > s.readKey {
			s.failed(provider.ErrCursorExpired)
			return
		}
		if len(evs) == 0 {
			select {
			case <-s.quit:
				return
			default:
				continue
			}
		}
		select {
		case s.events <- evs:
		case <-s.quit:
			return
		}
	}
}

// failed hands a reader's error to run (after Close, the reader's waits
// fail: run is stopping anyway).
func (s *stream) failed(err error) {
	select {
	case s.fail <- err:
	default:
	}
}

func (s *stream) run() {
	s.readers.Add(2)
	go s.readInventory()
	go s.readEventsLoop()
	s.err = s.loop()
	close(s.done)
	close(s.quit)
	s.cancelWaits()
	// The collectors go once no wait runs on them.
	s.readers.Wait()
	s.cleanup()
	s.cancel()
}

func (s *stream) loop() error {
	tick := time.NewTicker(leaveGrace / 8)
	defer tick.Stop()
	for {
		var out chan provider.Event
		var next provider.Event
		if len(s.buf) > 0 {
			out, next = s.out, s.buf[0]
		}
		select {
		case out <- next:
			s.buf[0] = provider.Event{}
			s.buf = s.buf[1:]
		case set := <-s.updates:
			s.inventory(set)
		case evs := <-s.events:
			for _, ev := range evs {
				if ev.GetEvent().Key <= s.lastKey {
					continue
				}
				if err := s.handleEvent(s.ctx, ev); err != nil {
					return errs.WrapOp("", err)
				}
			}
		case now := <-tick.C:
			s.expire(now)
		case err := <-s.fail:
			select {
			case <-s.closed:
				err = provider.ErrStreamClosed
			default:
			}
			if s.ctx.Err() != nil {
				err = provider.ErrStreamClosed
			}
			return errs.WrapOp("", err)
		case <-s.closed:
			return errs.Wrap(errs.FailedPrecondition, "", provider.ErrStreamClosed)
		}
	}
}

// cancelWaits ends the waits in flight on the stream's collectors.
func (s *stream) cancelWaits() {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	for _, pc := range []types.ManagedObjectReference{s.pc, s.epc} {
		if pc.Value != "" {
			_, _ = methods.CancelWaitForUpdates(ctx, s.p.client, &types.CancelWaitForUpdates{This: pc})
		}
	}
}

func (s *stream) cleanup() {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	c := s.p.client
	for _, pc := range []types.ManagedObjectReference{s.pc, s.epc} {
		if pc.Value != "" {
			_, _ = methods.DestroyPropertyCollector(ctx, c, &types.DestroyPropertyCollector{This: pc})
		}
	}
	if s.view.Value != "" {
		_, _ = methods.DestroyView(ctx, c, &types.DestroyView{This: s.view})
	}
	if s.collector.Value != "" {
		_, _ = methods.DestroyCollector(ctx, c, &types.DestroyCollector{This: s.collector})
	}
}

// Next returns the next event. A stream closed by the driver's own Close
// returns ErrStreamClosed even with events still buffered.
func (s *stream) Next(ctx context.Context) (provider.Event, error) {
	select {
	case <-s.closed:
		return provider.Event{}, errs.Wrap(errs.FailedPrecondition, "", provider.ErrStreamClosed)
	default:
	}
	select {
	case ev := <-s.out:
		return ev, nil
	case <-s.closed:
		return provider.Event{}, errs.Wrap(errs.FailedPrecondition, "", provider.ErrStreamClosed)
	case <-s.done:
		select {
		case ev := <-s.out:
			return ev, nil
		default:
		}
		return provider.Event{}, s.err
	case <-ctx.Done():
		return provider.Event{}, errs.FromContext(ctx, "")
	}
}

// Close ends the stream and releases its server-side objects (in the
// background, once the waits in flight have ended).
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		// End the waits in flight now rather than when they time out.
		go s.cancelWaits()
	})
	return nil
}
