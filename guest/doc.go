// Package guest runs commands inside a VM's operating system: the Executor
// contract every transport implements (SSH, WinRM, vSphere guest
// operations, the in-memory memguest), the Command and Result types,
// quoting for POSIX sh and PowerShell, OS facts, OS requirement checks,
// and credentials that never print their secrets. It also holds the types
// by which the orchestrator (enroll) reaches and configures guests, so
// that transports and configurators never import it: Target, Dialer,
// Configurator and Unconfigurer.
//
// # The Executor contract
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
// SessionLost). Canceling the context, or passing Command.Timeout, stops
// the remote command and Run returns promptly with Canceled or
// DeadlineExceeded. After Close every call returns ErrClosed.
//
// Upload writes a file from an io.Reader, atomically where the transport
// allows (a temporary file beside the target, then a rename), with the mode
// and owner in UploadOptions, and honours its context.
//
// The guesttest package is the conformance suite every executor passes, so
// that no two transports differ in these rules.
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
// Malformed commands (neither or both of Args and Script, bad environment
// names, NUL bytes, negative timeouts) and credentials are InvalidArgument.
// A non-zero exit is *ExitError (FailedPrecondition). ErrSessionLost is
// OutcomeUnknown; ErrClosed is FailedPrecondition. Context ends are
// Canceled and DeadlineExceeded. Transports map their own failures to
// errs codes (Unauthenticated for refused credentials, Unavailable when
// the guest surely did nothing) and keep the vendor error reachable with
// errors.As.
//
// # Concurrency
//
// Executors are safe for concurrent use unless their documentation says
// otherwise: several Runs may proceed at once, each with its own output.
// The functions and types of this package are safe to use from many
// goroutines; a Command's readers and writers belong to the one Run it is
// passed to.
package guest
