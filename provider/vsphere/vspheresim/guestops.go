package vspheresim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// transferPrefix is where the guest file transfer URLs point.
const transferPrefix = "/managedvm-guestfile/"

// GuestOps makes VMware Tools guest operations work on the simulator: a
// guest whose tools run (guest.toolsRunningStatus) and that is powered on
// accepts the configured accounts. Its programs are answered by
// Options.GuestHandler or, without one, run on this machine with /bin/sh
// (see Options.GuestHandler). Paths in the guest are paths on this
// machine, for files as for programs; files move through an HTTP handler
// on the simulator's server.
type GuestOps struct {
	mu        sync.Mutex
	accounts  map[string]string
	env       []string
	handler   GuestHandler
	procs     map[int64]*guestProc
	transfers map[string]transfer
	starts    int
	nextPid   int64
}

type guestProc struct {
	info types.GuestProcessInfo
	kill func() // ends the program; done is closed once it has
	done chan struct{}
}

type transfer struct {
	path string
	put  bool
	mode fs.FileMode
}

// Starts reports how many programs were started in guests.
func (g *GuestOps) Starts() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.starts
}

// SetAccount adds or changes a guest account.
func (g *GuestOps) SetAccount(user, password string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.accounts[user] = password
}

func (g *GuestOps) stopAll() {
	g.mu.Lock()
	var procs []*guestProc
	for _, p := range g.procs {
		procs = append(procs, p)
	}
	g.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.done:
		default:
			p.kill()
			<-p.done
		}
	}
}

func installGuestOps(m *simulator.Model, accounts map[string]string, env []string, h GuestHandler) *GuestOps {
	g := &GuestOps{accounts: map[string]string{}, env: env, handler: h, procs: map[int64]*guestProc{}, transfers: map[string]transfer{}, nextPid: 1000}
	for u, p := range accounts {
		g.accounts[u] = p
	}
	reg := m.Map()
	gom := reg.Get(types.ManagedObjectReference{Type: "GuestOperationsManager", Value: "guestOperationsManager"}).(*simulator.GuestOperationsManager)
	authRef := types.ManagedObjectReference{Type: "GuestAuthManager", Value: "guestOperationsAuthManager"}
	gom.AuthManager = &authRef
	reg.Put(&guestAuth{GuestAuthManager: mo.GuestAuthManager{Self: authRef}, g: g})
	reg.Put(&guestProcs{GuestProcessManager: mo.GuestProcessManager{Self: *gom.ProcessManager}, g: g})
	reg.Put(&guestFiles{GuestFileManager: mo.GuestFileManager{Self: *gom.FileManager}, g: g})
	m.Service.HandleFunc(transferPrefix, g.serveTransfer)
	return g
}

// check is what every guest operation checks first: the VM exists, is
// powered on, its tools run, and the credentials are an account's.
func (g *GuestOps) check(ctx *simulator.Context, ref types.ManagedObjectReference, auth types.BaseGuestAuthentication) types.BaseMethodFault {
	vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return &types.ManagedObjectNotFound{Obj: ref}
	}
	var power types.VirtualMachinePowerState
	var tools string
	ctx.WithLock(vm, func() {
		power = vm.Runtime.PowerState
		tools = vm.Guest.ToolsRunningStatus
	})
	if power != types.VirtualMachinePowerStatePoweredOn {
		return &types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOn, ExistingState: power}
	}
	if tools != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
		return &types.GuestOperationsUnavailable{}
	}
	np, ok := auth.(*types.NamePasswordAuthentication)
	if !ok {
		return &types.InvalidGuestLogin{}
	}
	g.mu.Lock()
	pw, known := g.accounts[np.Username]
	g.mu.Unlock()
	if !known || pw != np.Password {
		return &types.InvalidGuestLogin{}
	}
	return nil
}

// The wrappers opt out of the simulator's per-object lock: processes and
// transfers are independent.

type guestAuth struct {
	mo.GuestAuthManager
	g *GuestOps
}

func (*guestAuth) Lock()   {}
func (*guestAuth) Unlock() {}

func (a *guestAuth) ValidateCredentialsInGuest(ctx *simulator.Context, req *types.ValidateCredentialsInGuest) soap.HasFault {
	body := new(methods.ValidateCredentialsInGuestBody)
	if f := a.g.check(ctx, req.Vm, req.Auth); f != nil {
		body.Fault_ = simulator.Fault("", f)
		return body
	}
	body.Res = new(types.ValidateCredentialsInGuestResponse)
	return body
}

type guestProcs struct {
	mo.GuestProcessManager
	g *GuestOps
}

func (*guestProcs) Lock()   {}
func (*guestProcs) Unlock() {}

func (p *guestProcs) StartProgramInGuest(ctx *simulator.Context, req *types.StartProgramInGuest) soap.HasFault {
	body := new(methods.StartProgramInGuestBody)
	if f := p.g.check(ctx, req.Vm, req.Auth); f != nil {
		body.Fault_ = simulator.Fault("", f)
		return body
	}
	spec, ok := req.Spec.(*types.GuestProgramSpec)
	if !ok {
		body.Fault_ = simulator.Fault("", &types.InvalidArgument{InvalidProperty: "spec"})
		return body
	}
	if spec.WorkingDirectory != "" {
		if st, err := os.Stat(spec.WorkingDirectory); err != nil || !st.IsDir() {
			body.Fault_ = simulator.Fault("working directory not found", &types.FileNotFound{FileFault: types.FileFault{File: spec.WorkingDirectory}})
			return body
		}
	}
	user := req.Auth.(*types.NamePasswordAuthentication).Username
	var pid int64
	var err error
	if p.g.handler != nil {
		pid = p.g.startScripted(ctx, req.Vm, user, spec)
	} else if pid, err = p.g.startProcess(user, spec); err != nil {
		body.Fault_ = simulator.Fault(err.Error(), &types.FileNotFound{FileFault: types.FileFault{File: spec.ProgramPath}})
		return body
	}
	body.Res = &types.StartProgramInGuestResponse{Returnval: pid}
	return body
}

func (p *guestProcs) ListProcessesInGuest(ctx *simulator.Context, req *types.ListProcessesInGuest) soap.HasFault {
	body := new(methods.ListProcessesInGuestBody)
	if f := p.g.check(ctx, req.Vm, req.Auth); f != nil {
		body.Fault_ = simulator.Fault("", f)
		return body
	}
	body.Res = new(types.ListProcessesInGuestResponse)
	p.g.mu.Lock()
	defer p.g.mu.Unlock()
	if len(req.Pids) == 0 {
		for _, gp := range p.g.procs {
			body.Res.Returnval = append(body.Res.Returnval, gp.info)
		}
		return body
	}
	for _, pid := range req.Pids {
		if gp, ok := p.g.procs[pid]; ok {
			body.Res.Returnval = append(body.Res.Returnval, gp.info)
		}
	}
	return body
}

func (p *guestProcs) TerminateProcessInGuest(ctx *simulator.Context, req *types.TerminateProcessInGuest) soap.HasFault {
	body := new(methods.TerminateProcessInGuestBody)
	if f := p.g.check(ctx, req.Vm, req.Auth); f != nil {
		body.Fault_ = simulator.Fault("", f)
		return body
	}
	p.g.mu.Lock()
	gp, ok := p.g.procs[req.Pid]
	p.g.mu.Unlock()
	if !ok {
		body.Fault_ = simulator.Fault("", &types.GuestProcessNotFound{Pid: req.Pid})
		return body
	}
	gp.kill()
	body.Res = new(types.TerminateProcessInGuestResponse)
	return body
}

// startProcess runs a program on this machine with /bin/sh, in its own
// process group.
func (g *GuestOps) startProcess(user string, spec *types.GuestProgramSpec) (int64, error) {
	cmd := exec.Command("/bin/sh", "-c", spec.ProgramPath+" "+spec.Arguments)
	cmd.Env = append(append(os.Environ(), g.env...), spec.EnvVariables...)
	cmd.Dir = spec.WorkingDirectory
	setGroup(cmd)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := int64(cmd.Process.Pid)
	gp := g.addProc(pid, user, spec, func() { killGroup(cmd) })
	go func() {
		err := cmd.Wait()
		code := int32(0)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = int32(ee.ExitCode())
			if code < 0 {
				code = 137
			}
		}
		g.end(gp, code)
	}()
	return pid, nil
}

// startScripted answers a program with the GuestHandler (see shell.go):
// nothing runs on this machine but the handler.
func (g *GuestOps) startScripted(ctx *simulator.Context, ref types.ManagedObjectReference, user string, spec *types.GuestProgramSpec) int64 {
	vm := GuestVM{User: user}
	if v, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine); ok {
		ctx.WithLock(v, func() {
			vm.Name = v.Name
			if v.Config != nil {
				vm.UUID = v.Config.InstanceUuid
			}
		})
	}
	g.mu.Lock()
	g.nextPid++
	pid := g.nextPid
	g.mu.Unlock()
	rctx, cancel := context.WithCancel(context.Background())
	var gp *guestProc
	gp = g.addProc(pid, user, spec, func() {
		cancel()
		g.end(gp, 137) // terminated: ended now, whatever the handler does
	})
	go func() {
		defer cancel()
		sh := newShellRun(g.handler, vm, spec.EnvVariables, spec.WorkingDirectory)
		code := sh.run(rctx, spec.ProgramPath+" "+spec.Arguments)
		sh.close()
		g.end(gp, int32(code))
	}()
	return pid
}

func (g *GuestOps) addProc(pid int64, user string, spec *types.GuestProgramSpec, kill func()) *guestProc {
	gp := &guestProc{kill: kill, done: make(chan struct{}), info: types.GuestProcessInfo{
		Name: spec.ProgramPath, Pid: pid, Owner: user,
		CmdLine: spec.ProgramPath + " " + spec.Arguments, StartTime: time.Now(),
	}}
	g.mu.Lock()
	g.procs[pid] = gp
	g.starts++
	g.mu.Unlock()
	return gp
}

// end records that a program ended with code (the first end counts).
func (g *GuestOps) end(gp *guestProc, code int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gp.info.EndTime != nil {
		return
	}
	now := time.Now()
	gp.info.EndTime = &now
	gp.info.ExitCode = code
	close(gp.done)
}

type guestFiles struct {
	mo.GuestFileManager
	g *GuestOps
}

func (*guestFiles) Lock()   {}
func (*guestFiles) Unlock() {}

func fileFault(err error, path string) types.BaseMethodFault {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &types.FileNotFound{FileFault: types.FileFault{File: path}}
	case errors.Is(err, fs.ErrExist):
		return &types.FileAlreadyExists{FileFault: types.FileFault{File: path}}
	case errors.Is(err, fs.ErrPermission):
		return &types.GuestPermissionDenied{}
	}
	return &types.FileFault{File: path}
}

func (f *guestFiles) CreateTemporaryDirectoryInGuest(ctx *simulator.Context, req *types.CreateTemporaryDirectoryInGuest) soap.HasFault {
	body := new(methods.CreateTemporaryDirectoryInGuestBody)
	if fl := f.g.check(ctx, req.Vm, req.Auth); fl != nil {
		body.Fault_ = simulator.Fault("", fl)
		return body
	}
	dir, err := os.MkdirTemp(req.DirectoryPath, req.Prefix+"*"+req.Suffix)
	if err != nil {
		body.Fault_ = simulator.Fault("", fileFault(err, req.DirectoryPath))
		return body
	}
	body.Res = &types.CreateTemporaryDirectoryInGuestResponse{Returnval: dir}
	return body
}

func (f *guestFiles) CreateTemporaryFileInGuest(ctx *simulator.Context, req *types.CreateTemporaryFileInGuest) soap.HasFault {
	body := new(methods.CreateTemporaryFileInGuestBody)
	if fl := f.g.check(ctx, req.Vm, req.Auth); fl != nil {
		body.Fault_ = simulator.Fault("", fl)
		return body
	}
	file, err := os.CreateTemp(req.DirectoryPath, req.Prefix+"*"+req.Suffix)
	if err != nil {
		body.Fault_ = simulator.Fault("", fileFault(err, req.DirectoryPath))
		return body
	}
	_ = file.Close()
	body.Res = &types.CreateTemporaryFileInGuestResponse{Returnval: file.Name()}
	return body
}

func (f *guestFiles) DeleteDirectoryInGuest(ctx *simulator.Context, req *types.DeleteDirectoryInGuest) soap.HasFault {
	body := new(methods.DeleteDirectoryInGuestBody)
	if fl := f.g.check(ctx, req.Vm, req.Auth); fl != nil {
		body.Fault_ = simulator.Fault("", fl)
		return body
	}
	var err error
	if req.Recursive {
		if _, err = os.Stat(req.DirectoryPath); err == nil {
			err = os.RemoveAll(req.DirectoryPath)
		}
	} else {
		err = os.Remove(req.DirectoryPath)
	}
	if err != nil {
		body.Fault_ = simulator.Fault("", fileFault(err, req.DirectoryPath))
		return body
	}
	body.Res = new(types.DeleteDirectoryInGuestResponse)
	return body
}

func (f *guestFiles) DeleteFileInGuest(ctx *simulator.Context, req *types.DeleteFileInGuest) soap.HasFault {
	body := new(methods.DeleteFileInGuestBody)
	if fl := f.g.check(ctx, req.Vm, req.Auth); fl != nil {
		body.Fault_ = simulator.Fault("", fl)
		return body
	}
	if err := os.Remove(req.FilePath); err != nil {
		body.Fault_ = simulator.Fault("", fileFault(err, req.FilePath))
		return body
	}
	body.Res = new(types.DeleteFileInGuestResponse)
	return body
}

func (f *guestFiles) MoveFileInGuest(ctx *simulator.Context, req *types.MoveFileInGuest) soap.HasFault {
	body := new(methods.MoveFileInGuestBody)
	if fl := f.g.check(ctx, req.Vm, req.Auth); fl != nil {
		body.Fault_ = simulator.Fault("", fl)
		return body
	}
	if !req.Overwrite {
		if _, err := os.Lstat(req.DstFilePath); err == nil {
			body.Fault_ = simulator.Fault("", &types.FileAlreadyExists{FileFault: types.FileFault{File: req.DstFilePath}})
			return body
		}
	}
	if err := os.Rename(req.SrcFilePath, req.DstFilePath); err != nil {
		body.Fault_ = simulator.Fault("", fileFault(err, req.SrcFilePath))
		return body
	}
	body.Res = new(types.MoveFileInGuestResponse)
	return body
}

func (f *guestFiles) ChangeFileAttributesInGuest(ctx *simulator.Context, req *types.ChangeFileAttributesInGuest) soap.HasFault {
	body := new(methods.ChangeFileAttributesInGuestBody)
	if fl := f.g.check(ctx, req.Vm, req.Auth); fl != nil {
		body.Fault_ = simulator.Fault("", fl)
		return body
	}
	if a, ok := req.FileAttributes.(*types.GuestPosixFileAttributes); ok && a.Permissions != 0 {
		if err := os.Chmod(req.GuestFilePath, fs.FileMode(a.Permissions).Perm()); err != nil {
			body.Fault_ = simulator.Fault("", fileFault(err, req.GuestFilePath))
			return body
		}
	}
	body.Res = new(types.ChangeFileAttributesInGuestResponse)
	return body
}

func (g *GuestOps) token(t transfer) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	g.mu.Lock()
	g.transfers[tok] = t
	g.mu.Unlock()
	return tok
}

func transferURL(tok string) string {
	// "*" is replaced by the client with the host it talks to, as for a
	// real vCenter that leaves the ESX host name out.
	return (&url.URL{Scheme: "https", Host: "*", Path: transferPrefix + tok}).String()
}

func (f *guestFiles) InitiateFileTransferToGuest(ctx *simulator.Context, req *types.InitiateFileTransferToGuest) soap.HasFault {
	body := new(methods.InitiateFileTransferToGuestBody)
	if fl := f.g.check(ctx, req.Vm, req.Auth); fl != nil {
		body.Fault_ = simulator.Fault("", fl)
		return body
	}
	if st, err := os.Stat(filepath.Dir(req.GuestFilePath)); err != nil || !st.IsDir() {
		body.Fault_ = simulator.Fault("", &types.FileNotFound{FileFault: types.FileFault{File: req.GuestFilePath}})
		return body
	}
	if _, err := os.Lstat(req.GuestFilePath); err == nil && !req.Overwrite {
		body.Fault_ = simulator.Fault("", &types.FileAlreadyExists{FileFault: types.FileFault{File: req.GuestFilePath}})
		return body
	}
	mode := fs.FileMode(0o644)
	if a, ok := req.FileAttributes.(*types.GuestPosixFileAttributes); ok && a.Permissions != 0 {
		mode = fs.FileMode(a.Permissions).Perm()
	}
	tok := f.g.token(transfer{path: req.GuestFilePath, put: true, mode: mode})
	body.Res = &types.InitiateFileTransferToGuestResponse{Returnval: transferURL(tok)}
	return body
}

func (f *guestFiles) InitiateFileTransferFromGuest(ctx *simulator.Context, req *types.InitiateFileTransferFromGuest) soap.HasFault {
	body := new(methods.InitiateFileTransferFromGuestBody)
	if fl := f.g.check(ctx, req.Vm, req.Auth); fl != nil {
		body.Fault_ = simulator.Fault("", fl)
		return body
	}
	st, err := os.Stat(req.GuestFilePath)
	if err != nil || st.IsDir() {
		body.Fault_ = simulator.Fault("", &types.FileNotFound{FileFault: types.FileFault{File: req.GuestFilePath}})
		return body
	}
	tok := f.g.token(transfer{path: req.GuestFilePath})
	body.Res = &types.InitiateFileTransferFromGuestResponse{Returnval: types.FileTransferInformation{
		Attributes: &types.GuestPosixFileAttributes{Permissions: int64(st.Mode().Perm())},
		Size:       st.Size(),
		Url:        transferURL(tok),
	}}
	return body
}

// serveTransfer serves one transfer URL (each works once).
func (g *GuestOps) serveTransfer(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.URL.Path, transferPrefix)
	g.mu.Lock()
	t, ok := g.transfers[tok]
	delete(g.transfers, tok)
	g.mu.Unlock()
	if !ok {
		http.Error(w, "unknown transfer", http.StatusNotFound)
		return
	}
	if !t.put {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		http.ServeFile(w, r, t.path)
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		http.Error(w, "PUT only", http.StatusMethodNotAllowed)
		return
	}
	file, err := os.OpenFile(t.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, t.mode)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, err = io.Copy(file, r.Body)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(t.path, t.mode)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}
