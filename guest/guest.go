package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// OSFamily is a guest operating system family.
type OSFamily string

// The OS families managedvm knows.
const (
	FamilyUnknown OSFamily = ""
	Linux         OSFamily = "linux"
	Windows       OSFamily = "windows"
)

// String returns the family's name, "unknown" for the zero value.
func (f OSFamily) String() string {
	if f == FamilyUnknown {
		return "unknown"
	}
	return string(f)
}

// ParseFamily maps common spellings ("linux", "linuxGuest", "Windows",
// "windowsGuest", "win") to a family; anything else is FamilyUnknown.
//
// It also recognises names that contain "linux" or "windows"
// ("otherLinux64Guest", "other_linux", "windows2019srv_64Guest",
// "Microsoft Windows Server 2022") and names that start with a common Linux
// distribution ("rhel9_64Guest", "ubuntu64Guest", "debian12_64Guest",
// "centos", "sles", "rocky", ...).
func ParseFamily(s string) OSFamily {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case strings.HasPrefix(s, "linux"):
		return Linux
	case strings.HasPrefix(s, "win"):
		return Windows
	case strings.Contains(s, "windows"):
		return Windows
	case strings.Contains(s, "linux"):
		return Linux
	}
	for _, d := range [...]string{"rhel", "centos", "rocky", "alma", "fedora", "ubuntu", "debian", "sles", "suse", "opensuse", "photon", "coreos", "flatcar"} {
		if strings.HasPrefix(s, d) {
			return Linux
		}
	}
	return FamilyUnknown
}

// Command is one program or script to run in a guest.
//
// Exactly one of Args and Script is set. Args is an argument vector: the
// executor quotes it (POSIX sh quoting on Linux, cmd/PowerShell quoting on
// Windows), so callers never quote. Script is a script for the guest's own
// shell: POSIX sh on Linux, PowerShell on Windows (sent as -EncodedCommand).
type Command struct {
	// Args is the program and its arguments, unquoted.
	Args []string
	// Script is a shell script (sh on Linux, PowerShell on Windows).
	Script string
	// Env adds environment variables. Names must be [A-Za-z_][A-Za-z0-9_]*.
	Env map[string]string
	// Dir is the working directory; empty means the executor's default.
	Dir string
	// Stdin, if not nil, is fed to the command's standard input.
	Stdin io.Reader
	// Stdout and Stderr, if not nil, receive the output as it arrives, in
	// addition to the copy kept in Result (up to MaxOutput).
	Stdout, Stderr io.Writer
	// Sudo runs the command as root through sudo on Linux (the executor
	// feeds the password on standard input, never on the command line).
	// Executors that cannot escalate return Unimplemented.
	Sudo bool
	// Timeout bounds this command; zero means the executor's default.
	Timeout time.Duration
}

// MaxOutput is how many bytes of each stream a Result keeps.
const MaxOutput = 1 << 20

// The limits Command.Validate and the Executor enforce on every transport
// (a transport may refuse less still: a WinRM command line holds 8191
// characters, see guest/winrm).
const (
	// MaxArgs is the most elements Command.Args may have.
	MaxArgs = 4096
	// MaxCommandBytes bounds a command's size: the bytes of all its Args,
	// its Script, and its Env names and values together.
	MaxCommandBytes = 1 << 20
	// MaxEnv is the most variables Command.Env may set.
	MaxEnv = 256
	// MaxEnvName is the longest environment variable name, in bytes.
	MaxEnvName = 255
	// MaxEnvValue is the longest environment variable value, in bytes
	// (Windows' limit for one variable is 32,767 characters).
	MaxEnvValue = 32 << 10
	// MaxPath is the longest Command.Dir and upload path, in bytes.
	MaxPath = 4096
	// MaxOwner is the longest UploadOptions.Owner, in bytes.
	MaxOwner = 128
)

// Validate checks the command's shape and size against the limits above;
// the Executor calls it before any transport sees the command. Every
// failure is errs.InvalidArgument; messages quote at most the start of an
// environment variable's name (limit.Quote), never an argument, script or
// value.
func (c Command) Validate() error {
	const op = "guest.Command"
	switch {
	case len(c.Args) == 0 && c.Script == "":
		return errs.New(errs.InvalidArgument, op, "neither Args nor Script is set")
	case len(c.Args) > 0 && c.Script != "":
		return errs.New(errs.InvalidArgument, op, "both Args and Script are set")
	case len(c.Args) > 0 && c.Args[0] == "":
		return errs.New(errs.InvalidArgument, op, "empty program name")
	case c.Timeout < 0:
		return errs.New(errs.InvalidArgument, op, "negative timeout")
	case len(c.Args) > MaxArgs:
		return errs.Errorf(errs.InvalidArgument, op, "%d arguments, more than the %d allowed", len(c.Args), MaxArgs)
	case len(c.Env) > MaxEnv:
		return errs.Errorf(errs.InvalidArgument, op, "%d environment variables, more than the %d allowed", len(c.Env), MaxEnv)
	case len(c.Dir) > MaxPath:
		return errs.Errorf(errs.InvalidArgument, op, "the directory is %d bytes, more than the %d allowed", len(c.Dir), MaxPath)
	}
	size := len(c.Script)
	for _, a := range c.Args {
		size += len(a)
		if strings.IndexByte(a, 0) >= 0 {
			return errs.New(errs.InvalidArgument, op, "argument contains a NUL byte")
		}
	}
	for k, v := range c.Env {
		size += len(k) + len(v)
		switch {
		case len(k) > MaxEnvName:
			return errs.Errorf(errs.InvalidArgument, op, "environment variable name %s is longer than %d bytes", limit.Quote(k), MaxEnvName)
		case !validEnvName(k):
			return errs.Errorf(errs.InvalidArgument, op, "invalid environment variable name %s", limit.Quote(k))
		case len(v) > MaxEnvValue:
			return errs.Errorf(errs.InvalidArgument, op, "environment variable %s is %d bytes, more than the %d allowed", k, len(v), MaxEnvValue)
		case strings.IndexByte(v, 0) >= 0:
			return errs.Errorf(errs.InvalidArgument, op, "environment variable %s contains a NUL byte", k)
		}
	}
	if size > MaxCommandBytes {
		return errs.Errorf(errs.InvalidArgument, op, "the command is %d bytes (arguments, script and environment), more than the %d allowed", size, MaxCommandBytes)
	}
	// No guest shell or process can carry a NUL byte in these either.
	switch {
	case strings.IndexByte(c.Script, 0) >= 0:
		return errs.New(errs.InvalidArgument, op, "script contains a NUL byte")
	case strings.IndexByte(c.Dir, 0) >= 0:
		return errs.New(errs.InvalidArgument, op, "directory contains a NUL byte")
	}
	return nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// String describes the command for logs: the program name only, never its
// arguments or script (they may carry secrets).
func (c Command) String() string {
	if len(c.Args) > 0 {
		return fmt.Sprintf("command %s (%d args)", limit.Quote(c.Args[0]), len(c.Args)-1)
	}
	return fmt.Sprintf("script (%d bytes)", len(c.Script))
}

// Result is what a command that ran to completion produced.
type Result struct {
	// ExitCode is 0 for a Result returned with a nil error.
	ExitCode int
	// Stdout and Stderr hold up to MaxOutput bytes each.
	Stdout, Stderr []byte
	// Duration is how long the command ran, as the executor measured it.
	Duration time.Duration
}

// ExitError reports a command that ran and exited with a non-zero code.
// Its code (errs.CodeOf) is errs.FailedPrecondition: the command did run.
type ExitError struct {
	// Command describes the command (see Command.String).
	Command string
	// Code is the exit code.
	Code int
	// Stdout and Stderr are the captured output.
	Stdout, Stderr []byte
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s exited with code %d", e.Command, e.Code)
	if s := firstLine(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// ErrorCode makes errs.CodeOf(err) give FailedPrecondition.
func (e *ExitError) ErrorCode() errs.Code { return errs.FailedPrecondition }

// Is makes errors.Is(err, errs.FailedPrecondition) true.
func (e *ExitError) Is(target error) bool { return errs.IsCode(e, target) }

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// ErrSessionLost is wrapped by errors reporting that the connection to the
// guest dropped while a command ran. Its code is OutcomeUnknown: the command
// may or may not have run.
var ErrSessionLost = &errs.Error{Code: errs.OutcomeUnknown, Msg: "guest session lost"}

// ErrClosed is returned by an executor used after Close.
var ErrClosed = &errs.Error{Code: errs.FailedPrecondition, Msg: "guest executor closed"}

// SessionLost returns an error that wraps ErrSessionLost and cause.
func SessionLost(op string, cause error) error {
	return &errs.Error{Code: errs.OutcomeUnknown, Op: op, Err: errors.Join(ErrSessionLost, cause)}
}

// UploadOptions says how an uploaded file is written.
type UploadOptions struct {
	// Mode is the file's permission bits; zero means 0644 (Linux) or the
	// directory's default ACL (Windows).
	Mode fs.FileMode
	// Owner, if set, is "user" or "user:group" (Linux, as root).
	Owner string
}

// Output runs cmd and returns its standard output with surrounding white
// space trimmed.
func Output(ctx context.Context, ex *Executor, cmd Command) (string, error) {
	res, err := ex.Run(ctx, cmd)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}
