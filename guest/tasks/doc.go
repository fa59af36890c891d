// Package tasks makes idempotent OS changes in guests through any
// guest.Executor: native tasks for Linux (sh) and Windows (PowerShell),
// each reporting whether it changed something, each with a check-only (dry
// run) mode, gathered in a Set that is the orchestrator's
// enroll.Configurator and enroll.Unconfigurer.
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
// RequirePackageManager and RequireInitSystem are enroll.RequirementCheck
// functions built on guest.Facts (which guest.DetectFacts fills with the
// package manager, the init system and the free disk space), for a
// policy's enroll.Requirements.Checks: they refuse guests the native tasks
// cannot configure.
//
// # Injection
//
// Every task is one script: a header assigning the task's values to shell
// (or PowerShell) variables, each quoted by guest.ShellQuote (or
// guest.PowerShellQuote), then a constant body that reads only those
// variables. No input is ever part of a body, and the fuzz tests check
// that the header gives back exactly the input values for any input.
// Values are also validated (user, group, package and service names,
// absolute paths, one-line keys) and bad ones are errs.InvalidArgument
// before anything runs.
//
// # Privileges
//
// Linux scripts run with guest.Command.Sudo unless Options.NoSudo: SSH
// executors run them directly for root and through sudo (password on
// stdin) for other users.
//
// # Errors
//
// A failing task stops the run with a *TaskError naming the task (never
// its values); its code is the cause's: InvalidArgument for bad input
// (nothing ran), Unimplemented for a task of another OS family,
// FailedPrecondition (a *guest.ExitError) when the guest refused the
// change, with the script's one-line reason.
//
// # Concurrency
//
// A Set is immutable after NewSet and may be used from many goroutines
// on different executors.
package tasks
