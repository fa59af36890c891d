package vspheresim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"strings"

	"github.com/managedvm/managedvm/guest"
)

// GuestVM names the VM and the account a guest program runs in.
type GuestVM struct {
	// Name is the VM's name, UUID its instance UUID (the ID the vsphere
	// driver gives the VM).
	Name, UUID string
	// User is the guest account the program was started as.
	User string
}

// GuestHandler answers one command a program started in a guest runs
// (see Options.GuestHandler), in place of running it. It has the shape of
// memguest.Handler plus the VM: cmd holds Args (or Script, for "sh -c
// SCRIPT"), Env, Dir and Stdin as the command line set them; cmd.Stdout
// and cmd.Stderr are never nil and lead where the command line redirected
// them (nowhere by default). What the handler writes there comes first,
// then the Result's Stdout and Stderr; the Result's ExitCode is the
// command's exit status. An error ends the command with status 255 and the
// error's text on its standard error. ctx is done when the program is
// terminated (TerminateProcessInGuest) or the Sim closed; the program is
// then reported ended with status 137 at once, whether or not the handler
// has returned.
//
// Handlers run on the goroutine that runs the program, one program at a
// time per goroutine; programs in one or several guests run in parallel,
// so a handler must be safe for concurrent use.
type GuestHandler func(ctx context.Context, vm GuestVM, cmd guest.Command) (guest.Result, error)

// ExecutorHandler returns a GuestHandler that runs each command on the
// executor pick returns for its VM: typically a memguest executor, whose
// tables (HandleArgs, HandleScript, ...) decide each command's output and
// exit status, and whose Commands record what ran. A nil executor makes the
// command "not found" (status 127). A non-zero exit (*guest.ExitError) is
// the command's status; another error is the handler's error.
func ExecutorHandler(pick func(vm GuestVM) *guest.Executor) GuestHandler {
	return func(ctx context.Context, vm GuestVM, cmd guest.Command) (guest.Result, error) {
		ex := pick(vm)
		if ex == nil {
			name := "sh"
			if len(cmd.Args) > 0 {
				name = cmd.Args[0]
			}
			fmt.Fprintf(cmd.Stderr, "sh: %s: not found\n", name)
			return guest.Result{ExitCode: 127}, nil
		}
		// The executor streams the output into cmd.Stdout and
		// cmd.Stderr; its Result repeats it, so only the status is kept.
		res, err := ex.Run(ctx, cmd)
		var exit *guest.ExitError
		if err != nil && !errors.As(err, &exit) {
			return guest.Result{}, err
		}
		return guest.Result{ExitCode: res.ExitCode}, nil
	}
}

// shellRun is the state of one scripted program: what its command line
// set so far (environment, directory, redirections).
type shellRun struct {
	h      GuestHandler
	vm     GuestVM
	env    map[string]string
	dir    string
	stdin  string // a path; "" for none
	stdout io.Writer
	stderr io.Writer
	files  []*os.File
}

func newShellRun(h GuestHandler, vm GuestVM, env []string, dir string) *shellRun {
	s := &shellRun{h: h, vm: vm, env: map[string]string{}, dir: dir, stdout: io.Discard, stderr: io.Discard}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			s.env[k] = v
		}
	}
	return s
}

func (s *shellRun) close() {
	for _, f := range s.files {
		_ = f.Close()
	}
	s.files = nil
}

// run runs the command line a program was started with and returns its
// exit status.
func (s *shellRun) run(ctx context.Context, line string) int {
	status, _ := s.runLine(ctx, line, 0)
	return status
}

// runLine runs one command line; done reports that an exec ended it (and
// with it every enclosing line).
func (s *shellRun) runLine(ctx context.Context, line string, depth int) (status int, done bool) {
	cmds, err := parse(line)
	if err != nil {
		fmt.Fprintf(s.stderr, "vspheresim: sh: %v in %s\n", err, shortLine(line))
		return 2, true
	}
	run := true
	for _, c := range cmds {
		if ctx.Err() != nil {
			return 137, true
		}
		if run {
			status, done = s.simple(ctx, c, depth)
			if done {
				return status, true
			}
		}
		run = c.next != "&&" || status == 0
	}
	return status, false
}

func shortLine(line string) string {
	if len(line) > 80 {
		return fmt.Sprintf("%q…", line[:80])
	}
	return fmt.Sprintf("%q", line)
}

// simple runs one simple command.
func (s *shellRun) simple(ctx context.Context, c simple, depth int) (int, bool) {
	words := c.words
	final := false
	if len(words) > 0 && words[0] == "exec" {
		words, final = words[1:], true
	}
	if len(words) == 0 {
		// Assignments and redirections alone (or after exec) stay for
		// the rest of the line.
		for _, a := range c.assign {
			k, v, _ := strings.Cut(a, "=")
			s.env[k] = v
		}
		if err := s.redirect(c.redirs, &s.stdin, &s.stdout, &s.stderr); err != nil {
			fmt.Fprintf(s.stderr, "sh: %v\n", err)
			return 2, true
		}
		return 0, false
	}
	stdin, stdout, stderr := s.stdin, s.stdout, s.stderr
	mark := len(s.files)
	defer func() {
		for _, f := range s.files[mark:] {
			_ = f.Close()
		}
		s.files = s.files[:mark]
	}()
	if err := s.redirect(c.redirs, &stdin, &stdout, &stderr); err != nil {
		fmt.Fprintf(s.stderr, "sh: %v\n", err)
		return 2, final
	}
	env := maps.Clone(s.env)
	for _, a := range c.assign {
		k, v, _ := strings.Cut(a, "=")
		env[k] = v
	}
	switch {
	case words[0] == "cd" && len(words) == 2:
		s.dir = s.path(words[1])
		return 0, final
	case words[0] == "export":
		for _, w := range words[1:] {
			if k, v, ok := strings.Cut(w, "="); ok && isName(k) {
				s.env[k] = v
			} else if !isName(w) {
				fmt.Fprintf(stderr, "sh: export: %s: bad variable name\n", w)
				return 2, final
			}
		}
		return 0, final
	case isShell(words[0]) && depth == 0 && len(words) >= 3 && words[1] == "-c":
		// The program itself is a shell: read what it is asked to run.
		saved := s.env
		s.env = env
		status, done := s.runLine(ctx, words[2], depth+1)
		s.env = saved
		return status, done || final
	case isShell(words[0]) && depth == 0 && len(words) == 2 && !strings.HasPrefix(words[1], "-"):
		b, err := os.ReadFile(s.path(words[1]))
		if err != nil {
			fmt.Fprintf(stderr, "sh: cannot open %s\n", words[1])
			return 2, true
		}
		status, done := s.runLine(ctx, string(b), depth+1)
		return status, done || final
	}
	cmd := guest.Command{Dir: s.dir, Stdout: stdout, Stderr: stderr}
	if len(env) > 0 {
		cmd.Env = env
	}
	if isShell(words[0]) && len(words) == 3 && words[1] == "-c" {
		// sh -c SCRIPT is a Script; with positional arguments after it,
		// the words stay Args.
		cmd.Script = words[2]
	} else {
		cmd.Args = words
	}
	if stdin != "" && stdin != "/dev/null" {
		b, err := os.ReadFile(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "sh: cannot open %s\n", stdin)
			return 2, final
		}
		cmd.Stdin = bytes.NewReader(b)
	}
	res, err := s.h(ctx, s.vm, cmd)
	if ctx.Err() != nil {
		return 137, true
	}
	if err != nil {
		fmt.Fprintf(stderr, "vspheresim: %v\n", err)
		return 255, final
	}
	_, _ = stdout.Write(res.Stdout)
	_, _ = stderr.Write(res.Stderr)
	status := res.ExitCode
	if status < 0 || status > 255 {
		status = 255
	}
	return status, final
}

// path resolves p against the current directory.
func (s *shellRun) path(p string) string {
	if path.IsAbs(p) || s.dir == "" {
		return p
	}
	return path.Join(s.dir, p)
}

// redirect applies redirections to the given descriptors, opening the
// files it writes (they are closed with the command, or with the program
// for exec's).
func (s *shellRun) redirect(rs []redirect, stdin *string, stdout, stderr *io.Writer) error {
	for _, r := range rs {
		switch r.op {
		case "<":
			*stdin = s.path(r.file)
			continue
		case "2>&1":
			*stderr = *stdout
			continue
		}
		flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if strings.HasSuffix(r.op, ">>") {
			flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		var w io.Writer = io.Discard
		if r.file != "/dev/null" {
			f, err := os.OpenFile(s.path(r.file), flag, 0o644)
			if err != nil {
				return fmt.Errorf("cannot create %s", r.file)
			}
			s.files = append(s.files, f)
			w = f
		}
		if strings.HasPrefix(r.op, "2") {
			*stderr = w
		} else {
			*stdout = w
		}
	}
	return nil
}
