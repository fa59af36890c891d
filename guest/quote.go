package guest

import (
	"encoding/base64"
	"sort"
	"strings"
	"unicode/utf16"
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
func ShellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// ShellCommandLine builds the sh command line for cmd: environment
// assignments, a cd to Dir, then the quoted Args or the Script run by
// "sh -c". Stdin, streaming and Sudo are the executor's business.
func ShellCommandLine(cmd Command) string {
	var b strings.Builder
	if cmd.Dir != "" {
		b.WriteString("cd ")
		b.WriteString(ShellQuote(cmd.Dir))
		b.WriteString(" && ")
	}
	if len(cmd.Env) > 0 {
		b.WriteString("env")
		for _, k := range sortedKeys(cmd.Env) {
			b.WriteByte(' ')
			b.WriteString(ShellQuote(k + "=" + cmd.Env[k]))
		}
		b.WriteByte(' ')
	}
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
	r := strings.NewReplacer("'", "''", "\u2018", "\u2018\u2018", "\u2019", "\u2019\u2019", "\u201a", "\u201a\u201a", "\u201b", "\u201b\u201b")
	return "'" + r.Replace(s) + "'"
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
