package enroll

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/natfw"
)

// Orchestrator runs enrollments, unenrollments and cleanups as sagas over
// the configured drivers. It is safe for concurrent use; several
// orchestrators (in one or many processes) may share one Store.
type Orchestrator struct {
	cfg      Config
	log      *slog.Logger
	obs      Observer
	instance string
	// incarnation tells this Orchestrator value apart from an earlier
	// process that ran under the same instance name.
	incarnation string
	leaseTTL    time.Duration
	compTO      time.Duration
	retries     int
	retryDly    time.Duration
	now         func() time.Time

	// active holds the IDs of the journals a run of this Orchestrator is
	// working on: Resume never takes those over.
	activeMu sync.Mutex
	active   map[string]struct{}

	tel telemetry

	// hook, if set, is called at fixed points of a run (tests use it to
	// simulate a crash by panicking).
	hook func(point string)
}

// storeTimeout bounds one Store write made on a detached context.
const storeTimeout = 30 * time.Second

// New returns an orchestrator over cfg's drivers. It checks that every
// required driver is present and every policy is usable.
func New(cfg Config, opts *Options) (*Orchestrator, error) {
	const op = "enroll.New"
	if opts == nil {
		opts = &Options{}
	}
	switch {
	case len(cfg.Providers) == 0:
		return nil, errs.New(errs.InvalidArgument, op, "Config.Providers is empty")
	case cfg.IPAM == nil:
		return nil, errs.New(errs.InvalidArgument, op, "Config.IPAM is nil")
	case cfg.Firewall == nil:
		return nil, errs.New(errs.InvalidArgument, op, "Config.Firewall is nil")
	case cfg.CMDB == nil:
		return nil, errs.New(errs.InvalidArgument, op, "Config.CMDB is nil")
	case cfg.Store == nil:
		return nil, errs.New(errs.InvalidArgument, op, "Config.Store is nil (use enroll.NewMemoryStore for one process)")
	}
	for name, p := range cfg.Providers {
		if name == "" || p == nil {
			return nil, errs.Errorf(errs.InvalidArgument, op, "provider %s is nil or unnamed", limit.Quote(name))
		}
	}
	if err := checkPolicy("default", cfg.Policy); err != nil {
		return nil, err
	}
	for name, p := range cfg.Profiles {
		if err := checkPolicy(name, p); err != nil {
			return nil, err
		}
	}
	o := &Orchestrator{
		cfg:         cfg,
		log:         opts.Logger,
		obs:         opts.Observer,
		instance:    opts.Instance,
		incarnation: randomID(),
		leaseTTL:    opts.LeaseTTL,
		active:      make(map[string]struct{}),
		compTO:      opts.CompensationTimeout,
		retries:     opts.Retries,
		retryDly:    opts.RetryDelay,
		now:         opts.Now,
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.obs == nil {
		o.obs = LogObserver(o.log)
	}
	if o.instance == "" {
		o.instance = "orchestrator-" + randomID()
	}
	if o.leaseTTL <= 0 {
		o.leaseTTL = 30 * time.Second
	}
	if o.compTO <= 0 {
		o.compTO = 2 * time.Minute
	}
	if o.retries == 0 {
		o.retries = 2
	} else if o.retries < 0 {
		o.retries = 0
	}
	if o.retryDly <= 0 {
		o.retryDly = 100 * time.Millisecond
	}
	if o.now == nil {
		o.now = time.Now
	}
	if err := o.initTelemetry(opts); err != nil {
		return nil, errs.Wrap(errs.InvalidArgument, op, err)
	}
	return o, nil
}

func checkPolicy(name string, p Policy) error {
	const op = "enroll.New"
	if len(p.ManagementSources) == 0 {
		return errs.Errorf(errs.InvalidArgument, op, "profile %s: ManagementSources is empty (who may reach the enrolled VMs?)", limit.Quote(name))
	}
	for _, s := range p.ManagementSources {
		if !s.IsValid() {
			return errs.Errorf(errs.InvalidArgument, op, "profile %s: invalid management source %v", limit.Quote(name), s)
		}
	}
	if p.Pool == "" && len(p.PoolByZone) == 0 {
		return errs.Errorf(errs.InvalidArgument, op, "profile %s: no IPAM pool (set Pool or PoolByZone)", limit.Quote(name))
	}
	return nil
}

// Instance returns the name this orchestrator holds leases under.
func (o *Orchestrator) Instance() string { return o.instance }

// markActive records that a run of this Orchestrator works on journal id.
// It reports false if one already does.
func (o *Orchestrator) markActive(id string) bool {
	o.activeMu.Lock()
	defer o.activeMu.Unlock()
	if _, ok := o.active[id]; ok {
		return false
	}
	o.active[id] = struct{}{}
	return true
}

func (o *Orchestrator) unmarkActive(id string) {
	o.activeMu.Lock()
	defer o.activeMu.Unlock()
	delete(o.active, id)
}

// hold sets j's lease to this Orchestrator for a full LeaseTTL.
func (o *Orchestrator) hold(j *Journal) {
	j.Holder, j.Incarnation, j.LeaseExpires = o.instance, o.incarnation, o.now().Add(o.leaseTTL)
}

// abandoned reports whether nobody works on the open journal j, so that
// Resume may take it over: its lease has expired; or it is held under this
// instance name by an earlier process (another incarnation), which is gone
// since this one has the name; or it is held by this Orchestrator and no run
// of it is working on it any more (a compensation that failed left it
// open). A journal a run of this Orchestrator works on, or one another
// instance holds under a live lease, is never abandoned.
func (o *Orchestrator) abandoned(j Journal) bool {
	switch {
	case !o.now().Before(j.LeaseExpires):
		return true
	case j.Holder != o.instance:
		return false
	case j.Incarnation != o.incarnation:
		return true
	}
	o.activeMu.Lock()
	defer o.activeMu.Unlock()
	_, working := o.active[j.ID]
	return !working
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (o *Orchestrator) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = o.now()
	}
	o.obs.Observe(e)
}

func (o *Orchestrator) at(point string) {
	if o.hook != nil {
		o.hook(point)
	}
}

func (o *Orchestrator) policy(name string) (Policy, error) {
	if name == "" {
		return o.cfg.Policy, nil
	}
	p, ok := o.cfg.Profiles[name]
	if !ok {
		return Policy{}, errs.Errorf(errs.InvalidArgument, "enroll", "unknown service profile %s", limit.Quote(name))
	}
	return p, nil
}

// Enroll enrolls one VM and waits for the outcome. The returned Result has
// the outcome in Result.Err as well; the error return is the same error.
//
// Two requests for the same VM never both proceed: the second gets an
// AlreadyExists error (wrapping ErrVMBusy) while the first runs, or a
// FailedPrecondition error once the VM is enrolled. Repeating a request with
// the Key of a finished one returns that one's result.
func (o *Orchestrator) Enroll(ctx context.Context, req Request) (Result, error) {
	ctx, c := o.span(ctx, "enroll.Enroll", cmdb.Key{Provider: req.Provider, VMID: req.VMID})
	res, err := o.enroll(ctx, req)
	c.Finish(ctx, err)
	return res, err
}

func (o *Orchestrator) enroll(ctx context.Context, req Request) (Result, error) {
	const op = "enroll.Enroll"
	key := cmdb.Key{Provider: req.Provider, VMID: req.VMID}
	res := Result{VM: key, Op: OpEnroll}
	fail := func(err error) (Result, error) { res.Err = err; return res, err }
	if err := validRequest(op, req.Key, req.Provider, req.VMID, req.Profile); err != nil {
		return fail(err)
	}
	prov, ok := o.cfg.Providers[req.Provider]
	switch {
	case !ok:
		return fail(errs.Errorf(errs.NotFound, op, "unknown provider %s", limit.Quote(req.Provider)))
	}
	if err := req.Credentials.Validate(); err != nil {
		return fail(errs.WrapOp(op, err))
	}
	policy, err := o.policy(req.Profile)
	if err != nil {
		return fail(err)
	}
	access := AccessNetwork
	if _, ok := prov.GuestAccess(); ok {
		access = AccessGuest
	}
	j := Journal{
		ID: req.Key, Op: OpEnroll, VM: key, Profile: req.Profile, Username: req.Credentials.Username,
		Access: access, Phase: Running, Steps: plan(OpEnroll, access, false),
	}
	return o.launch(ctx, j, func(r *run) {
		r.prov, r.policy, r.cred, r.credOK = prov, policy, req.Credentials, true
	})
}

// Unenroll reverses an enrollment: it undoes the OS configuration (when the
// Configurator can and credentials are at hand), removes the NAT, releases
// the public IP and marks the CMDB record available. It is idempotent:
// unenrolling a VM that is not enrolled (no record or an available one, no
// NAT rule, no public IP, no operation in progress) succeeds and changes
// nothing: no journal is written and the record keeps its revision. The
// Result then has no Journal.
func (o *Orchestrator) Unenroll(ctx context.Context, req UnenrollRequest) (Result, error) {
	ctx, c := o.span(ctx, "enroll.Unenroll", cmdb.Key{Provider: req.Provider, VMID: req.VMID})
	res, err := o.unenroll(ctx, req)
	c.Finish(ctx, err)
	return res, err
}

func (o *Orchestrator) unenroll(ctx context.Context, req UnenrollRequest) (Result, error) {
	const op = "enroll.Unenroll"
	key := cmdb.Key{Provider: req.Provider, VMID: req.VMID}
	res := Result{VM: key, Op: OpUnenroll}
	if err := validRequest(op, req.Key, req.Provider, req.VMID, ""); err != nil {
		res.Err = err
		return res, err
	}
	prov, ok := o.cfg.Providers[req.Provider]
	switch {
	case !ok:
		res.Err = errs.Errorf(errs.NotFound, op, "unknown provider %s", limit.Quote(req.Provider))
		return res, res.Err
	}
	if state, ok := o.notEnrolled(ctx, req.Key, key); ok {
		// Nothing to undo: no journal is written and nothing changes.
		res.State = state
		return res, nil
	}
	j := Journal{ID: req.Key, Op: OpUnenroll, VM: key, Username: req.Credentials.Username, Phase: Running, Steps: plan(OpUnenroll, "", req.Force)}
	return o.launch(ctx, j, func(r *run) {
		r.prov = prov
		if req.Credentials.Validate() == nil {
			r.cred, r.credOK = req.Credentials, true
		}
	})
}

// notEnrolled reports whether vm holds nothing an unenrollment would undo:
// no journal under key (whose result a repeated request gets), no open
// journal, a CMDB record that is absent, available or retired with no
// public IP, no NAT rule and no public IP in any pool. Any doubt (an error
// reading) says no, and the unenrollment runs as usual.
func (o *Orchestrator) notEnrolled(ctx context.Context, key string, vm cmdb.Key) (cmdb.State, bool) {
	if key != "" {
		if _, err := o.cfg.Store.GetJournal(ctx, key); errs.CodeOf(err) != errs.NotFound {
			return "", false
		}
	}
	if _, err := o.cfg.Store.OpenJournalFor(ctx, vm); errs.CodeOf(err) != errs.NotFound {
		return "", false
	}
	rec, err := o.cfg.CMDB.Get(ctx, vm)
	switch {
	case errs.CodeOf(err) == errs.NotFound:
	case err != nil, rec.State != cmdb.Available && rec.State != cmdb.Retired, rec.PublicIP.IsValid():
		return "", false
	}
	owner := vm.String()
	if _, err := o.cfg.Firewall.Get(ctx, owner); errs.CodeOf(err) != errs.NotFound {
		return "", false
	}
	pools, err := o.cfg.IPAM.Pools(ctx)
	if err != nil {
		return "", false
	}
	for _, p := range pools {
		if _, err := o.cfg.IPAM.Lookup(ctx, p.Name, owner); errs.CodeOf(err) != errs.NotFound {
			return "", false
		}
	}
	return rec.State, true
}

// start creates the journal, or answers from an existing one: the result
// of a finished journal with the same key, or an AlreadyExists error.
// launch is how every operation begins: it creates j's journal (start),
// lets setup fill in what the run needs (provider, policy, credentials),
// and executes it. A journal that could not be created (the VM is busy,
// the key names a finished request) returns start's result.
func (o *Orchestrator) launch(ctx context.Context, j Journal, setup func(r *run)) (Result, error) {
	r, res, err := o.start(ctx, j)
	if r == nil {
		return res, err
	}
	r.prov, r.policy = o.cfg.Providers[j.VM.Provider], o.cfg.Policy
	if setup != nil {
		setup(r)
	}
	return r.execute(ctx)
}

func (o *Orchestrator) start(ctx context.Context, j Journal) (*run, Result, error) {
	const op = "enroll"
	if j.ID == "" {
		j.ID = string(j.Op) + "-" + randomID()
	}
	o.hold(&j)
	res := Result{Journal: j.ID, VM: j.VM, Op: j.Op}
	// Marked before the journal exists, so that no Resume of this process
	// ever sees it open and unclaimed.
	marked := o.markActive(j.ID)
	created, err := o.cfg.Store.CreateJournal(context.WithoutCancel(ctx), j)
	if err != nil && marked {
		o.unmarkActive(j.ID)
	}
	switch {
	case err == nil:
		o.emit(Event{Kind: JournalStarted, Journal: j.ID, Op: j.Op, VM: j.VM, Profile: j.Profile})
		return &run{o: o, j: created}, res, nil
	case errors.Is(err, ErrJournalExists):
		sctx, cancel := detached(ctx)
		old, gerr := o.cfg.Store.GetJournal(sctx, j.ID)
		cancel()
		if gerr != nil {
			res.Err = errs.WrapOp(op, gerr)
			return nil, res, res.Err
		}
		if old.VM != j.VM || old.Op != j.Op {
			res.Err = errs.Errorf(errs.InvalidArgument, op, "request key %s was used for %s of %s", limit.Quote(j.ID), old.Op, limit.Quote(old.VM.String()))
			return nil, res, res.Err
		}
		if old.Phase.Open() {
			res.Err = errs.Errorf(errs.AlreadyExists, op, "request %s for %s is still in progress", limit.Quote(j.ID), limit.Quote(j.VM.String()))
			return nil, res, res.Err
		}
		res = o.resultOf(ctx, old)
		return nil, res, res.Err
	default:
		res.Err = errs.WrapOp(op, err)
		return nil, res, res.Err
	}
}

// resultOf rebuilds the Result of a closed journal.
func (o *Orchestrator) resultOf(ctx context.Context, j Journal) Result {
	res := Result{Journal: j.ID, VM: j.VM, Op: j.Op, LocalIP: j.Resources.LocalIP, FailedStep: j.FailedStep}
	if j.Phase == Failed || j.Phase.Open() {
		res.Err = &errs.Error{Code: j.ErrorCode, Op: "enroll." + string(j.Op), Msg: j.Error}
	}
	if j.Op == OpEnroll && j.Phase == Succeeded {
		res.PublicIP, res.Ports = j.Resources.PublicIP, append(res.Ports, j.Resources.Ports...)
	}
	sctx, cancel := detached(ctx)
	defer cancel()
	if rec, err := o.cfg.CMDB.Get(sctx, j.VM); err == nil {
		res.State = rec.State
	}
	return res
}

// detached returns a context for bookkeeping that must happen even when
// ctx is canceled (journal writes, compensation): it keeps ctx's values,
// not its cancellation, and has its own timeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
}

// EnrollAll enrolls many VMs with at most workers at a time (1 if workers
// < 1) and returns each request's result, in the order of reqs.
func (o *Orchestrator) EnrollAll(ctx context.Context, reqs []Request, workers int) []Result {
	if workers < 1 {
		workers = 1
	}
	out := make([]Result, len(reqs))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers && w < len(reqs); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], _ = o.Enroll(ctx, reqs[i])
			}
		}()
	}
	for i := range reqs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// ResumeReport says what Resume did.
type ResumeReport struct {
	// Resumed lists the journals this call took over and finished, with
	// their results.
	Resumed []Result
	// Skipped counts the open journals someone works on: held by another
	// instance under a live lease, or run by this Orchestrator right now.
	Skipped int
}

// Resume finishes or compensates every open journal nobody works on any
// more: the work of a crashed process. It takes over a journal when
//
//   - its lease has expired (its holder stopped renewing it: crashed, or
//     cut off from the Store);
//   - it is held under this instance name (Options.Instance) by an earlier
//     process: each Orchestrator is an incarnation of its instance name, and
//     a process restarted under the same name takes its predecessor's
//     journals back at once, without waiting for their leases;
//   - it is held by this Orchestrator but no run of it works on it any more
//     (a compensation failed and left it open).
//
// A journal whose lease is live is never taken over from a run that works
// on it: not by another replica, and not by this Orchestrator's own Resume
// or ResumeEvery while one of its Enroll, Unenroll, Cleanup or Indexer runs
// holds it.
// Enrollments go on from the step after the last one journaled (steps are
// idempotent, so a step whose side effect happened but was not journaled is
// simply done again); when the credentials a remaining step needs cannot be
// had from Config.Credentials, the enrollment is rolled back instead.
func (o *Orchestrator) Resume(ctx context.Context) (ResumeReport, error) {
	ctx, c := o.span(ctx, "enroll.Resume", cmdb.Key{})
	rep, err := o.resume(ctx)
	c.Finish(ctx, err)
	return rep, err
}

func (o *Orchestrator) resume(ctx context.Context) (ResumeReport, error) {
	const op = "enroll.Resume"
	var rep ResumeReport
	open, err := o.cfg.Store.OpenJournals(ctx)
	if err != nil {
		return rep, errs.WrapOp(op, err)
	}
	for _, j := range open {
		if err := ctx.Err(); err != nil {
			return rep, errs.FromContext(ctx, op)
		}
		if !o.abandoned(j) {
			rep.Skipped++
			continue
		}
		res, ok := o.resumeOne(ctx, j)
		if !ok {
			rep.Skipped++
			continue
		}
		rep.Resumed = append(rep.Resumed, res)
	}
	return rep, nil
}

// ResumeEvery calls Resume now and then every interval until ctx ends, so
// that the work of a crashed replica is picked up once its leases expire.
// It never takes over a journal this Orchestrator's own runs are working
// on, however short the interval.
// Each round's report goes to report (which may be nil); errors are
// reported as IndexerError events and do not stop the loop. It returns nil
// when ctx ends.
func (o *Orchestrator) ResumeEvery(ctx context.Context, interval time.Duration, report func(ResumeReport)) error {
	if interval <= 0 {
		return errs.New(errs.InvalidArgument, "enroll.ResumeEvery", "interval must be positive")
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rep, err := o.Resume(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			o.emit(Event{Kind: IndexerError, Code: errs.CodeOf(err), Message: "resume: " + err.Error()})
		} else if report != nil {
			report(rep)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (o *Orchestrator) resumeOne(ctx context.Context, j Journal) (Result, bool) {
	if !o.markActive(j.ID) {
		return Result{}, false // a run of this process has just started on it
	}
	prev := j.Holder
	o.hold(&j)
	sctx, cancel := detached(ctx)
	claimed, err := o.cfg.Store.UpdateJournal(sctx, j)
	cancel()
	if err != nil {
		o.unmarkActive(j.ID)
		return Result{}, false // someone else claimed it first
	}
	o.emit(Event{Kind: JournalResumed, Journal: j.ID, Op: j.Op, VM: j.VM, Profile: j.Profile, Message: "taken over from " + prev})
	r := &run{o: o, j: claimed}
	prov, ok := o.cfg.Providers[j.VM.Provider]
	if !ok {
		// The provider is gone from the configuration: nothing can be
		// done for it but undoing what the journal holds.
		prov = nil
	}
	r.prov = prov
	if p, err := o.policy(j.Profile); err == nil {
		r.policy = p
	}
	if r.needsCredentials() && o.cfg.Credentials != nil {
		if cred, err := o.cfg.Credentials.Credentials(ctx, claimed); err == nil && cred.Validate() == nil {
			r.cred, r.credOK = cred, true
		}
	}
	res, _ := r.resume(ctx)
	return res, true
}

// credentialError gives a refused login a message a customer can act on.
// validRequest checks a request's names against the drivers' limits, so a
// request a driver would refuse fails before anything is done: the key
// (optional) and VM ID 1-255 bytes, the provider and profile (optional)
// 1-128 bytes, all printable UTF-8, and "provider/vmid" (the owner of the
// VM's public IP and NAT rule) at most natfw.MaxOwner bytes.
func validRequest(op, key, prov, vmID, profile string) error {
	if prov == "" || vmID == "" {
		return errs.New(errs.InvalidArgument, op, "request names no provider or VM")
	}
	if err := limit.Name(op, "provider", prov); err != nil {
		return err
	}
	if err := limit.Key(op, "VM ID", vmID); err != nil {
		return err
	}
	if n := len(prov) + 1 + len(vmID); n > natfw.MaxOwner {
		return errs.Errorf(errs.InvalidArgument, op, "the VM key %s is %d bytes: the IPAM and firewall owner \"provider/vmid\" may have at most %d", limit.Quote(prov+"/"+vmID), n, natfw.MaxOwner)
	}
	if key != "" {
		if err := limit.Key(op, "request key", key); err != nil {
			return err
		}
	}
	if profile != "" {
		return limit.Name(op, "profile", profile)
	}
	return nil
}

// credentialError turns a refused login into one sentence for the person
// enrolling; where says how the login was tried. The driver's error stays
// the cause (errors.Is/As reach it) without being repeated in the text:
// it says the same thing in its own words.
func credentialError(err error, user, where string) error {
	if err == nil {
		return nil
	}
	if errs.CodeOf(err) == errs.Unauthenticated {
		return &credError{msg: fmt.Sprintf("the guest OS refused the password of user %s (checked %s): check the password and that the account is not locked, then enroll again", limit.Quote(user), where), cause: err}
	}
	return err
}

// credError is a refused login: code Unauthenticated, a message of its
// own, the driver's error as its cause.
type credError struct {
	msg   string
	cause error
}

func (e *credError) Error() string        { return "enroll: " + e.msg }
func (e *credError) ErrorCode() errs.Code { return errs.Unauthenticated }
func (e *credError) Unwrap() error        { return e.cause }
