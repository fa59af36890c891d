// Package memguest is a scripted, in-memory guest transport for tests:
// the host application's, and managedvm's own (OS tasks, enrollment,
// facts).
//
// NewDriver returns the *Driver, the control side (handlers, simulated
// failures, what ran, what was uploaded); its Executor method returns the
// *guest.Executor over it, the value code under test gets. New(family,
// opts) is NewDriver(family, opts).Executor(), for a guest scripted by
// Options alone:
//
//	d := memguest.NewDriver(guest.Linux, nil)
//	d.HandleArgs([]string{"id", "-u"}, memguest.Reply("0\n"))
//	out, err := guest.Output(ctx, d.Executor(), guest.Command{Args: []string{"id", "-u"}})
//
// Options.Executor passes the *guest.Executor's options (default Timeout,
// telemetry). Executor.As reaches the *Driver.
//
// Nothing runs anywhere. Each command goes to a Handler chosen by what the
// command is:
//
//  1. a handler registered with HandleArgs for exactly its Args;
//  2. else the one registered with HandleArgsPrefix for the longest prefix
//     of its Args;
//  3. else, for a Script, the first handler registered with HandleScript
//     (substring) or HandleScriptRegexp that matches;
//  4. else the default handler (Options.Default or HandleDefault), and with
//     none the command "is not found": exit code 127, as sh says.
//
// A handler returns a guest.Result. A non-zero ExitCode makes Run return
// the Result and an *guest.ExitError, exactly as a real executor does; an
// error a handler returns is returned with its code. Handlers may stream:
// what they write to cmd.Stdout and cmd.Stderr reaches the caller's writers
// at once. Reply, Exit and Fail build the common handlers.
//
// The driver records every command Run accepted (Commands) and captures
// every upload (Files, File); SetFile seeds files for handlers to read. An
// Options.Upload hook sees each upload first, to inject failures or to
// write the file somewhere real.
//
// It behaves like a real transport in everything the guest.Executor
// contract says, and passes the guesttest conformance suite (with a handler
// that runs the commands locally): invalid commands are InvalidArgument
// (the Executor refuses them) and are not recorded; a done context makes
// Run return at once with Canceled or DeadlineExceeded, even if the
// handler ignores it (Command.Timeout and Options.Timeout included); SimulateSessionLoss makes the next Run fail with an error
// wrapping guest.ErrSessionLost (OutcomeUnknown), before or after the
// handler ran; after Close every call returns guest.ErrClosed.
//
// # Errors
//
// Invalid commands, paths and modes: errs.InvalidArgument. A command that
// exits non-zero: *guest.ExitError (errs.FailedPrecondition). A context
// done before the command finished: errs.Canceled or errs.DeadlineExceeded,
// with the partial output and ExitCode -1 in the Result. A simulated
// session loss, or a Close while the command ran: guest.ErrSessionLost
// (errs.OutcomeUnknown), the latter also wrapping guest.ErrClosed. Use
// after Close: guest.ErrClosed (errs.FailedPrecondition). Handler errors
// keep their code (errs.Unknown for plain errors).
//
// # Concurrency
//
// A Driver and its Executor are safe for concurrent use: Runs proceed in parallel (each
// handler call in its own goroutine) and handlers may be registered while
// commands run. Handlers must be safe for concurrent use if commands run
// concurrently. Once Run has returned, a handler still running can no
// longer write to the caller's writers or start a read of the caller's
// Stdin.
package memguest
