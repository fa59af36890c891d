//go:build linux

package nftables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"

	nft "github.com/google/nftables"
	"github.com/vishvananda/netns"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/obs"
	"github.com/managedvm/managedvm/natfw"
)

// DefaultTable is the table name used when Options.Table is empty.
const DefaultTable = "managedvm"

// Options configures a Firewall. The zero value (or nil) is usable: table
// "managedvm" in the caller's network namespace, rules on every interface,
// no address management.
type Options struct {
	// Table is the name of the nftables table (family ip) the driver owns.
	// Empty means DefaultTable.
	Table string
	// NetNSPath is the network namespace to program, as a path such as
	// "/run/netns/router" or "/proc/PID/ns/net". Empty means the namespace
	// of the calling process.
	NetNSPath string
	// WANInterface, if set, limits the rules to traffic entering (DNAT,
	// filter) or leaving (SNAT) through this interface. Traffic to a NAT'd
	// VM from other interfaces is then neither translated nor filtered.
	WANInterface string
	// ManagePublicAddress makes EnsureNAT add each rule's public address
	// (as a /32) to WANInterface and RemoveNAT remove it, so the router
	// answers ARP for it. Requires WANInterface.
	ManagePublicAddress bool
	// KeepConnections leaves conntrack alone. By default RemoveNAT, and an
	// EnsureNAT that moves a rule to another public or local address, end
	// the connections translated through the old addresses (deleting
	// their conntrack entries), so they do not outlive the rule.
	KeepConnections bool
	// LockDir holds the lock file that serializes changes to the table
	// across processes on this host (flock; the file holds no state).
	// Empty means /run/lock, or os.TempDir() where that does not exist.
	// Every writer of a table must use the same directory.
	LockDir string
	// Logger receives a debug line for every change the driver makes in
	// the kernel (and, through the portable type, one per call); nil
	// discards.
	Logger *slog.Logger
	// TracerProvider and MeterProvider, if set, are passed to natfw.New
	// for a span per call and the call metrics.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Driver is the natfw.Driver that programs one nftables table through
// netlink. Create the portable Firewall over one with New (or a bare
// Driver with NewDriver); release it with Close.
type Driver struct {
	opts       Options
	log        *slog.Logger
	ns         *netns.NsHandle // nil: the caller's namespace
	wan        string
	manageAddr bool
	table      *nft.Table
	chains     map[string]*nft.Chain

	// writer (capacity 1) is the slot a change holds from before it
	// waits for lock until it is done: unlike a mutex, waiting for it
	// can end with the caller's context. lock serializes changes across
	// Drivers and processes. mu keeps reads from seeing half of a change
	// and, with closed under it, keeps a call that raced with Close off
	// the closed namespace handle.
	writer chan struct{}
	mu     sync.RWMutex
	lock   *changeLock
	closed bool

	// gen reads the ruleset generation (nil: unavailable, no reuse).
	gen *genSocket
	// cached is the kernel's state at generation cachedGen, kept in step
	// by fol (see follow.go). Guarded by cacheMu, which a reader holds
	// for as long as it uses the state; a writer holds mu, which keeps
	// every other user of the state out.
	cacheMu   sync.Mutex
	cached    *state
	cachedGen uint32
	fol       *follower
	folErr    error // the follower could not start: no notifications
}

var _ natfw.Driver = (*Driver)(nil)

// New returns the portable Firewall over a Driver for the table and
// namespace opts name (see NewDriver). Reach the Driver (for DeleteTable)
// with As:
//
//	var d *nftables.Driver
//	fw.As(&d)
func New(opts *Options) (*natfw.Firewall, error) {
	d, err := NewDriver(opts)
	if err != nil {
		return nil, err
	}
	return natfw.New(d, &natfw.Options{Logger: d.opts.Logger, TracerProvider: d.opts.TracerProvider, MeterProvider: d.opts.MeterProvider}), nil
}

// NewDriver returns a Driver for the table and namespace opts name. It
// opens the namespace but does not touch the kernel's rules: the table and
// its chains are created by the first EnsureNAT.
func NewDriver(opts *Options) (*Driver, error) {
	const op = "nftables.New"
	if opts == nil {
		opts = &Options{}
	}
	name := opts.Table
	if name == "" {
		name = DefaultTable
	}
	if len(name) > 255 || strings.ContainsRune(name, 0) {
		return nil, errs.Errorf(errs.InvalidArgument, op, "invalid table name %s", limit.Quote(name))
	}
	if opts.ManagePublicAddress && opts.WANInterface == "" {
		return nil, errs.New(errs.InvalidArgument, op, "ManagePublicAddress needs WANInterface")
	}
	if len(opts.WANInterface) > 15 {
		return nil, errs.Errorf(errs.InvalidArgument, op, "interface name %s is longer than 15 bytes", limit.Quote(opts.WANInterface))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Driver{writer: make(chan struct{}, 1), log: log, wan: opts.WANInterface, manageAddr: opts.ManagePublicAddress, opts: *opts}
	if opts.NetNSPath != "" {
		h, err := netns.GetFromPath(opts.NetNSPath)
		if err != nil {
			code := errs.Unavailable
			if errors.Is(err, syscall.ENOENT) {
				code = errs.NotFound
			}
			return nil, errs.Wrap(code, op, fmt.Errorf("open network namespace %s: %w", opts.NetNSPath, err))
		}
		f.ns = &h
	}
	f.table = &nft.Table{Name: name, Family: nft.TableFamilyIPv4}
	lk, err := newChangeLock(opts.LockDir, opts.NetNSPath, name)
	if err != nil {
		if f.ns != nil {
			_ = f.ns.Close()
		}
		return nil, errs.Wrap(errs.Unavailable, op, err)
	}
	f.lock = lk
	if g, err := f.openGen(); err == nil {
		f.gen = g
	} else {
		log.Debug("nftables generation unavailable: every read goes to the kernel", "err", err)
	}
	accept := nft.ChainPolicyAccept
	f.chains = map[string]*nft.Chain{
		chainPre: {Name: chainPre, Table: f.table, Type: nft.ChainTypeNAT,
			Hooknum: nft.ChainHookPrerouting, Priority: nft.ChainPriorityNATDest},
		chainPost: {Name: chainPost, Table: f.table, Type: nft.ChainTypeNAT,
			Hooknum: nft.ChainHookPostrouting, Priority: nft.ChainPriorityNATSource},
		chainForward: {Name: chainForward, Table: f.table, Type: nft.ChainTypeFilter,
			Hooknum: nft.ChainHookForward, Priority: nft.ChainPriorityFilter, Policy: &accept},
	}
	return f, nil
}

// Options returns the options the Driver was made with.
func (f *Driver) Options() Options { return f.opts }

// Close releases the namespace handle. It leaves the kernel's rules in
// place: a new Driver over the same table sees them. Methods called after
// Close return FailedPrecondition. The portable Firewall's Close calls it.
func (f *Driver) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.cacheMu.Lock()
	f.stopFollower()
	f.cached = nil
	f.cacheMu.Unlock()
	var err error
	if f.gen != nil {
		err = f.gen.close()
	}
	if f.ns != nil {
		err = errors.Join(err, f.ns.Close())
	}
	return err
}

// DeleteTable removes the driver's table with every rule in it, in one
// batch; a missing table is not an error. Addresses added with
// ManagePublicAddress are removed too.
//
// DeleteTable is not part of natfw's contract, so no portable type checks
// its context or names its errors: it does both itself.
func (f *Driver) DeleteTable(ctx context.Context) error {
	return obs.Wrap("nftables.DeleteTable", f.deleteTable(ctx))
}

func (f *Driver) deleteTable(ctx context.Context) error {
	if err := errs.FromContext(ctx, ""); err != nil {
		return err
	}
	release, err := f.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer release()
	st, err := f.read()
	if err != nil || !st.table {
		return err
	}
	if err := errs.FromContext(ctx, ""); err != nil {
		return err
	}
	c, done, err := f.conn()
	if err != nil {
		return err
	}
	c.DelTable(f.table)
	err = c.Flush()
	done()
	if err != nil {
		return flushErr(err)
	}
	if f.manageAddr {
		for _, e := range st.owners {
			if e.complete {
				if err := f.setAddr(ctx, false, e.rule.Public); err != nil {
					return errs.Wrap(errs.OutcomeUnknown, "", err)
				}
			}
		}
	}
	return nil
}

// lockWrite takes what a change needs, in this order: the driver's writer
// slot (one change at a time per Driver), the file lock that serializes
// changes between Drivers and processes, and the driver's mutex (which
// keeps reads and Close out while the change runs). Waiting for the slot
// or the file lock ends when ctx is done, with the context's Canceled or
// DeadlineExceeded and nothing changed; the mutex is only ever held for
// the length of one read or change. Call release when done.
func (f *Driver) lockWrite(ctx context.Context) (release func(), err error) {
	select {
	case f.writer <- struct{}{}:
	case <-ctx.Done():
		return nil, errs.FromContext(ctx, "")
	}
	unlock, err := f.lock.lock(ctx)
	if err != nil {
		<-f.writer
		return nil, err
	}
	f.mu.Lock()
	if err := f.usable(); err != nil {
		f.mu.Unlock()
		unlock()
		<-f.writer
		return nil, err
	}
	return func() { f.mu.Unlock(); unlock(); <-f.writer }, nil
}

func (f *Driver) usable() error {
	if f.closed {
		return errs.New(errs.FailedPrecondition, "", "called after Close")
	}
	return nil
}

// conn opens one netlink socket (in the driver's namespace) for the calls
// of one operation; release it with the returned function.
func (f *Driver) conn() (*nft.Conn, func(), error) {
	opts := []nft.ConnOption{nft.AsLasting()}
	if f.ns != nil {
		opts = append(opts, nft.WithNetNSFd(int(*f.ns)))
	}
	c, err := nft.New(opts...)
	if err != nil {
		return nil, nil, readErr("netlink socket", err)
	}
	return c, func() { _ = c.CloseLasting() }, nil
}

// entry is one owner's rule as the kernel holds it.
type entry struct {
	rule     natfw.Rule
	pieces   []piece
	complete bool          // a DNAT and an SNAT rule that agree
	indexed  [2]netip.Addr // the addresses under which byAddr lists it
}

// state is the driver's table as read from the kernel.
type state struct {
	table  bool
	chains map[string]bool
	base   map[uint64]bool // handles of the base rules
	owners map[string]*entry

	byHandle map[uint64]pieceRef     // owners' kernel rules by handle
	byAddr   map[netip.Addr][]string // complete rules by public and local address
	dirty    map[string]struct{}     // owners whose pieces changed (until finish)
}

func (st *state) hasBase() bool { return len(st.base) > 0 }

// read returns the table's state for a writer (which holds mu, so no one
// else uses the state until it is done); see readLocked.
func (f *Driver) read() (*state, error) {
	f.cacheMu.Lock()
	defer f.cacheMu.Unlock()
	return f.readLocked()
}

// readLocked returns the table's state at the kernel's current ruleset
// generation: the cached one, brought up to date from the kernel's
// notifications, or else a fresh read from the kernel that no commit
// interleaved with. The state is only valid while cacheMu is held (or, for
// a writer, mu) and must not be changed.
func (f *Driver) readLocked() (*state, error) {
	if f.gen == nil {
		return f.readKernel()
	}
	f.follow(false, 0)
	for range 5 {
		g1, err := f.gen.get()
		if err != nil {
			return nil, readErr("ruleset generation", err)
		}
		if f.fol != nil && f.cached != nil && f.cachedGen != g1 {
			f.follow(true, g1)
		}
		if f.cached != nil && f.cachedGen == g1 {
			return f.cached, nil
		}
		st, err := f.readKernel()
		if err != nil {
			return nil, err
		}
		g2, err := f.gen.get()
		if err != nil {
			return nil, readErr("ruleset generation", err)
		}
		if g1 == g2 {
			f.cached, f.cachedGen = st, g1
			return st, nil
		}
		// The ruleset changed while it was read: read again.
	}
	return nil, errs.New(errs.Unavailable, "", "the ruleset kept changing while it was read")
}

// msgReadKernel is the debug line of every full read of the table.
const msgReadKernel = "nftables table read from the kernel"

// readKernel rebuilds the table's state from the kernel.
func (f *Driver) readKernel() (*state, error) {
	c, done, err := f.conn()
	if err != nil {
		return nil, err
	}
	defer done()
	st := newState()
	tables, err := c.ListTablesOfFamily(nft.TableFamilyIPv4)
	if err != nil {
		return nil, readErr("list tables", err)
	}
	for _, t := range tables {
		if t.Name == f.table.Name {
			st.table = true
		}
	}
	if !st.table {
		f.log.Debug(msgReadKernel, "table", f.table.Name, "owners", 0)
		return st, nil
	}
	chains, err := c.ListChainsOfTableFamily(nft.TableFamilyIPv4)
	if err != nil {
		return nil, readErr("list chains", err)
	}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == f.table.Name {
			if _, ours := f.chains[ch.Name]; ours {
				st.chains[ch.Name] = true
			}
		}
	}
	for _, name := range []string{chainPre, chainPost, chainForward} {
		if !st.chains[name] {
			continue
		}
		rules, err := c.GetRules(f.table, f.chains[name])
		if err != nil {
			return nil, readErr("list rules of chain "+name, err)
		}
		for _, r := range rules {
			st.addRule(name, r)
		}
	}
	st.finish()
	f.log.Debug(msgReadKernel, "table", f.table.Name, "owners", len(st.owners))
	return st, nil
}

// assemble rebuilds the owner's rule from its pieces.
func (e *entry) assemble() {
	var dnat, snat *piece
	for i := range e.pieces {
		p := &e.pieces[i]
		switch {
		case p.kind == kindDNAT && p.chain == chainPre:
			dnat = p
		case p.kind == kindSNAT && p.chain == chainPost:
			snat = p
		case p.kind == kindAccept && p.chain == chainForward:
			if p.port.Number != 0 && p.source.IsValid() {
				e.rule.Ports = append(e.rule.Ports, p.port)
				e.rule.Sources = append(e.rule.Sources, p.source)
			}
		}
	}
	if dnat != nil {
		e.rule.Public, e.rule.Local, e.rule.Description = dnat.public, dnat.local, dnat.desc
	}
	e.rule = e.rule.Normalize()
	e.complete = dnat != nil && snat != nil && snat.public == dnat.public && snat.local == dnat.local &&
		e.rule.Validate() == nil &&
		len(e.pieces) == 3+len(e.rule.Ports)*len(e.rule.Sources)
}

// EnsureNAT makes the owner's rule exactly r (see natfw.Firewall), in one
// netlink batch.
func (f *Driver) EnsureNAT(ctx context.Context, r natfw.Rule) error {
	release, err := f.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer release()
	var (
		old     *entry
		changed bool
	)
	for attempt := 0; ; attempt++ {
		st, err := f.read()
		if err != nil {
			return err
		}
		for _, a := range []netip.Addr{r.Public, r.Local} {
			for _, o := range st.users(a) {
				if o != r.Owner {
					return errs.Errorf(errs.AlreadyExists, "", "rule for %s: address %s is used by the rule of %s", limit.Quote(r.Owner), a, limit.Quote(o))
				}
			}
		}
		old = st.owners[r.Owner]
		if old != nil && old.complete && old.rule.Equal(r) && st.hasBase() {
			break // in place; still make sure of the address below
		}
		if err := errs.FromContext(ctx, ""); err != nil {
			return err
		}
		c, done, err := f.conn()
		if err != nil {
			return err
		}
		f.setup(c, st)
		if old != nil {
			f.deletePieces(c, old.pieces)
		}
		for _, kr := range f.kernelRules(r) {
			c.AddRule(kr)
		}
		err = c.Flush()
		done()
		if err == nil {
			changed = true
			if old != nil {
				f.log.Debug("nat rule replaced", "table", f.table.Name, "owner", r.Owner, "public", r.Public, "local", r.Local, "ports", len(r.Ports), "sources", len(r.Sources))
			} else {
				f.log.Debug("nat rule created", "table", f.table.Name, "owner", r.Owner, "public", r.Public, "local", r.Local, "ports", len(r.Ports), "sources", len(r.Sources))
			}
			break
		}
		if isErrno(err, syscall.ENOENT) && attempt < 3 {
			continue // the table changed under us: read it again
		}
		return flushErr(err)
	}
	if f.manageAddr {
		if err := f.setAddr(ctx, true, r.Public); err != nil {
			return errs.Wrap(errs.OutcomeUnknown, "", fmt.Errorf("rule in place, but: %w", err))
		}
		if old != nil && old.complete && old.rule.Public != r.Public {
			if err := f.setAddr(ctx, false, old.rule.Public); err != nil {
				return errs.Wrap(errs.OutcomeUnknown, "", fmt.Errorf("rule in place, but: %w", err))
			}
		}
	}
	if changed && old != nil && old.complete && (old.rule.Public != r.Public || old.rule.Local != r.Local) {
		if err := f.forget(ctx, old.rule.Public); err != nil {
			return errs.Wrap(errs.OutcomeUnknown, "", fmt.Errorf("rule in place, but: %w", err))
		}
	}
	return nil
}

// setup adds to the batch whatever of the table, its chains and the base
// rule is missing.
func (f *Driver) setup(c *nft.Conn, st *state) {
	if !st.table {
		c.AddTable(f.table)
	}
	for _, name := range []string{chainPre, chainPost, chainForward} {
		if !st.chains[name] {
			c.AddChain(f.chains[name])
		}
	}
	if !st.hasBase() {
		// The base rule goes first: a drop of an owner must not see
		// replies to its VM's own connections.
		b := f.baseRule()
		if st.chains[chainForward] {
			c.InsertRule(b)
		} else {
			c.AddRule(b)
		}
	}
}

func (f *Driver) deletePieces(c *nft.Conn, ps []piece) {
	for _, p := range ps {
		// DelRule only fails for handle 0, which the kernel never reports.
		_ = c.DelRule(&nft.Rule{Table: f.table, Chain: f.chains[p.chain], Handle: p.handle})
	}
}

// RemoveNAT removes the owner's rule in one netlink batch; a missing rule
// is not an error.
func (f *Driver) RemoveNAT(ctx context.Context, owner string) error {
	release, err := f.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer release()
	var old *entry
	for attempt := 0; ; attempt++ {
		st, err := f.read()
		if err != nil {
			return err
		}
		old = st.owners[owner]
		if old == nil {
			return nil
		}
		if err := errs.FromContext(ctx, ""); err != nil {
			return err
		}
		c, done, err := f.conn()
		if err != nil {
			return err
		}
		f.deletePieces(c, old.pieces)
		err = c.Flush()
		done()
		if err == nil {
			f.log.Debug("nat rule removed", "table", f.table.Name, "owner", owner, "public", old.rule.Public, "local", old.rule.Local)
			break
		}
		if isErrno(err, syscall.ENOENT) && attempt < 3 {
			continue
		}
		return flushErr(err)
	}
	if f.manageAddr && old.rule.Public.IsValid() {
		if err := f.setAddr(ctx, false, old.rule.Public); err != nil {
			return errs.Wrap(errs.OutcomeUnknown, "", fmt.Errorf("rule removed, but: %w", err))
		}
	}
	if old.rule.Public.IsValid() {
		if err := f.forget(ctx, old.rule.Public); err != nil {
			return errs.Wrap(errs.OutcomeUnknown, "", fmt.Errorf("rule removed, but: %w", err))
		}
	}
	return nil
}

// forget ends the connections translated to or from public, unless
// Options.KeepConnections.
func (f *Driver) forget(ctx context.Context, public netip.Addr) error {
	if f.opts.KeepConnections {
		return nil
	}
	n, err := f.forgetConnections(ctx, public)
	if err != nil {
		return fmt.Errorf("forget connections of %s: %w", public, err)
	}
	if n > 0 {
		f.log.Debug("connections forgotten", "table", f.table.Name, "public", public, "conntrack_entries", n)
	}
	return nil
}

// Get returns the owner's rule as the kernel holds it, or NotFound.
func (f *Driver) Get(ctx context.Context, owner string) (natfw.Rule, error) {
	var r natfw.Rule
	err := f.view(ctx, func(st *state) error {
		e := st.owners[owner]
		if e == nil || !e.complete {
			return errs.Errorf(errs.NotFound, "", "no rule for %s", limit.Quote(owner))
		}
		r = e.rule
		return nil
	})
	return r, err
}

// List returns every rule of the table, rebuilt from the kernel,
// normalized and ordered by owner.
func (f *Driver) List(ctx context.Context) ([]natfw.Rule, error) {
	var out []natfw.Rule
	err := f.view(ctx, func(st *state) error {
		out = make([]natfw.Rule, 0, len(st.owners))
		for _, e := range st.owners {
			if e.complete {
				out = append(out, e.rule)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b natfw.Rule) int { return strings.Compare(a.Owner, b.Owner) })
	return out, nil
}

// view calls use with the table's current state, which is only valid
// during the call.
func (f *Driver) view(ctx context.Context, use func(*state) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.usable(); err != nil {
		return err
	}
	f.cacheMu.Lock()
	defer f.cacheMu.Unlock()
	st, err := f.readLocked()
	if err != nil {
		return err
	}
	if err := errs.FromContext(ctx, ""); err != nil {
		return err
	}
	return use(st)
}

func isErrno(err error, want syscall.Errno) bool {
	var en syscall.Errno
	return errors.As(err, &en) && en == want
}

// readErr maps a failed dump: nothing changed, so it is safe to retry
// unless permission is missing.
func readErr(what string, err error) error {
	var en syscall.Errno
	if errors.As(err, &en) && (en == syscall.EPERM || en == syscall.EACCES) {
		return errs.Wrap(errs.PermissionDenied, "", fmt.Errorf("%s: %w", what, err))
	}
	if errors.As(err, &en) && (en == syscall.EPROTONOSUPPORT || en == syscall.EAFNOSUPPORT) {
		return errs.Wrap(errs.Unimplemented, "", fmt.Errorf("%s: kernel without nftables: %w", what, err))
	}
	return errs.Wrap(errs.Unavailable, "", fmt.Errorf("%s: %w", what, err))
}

// flushErr maps a failed batch. The kernel applies a batch whole or not at
// all: an error it answered with means nothing changed. A lost answer
// (ENOBUFS, or no errno at all) means the batch may have been applied.
func flushErr(err error) error {
	var en syscall.Errno
	if !errors.As(err, &en) {
		return errs.Wrap(errs.OutcomeUnknown, "", fmt.Errorf("netlink batch: %w", err))
	}
	switch en {
	case syscall.EPERM, syscall.EACCES:
		return errs.Wrap(errs.PermissionDenied, "", fmt.Errorf("netlink batch: %w", err))
	case syscall.ENOBUFS:
		return errs.Wrap(errs.OutcomeUnknown, "", fmt.Errorf("netlink batch: %w", err))
	case syscall.ENOENT, syscall.EEXIST, syscall.EBUSY:
		return errs.Wrap(errs.Unavailable, "", fmt.Errorf("netlink batch: table changed concurrently: %w", err))
	case syscall.EOPNOTSUPP, syscall.EAFNOSUPPORT, syscall.EPROTONOSUPPORT:
		return errs.Wrap(errs.Unimplemented, "", fmt.Errorf("netlink batch: kernel lacks nftables NAT support: %w", err))
	default:
		return errs.Wrap(errs.Internal, "", fmt.Errorf("netlink batch refused: %w", err))
	}
}
