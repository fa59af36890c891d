package enroll

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/obs"
	"github.com/managedvm/managedvm/provider"
)

// The limits the Store enforces on a journal, for every driver, beside the
// package-wide classes (see the package doc): IDs, holders and
// incarnations are keys (1-255 bytes, printable), VM keys a provider name
// (1-128 bytes) and a VM ID (1-255 bytes), profiles names.
const (
	// MaxJournalError is the longest Journal.Error and StepRecord.Error
	// (the orchestrator cuts longer messages to it).
	MaxJournalError = 1024
	// MaxJournalSteps is the most steps a journal may list.
	MaxJournalSteps = 64
	// MaxJournalPorts is the most ports Resources.Ports may list.
	MaxJournalPorts = 64
	// MaxUsername is the longest guest user name a journal keeps.
	MaxUsername = 256
	// MaxCursor is the longest provider cursor the Store keeps.
	MaxCursor = 4096
)

// StoreDriver is what a Store driver implements: the persistence of
// journals (with per-VM exclusivity and leases) and the Indexer's watch
// cursors. Drivers are safe for concurrent use, and several orchestrator
// processes may share one: it is where they coordinate.
//
// The portable [Store] in front of a driver checks the context, validates
// every argument (a driver never sees an invalid journal, ID, key or
// cursor), wraps errors once with the operation's name, copies what it
// returns, and records telemetry; a driver does only the persistence. A
// driver must not keep the slices of a journal it is given (the caller
// still owns them: copy what is kept, as the in-memory driver does with
// Journal.Clone) and must not change a journal after returning it. Errors
// carry errs codes, with an empty Op.
//
// This package has the in-memory driver (NewMemoryStore); enroll/pgstore a
// PostgreSQL one; enroll/storetest is the conformance suite every driver
// passes through the portable Store.
type StoreDriver interface {
	// CreateJournal stores a new journal (Revision 0) and returns it with
	// revision 1 and Created/Updated set. If a journal with j.ID exists the
	// error wraps ErrJournalExists; if j is open and the VM already has
	// another open journal, the error wraps ErrVMBusy. Both are
	// AlreadyExists.
	CreateJournal(ctx context.Context, j Journal) (Journal, error)
	// GetJournal returns a journal by ID, or NotFound.
	GetJournal(ctx context.Context, id string) (Journal, error)
	// UpdateJournal writes j if j.Revision is the stored revision, and
	// returns it with the next revision; otherwise the error wraps
	// ErrJournalConflict (FailedPrecondition). A journal's ID, Op and VM
	// never change (InvalidArgument); NotFound if there is none.
	UpdateJournal(ctx context.Context, j Journal) (Journal, error)
	// OpenJournals lists the open journals (Phase Running or Compensating),
	// oldest first (Created, then ID).
	OpenJournals(ctx context.Context) ([]Journal, error)
	// OpenJournalFor returns the VM's open journal, or NotFound.
	OpenJournalFor(ctx context.Context, vm cmdb.Key) (Journal, error)
	// Cursor returns the saved watch cursor of a provider, or NotFound.
	Cursor(ctx context.Context, providerName string) (provider.Cursor, error)
	// SetCursor saves it.
	SetCursor(ctx context.Context, providerName string, c provider.Cursor) error
}

// JournalLister is an optional StoreDriver capability: every journal, open
// and closed, ordered by ID (audit, inspection, tests). Store.Journals is
// Unimplemented without it.
type JournalLister interface {
	Journals(ctx context.Context) ([]Journal, error)
}

// StoreOptions tune a Store. A nil *StoreOptions is ready to use.
type StoreOptions struct {
	// Logger receives a Debug line per call (keys op, code, err,
	// duration); nil discards.
	Logger *slog.Logger
	// TracerProvider, when set, records a span per call; MeterProvider
	// the call metrics (see the package doc). Nil: no telemetry work.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Store is the portable journal store the orchestrator holds, over a
// StoreDriver. Create it with NewStore (or a driver's constructor, such as
// NewMemoryStore or pgstore.New). It is safe for concurrent use.
type Store struct {
	drv    StoreDriver
	in     *obs.Instrument
	closed obs.Closed
}

// NewStore returns the portable Store over d.
func NewStore(d StoreDriver, opts *StoreOptions) *Store {
	var o StoreOptions
	if opts != nil {
		o = *opts
	}
	return &Store{drv: d, in: obs.New("enroll", obs.DriverName(d),
		obs.Options{Logger: o.Logger, TracerProvider: o.TracerProvider, MeterProvider: o.MeterProvider})}
}

// The operation names, as errors, spans and metrics carry them.
const (
	opCreateJournal  = "enroll.Store.CreateJournal"
	opGetJournal     = "enroll.Store.GetJournal"
	opUpdateJournal  = "enroll.Store.UpdateJournal"
	opOpenJournals   = "enroll.Store.OpenJournals"
	opOpenJournalFor = "enroll.Store.OpenJournalFor"
	opJournals       = "enroll.Store.Journals"
	opCursor         = "enroll.Store.Cursor"
	opSetCursor      = "enroll.Store.SetCursor"
)

func (s *Store) begin(ctx context.Context, op string) (context.Context, obs.Call, error) {
	if s == nil || s.drv == nil {
		return ctx, obs.Call{}, errs.New(errs.FailedPrecondition, op, "the Store has no driver (create it with NewStore or NewMemoryStore)")
	}
	ctx, c := s.in.Start(ctx, op)
	if err := s.closed.Check(op); err != nil {
		return ctx, c, err
	}
	return ctx, c, errs.FromContext(ctx, op)
}

// CreateJournal stores a new journal (Revision 0) and returns it with
// revision 1. If a journal with j.ID exists the error wraps
// ErrJournalExists; if j is open and the VM already has another open
// journal, ErrVMBusy (both AlreadyExists). An invalid journal is
// InvalidArgument and nothing is stored.
func (s *Store) CreateJournal(ctx context.Context, j Journal) (Journal, error) {
	ctx, c, err := s.begin(ctx, opCreateJournal)
	if err == nil {
		err = validJournal(opCreateJournal, &j)
	}
	if err == nil && j.Revision != 0 {
		err = errs.Errorf(errs.InvalidArgument, opCreateJournal, "journal %s: a new journal has revision 0, not %d", limit.Quote(j.ID), j.Revision)
	}
	if err != nil {
		return Journal{}, c.End(ctx, err)
	}
	out, err := s.drv.CreateJournal(ctx, j)
	if err != nil {
		return Journal{}, c.End(ctx, err)
	}
	return stored(j, out), c.End(ctx, nil)
}

// GetJournal returns a journal by ID, or NotFound.
func (s *Store) GetJournal(ctx context.Context, id string) (Journal, error) {
	ctx, c, err := s.begin(ctx, opGetJournal)
	if err == nil {
		err = limit.Key(opGetJournal, "journal ID", id)
	}
	if err != nil {
		return Journal{}, c.End(ctx, err)
	}
	out, err := s.drv.GetJournal(ctx, id)
	if err != nil {
		return Journal{}, c.End(ctx, err)
	}
	return out.Clone(), c.End(ctx, nil)
}

// UpdateJournal writes j if j.Revision is the stored revision and returns
// it with the next revision (and the stored Created and Updated times; the
// result shares j's slices, nothing of the driver's); otherwise the error wraps ErrJournalConflict
// (FailedPrecondition). A journal's ID, Op and VM never change.
func (s *Store) UpdateJournal(ctx context.Context, j Journal) (Journal, error) {
	ctx, c, err := s.begin(ctx, opUpdateJournal)
	if err == nil {
		err = validJournal(opUpdateJournal, &j)
	}
	if err == nil && j.Revision < 1 {
		err = errs.Errorf(errs.InvalidArgument, opUpdateJournal, "journal %s: revision %d was never stored", limit.Quote(j.ID), j.Revision)
	}
	if err != nil {
		return Journal{}, c.End(ctx, err)
	}
	out, err := s.drv.UpdateJournal(ctx, j)
	if err != nil {
		return Journal{}, c.End(ctx, err)
	}
	return stored(j, out), c.End(ctx, nil)
}

// OpenJournals lists the open journals (Running or Compensating), oldest
// first.
func (s *Store) OpenJournals(ctx context.Context) ([]Journal, error) {
	ctx, c, err := s.begin(ctx, opOpenJournals)
	if err != nil {
		return nil, c.End(ctx, err)
	}
	out, err := s.drv.OpenJournals(ctx)
	if err != nil {
		return nil, c.End(ctx, err)
	}
	return cloneJournals(out), c.End(ctx, nil)
}

// OpenJournalFor returns the VM's open journal, or NotFound.
func (s *Store) OpenJournalFor(ctx context.Context, vm cmdb.Key) (Journal, error) {
	ctx, c, err := s.begin(ctx, opOpenJournalFor)
	if err == nil {
		err = validVM(opOpenJournalFor, vm)
	}
	if err != nil {
		return Journal{}, c.End(ctx, err)
	}
	out, err := s.drv.OpenJournalFor(ctx, vm)
	if err != nil {
		return Journal{}, c.End(ctx, err)
	}
	return out.Clone(), c.End(ctx, nil)
}

// Journals returns every journal, open and closed, ordered by ID. It is
// Unimplemented when the driver cannot list them (see JournalLister); both
// drivers of this module can.
func (s *Store) Journals(ctx context.Context) ([]Journal, error) {
	ctx, c, err := s.begin(ctx, opJournals)
	if err != nil {
		return nil, c.End(ctx, err)
	}
	l, ok := s.drv.(JournalLister)
	if !ok {
		return nil, c.End(ctx, errs.New(errs.Unimplemented, opJournals, "the store driver cannot list journals"))
	}
	out, err := l.Journals(ctx)
	if err != nil {
		return nil, c.End(ctx, err)
	}
	return cloneJournals(out), c.End(ctx, nil)
}

// Cursor returns the Indexer's saved watch cursor for a provider, or
// NotFound.
func (s *Store) Cursor(ctx context.Context, providerName string) (provider.Cursor, error) {
	ctx, c, err := s.begin(ctx, opCursor)
	if err == nil {
		err = limit.Name(opCursor, "provider name", providerName)
	}
	if err != nil {
		return "", c.End(ctx, err)
	}
	cur, err := s.drv.Cursor(ctx, providerName)
	return cur, c.End(ctx, err)
}

// SetCursor saves a provider's watch cursor (at most MaxCursor bytes of
// printable UTF-8; empty is allowed and means "from now").
func (s *Store) SetCursor(ctx context.Context, providerName string, cur provider.Cursor) error {
	ctx, c, err := s.begin(ctx, opSetCursor)
	if err == nil {
		err = limit.Name(opSetCursor, "provider name", providerName)
	}
	if err == nil {
		err = printable(opSetCursor, "cursor", string(cur), MaxCursor)
	}
	if err != nil {
		return c.End(ctx, err)
	}
	return c.End(ctx, s.drv.SetCursor(ctx, providerName, cur))
}

// Close marks the Store closed: later calls are FailedPrecondition. It
// closes the driver when the driver has a Close method (the in-memory one
// has none; pgstore's leaves the caller's pool open). A second Close is a
// no-op.
func (s *Store) Close() error {
	if s == nil || !s.closed.Close() {
		return nil
	}
	if c, ok := s.drv.(interface{ Close() error }); ok {
		return obs.Wrap("enroll.Store.Close", c.Close())
	}
	return nil
}

// As reaches the driver: it calls the driver's As method (pgstore's
// reaches its *pgxpool.Pool), and reports false when there is none.
func (s *Store) As(target any) bool {
	if s == nil {
		return false
	}
	if a, ok := s.drv.(interface{ As(any) bool }); ok {
		return a.As(target)
	}
	return false
}

func cloneJournals(js []Journal) []Journal {
	out := make([]Journal, len(js))
	for i, j := range js {
		out[i] = j.Clone()
	}
	return out
}

func printable(op, field, v string, max int) error {
	if why := limit.Why(v, 0, max, true); why != "" {
		return errs.Errorf(errs.InvalidArgument, op, "%s %s %s", field, limit.Quote(v), why)
	}
	return nil
}

func validVM(op string, vm cmdb.Key) error {
	if err := limit.Name(op, "VM provider", vm.Provider); err != nil {
		return err
	}
	return limit.Key(op, "VM ID", vm.VMID)
}

func validOp(o Op) bool {
	switch o {
	case OpEnroll, OpUnenroll, OpCleanup, OpReaddress:
		return true
	}
	return false
}

func validPhase(p Phase) bool {
	switch p {
	case Running, Compensating, Succeeded, Failed:
		return true
	}
	return false
}

func validState(s StepState) bool {
	switch s {
	case StatePending, StateDone, StateFailed, StateCompensated:
		return true
	}
	return false
}

// validJournal checks every field of j against the Store's limits. It
// runs on every write, so it takes j by pointer and does no work beyond
// the checks until one fails.
func validJournal(op string, j *Journal) error {
	if err := limit.Key(op, "journal ID", j.ID); err != nil {
		return err
	}
	if err := validVM(op, j.VM); err != nil {
		return errs.Errorf(errs.InvalidArgument, op, "journal %s: %w", limit.Quote(j.ID), err)
	}
	bad := func(format string, args ...any) error {
		return errs.Errorf(errs.InvalidArgument, op, "journal %s: "+format, append([]any{limit.Quote(j.ID)}, args...)...)
	}
	switch {
	case !validOp(j.Op):
		return bad("unknown operation %s", limit.Quote(string(j.Op)))
	case !validPhase(j.Phase):
		return bad("unknown phase %s", limit.Quote(string(j.Phase)))
	case j.Access != "" && j.Access != AccessGuest && j.Access != AccessNetwork:
		return bad("unknown access %s", limit.Quote(string(j.Access)))
	case len(j.Steps) > MaxJournalSteps:
		return bad("%d steps (at most %d)", len(j.Steps), MaxJournalSteps)
	case len(j.Resources.Ports) > MaxJournalPorts:
		return bad("%d ports (at most %d)", len(j.Resources.Ports), MaxJournalPorts)
	}
	field := func(name, v string, max int) error {
		if why := limit.Why(v, 0, max, true); why != "" {
			return bad("%s %s %s", name, limit.Quote(v), why)
		}
		return nil
	}
	if err := field("profile", j.Profile, limit.MaxName); err != nil {
		return err
	}
	if err := field("user name", j.Username, MaxUsername); err != nil {
		return err
	}
	if err := field("holder", j.Holder, limit.MaxKey); err != nil {
		return err
	}
	if err := field("incarnation", j.Incarnation, limit.MaxKey); err != nil {
		return err
	}
	if err := field("failed step", j.FailedStep, limit.MaxName); err != nil {
		return err
	}
	if err := field("resource pool", j.Resources.Pool, limit.MaxName); err != nil {
		return err
	}
	if err := field("resource family", j.Resources.Family, limit.MaxName); err != nil {
		return err
	}
	if why := limit.Why(j.Error, 0, MaxJournalError, false); why != "" {
		return bad("error message %s", why)
	}
	for i := range j.Steps {
		st := &j.Steps[i]
		if why := limit.Why(st.Name, 1, limit.MaxName, true); why != "" {
			return bad("step %d name %s %s", i, limit.Quote(st.Name), why)
		}
		if !validState(st.State) {
			return bad("step %s: unknown state %s", limit.Quote(st.Name), limit.Quote(string(st.State)))
		}
		if why := limit.Why(st.Error, 0, MaxJournalError, false); why != "" {
			return bad("step %s error message %s", limit.Quote(st.Name), why)
		}
	}
	return nil
}

// stored is j as a write stored it: the caller's own value (its slices are
// the caller's already, so nothing is copied) with the revision and times
// the driver gave it. Nothing else of the driver's answer is taken, so a
// driver's kept state can never leak out through a write's result.
func stored(j, out Journal) Journal {
	j.Revision, j.Created, j.Updated = out.Revision, out.Created, out.Updated
	return j
}
