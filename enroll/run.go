package enroll

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// The step names, as journaled and reported in events.
const (
	StepEligibility  = "eligibility"
	StepCredentials  = "credentials"
	StepRequirements = "requirements"
	StepIPAM         = "ipam"
	StepFirewall     = "firewall"
	StepConfigure    = "configure"
	StepCMDB         = "cmdb"

	StepMark        = "mark"
	StepUnconfigure = "unconfigure"
	StepRemoveNAT   = "remove-nat"
	StepRelease     = "release-ip"
	StepAvailable   = "cmdb-available"
	StepRetire      = "cmdb-retire"

	StepRelocalIP     = "ipam-local-ip"
	StepRenat         = "firewall-local-ip"
	StepLocalIPRecord = "cmdb-local-ip"
)

// plan lists an operation's steps in order.
func plan(op Op, access Access, force bool) []StepRecord {
	var names []string
	switch op {
	case OpEnroll:
		if access == AccessGuest {
			names = []string{StepEligibility, StepCredentials, StepRequirements, StepIPAM, StepFirewall, StepConfigure, StepCMDB}
		} else {
			names = []string{StepEligibility, StepIPAM, StepFirewall, StepCredentials, StepRequirements, StepConfigure, StepCMDB}
		}
	case OpUnenroll:
		if force {
			names = []string{StepMark, StepRemoveNAT, StepRelease, StepAvailable}
		} else {
			names = []string{StepMark, StepUnconfigure, StepRemoveNAT, StepRelease, StepAvailable}
		}
	case OpCleanup:
		names = []string{StepMark, StepRemoveNAT, StepRelease, StepRetire}
	case OpReaddress:
		names = []string{StepRelocalIP, StepRenat, StepLocalIPRecord}
	}
	out := make([]StepRecord, len(names))
	for i, n := range names {
		out[i].Name = n
	}
	return out
}

// stepFuncs is one step's action and compensation. undo is nil when there
// is nothing to undo; it must be a no-op when do never took effect.
type stepFuncs struct {
	do   func(r *run, ctx context.Context) error
	undo func(r *run, ctx context.Context) error
	// creds reports that do needs the guest credentials.
	creds bool
	// bestEffort: a failed undo is reported but does not keep the journal
	// open (the guest may be unreachable for good).
	bestEffort bool
}

var steps = map[string]stepFuncs{
	StepEligibility:  {do: (*run).eligibility},
	StepCredentials:  {do: (*run).validateCredentials, creds: true},
	StepRequirements: {do: (*run).checkRequirements, creds: true},
	StepIPAM:         {do: (*run).allocate, undo: (*run).release},
	StepFirewall:     {do: (*run).ensureNAT, undo: (*run).removeNAT},
	StepConfigure:    {do: (*run).configure, undo: (*run).unconfigure, creds: true, bestEffort: true},
	StepCMDB:         {do: (*run).markEnrolled},

	StepMark:        {do: (*run).markUnenrolling},
	StepUnconfigure: {do: (*run).unconfigureForUnenroll},
	StepRemoveNAT:   {do: (*run).removeNAT},
	StepRelease:     {do: (*run).release},
	StepAvailable:   {do: (*run).markAvailable},
	StepRetire:      {do: (*run).markRetired},

	StepRelocalIP:     {do: (*run).relocalIP},
	StepRenat:         {do: (*run).renat},
	StepLocalIPRecord: {do: (*run).recordLocalIP},
}

// run is one journal being worked on by this process.
type run struct {
	o *Orchestrator

	mu   sync.Mutex // guards j and lost (saves and lease renewals)
	j    Journal
	lost error

	// leftovers lists what a compensation had to leave behind.
	leftovers []string

	prov   *provider.Provider
	policy Policy
	cred   guest.Credentials
	credOK bool

	vm      provider.VM
	vmOK    bool
	guestEx *guest.Executor
	netEx   *guest.Executor
}

func (r *run) owner() string { return r.j.VM.String() }

func (r *run) event(kind EventKind, step string, err error, msg string) {
	e := Event{Kind: kind, Journal: r.j.ID, Op: r.j.Op, VM: r.j.VM, Profile: r.j.Profile, Step: step, Message: msg}
	if err != nil {
		e.Code = errs.CodeOf(err)
		if e.Message == "" {
			e.Message = err.Error()
		}
	}
	r.o.emit(e)
}

// save writes the journal (after mutate, under the lock) and renews the
// lease. A conflict means another instance took the journal over: the run
// stops at once.
func (r *run) save(ctx context.Context, mutate func(j *Journal)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lost != nil {
		return r.lost
	}
	// The mutation is made in place: if the write fails the run ends (or
	// compensates, and then the mutation, a step's outcome, is true).
	if mutate != nil {
		mutate(&r.j)
	}
	r.o.hold(&r.j)
	j := r.j
	// The journal is written even when ctx is canceled: it is how the
	// outcome is known. The Store bounds its own calls.
	saved, err := r.o.cfg.Store.UpdateJournal(context.WithoutCancel(ctx), j)
	if err != nil {
		if errors.Is(err, ErrJournalConflict) {
			r.lost = errs.Errorf(errs.OutcomeUnknown, "enroll", "journal %s was taken over by another instance: %w", r.j.ID, err)
			return r.lost
		}
		return errs.WrapOp("enroll: journal write", err)
	}
	if mutate == nil {
		// A lease renewal, possibly from the heartbeat goroutine: only
		// the fields the working goroutine never reads without the lock.
		r.j.Revision, r.j.Holder, r.j.Incarnation, r.j.LeaseExpires, r.j.Updated = saved.Revision, saved.Holder, saved.Incarnation, saved.LeaseExpires, saved.Updated
		return nil
	}
	r.j = saved
	return nil
}

// setResources changes the in-memory resources (saved with the next
// journal write).
func (r *run) setResources(f func(res *Resources)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.j.Resources)
}

// startHeartbeat renews the lease every third of its TTL while the run
// works; a lost lease cancels the work. The returned func stops it and
// waits for a renewal in progress.
func (r *run) startHeartbeat(ctx context.Context, cancelWork context.CancelFunc) (stop func()) {
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	every := r.o.leaseTTL / 3
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if err := r.save(ctx, nil); err != nil && r.isLost() {
			cancelWork()
			return
		}
		t.Reset(every)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

func (r *run) isLost() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost != nil
}

func (r *run) journal() Journal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.j.Clone()
}

// execute runs the remaining steps, compensating on failure, and closes the
// journal.
func (r *run) execute(ctx context.Context) (Result, error) {
	defer r.o.unmarkActive(r.j.ID) // last: after the heartbeat has stopped
	work, cancelWork := context.WithCancel(ctx)
	defer cancelWork()
	defer r.startHeartbeat(ctx, cancelWork)()
	defer r.closeExecutors()

	if r.j.Phase == Compensating {
		return r.compensate(ctx, len(r.j.Steps)-1, nil)
	}
	for i := range r.j.Steps {
		if r.j.Steps[i].State == StateDone {
			continue
		}
		name := r.j.Steps[i].Name
		r.o.at("before:" + name)
		r.event(StepStarted, name, nil, "")
		sctx, sc := r.stepSpan(work, name, false)
		err := r.attempt(sctx, name)
		sc.Finish(sctx, err)
		r.o.at("after-do:" + name)
		if err == nil {
			last := i == len(r.j.Steps)-1
			err = r.save(ctx, func(j *Journal) {
				j.Steps[i].State = StateDone
				if last { // the last step's write also closes the journal
					j.Phase, j.ErrorCode, j.Error, j.FailedStep = Succeeded, errs.OK, "", ""
				}
			})
		}
		if err != nil {
			if r.isLost() {
				return r.result(err), err
			}
			if ctxErr := errs.FromContext(ctx, "enroll"); ctxErr != nil && errs.CodeOf(err) == errs.Unknown {
				err = errs.Join(ctxErr, err)
			}
			r.event(StepFailed, name, err, "")
			if r.j.Op == OpEnroll {
				return r.compensate(ctx, i, err)
			}
			return r.failForward(ctx, i, err)
		}
		r.event(StepSucceeded, name, nil, r.detail(name))
		r.o.at("after-save:" + name)
	}
	if r.j.Phase != Succeeded {
		if err := r.save(ctx, func(j *Journal) { j.Phase, j.ErrorCode, j.Error, j.FailedStep = Succeeded, errs.OK, "", "" }); err != nil {
			return r.result(err), err
		}
	}
	r.event(JournalSucceeded, "", nil, r.detail(""))
	return r.result(nil), nil
}

// attempt runs one step's action, retrying Unavailable and OutcomeUnknown
// failures (every step is idempotent, so trying again is how an unknown
// outcome is reconciled).
func (r *run) attempt(ctx context.Context, name string) error {
	sf := steps[name]
	delay := r.o.retryDly
	for try := 1; ; try++ {
		err := sf.do(r, ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, guest.ErrSessionLost) {
			r.closeExecutors() // the next try dials again
		}
		code := errs.CodeOf(err)
		if (code != errs.Unavailable && code != errs.OutcomeUnknown) || try > r.o.retries || ctx.Err() != nil {
			return err
		}
		e := Event{Kind: StepRetrying, Journal: r.j.ID, Op: r.j.Op, VM: r.j.VM, Profile: r.j.Profile, Step: name, Code: code, Message: err.Error(), Attempt: try + 1}
		r.o.emit(e)
		select {
		case <-ctx.Done():
			return errs.Join(errs.FromContext(ctx, "enroll"), err)
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// compensate undoes steps failed..0 in reverse (every step up to the one
// that failed, since its side effect may have happened), on a context that
// survives the caller's cancellation, then marks the CMDB record failed and
// closes the journal.
func (r *run) compensate(ctx context.Context, failed int, cause error) (Result, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.compTO)
	defer cancel()
	if r.j.Phase != Compensating {
		code := errs.CodeOf(cause)
		msg := ""
		if cause != nil {
			msg = limit.Cut(cause.Error(), MaxJournalError)
		}
		if err := r.save(cctx, func(j *Journal) {
			j.Phase, j.ErrorCode, j.Error, j.FailedStep = Compensating, code, msg, j.Steps[failed].Name
			j.Steps[failed].State, j.Steps[failed].Code, j.Steps[failed].Error = StateFailed, code, msg
		}); err != nil {
			return r.result(errs.Join(cause, err)), errs.Join(cause, err)
		}
	} else if cause == nil {
		cause = &errs.Error{Code: r.j.ErrorCode, Op: "enroll", Msg: r.j.Error}
	}
	var compErrs []error
	blocking := false
	for i := failed; i >= 0; i-- {
		st := r.j.Steps[i]
		sf := steps[st.Name]
		if sf.undo == nil || st.State == StateCompensated || (st.State == StatePending && i != failed && !r.mayHaveRun(i)) {
			continue
		}
		r.o.at("undo:" + st.Name)
		r.event(CompensationStarted, st.Name, nil, "")
		uctx, uc := r.stepSpan(cctx, st.Name, true)
		err := sf.undo(r, uctx)
		uc.Finish(uctx, err)
		if err != nil {
			r.event(CompensationFailed, st.Name, err, "")
			compErrs = append(compErrs, fmt.Errorf("compensating %s: %w", st.Name, err))
			blocking = blocking || !sf.bestEffort
			continue
		}
		if err := r.save(cctx, func(j *Journal) { j.Steps[i].State = StateCompensated }); err != nil {
			return r.result(errs.Join(cause, err)), errs.Join(cause, err)
		}
		r.event(CompensationDone, st.Name, nil, "")
	}
	final := cause
	if len(compErrs) > 0 {
		final = errs.Join(append([]error{cause}, compErrs...)...)
	}
	if err := r.markFailed(cctx); err != nil {
		final = errs.Join(final, err)
	}
	if blocking {
		// Leave the journal open: Resume (here or in another instance,
		// once the lease expires) retries the compensations.
		r.event(JournalFailed, r.j.FailedStep, final, "")
		return r.result(final), final
	}
	if err := r.save(cctx, func(j *Journal) { j.Phase = Failed }); err != nil {
		final = errs.Join(final, err)
	}
	r.event(JournalFailed, r.j.FailedStep, final, "")
	return r.result(final), final
}

// mayHaveRun reports whether step i could have taken effect: it was done,
// or it is the first step not journaled as done (a crash may have come
// between its side effect and the journal write).
func (r *run) mayHaveRun(i int) bool {
	if r.j.Steps[i].State == StateDone || r.j.Steps[i].State == StateFailed {
		return true
	}
	for k := 0; k < i; k++ {
		if r.j.Steps[k].State == StatePending {
			return false
		}
	}
	return true
}

// failForward closes a journal of an operation that has no compensation
// (unenroll, cleanup, readdress): every step is idempotent, so running it
// again finishes the job.
func (r *run) failForward(ctx context.Context, failed int, cause error) (Result, error) {
	cctx, cancel := detached(ctx)
	defer cancel()
	code, msg := errs.CodeOf(cause), limit.Cut(cause.Error(), MaxJournalError)
	final := cause
	if r.j.Resources.Marked {
		reason := fmt.Sprintf("%s failed at step %s: %s", r.j.Op, r.j.Steps[failed].Name, msg)
		if err := r.updateRecord(cctx, func(rec *cmdb.Record) error {
			rec.Reason, rec.FailedStep = reason, r.j.Steps[failed].Name
			return nil
		}); err != nil && errs.CodeOf(err) != errs.NotFound {
			final = errs.Join(final, err)
		}
	}
	if err := r.save(cctx, func(j *Journal) {
		j.Phase, j.ErrorCode, j.Error, j.FailedStep = Failed, code, msg, j.Steps[failed].Name
		j.Steps[failed].State, j.Steps[failed].Code, j.Steps[failed].Error = StateFailed, code, msg
	}); err != nil {
		final = errs.Join(final, err)
	}
	r.event(JournalFailed, r.j.Steps[failed].Name, final, "")
	return r.result(final), final
}

// resume continues a journal taken over from a crashed instance.
func (r *run) resume(ctx context.Context) (Result, error) {
	if r.j.Op == OpEnroll && r.j.Phase == Running && r.needsCredentials() && !r.credOK {
		// Resume cannot go forward without the credentials: roll back.
		defer r.o.unmarkActive(r.j.ID)
		work, cancelWork := context.WithCancel(ctx)
		defer cancelWork()
		defer r.startHeartbeat(work, cancelWork)()
		defer r.closeExecutors()
		failed := 0
		for i := range r.j.Steps {
			if r.j.Steps[i].State != StateDone {
				failed = i
				break
			}
		}
		cause := errs.Errorf(errs.FailedPrecondition, "enroll.Resume", "the credentials for user %s are not available to resume the enrollment (Config.Credentials): rolled back", limit.Quote(r.j.Username))
		return r.compensate(ctx, failed, cause)
	}
	return r.execute(ctx)
}

// needsCredentials reports whether a step still to run, or a compensation
// still to run, needs credentials.
func (r *run) needsCredentials() bool {
	for i, st := range r.j.Steps {
		if !steps[st.Name].creds {
			continue
		}
		if r.j.Phase == Running && st.State != StateDone {
			return true
		}
		if r.j.Phase == Compensating && st.State != StateCompensated && r.mayHaveRun(i) {
			return true
		}
	}
	return false
}

func (r *run) result(err error) Result {
	j := r.journal()
	res := Result{Journal: j.ID, VM: j.VM, Op: j.Op, LocalIP: j.Resources.LocalIP, FailedStep: j.FailedStep, Err: err}
	switch {
	case err == nil && j.Op == OpEnroll:
		res.State = cmdb.Enrolled
		res.PublicIP, res.Ports = j.Resources.PublicIP, append(res.Ports, j.Resources.Ports...)
	case err == nil && j.Op == OpCleanup:
		res.State = cmdb.Retired
	case err == nil && j.Op == OpReaddress:
		res.State, res.PublicIP = cmdb.Enrolled, j.Resources.PublicIP
	case err == nil:
		res.State = cmdb.Available
	case j.Op == OpEnroll && j.Resources.Marked:
		res.State = cmdb.Failed
	case j.Resources.Marked:
		res.State = cmdb.Unenrolling
	default:
		sctx, cancel := detached(context.Background())
		defer cancel()
		if rec, gerr := r.o.cfg.CMDB.Get(sctx, j.VM); gerr == nil {
			res.State = rec.State
		}
	}
	return res
}

func (r *run) detail(step string) string {
	switch step {
	case StepIPAM, "":
		if r.j.Resources.PublicIP.IsValid() {
			return fmt.Sprintf("public %s <-> local %s", r.j.Resources.PublicIP, r.j.Resources.LocalIP)
		}
	}
	return ""
}

func (r *run) closeExecutors() {
	for _, ex := range []*guest.Executor{r.guestEx, r.netEx} {
		if ex != nil {
			_ = ex.Close()
		}
	}
	r.guestEx, r.netEx = nil, nil
}
