package tasks_test

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/tasks"
	"github.com/managedvm/managedvm/internal/testkit"
)

var seeds = []string{"", "ops", "a b", "it's", `"q"`, "$(reboot)", "`id`", "a;b", "x\ny", "'; rm -rf / #", `\`, "${IFS}", "\xff\xfe",
	"é’‘", "$env:PATH", "@(1)", "a'b’c‘d", "\r\n", "--", "-rf", "*", "MANAGEDVM-TASK:ok"}

// FuzzShScriptQuoting: the header of a Linux task script gives back, through
// a real sh, exactly the values it was built from, whatever they are.
func FuzzShScriptQuoting(f *testing.F) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		f.Skip("no sh")
	}
	for i, s := range seeds {
		f.Add(s, seeds[(i+1)%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.IndexByte(a, 0) >= 0 || strings.IndexByte(b, 0) >= 0 {
			return // no shell variable can hold a NUL; tasks refuse them
		}
		script := tasks.ShScript(true, `printf '%s\0' "$a" "$b"; exit 0`, [2]string{"a", a}, [2]string{"b", b})
		out, err := exec.Command(sh, "-c", script).Output()
		if err != nil {
			t.Fatalf("script failed: %v\n%s", err, script)
		}
		if want := a + "\x00" + b + "\x00"; string(out) != want {
			t.Fatalf("sh read back %q, want %q", out, want)
		}
	})
}

// splitBody checks that script is a header, then the prelude, a known
// body and the finish: the values never reach the part that runs.
func splitBody(t *testing.T, script string, prelude string, bodies []string, finish string) {
	t.Helper()
	i := strings.Index(script, prelude)
	if i < 0 {
		t.Fatalf("no prelude in\n%s", script)
	}
	rest := script[i+len(prelude):]
	for _, b := range bodies {
		if rest == b+finish {
			return
		}
	}
	t.Fatalf("the text after the header is not a constant task body:\n%s", rest)
}

// refusedBounded checks a refusal: InvalidArgument, and neither the
// message nor the task's description grows with the input or carries a
// control character.
func refusedBounded(t *testing.T, task tasks.Task, err error) {
	t.Helper()
	testkit.WantCode(t, "refused task", err, errs.InvalidArgument)
	testkit.Bounded(t, "refused task", err, 600)
	testkit.Bounded(t, "description", errors.New(task.Describe()), 600)
}

// FuzzTaskScripts: every task built from any input is either refused
// (InvalidArgument, with a bounded message) or a quoted header plus a
// constant body.
func FuzzTaskScripts(f *testing.F) {
	for i, s := range seeds {
		f.Add(s, seeds[(i+3)%len(seeds)], seeds[(i+7)%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		linux := []tasks.Task{
			tasks.User{Name: a, Shell: b, Groups: []string{c}, Home: c},
			tasks.UserAbsent{User: a},
			tasks.AuthorizedKey{User: a, Key: b},
			tasks.AuthorizedKeyAbsent{User: a, Key: b},
			tasks.SudoersDropIn{Name: a, Content: b},
			tasks.Package{Package: a},
			tasks.Service{Service: a},
			tasks.File{Path: a, Content: []byte(b), Owner: c},
			tasks.FileAbsent{Path: a},
			tasks.Hostname{Hostname: a},
			tasks.LineInFile{Path: a, Line: b, Match: c},
		}
		for _, task := range linux {
			for _, check := range []bool{false, true} {
				cmd, err := task.Command(guest.Linux, check)
				if err != nil {
					refusedBounded(t, task, err)
					continue
				}
				splitBody(t, cmd.Script, tasks.ShPrelude, tasks.LinuxBodies, "\nfinish\n")
			}
		}
		windows := []tasks.Task{
			tasks.WinUser{Name: a, Description: b, Groups: []string{c}},
			tasks.WinUserAbsent{User: a},
			tasks.WinGroupMember{Group: a, Member: b},
			tasks.WinService{Service: a, StartupType: b},
			tasks.WinFile{Path: a, Content: []byte(b)},
			tasks.RegistryValue{Path: a, Name: b, Value: c},
		}
		for _, task := range windows {
			cmd, err := task.Command(guest.Windows, false)
			if err != nil {
				refusedBounded(t, task, err)
				continue
			}
			splitBody(t, cmd.Script, tasks.PsPrelude, tasks.WindowsBodies, tasks.PsFinish)
			checkPsHeader(t, cmd.Script[:strings.Index(cmd.Script, tasks.PsPrelude)])
		}
	})
}

// FuzzPsScriptQuoting: each header line of a Windows task script is
// `$name = '<literal>'` and the literal, read the way PowerShell reads
// single-quoted strings, is exactly the value.
func FuzzPsScriptQuoting(f *testing.F) {
	for i, s := range seeds {
		f.Add(s, seeds[(i+1)%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		script := tasks.PsScript(false, "", [2]string{"a", a}, [2]string{"b", b})
		header := script[:strings.Index(script, tasks.PsPrelude)]
		vals := checkPsHeader(t, header)
		if len(vals) != 3 || vals["a"] != a || vals["b"] != b {
			t.Fatalf("header %q read back as %q, want a=%q b=%q", header, vals, a, b)
		}
	})
}

// psQuote reports whether r is a character PowerShell takes for a single
// quote.
func psQuote(r rune) bool {
	switch r {
	case '\'', '\u2018', '\u2019', '\u201a', '\u201b':
		return true
	}
	return false
}

// checkPsHeader parses a header as PowerShell would and returns the
// variables it assigns. Anything else (a statement after a literal, an
// unterminated literal) fails the test.
func checkPsHeader(t *testing.T, header string) map[string]string {
	t.Helper()
	vals := map[string]string{}
	rest := header
	first := true
	for rest != "" {
		if first {
			first = false
			line, after, _ := strings.Cut(rest, "\n")
			if line != "$MvmCheck = $true" && line != "$MvmCheck = $false" {
				t.Fatalf("first header line %q", line)
			}
			vals["MvmCheck"] = line
			rest = after
			continue
		}
		eq := strings.Index(rest, " = '")
		if !strings.HasPrefix(rest, "$") || eq < 0 {
			t.Fatalf("header line does not assign a literal: %q", rest)
		}
		name := rest[1:eq]
		rest = rest[eq+3:] // at the opening quote
		var val bytes.Buffer
		i := 1 // after the opening quote
		for {
			if i >= len(rest) {
				t.Fatalf("unterminated literal for $%s", name)
			}
			r, size := utf8.DecodeRuneInString(rest[i:])
			if r == utf8.RuneError && size <= 1 {
				val.WriteByte(rest[i])
				i++
				continue
			}
			if psQuote(r) {
				r2, size2 := utf8.DecodeRuneInString(rest[i+size:])
				if i+size < len(rest) && psQuote(r2) {
					val.WriteString(rest[i : i+size]) // doubled: one literal quote
					i += size + size2
					continue
				}
				i += size
				break
			}
			val.WriteString(rest[i : i+size])
			i += size
		}
		if !strings.HasPrefix(rest[i:], "\n") {
			t.Fatalf("text after the literal of $%s: %q", name, rest[i:])
		}
		vals[name] = val.String()
		rest = rest[i+1:]
	}
	return vals
}
