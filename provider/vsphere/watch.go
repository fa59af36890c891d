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
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
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

func (p *Provider) latestKey(ctx context.Context) (int32, error) {
	// The newest event of any kind (EventManager.latestEvent is not kept
	// current by every vCenter, the simulator included).
	res, err := methods.QueryEvents(ctx, p.client, &types.QueryEvents{This: *p.client.ServiceContent.EventManager, Filter: types.EventFilterSpec{MaxCount: 1}})
	if err != nil {
		return 0, err
	}
	var k int32
	for _, ev := range res.Returnval {
		k = max(k, ev.GetEvent().Key)
	}
	return k, nil
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
	const opname = op + ".Cursor"
	if err := errs.FromContext(ctx, opname); err != nil {
		return "", err
	}
	k, err := p.latestKey(ctx)
	if err != nil {
		return "", mapErr(opname, err, false)
	}
	return cursorOf(k), nil
}

// Watch streams VM changes after cur. Created, power changes and Deleted
// come from vCenter's event history (their keys are the cursors, so a
// resumed stream replays exactly the later events); other changes (name,
// addresses, tools, size through config.changeVersion) come from
// WaitForUpdatesEx on a ContainerView of the VMs. A PropertyCollector
// "leave" without its VmRemovedEvent still reports Deleted after a short
// grace, and a VmRemovedEvent is enough without a "leave" (the simulator
// loses some), so a deletion is never missed.
func (p *Provider) Watch(ctx context.Context, cur provider.Cursor) (provider.Stream, error) {
	const opname = op + ".Watch"
	if err := errs.FromContext(ctx, opname); err != nil {
		return nil, err
	}
	latest, err := p.latestKey(ctx)
	if err != nil {
		return nil, mapErr(opname, err, false)
	}
	from, resume := latest, false
	if cur != "" {
		k, ok := parseCursor(cur)
		if !ok || k > latest {
			return nil, errs.WrapOp(opname, provider.ErrCursorExpired)
		}
		from, resume = k, true
	}
	// The stream's own calls outlive Watch's ctx; Close stops the loop
	// between two calls (a WaitForUpdatesEx lasts at most a second), so
	// the server-side collector is never destroyed under a running wait.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-sctx.Done():
		}
	}()
	st := &stream{
		p: p, ctx: sctx, cancel: cancel, out: make(chan provider.Event, 4096), done: make(chan struct{}), closed: make(chan struct{}),
		props:   map[types.ManagedObjectReference]map[string]types.AnyType{},
		known:   map[types.ManagedObjectReference]provider.VM{},
		pendC:   map[types.ManagedObjectReference]time.Time{},
		pendD:   map[types.ManagedObjectReference]time.Time{},
		uuids:   map[types.ManagedObjectReference]string{},
		lastKey: from,
	}
	if err := st.start(ctx, resume); err != nil {
		st.cleanup()
		cancel()
		return nil, errs.WrapOp(opname, err)
	}
	go st.run()
	return st, nil
}

type stream struct {
	p      *Provider
	ctx    context.Context
	cancel context.CancelFunc
	out    chan provider.Event
	done   chan struct{} // closed when run ends
	err    error         // set before done closes

	closeOnce sync.Once
	closed    chan struct{}

	pc, view, collector types.ManagedObjectReference
	version             string

	props   map[types.ManagedObjectReference]map[string]types.AnyType
	known   map[types.ManagedObjectReference]provider.VM
	pendC   map[types.ManagedObjectReference]time.Time
	pendD   map[types.ManagedObjectReference]time.Time
	uuids   map[types.ManagedObjectReference]string
	lastKey int32
	// buf holds events of the start-up replay until run sends them.
	buf []provider.Event
}

func (s *stream) start(ctx context.Context, resume bool) error {
	p := s.p
	c := p.client
	pc, err := methods.CreatePropertyCollector(ctx, c, &types.CreatePropertyCollector{This: c.ServiceContent.PropertyCollector})
	if err != nil {
		return mapErr(op, err, false)
	}
	s.pc = pc.Returnval
	cv, err := methods.CreateContainerView(ctx, c, &types.CreateContainerView{
		This: *c.ServiceContent.ViewManager, Container: c.ServiceContent.RootFolder, Type: []string{"VirtualMachine"}, Recursive: true,
	})
	if err != nil {
		return mapErr(op, err, false)
	}
	s.view = cv.Returnval
	col, err := methods.CreateCollectorForEvents(ctx, c, &types.CreateCollectorForEvents{
		This: *c.ServiceContent.EventManager, Filter: types.EventFilterSpec{EventTypeId: watchEvents},
	})
	if err != nil {
		return mapErr(op, err, false)
	}
	s.collector = col.Returnval
	if _, err := methods.SetCollectorPageSize(ctx, c, &types.SetCollectorPageSize{This: s.collector, MaxCount: 100}); err != nil {
		return mapErr(op, err, false)
	}
	specs := []types.PropertyFilterSpec{
		{
			ObjectSet: []types.ObjectSpec{{Obj: s.view, Skip: types.NewBool(true),
				SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}}}},
			PropSet: []types.PropertySpec{{Type: "VirtualMachine", PathSet: watchProps}},
		},
		{
			ObjectSet: []types.ObjectSpec{{Obj: s.collector}},
			PropSet:   []types.PropertySpec{{Type: "EventHistoryCollector", PathSet: []string{"latestPage"}}},
		},
	}
	for _, spec := range specs {
		if _, err := methods.CreateFilter(ctx, c, &types.CreateFilter{This: s.pc, Spec: spec, PartialUpdates: true}); err != nil {
			return mapErr(op, err, false)
		}
	}
	// The first update is the whole current state: the baseline.
	set, err := s.wait(ctx, 0)
	if err != nil {
		return err
	}
	pageEvents := s.applyVMs(set)
	if !resume {
		for ref := range s.props {
			if vm, ok := s.vm(ref); ok {
				s.known[ref] = vm
			}
		}
		return nil
	}
	// Resume: replay the history after the cursor.
	q, err := methods.QueryEvents(ctx, c, &types.QueryEvents{This: *c.ServiceContent.EventManager, Filter: types.EventFilterSpec{EventTypeId: watchEvents, MaxCount: 1000}})
	if err != nil {
		return mapErr(op, err, false)
	}
	history := append(q.Returnval, pageEvents...)
	sort.Slice(history, func(i, j int) bool { return history[i].GetEvent().Key < history[j].GetEvent().Key })
	history = slices.CompactFunc(history, func(a, b types.BaseEvent) bool { return a.GetEvent().Key == b.GetEvent().Key })
	if len(q.Returnval) >= 1000 && len(history) > 0 && history[0].GetEvent().Key > s.lastKey+1 {
		return provider.ErrCursorExpired // the history no longer reaches the cursor
	}
	// VMs that existed at the cursor are known; those created after it
	// are not (yet).
	firstCreate := map[types.ManagedObjectReference]int32{}
	for _, ev := range history {
		if ref, ok := vmRef(ev); ok {
			if u, ok := ev.(*types.VmInstanceUuidAssignedEvent); ok {
				s.uuids[ref] = u.InstanceUuid
			}
			if isCreation(ev) {
				if _, seen := firstCreate[ref]; !seen {
					firstCreate[ref] = ev.GetEvent().Key
				}
			}
		}
	}
	for ref := range s.props {
		if k, ok := firstCreate[ref]; ok && k > s.lastKey {
			continue
		}
		if vm, ok := s.vm(ref); ok {
			s.known[ref] = vm
		}
	}
	// VMs gone since that the history shows existing at the cursor.
	existed := map[types.ManagedObjectReference]bool{}
	for _, ev := range history {
		if ev.GetEvent().Key > s.lastKey {
			break
		}
		if ref, ok := vmRef(ev); ok {
			_, removed := ev.(*types.VmRemovedEvent)
			existed[ref] = !removed
		}
	}
	for ref, ok := range existed {
		if _, known := s.known[ref]; !ok || known {
			continue
		}
		s.p.cacheMu.Lock()
		vm, cached := s.p.last[ref]
		s.p.cacheMu.Unlock()
		if !cached && s.uuids[ref] != "" {
			vm, cached = provider.VM{ID: s.uuids[ref]}, true
		}
		if cached {
			s.known[ref] = vm.Clone()
		}
	}
	for _, ev := range history {
		if ev.GetEvent().Key <= s.lastKey {
			continue
		}
		if err := s.handleEvent(ctx, ev); err != nil {
			return err
		}
	}
	return nil
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

// wait calls WaitForUpdatesEx once (maxWait seconds; 0 returns at once
// with the pending changes).
func (s *stream) wait(ctx context.Context, maxWait int32) (*types.UpdateSet, error) {
	res, err := methods.WaitForUpdatesEx(ctx, s.p.client, &types.WaitForUpdatesEx{
		This: s.pc, Version: s.version, Options: &types.WaitOptions{MaxWaitSeconds: &maxWait},
	})
	if err != nil {
		return nil, mapErr(op, err, false)
	}
	if res.Returnval == nil {
		return nil, nil
	}
	s.version = res.Returnval.Version
	return res.Returnval, nil
}

// applyVMs applies the VM property changes of set and returns the events
// of the latestPage changes.
func (s *stream) applyVMs(set *types.UpdateSet) []types.BaseEvent {
	if set == nil {
		return nil
	}
	var evs []types.BaseEvent
	now := time.Now()
	for _, fu := range set.FilterSet {
		for _, ou := range fu.ObjectSet {
			ref := ou.Obj
			if ref.Type != "VirtualMachine" {
				for _, ch := range ou.ChangeSet {
					if ch.Name == "latestPage" {
						if arr, ok := ch.Val.(types.ArrayOfEvent); ok {
							evs = append(evs, arr.Event...)
						}
					}
				}
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
				if ch.Op == types.PropertyChangeOpRemove || ch.Val == nil {
					delete(m, ch.Name)
				} else {
					m[ch.Name] = ch.Val
				}
			}
		}
	}
	return evs
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
// else the last one seen).
func (s *stream) current(ctx context.Context, ref types.ManagedObjectReference) (provider.VM, bool) {
	if vm, ok := s.vm(ref); ok {
		return vm, true
	}
	if f, err := s.p.readFacts(ctx, ref, watchProps); err == nil && f.hasConfig {
		if vm, err := s.p.toVM(ctx, &f); err == nil {
			return vm, true
		}
	}
	if vm, ok := s.known[ref]; ok {
		return vm, true
	}
	s.p.cacheMu.Lock()
	vm, ok := s.p.last[ref]
	s.p.cacheMu.Unlock()
	return vm.Clone(), ok
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
		delete(s.pendD, ref)
		delete(s.pendC, ref)
		vm, ok := s.known[ref]
		if !ok {
			if _, live := s.props[ref]; live {
				return nil
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
		vm, ok := s.current(ctx, ref)
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

func (s *stream) step() error {
	set, err := s.wait(s.ctx, 1)
	if err != nil {
		return err
	}
	evs := s.applyVMs(set)
	if len(evs) == 0 && s.needsEvents(set) {
		// A power change, a new or a vanished VM: vCenter posts its event
		// just after the change, and the collector's latestPage may reach
		// the PropertyCollector later (much later on the simulator). Read
		// the page directly, a few times over 100 ms.
		for try := 0; try < 5 && len(evs) == 0; try++ {
			if try > 0 {
				select {
				case <-time.After(20 * time.Millisecond):
				case <-s.ctx.Done():
					return s.ctx.Err()
				}
			}
			var c mo.EventHistoryCollector
			if err := s.p.retrieveOne(s.ctx, s.collector, []string{"latestPage"}, &c); err == nil {
				for _, ev := range c.LatestPage {
					if ev.GetEvent().Key > s.lastKey {
						evs = append(evs, ev)
					}
				}
			}
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].GetEvent().Key < evs[j].GetEvent().Key })
	for _, ev := range evs {
		if ev.GetEvent().Key <= s.lastKey {
			continue
		}
		if err := s.handleEvent(s.ctx, ev); err != nil {
			return err
		}
	}
	now := time.Now()
	if set != nil {
		for _, fu := range set.FilterSet {
			for _, ou := range fu.ObjectSet {
				ref := ou.Obj
				if ref.Type != "VirtualMachine" || ou.Kind == types.ObjectUpdateKindLeave {
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
				vm.Power = old.Power
				if !sameButPower(vm, old) {
					s.emit(provider.Changed, ref, vm, s.lastKey, now)
				}
			}
		}
	}
	for ref, since := range s.pendC {
		if now.Sub(since) < leaveGrace {
			continue
		}
		delete(s.pendC, ref)
		if _, known := s.known[ref]; known {
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
			s.emit(provider.Deleted, ref, vm, s.lastKey, now)
		}
	}
	return nil
}

// needsEvents reports whether set holds VM changes that come with an event
// not seen yet: a power state other than the one reported, a new VM, a
// vanished one. (Re-sent "enter" updates of known VMs do not count.)
func (s *stream) needsEvents(set *types.UpdateSet) bool {
	if set == nil {
		return false
	}
	for _, fu := range set.FilterSet {
		for _, ou := range fu.ObjectSet {
			if ou.Obj.Type != "VirtualMachine" {
				continue
			}
			old, known := s.known[ou.Obj]
			switch {
			case ou.Kind == types.ObjectUpdateKindLeave:
				if known {
					return true
				}
				continue
			case !known:
				return true
			}
			for _, ch := range ou.ChangeSet {
				if ch.Name != "runtime.powerState" {
					continue
				}
				if ps, ok := ch.Val.(types.VirtualMachinePowerState); ok && powerOf(ps) != old.Power {
					return true
				}
			}
		}
	}
	return false
}

func (s *stream) run() {
	defer close(s.done)
	defer s.cleanup()
	defer s.cancel()
	for {
		for len(s.buf) > 0 {
			select {
			case s.out <- s.buf[0]:
				s.buf = s.buf[1:]
			case <-s.closed:
				s.err = errs.WrapOp(op+".Stream", provider.ErrStreamClosed)
				return
			case <-s.ctx.Done():
				s.err = errs.WrapOp(op+".Stream", provider.ErrStreamClosed)
				return
			}
		}
		select {
		case <-s.closed:
			s.err = errs.WrapOp(op+".Stream", provider.ErrStreamClosed)
			return
		default:
		}
		if err := s.step(); err != nil {
			select {
			case <-s.closed:
				err = provider.ErrStreamClosed
			default:
			}
			if s.ctx.Err() != nil {
				err = provider.ErrStreamClosed
			}
			s.err = errs.WrapOp(op+".Stream", err)
			return
		}
	}
}

func (s *stream) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := s.p.client
	if s.pc.Value != "" {
		_, _ = methods.DestroyPropertyCollector(ctx, c, &types.DestroyPropertyCollector{This: s.pc})
	}
	if s.view.Value != "" {
		_, _ = methods.DestroyView(ctx, c, &types.DestroyView{This: s.view})
	}
	if s.collector.Value != "" {
		_, _ = methods.DestroyCollector(ctx, c, &types.DestroyCollector{This: s.collector})
	}
}

// Next returns the next event.
func (s *stream) Next(ctx context.Context) (provider.Event, error) {
	const opname = op + ".Stream.Next"
	select {
	case <-s.closed:
		return provider.Event{}, errs.WrapOp(opname, provider.ErrStreamClosed)
	default:
	}
	if err := errs.FromContext(ctx, opname); err != nil {
		return provider.Event{}, err
	}
	select {
	case ev := <-s.out:
		return ev, nil
	case <-s.closed:
		return provider.Event{}, errs.WrapOp(opname, provider.ErrStreamClosed)
	case <-s.done:
		select {
		case ev := <-s.out:
			return ev, nil
		default:
		}
		return provider.Event{}, s.err
	case <-ctx.Done():
		return provider.Event{}, errs.FromContext(ctx, opname)
	}
}

// Close ends the stream and releases its server-side objects.
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		// End the wait in flight now (the loop then releases the
		// server-side collector) rather than when it times out.
		if s.pc.Value != "" {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, _ = methods.CancelWaitForUpdates(ctx, s.p.client, &types.CancelWaitForUpdates{This: s.pc})
			}()
		}
	})
	return nil
}
