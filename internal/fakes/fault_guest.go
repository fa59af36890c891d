package fakes

import (
	"context"
	"io"

	"github.com/managedvm/managedvm/guest"
)

// Executor is a guest.Driver that forwards to a *guest.Executor with an
// Injector's faults; WrapExecutor puts a *guest.Executor over it. Method
// names: "Run", "Upload", "Close" (Close, which takes no context, runs its
// faults with context.Background()). Family is forwarded without faults.
//
// An AfterWork fault on Run or Upload is reported as a lost session: the
// error wraps guest.ErrSessionLost (and ErrInjected), code OutcomeUnknown.
type Executor struct {
	*guest.Executor
	*Injector
}

var _ guest.Driver = (*Executor)(nil)

// WrapExecutor returns ex with inj's faults: a *guest.Executor over an
// Executor driver.
func WrapExecutor(ex *guest.Executor, inj *Injector) *guest.Executor {
	return guest.New(&Executor{Executor: ex, Injector: inj}, nil)
}

// Run forwards to the wrapped executor with faults.
func (e *Executor) Run(ctx context.Context, cmd guest.Command) (guest.Result, error) {
	pl, err := e.Injector.before(ctx, "Run")
	if err != nil {
		return guest.Result{}, err
	}
	res, err := e.Executor.Run(ctx, cmd)
	if aerr := pl.afterHooks(ctx); aerr != nil {
		return guest.Result{}, aerr
	}
	if pl.afterWork {
		return guest.Result{}, guest.SessionLost("fakes.Run", pl.lostAnswer())
	}
	return res, err
}

// Upload forwards to the wrapped executor with faults.
func (e *Executor) Upload(ctx context.Context, path string, r io.Reader, opts guest.UploadOptions) error {
	pl, err := e.Injector.before(ctx, "Upload")
	if err != nil {
		return err
	}
	err = e.Executor.Upload(ctx, path, r, opts)
	if aerr := pl.afterHooks(ctx); aerr != nil {
		return aerr
	}
	if pl.afterWork {
		return guest.SessionLost("fakes.Upload", pl.lostAnswer())
	}
	return err
}

// Close forwards to the wrapped executor with faults.
func (e *Executor) Close() error {
	return call0(context.Background(), e.Injector, "Close", e.Executor.Close)
}
