// Package fakes holds everything that pretends to be an outside system in
// managedvm's tests.
//
// Fakes of outside systems speak the real protocol, so the real client code
// runs against them, each in its own package: an in-process SSH server
// (sshserver), a WinRM server (winrmserver), a Hyper-V failover cluster
// behind per-node WinRM endpoints (hypervsim), and an oVirt engine (ovirt)
// and a VMware Cloud Director (vcd) for the drivers that are planned. The
// vCenter simulator is public (provider/vsphere/vspheresim), so host
// applications can test with it too.
//
// # Fault injection
//
// The fault wrappers are for the orchestrator's tests (enroll): they wrap
// any implementation of a contract and make chosen calls fail, stall, or do
// their work and then lose the answer, so tests can check that every step
// compensates, reconciles instead of retrying blindly, and resumes after a
// crash.
//
//	inj := fakes.NewInjector().
//		Fail("Allocate", 1, errs.Unavailable). // the first Allocate fails, nothing allocated
//		AfterWork("EnsureNAT", 1)              // the first EnsureNAT programs the rule, then reports OutcomeUnknown
//	fw := natfw.New(&fakes.Firewall{Firewall: memfw.New(nil), Injector: inj}, nil)
//
// There is one wrapper per contract: [Provider], a provider.Driver to hand
// to provider.New (and [WrapProvider], which keeps the
// provider.GuestAccessDriver capability: [GuestProvider]), [Executor]
// (a guest.Driver over a *guest.Executor; [WrapExecutor] puts a
// *guest.Executor over it), [IPAM], [Firewall] and [CMDB]. Each embeds the
// wrapped implementation and an [*Injector]; faults are chosen by the name of the
// interface method ("Allocate", "EnsureNAT", "ValidateCredentials", "Run",
// ...). Give each wrapped component its own Injector: method names repeat
// across contracts ("Get", "List").
//
// The rules: [Injector.Fail] and [Injector.FailAlways] (an injected error
// with a chosen code, the work not done), [Injector.Delay] (honouring the
// context), [Injector.AfterWork] (the work done, then OutcomeUnknown),
// [Injector.Hook] and [Injector.HookAfterWork] (any behaviour: return a
// typed error, cancel a context, panic to simulate a crash), and
// [Injector.Calls] to count calls. The Injector's documentation gives the
// order in which they apply.
//
// # Errors
//
// Injected errors are *errs.Error values with the chosen code that wrap
// [ErrInjected]; their message names the method and the call number.
// AfterWork errors have code OutcomeUnknown (for guest executors they also
// wrap guest.ErrSessionLost). A Delay cut short by the context returns the
// context's error (code Canceled or DeadlineExceeded). Hook errors are
// returned as they are. Every other error comes from the wrapped
// implementation, unchanged.
//
// # Concurrency
//
// An Injector is safe for concurrent use, and a wrapper is as safe as the
// implementation it wraps. Rules may be added and Reset while calls run.
package fakes
