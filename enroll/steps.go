package enroll

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// AttrPool is the CMDB attribute that records an enrolled VM's IPAM pool.
const AttrPool = "managedvm.pool"

func (r *run) loadVM(ctx context.Context) (provider.VM, error) {
	if r.prov == nil {
		return provider.VM{}, errs.Errorf(errs.FailedPrecondition, "enroll", "provider %q is not configured", r.j.VM.Provider)
	}
	vm, err := r.prov.Get(ctx, r.j.VM.VMID)
	if err != nil {
		if errs.CodeOf(err) == errs.NotFound {
			return provider.VM{}, errs.Errorf(errs.NotFound, "enroll", "VM %s does not exist (any more) in provider %q: %w", r.j.VM.VMID, r.j.VM.Provider, err)
		}
		return provider.VM{}, err
	}
	r.vm, r.vmOK = vm, true
	return vm, nil
}

func (r *run) target() Target {
	res := r.j.Resources
	return Target{
		VM: r.j.VM, Facts: r.vm, Family: guest.ParseFamily(res.Family),
		PublicIP: res.PublicIP, LocalIP: res.LocalIP, Ports: append([]natfw.Port(nil), res.Ports...),
		Profile: r.j.Profile,
	}
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

func updateRecord(ctx context.Context, db cmdb.CMDB, key cmdb.Key, f func(rec *cmdb.Record) error) error {
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

func vmName(vm provider.VM) string { return fmt.Sprintf("VM %q (%s)", vm.Name, vm.ID) }

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
		return fail("provider %q has no guest access and no Dialer is configured", r.j.VM.Provider)
	}
	local, ok := vm.PrimaryIP()
	if !ok {
		return fail("%s reports no IP address: the guest needs an address, and its tools must be running to report it", name)
	}
	pool := r.policy.poolFor(vm.Zone)
	if pool == "" {
		return fail("no IPAM pool for zone %q in the service profile", vm.Zone)
	}
	return local, pool, nil
}

func (r *run) guestExecutor(ctx context.Context) (guest.Executor, error) {
	if r.guestEx == nil {
		ex, err := r.o.executorFor(ctx, r.prov, r.target(), r.cred, false)
		if err != nil {
			return nil, err
		}
		r.guestEx = ex
	}
	return r.guestEx, nil
}

func (r *run) networkExecutor(ctx context.Context) (guest.Executor, error) {
	if r.netEx == nil {
		if !r.j.Resources.PublicIP.IsValid() {
			return nil, errs.New(errs.Internal, "enroll", "no public IP to reach the guest at")
		}
		ex, err := r.o.executorFor(ctx, r.prov, r.target(), r.cred, true)
		if err != nil {
			return nil, err
		}
		r.netEx = ex
	}
	return r.netEx, nil
}

// checkExecutor runs credential and requirement checks: the guest access
// before the NAT exists, the network after it.
func (r *run) checkExecutor(ctx context.Context) (guest.Executor, error) {
	if r.j.Access == AccessGuest {
		return r.guestExecutor(ctx)
	}
	return r.networkExecutor(ctx)
}

// configExecutor makes the OS changes: over the network when a Dialer is
// configured (the GOSS way), else through the guest access.
func (r *run) configExecutor(ctx context.Context) (guest.Executor, error) {
	if r.o.cfg.Dialer != nil {
		return r.networkExecutor(ctx)
	}
	return r.guestExecutor(ctx)
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
		ga, ok := provider.GuestAccessOf(r.prov)
		if !ok {
			return errs.Errorf(errs.FailedPrecondition, "enroll", "provider %q has no guest access", r.j.VM.Provider)
		}
		return credentialError(ga.ValidateCredentials(ctx, r.j.VM.VMID, r.cred), r.cred.Username, "in the guest")
	}
	_, err := r.networkExecutor(ctx)
	return err
}

func (r *run) checkRequirements(ctx context.Context) error {
	family := guest.ParseFamily(r.j.Resources.Family)
	req := r.policy.Requirements[family]
	if req.empty() {
		return nil // nothing to check: the guest is not asked anything
	}
	if err := r.ensureVM(ctx); err != nil {
		return err
	}
	ex, err := r.checkExecutor(ctx)
	if err != nil {
		return err
	}
	rep, err := CheckRequirements(ctx, ex, family, req)
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
	return r.o.cfg.Firewall.EnsureNAT(ctx, r.natRule())
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
	ex, err := r.configExecutor(ctx)
	if err != nil {
		return err
	}
	return r.o.cfg.Configurator.Configure(ctx, r.target(), ex)
}

// unconfigure is the configure step's compensation: best effort, as the
// guest may be unreachable.
func (r *run) unconfigure(ctx context.Context) error {
	u, ok := r.o.cfg.Configurator.(Unconfigurer)
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
	ex, err := r.configExecutor(ctx)
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
	u, ok := r.o.cfg.Configurator.(Unconfigurer)
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
		if _, ok := provider.GuestAccessOf(r.prov); !ok {
			return nil
		}
	}
	ex, err := r.configExecutor(ctx)
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

// CheckRequirements runs the OS requirement checks in the guest behind ex
// and reports every row: family, distribution and version, free disk,
// commands, and the policy's own checks. The error is only for checks that
// could not run.
//
// The OS facts (guest.DetectFacts) are asked for only when a check needs
// them: Distributions or Checks. Then the family the guest reports is also
// compared with family (a row of its own). The disk and command checks run
// by the executor's family. Empty requirements run nothing in the guest.
func CheckRequirements(ctx context.Context, ex guest.Executor, family guest.OSFamily, req Requirements) (report.Report, error) {
	var rep report.Report
	facts := guest.Facts{Family: ex.Family()}
	if len(req.Distributions) > 0 || len(req.Checks) > 0 {
		var err error
		if facts, err = guest.DetectFacts(ctx, ex); err != nil {
			return rep, err
		}
	}
	if family != guest.FamilyUnknown && facts.Family != family {
		rep.Add(report.Check{ID: "os.family", Name: "Guest OS family", Status: report.Fail,
			Detail: fmt.Sprintf("the provider reports %s, the guest is %s", family, facts.Family),
			Fix:    "check the VM's guest OS setting in the hypervisor"})
	}
	if len(req.Distributions) > 0 {
		row := report.Check{ID: "os.distribution", Name: "Supported OS distribution and version", Subject: facts.Name}
		min, ok := req.Distributions[facts.Distribution]
		switch {
		case !ok:
			row.Status, row.Detail = report.Fail, fmt.Sprintf("%q (%s) is not a supported distribution (supported: %s)", facts.Distribution, facts.Name, supportedList(req.Distributions))
			row.Fix = "enroll a VM running a supported OS"
		case min != "" && compareVersions(facts.Version, min) < 0:
			row.Status, row.Detail = report.Fail, fmt.Sprintf("%s %s is older than the minimum %s", facts.Distribution, facts.Version, min)
			row.Fix = fmt.Sprintf("upgrade the guest OS to %s %s or later", facts.Distribution, min)
		default:
			row.Status, row.Detail = report.Pass, fmt.Sprintf("%s %s", facts.Distribution, facts.Version)
		}
		rep.Add(row)
	}
	if req.MinFreeDiskMiB > 0 {
		row := report.Check{ID: "os.disk", Name: "Free disk space"}
		free, path, err := freeDiskMiB(ctx, ex, facts.Family, req.DiskPath)
		row.Subject = path
		switch {
		case err != nil:
			row.Status, row.Detail, row.Fix = report.Fail, "could not measure free space: "+err.Error(), "make sure df (Linux) or Get-PSDrive (Windows) works for the account"
		case free < req.MinFreeDiskMiB:
			row.Status, row.Detail = report.Fail, fmt.Sprintf("%d MiB free, %d MiB needed", free, req.MinFreeDiskMiB)
			row.Fix = fmt.Sprintf("free at least %d MiB on %s", req.MinFreeDiskMiB-free, path)
		default:
			row.Status, row.Detail = report.Pass, fmt.Sprintf("%d MiB free", free)
		}
		rep.Add(row)
	}
	if len(req.Commands) > 0 {
		missing, err := missingCommands(ctx, ex, facts.Family, req.Commands)
		row := report.Check{ID: "os.commands", Name: "Required commands present"}
		switch {
		case err != nil:
			row.Status, row.Detail = report.Fail, "could not look for the commands: "+err.Error()
		case len(missing) > 0:
			row.Status, row.Detail = report.Fail, "missing: "+strings.Join(missing, ", ")
			row.Fix = "install " + strings.Join(missing, ", ")
		default:
			row.Status, row.Detail = report.Pass, strings.Join(req.Commands, ", ")
		}
		rep.Add(row)
	}
	for _, check := range req.Checks {
		row, err := check(ctx, ex, facts)
		if err != nil {
			return rep, err
		}
		rep.Add(row)
	}
	return rep, nil
}

func supportedList(m map[string]string) string {
	names := make([]string, 0, len(m))
	for k, v := range m {
		if v != "" {
			k += " " + v + "+"
		}
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func freeDiskMiB(ctx context.Context, ex guest.Executor, family guest.OSFamily, path string) (int64, string, error) {
	if family == guest.Windows {
		if path == "" {
			path = "C:"
		}
		drive := strings.TrimSuffix(strings.TrimSuffix(path, `\`), ":")
		out, err := guest.Output(ctx, ex, guest.Command{Script: "(Get-PSDrive -Name " + guest.PowerShellQuote(drive) + ").Free"})
		if err != nil {
			return 0, path, err
		}
		b, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		if err != nil {
			return 0, path, fmt.Errorf("unexpected output %q", out)
		}
		return b >> 20, path, nil
	}
	if path == "" {
		path = "/"
	}
	out, err := guest.Output(ctx, ex, guest.Command{Args: []string{"df", "-Pk", path}})
	if err != nil {
		return 0, path, err
	}
	lines := strings.Split(out, "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(lines) < 2 || len(fields) < 4 {
		return 0, path, fmt.Errorf("unexpected df output")
	}
	kib, err := strconv.ParseInt(fields[3], 10, 64)
	if err != nil {
		return 0, path, fmt.Errorf("unexpected df output")
	}
	return kib >> 10, path, nil
}

func missingCommands(ctx context.Context, ex guest.Executor, family guest.OSFamily, cmds []string) ([]string, error) {
	var cmd guest.Command
	if family == guest.Windows {
		quoted := make([]string, len(cmds))
		for i, c := range cmds {
			quoted[i] = guest.PowerShellQuote(c)
		}
		cmd.Script = "foreach ($c in @(" + strings.Join(quoted, ",") + ")) { if (-not (Get-Command $c -ErrorAction SilentlyContinue)) { $c } }"
	} else {
		cmd.Args = append([]string{"sh", "-c", `for c in "$@"; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done`, "sh"}, cmds...)
	}
	out, err := guest.Output(ctx, ex, cmd)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// compareVersions compares dotted versions numerically where both parts
// are numbers ("9.4" > "9", "10" > "9"), lexically otherwise.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y string
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		xn, xerr := strconv.Atoi(x)
		yn, yerr := strconv.Atoi(y)
		switch {
		case x == y:
			continue
		case xerr == nil && yerr == nil:
			if xn != yn {
				if xn < yn {
					return -1
				}
				return 1
			}
		case x == "":
			return -1
		case y == "":
			return 1
		default:
			return strings.Compare(x, y)
		}
	}
	return 0
}
