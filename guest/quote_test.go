package guest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/managedvm/managedvm/guest"
)

// trickyWords are strings a shell would mangle if quoting were wrong.
var trickyWords = []string{
	"", " ", "plain", "two words", "it's", `"double"`, `'`, `''`, `'\''`, `\`, `\\`, `a\nb`,
	"$HOME", "${HOME}", "$(id)", "`id`", "$((1+1))", "a;b", "a&b", "a|b", "a&&b||c", "<x", ">y", "2>&1",
	"*", "?", "[a-z]", "~", "~root", "{a,b}", "!", "!!", "#c", "a#b", "%s", "-n", "--", "-e", "=", "a=b",
	"new\nline", "\r\n", "\t", "\x01\x1b[31m", "\x7f", "ünïcødé ✓ 日本 🙂", "\xff\xfe not utf-8",
	"if", "then", "time", "case", "esac", "done", "function", "{", "}", "(", ")",
}

// shells returns the POSIX shells on this machine to test quoting with.
func shells(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, sh := range []string{"/bin/sh", "dash", "bash"} {
		if p, err := exec.LookPath(sh); err == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Skip("no POSIX shell on this machine: quoting can only be checked against a real sh")
	}
	return out
}

// readBack has shell print each word of line followed by NUL, and returns
// the words.
func readBack(t testing.TB, shell, words string) []string {
	t.Helper()
	out, err := exec.Command(shell, "-c", `printf '%s\0' `+words).Output()
	if err != nil {
		t.Fatalf("%s -c printf %s: %v", shell, words, err)
	}
	if len(out) == 0 || out[len(out)-1] != 0 {
		t.Fatalf("%s printed %q", shell, out)
	}
	return strings.Split(string(out[:len(out)-1]), "\x00")
}

func TestShellJoinThroughRealShells(t *testing.T) {
	for _, sh := range shells(t) {
		got := readBack(t, sh, guest.ShellJoin(trickyWords))
		if len(got) != len(trickyWords) {
			t.Fatalf("%s read %d words back, want %d: %q", sh, len(got), len(trickyWords), got)
		}
		for i := range got {
			if got[i] != trickyWords[i] {
				t.Errorf("%s: word %d read back as %q, want %q (quoted %s)", sh, i, got[i], trickyWords[i], guest.ShellQuote(trickyWords[i]))
			}
		}
	}
}

func TestShellQuoteLeavesSafeWordsAlone(t *testing.T) {
	for _, w := range []string{"abc", "ABC_123", "/usr/bin/env", "a.b-c", "user@host", "k=v", "a,b:c", "50%", "+x"} {
		if q := guest.ShellQuote(w); q != w {
			t.Errorf("ShellQuote(%q) = %q, want it unchanged", w, q)
		}
	}
	if q := guest.ShellQuote(""); q != "''" {
		t.Errorf(`ShellQuote("") = %q`, q)
	}
}

// TestShellJoinFirstWord checks that the program word is never read as an
// assignment or a reserved word.
func TestShellJoinFirstWord(t *testing.T) {
	for _, sh := range shells(t) {
		for _, prog := range []string{"A=b", "if", "time", "while", "done", "{", "!"} {
			err := exec.Command(sh, "-c", guest.ShellJoin([]string{prog, "arg"})).Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 127 {
				t.Errorf("%s -c %s: %v, want exit 127 (program %q not found)", sh, guest.ShellJoin([]string{prog, "arg"}), err, prog)
			}
		}
	}
}

func FuzzShellQuote(f *testing.F) {
	for _, w := range trickyWords {
		f.Add(w)
	}
	f.Add("'''")
	f.Add("a'b'c'")
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		f.Skip("no /bin/sh")
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			t.Skip("no shell word can hold a NUL byte")
		}
		got := readBack(t, sh, guest.ShellQuote(s))
		if len(got) != 1 || got[0] != s {
			t.Fatalf("sh read %q back as %q (quoted %s)", s, got, guest.ShellQuote(s))
		}
	})
}

func FuzzPowerShellEncoding(f *testing.F) {
	for _, w := range trickyWords {
		f.Add(w)
	}
	f.Add("Write-Output 'x'\r\n$env:A")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("PowerShell scripts are text: invalid UTF-8 cannot be encoded as UTF-16")
		}
		enc := guest.EncodePowerShell(s)
		dec, err := guest.DecodePowerShell(enc)
		if err != nil || dec != s {
			t.Fatalf("round trip of %q: %q, %v", s, dec, err)
		}
		line := guest.PowerShellCommandLine(s)
		if !strings.HasSuffix(line, " -EncodedCommand "+enc) || strings.ContainsAny(enc, " '\"") {
			t.Fatalf("command line %q", line)
		}
	})
}

func TestPowerShellEncodingKnownValue(t *testing.T) {
	// The value powershell.exe itself produces for "dir":
	// [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes("dir"))
	if got := guest.EncodePowerShell("dir"); got != "ZABpAHIA" {
		t.Fatalf("EncodePowerShell(dir) = %s", got)
	}
	// A character outside the BMP is a surrogate pair.
	got, err := guest.DecodePowerShell(guest.EncodePowerShell("🙂"))
	if err != nil || got != "🙂" {
		t.Fatalf("surrogate pair: %q, %v", got, err)
	}
	if _, err := guest.DecodePowerShell("not base64!"); err == nil {
		t.Fatal("bad base64 decoded")
	}
	if _, err := guest.DecodePowerShell("YQ=="); err == nil { // one byte: not UTF-16
		t.Fatal("odd byte count decoded")
	}
}

// psQuote reports whether r is one of the characters PowerShell's
// tokenizer takes for a single quote.
func psQuote(r rune) bool {
	switch r {
	case '\'', '\u2018', '\u2019', '\u201a', '\u201b':
		return true
	}
	return false
}

// parsePSLiteral parses a single-quoted PowerShell string literal at the
// start of src the way PowerShell's tokenizer does: any single-quote
// character ends it unless another single-quote character follows, in
// which case the pair stands for the second one. It returns the value and
// the number of bytes the literal takes.
func parsePSLiteral(src string) (string, int, bool) {
	r, size := utf8.DecodeRuneInString(src)
	if !psQuote(r) {
		return "", 0, false
	}
	var b strings.Builder
	i := size
	for i < len(src) {
		r, size := utf8.DecodeRuneInString(src[i:])
		i += size
		if psQuote(r) {
			next, nsize := utf8.DecodeRuneInString(src[i:])
			if i < len(src) && psQuote(next) {
				b.WriteRune(next)
				i += nsize
				continue
			}
			return b.String(), i, true
		}
		b.WriteRune(r)
	}
	return "", 0, false // unterminated
}

func FuzzPowerShellQuote(f *testing.F) {
	for _, w := range trickyWords {
		f.Add(w)
	}
	f.Add("\u2018x\u2019")
	f.Add("'\u2019'")
	f.Add("$(Remove-Item C:\\ -Recurse)")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("PowerShell scripts are text")
		}
		lit := guest.PowerShellQuote(s)
		got, n, ok := parsePSLiteral(lit + "; Remove-Item x")
		if !ok || n != len(lit) || got != s {
			t.Fatalf("PowerShellQuote(%q) = %s: the literal reads as %q and ends at %d of %d (ok %v)", s, lit, got, n, len(lit), ok)
		}
	})
}

func TestPowerShellQuoteChecker(t *testing.T) {
	// The checker itself must see a broken literal as broken.
	if v, n, _ := parsePSLiteral("'it's'"); v != "it" || n != 4 {
		t.Fatalf("checker: %q %d", v, n)
	}
	if v, n, _ := parsePSLiteral("'a\u2019b'"); v != "a" || n != len("'a\u2019") {
		t.Fatalf("checker missed a typographic quote: %q %d", v, n)
	}
}

func TestPowerShellScript(t *testing.T) {
	cmd := guest.Command{
		Args: []string{`C:\Program Files\tool.exe`, "it's", "$env:SECRET", "‘x’"},
		Env:  map[string]string{"B": "2", "A": "o'k"},
		Dir:  `C:\work dir`,
	}
	want := "$ErrorActionPreference = 'Stop'\n" +
		"$env:A = 'o''k'\n" +
		"$env:B = '2'\n" +
		"Set-Location -LiteralPath 'C:\\work dir'\n" +
		"& 'C:\\Program Files\\tool.exe' 'it''s' '$env:SECRET' '‘‘x’’'\n" +
		"exit $LASTEXITCODE\n"
	if got := guest.PowerShellScript(cmd); got != want {
		t.Fatalf("PowerShellScript:\n%s\nwant:\n%s", got, want)
	}
	got := guest.PowerShellScript(guest.Command{Script: "Get-Date"})
	if got != "$ErrorActionPreference = 'Stop'\nGet-Date\n" {
		t.Fatalf("script form: %q", got)
	}
	line := guest.PowerShellCommandLine(got)
	enc := line[strings.LastIndexByte(line, ' ')+1:]
	if dec, err := guest.DecodePowerShell(enc); err != nil || dec != got {
		t.Fatalf("command line does not carry the script: %q %v", dec, err)
	}
}

// TestShellCommandLine runs the line ShellCommandLine builds in real
// shells and compares what the program saw with the Command.
func TestShellCommandLine(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub dir 'q' $x")
	dash := filepath.Join(dir, "-dash")
	for _, d := range []string{sub, dash, filepath.Join(dir, "cdpath", "rel")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	show := []string{"sh", "-c", `printf '%s|' "$(pwd -P)" "${MVM_A-unset}" "${MVM_B-unset}" "$@"`, "sh"}
	cases := []struct {
		name string
		cmd  guest.Command
		cwd  string // where the shell starts
		want string
	}{
		{"args", guest.Command{Args: append(show, trickyWords...)}, dir, dir + "|unset|unset|" + strings.Join(trickyWords, "|") + "|"},
		{"env", guest.Command{Args: show, Env: map[string]string{"MVM_A": "a b'c\"$d`e`\\", "MVM_B": "x=y\nz"}}, dir, dir + "|a b'c\"$d`e`\\|x=y\nz|"},
		{"empty env value", guest.Command{Args: show, Env: map[string]string{"MVM_A": ""}}, dir, dir + "||unset|"},
		{"dir", guest.Command{Args: show, Dir: sub}, dir, sub + "|unset|unset|"},
		{"relative dir starting with a dash", guest.Command{Args: show, Dir: "-dash"}, dir, dash + "|unset|unset|"},
		{"relative dir not looked up in CDPATH", guest.Command{Args: show, Dir: "rel", Env: map[string]string{"CDPATH": filepath.Join(dir, "cdpath")}}, filepath.Join(dir, "cdpath"), filepath.Join(dir, "cdpath", "rel") + "|unset|unset|"},
		{"script", guest.Command{Script: `printf '%s|%s' "$MVM_A" "$(pwd -P)"; exit 0`, Env: map[string]string{"MVM_A": "v"}, Dir: sub}, dir, "v|" + sub},
		{"builtin name runs the program", guest.Command{Args: []string{"echo", `a\tb`}}, dir, "a\\tb\n"},
	}
	for _, sh := range shells(t) {
		for _, c := range cases {
			line := guest.ShellCommandLine(c.cmd)
			x := exec.Command(sh, "-c", line)
			x.Dir = c.cwd
			x.Env = append(os.Environ(), "CDPATH="+filepath.Join(dir, "cdpath"))
			out, err := x.Output()
			if err != nil {
				t.Errorf("%s %s: %v\nline: %s", sh, c.name, err, line)
				continue
			}
			if string(out) != c.want {
				t.Errorf("%s %s: got %q, want %q\nline: %s", sh, c.name, out, c.want, line)
			}
		}
		// The exit code comes through, and a missing program is 127.
		for _, c := range []struct {
			cmd  guest.Command
			want int
		}{
			{guest.Command{Args: []string{"sh", "-c", "exit 7"}}, 7},
			{guest.Command{Script: "exit 9", Env: map[string]string{"A": "1"}}, 9},
			{guest.Command{Args: []string{"managedvm-no-such-program"}}, 127},
			{guest.Command{Args: []string{"A=b"}, Env: map[string]string{"A": "1"}}, 127},
		} {
			err := exec.Command(sh, "-c", guest.ShellCommandLine(c.cmd)).Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.want {
				t.Errorf("%s %s: %v, want exit %d", sh, guest.ShellCommandLine(c.cmd), err, c.want)
			}
		}
		// A missing Dir stops the command.
		marker := filepath.Join(dir, "ran")
		err := exec.Command(sh, "-c", guest.ShellCommandLine(guest.Command{Dir: filepath.Join(dir, "missing"), Args: []string{"touch", marker}})).Run()
		if err == nil {
			t.Errorf("%s: a missing Dir did not fail", sh)
		}
		if _, serr := os.Stat(marker); serr == nil {
			t.Errorf("%s: the command ran despite a missing Dir", sh)
		}
	}
}

func TestShellCommandLineCancelKillsTheProgram(t *testing.T) {
	// exec replaces the shell with the program: killing the shell's
	// process kills the program, with no orphan left behind.
	for _, sh := range shells(t) {
		ctx, cancel := context.WithCancel(t.Context())
		x := exec.CommandContext(ctx, sh, "-c", guest.ShellCommandLine(guest.Command{Script: "echo $$; exec sleep 30"}))
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		x.Stdout = pw
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		buf := make([]byte, 64)
		n, _ := pr.Read(buf)
		pid := strings.TrimSpace(string(buf[:n]))
		if pid == "" {
			t.Fatal("no pid")
		}
		if pid != strconv.Itoa(x.Process.Pid) {
			t.Errorf("%s: the script runs in process %s, not in the shell's %d: a kill would leave it behind", sh, pid, x.Process.Pid)
		}
		cancel()
		_ = x.Wait()
		pr.Close()
	}
}
