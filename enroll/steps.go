package enroll

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
)

// AttrPool is the CMDB attribute that records an enrolled VM's IPAM pool.
const AttrPool = "managedvm.pool"

func (r *run) loadVM(ctx context.Context) (provider.VM, error) {
	if r.prov == nil {
		return provider.VM{}, errs.Errorf(errs.FailedPrecondition, "enroll", "provider %s is not configured", limit.Quote(r.j.VM.Provider))
	}
	vm, err := r.prov.Get(ctx, r.j.VM.VMID)
	if err != nil {
		if errs.CodeOf(err) == errs.NotFound {
			return provider.VM{}, errs.Errorf(errs.NotFound, "enroll", "VM %s does not exist (any more) in provider %s: %w", limit.Quote(r.j.VM.VMID), limit.Quote(r.j.VM.Provider), err)
		}
		return provider.VM{}, err
	}
	r.vm, r.vmOK = vm, true
	return vm, nil
}

func (r *run) target() guest.Target {
	res := r.j.Resources
	t := guest.Target{
		VM: r.j.VM.String(), Provider: r.j.VM.Provider, VMID: r.j.VM.VMID, Name: r.vm.Name,
		Family: guest.ParseFamily(res.Family), PublicIP: res.PublicIP, LocalIP: res.LocalIP,
		Profile: r.j.Profile,
	}
	for _, p := range res.Ports {
		t.Ports = append(t.Ports, guest.Port{Protocol: string(p.Protocol), Number: p.Number})
	}
	return t
}

// updateRecord applies f to the VM's CMDB record (a new one if there is
// none) and writes it, retrying on revision conflicts.
func (r *run) updateRecord(ctx context.Context, f func(rec *cmdb.Record) error) error {
	return updateRecord(ctx, r.o.cfg.CMDB, r.j.VM, func(rec *cmdb.Record) error {
		if rec.Revision == 0 && r.vmOK {
			rec.VM = r.vm.Clone()
		}
		return f(rec)
	})
}

func updateRecord(ctx context.Context, db *cmdb.CMDB, key cmdb.Key, f func(rec *cmdb.Record) error) error {
	for attempt := 0; ; attempt++ {
		rec, err := db.Get(ctx, key)
		switch {
		case errs.CodeOf(err) == errs.NotFound:
			rec = cmdb.Record{Key: key, State: cmdb.Available}
		case err != nil:
			return err
		}
		before := rec.Clone()
		if err := f(&rec); err != nil {
			return err
		}
		if rec.Revision != 0 && reflect.DeepEqual(before, rec) {
			return nil // nothing changes: no write, no new revision
		}
		if _, err = db.Upsert(ctx, rec); err == nil {
			return nil
		}
		if !errors.Is(err, cmdb.ErrConflict) || attempt >= 20 {
			return err
		}
	}
}

func setAttr(rec *cmdb.Record, k, v string) {
	if v == "" {
		delete(rec.Attributes, k)
		return
	}
	if rec.Attributes == nil {
		rec.Attributes = map[string]string{}
	}
	rec.Attributes[k] = v
}

// eligibility: the VM exists, is powered on, is not a template, is not
// enrolled; its OS family is supported; it has a local IP and a pool. The
// CMDB record goes to enrolling.
func (r *run) eligibility(ctx context.Context) error {
	vm, err := r.loadVM(ctx)
	if err != nil {
		return err
	}
	local, pool, err := r.eligible(vm)
	if err != nil {
		// The VM is not fit for enrollment: its record says why (unless
		// it is enrolled or unenrolling: markFailed leaves those alone).
		r.setResources(func(res *Resources) { res.Marked = true })
		return err
	}
	ports := r.policy.portsFor(vm.Guest.Family)
	err = r.updateRecord(ctx, func(rec *cmdb.Record) error {
		if err := refuse(*rec, vm); err != nil {
			return err
		}
		rec.VM = vm.Clone()
		rec.State, rec.Reason, rec.FailedStep = cmdb.Enrolling, "", ""
		rec.PublicIP, rec.Ports = netip.Addr{}, nil
		setAttr(rec, AttrPool, pool)
		return nil
	})
	if err != nil {
		return err
	}
	r.setResources(func(res *Resources) {
		res.Family, res.LocalIP, res.Pool, res.Ports, res.Marked = string(vm.Guest.Family), local, pool, ports, true
	})
	return nil
}

func vmName(vm provider.VM) string {
	return fmt.Sprintf("VM %s (%s)", limit.Quote(vm.Name), limit.Quote(vm.ID))
}

// refuse reports a record whose state forbids a new enrollment.
func refuse(rec cmdb.Record, vm provider.VM) error {
	const op = "enroll.eligibility"
	switch rec.State {
	case cmdb.Enrolled:
		return errs.Errorf(errs.FailedPrecondition, op, "%s is already enrolled (public IP %s)", vmName(vm), rec.PublicIP)
	case cmdb.Unenrolling:
		return errs.Errorf(errs.FailedPrecondition, op, "%s has an unfinished unenrollment (%s): unenroll it again first", vmName(vm), rec.Reason)
	}
	return nil
}

// eligible checks the VM's own fitness for enrollment and returns its
// local IP and the pool to allocate from.
func (r *run) eligible(vm provider.VM) (netip.Addr, string, error) {
	const op = "enroll.eligibility"
	name := vmName(vm)
	fail := func(format string, args ...any) (netip.Addr, string, error) {
		return netip.Addr{}, "", errs.Errorf(errs.FailedPrecondition, op, format, args...)
	}
	switch {
	case vm.Template:
		return fail("%s is a template: templates cannot be enrolled", name)
	case vm.Power != provider.PoweredOn:
		return fail("%s is %s: power it on and enroll again", name, vm.Power)
	case vm.Guest.Family == guest.FamilyUnknown:
		return fail("%s reports no guest OS family: the guest tools (VMware Tools) must be installed and running", name)
	case !r.policy.supports(vm.Guest.Family):
		return fail("%s runs %s, which the service profile does not support", name, vm.Guest.Family)
	case r.j.Access == AccessGuest && !vm.Guest.ToolsRunning:
		return fail("the guest tools (VMware Tools) are not running in %s: start or install them and enroll again", name)
	case r.j.Access == AccessNetwork && r.o.cfg.Dialer == nil:
		return fail("provider %s has no guest access and no Dialer is configured", limit.Quote(r.j.VM.Provider))
	}
	local, ok := vm.PrimaryIP()
	if !ok {
		return fail("%s reports no IP address: the guest needs an address, and its tools must be running to report it", name)
	}
	pool := r.policy.poolFor(vm.Zone)
	if pool == "" {
		return fail("no IPAM pool for zone %s in the service profile", limit.Quote(vm.Zone))
	}
	return local, pool, nil
}

// purpose is what an executor is for.
type purpose int

const (
	// forCheck: credential and requirement checks, through the guest
	// access before the NAT exists (AccessGuest), over the network right
	// after it (AccessNetwork).
	forCheck purpose = iota
	// forConfig: the OS changes, over the network when a Dialer is
	// configured, else through the guest access.
	forConfig
)

// executor is the one place a run chooses and opens how it reaches the
// guest: it picks the transport for purpose, opens it once (a refused
// login becomes an Unauthenticated error the customer can act on) and
// keeps it for the run's later steps.
func (r *run) executor(ctx context.Context, p purpose) (*guest.Executor, error) {
	network := r.j.Access == AccessNetwork
	if p == forConfig {
		network = r.o.cfg.Dialer != nil
	}
	slot := &r.guestEx
	if network {
		slot = &r.netEx
	}
	if *slot != nil {
		return *slot, nil
	}
	var (
		ex  *guest.Executor
		err error
	)
	if network {
		if r.o.cfg.Dialer == nil {
			return nil, errs.Errorf(errs.FailedPrecondition, "enroll", "provider %s has no guest access and no Dialer is configured", limit.Quote(r.j.VM.Provider))
		}
		if !r.j.Resources.PublicIP.IsValid() {
			return nil, errs.New(errs.Internal, "enroll", "no public IP to reach the guest at")
		}
		ex, err = r.o.cfg.Dialer.Dial(ctx, r.target(), r.cred)
		err = credentialError(err, r.cred.Username, fmt.Sprintf("by logging in at %s", r.j.Resources.PublicIP))
	} else {
		ga, ok := r.prov.GuestAccess()
		if !ok {
			return nil, errs.Errorf(errs.FailedPrecondition, "enroll", "provider %s has no guest access and no Dialer is configured", limit.Quote(r.j.VM.Provider))
		}
		ex, err = ga.GuestExecutor(ctx, r.j.VM.VMID, r.cred)
		err = credentialError(err, r.cred.Username, "through the hypervisor")
	}
	if err != nil {
		return nil, err
	}
	*slot = ex
	return ex, nil
}

func (r *run) ensureVM(ctx context.Context) error {
	if r.vmOK {
		return nil
	}
	_, err := r.loadVM(ctx)
	return err
}

func (r *run) validateCredentials(ctx context.Context) error {
	if err := r.ensureVM(ctx); err != nil {
		return err
	}
	if r.j.Access == AccessGuest {
		ga, ok := r.prov.GuestAccess()
		if !ok {
			return errs.Errorf(errs.FailedPrecondition, "enroll", "provider %s has no guest access", limit.Quote(r.j.VM.Provider))
		}
		return credentialError(ga.ValidateCredentials(ctx, r.j.VM.VMID, r.cred), r.cred.Username, "through the hypervisor")
	}
	_, err := r.executor(ctx, forCheck)
	return err
}

func (r *run) checkRequirements(ctx context.Context) error {
	family := guest.ParseFamily(r.j.Resources.Family)
	req := r.policy.Requirements[family]
	if req.IsZero() {
		return nil // nothing to check: the guest is not asked anything
	}
	if err := r.ensureVM(ctx); err != nil {
		return err
	}
	ex, err := r.executor(ctx, forCheck)
	if err != nil {
		return err
	}
	rep, err := guest.CheckRequirements(ctx, ex, family, req)
	if err != nil {
		return err
	}
	summary := fmt.Sprintf("%d checks, %d failed, %d warnings", len(rep.Checks), len(rep.Failures()), len(rep.Warnings()))
	r.event(RequirementsReported, StepRequirements, nil, summary)
	if !rep.OK() {
		return &RequirementsError{Report: rep}
	}
	return nil
}

func (r *run) allocate(ctx context.Context) error {
	res := r.j.Resources
	a, err := r.o.cfg.IPAM.Allocate(ctx, ipam.Request{Pool: res.Pool, Owner: r.owner(), LocalIP: res.LocalIP})
	if err != nil {
		return err
	}
	r.setResources(func(res *Resources) { res.PublicIP = a.Address })
	return nil
}

// release frees the owner's public IP: from the journal's pool, or from
// every pool when the pool is not known (idempotent either way).
func (r *run) release(ctx context.Context) error {
	pools := []string{r.j.Resources.Pool}
	if r.j.Resources.Pool == "" {
		if r.j.Op == OpEnroll {
			return nil // eligibility never got as far as choosing a pool
		}
		infos, err := r.o.cfg.IPAM.Pools(ctx)
		if err != nil {
			return err
		}
		pools = pools[:0]
		for _, p := range infos {
			pools = append(pools, p.Name)
		}
	}
	for _, p := range pools {
		if err := r.o.cfg.IPAM.Release(ctx, p, r.owner()); err != nil && errs.CodeOf(err) != errs.NotFound {
			return err
		}
	}
	return nil
}

func (r *run) natRule() natfw.Rule {
	res := r.j.Resources
	return natfw.Rule{
		Owner: r.owner(), Public: res.PublicIP, Local: res.LocalIP,
		Ports: res.Ports, Sources: r.policy.ManagementSources,
		Description: "managedvm " + string(r.j.Op) + " " + r.j.ID,
	}
}

func (r *run) ensureNAT(ctx context.Context) error {
	rule := r.natRule()
	if err := r.o.cfg.Firewall.EnsureNAT(ctx, rule); err != nil {
		return err
	}
	if r.policy.Reachability == nil {
		return nil
	}
	if err := r.policy.Reachability.Check(ctx, rule.Public, slices.Clone(rule.Ports)); err != nil {
		if errs.CodeOf(err) == errs.Unknown {
			return errs.Errorf(errs.Unavailable, "", "management ports do not answer through %s: %v", rule.Public, err)
		}
		return err
	}
	return nil
}

func (r *run) removeNAT(ctx context.Context) error {
	return r.o.cfg.Firewall.RemoveNAT(ctx, r.owner())
}

func (r *run) configure(ctx context.Context) error {
	if r.o.cfg.Configurator == nil {
		return nil
	}
	if err := r.ensureVM(ctx); err != nil {
		return err
	}
	ex, err := r.executor(ctx, forConfig)
	if err != nil {
		return err
	}
	return r.o.cfg.Configurator.Configure(ctx, r.target(), ex)
}

// unconfigure is the configure step's compensation: best effort, as the
// guest may be unreachable.
func (r *run) unconfigure(ctx context.Context) error {
	u, ok := r.o.cfg.Configurator.(guest.Unconfigurer)
	if !ok {
		return nil
	}
	if !r.credOK {
		r.leftovers = append(r.leftovers, "the OS configuration (no credentials to undo it)")
		r.event(CompensationFailed, StepConfigure, nil, "no credentials to undo the OS configuration: the guest is left as it is")
		return nil
	}
	if err := r.ensureVM(ctx); err != nil {
		return err
	}
	ex, err := r.executor(ctx, forConfig)
	if err != nil {
		return err
	}
	return u.Unconfigure(ctx, r.target(), ex)
}

func (r *run) markEnrolled(ctx context.Context) error {
	// Read the VM again: if it was deleted during the enrollment, fail (and
	// compensate) rather than mark a ghost enrolled.
	vm, err := r.loadVM(ctx)
	if err != nil {
		return err
	}
	res := r.j.Resources
	return r.updateRecord(ctx, func(rec *cmdb.Record) error {
		if rec.State == cmdb.Retired {
			return errs.Errorf(errs.FailedPrecondition, "enroll", "VM %s was retired during the enrollment", r.j.VM)
		}
		rec.VM = vm.Clone()
		rec.State, rec.Reason, rec.FailedStep = cmdb.Enrolled, "", ""
		rec.PublicIP, rec.Ports = res.PublicIP, append([]natfw.Port(nil), res.Ports...)
		rec.EnrolledAt = r.o.now()
		setAttr(rec, AttrPool, res.Pool)
		return nil
	})
}

// markFailed is the end of an enrollment's compensation: the CMDB record
// goes to failed with the reason and the step, never staying enrolling.
func (r *run) markFailed(ctx context.Context) error {
	if !r.j.Resources.Marked {
		return nil
	}
	j := r.journal()
	err := r.updateRecord(ctx, func(rec *cmdb.Record) error {
		switch rec.State {
		case cmdb.Retired, cmdb.Enrolled, cmdb.Unenrolling:
			// Gone, or another operation's business: an enrollment
			// refused at eligibility never touched it.
			if rec.State != cmdb.Enrolled || j.FailedStep == StepEligibility {
				return errNothingToMark
			}
		}
		rec.State, rec.Reason, rec.FailedStep = cmdb.Failed, j.Error, j.FailedStep
		if len(r.leftovers) > 0 {
			rec.Reason += "; left in the guest: " + strings.Join(r.leftovers, ", ")
		}
		rec.PublicIP, rec.Ports = netip.Addr{}, nil
		setAttr(rec, AttrPool, "")
		return nil
	})
	if errs.CodeOf(err) == errs.NotFound || err == errNothingToMark {
		return nil
	}
	return err
}

// markUnenrolling starts an unenrollment or cleanup: it learns from the
// CMDB record what the enrollment holds and marks the record unenrolling.
func (r *run) markUnenrolling(ctx context.Context) error {
	if r.j.Op == OpUnenroll && r.prov != nil && !r.vmOK {
		if _, err := r.loadVM(ctx); err != nil && errs.CodeOf(err) != errs.NotFound {
			return err
		}
	}
	var res Resources
	err := r.updateRecord(ctx, func(rec *cmdb.Record) error {
		res = Resources{Family: string(rec.VM.Guest.Family), PublicIP: rec.PublicIP, Ports: rec.Ports, Pool: rec.Attributes[AttrPool]}
		res.LocalIP, _ = rec.VM.PrimaryIP()
		if res.Pool == "" && rec.Revision != 0 {
			res.Pool = r.o.cfg.Policy.poolFor(rec.VM.Zone)
		}
		if rec.Revision == 0 {
			return errNoRecord
		}
		switch rec.State {
		case cmdb.Available, cmdb.Retired:
			return errNothingToMark
		}
		rec.State, rec.Reason, rec.FailedStep = cmdb.Unenrolling, "", ""
		res.Marked = true
		return nil
	})
	if err != nil && err != errNoRecord && err != errNothingToMark {
		return err
	}
	if err == errNoRecord {
		res.Pool = "" // unknown: release looks in every pool
	}
	r.setResources(func(dst *Resources) { *dst = res })
	return nil
}

var (
	errNoRecord      = errors.New("no record")
	errNothingToMark = errors.New("nothing to mark")
)

func (r *run) unconfigureForUnenroll(ctx context.Context) error {
	u, ok := r.o.cfg.Configurator.(guest.Unconfigurer)
	if !ok || !r.j.Resources.Marked {
		return nil
	}
	if !r.credOK {
		r.event(StepSucceeded, StepUnconfigure, nil, "no credentials given: the OS configuration is left in the guest")
		return nil
	}
	if !r.vmOK {
		return nil // the VM is gone: nothing to undo in it
	}
	if r.o.cfg.Dialer == nil {
		if _, ok := r.prov.GuestAccess(); !ok {
			return nil
		}
	}
	ex, err := r.executor(ctx, forConfig)
	if err != nil {
		return err
	}
	return u.Unconfigure(ctx, r.target(), ex)
}

func (r *run) markAvailable(ctx context.Context) error {
	return r.clearRecord(ctx, cmdb.Available)
}

func (r *run) markRetired(ctx context.Context) error {
	if err := r.clearRecord(ctx, ""); err != nil {
		return err
	}
	_, err := r.o.cfg.CMDB.Retire(ctx, r.j.VM)
	if errs.CodeOf(err) == errs.NotFound {
		return nil
	}
	return err
}

// clearRecord removes the enrollment from the record and sets its state
// (unless state is empty). A missing record is left missing.
func (r *run) clearRecord(ctx context.Context, state cmdb.State) error {
	err := updateRecord(ctx, r.o.cfg.CMDB, r.j.VM, func(rec *cmdb.Record) error {
		if rec.Revision == 0 {
			return errNoRecord
		}
		if state != "" && rec.State != cmdb.Retired {
			rec.State = state
		}
		rec.Reason, rec.FailedStep = "", ""
		rec.PublicIP, rec.Ports = netip.Addr{}, nil
		setAttr(rec, AttrPool, "")
		return nil
	})
	if err == errNoRecord {
		return nil
	}
	return err
}

func (r *run) relocalIP(ctx context.Context) error {
	res := r.j.Resources
	_, err := r.o.cfg.IPAM.SetLocalIP(ctx, res.Pool, r.owner(), r.j.NewLocalIP)
	return err
}

func (r *run) renat(ctx context.Context) error {
	rule, err := r.o.cfg.Firewall.Get(ctx, r.owner())
	if err != nil {
		return err
	}
	rule.Local = r.j.NewLocalIP
	return r.o.cfg.Firewall.EnsureNAT(ctx, rule)
}

func (r *run) recordLocalIP(ctx context.Context) error {
	r.setResources(func(res *Resources) { res.LocalIP = r.j.NewLocalIP })
	return nil
}
