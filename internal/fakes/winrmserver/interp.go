package winrmserver

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// InterpreterOptions configure an Interpreter.
type InterpreterOptions struct {
	// Root is the host directory that stands for the guest's drives:
	// C:\x\y is Root/C/x/y. Empty means commands that touch files fail.
	Root string
	// Caption, Version, BuildNumber and Arch answer Win32_OperatingSystem
	// and $env:PROCESSOR_ARCHITECTURE; empty values get Windows Server 2022
	// defaults.
	Caption, Version, BuildNumber, Arch string
	// FreeBytes is the free space Get-PSDrive reports for every drive.
	FreeBytes int64
	// Commands are programs Get-Command finds besides the interpreter's
	// own cmdlets (e.g. "winget", "choco").
	Commands []string
}

// Interpreter runs a small subset of PowerShell for real: the statement
// forms that the guest conformance suite and managedvm's WinRM executor
// send (Write-Output, exit, [Console] streams, standard input, files,
// Test-Path, Get-ChildItem, New-Item, Set-Content, Get-Content,
// Remove-Item, Move-Item, Get-FileHash, Start-Sleep, Get-Process,
// Get-CimInstance Win32_OperatingSystem, if/else, variables and string
// concatenation), and "cmd.exe /c exit N". Anything else fails loudly
// (exit 1, "winrmserver: unsupported" on stderr) rather than pretending.
type Interpreter struct {
	opts InterpreterOptions
	mu   sync.Mutex // serialises file operations
}

// NewInterpreter returns an interpreter.
func NewInterpreter(opts InterpreterOptions) *Interpreter {
	if opts.Caption == "" {
		opts.Caption = "Microsoft Windows Server 2022 Datacenter"
	}
	if opts.Version == "" {
		opts.Version = "10.0.20348"
	}
	if opts.BuildNumber == "" {
		opts.BuildNumber = "20348"
	}
	if opts.Arch == "" {
		opts.Arch = "AMD64"
	}
	return &Interpreter{opts: opts}
}

// HostPath maps a guest path (C:\dir\file) to the host path standing for it.
func (in *Interpreter) HostPath(guestPath string) (string, error) {
	if in.opts.Root == "" {
		return "", errors.New("the interpreter has no Root")
	}
	if len(guestPath) < 3 || guestPath[1] != ':' || guestPath[2] != '\\' || !unicode.IsLetter(rune(guestPath[0])) {
		return "", psErrorf("not an absolute path: %s", guestPath)
	}
	rest := strings.ReplaceAll(guestPath[3:], `\`, "/")
	p := filepath.Join(in.opts.Root, strings.ToUpper(guestPath[:1]), filepath.FromSlash(rest))
	if !strings.HasPrefix(p, filepath.Join(in.opts.Root, strings.ToUpper(guestPath[:1]))) {
		return "", psErrorf("path escapes the drive: %s", guestPath)
	}
	return p, nil
}

// Handler runs r: PowerShell scripts through the interpreter, other
// command lines as cmd.exe would for "echo" and "exit".
func (in *Interpreter) Handler(ctx context.Context, r *Request) int {
	if !r.PowerShell {
		return in.runCmd(r)
	}
	st := &psState{in: in, ctx: ctx, r: r, vars: map[string]any{}, env: map[string]string{}, cwd: `C:\Users\fake`}
	code, err := st.block(r.Script)
	var ex exitSignal
	switch {
	case errors.As(err, &ex):
		return int(ex)
	case err != nil:
		// powershell.exe -EncodedCommand with redirected streams
		// serializes error records as CLIXML on stderr.
		fmt.Fprintf(r.Stderr, "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">%s</S></Objs>", clixmlEscape(err.Error()+"\r\n"))
		return 1
	}
	return code
}

// clixmlEscape escapes s for a CLIXML string: XML escapes, and _xHHHH_
// for control characters and for "_x" itself.
func clixmlEscape(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '_' && strings.HasPrefix(s[i:], "_x"):
			b.WriteString("_x005F_")
		case r < 0x20:
			fmt.Fprintf(&b, "_x%04X_", r)
		default:
			b.WriteString(xmlEscape(string(r)))
		}
	}
	return b.String()
}

func (in *Interpreter) runCmd(r *Request) int {
	line := strings.TrimSpace(r.CommandLine)
	lower := strings.ToLower(line)
	switch {
	case strings.HasPrefix(lower, "echo "):
		fmt.Fprintf(r.Stdout, "%s\r\n", line[5:])
		return 0
	case strings.HasPrefix(lower, "exit"):
		f := strings.Fields(line)
		for _, w := range f[1:] {
			if n, err := strconv.Atoi(w); err == nil {
				return n
			}
		}
		return 0
	}
	name := line
	if i := strings.IndexByte(line, ' '); i >= 0 {
		name = line[:i]
	}
	fmt.Fprintf(r.Stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", name)
	return 9009
}

type exitSignal int

func (e exitSignal) Error() string { return fmt.Sprintf("exit %d", int(e)) }

type psState struct {
	in       *Interpreter
	ctx      context.Context
	r        *Request
	vars     map[string]any
	env      map[string]string
	cwd      string
	lastExit any
	stdin    *bufio.Reader
}

func (st *psState) input() *bufio.Reader {
	if st.stdin == nil {
		st.stdin = bufio.NewReaderSize(st.r.Stdin, 64<<10)
	}
	return st.stdin
}

// block runs a sequence of statements.
func (st *psState) block(src string) (int, error) {
	for _, s := range splitStatements(src) {
		if err := st.ctx.Err(); err != nil {
			return 1, err
		}
		if err := st.statement(s); err != nil {
			return 1, err
		}
	}
	return 0, nil
}

// splitStatements splits at newlines and semicolons outside quotes,
// parentheses and braces, and drops comments.
func splitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	var quote rune
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	rs := []rune(src)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		if quoted(rs, &i, &quote, &cur) {
			continue
		}
		switch {
		case c == '#' && depth == 0:
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			flush()
		case c == '(' || c == '{':
			depth++
			cur.WriteRune(c)
		case c == ')' || c == '}':
			depth--
			cur.WriteRune(c)
		case (c == '\n' || c == ';') && depth == 0:
			flush()
		case c == '\r' && depth == 0:
		default:
			cur.WriteRune(c)
		}
	}
	flush()
	return out
}

// quoted copies rs[*i] to cur if it is inside a quoted string or opens
// one (with the character it escapes: a doubled single quote in single
// quotes, a backtick in double quotes), and reports whether it did.
func quoted(rs []rune, i *int, quote *rune, cur *strings.Builder) bool {
	c := rs[*i]
	switch {
	case *quote == '\'':
		cur.WriteRune(c)
		if c == '\'' {
			if *i+1 < len(rs) && rs[*i+1] == '\'' {
				cur.WriteRune(rs[*i+1])
				*i++
			} else {
				*quote = 0
			}
		}
	case *quote == '"':
		cur.WriteRune(c)
		if c == '`' && *i+1 < len(rs) {
			cur.WriteRune(rs[*i+1])
			*i++
		} else if c == '"' {
			*quote = 0
		}
	case c == '\'' || c == '"':
		*quote = c
		cur.WriteRune(c)
	default:
		return false
	}
	return true
}

// words splits a command statement into words outside quotes and
// parentheses.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	depth := 0
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		if quoted(rs, &i, &quote, &cur) {
			continue
		}
		switch {
		case c == '(' || c == '{' || c == '[':
			depth++
			cur.WriteRune(c)
		case c == ')' || c == '}' || c == ']':
			depth--
			cur.WriteRune(c)
		case (c == ' ' || c == '\t') && depth == 0:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

var (
	reAssign   = regexp.MustCompile(`(?s)^\$([A-Za-z_][A-Za-z0-9_]*) = (.*)$`)
	reEnvSet   = regexp.MustCompile(`(?s)^\$env:([A-Za-z_][A-Za-z0-9_]*) = (.*)$`)
	reConsole  = regexp.MustCompile(`^\[Console\]::(Out|Error)\.(WriteLine|Write|Flush)\((.*)\)$`)
	reExit     = regexp.MustCompile(`^exit(?: (.*))?$`)
	reFor      = regexp.MustCompile(`^for \(\$i = 0; \$i -lt (\d+); \$i\+\+\) \{ \[void\]\$sb\.Append\('((?:[^']|'')*)'\)\.Append\(\$i\.ToString\('D(\d+)'\)\)\.Append\("` + "`" + `n"\) \}$`)
	reCopyTo   = regexp.MustCompile(`^\$([a-z]+)\.CopyTo\(\$([a-z]+)\)$`)
	reFlush    = regexp.MustCompile(`^\$([a-z]+)\.Flush\(\)$`)
	reTryWhile = regexp.MustCompile(`^try \{ while \(\$null -ne \(\$l = \[Console\]::In\.ReadLine\(\)\)\) \{ \$b = \[Convert\]::FromBase64String\(\$l\); \$([a-z]+)\.Write\(\$b, 0, \$b\.Length\) \} \} finally \{ \$([a-z]+)\.Close\(\) \}$`)
)

func (st *psState) out(v any) {
	if v == nil {
		return
	}
	if list, ok := v.([]any); ok {
		for _, x := range list {
			st.out(x)
		}
		return
	}
	fmt.Fprintf(st.r.Stdout, "%s\r\n", toString(v))
}

// closing returns the index of the bracket that closes the one at s[i],
// skipping quoted strings, or -1.
func closing(s string, i int) int {
	open := s[i]
	var close byte = ')'
	if open == '{' {
		close = '}'
	}
	depth := 0
	var quote byte
	for j := i; j < len(s); j++ {
		c := s[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == open:
			depth++
		case c == close:
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// cutGroup reads "(...)" or "{...}" at the start of s (after spaces) and
// returns its inside and the rest.
func cutGroup(s string, open byte) (inside, rest string, ok bool) {
	s = strings.TrimLeft(s, " \t\r\n")
	if s == "" || s[0] != open {
		return "", "", false
	}
	j := closing(s, 0)
	if j < 0 {
		return "", "", false
	}
	return s[1:j], s[j+1:], true
}

// control runs if/elseif/else, try/catch/finally and foreach statements;
// handled is false for other statements.
func (st *psState) control(s string) (handled bool, err error) {
	switch {
	case strings.HasPrefix(s, "if ("), strings.HasPrefix(s, "if("):
		rest := s[2:]
		for {
			cond, r, ok := cutGroup(rest, '(')
			if !ok {
				return true, unsupported(s)
			}
			body, r, ok := cutGroup(r, '{')
			if !ok {
				return true, unsupported(s)
			}
			yes, err := st.cond(strings.TrimSpace(cond))
			if err != nil {
				return true, err
			}
			if yes {
				_, err := st.block(body)
				return true, err
			}
			r = strings.TrimLeft(r, " \t\r\n")
			switch {
			case strings.HasPrefix(r, "elseif"):
				rest = r[len("elseif"):]
			case strings.HasPrefix(r, "else"):
				body, _, ok := cutGroup(r[len("else"):], '{')
				if !ok {
					return true, unsupported(s)
				}
				_, err := st.block(body)
				return true, err
			case strings.TrimSpace(r) == "":
				return true, nil
			default:
				return true, unsupported(s)
			}
		}
	case strings.HasPrefix(s, "try {"):
		body, r, ok := cutGroup(s[3:], '{')
		if !ok {
			return true, unsupported(s)
		}
		r = strings.TrimLeft(r, " \t\r\n")
		var catchBody, finallyBody string
		if strings.HasPrefix(r, "catch") {
			if catchBody, r, ok = cutGroup(r[len("catch"):], '{'); !ok {
				return true, unsupported(s)
			}
			r = strings.TrimLeft(r, " \t\r\n")
		}
		if strings.HasPrefix(r, "finally") {
			if finallyBody, r, ok = cutGroup(r[len("finally"):], '{'); !ok {
				return true, unsupported(s)
			}
		}
		if strings.TrimSpace(r) != "" {
			return true, unsupported(s)
		}
		_, err := st.block(body)
		var ex exitSignal
		if err != nil && !errors.As(err, &ex) && st.ctx.Err() == nil {
			_, err = st.block(catchBody)
		}
		if finallyBody != "" {
			if _, ferr := st.block(finallyBody); ferr != nil && err == nil {
				err = ferr
			}
		}
		return true, err
	case strings.HasPrefix(s, "foreach ("):
		head, r, ok := cutGroup(s[len("foreach"):], '(')
		if !ok {
			return true, unsupported(s)
		}
		body, r, ok := cutGroup(r, '{')
		if !ok || strings.TrimSpace(r) != "" {
			return true, unsupported(s)
		}
		v, list, ok := strings.Cut(head, " in ")
		v = strings.TrimSpace(v)
		if !ok || !strings.HasPrefix(v, "$") {
			return true, unsupported(s)
		}
		items, err := st.list(strings.TrimSpace(list))
		if err != nil {
			return true, err
		}
		for _, it := range items {
			st.vars[strings.ToLower(v[1:])] = it
			if _, err := st.block(body); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	return false, nil
}

// list evaluates @(a, b, ...).
func (st *psState) list(s string) ([]any, error) {
	if !strings.HasPrefix(s, "@(") || !strings.HasSuffix(s, ")") {
		return nil, unsupported(s)
	}
	inner := strings.TrimSpace(s[2 : len(s)-1])
	if inner == "" {
		return nil, nil
	}
	var out []any
	for _, part := range splitTop(inner, ',') {
		v, err := st.eval(part)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// splitTop splits s at sep outside quotes and brackets.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(' || c == '{':
			depth++
		case c == ')' || c == '}':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func (st *psState) statement(s string) error {
	if m := reTryWhile.FindStringSubmatch(s); m == nil {
		if handled, err := st.control(s); handled {
			return err
		}
	}
	if m := reExit.FindStringSubmatch(s); m != nil {
		if strings.TrimSpace(m[1]) == "" {
			return exitSignal(0)
		}
		v, err := st.eval(m[1])
		if err != nil {
			return err
		}
		n, _ := toInt(v)
		return exitSignal(n)
	}
	if m := reEnvSet.FindStringSubmatch(s); m != nil {
		v, err := st.eval(m[2])
		if err != nil {
			return err
		}
		st.env[m[1]] = toString(v)
		return nil
	}
	if m := reAssign.FindStringSubmatch(s); m != nil {
		switch m[1] {
		case "ErrorActionPreference", "ProgressPreference":
			return nil
		}
		v, err := st.value(m[2])
		if err != nil {
			return err
		}
		if m[1] != "null" {
			st.vars[strings.ToLower(m[1])] = v
		}
		return nil
	}
	if m := reConsole.FindStringSubmatch(s); m != nil {
		w := st.r.Stdout
		if m[1] == "Error" {
			w = st.r.Stderr
		}
		if m[2] == "Flush" {
			return nil
		}
		v, err := st.eval(m[3])
		if err != nil {
			return err
		}
		text := toString(v)
		if m[2] == "WriteLine" {
			text += "\r\n"
		}
		_, err = io.WriteString(w, text)
		return err
	}
	if m := reFor.FindStringSubmatch(s); m != nil {
		sb, ok := st.vars["sb"].(*strings.Builder)
		if !ok {
			return errors.New("$sb is not a StringBuilder")
		}
		n, _ := strconv.Atoi(m[1])
		width, _ := strconv.Atoi(m[3])
		prefix := strings.ReplaceAll(m[2], "''", "'")
		for i := range n {
			fmt.Fprintf(sb, "%s%0*d\n", prefix, width, i)
		}
		return nil
	}
	if m := reCopyTo.FindStringSubmatch(s); m != nil {
		if st.vars[m[1]] != stdinStream || st.vars[m[2]] != stdoutStream {
			return unsupported(s)
		}
		_, err := io.Copy(st.r.Stdout, st.input())
		return err
	}
	if m := reFlush.FindStringSubmatch(s); m != nil {
		return nil
	}
	if m := reTryWhile.FindStringSubmatch(s); m != nil {
		f, ok := st.vars[m[1]].(*os.File)
		if !ok || m[1] != m[2] {
			return unsupported(s)
		}
		defer f.Close()
		in := st.input()
		for {
			line, err := in.ReadString('\n')
			line = strings.TrimRight(line, "\r\n")
			if line != "" {
				b, derr := base64.StdEncoding.DecodeString(line)
				if derr != nil {
					return psErrorf("Exception calling \"FromBase64String\": %v", derr)
				}
				if _, werr := f.Write(b); werr != nil {
					return werr
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	// A bare expression outputs its value.
	if s[0] == '"' || s[0] == '\'' || s[0] == '$' || s[0] == '(' || s[0] == '[' {
		v, err := st.value(s)
		if err != nil {
			return err
		}
		st.out(v)
		return nil
	}
	v, err := st.invokeStatement(s)
	if err != nil {
		return err
	}
	st.out(v)
	return nil
}

func unsupported(s string) error {
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return psErrorf("winrmserver: unsupported PowerShell statement: %s", s)
}

type marker string

const (
	stdinStream  marker = "stdin"
	stdoutStream marker = "stdout"
)

type osInfo struct{ caption, version, build string }

// value evaluates the right-hand side of an assignment: an expression or
// a command.
func (st *psState) value(s string) (any, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "[Console]::OpenStandardInput()":
		return stdinStream, nil
	case "[Console]::OpenStandardOutput()":
		return stdoutStream, nil
	case "[Console]::In.ReadLine()":
		line, err := st.input().ReadString('\n')
		if err == io.EOF && line == "" {
			return nil, nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return strings.TrimRight(line, "\r\n"), nil
	case "[Text.StringBuilder]::new()":
		return &strings.Builder{}, nil
	case "Get-CimInstance -ClassName Win32_OperatingSystem":
		o := st.in.opts
		return &osInfo{o.Caption, o.Version, o.BuildNumber}, nil
	}
	if m := regexp.MustCompile(`^\[IO\.File\]::Open\((.*), 'CreateNew', 'Write'\)$`).FindStringSubmatch(s); m != nil {
		p, err := st.pathArg(m[1])
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, psErrorf("Exception calling \"Open\" with \"3\" argument(s): %q", errText(err))
		}
		return f, nil
	}
	if m := regexp.MustCompile(`^\(Get-FileHash -LiteralPath (.*) -Algorithm SHA256\)\.Hash$`).FindStringSubmatch(s); m != nil {
		p, err := st.pathArg(m[1])
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, psErrorf("Get-FileHash: %s", errText(err))
		}
		sum := sha256.Sum256(b)
		return strings.ToUpper(hex.EncodeToString(sum[:])), nil
	}
	if s[0] == '"' || s[0] == '\'' || s[0] == '$' || s[0] == '(' || (s[0] >= '0' && s[0] <= '9') || strings.HasPrefix(s, "[Convert]::") {
		return st.eval(s)
	}
	return st.invokeStatement(s)
}

func errText(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "Could not find a part of the path."
	case errors.Is(err, os.ErrExist):
		return "The file exists."
	}
	return err.Error()
}

func (st *psState) pathArg(expr string) (string, error) {
	v, err := st.eval(expr)
	if err != nil {
		return "", err
	}
	return st.hostPath(toString(v))
}

// hostPath resolves a guest path, relative ones against the current
// location.
func (st *psState) hostPath(p string) (string, error) {
	if !(len(p) >= 3 && p[1] == ':' && p[2] == '\\') {
		p = strings.TrimRight(st.cwd, `\`) + `\` + p
	}
	return st.in.HostPath(p)
}

func (st *psState) cond(c string) (bool, error) {
	if strings.HasPrefix(c, "-not ") {
		inner, rest, ok := cutGroup(c[len("-not "):], '(')
		if !ok || strings.TrimSpace(rest) != "" {
			return false, unsupported("if (" + c + ")")
		}
		v, err := st.cond(strings.TrimSpace(inner))
		return !v, err
	}
	if strings.HasPrefix(c, "Test-Path ") || strings.HasPrefix(c, "Get-Process ") || strings.HasPrefix(c, "Get-Command ") {
		v, err := st.invokeStatement(c)
		if err != nil {
			return false, err
		}
		return truthy(v), nil
	}
	if l, r, ok := strings.Cut(c, " -ne "); ok {
		a, err := st.eval(l)
		if err != nil {
			return false, err
		}
		b, err := st.eval(r)
		if err != nil {
			return false, err
		}
		return !strings.EqualFold(toString(a), toString(b)), nil
	}
	return false, unsupported("if (" + c + ")")
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case int:
		return x != 0
	}
	return true
}

// ---- expressions ----

// eval evaluates a term ('+' term)*.
func (st *psState) eval(s string) (any, error) {
	p := &exprParser{st: st, s: []rune(strings.TrimSpace(s))}
	v, err := p.sum()
	if err != nil {
		return nil, err
	}
	p.skip()
	if p.i != len(p.s) {
		return nil, unsupported(s)
	}
	return v, nil
}

type exprParser struct {
	st *psState
	s  []rune
	i  int
}

func (p *exprParser) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *exprParser) sum() (any, error) {
	v, err := p.product()
	if err != nil {
		return nil, err
	}
	for {
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != '+' {
			return v, nil
		}
		p.i++
		w, err := p.product()
		if err != nil {
			return nil, err
		}
		a, aok := v.(int)
		b, bok := toInt(w)
		if aok && bok {
			v = a + b
		} else {
			v = toString(v) + toString(w)
		}
	}
}

// product evaluates term ('*' term)*: numbers multiply, a string times a
// number repeats.
func (p *exprParser) product() (any, error) {
	v, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != '*' {
			return v, nil
		}
		p.i++
		w, err := p.term()
		if err != nil {
			return nil, err
		}
		n, ok := toInt(w)
		if !ok || n < 0 || n > 1<<24 {
			return nil, unsupported(string(p.s))
		}
		if a, isInt := v.(int); isInt {
			v = a * n
		} else {
			v = strings.Repeat(toString(v), n)
		}
	}
}

// The free-space forms of guest.DetectFacts and guest.CheckRequirements.
const freeMiBExpr = "[string][math]::Floor((Get-PSDrive -Name ($env:SystemDrive.TrimEnd(':'))).Free / 1MB)"

var reDriveFree = regexp.MustCompile(`^\(Get-PSDrive -Name '[A-Za-z]'\)\.Free`)

var reIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

func (p *exprParser) term() (any, error) {
	p.skip()
	if p.i >= len(p.s) {
		return nil, unsupported(string(p.s))
	}
	rest := string(p.s[p.i:])
	switch c := p.s[p.i]; {
	case c == '\'':
		var b strings.Builder
		for p.i++; p.i < len(p.s); p.i++ {
			if p.s[p.i] == '\'' {
				if p.i+1 < len(p.s) && p.s[p.i+1] == '\'' {
					b.WriteRune('\'')
					p.i++
					continue
				}
				p.i++
				return b.String(), nil
			}
			b.WriteRune(p.s[p.i])
		}
		return nil, unsupported(rest)
	case c == '"':
		var b strings.Builder
		for p.i++; p.i < len(p.s); p.i++ {
			switch p.s[p.i] {
			case '"':
				p.i++
				return b.String(), nil
			case '`':
				p.i++
				if p.i < len(p.s) {
					switch p.s[p.i] {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					default:
						b.WriteRune(p.s[p.i])
					}
				}
			case '$':
				m := reIdent.FindString(string(p.s[p.i+1:]))
				if m == "" {
					b.WriteByte('$')
					continue
				}
				b.WriteString(toString(p.st.variable(m)))
				p.i += len([]rune(m))
			default:
				b.WriteRune(p.s[p.i])
			}
		}
		return nil, unsupported(rest)
	case c >= '0' && c <= '9':
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		n, _ := strconv.Atoi(string(p.s[p.i:j]))
		p.i = j
		return n, nil
	case strings.HasPrefix(rest, "(Get-PSDrive -Name "):
		m := reDriveFree.FindString(rest)
		if m == "" {
			return nil, unsupported(rest)
		}
		p.i += len([]rune(m))
		return p.st.in.opts.FreeBytes, nil
	case c == '(':
		p.i++
		v, err := p.sum()
		if err != nil {
			return nil, err
		}
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, unsupported(rest)
		}
		p.i++
		return v, nil
	case c == '$':
		if strings.HasPrefix(rest, "$sb.ToString()") {
			p.i += len("$sb.ToString()")
			sb, _ := p.st.vars["sb"].(*strings.Builder)
			if sb == nil {
				return nil, unsupported(rest)
			}
			return sb.String(), nil
		}
		if strings.HasPrefix(rest, "$env:") {
			m := reIdent.FindString(rest[5:])
			p.i += 5 + len(m)
			return p.st.envVar(m), nil
		}
		m := reIdent.FindString(rest[1:])
		if m == "" {
			return nil, unsupported(rest)
		}
		p.i += 1 + len(m)
		v := p.st.variable(m)
		for p.i < len(p.s) && p.s[p.i] == '.' {
			prop := reIdent.FindString(string(p.s[p.i+1:]))
			if prop == "" {
				return nil, unsupported(rest)
			}
			p.i += 1 + len(prop)
			o, ok := v.(*osInfo)
			if !ok {
				return nil, unsupported(rest)
			}
			switch prop {
			case "Caption":
				v = o.caption
			case "Version":
				v = o.version
			case "BuildNumber":
				v = o.build
			default:
				v = nil
			}
		}
		return v, nil
	case strings.HasPrefix(rest, freeMiBExpr):
		p.i += len(freeMiBExpr)
		return strconv.FormatInt(p.st.in.opts.FreeBytes>>20, 10), nil
	case strings.HasPrefix(rest, "[Convert]::ToBase64String([IO.File]::ReadAllBytes("):
		p.i += len("[Convert]::ToBase64String([IO.File]::ReadAllBytes(")
		arg, err := p.sum()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(string(p.s[p.i:]), "))") {
			return nil, unsupported(rest)
		}
		p.i += 2
		hp, err := p.st.hostPath(toString(arg))
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(hp)
		if err != nil {
			return nil, psErrorf("Exception calling \"ReadAllBytes\": %s", errText(err))
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return nil, unsupported(rest)
}

func (st *psState) variable(name string) any {
	switch strings.ToLower(name) {
	case "null":
		return nil
	case "pid":
		return st.r.PID
	case "lastexitcode":
		return st.lastExit
	case "true":
		return true
	case "false":
		return false
	}
	return st.vars[strings.ToLower(name)]
}

func (st *psState) envVar(name string) any {
	if v, ok := st.env[name]; ok {
		return v
	}
	if strings.EqualFold(name, "PROCESSOR_ARCHITECTURE") {
		return st.in.opts.Arch
	}
	return nil
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case nil:
		return 0, true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}

// ---- commands ----

// cmdlets are the commands the interpreter runs.
var cmdlets = map[string]struct{}{
	"write-output": {}, "set-location": {}, "test-path": {}, "get-command": {}, "get-process": {},
	"start-sleep": {}, "new-item": {}, "set-content": {}, "get-content": {}, "get-childitem": {},
	"remove-item": {}, "move-item": {}, "get-filehash": {}, "get-psdrive": {}, "get-ciminstance": {},
}

// switches lists each cmdlet's switch parameters (they take no value).
var switches = map[string][]string{
	"get-childitem": {"force", "name"},
	"set-content":   {"nonewline", "force"},
	"get-content":   {"raw"},
	"remove-item":   {"force", "recurse"},
	"move-item":     {"force"},
	"new-item":      {"force"},
}

// invokeStatement runs "& 'name' args..." or "Cmdlet -Param value ...".
func (st *psState) invokeStatement(s string) (any, error) {
	w := words(s)
	if len(w) == 0 {
		return nil, nil
	}
	var name string
	quotedArgs := false
	if w[0] == "&" {
		if len(w) < 2 {
			return nil, unsupported(s)
		}
		v, err := st.eval(w[1])
		if err != nil {
			return nil, err
		}
		name, w, quotedArgs = toString(v), w[2:], true
	} else {
		name, w = w[0], w[1:]
	}
	lname := strings.ToLower(name)
	var pos []any
	named := map[string]any{}
	for i := 0; i < len(w); i++ {
		word := w[i]
		if !quotedArgs && len(word) > 1 && word[0] == '-' && unicode.IsLetter(rune(word[1])) {
			pname := strings.ToLower(strings.TrimSuffix(word[1:], ":"))
			isSwitch := false
			for _, sw := range switches[lname] {
				if sw == pname {
					isSwitch = true
				}
			}
			if isSwitch || i+1 >= len(w) {
				named[pname] = true
				continue
			}
			v, err := st.arg(w[i+1])
			if err != nil {
				return nil, err
			}
			named[pname] = v
			i++
			continue
		}
		v, err := st.arg(word)
		if err != nil {
			return nil, err
		}
		pos = append(pos, v)
	}
	return st.invoke(lname, name, pos, named)
}

// arg evaluates a command argument: a bare word is a string.
func (st *psState) arg(word string) (any, error) {
	switch word[0] {
	case '\'', '"', '$', '(':
		return st.eval(word)
	}
	if n, err := strconv.Atoi(word); err == nil {
		return n, nil
	}
	return word, nil
}

func param(named map[string]any, pos []any, i int, names ...string) (any, bool) {
	for _, n := range names {
		if v, ok := named[n]; ok {
			return v, true
		}
	}
	if i >= 0 && i < len(pos) {
		return pos[i], true
	}
	return nil, false
}

func (st *psState) invoke(lname, name string, pos []any, named map[string]any) (any, error) {
	st.in.mu.Lock()
	defer st.in.mu.Unlock()
	switch lname {
	case "write-output":
		if v, ok := named["inputobject"]; ok {
			return v, nil
		}
		return pos, nil
	case "set-location":
		p, _ := param(named, pos, 0, "literalpath", "path")
		hp, err := st.hostPath(toString(p))
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(hp); err != nil || !fi.IsDir() {
			return nil, psErrorf("Set-Location : Cannot find path '%s' because it does not exist.", toString(p))
		}
		if g := toString(p); len(g) >= 3 && g[1] == ':' {
			st.cwd = g
		} else {
			st.cwd = strings.TrimRight(st.cwd, `\`) + `\` + g
		}
		return nil, nil
	case "test-path":
		p, _ := param(named, pos, 0, "literalpath", "path")
		hp, err := st.hostPath(toString(p))
		if err != nil {
			return false, nil
		}
		_, err = os.Stat(hp)
		return err == nil, nil
	case "get-command":
		n, _ := param(named, pos, 0, "name")
		name := strings.ToLower(toString(n))
		if _, known := cmdlets[name]; known {
			return name, nil
		}
		for _, c := range st.in.opts.Commands {
			if strings.EqualFold(c, name) {
				return name, nil
			}
		}
		if ea, _ := named["erroraction"].(string); strings.EqualFold(ea, "SilentlyContinue") {
			return nil, nil
		}
		return nil, psErrorf("Get-Command : The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program.", toString(n))
	case "get-process":
		id, _ := param(named, pos, -1, "id")
		n, _ := toInt(id)
		if st.r.Alive != nil && st.r.Alive(n) {
			return fmt.Sprintf("process %d", n), nil
		}
		if ea, _ := named["erroraction"].(string); strings.EqualFold(ea, "SilentlyContinue") {
			return nil, nil
		}
		return nil, psErrorf("Get-Process : Cannot find a process with the process identifier %d.", n)
	case "start-sleep":
		secs, _ := param(named, pos, 0, "seconds")
		n, _ := toInt(secs)
		st.in.mu.Unlock()
		defer st.in.mu.Lock()
		t := time.NewTimer(time.Duration(n) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return nil, nil
		case <-st.ctx.Done():
			return nil, st.ctx.Err()
		}
	case "new-item":
		if it, _ := named["itemtype"].(string); !strings.EqualFold(it, "Directory") {
			return nil, unsupported("New-Item without -ItemType Directory")
		}
		p, _ := param(named, pos, 0, "path")
		hp, err := st.hostPath(toString(p))
		if err != nil {
			return nil, err
		}
		if err := os.Mkdir(hp, 0o755); err != nil {
			return nil, psErrorf("New-Item : %s", errText(err))
		}
		return toString(p), nil
	case "set-content":
		p, _ := param(named, pos, 0, "path", "literalpath")
		v, _ := param(named, pos, 1, "value")
		hp, err := st.hostPath(toString(p))
		if err != nil {
			return nil, err
		}
		text := toString(v)
		if named["nonewline"] != true {
			text += "\r\n"
		}
		if err := os.WriteFile(hp, []byte(text), 0o644); err != nil {
			return nil, psErrorf("Set-Content : %s", errText(err))
		}
		return nil, nil
	case "get-content":
		p, _ := param(named, pos, 0, "path", "literalpath")
		if len(pos) > 1 {
			return nil, psErrorf("Get-Content : A positional parameter cannot be found that accepts argument '%s'.", toString(pos[1]))
		}
		hp, err := st.hostPath(toString(p))
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(hp)
		if err != nil {
			return nil, psErrorf("Get-Content : Cannot find path '%s' because it does not exist.", toString(p))
		}
		if named["raw"] == true {
			return string(b), nil
		}
		var lines []any
		for _, l := range strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"), "\n") {
			lines = append(lines, l)
		}
		return lines, nil
	case "get-childitem":
		p, _ := param(named, pos, 0, "literalpath", "path")
		hp, err := st.hostPath(toString(p))
		if err != nil {
			return nil, err
		}
		ents, err := os.ReadDir(hp)
		if err != nil {
			return nil, psErrorf("Get-ChildItem : Cannot find path '%s' because it does not exist.", toString(p))
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		var out []any
		for _, n := range names {
			out = append(out, n)
		}
		return out, nil
	case "remove-item":
		p, _ := param(named, pos, 0, "literalpath", "path")
		hp, err := st.hostPath(toString(p))
		if err != nil {
			return nil, err
		}
		if err := os.Remove(hp); err != nil {
			if ea, _ := named["erroraction"].(string); strings.EqualFold(ea, "SilentlyContinue") {
				return nil, nil
			}
			return nil, psErrorf("Remove-Item : Cannot find path '%s' because it does not exist.", toString(p))
		}
		return nil, nil
	case "move-item":
		src, _ := param(named, pos, 0, "literalpath", "path")
		dst, _ := param(named, pos, 1, "destination")
		hs, err := st.hostPath(toString(src))
		if err != nil {
			return nil, err
		}
		hd, err := st.hostPath(toString(dst))
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(hd); err == nil && named["force"] != true {
			return nil, psErrorf("Move-Item : Cannot create a file when that file already exists.")
		}
		if err := os.Rename(hs, hd); err != nil {
			return nil, psErrorf("Move-Item : %s", errText(err))
		}
		return nil, nil
	case "cmd.exe", "cmd":
		// cmd.exe /c "exit N ...": the only cmd the interpreter knows.
		if len(pos) >= 2 && strings.EqualFold(toString(pos[0]), "/c") {
			f := strings.Fields(toString(pos[1]))
			if len(f) >= 1 && strings.EqualFold(f[0], "exit") {
				n := 0
				if len(f) > 1 {
					n, _ = strconv.Atoi(f[1])
				}
				st.lastExit = n
				return nil, nil
			}
		}
		return nil, unsupported("cmd.exe " + fmt.Sprint(pos...))
	}
	if reVerbNoun.MatchString(name) {
		// Probably a real cmdlet the interpreter does not know: say so
		// rather than pretend it does not exist.
		return nil, unsupported(name)
	}
	return nil, psErrorf("%s : The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program.", name, name)
}

var reVerbNoun = regexp.MustCompile(`^[A-Z][a-z]+-[A-Z][A-Za-z]*$`)

// psError is an error as PowerShell prints it on stderr.
type psError string

func (e psError) Error() string { return string(e) }

func psErrorf(format string, args ...any) error { return psError(fmt.Sprintf(format, args...)) }
