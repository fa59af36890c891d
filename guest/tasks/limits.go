package tasks

import "github.com/managedvm/managedvm/internal/limit"

// Limits on task input. Every task checks its values in Command, so Run
// and the Set methods refuse bad input (errs.InvalidArgument) before the
// first task runs; names are further restricted by their own rules (see
// each task).
const (
	// MaxPath is the longest path a task takes (Linux PATH_MAX), in bytes:
	// File, FileAbsent, LineInFile, WinFile, User's Shell and Home.
	MaxPath = 4096
	// MaxAuthorizedKey is the longest authorized_keys line, options
	// included (OpenSSH's SSH_MAX_PUBKEY_BYTES), in bytes.
	MaxAuthorizedKey = 16384
	// MaxLine is the longest LineInFile Line or Match, WinUser
	// Description and RegistryValue Name (limit.MaxText), in bytes.
	MaxLine = limit.MaxText
	// MaxDescription is the longest task description a *TaskError, a
	// Result or a log line shows as it is; a longer one, or one with a
	// control character or invalid UTF-8, is shown quoted and cut by
	// limit.Quote.
	MaxDescription = 256
)

// show returns a value for a description or a message: as it is when it
// is short (at most limit.QuoteBytes) and printable (UTF-8 without a
// control character), else quoted and cut by limit.Quote. A description
// therefore never grows with its input and never carries a control
// character.
func show(v string) string {
	if v != "" && len(v) <= limit.QuoteBytes && limit.Printable(v) == "" {
		return v
	}
	return limit.Quote(v)
}

// describe is t.Describe() bounded: a Task of the host's own may
// describe itself with anything.
func describe(t Task) string {
	d := t.Describe()
	if len(d) > MaxDescription || limit.Printable(d) != "" {
		return limit.Quote(d)
	}
	return d
}
