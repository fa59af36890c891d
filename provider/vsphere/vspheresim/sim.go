package vspheresim

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// Options shape the simulated vCenter. Nil or the zero value is the simulator's
// default VPX model (1 datacenter, a cluster of 3 hosts, 1 standalone host,
// 4 VMs) with one service user.
type Options struct {
	// Username and Password are the service account's (default
	// "svc@vsphere.local" / "svc-pass"). Any other login is refused.
	Username, Password string
	// Users adds more accounts (name -> password).
	Users map[string]string
	// Datacenters, Clusters (per datacenter), Hosts (per cluster) and
	// ModelVMs (per host of the default model) set the model's counts;
	// zero keeps the simulator's defaults. ModelVMs < 0 means none.
	Datacenters, Clusters, Hosts, ModelVMs int
	// DelayMS adds that many milliseconds to every SOAP call.
	DelayMS int
	// GuestAccounts are the guest OS accounts (user -> password) that
	// guest operations accept on every VM (GuestOps.SetAccount adds more).
	// Nil, with no GuestHandler either, leaves guest operations as the
	// stock simulator has them (not working).
	GuestAccounts map[string]string
	// GuestHandler, if set, answers the commands of every program started
	// in a guest (StartProgramInGuest): nothing runs on this machine. The
	// program's command line is read as a POSIX shell would for the
	// subset guest-operation clients write (redirections to files, cd,
	// export, exec, sh -c; see the package documentation) and each
	// command goes to the handler, which decides its output and exit
	// status. Build one from memguest tables with ExecutorHandler.
	//
	// Nil runs each program on this machine with /bin/sh -c (in its own
	// process group, killed by TerminateProcessInGuest and Close), so
	// commands have their real semantics: what a guest executor's
	// conformance suite needs.
	GuestHandler GuestHandler
	// GuestEnv is added to the environment of every program run with
	// /bin/sh ("PATH=/shims:/usr/bin:/bin" and the like); a GuestHandler
	// does not see it.
	GuestEnv []string
	// Privileges makes HasPrivilegeOnEntities compute its answer from the
	// stored roles and permissions instead of always granting.
	Privileges bool
}

// Sim is a running simulated vCenter.
type Sim struct {
	// Model and Server are govmomi's simulator model and its HTTPS
	// server: the escape hatch for anything this package does not wrap.
	Model  *simulator.Model
	Server *simulator.Server
	// URL is the SDK URL, without credentials.
	URL *url.URL
	// Username and Password are the service account's.
	Username, Password string
	// Thumbprint is the server certificate's SHA-256 thumbprint
	// (colon-separated hex), CAs a pool holding the server certificate.
	Thumbprint string
	CAs        *x509.CertPool
	// Guest is the guest-operations fake (nil without GuestAccounts or a
	// GuestHandler).
	Guest *GuestOps

	client    *vim25.Client
	counter   atomic.Pointer[atomic.Int64]
	closeOnce sync.Once

	hookMu sync.Mutex
	hooks  map[string]func() // method name -> run before the call
}

// modelMu makes New build one model at a time: govmomi's simulator writes
// package-level state while it builds a model (LicenseManager.init
// appends to simulator.EvalLicense), so two at once race.
var modelMu sync.Mutex

// New builds and starts a simulated vCenter over TLS on a loopback port;
// opts may be nil. ctx bounds the set-up only. Close it when done.
func New(ctx context.Context, opts *Options) (*Sim, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Username == "" {
		o.Username, o.Password = "svc@vsphere.local", "svc-pass"
	}
	m := simulator.VPX()
	if o.Datacenters > 0 {
		m.Datacenter = o.Datacenters
	}
	if o.Clusters > 0 {
		m.Cluster = o.Clusters
	}
	if o.Hosts > 0 {
		m.ClusterHost = o.Hosts
	}
	switch {
	case o.ModelVMs < 0:
		m.Machine = 0
	case o.ModelVMs > 0:
		m.Machine = o.ModelVMs
	}
	m.DelayConfig.Delay = o.DelayMS
	modelMu.Lock()
	err := m.Create()
	modelMu.Unlock()
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "vspheresim.New", err)
	}
	users := map[string]string{o.Username: o.Password}
	for u, p := range o.Users {
		users[u] = p
	}
	m.Service.TLS = new(tls.Config)
	m.Service.Listen = &url.URL{User: url.UserPassword(o.Username, o.Password)}
	sm := m.Map().SessionManager()
	sm.ValidLogin = func(req *types.Login) bool {
		p, ok := users[req.UserName]
		return ok && p == req.Password
	}
	s := &Sim{Model: m, Username: o.Username, Password: o.Password}
	m.Map().Handler = s.intercept
	// Every account gets the Admin role on the root folder unless a test
	// changes it (see SetRole).
	if o.Privileges {
		installPrivileges(m)
	}
	if o.GuestAccounts != nil || o.GuestHandler != nil {
		s.Guest = installGuestOps(m, o.GuestAccounts, o.GuestEnv, o.GuestHandler)
	}
	s.Server = m.Service.NewServer()
	u := *s.Server.URL
	u.User = nil
	s.URL = &u
	cert := s.Server.Certificate()
	sum := sha256.Sum256(cert.Raw)
	hexs := make([]string, len(sum))
	for i, b := range sum {
		hexs[i] = fmt.Sprintf("%02X", b)
	}
	s.Thumbprint = strings.Join(hexs, ":")
	s.CAs = x509.NewCertPool()
	s.CAs.AddCert(cert)
	c, err := vim25.NewClient(ctx, m.Service)
	if err != nil {
		_ = s.Close()
		return nil, simErr("vspheresim.New", err)
	}
	s.client = c
	for u := range users {
		if err := s.SetRole(ctx, u, "Admin"); err != nil {
			_ = s.Close()
			return nil, errs.WrapOp("vspheresim.New", err)
		}
	}
	return s, nil
}

// Close ends the guests' programs, stops the server and removes the
// model. It is safe to call more than once; it always returns nil.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		if s.Guest != nil {
			s.Guest.stopAll()
		}
		if s.Server != nil {
			s.Server.Close()
		}
		s.Model.Remove()
	})
	return nil
}

// Client returns an in-process client (no network, no session of its
// own): for setting the world up and for changes "behind the driver's back".
func (s *Sim) Client() *vim25.Client { return s.client }

// Context is the simulator's own context, for in-process updates.
func (s *Sim) Context() *simulator.Context { return s.Model.Service.Context }

// Map is the simulator's object registry.
func (s *Sim) Map() *simulator.Registry { return s.Model.Map() }

// SetRole gives user the role named role on the root folder (propagating),
// replacing the user's other root permissions. "Admin" is the built-in
// administrator role.
func (s *Sim) SetRole(ctx context.Context, user, role string) (err error) {
	defer func() { err = simErr("vspheresim.SetRole", err) }()
	c := s.client
	am := object.NewAuthorizationManager(c)
	roles, err := am.RoleList(ctx)
	if err != nil {
		return err
	}
	r := roles.ByName(role)
	if r == nil {
		return errs.Errorf(errs.NotFound, "", "no role %s", limit.Quote(role))
	}
	root := c.ServiceContent.RootFolder
	perms, err := am.RetrieveEntityPermissions(ctx, root, false)
	if err != nil {
		return err
	}
	perms = slices.DeleteFunc(perms, func(p types.Permission) bool { return p.Principal == user })
	perms = append(perms, types.Permission{Entity: &root, Principal: user, RoleId: r.RoleId, Propagate: true})
	return am.SetEntityPermissions(ctx, root, perms)
}

// AddRole adds a role with the given privileges (AddRole's returned id is
// not reliable on the simulator: look roles up by name).
func (s *Sim) AddRole(ctx context.Context, name string, privileges []string) error {
	_, err := object.NewAuthorizationManager(s.client).AddRole(ctx, name, privileges)
	return simErr("vspheresim.AddRole", err)
}

// SetDelay makes every SOAP call take ms milliseconds more (as a real
// vCenter's round trip would). Call it while no call is in flight.
func (s *Sim) SetDelay(ms int) { s.Model.DelayConfig.Delay = ms }

// CountCalls starts counting the SOAP calls the simulator serves (every
// client, the in-process one included) and returns the counter.
func (s *Sim) CountCalls() *atomic.Int64 {
	n := new(atomic.Int64)
	s.counter.Store(n)
	return n
}

// intercept runs before every SOAP call: it counts calls and works around a
// simulator race (a VM's Destroy_Task returns while the file deletion it
// started still reads the datastore's VM list, which the next destroy
// writes): a destroy first waits for earlier file deletions.
func (s *Sim) intercept(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	if n := s.counter.Load(); n != nil {
		n.Add(1)
	}
	s.hookMu.Lock()
	hook := s.hooks[m.Name]
	s.hookMu.Unlock()
	if hook != nil {
		hook()
	}
	switch m.Name {
	case "CancelTask":
		// vCenter treats CancelTask as a request: the task records it
		// and ends as it will (with RequestCanceled if it could stop, or
		// as if nothing was asked if it was past that point). The
		// simulator instead marks the task failed at once while its work
		// goes on and later overwrites the state with success, which no
		// vCenter does. Here the request is recorded and the task runs to
		// its end: the case a client must handle, where a cancel comes
		// too late.
		//
		// The call is routed to a stand-in kept in the caller's session
		// registry (which would otherwise win over a handler returned
		// here); the simulator's own registry must hold only its types.
		if t, ok := ctx.Map.Get(m.This).(*simulator.Task); ok && ctx.Session != nil {
			m.This = canceller(ctx, t)
		}
	case "WaitForUpdatesEx", "WaitForUpdates":
		detachFilters(ctx, m.This)
	case "Destroy_Task", "UnregisterVM":
		s.settleFileTasks()
	case "DestroyCollector":
		// Another simulator race: destroying an event collector changes
		// the collector list that PostEvent walks under the
		// EventManager's lock only. Destroy it under that lock here; the
		// call then ends with a fault the caller may ignore (the
		// collector is gone either way).
		if ctx.Session == nil {
			break
		}
		c, ok := ctx.Session.Get(m.This).(*simulator.EventHistoryCollector)
		req, rok := m.Body.(*types.DestroyCollector)
		if !ok || !rok {
			break
		}
		ctx.WithLock(ctx.Map.EventManager(), func() { c.DestroyCollector(ctx, req) })
		return nil, &types.ManagedObjectNotFound{Obj: m.This}
	}
	return nil, nil
}

// detachFilters works around a lock-order deadlock in the simulator
// (fixed upstream in govmomi #4109, after the version this module pins).
// WaitForUpdates holds a property filter's lock while it takes the locks of
// the objects the filter traverses; a change to the filter's traversal root
// (a container view gaining a VM) reaches the filter as a registry handler
// while the view's lock, and often a VM's or a folder's, is held, and the
// filter then takes its own lock: the opposite order. Before every wait,
// the collector's filters are registered again behind filterHandler, which
// passes such changes on from a goroutine holding no lock.
func detachFilters(ctx *simulator.Context, collector types.ManagedObjectReference) {
	if ctx.Session == nil {
		return
	}
	pc, ok := ctx.Session.Get(collector).(*simulator.PropertyCollector)
	if !ok {
		return
	}
	var refs []types.ManagedObjectReference
	ctx.WithLock(pc, func() { refs = slices.Clone(pc.Filter) })
	for _, ref := range refs {
		if f, ok := ctx.Session.Get(ref).(*simulator.PropertyFilter); ok {
			ctx.Map.AddHandler(filterHandler{f})
		}
	}
}

// filterHandler is a property filter as a registry handler that takes no
// lock on the caller's goroutine (see detachFilters).
type filterHandler struct {
	*simulator.PropertyFilter
}

func (h filterHandler) UpdateObject(ctx *simulator.Context, o mo.Reference, changes []types.PropertyChange) {
	ref := o.Reference()
	for _, set := range h.Spec.ObjectSet {
		if set.Obj == ref && len(set.SelectSet) != 0 {
			// The filter only notes that it must collect again; the
			// change itself reaches the collector through its own handler.
			go h.PropertyFilter.UpdateObject(&simulator.Context{Map: ctx.Map}, ref, changes)
			return
		}
	}
}

// cancelRequest stands in for a task to serve its CancelTask.
type cancelRequest struct {
	Self types.ManagedObjectReference // set by the session registry
	t    *simulator.Task
}

func (c *cancelRequest) Reference() types.ManagedObjectReference { return c.Self }

func (c *cancelRequest) CancelTask(ctx *simulator.Context, _ *types.CancelTask) soap.HasFault {
	body := new(methods.CancelTaskBody)
	ctx.WithLock(c.t, func() {
		switch c.t.Info.State {
		case types.TaskInfoStateSuccess, types.TaskInfoStateError:
			body.Fault_ = simulator.Fault("the task has ended", new(types.InvalidState))
			return
		}
		ctx.Update(c.t, []types.PropertyChange{{Name: "info.cancelled", Val: true}})
		body.Res = new(types.CancelTaskResponse)
	})
	return body
}

// canceller returns the reference of t's stand-in in the caller's
// session, registering it the first time.
func canceller(ctx *simulator.Context, t *simulator.Task) types.ManagedObjectReference {
	ref := types.ManagedObjectReference{Type: "Task", Value: t.Self.Value + "-cancel"}
	if ctx.Session.Registry.Get(ref) == nil {
		ctx.Session.Put(&cancelRequest{Self: ref, t: t})
	}
	return ref
}

// OnCall makes f run before every call of the SOAP method named method
// (such as "CloneVM_Task"), on the goroutine serving it; nil removes it.
// f must not block for long: start a goroutine for anything slow.
func (s *Sim) OnCall(method string, f func()) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	if s.hooks == nil {
		s.hooks = map[string]func(){}
	}
	if f == nil {
		delete(s.hooks, method)
		return
	}
	s.hooks[method] = f
}

// HoldLock takes the simulator's lock on the object ref and keeps it until
// release is called: whatever needs that object (a task adding a VM to a
// cluster, say) waits meanwhile.
func (s *Sim) HoldLock(ref types.ManagedObjectReference) (release func(), err error) {
	obj := s.Map().Get(ref)
	if obj == nil {
		return nil, errs.Errorf(errs.NotFound, "vspheresim.HoldLock", "no object %s", ref)
	}
	unlock := s.Map().AcquireLock(&simulator.Context{}, obj)
	var once sync.Once
	return func() { once.Do(unlock) }, nil
}

// WaitTasks waits until every task the simulator has started has ended.
func (s *Sim) WaitTasks() {
	for _, obj := range s.Map().AllReference("Task") {
		if t, ok := obj.(*simulator.Task); ok {
			t.Wait()
		}
	}
}

func (s *Sim) settleFileTasks() {
	lockCtx := &simulator.Context{}
	for _, obj := range s.Map().AllReference("Task") {
		t, ok := obj.(*simulator.Task)
		if !ok {
			continue
		}
		pending := false
		s.Map().WithLock(lockCtx, t, func() {
			pending = t.Info.Name == "DeleteDatastoreFile" && t.Info.State != types.TaskInfoStateSuccess && t.Info.State != types.TaskInfoStateError
		})
		if pending {
			t.Wait()
		}
	}
}

// simErr gives err, from the in-process client or a task, a code (the
// vSphere fault's, as the vsphere driver maps them) and the operation's
// name. An error that has a code keeps it.
func simErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errs.CodeOf(err) != errs.Unknown {
		return errs.WrapOp(op, err)
	}
	var f types.BaseMethodFault
	switch {
	case soap.IsSoapFault(err):
		f, _ = soap.ToSoapFault(err).VimFault().(types.BaseMethodFault)
	case soap.IsVimFault(err):
		f = soap.ToVimFault(err)
	default:
		var te task.Error
		if errors.As(err, &te) && te.LocalizedMethodFault != nil {
			f = te.Fault()
		}
	}
	return errs.Wrap(faultCode(f), op, err)
}

// faultCode maps a vSphere fault to a code.
func faultCode(f types.BaseMethodFault) errs.Code {
	switch f.(type) {
	case *types.ManagedObjectNotFound, *types.NotFound, *types.FileNotFound:
		return errs.NotFound
	case *types.InvalidArgument:
		return errs.InvalidArgument
	case *types.DuplicateName, *types.AlreadyExists, *types.FileAlreadyExists:
		return errs.AlreadyExists
	case *types.InvalidPowerState, *types.InvalidState, *types.TaskInProgress:
		return errs.FailedPrecondition
	case *types.NoPermission:
		return errs.PermissionDenied
	case *types.InvalidLogin, *types.NotAuthenticated:
		return errs.Unauthenticated
	}
	return errs.Unknown
}
