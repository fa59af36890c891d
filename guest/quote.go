package guest

import (
	"encoding/base64"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ShellQuote quotes s for a POSIX shell so that the shell reads it back as
// exactly one word equal to s. Words made only of safe characters are
// returned unchanged.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		if !shellSafe(s[i]) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellSafe(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("@%+=:,./_-", c) >= 0
}

// ShellJoin quotes each argument with ShellQuote and joins them with spaces:
// the result is a POSIX sh command line that runs args exactly.
//
// The first word is also quoted when the shell would otherwise read it as
// a variable assignment ("A=b") or a reserved word ("if", "time"), so that
// it always names the program to run.
func ShellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = ShellQuote(a)
		if i == 0 && q[i] == a && (strings.IndexByte(a, '=') >= 0 || shellReserved(a)) {
			q[i] = "'" + a + "'"
		}
	}
	return strings.Join(q, " ")
}

// shellReserved reports whether s is a reserved word of POSIX sh or of a
// common sh (bash, ksh, zsh) that is made of safe characters.
func shellReserved(s string) bool {
	switch s {
	case "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then", "until", "while",
		"function", "select", "time", "coproc", "foreach", "repeat", "end", "nocorrect", "noglob":
		return true
	}
	return false
}

// ShellCommandLine builds the POSIX sh command line for cmd: a cd to Dir,
// exports of Env, then "exec" of the quoted Args, or of "sh -c" with the
// Script. Stdin, streaming and Sudo are the executor's business.
//
// Args run with exec, so the program is always the one found on PATH (or
// the path given), never a shell builtin or function of the same name: the
// same Args behave the same whichever sh the guest has (dash's builtin echo
// interprets backslashes, bash's does not; /bin/echo is the same on both).
// Use Script for shell builtins and syntax.
//
// cmd should be valid (see Command.Validate): Env names are written
// unquoted. An executor whose login shell may not be a POSIX sh runs the
// line as "sh -c " + ShellQuote(line).
func ShellCommandLine(cmd Command) string {
	var b strings.Builder
	if cmd.Dir != "" {
		dir := cmd.Dir
		if !strings.HasPrefix(dir, "/") {
			// "./" keeps a relative Dir from being read as an option
			// ("-x") or looked up in CDPATH (which prints to stdout).
			dir = "./" + dir
		}
		b.WriteString("cd ")
		b.WriteString(ShellQuote(dir))
		b.WriteString(" && ")
	}
	if len(cmd.Env) > 0 {
		b.WriteString("export")
		for _, k := range sortedKeys(cmd.Env) {
			b.WriteByte(' ')
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(ShellQuote(cmd.Env[k]))
		}
		b.WriteString(" && ")
	}
	b.WriteString("exec ")
	if len(cmd.Args) > 0 {
		b.WriteString(ShellJoin(cmd.Args))
	} else {
		b.WriteString("sh -c ")
		b.WriteString(ShellQuote(cmd.Script))
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// PowerShellQuote returns s as a PowerShell single-quoted string literal:
// nothing inside it is expanded. Use it to put values into scripts.
func PowerShellQuote(s string) string {
	// PowerShell treats the typographic single quotes as quotes too.
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i, r := range s {
		size := len(string(r))
		if r == utf8.RuneError {
			_, size = utf8.DecodeRuneInString(s[i:])
		}
		b.WriteString(s[i : i+size]) // the original bytes, even if not UTF-8
		switch r {
		case '\'', '\u2018', '\u2019', '\u201a', '\u201b':
			b.WriteString(s[i : i+size])
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// EncodePowerShell encodes script as PowerShell's -EncodedCommand wants it:
// base64 of the UTF-16LE bytes.
func EncodePowerShell(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i] = byte(c)
		b[2*i+1] = byte(c >> 8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodePowerShell reverses EncodePowerShell.
func DecodePowerShell(encoded string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", err
	}
	if len(b)%2 != 0 {
		return "", base64.CorruptInputError(len(b))
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u)), nil
}

// PowerShellCommandLine returns the command line that runs script with
// powershell.exe through -EncodedCommand, so no quoting of the script is
// ever needed.
func PowerShellCommandLine(script string) string {
	return "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + EncodePowerShell(script)
}

// PowerShellScript turns cmd into one PowerShell script: environment
// variables and the working directory are set first, then Args run with the
// call operator (each argument a quoted literal) or Script runs as is. The
// script exits with the command's exit code.
func PowerShellScript(cmd Command) string {
	var b strings.Builder
	b.WriteString("$ErrorActionPreference = 'Stop'\n")
	for _, k := range sortedKeys(cmd.Env) {
		b.WriteString("$env:" + k + " = " + PowerShellQuote(cmd.Env[k]) + "\n")
	}
	if cmd.Dir != "" {
		b.WriteString("Set-Location -LiteralPath " + PowerShellQuote(cmd.Dir) + "\n")
	}
	if len(cmd.Args) > 0 {
		b.WriteString("& " + PowerShellQuote(cmd.Args[0]))
		for _, a := range cmd.Args[1:] {
			b.WriteString(" " + PowerShellQuote(a))
		}
		b.WriteString("\nexit $LASTEXITCODE\n")
		return b.String()
	}
	b.WriteString(cmd.Script)
	b.WriteString("\n")
	return b.String()
}
