// Command managedvm is the reference host of the managedvm library: one
// program that serves the Devices portal and its JSON API, and that
// answers command-line verbs over the same configuration, in the style of
// govc.
//
//	go run ./examples/managedvm serve              # embedded defaults, no set-up
//	go run ./examples/managedvm devices            # the indexed VMs, as a table
//	go run ./examples/managedvm enroll -password-file pw web-01
//
// # Configuration
//
// One YAML file (-config FILE, or $MANAGEDVM_CONFIG): providers (vsphere,
// ovirt, vcd, hyperv, or the in-process simulator vspheresim), IPAM pools,
// the firewall (memory, nftables on Linux, or a Cloud Director edge
// gateway), CMDB and Store drivers (memory or PostgreSQL), the guest
// network (SSH with known_hosts or trust on first use, WinRM) for
// providers without guest access, service profiles, the listen address and
// TLS certificate, LDAP, a /metrics scrape token. Every mistake is
// reported before anything starts, naming the file, line and key
// ("site.yaml:12: providers[0].url: ..."). Without a file the embedded
// defaults run (defaults.yaml beside this file, which documents every key):
// a simulated vCenter in this process with four Debian VMs, in-memory
// drivers and the portal's demo login.
//
// # Verbs
//
//	check       check the configuration and print what it holds
//	devices     list the indexed VMs (-provider, -state)
//	show VM     one VM, with its access when enrolled
//	enroll VM   enroll (-user, -password-file; else a prompt), steps live on stderr
//	unenroll VM unenroll (-force skips the guest)
//	preflight   the providers' requirement rows (-provider)
//	resume      finish or roll back the journals crashed processes left open
//	netreq      the network requirements (firewall matrix)
//	serve       the portal and the JSON API
//
// VM is "provider/id", or a VM's id or name. Every verb prints a human
// table, or JSON with -json. A password is never read from the command
// line: -password-file FILE (its first line; "-" for standard input) or a
// prompt on the terminal, without echo.
//
// # serve
//
// serve resumes the journals an earlier process left open, indexes every
// provider, then runs the Indexer and ResumeEvery (resume_every) and
// serves HTTPS on listen: the configured certificate, or for a loopback
// address without one a self-signed certificate made at start-up (its
// SHA-256 fingerprint is printed, with the demo logins when
// portal.demo_login is set). Log-in is LDAP (ldap:// with StartTLS or
// ldaps://, certificates verified; operator_group and viewer_group decide
// the role) or the demo accounts; five failures per user name or client
// address in five minutes lock further attempts for the rest of the
// window. Sessions live in memory (eight hours; a restart logs everyone
// out) behind a Secure, HttpOnly, SameSite=Strict cookie. Every page and
// API call but /healthz and /login needs a session; every POST the
// session's CSRF token (form field csrf, or header X-CSRF-Token) and no
// foreign Origin; enroll and unenroll the operator role. A Prometheus
// scraper reads /metrics without a session when portal.metrics_token_file
// (or metrics_token_env) holds a token it sends as "Authorization: Bearer
// TOKEN"; the token opens nothing else.
//
//	GET  /healthz                              {"status":"ok"} (503 while starting or when the Store fails)
//	GET  /metrics                              the orchestrator's and drivers' metrics (OpenTelemetry Prometheus exporter)
//	POST /api/login                            {"user","password"} -> {"user","role","csrf"} and the cookie
//	GET  /api/devices?q=&provider=&state=&sort=&desc=1
//	GET  /api/devices/{provider}/{id}          one device, with its access when enrolled
//	POST /api/devices/{provider}/{id}/enroll   {"user","password","profile"} -> 202 {"op","status","events"}
//	POST /api/devices/{provider}/{id}/unenroll {"user","password","force"}   -> 202 likewise
//	GET  /api/ops/{op}                         the operation's events and result
//	GET  /api/ops/{op}/events                  server-sent events: "step" per event, "done" with the result
//	GET  /api/events                           server-sent "devices" whenever the devices change
//	GET  /api/preflight, /api/netreq, /api/audit
//
// The portal pages (/devices, /devices/{provider}/{id}, /ops/{op},
// /preflight, /netreq, /audit) are rendered on the server with
// html/template; static/app.js only refreshes the Devices rows and
// appends an operation's steps as they arrive. Operations run on the
// server's context: closing the browser does not cancel them. The audit
// trail and the operations are kept in memory.
//
// # Exit status
//
// 0 on success; otherwise the number of the error's errs code
// (errs.Code): 2 NotFound, 3 AlreadyExists, 4 InvalidArgument (a usage or
// configuration mistake too), 5 FailedPrecondition (also a preflight with a
// failing row), 6 PermissionDenied, 7 Unauthenticated (a wrong guest
// password), 8 ResourceExhausted, 9 Unavailable, and so on; 1 for an error
// without a code.
//
// The program uses the library's public packages only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// env is what a run reads and writes; tests give their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// prompt reads a password without echo (nil: from the terminal).
	prompt func(label string) (string, error)
}

const usage = `usage: managedvm VERB [flags] [args]

verbs:
  check        check the configuration and print what it holds
  devices      list the indexed VMs            [-provider P] [-state S]
  show VM      one VM, with its access
  enroll VM    enroll a VM                     [-user U] [-password-file F] [-profile P] [-key K]
  unenroll VM  unenroll a VM                   [-user U] [-password-file F] [-force] [-key K]
  preflight    the providers' requirements     [-provider P]
  resume       finish or roll back open journals
  netreq       the network requirements
  serve        the portal and the JSON API

common flags: -config FILE ($MANAGEDVM_CONFIG; none: embedded defaults), -json, -v
VM is provider/id, or a VM's id or name. The exit status is the errs code's number.
`

// common are the flags of every verb.
type common struct {
	config  string
	json    bool
	verbose bool
}

func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(e.stderr, usage)
		if len(args) == 0 {
			return int(errs.InvalidArgument)
		}
		return 0
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("managedvm "+verb, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var c common
	fs.StringVar(&c.config, "config", e.getenv("MANAGEDVM_CONFIG"), "configuration `file` (none: embedded defaults)")
	fs.BoolVar(&c.json, "json", false, "print JSON")
	fs.BoolVar(&c.verbose, "v", false, "log at debug level to stderr")
	v := verbs[verb]
	if v == nil {
		fmt.Fprintf(e.stderr, "managedvm: unknown verb %s\n\n%s", quote(verb), usage)
		return int(errs.InvalidArgument)
	}
	fl := v.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return int(errs.InvalidArgument)
	}
	if fs.NArg() != v.args {
		fmt.Fprintf(e.stderr, "managedvm %s: takes %d argument(s), got %d\n", verb, v.args, fs.NArg())
		fs.Usage()
		return int(errs.InvalidArgument)
	}
	cfg, err := LoadConfig(c.config)
	if err != nil {
		fmt.Fprintln(e.stderr, "managedvm: bad configuration:")
		var many interface{ Unwrap() []error }
		if errors.As(err, &many) {
			for _, one := range many.Unwrap() {
				fmt.Fprintln(e.stderr, "  "+one.Error())
			}
		} else {
			fmt.Fprintln(e.stderr, "  "+err.Error())
		}
		return int(errs.InvalidArgument)
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	err = v.run(ctx, &call{env: e, common: c, cfg: cfg, log: log, args: fs.Args(), flags: fl})
	if err != nil {
		fmt.Fprintf(e.stderr, "managedvm %s: %v\n", verb, err)
		return exitCode(err)
	}
	return 0
}

// exitCode is the errs code's number; 1 for an error without one.
func exitCode(err error) int {
	switch c := errs.CodeOf(err); c {
	case errs.OK:
		return 0
	default:
		return int(c)
	}
}

// call is one verb's run.
type call struct {
	*env
	common
	cfg   *Config
	log   *slog.Logger
	args  []string
	flags *verbFlags
}

// verbFlags are the flags a verb may have.
type verbFlags struct {
	provider, state, user, passwordFile, profile, key string
	force                                             bool
}

type verb struct {
	args  int
	flags func(fs *flag.FlagSet) *verbFlags
	run   func(ctx context.Context, c *call) error
}

func noFlags(*flag.FlagSet) *verbFlags { return &verbFlags{} }

func providerFlag(fs *flag.FlagSet) *verbFlags {
	f := &verbFlags{}
	fs.StringVar(&f.provider, "provider", "", "only this provider")
	return f
}

func credentialFlags(fs *flag.FlagSet, f *verbFlags) {
	fs.StringVar(&f.provider, "provider", "", "the VM's provider (when its name is not unique)")
	fs.StringVar(&f.user, "user", "root", "the guest OS user")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the guest password from this `file`'s first line (- for stdin); default: a prompt")
	fs.StringVar(&f.key, "key", "", "the request's idempotency key (default: a fresh one)")
}

var verbs map[string]*verb

func init() {
	verbs = map[string]*verb{
		"check": {flags: noFlags, run: cmdCheck},
		"devices": {flags: func(fs *flag.FlagSet) *verbFlags {
			f := providerFlag(fs)
			fs.StringVar(&f.state, "state", "", "only this enrollment state (available, enrolling, enrolled, unenrolling, failed)")
			return f
		}, run: cmdDevices},
		"show": {args: 1, flags: providerFlag, run: cmdShow},
		"enroll": {args: 1, flags: func(fs *flag.FlagSet) *verbFlags {
			f := &verbFlags{}
			credentialFlags(fs, f)
			fs.StringVar(&f.profile, "profile", "", "the service profile (default: policy)")
			return f
		}, run: cmdEnroll},
		"unenroll": {args: 1, flags: func(fs *flag.FlagSet) *verbFlags {
			f := &verbFlags{}
			credentialFlags(fs, f)
			fs.BoolVar(&f.force, "force", false, "skip the guest (no password asked)")
			return f
		}, run: cmdUnenroll},
		"preflight": {flags: providerFlag, run: cmdPreflight},
		"resume":    {flags: noFlags, run: cmdResume},
		"netreq":    {flags: noFlags, run: cmdNetreq},
		"serve":     {flags: noFlags, run: cmdServe},
	}
}

// build starts the configured stack for one verb.
func (c *call) build(ctx context.Context, obs enroll.Observer) (*Stack, error) {
	return Build(ctx, c.cfg, BuildOptions{Logger: c.log, Observer: obs})
}

func (c *call) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdCheck(ctx context.Context, c *call) error {
	type summary struct {
		Listen    string   `json:"listen"`
		TLS       bool     `json:"tls"`
		Store     string   `json:"store"`
		CMDB      string   `json:"cmdb"`
		IPAM      string   `json:"ipam"`
		Firewall  string   `json:"firewall"`
		Providers []string `json:"providers"`
		Pools     []string `json:"pools"`
		Profiles  []string `json:"profiles"`
		LDAP      string   `json:"ldap,omitempty"`
		DemoLogin bool     `json:"demo_login"`
	}
	s := summary{Listen: c.cfg.Listen, TLS: c.cfg.TLS.CertFile != "", Store: c.cfg.Store.Driver, CMDB: c.cfg.CMDB.Driver,
		IPAM: c.cfg.IPAM.Driver, Firewall: c.cfg.Firewall.Driver, DemoLogin: c.cfg.Portal.DemoLogin, Profiles: []string{"(default)"}}
	for _, p := range c.cfg.Providers {
		s.Providers = append(s.Providers, p.Name+" ("+p.Type+")")
	}
	for _, p := range c.cfg.IPAM.Pools {
		s.Pools = append(s.Pools, p.Name+" "+p.Prefix)
	}
	s.Profiles = append(s.Profiles, sortedKeys(c.cfg.Profiles)...)
	if c.cfg.LDAP != nil {
		s.LDAP = c.cfg.LDAP.URL
	}
	if c.json {
		return c.printJSON(s)
	}
	t := newTable(c.stdout, "KEY", "VALUE")
	t.row("listen", s.Listen+map[bool]string{true: " (TLS)", false: " (plain HTTP, loopback only)"}[s.TLS])
	t.row("store", s.Store)
	t.row("cmdb", s.CMDB)
	t.row("ipam", s.IPAM)
	t.row("firewall", s.Firewall)
	t.row("providers", strings.Join(s.Providers, ", "))
	t.row("pools", strings.Join(s.Pools, ", "))
	t.row("profiles", strings.Join(s.Profiles, ", "))
	t.row("ldap", orDash(s.LDAP))
	t.row("demo login", fmt.Sprint(s.DemoLogin))
	return t.flush()
}

func cmdDevices(ctx context.Context, c *call) error {
	f := cmdb.Filter{Provider: c.flags.provider}
	if c.flags.state != "" {
		st := cmdb.State(c.flags.state)
		if !st.Valid() {
			return errs.Errorf(errs.InvalidArgument, "", "-state %s is not a state", quote(c.flags.state))
		}
		f.States = []cmdb.State{st}
	}
	s, err := c.build(ctx, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if f.Provider != "" && s.Providers[f.Provider] == nil {
		return errs.Errorf(errs.NotFound, "", "no provider %s in the configuration", quote(f.Provider))
	}
	if err := s.Sync(ctx); err != nil {
		return err
	}
	devs, err := s.ListDevices(ctx, f)
	if err != nil {
		return err
	}
	if c.json {
		if devs == nil {
			devs = []Device{}
		}
		return c.printJSON(devs)
	}
	return writeDevices(c.stdout, devs)
}

func writeDevices(w io.Writer, devs []Device) error {
	t := newTable(w, "PROVIDER", "NAME", "ID", "POWER", "OS", "LOCAL IP", "STATE", "PUBLIC IP", "CHANGED")
	for _, d := range devs {
		t.row(d.Provider, d.Name, d.ID, orDash(d.Power), orDash(d.OS), orDash(d.LocalIP), d.State, orDash(d.PublicIP), d.Changed.Format("2006-01-02 15:04:05Z"))
	}
	return t.flush()
}

func cmdShow(ctx context.Context, c *call) error {
	s, err := c.build(ctx, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Sync(ctx); err != nil {
		return err
	}
	d, err := s.FindDevice(ctx, c.flags.provider, c.args[0])
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(d)
	}
	return writeDevice(c.stdout, d)
}

func writeDevice(w io.Writer, d Device) error {
	t := newTable(w)
	t.row("provider:", d.Provider)
	t.row("id:", d.ID)
	t.row("name:", d.Name)
	t.row("zone:", orDash(d.Zone))
	t.row("power:", orDash(d.Power))
	t.row("os:", orDash(d.OS))
	t.row("local ip:", orDash(d.LocalIP))
	t.row("state:", d.State)
	if d.State == string(cmdb.Failed) {
		t.row("failed step:", orDash(d.FailedStep))
		t.row("reason:", orDash(d.Reason))
	}
	t.row("public ip:", orDash(d.PublicIP))
	t.row("ports:", orDash(strings.Join(d.Ports, ", ")))
	if d.Access != nil {
		for _, ep := range d.Access.Endpoints {
			t.row("access:", ep.Protocol+" "+ep.Address)
		}
		t.row("allowed from:", strings.Join(d.Access.Sources, ", "))
	}
	t.row("changed:", d.Changed.Format("2006-01-02 15:04:05Z"))
	return t.flush()
}

// password reads the guest password: from -password-file, else from a
// prompt on the terminal. Never from the command line.
func (c *call) password() (string, error) {
	switch f := c.flags.passwordFile; f {
	case "":
		prompt := c.prompt
		if prompt == nil {
			prompt = terminalPrompt
		}
		return prompt(fmt.Sprintf("password of %s: ", c.flags.user))
	case "-":
		return firstLine(c.stdin)
	default:
		fh, err := os.Open(f)
		if err != nil {
			return "", errs.Wrap(errs.InvalidArgument, "", err)
		}
		defer fh.Close()
		return firstLine(fh)
	}
}

func firstLine(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", errs.New(errs.InvalidArgument, "", "the password is empty")
	}
	return line, nil
}

// progress prints the orchestrator's events as they happen (stderr).
func progress(w io.Writer) enroll.Observer {
	return enroll.ObserverFunc(func(e enroll.Event) {
		if line := eventLine(e); line != "" {
			fmt.Fprintln(w, line)
		}
	})
}

// eventLine is one event as a progress line (empty: not shown).
func eventLine(e enroll.Event) string {
	var line string
	switch e.Kind {
	case enroll.StepSucceeded:
		line = "  ok   " + e.Step
	case enroll.StepFailed:
		line = "  FAIL " + e.Step
	case enroll.StepRetrying:
		line = "  retry " + e.Step
	case enroll.CompensationDone:
		line = "  undo " + e.Step
	case enroll.CompensationFailed:
		line = "  UNDO FAILED " + e.Step
	case enroll.RequirementsReported:
		line = "  requirements"
	default:
		return ""
	}
	if e.Message != "" {
		line += ": " + e.Message
	}
	return line
}

func cmdEnroll(ctx context.Context, c *call) error {
	s, err := c.build(ctx, progress(c.stderr))
	if err != nil {
		return err
	}
	defer s.Close()
	if c.flags.profile != "" && s.Profiles[c.flags.profile].Pool == "" && len(s.Profiles[c.flags.profile].PoolByZone) == 0 {
		return errs.Errorf(errs.InvalidArgument, "", "no profile %s in the configuration", quote(c.flags.profile))
	}
	if err := s.Sync(ctx); err != nil {
		return err
	}
	d, err := s.FindDevice(ctx, c.flags.provider, c.args[0])
	if err != nil {
		return err
	}
	pw, err := c.password()
	if err != nil {
		return err
	}
	res, err := s.Orch.Enroll(ctx, enroll.Request{
		Key: c.flags.key, Provider: d.Provider, VMID: d.ID,
		Credentials: guest.Password(c.flags.user, pw), Profile: c.flags.profile,
	})
	return c.printResult(ctx, s, res, err)
}

func cmdUnenroll(ctx context.Context, c *call) error {
	s, err := c.build(ctx, progress(c.stderr))
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Sync(ctx); err != nil {
		return err
	}
	d, err := s.FindDevice(ctx, c.flags.provider, c.args[0])
	if err != nil {
		return err
	}
	req := enroll.UnenrollRequest{Key: c.flags.key, Provider: d.Provider, VMID: d.ID, Force: c.flags.force}
	if !c.flags.force {
		pw, err := c.password()
		if err != nil {
			return err
		}
		req.Credentials = guest.Password(c.flags.user, pw)
	}
	res, err := s.Orch.Unenroll(ctx, req)
	return c.printResult(ctx, s, res, err)
}

// resultJSON is an enroll.Result for -json.
type resultJSON struct {
	Journal    string   `json:"journal,omitempty"`
	VM         string   `json:"vm"`
	Op         string   `json:"op,omitempty"`
	State      string   `json:"state"`
	PublicIP   string   `json:"public_ip,omitempty"`
	LocalIP    string   `json:"local_ip,omitempty"`
	Ports      []string `json:"ports,omitempty"`
	FailedStep string   `json:"failed_step,omitempty"`
	Code       string   `json:"code"`
	Error      string   `json:"error,omitempty"`
}

func jsonOfResult(res enroll.Result, err error) resultJSON {
	r := resultJSON{Journal: res.Journal, VM: res.VM.String(), Op: string(res.Op), State: string(res.State),
		FailedStep: res.FailedStep, Code: errs.CodeOf(err).String()}
	if res.PublicIP.IsValid() {
		r.PublicIP = res.PublicIP.String()
	}
	if res.LocalIP.IsValid() {
		r.LocalIP = res.LocalIP.String()
	}
	for _, p := range res.Ports {
		r.Ports = append(r.Ports, p.String())
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func (c *call) printResult(ctx context.Context, s *Stack, res enroll.Result, err error) error {
	if c.json {
		if perr := c.printJSON(jsonOfResult(res, err)); perr != nil {
			return perr
		}
		return err
	}
	if err != nil {
		if res.FailedStep != "" {
			return fmt.Errorf("failed at step %s, rolled back: %w", res.FailedStep, err)
		}
		return err
	}
	if res.Journal == "" {
		fmt.Fprintln(c.stdout, "nothing to do")
		return nil
	}
	d, derr := s.FindDevice(ctx, "", res.VM.String())
	if derr != nil {
		return derr
	}
	return writeDevice(c.stdout, d)
}

// preflightRow is one requirement row of one provider.
type preflightRow struct {
	Provider string `json:"provider"`
	report.Check
}

func cmdPreflight(ctx context.Context, c *call) error {
	s, err := c.build(ctx, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	names := s.ProviderNames()
	if c.flags.provider != "" {
		if s.Providers[c.flags.provider] == nil {
			return errs.Errorf(errs.NotFound, "", "no provider %s in the configuration", quote(c.flags.provider))
		}
		names = []string{c.flags.provider}
	}
	rows := []preflightRow{}
	failed := 0
	for _, name := range names {
		rep, err := s.Providers[name].Preflight(ctx)
		if err != nil {
			return fmt.Errorf("preflight of %s: %w", name, err)
		}
		for _, ch := range rep.Checks {
			rows = append(rows, preflightRow{Provider: name, Check: ch})
		}
		failed += len(rep.Failures())
	}
	if c.json {
		err = c.printJSON(rows)
	} else {
		err = writePreflight(c.stdout, rows)
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return errs.Errorf(errs.FailedPrecondition, "", "%d requirement(s) failed", failed)
	}
	return nil
}

func writePreflight(w io.Writer, rows []preflightRow) error {
	t := newTable(w, "PROVIDER", "STATUS", "CHECK", "SUBJECT", "DETAIL", "FIX")
	for _, r := range rows {
		t.row(r.Provider, string(r.Status), r.Name, orDash(r.Subject), orDash(r.Detail), orDash(r.Fix))
	}
	return t.flush()
}

func cmdResume(ctx context.Context, c *call) error {
	s, err := c.build(ctx, progress(c.stderr))
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := s.Orch.Resume(ctx)
	if err != nil {
		return err
	}
	type out struct {
		Resumed []resultJSON `json:"resumed"`
		Skipped int          `json:"skipped"`
	}
	o := out{Resumed: []resultJSON{}, Skipped: rep.Skipped}
	for _, r := range rep.Resumed {
		o.Resumed = append(o.Resumed, jsonOfResult(r, r.Err))
	}
	if c.json {
		return c.printJSON(o)
	}
	t := newTable(c.stdout, "JOURNAL", "OP", "VM", "STATE", "CODE", "FAILED STEP")
	for _, r := range o.Resumed {
		t.row(r.Journal, r.Op, r.VM, r.State, r.Code, orDash(r.FailedStep))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%d resumed, %d skipped (held by a live run)\n", len(o.Resumed), o.Skipped)
	return nil
}

func cmdNetreq(ctx context.Context, c *call) error {
	s, err := c.build(ctx, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	m, err := s.NetworkRequirements()
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(m)
	}
	return m.WriteTable(c.stdout)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
