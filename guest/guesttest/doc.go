// Package guesttest is the conformance suite every guest transport runs
// through the portable *guest.Executor: SSH, WinRM, vSphere guest
// operations and memguest alike, so that the transports cannot drift
// apart.
//
// A driver's test calls Run with a Harness that builds a fresh executor and
// gives an empty directory in the guest for each case:
//
//	func TestConformance(t *testing.T) {
//		guesttest.Run(t, guesttest.Harness{
//			Family: guest.Linux,
//			New: func(t *testing.T, opts *guest.Options) (*guest.Executor, string) {
//				ex := connect(t, &mytransport.Options{Executor: opts})
//				t.Cleanup(func() { ex.Close() })
//				return ex, makeTempDir(t, ex)
//			},
//		})
//	}
//
// The suite sends real commands, so it needs a real guest (or an executor
// whose handlers run commands for real, as memguest's own test does). On
// Linux it uses POSIX commands (echo, printf, cat, sh, sleep, test, ls,
// stat, mkdir, kill, env, id) and sh scripts; on Windows, PowerShell. A
// harness that cannot support a case names it in Harness.Skip with the
// reason (Cases lists the names); the case is then skipped loudly. A case
// waiting for what a correct executor does at once (a command without
// Stdin ending, streamed output arriving, a canceled process dying) fails
// after Harness.Patience (DefaultPatience, 10 s, when zero); a harness over
// a guest that answers in milliseconds may shorten it without changing a
// verdict.
//
// On Windows, Args run through PowerShell's call operator with every
// argument a quoted literal, so a cmdlet receives them as positional
// values, never as parameter names ('-Raw' is a string): the Windows
// cases pass only positional arguments in Args and use Script for named
// parameters. Scripts stay short enough for a WinRM command line (8191
// characters, about 3,000 of script once encoded): large outputs are
// built by the script, not written into it.
//
// # What the cases check
//
// Argument vectors reach the program exactly (spaces, quotes, $, ;, `,
// newlines, unicode, invalid UTF-8, empty arguments, reserved words);
// scripts run in the guest's shell; a non-zero exit is an *guest.ExitError
// with the code and both streams (errs.FailedPrecondition) and its text
// never shows the arguments; stdout and stderr stay apart; standard input
// is fed as it comes and a nil Stdin is an empty one; the Stdout and
// Stderr writers receive output while the command runs; Env and Dir apply
// (a missing Dir stops the command from running at all); 256 KiB on both
// streams at once and 768 KiB through stdin pass intact (no deadlock
// between streams); uploads keep their bytes and mode (0 = 0644), are
// atomic (the old content stays whole until the new one is complete, and
// no temporary file is left), fail with Canceled on a canceled context and
// leave the old file untouched when the source fails; canceling a running
// command returns within CancelGrace with Canceled (DeadlineExceeded for
// deadlines and Command.Timeout) and stops the remote process; malformed
// commands are InvalidArgument and never run; a missing program is an
// *guest.ExitError with code 127 on Linux (any non-zero code on Windows)
// or NotFound; 16 concurrent Runs each get their own output;
// guest.DetectFacts works; after Close, Run, Upload and a second Close
// return guest.ErrClosed.
//
// Limits and UploadLimits send commands and uploads beyond each limit of
// package guest (too many arguments, a command over MaxCommandBytes, too
// many or too large environment variables, 16 kB names and paths, NUL,
// newline and invalid UTF-8 in paths, bad modes and owners): each is
// InvalidArgument with a message of at most 300 bytes, and nothing runs
// or is written. DefaultTimeout builds the executor with
// guest.Options.Timeout and checks it stops a long command (and that
// Command.Timeout wins). Telemetry builds it with an in-memory
// OpenTelemetry SDK and a debug logger and checks one span per call, the
// error.type of an *guest.ExitError (FailedPrecondition) and of an invalid
// command (InvalidArgument), managedvm.calls, managedvm.errors and
// managedvm.call.duration by op and code, and one log line per call with
// the keys op, code and duration, without the command's arguments. The
// harness must hand the options New gets to the transport's constructor.
//
// RunCredentials, beside Run, holds a transport's constructor to the
// credential limits every transport shares (guest.Credentials.Validate):
// BadCredentials lists the cases.
//
// # Errors
//
// Every rejected call is checked for its errs code, and for having
// changed nothing in the guest.
//
// # Concurrency
//
// Cases run one after another; ConcurrentRuns drives one executor from 16
// goroutines. Each case has its own executor, so a harness may share one
// guest between cases as long as each gets its own directory.
package guesttest
