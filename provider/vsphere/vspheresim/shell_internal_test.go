package vspheresim

import (
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/managedvm/managedvm/guest"
)

// recorder is a GuestHandler that records commands and answers "ran NAME".
type recorder struct {
	cmds []guest.Command
	exit map[string]int
}

func (r *recorder) handle(_ context.Context, _ GuestVM, cmd guest.Command) (guest.Result, error) {
	if cmd.Stdin != nil {
		b, _ := io.ReadAll(cmd.Stdin)
		cmd.Stdin = bytes.NewReader(b)
		_, _ = cmd.Stdout.Write(b)
	}
	r.cmds = append(r.cmds, cmd)
	name := cmd.Script
	if len(cmd.Args) > 0 {
		name = cmd.Args[0]
	}
	return guest.Result{ExitCode: r.exit[name], Stdout: []byte("ran " + name + "\n")}, nil
}

func TestShellSubset(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte("input\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errf := filepath.Join(dir, "out"), filepath.Join(dir, "err")
	for _, tc := range []struct {
		name, line string
		exit       map[string]int
		status     int
		ran        []string // Args[0] or Script of each command the handler saw
		stdout     string
	}{
		{name: "redirectedExec", line: "/bin/sh -c 'exec <" + in + " >" + out + " 2>" + errf + "; exec id -u'", ran: []string{"id"}, stdout: "input\nran id\n"},
		{name: "andStopsOnFailure", line: "/bin/sh -c 'a && b; c >" + out + "'", exit: map[string]int{"a": 1}, ran: []string{"a", "c"}, stdout: "ran c\n"},
		{name: "execEndsTheLine", line: "/bin/sh -c 'exec a; b'", exit: map[string]int{"a": 4}, status: 4, ran: []string{"a"}},
		{name: "lastStatus", line: "/bin/sh -c 'a; b'", exit: map[string]int{"b": 5}, status: 5, ran: []string{"a", "b"}},
		{name: "script", line: `/bin/sh -c 'exec sh -c '\''echo "$HOME" | wc'\'''`, ran: []string{`echo "$HOME" | wc`}},
		{name: "shellWithArguments", line: `/bin/sh -c 'exec sh -c '\''for c in "$@"; do :; done'\'' sh useradd'`, ran: []string{"sh"}},
		{name: "stderrToStdout", line: "/bin/sh -c 'a >" + out + " 2>&1'", ran: []string{"a"}, stdout: "ran a\n"},
		{name: "append", line: "/bin/sh -c 'a >" + out + "; b >>" + out + "'", ran: []string{"a", "b"}, stdout: "ran a\nran b\n"},
		{name: "plainProgram", line: "/usr/bin/id -u", ran: []string{"/usr/bin/id"}},
		{name: "pipe", line: "/bin/sh -c 'a | b'", status: 2},
		{name: "expansion", line: "/bin/sh -c 'echo $HOME'", status: 2},
		{name: "glob", line: "/bin/sh -c 'ls *'", status: 2},
		{name: "background", line: "/bin/sh -c 'a &'", status: 2},
		{name: "unterminated", line: "/bin/sh -c 'a", status: 2},
		{name: "danglingAnd", line: "/bin/sh -c 'a &&'", status: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(out)
			r := &recorder{exit: tc.exit}
			sh := newShellRun(r.handle, GuestVM{}, nil, "")
			status := sh.run(context.Background(), tc.line)
			sh.close()
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			var ran []string
			for _, c := range r.cmds {
				if len(c.Args) > 0 {
					ran = append(ran, c.Args[0])
				} else {
					ran = append(ran, c.Script)
				}
			}
			if !slices.Equal(ran, tc.ran) {
				t.Errorf("ran %q, want %q", ran, tc.ran)
			}
			if tc.stdout != "" {
				b, _ := os.ReadFile(out)
				if string(b) != tc.stdout {
					t.Errorf("stdout file %q, want %q", b, tc.stdout)
				}
			}
		})
	}
}

// FuzzShellCommandLine: every command line guest.ShellCommandLine builds
// (what the vsphere driver sends) reaches the handler with the Args, Env
// and Dir it was built from.
func FuzzShellCommandLine(f *testing.F) {
	f.Add("id", "-u", "", "", "")
	f.Add("printf", "%s\n", "it's", "LANG", "/srv/a b")
	f.Add("echo", `"$HOME" `+"`x`", "*?[", "X_1", "rel/dir")
	f.Fuzz(func(t *testing.T, a0, a1, envVal, envKey, dir string) {
		if a0 == "" || !isName(envKey) && envKey != "" || strings.ContainsRune(a0+a1+envVal+dir, 0) ||
			!utf8.ValidString(a0+a1+envVal+dir) {
			t.Skip()
		}
		cmd := guest.Command{Args: []string{a0, a1}, Dir: dir}
		if envKey != "" {
			cmd.Env = map[string]string{envKey: envVal}
		}
		r := &recorder{}
		sh := newShellRun(r.handle, GuestVM{}, nil, "")
		status := sh.run(context.Background(), "/bin/sh -c "+guest.ShellQuote(guest.ShellCommandLine(cmd)))
		sh.close()
		if status != 0 || len(r.cmds) != 1 {
			t.Fatalf("status %d, %d commands for %q", status, len(r.cmds), guest.ShellCommandLine(cmd))
		}
		got := r.cmds[0]
		wantDir := dir
		if dir != "" && !strings.HasPrefix(dir, "/") {
			wantDir = "./" + dir
		}
		if !slices.Equal(got.Args, cmd.Args) || !maps.Equal(got.Env, cmd.Env) || got.Dir != wantDir {
			t.Fatalf("got %q env %v dir %q; want %q env %v dir %q", got.Args, got.Env, got.Dir, cmd.Args, cmd.Env, wantDir)
		}
	})
}
