package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
)

// Task is one idempotent OS change.
type Task interface {
	// Describe names the task for reports and logs ("user mvm-ops"); it
	// never shows secrets or file contents. The tasks of this package show
	// a value as it is only when it is at most limit.QuoteBytes (64) bytes
	// of printable UTF-8, quoted and cut by limit.Quote otherwise, so a
	// description never grows with its input. Run shows a description
	// longer than MaxDescription, or with a control character, quoted and
	// cut too.
	Describe() string
	// Command returns the script that checks (check true: it changes
	// nothing) or applies the task in a guest of family f. A task for
	// another family returns errs.Unimplemented; bad input
	// errs.InvalidArgument.
	Command(f guest.OSFamily, check bool) (guest.Command, error)
}

// Reverser is implemented by tasks that can be undone. Reverse returns the
// undoing task, or nil when there is nothing to undo.
type Reverser interface {
	Reverse() Task
}

// Result is one task's outcome.
type Result struct {
	Task string
	// Changed says the task changed the guest (in check mode: would
	// change it).
	Changed bool
	// Check says the task ran in check mode.
	Check    bool
	Duration time.Duration
}

// Report is the outcome of a run of tasks.
type Report struct {
	Results []Result
}

// Changed counts the tasks that changed something.
func (r Report) Changed() int {
	n := 0
	for _, x := range r.Results {
		if x.Changed {
			n++
		}
	}
	return n
}

// String summarizes the report ("3 tasks, 1 changed").
func (r Report) String() string {
	return fmt.Sprintf("%d tasks, %d changed", len(r.Results), r.Changed())
}

// TaskError reports the task that failed. Its code is the cause's. Task is
// the task's bounded description (see Task.Describe); values appear in it
// and in the message only short or quoted and cut by limit.Quote, so the
// message does not grow with the task's input and holds no raw control
// character.
type TaskError struct {
	Task string
	Err  error
}

func (e *TaskError) Error() string {
	task := e.Task
	if len(task) > MaxDescription || limit.Printable(task) != "" {
		task = limit.Quote(task)
	}
	return "task " + task + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TaskError) Unwrap() error { return e.Err }

// ErrorCode gives the cause's code.
func (e *TaskError) ErrorCode() errs.Code { return errs.CodeOf(e.Err) }

// Options tune a Set. The zero value is usable.
type Options struct {
	// Check runs every task in check mode (a dry run): Configure and
	// Unconfigure report what they would change and change nothing.
	Check bool
	// NoSudo runs the Linux scripts without Command.Sudo (for executors
	// that log in as root or cannot escalate). By default they run with
	// Sudo, which SSH executors skip for root.
	NoSudo bool
	// TaskTimeout bounds each task (default 10 minutes: package installs
	// can be slow).
	TaskTimeout time.Duration
	// Logger receives one line per task; nil discards.
	Logger *slog.Logger
	// OnResult, if set, receives each task's result as it completes.
	OnResult func(Result)
}

// Set is a list of tasks run in order. It is a guest.Configurator and a
// guest.Unconfigurer (for enroll.Config.Configurator): Configure applies
// the tasks, Unconfigure applies
// their reverses in reverse order.
type Set struct {
	tasks []Task
	opts  Options
	log   *slog.Logger
}

var (
	_ guest.Configurator = (*Set)(nil)
	_ guest.Unconfigurer = (*Set)(nil)
)

// NewSet returns a Set of tasks.
func NewSet(tasks []Task, opts *Options) *Set {
	s := &Set{tasks: slices.Clone(tasks)}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.TaskTimeout <= 0 {
		s.opts.TaskTimeout = 10 * time.Minute
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Tasks returns the set's tasks.
func (s *Set) Tasks() []Task { return slices.Clone(s.tasks) }

// Reversed returns the tasks that undo the set, in reverse order.
func (s *Set) Reversed() []Task {
	var out []Task
	for i := len(s.tasks) - 1; i >= 0; i-- {
		if r, ok := s.tasks[i].(Reverser); ok {
			if t := r.Reverse(); t != nil {
				out = append(out, t)
			}
		}
	}
	return out
}

// Configure applies the tasks (checks them in check mode).
func (s *Set) Configure(ctx context.Context, _ guest.Target, ex *guest.Executor) error {
	_, err := s.Apply(ctx, ex)
	return err
}

// Unconfigure applies the reverse tasks.
func (s *Set) Unconfigure(ctx context.Context, _ guest.Target, ex *guest.Executor) error {
	_, err := s.Revert(ctx, ex)
	return err
}

// Apply runs the tasks in order (in check mode if Options.Check) and stops
// at the first failure, a *TaskError. Every task's input is validated
// before the first one runs.
func (s *Set) Apply(ctx context.Context, ex *guest.Executor) (Report, error) {
	return Run(ctx, ex, s.tasks, s.opts.Check, s)
}

// Check runs the tasks in check mode: nothing changes; each Result says
// whether its task would change something.
func (s *Set) Check(ctx context.Context, ex *guest.Executor) (Report, error) {
	return Run(ctx, ex, s.tasks, true, s)
}

// Revert runs the reverse tasks (in check mode if Options.Check).
func (s *Set) Revert(ctx context.Context, ex *guest.Executor) (Report, error) {
	return Run(ctx, ex, s.Reversed(), s.opts.Check, s)
}

// Run runs tasks in order through ex; set, if not nil, supplies options.
func Run(ctx context.Context, ex *guest.Executor, tasks []Task, check bool, set *Set) (Report, error) {
	const op = "tasks.Run"
	if set == nil {
		set = NewSet(nil, nil)
	}
	fam := ex.Family()
	cmds := make([]guest.Command, len(tasks))
	for i, t := range tasks {
		if t == nil {
			return Report{}, errs.New(errs.InvalidArgument, op, "nil task")
		}
		c, err := t.Command(fam, check)
		if err != nil {
			return Report{}, &TaskError{Task: describe(t), Err: err}
		}
		if fam == guest.Linux && !set.opts.NoSudo {
			c.Sudo = true
		}
		c.Timeout = set.opts.TaskTimeout
		cmds[i] = c
	}
	var rep Report
	for i, t := range tasks {
		if err := errs.FromContext(ctx, op); err != nil {
			return rep, err
		}
		start := time.Now()
		name := describe(t)
		res, err := ex.Run(ctx, cmds[i])
		if err != nil {
			return rep, &TaskError{Task: name, Err: err}
		}
		changed, ok := parseResult(res.Stdout)
		if !ok {
			return rep, &TaskError{Task: name, Err: errs.New(errs.Internal, op, "the task script printed no result")}
		}
		r := Result{Task: name, Changed: changed, Check: check, Duration: time.Since(start)}
		rep.Results = append(rep.Results, r)
		set.log.Info("task", "task", r.Task, "changed", r.Changed, "check", check, "duration", r.Duration)
		if set.opts.OnResult != nil {
			set.opts.OnResult(r)
		}
	}
	return rep, nil
}

func parseResult(stdout []byte) (changed, ok bool) {
	out := strings.TrimRight(strings.ReplaceAll(string(stdout), "\r\n", "\n"), "\n")
	i := strings.LastIndex(out, resultPrefix)
	if i < 0 {
		return false, false
	}
	switch strings.TrimSpace(out[i+len(resultPrefix):]) {
	case "changed":
		return true, true
	case "ok":
		return false, true
	}
	return false, false
}

// Operator describes the operator's service account that enrollment
// creates in a Linux guest.
type Operator struct {
	// User is the account's name.
	User string
	// Groups are supplementary groups (they must exist).
	Groups []string
	// Shell defaults to /bin/sh.
	Shell string
	// AuthorizedKeys are the public keys allowed to log in.
	AuthorizedKeys []string
	// Sudoers is the sudoers rule (default "USER ALL=(ALL) NOPASSWD: ALL");
	// "-" installs none.
	Sudoers string
	// Packages to install (for example python3 for Ansible).
	Packages []string
}

// Enrollment returns the native enrollment tasks for an operator account:
// the user (password locked), its keys, its sudoers drop-in, then the
// packages. Reversing them removes the drop-in, the keys and the user with
// its home (packages stay).
func Enrollment(op Operator) ([]Task, error) {
	if err := checkName("user", op.User); err != nil {
		return nil, err
	}
	shell := op.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	ts := []Task{User{Name: op.User, Shell: shell, Groups: op.Groups, LockPassword: true, RemoveHome: true}}
	for _, k := range op.AuthorizedKeys {
		ts = append(ts, AuthorizedKey{User: op.User, Key: k})
	}
	switch op.Sudoers {
	case "-":
	case "":
		ts = append(ts, SudoersDropIn{Name: "managedvm-" + strings.TrimSuffix(op.User, "$"), Content: op.User + " ALL=(ALL) NOPASSWD: ALL\n"})
	default:
		ts = append(ts, SudoersDropIn{Name: "managedvm-" + strings.TrimSuffix(op.User, "$"), Content: op.Sudoers})
	}
	for _, p := range op.Packages {
		ts = append(ts, Package{Package: p})
	}
	for _, t := range ts {
		if _, err := t.Command(guest.Linux, true); err != nil {
			return nil, err
		}
	}
	return ts, nil
}
