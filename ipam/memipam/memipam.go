package memipam

import (
	"cmp"
	"context"
	"hash/maphash"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/ipam"
)

// Options configures the in-memory IPAM. The zero value (or a nil
// *Options) is ready to use.
type Options struct {
	// Now returns the time recorded in Allocation.Created and Updated.
	// Nil means the system clock, read as time.Now would but more cheaply
	// (the monotonic clock added to a wall-clock reading at most a second
	// old).
	Now func() time.Time
	// Logger receives pool changes at Info level, allocations and releases
	// at Debug level and exhaustion at Warn level, and (through
	// ipam.Options.Logger) the Debug line of every call. Nil discards.
	Logger *slog.Logger
	// TracerProvider and MeterProvider are passed to the ipam.IPAM New
	// returns (ipam.Options): spans, call metrics and pool gauges.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Driver is the in-memory ipam.Driver. [New] returns it inside an
// ipam.IPAM, whose As reaches it (a *Driver target); [NewDriver] returns it
// alone, for a host that wraps drivers. It is safe for concurrent use.
type Driver struct {
	now  func() time.Time // Options.Now; nil: each pool's clock
	log  *slog.Logger
	hash func(maphash.Seed, string) uint64 // of owners; replaced by tests

	// loaded, if set, is called by tests between finding a pool in the
	// map and locking it.
	loaded func()

	// pools is the current map of pools, read without locking and
	// replaced (copied on write) under mu by CreatePool and DeletePool.
	// Each pool's state is guarded by its own mutex; DeletePool marks a
	// pool deleted under that mutex, so a call that found the pool in an
	// older map sees that it is gone.
	mu    sync.Mutex
	pools atomic.Pointer[map[string]*pool]

	// last is the pool most recently found by name: most callers use one
	// pool, and comparing its name is cheaper than a map lookup. It may
	// be a deleted pool; lockPool then looks in the map.
	last atomic.Pointer[pool]
}

var _ ipam.Driver = (*Driver)(nil)

// New returns an empty in-memory IPAM.
func New(opts *Options) *ipam.IPAM {
	var o ipam.Options
	if opts != nil {
		o = ipam.Options{Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider}
	}
	return ipam.New(NewDriver(opts), &o)
}

// NewDriver returns an empty in-memory driver. Only opts.Now and
// opts.Logger are used: the telemetry options belong to ipam.New.
func NewDriver(opts *Options) *Driver {
	m := &Driver{hash: maphash.String}
	m.pools.Store(&map[string]*pool{})
	if opts != nil {
		m.now = opts.Now
		m.log = opts.Logger
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m
}

// pool is one pool's state. Addresses are handled as offsets from the
// network address (offset o is the address base+o) and allocatable
// addresses as slots: slot i is the pool's i-th allocatable address, in
// address order.
//
// A cursor walks the offsets once, in order, jumping over excluded spans
// whole; each allocatable offset it reaches becomes the next slot. Allocate
// takes the cursor's next slot while there is one, then the oldest released
// slot (a FIFO), so an address rests as long as possible before it is
// reused. Each offset and each span is passed once over the pool's life, so
// allocation is O(1) amortized whatever the pool's size, and nothing ever
// scans the allocated addresses.
type pool struct {
	mu      sync.Mutex
	deleted bool      // set by DeletePool
	def     ipam.Pool // deep copy of the pool as created
	size    int       // def.Size()
	base    uint32    // the network address
	n       uint32    // number of addresses in the prefix (at most 1<<24)

	excl     []span   // excluded offsets: sorted, merged, never adjacent
	exclCum  []uint32 // exclCum[i]: excluded offsets in excl[:i]
	nextExcl int      // first span of excl at or beyond cursor
	cursor   uint32   // next offset to visit; never inside a span

	slots    [][]slot // slots the cursor has reached, in chunks of chunkSize
	nslots   uint32   // how many
	free     []uint32 // FIFO of released slots: free[freeHead:]
	freeHead int

	seed   maphash.Seed
	hash   func(maphash.Seed, string) uint64
	owners ownerIndex // owner -> slot
	clock  clock

	probes uint64 // cursor steps, span jumps and queue pops (for tests)
}

// chunkSize is how many slots are allocated together. Slots live in
// chunks rather than one growing slice so that the cursor's progress never
// copies the slots already made.
const chunkSize = 256

// span is an inclusive range of offsets.
type span struct{ from, to uint32 }

// slot is one allocatable address and its allocation, if any. Timestamps
// are kept as Unix seconds and nanoseconds rather than as time.Time: that
// halves their size and drops their pointers, which matters to the cache
// and to the garbage collector when a pool holds tens of thousands of
// allocations.
type slot struct {
	owner              string // "" while free
	local              netip.Addr
	createdS, updatedS int64 // seconds and nanoseconds of the Unix time
	off                uint32
	createdN, updatedN int32
}

func (s *slot) setCreated(sec int64, ns int32) { s.createdS, s.createdN = sec, ns }
func (s *slot) setUpdated(sec int64, ns int32) { s.updatedS, s.updatedN = sec, ns }

func newPool(def ipam.Pool, hash func(maphash.Seed, string) uint64) *pool {
	p := &pool{
		def:  def,
		size: def.Size(),
		base: u32(def.Prefix.Addr()),
		n:    uint32(1) << (32 - def.Prefix.Bits()),
		seed: maphash.MakeSeed(),
		hash: hash,
		// Laid out for the whole pool, up to 64Ki owners, so that filling
		// it does not grow the table: that costs at most 1 MiB, for a /16
		// or larger (a larger pool grows it as it fills), 4 KiB for a /24.
		owners: newOwnerIndex(def.Size()),
	}
	p.excl = exclusions(def, p.base)
	p.exclCum = make([]uint32, len(p.excl)+1)
	for i, s := range p.excl {
		p.exclCum[i+1] = p.exclCum[i] + (s.to - s.from + 1)
	}
	p.skip()
	return p
}

// exclusions returns the excluded offsets of def as sorted, merged spans.
func exclusions(def ipam.Pool, base uint32) []span {
	rs := def.ExcludedRanges()
	out := make([]span, len(rs))
	for i, r := range rs {
		out[i] = span{u32(r.From) - base, u32(r.To) - base}
	}
	return out
}

// skip moves the cursor past the excluded span it stands on, if any. Spans
// are never adjacent, so one jump always lands on an allocatable offset (or
// at the end).
func (p *pool) skip() {
	if p.nextExcl < len(p.excl) && p.excl[p.nextExcl].from == p.cursor {
		p.cursor = p.excl[p.nextExcl].to + 1 // at most n: to < n <= 1<<24
		p.nextExcl++
		p.probes++
	}
}

// take returns a free slot, if there is one.
func (p *pool) take() (uint32, bool) {
	p.probes++
	if p.cursor < p.n {
		i := p.nslots
		if i%chunkSize == 0 {
			p.slots = append(p.slots, make([]slot, 0, min(chunkSize, p.size-int(i))))
		}
		c := &p.slots[i/chunkSize]
		*c = append(*c, slot{off: p.cursor})
		p.nslots++
		p.cursor++
		p.skip()
		return i, true
	}
	if p.freeHead < len(p.free) {
		i := p.free[p.freeHead]
		p.freeHead++
		if p.freeHead == len(p.free) {
			p.free, p.freeHead = p.free[:0], 0
		}
		return i, true
	}
	return 0, false
}

// put returns a released slot to the pool.
func (p *pool) put(i uint32) {
	if p.freeHead > 0 && len(p.free) == cap(p.free) && 2*p.freeHead >= len(p.free) {
		// Compact instead of growing: the dead half pays for the copy.
		k := copy(p.free, p.free[p.freeHead:])
		p.free, p.freeHead = p.free[:k], 0
	}
	p.free = append(p.free, i)
}

// slotOf returns the slot of the address at offset off, if the cursor has
// reached it. It costs O(log s) for s excluded spans.
func (p *pool) slotOf(off uint32) (uint32, bool) {
	// k: how many spans start at or before off.
	k, _ := slices.BinarySearchFunc(p.excl, off+1, func(s span, t uint32) int { return cmp.Compare(s.from, t) })
	if k > 0 && off <= p.excl[k-1].to {
		return 0, false // excluded
	}
	i := off - p.exclCum[k]
	if i >= p.nslots {
		return 0, false
	}
	return i, true
}

// lookup finds the owner's slot. It returns the owner's tag in the index
// either way.
func (p *pool) lookup(owner string) (tag, i uint32, found bool) {
	tag = tagOf(p.hash(p.seed, owner))
	i, found = p.owners.find(tag, func(i uint32) bool { return p.slot(i).owner == owner })
	return tag, i, found
}

func (p *pool) used() int { return p.owners.n }

// now returns the time to record: Options.Now's if set, else the pool's
// clock's.
// The time is Unix seconds and nanoseconds.
func (p *pool) now(m *Driver) (int64, int32) {
	if m.now != nil {
		t := m.now()
		return t.Unix(), int32(t.Nanosecond())
	}
	return p.clock.now()
}

func (p *pool) slot(i uint32) *slot { return &p.slots[i/chunkSize][i%chunkSize] }

// info returns the pool's definition and usage. Its Reserved is the
// pool's own (immutable) slice: ipam.IPAM copies it for its caller.
func (p *pool) info() ipam.PoolInfo {
	return ipam.PoolInfo{Pool: p.def, Size: p.size, Used: p.used()}
}

func (p *pool) addr(off uint32) netip.Addr {
	v := p.base + off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (p *pool) alloc(s *slot) ipam.Allocation {
	return ipam.Allocation{
		Pool:    p.def.Name,
		Owner:   s.owner,
		Address: p.addr(s.off),
		LocalIP: s.local,
		Created: time.Unix(s.createdS, int64(s.createdN)),
		Updated: time.Unix(s.updatedS, int64(s.updatedN)),
	}
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// lockPool returns the named pool, locked.
func (m *Driver) lockPool(name string) (*pool, error) {
	if p := m.last.Load(); p != nil && p.def.Name == name {
		p.mu.Lock()
		if !p.deleted {
			return p, nil
		}
		p.mu.Unlock()
	}
	p := (*m.pools.Load())[name]
	if p == nil {
		return nil, noPool(name)
	}
	if m.loaded != nil {
		m.loaded()
	}
	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		return nil, noPool(name)
	}
	m.last.Store(p)
	return p, nil
}

// CreatePool adds a pool. Creating an identical pool (same prefix, gateway
// and reserved list) again is a no-op; a different pool under an existing
// name is AlreadyExists.
func (m *Driver) CreatePool(ctx context.Context, p ipam.Pool) error {
	m.mu.Lock()
	cur := *m.pools.Load()
	if old := cur[p.Name]; old != nil {
		m.mu.Unlock()
		if old.def.Equal(p) { // def is immutable: no need for old.mu
			return nil
		}
		return errs.Errorf(errs.AlreadyExists, "", "pool %s already exists with a different definition (prefix %s)",
			limit.Quote(p.Name), old.def.Prefix)
	}
	np := newPool(p, m.hash)
	next := maps.Clone(cur)
	next[p.Name] = np
	m.pools.Store(&next)
	m.mu.Unlock()
	m.log.LogAttrs(ctx, slog.LevelInfo, "ipam: pool created",
		slog.String("pool", p.Name), slog.String("prefix", p.Prefix.String()), slog.Int("size", np.size))
	return nil
}

// DeletePool removes an empty pool.
func (m *Driver) DeletePool(ctx context.Context, name string) error {
	m.mu.Lock()
	cur := *m.pools.Load()
	p := cur[name]
	if p == nil {
		m.mu.Unlock()
		return noPool(name)
	}
	p.mu.Lock()
	used := p.used()
	if used == 0 {
		p.deleted = true
	}
	p.mu.Unlock()
	if used > 0 {
		m.mu.Unlock()
		return errs.Errorf(errs.FailedPrecondition, "", "pool %s still has %d allocated addresses", limit.Quote(name), used)
	}
	next := maps.Clone(cur)
	delete(next, name)
	m.pools.Store(&next)
	m.mu.Unlock()
	m.log.LogAttrs(ctx, slog.LevelInfo, "ipam: pool deleted", slog.String("pool", name))
	return nil
}

// Pool returns a pool and its usage.
func (m *Driver) Pool(ctx context.Context, name string) (ipam.PoolInfo, error) {
	p, err := m.lockPool(name)
	if err != nil {
		return ipam.PoolInfo{}, err
	}
	defer p.mu.Unlock()
	return p.info(), nil
}

// Pools lists every pool, by name.
func (m *Driver) Pools(ctx context.Context) ([]ipam.PoolInfo, error) {
	cur := *m.pools.Load()
	out := make([]ipam.PoolInfo, 0, len(cur))
	for _, p := range cur {
		p.mu.Lock()
		if !p.deleted {
			out = append(out, p.info())
		}
		p.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b ipam.PoolInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Allocate gives req.Owner an address from req.Pool, or returns the one it
// holds (recording req.LocalIP when it is set and differs). A full pool is
// ResourceExhausted.
func (m *Driver) Allocate(ctx context.Context, req ipam.Request) (ipam.Allocation, error) {
	p, err := m.lockPool(req.Pool)
	if err != nil {
		return ipam.Allocation{}, err
	}
	tag, i, ok := p.lookup(req.Owner)
	if ok {
		s := p.slot(i)
		if req.LocalIP.IsValid() && req.LocalIP != s.local {
			s.local = req.LocalIP
			s.setUpdated(p.now(m))
		}
		a := p.alloc(s)
		p.mu.Unlock()
		return a, nil
	}
	i, ok = p.take()
	if !ok {
		size := p.size
		p.mu.Unlock()
		m.log.LogAttrs(ctx, slog.LevelWarn, "ipam: pool exhausted",
			slog.String("pool", req.Pool), slog.String("owner", req.Owner), slog.Int("size", size))
		return ipam.Allocation{}, errs.Errorf(errs.ResourceExhausted, "",
			"pool %s is exhausted: all %d addresses are allocated", limit.Quote(req.Pool), size)
	}
	sec, ns := p.now(m)
	s := p.slot(i)
	s.owner, s.local = req.Owner, req.LocalIP
	s.setCreated(sec, ns)
	s.setUpdated(sec, ns)
	p.owners.insert(tag, i)
	a := p.alloc(s)
	p.mu.Unlock()
	if m.log.Enabled(ctx, slog.LevelDebug) {
		m.log.LogAttrs(ctx, slog.LevelDebug, "ipam: address allocated", slog.String("pool", a.Pool),
			slog.String("owner", a.Owner), slog.String("address", a.Address.String()))
	}
	return a, nil
}

// Release frees the owner's address. Releasing what is not held is not an
// error; an unknown pool is NotFound.
func (m *Driver) Release(ctx context.Context, pool, owner string) error {
	p, err := m.lockPool(pool)
	if err != nil {
		return err
	}
	tag, i, ok := p.lookup(owner)
	if !ok {
		p.mu.Unlock()
		return nil
	}
	p.owners.remove(tag, i)
	s := p.slot(i)
	addr := p.addr(s.off)
	*s = slot{off: s.off}
	p.put(i)
	p.mu.Unlock()
	if m.log.Enabled(ctx, slog.LevelDebug) {
		m.log.LogAttrs(ctx, slog.LevelDebug, "ipam: address released", slog.String("pool", pool),
			slog.String("owner", owner), slog.String("address", addr.String()))
	}
	return nil
}

// SetLocalIP records the owner's new local address; the zero netip.Addr
// clears it. An owner that holds no address is NotFound.
func (m *Driver) SetLocalIP(ctx context.Context, pool, owner string, local netip.Addr) (ipam.Allocation, error) {
	p, err := m.lockPool(pool)
	if err != nil {
		return ipam.Allocation{}, err
	}
	defer p.mu.Unlock()
	_, i, ok := p.lookup(owner)
	if !ok {
		return ipam.Allocation{}, notHeld(pool, owner)
	}
	s := p.slot(i)
	if local != s.local {
		s.local = local
		s.setUpdated(p.now(m))
	}
	return p.alloc(s), nil
}

// Lookup returns the owner's allocation, or NotFound.
func (m *Driver) Lookup(ctx context.Context, pool, owner string) (ipam.Allocation, error) {
	p, err := m.lockPool(pool)
	if err != nil {
		return ipam.Allocation{}, err
	}
	defer p.mu.Unlock()
	_, i, ok := p.lookup(owner)
	if !ok {
		return ipam.Allocation{}, notHeld(pool, owner)
	}
	return p.alloc(p.slot(i)), nil
}

// LookupAddress returns the allocation of a public address, or NotFound.
// The zero address is InvalidArgument.
func (m *Driver) LookupAddress(ctx context.Context, pool string, addr netip.Addr) (ipam.Allocation, error) {
	p, err := m.lockPool(pool)
	if err != nil {
		return ipam.Allocation{}, err
	}
	defer p.mu.Unlock()
	if p.def.Prefix.Contains(addr) {
		if i, ok := p.slotOf(u32(addr) - p.base); ok && p.slot(i).owner != "" {
			return p.alloc(p.slot(i)), nil
		}
	}
	return ipam.Allocation{}, errs.Errorf(errs.NotFound, "", "%s is not allocated in pool %s", addr, limit.Quote(pool))
}

// Allocations lists a pool's allocations ordered by address.
func (m *Driver) Allocations(ctx context.Context, pool string) ([]ipam.Allocation, error) {
	p, err := m.lockPool(pool)
	if err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	// Slots are in address order: sort the held ones.
	held := make([]uint32, 0, p.used())
	p.owners.each(func(i uint32) { held = append(held, i) })
	slices.Sort(held)
	out := make([]ipam.Allocation, len(held))
	for k, i := range held {
		out[k] = p.alloc(p.slot(i))
	}
	return out, nil
}

// noPool is the NotFound error for a pool that does not exist.
func noPool(name string) error {
	return errs.Errorf(errs.NotFound, "", "no pool %s", limit.Quote(name))
}

// notHeld is the NotFound error for an owner that holds no address.
func notHeld(pool, owner string) error {
	return errs.Errorf(errs.NotFound, "", "owner %s holds no address in pool %s", limit.Quote(owner), limit.Quote(pool))
}
