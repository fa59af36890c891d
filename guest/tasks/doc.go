// Package tasks makes idempotent OS changes in guests through any
// *guest.Executor: native tasks for Linux (sh) and Windows (PowerShell),
// each reporting whether it changed something, each with a check-only (dry
// run) mode, gathered in a Set that is a guest.Configurator and a
// guest.Unconfigurer (the orchestrator's enroll.Config.Configurator).
//
//	ts, err := tasks.Enrollment(tasks.Operator{User: "mvm-ops", AuthorizedKeys: []string{key}})
//	set := tasks.NewSet(ts, nil)
//	rep, err := set.Check(ctx, ex) // what would change; nothing changes
//	rep, err = set.Apply(ctx, ex)  // rep.Changed() tasks changed the guest
//	rep, err = set.Revert(ctx, ex) // on unenrollment: remove the account and key
//
// # Tasks
//
// Linux: User and UserAbsent, AuthorizedKey and AuthorizedKeyAbsent,
// SudoersDropIn (checked with visudo -c before it is installed), Package
// (apt, dnf, yum, zypper), Service (systemd, or service(8) with
// update-rc.d, chkconfig or rc-update), File and FileAbsent (atomic
// replace, mode, owner), Hostname, LineInFile. Windows (PowerShell, for
// WinRM executors): WinUser and WinUserAbsent, WinGroupMember, WinService,
// WinFile, RegistryValue. A task implements Reverser when it can be undone
// (user, key, sudoers drop-in, file with RemoveOnReverse, group
// membership); Set.Revert runs the reverses in reverse order.
//
// # Requirement checks
//
// RequirePackageManager and RequireInitSystem are guest.RequirementCheck
// functions built on guest.Facts (which guest.DetectFacts fills with the
// package manager, the init system and the free disk space), for the
// Checks of a guest.Requirements (a profile's enroll.Policy.Requirements;
// guest.CheckRequirements runs them): they refuse guests the native tasks
// cannot configure.
//
// # Injection
//
// Every task is one script: a header assigning the task's values to shell
// (or PowerShell) variables, each quoted by guest.ShellQuote (or
// guest.PowerShellQuote), then a constant body that reads only those
// variables. No input is ever part of a body, and the fuzz tests check
// that the header gives back exactly the input values for any input.
// Values are also validated, and bad ones are errs.InvalidArgument before
// anything runs (Run and the Set methods build every task's script before
// the first one runs).
//
// # Limits
//
//	Linux user and group names   [a-z_][a-z0-9_-]{0,31}, optional trailing $ (at most 33 bytes)
//	Windows user, group, member  letters, digits, . _ - and space, at most 64 bytes (DOMAIN\user: each part)
//	package names                letters, digits, + . _ : @ -, at most 128 bytes
//	service names                Linux: letters, digits, _ . @ : -, at most 128 bytes; Windows: at most 256
//	sudoers drop-in names        letters, digits, _ -, at most 64 bytes
//	host names                   a DNS name, at most 253 bytes
//	paths                        MaxPath (4096) bytes of UTF-8 without NUL or line break; Linux: absolute
//	authorized_keys lines        MaxAuthorizedKey (16384) bytes, one line, parsed as authorized_keys
//	lines and patterns           MaxLine (4096) bytes, one line (LineInFile)
//	Windows descriptions         MaxLine (4096) bytes, one line (WinUser)
//	registry value names         MaxLine (4096) bytes, one line (RegistryValue)
//
// Describe shows a value as it is when it is at most 64 bytes of printable
// UTF-8, otherwise Go-quoted and cut by limit.Quote (64 bytes and an
// ellipsis); validation messages name the field, not the value (the
// task's description carries it), except for enumerations (startup type,
// registry kind), which quote it the same way. No message grows with the
// input or carries a control character.
//
// # Privileges
//
// Linux scripts run with guest.Command.Sudo unless Options.NoSudo: SSH
// executors run them directly for root and through sudo (password on
// stdin) for other users.
//
// # Errors
//
// A failing task stops the run with a *TaskError naming the task by its
// bounded description (a description of the host's own Task longer than
// MaxDescription, or with a control character, is quoted and cut too); its
// code is the cause's: InvalidArgument for bad input
// (nothing ran), Unimplemented for a task of another OS family,
// FailedPrecondition (a *guest.ExitError) when the guest refused the
// change, with the script's one-line reason.
//
// # Concurrency
//
// A Set is immutable after NewSet and may be used from many goroutines
// on different executors.
package tasks
