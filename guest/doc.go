// Package guest runs commands inside a VM's operating system: the
// portable *Executor every caller holds, the small Driver every transport
// implements (SSH, WinRM, vSphere guest operations, the in-memory
// memguest), the Command and Result types, quoting for POSIX sh and
// PowerShell, OS facts, OS requirement checks, and credentials that never
// print their secrets. It also holds the types by which the orchestrator
// (enroll) reaches and configures guests, so that transports and
// configurators never import it: Target, Dialer, Configurator and
// Unconfigurer.
//
// # The Executor and its Driver
//
// *Executor is a concrete type over a Driver, as database/sql's DB is over
// sql/driver. Transport constructors return it (ssh.Dial, winrm.New,
// memguest.New, the providers' GuestExecutor), so host code holds one
// type whatever the transport:
//
//	ex, err := ssh.Dial(ctx, cfg, &ssh.Options{Executor: &guest.Options{Timeout: time.Minute}})
//	res, err := ex.Run(ctx, guest.Command{Args: []string{"uname", "-r"}})
//
// Every Run, Upload and Close goes through the same steps, once, for every
// transport: the closed check (after Close, an error wrapping ErrClosed);
// the context check (Canceled, DeadlineExceeded); validation of the
// command or upload against the limits below (InvalidArgument; nothing
// reaches the driver); the default timeout (Options.Timeout when
// Command.Timeout is zero, applied to the context the driver gets and
// passed in Command.Timeout); a span, the call metrics and a debug log
// line; the driver call; a copy of the Result's bytes (at most MaxOutput
// each); and the error wrapped once with the operation's name
// ("guest.Run", "guest.Upload", "guest.Close").
//
// Options are passed to the transport's constructor: each transport's
// Options has a field Executor *guest.Options (memguest too; the vSphere
// and memprovider GuestExecutor use the provider's logger). When its
// Logger is nil the transport's own Logger is used.
//
// # How to write a transport
//
// Implement Driver (Run, Upload, Family, Close) with protocol logic only,
// and return New(driver, opts) from the constructor. The Executor calls
// the driver only with an open executor, a live context, a valid Command
// (Timeout already defaulted and applied to ctx) or a valid upload, so a
// driver has no closed, context, validation or default-timeout prologue
// of its own. It returns errors with an errs code and no operation name
// (errs.New(code, "", msg)); quotes every value that comes from a
// customer or a VM (user names, hosts, paths, guest output) with
// limit.Quote; returns a non-zero exit as *ExitError and a lost
// connection as SessionLost("", cause); may return a context error as
// is (it gets its Canceled or DeadlineExceeded code); and makes Close
// stop the commands in flight. A method As(any) bool on the driver
// offers its vendor client through Executor.As; Executor.As also reaches
// the driver's own type (for example *ssh.Driver, for Addr). Run the
// guesttest suite against it.
//
// # Limits
//
// The Executor refuses, with InvalidArgument and a message of bounded
// size (values quoted with limit.Quote, never an argument, script or
// secret):
//
//	Command.Args        at most MaxArgs (4096) elements, no NUL, program non-empty
//	Command size        Args + Script + Env names and values <= MaxCommandBytes (1 MiB)
//	Command.Script      no NUL (exactly one of Args and Script)
//	Command.Env         at most MaxEnv (256) variables; names [A-Za-z_][A-Za-z0-9_]*
//	                    of at most MaxEnvName (255) bytes; values <= MaxEnvValue
//	                    (32 KiB) without NUL
//	Command.Dir         at most MaxPath (4096) bytes, no NUL
//	Command.Timeout     not negative
//	upload path         1 to MaxPath bytes of printable UTF-8 (no control
//	                    characters), not ending in / or \
//	UploadOptions       Mode permission bits only; Owner "user" or
//	                    "user:group", letters, digits, _ - . $, <= MaxOwner (128)
//	Credentials         user name 1 to MaxUsername (256) bytes of printable
//	                    UTF-8, no leading or trailing white space; a password
//	                    or a private key; password and passphrase <=
//	                    MaxPassword (1024) bytes of UTF-8 without NUL, CR, LF;
//	                    private key <= MaxPrivateKey (64 KiB)
//
// The credential limits are Credentials.Validate, which every transport
// calls in its constructor (ssh.Dial, winrm.New, the providers'
// ValidateCredentials and GuestExecutor); guesttest.RunCredentials holds
// each transport to them. A transport may refuse more (a WinRM command
// line holds 8191 characters; SSH user names have no white space; WinRM
// user names none of the characters Windows forbids).
//
// # Telemetry
//
// With Options.TracerProvider, each Run, Upload and Close is a span named
// after the operation ("guest.Run", ...) with attribute driver (the
// transport's package name, e.g. "ssh"); a failed call has status Error
// and attribute error.type, its errs code (an *ExitError is
// "FailedPrecondition", a lost session "OutcomeUnknown"). With
// Options.MeterProvider: managedvm.calls and managedvm.errors (counters)
// and managedvm.call.duration (histogram, seconds), attributes op, code
// ("OK" on success) and driver. Options.Logger gets one Debug record per
// call with keys op, code, err and duration. With none of them the
// Executor records nothing and allocates nothing for telemetry.
//
// # The contract
//
// Run is synchronous on every transport: it returns when the command has
// finished, with its Result (exit code, standard output and error, each
// kept up to MaxOutput bytes, and how long it ran). Output also streams to
// Command.Stdout and Command.Stderr as it arrives, and Command.Stdin feeds
// standard input as it is read; a nil Stdin is an empty, closed one.
//
// A command that ran and exited non-zero is not a transport failure: Run
// returns its Result (ExitCode set) and an *ExitError carrying the exit
// code and both streams, whose errs code is FailedPrecondition. A
// connection that dropped while a command ran is an error wrapping
// ErrSessionLost, code OutcomeUnknown: the command may or may not have run,
// so the caller looks at the guest before trying again (build it with
// SessionLost). Canceling the context, or passing Command.Timeout (or
// Options.Timeout), stops the remote command and Run returns promptly with
// Canceled or DeadlineExceeded. After Close every call, a second Close
// included, returns an error wrapping ErrClosed.
//
// Upload writes a file from an io.Reader, atomically where the transport
// allows (a temporary file beside the target, then a rename), with the mode
// and owner in UploadOptions, and honours its context.
//
// The guesttest package is the conformance suite every transport passes
// through the Executor, so that no two transports differ in these rules.
//
// # Quoting is the library's job
//
// Callers never quote. A Command's Args is an argument vector that reaches
// the program exactly; Script is a script for the guest's shell (POSIX sh
// on Linux, PowerShell on Windows). The executors build what the transport
// needs with these functions, which are exported for them and for building
// scripts safely:
//
//   - ShellQuote quotes one word for a POSIX sh, ShellJoin a whole argument
//     vector, and ShellCommandLine a whole Command (cd to Dir, export Env,
//     exec the program, so that Args always run the program and not a
//     shell builtin of the same name, and a kill reaches the program).
//   - PowerShellQuote makes a single-quoted PowerShell literal in which
//     nothing expands (the typographic quotes PowerShell also accepts are
//     escaped too); PowerShellScript turns a Command into one script;
//     EncodePowerShell and PowerShellCommandLine send a script as
//     -EncodedCommand (base64 of UTF-16LE), so the script itself is never
//     quoted at all.
//
// All of them are checked against real shells in this package's tests,
// and fuzzed.
//
// # OS facts
//
// DetectFacts asks a guest for its OS family, distribution, name, version,
// kernel and architecture: /etc/os-release and uname on Linux,
// Win32_OperatingSystem on Windows. FactsFromOSRelease and ParseOSRelease
// parse os-release(5) content; ParseFamily maps the spellings providers use
// ("linuxGuest", "windows2019srv_64Guest", "rhel_9x64", ...) to an
// OSFamily.
//
// # Targets, dialers and configurators
//
// A Target is the VM being enrolled, in plain values: its key
// ("provider/vmid", with Provider and VMID), name, OS family, public and
// local IP, the inbound ports the NAT opens (Port: "tcp" or "udp" and a
// number) and the service profile's name. A Dialer turns a Target and
// Credentials into an Executor over the network (ssh.Dialer for Linux,
// winrm.Dialer for Windows; DialFunc adapts a function) and must return
// Unauthenticated for refused credentials. A Configurator makes the OS
// changes of enrollment through an Executor (tasks.Set, ansible.Runner;
// ConfiguratorFunc adapts a function); an Unconfigurer undoes them. No
// package under guest imports enroll, cmdb, ipam, natfw or provider (a
// test asks go list), and provider imports guest, not the other way round.
//
// # OS requirements
//
// CheckRequirements runs a Requirements in a guest and returns a
// report.Report with a row per check: the OS family, the distribution and
// its minimum version (compared numerically part by part, "9.4" > "9",
// "10" > "9", lexically where a part is not a number), the free disk
// space (df -Pk on Linux, Get-PSDrive on Windows), required commands
// (command -v, Get-Command) and the policy's own RequirementChecks. It
// only reports: the orchestrator turns failed rows into an
// enroll.RequirementsError. An error means a check could not run. Output
// the checks cannot parse is quoted and cut with limit.Quote in its row.
//
// # Credentials and secrets
//
// Credentials hold a user name and Secrets (password, private key,
// passphrase). A Secret prints as "[REDACTED]" through every fmt verb,
// JSON, text and XML marshaling and slog; only Reveal returns the value,
// to hand it to a transport. Credentials print the user name and which
// kinds of secret are present. Command.String names the program only,
// never its arguments or script, and ExitError messages follow it.
//
// # Errors
//
// Malformed commands and uploads (neither or both of Args and Script, bad
// environment names, NUL bytes, negative timeouts, anything beyond the
// limits above) and credentials are InvalidArgument.
// A non-zero exit is *ExitError (FailedPrecondition). ErrSessionLost is
// OutcomeUnknown; ErrClosed is FailedPrecondition. Context ends are
// Canceled and DeadlineExceeded. Transports map their own failures to
// errs codes (Unauthenticated for refused credentials, Unavailable when
// the guest surely did nothing) and keep the vendor error reachable with
// errors.As.
//
// # Concurrency
//
// An Executor is safe for concurrent use when its Driver is (every driver
// of this module is): several Runs may proceed at once, each with its own
// output.
// The functions and types of this package are safe to use from many
// goroutines; a Command's readers and writers belong to the one Run it is
// passed to.
package guest
