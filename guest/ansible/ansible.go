package ansible

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
)

// MaxPath is the longest playbook path (New's playbook), in bytes.
const MaxPath = 4096

//go:embed managedvm_callback.py
var callbackPlugin []byte

// ErrNotInstalled is returned when the ansible-playbook program is not
// found. Its code is errs.FailedPrecondition.
var ErrNotInstalled = &errs.Error{Code: errs.FailedPrecondition, Msg: "ansible-playbook is not installed (install ansible-core, or set Options.Binary)"}

// HostKeys says how the ssh client that Ansible runs verifies the
// targets' host keys: build it with KnownHosts, KnownHostsFor or
// InsecureAcceptAnyHostKey. The zero HostKeys is refused by New.
type HostKeys struct {
	data      []byte
	forTarget func(ctx context.Context, t guest.Target) ([]byte, error)
	insecure  bool
}

// KnownHosts verifies every target against known_hosts data (ssh runs with
// StrictHostKeyChecking=yes against it).
func KnownHosts(data []byte) HostKeys { return HostKeys{data: bytes.Clone(data)} }

// KnownHostsFor asks f for the known_hosts data of each enrollment target
// (Configure); Run, which has no target, is refused with InvalidArgument.
func KnownHostsFor(f func(ctx context.Context, t guest.Target) ([]byte, error)) HostKeys {
	return HostKeys{forTarget: f}
}

// InsecureAcceptAnyHostKey turns host-key checking off: for throwaway test
// guests only.
func InsecureAcceptAnyHostKey() HostKeys { return HostKeys{insecure: true} }

func (h HostKeys) isZero() bool { return len(h.data) == 0 && h.forTarget == nil && !h.insecure }

// Options are a Runner's optional settings; nil means the defaults.
type Options struct {
	// Binary is the ansible-playbook program (default: found on PATH).
	Binary string
	// BecomePassword, if set, is given to Ansible as
	// ansible_become_password through a 0600 variables file (never on the
	// command line). Become turns privilege escalation on for every task.
	BecomePassword guest.Secret
	Become         bool
	// Port is the SSH port for Configure's targets (default 22).
	Port int
	// ExtraVars are passed as a JSON variables file (-e @file).
	ExtraVars map[string]any
	// Tags, SkipTags and Limit select what runs.
	Tags, SkipTags []string
	Limit          string
	// Check runs the playbook in check mode (--check); Diff adds --diff.
	Check, Diff bool
	// Timeout bounds the whole run (default 30 minutes).
	Timeout time.Duration
	// Env adds environment variables for ansible-playbook ("K=V").
	Env []string
	// TempDir is where the run's private directory is made (default
	// os.TempDir()).
	TempDir string
	// Logger receives one line per task result; nil discards.
	Logger *slog.Logger
}

// config is everything a Runner runs with.
type config struct {
	Playbook    string
	Credentials guest.Credentials
	HostKeys
	Options
}

// Host is the machine a run targets.
type Host struct {
	// Name is the inventory name (default "target").
	Name string
	// Addr is the IP address or DNS name; Port the SSH port (default 22).
	Addr string
	Port int
	// Vars are host variables.
	Vars map[string]any
}

// TaskResult is one task's result on one host.
type TaskResult struct {
	Host, Task, Action string
	// Status is "ok", "failed", "unreachable" or "skipped".
	Status  string
	Changed bool
	// Ignored is set for failures the playbook ignores (ignore_errors).
	Ignored bool
	// Msg is the module's message (stderr for failures without one).
	Msg string
}

// Stats are a host's totals (PLAY RECAP).
type Stats struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failures    int `json:"failures"`
	Unreachable int `json:"unreachable"`
	Skipped     int `json:"skipped"`
	Rescued     int `json:"rescued"`
	Ignored     int `json:"ignored"`
}

// Report is the outcome of a run.
type Report struct {
	Tasks []TaskResult
	Hosts map[string]Stats
	// ExitCode is ansible-playbook's exit code.
	ExitCode int
	Duration time.Duration
}

// Changed is the number of changed task results over all hosts.
func (r *Report) Changed() int {
	n := 0
	for _, s := range r.Hosts {
		n += s.Changed
	}
	return n
}

// PlaybookError reports a failed run: the first failed (or unreachable)
// task and its message. Its code is errs.Unavailable for an unreachable
// host and errs.FailedPrecondition otherwise. The fields hold what
// Ansible reported (the run's secrets redacted; Msg cut to 600 bytes when
// it comes from ansible-playbook's output); Error names the task and
// quotes the task, host and message with limit.Quote, so it stays bounded
// and holds no control character whatever the playbook printed.
type PlaybookError struct {
	Host, Task, Status, Msg string
	ExitCode                int
}

func (e *PlaybookError) Error() string {
	if e.Task == "" {
		return fmt.Sprintf("ansible-playbook exited with code %d: %s", e.ExitCode, limit.Quote(e.Msg))
	}
	status := e.Status
	if status != "failed" && status != "unreachable" {
		status = limit.Quote(status)
	}
	return fmt.Sprintf("ansible task %s %s on %s: %s", limit.Quote(e.Task), status, limit.Quote(e.Host), limit.Quote(e.Msg))
}

// ErrorCode gives the error's code.
func (e *PlaybookError) ErrorCode() errs.Code {
	if e.Status == "unreachable" {
		return errs.Unavailable
	}
	return errs.FailedPrecondition
}

// Is makes errors.Is(err, code) agree with ErrorCode.
func (e *PlaybookError) Is(target error) bool { return errs.IsCode(e, target) }

// Runner runs one playbook. It is a guest.Configurator (for
// enroll.Config.Configurator).
type Runner struct {
	cfg config
	log *slog.Logger
}

var _ guest.Configurator = (*Runner)(nil)

var (
	tagRe  = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	hostRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,253}$`)
)

// New returns a Runner of the playbook file at playbook, logging in as
// creds (a user name and an unencrypted private key), verifying host keys
// as hostKeys says; opts may be nil. Everything is checked before anything
// runs: a missing or malformed argument is InvalidArgument, a password
// login or a passphrase-protected key Unimplemented.
func New(playbook string, creds guest.Credentials, hostKeys HostKeys, opts *Options) (*Runner, error) {
	const op = "ansible.New"
	cfg := config{Playbook: playbook, Credentials: creds, HostKeys: hostKeys}
	if opts != nil {
		cfg.Options = *opts
		cfg.ExtraVars = maps.Clone(opts.ExtraVars)
		cfg.Tags = slices.Clone(opts.Tags)
		cfg.SkipTags = slices.Clone(opts.SkipTags)
		cfg.Env = slices.Clone(opts.Env)
	}
	switch {
	case cfg.Playbook == "":
		return nil, errs.New(errs.InvalidArgument, op, "no playbook")
	case cfg.Credentials.Username == "":
		return nil, errs.New(errs.InvalidArgument, op, "no user name")
	case cfg.Credentials.PrivateKey.IsZero():
		return nil, errs.New(errs.Unimplemented, op, "Ansible needs a private key (password logins would need sshpass)")
	case !cfg.Credentials.Passphrase.IsZero():
		return nil, errs.New(errs.Unimplemented, op, "a passphrase-protected key would make ssh prompt: give an unencrypted key")
	case cfg.HostKeys.isZero():
		return nil, errs.New(errs.InvalidArgument, op, "no host keys: pass KnownHosts(data) (or KnownHostsFor), or InsecureAcceptAnyHostKey() for throwaway guests")
	case len(cfg.Limit) > limit.MaxText || (cfg.Limit != "" && limit.Printable(cfg.Limit) != ""):
		return nil, errs.New(errs.InvalidArgument, op, "malformed limit (printable, at most 4096 bytes)")
	case len(cfg.Playbook) > MaxPath || strings.IndexByte(cfg.Playbook, 0) >= 0:
		return nil, errs.New(errs.InvalidArgument, op, "malformed playbook path")
	case !hostRe.MatchString(cfg.Credentials.Username):
		return nil, errs.New(errs.InvalidArgument, op, "malformed user name")
	}
	for _, t := range append(append([]string(nil), cfg.Tags...), cfg.SkipTags...) {
		if !tagRe.MatchString(t) {
			return nil, errs.Errorf(errs.InvalidArgument, op, "malformed tag %s (letters, digits and _.:-, at most 128 bytes)", limit.Quote(t))
		}
	}
	for _, e := range cfg.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || len(e) > limit.MaxText || strings.IndexByte(e, 0) >= 0 {
			return nil, errs.New(errs.InvalidArgument, op, "Env entries must be K=V, at most 4096 bytes, without NUL")
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Minute
	}
	r := &Runner{cfg: cfg, log: cfg.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Configure runs the playbook against the target's public IP (on
// Options.Port, default 22).
func (r *Runner) Configure(ctx context.Context, t guest.Target, _ *guest.Executor) error {
	h := Host{Name: "target", Addr: t.PublicIP.String(), Port: r.cfg.Port}
	if !t.PublicIP.IsValid() {
		return errs.New(errs.InvalidArgument, "ansible.Configure", "the target has no public IP")
	}
	var kh []byte
	if r.cfg.forTarget != nil {
		var err error
		if kh, err = r.cfg.forTarget(ctx, t); err != nil {
			return errs.WrapOp("ansible.Configure", err)
		}
	}
	_, err := r.run(ctx, h, kh)
	return err
}

// Run runs the playbook against one host and returns the per-task
// results. A failed task gives a *PlaybookError with the task's name and
// message (and the Report so far).
func (r *Runner) Run(ctx context.Context, h Host) (*Report, error) {
	return r.run(ctx, h, nil)
}

func (r *Runner) run(ctx context.Context, h Host, knownHosts []byte) (*Report, error) {
	const op = "ansible.Run"
	if h.Name == "" {
		h.Name = "target"
	}
	if h.Port == 0 {
		h.Port = 22
	}
	switch {
	case !hostRe.MatchString(h.Name):
		return nil, errs.New(errs.InvalidArgument, op, "malformed inventory host name")
	case h.Addr == "" || len(h.Addr) > 253 || limit.Printable(h.Addr) != "" || strings.ContainsAny(h.Addr, " '\""):
		return nil, errs.New(errs.InvalidArgument, op, "malformed host address")
	case h.Port < 1 || h.Port > 65535:
		return nil, errs.New(errs.InvalidArgument, op, "port out of range")
	}
	if knownHosts == nil {
		knownHosts = r.cfg.data
	}
	if len(knownHosts) == 0 && !r.cfg.insecure {
		return nil, errs.New(errs.InvalidArgument, op, "no known_hosts data for the host")
	}
	bin := r.cfg.Binary
	if bin == "" {
		bin = "ansible-playbook"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, errs.WrapOp(op, ErrNotInstalled)
	}
	if _, err := os.Stat(r.cfg.Playbook); err != nil {
		return nil, errs.Errorf(errs.InvalidArgument, op, "playbook %s: %v", limit.Quote(filepath.Base(r.cfg.Playbook)), errors.Unwrap(err))
	}
	playbook, err := filepath.Abs(r.cfg.Playbook)
	if err != nil {
		return nil, errs.Wrap(errs.InvalidArgument, op, err)
	}

	dir, err := os.MkdirTemp(r.cfg.TempDir, "managedvm-ansible-")
	if err != nil {
		return nil, errs.Wrap(errs.Internal, op, err)
	}
	defer os.RemoveAll(dir) // the key, the become password, everything
	write := func(name string, data []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, data, 0o600)
	}
	key := []byte(r.cfg.Credentials.PrivateKey.Reveal())
	if !bytes.HasSuffix(key, []byte("\n")) {
		key = append(key, '\n')
	}
	keyPath, err := write("id_key", key)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, op, err)
	}
	sshArgs := []string{"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none"}
	if r.cfg.insecure {
		sshArgs = append(sshArgs, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null")
	} else {
		khPath, err := write("known_hosts", knownHosts)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, op, err)
		}
		sshArgs = append(sshArgs, "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+khPath, "-o", "GlobalKnownHostsFile=/dev/null")
	}
	hostVars := map[string]any{}
	maps.Copy(hostVars, h.Vars)
	maps.Copy(hostVars, map[string]any{
		"ansible_host":                 h.Addr,
		"ansible_port":                 h.Port,
		"ansible_user":                 r.cfg.Credentials.Username,
		"ansible_connection":           "ssh",
		"ansible_ssh_private_key_file": keyPath,
		"ansible_ssh_common_args":      guest.ShellJoin(sshArgs),
		"ansible_python_interpreter":   "auto_silent",
	})
	inv, _ := json.Marshal(map[string]any{"all": map[string]any{"hosts": map[string]any{h.Name: hostVars}}})
	invPath, err := write("inventory.json", inv)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, op, err)
	}
	vars := map[string]any{}
	maps.Copy(vars, r.cfg.ExtraVars)
	if !r.cfg.BecomePassword.IsZero() {
		vars["ansible_become_password"] = r.cfg.BecomePassword.Reveal()
	}
	args := []string{"-i", invPath}
	if len(vars) > 0 {
		vb, err := json.Marshal(vars)
		if err != nil {
			return nil, errs.Errorf(errs.InvalidArgument, op, "ExtraVars cannot be encoded as JSON")
		}
		varsPath, err := write("vars.json", vb)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, op, err)
		}
		args = append(args, "-e", "@"+varsPath)
	}
	if r.cfg.Check {
		args = append(args, "--check")
	}
	if r.cfg.Diff {
		args = append(args, "--diff")
	}
	if r.cfg.Become {
		args = append(args, "--become")
	}
	if len(r.cfg.Tags) > 0 {
		args = append(args, "--tags", strings.Join(r.cfg.Tags, ","))
	}
	if len(r.cfg.SkipTags) > 0 {
		args = append(args, "--skip-tags", strings.Join(r.cfg.SkipTags, ","))
	}
	if r.cfg.Limit != "" {
		args = append(args, "--limit", r.cfg.Limit)
	}
	args = append(args, "--", playbook)

	plugins := filepath.Join(dir, "callback_plugins")
	if err := os.Mkdir(plugins, 0o700); err != nil {
		return nil, errs.Wrap(errs.Internal, op, err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "managedvm.py"), callbackPlugin, 0o600); err != nil {
		return nil, errs.Wrap(errs.Internal, op, err)
	}
	cfgPath, err := write("ansible.cfg", []byte("[defaults]\n"))
	if err != nil {
		return nil, errs.Wrap(errs.Internal, op, err)
	}
	events := filepath.Join(dir, "events.jsonl")
	localTmp := filepath.Join(dir, "tmp")
	_ = os.Mkdir(localTmp, 0o700)

	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+cfgPath,
		"ANSIBLE_STDOUT_CALLBACK=managedvm",
		"ANSIBLE_CALLBACK_PLUGINS="+plugins,
		"ANSIBLE_LOCAL_TEMP="+localTmp,
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_HOST_KEY_CHECKING="+strconv.FormatBool(!r.cfg.insecure),
		"ANSIBLE_PIPELINING=1",
		"ANSIBLE_SSH_RETRIES=0",
		"ANSIBLE_DEPRECATION_WARNINGS=0",
		"MANAGEDVM_ANSIBLE_EVENTS="+events,
	)
	cmd.Env = append(cmd.Env, r.cfg.Env...)
	var stderr, stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{b: &stdout}, &limited{b: &stderr}
	inProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	r.log.Debug("ansible-playbook starting", "playbook", filepath.Base(playbook), "host", h.Name, "check", r.cfg.Check)
	runErr := cmd.Run()
	if cmd.Process != nil {
		killGroup(cmd) // stragglers
	}
	rep := &Report{Duration: time.Since(start), Hosts: map[string]Stats{}}
	if cmd.ProcessState != nil {
		rep.ExitCode = cmd.ProcessState.ExitCode()
	}
	r.readEvents(events, rep)
	if cerr := errs.FromContext(ctx, op); cerr != nil {
		return rep, cerr
	}
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		return rep, errs.Wrap(errs.Internal, op, runErr)
	}
	if runErr == nil {
		return rep, nil
	}
	pe := &PlaybookError{ExitCode: rep.ExitCode}
	for _, t := range rep.Tasks {
		if (t.Status == "failed" && !t.Ignored) || t.Status == "unreachable" {
			pe.Host, pe.Task, pe.Status, pe.Msg = t.Host, t.Task, t.Status, t.Msg
			break
		}
	}
	if pe.Task == "" {
		// Redact before cutting: a cut could leave part of a secret.
		pe.Msg = firstLines(r.redact(stderr.String()))
		if pe.Msg == "" {
			pe.Msg = firstLines(r.redact(stdout.String()))
		}
	}
	pe.Msg = r.redact(pe.Msg)
	return rep, pe
}

func (r *Runner) readEvents(path string, rep *Report) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev struct {
			Event, Host, Task, Action, Status, Msg string
			Changed, Ignored                       bool
			Hosts                                  map[string]Stats
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		switch ev.Event {
		case "task":
			t := TaskResult{Host: ev.Host, Task: ev.Task, Action: ev.Action, Status: ev.Status, Changed: ev.Changed, Ignored: ev.Ignored, Msg: r.redact(ev.Msg)}
			rep.Tasks = append(rep.Tasks, t)
			r.log.Info("ansible task", "host", logValue(t.Host), "task", logValue(t.Task), "status", logValue(t.Status), "changed", t.Changed)
		case "stats":
			maps.Copy(rep.Hosts, ev.Hosts)
		}
	}
}

// logValue is v for a log line: as it is when short and printable, else
// quoted and cut by limit.Quote (Ansible reports whatever the playbook
// names).
func logValue(v string) string {
	if len(v) <= limit.QuoteBytes && limit.Printable(v) == "" {
		return v
	}
	return limit.Quote(v)
}

// redact removes the run's secrets from text that came from Ansible.
func (r *Runner) redact(s string) string {
	for _, sec := range []guest.Secret{r.cfg.BecomePassword, r.cfg.Credentials.Password, r.cfg.Credentials.PrivateKey} {
		if v := sec.Reveal(); len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return s
}

func firstLines(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "[WARNING]") {
			continue
		}
		out = append(out, l)
		if len(out) == 3 {
			break
		}
	}
	msg := strings.Join(out, " | ")
	if len(msg) > 600 {
		msg = msg[:600] + "..."
	}
	return msg
}

// limited keeps the first 1 MiB written.
type limited struct{ b *bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	if room := 1<<20 - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// HostFromAddr builds a Host from "addr:port" (or "addr").
func HostFromAddr(name, addr string) (Host, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return Host{Name: name, Addr: addr}, nil
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return Host{}, errs.New(errs.InvalidArgument, "ansible.HostFromAddr", "malformed port")
	}
	return Host{Name: name, Addr: h, Port: port}, nil
}
