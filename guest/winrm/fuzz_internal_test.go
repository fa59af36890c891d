package winrm

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

const linePrefix = "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "

// FuzzCommandLine checks the -EncodedCommand builder: whatever the
// arguments, script, environment and directory, the command line is the
// fixed prefix plus base64 only (nothing cmd.exe could interpret), it
// decodes to exactly the script PowerShellScript builds, and every argument
// is in it as a single-quoted literal.
func FuzzCommandLine(f *testing.F) {
	f.Add("Write-Output\x1fit's\x1f$HOME", "", "v", `C:\dir`)
	f.Add("", "exit 3 # comment", "a'b\"c", "")
	f.Add("cmd.exe\x1f/c\x1fexit 4 & calc", "", "", "")
	f.Add("x\x1f\u2019q\u2018\x1f\xff\xfe", "", "\n", "C:\\a b\\'c'")
	f.Fuzz(func(t *testing.T, args, script, envValue, dir string) {
		cmd := guest.Command{Script: script, Dir: dir, Env: map[string]string{"MVM_V": envValue}}
		if args != "" {
			cmd.Args = strings.Split(args, "\x1f")
		}
		line, err := CommandLine(cmd)
		if err != nil {
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Fatalf("CommandLine error %v has code %v", err, errs.CodeOf(err))
			}
			if cmd.Validate() == nil && len(guest.PowerShellCommandLine(prelude+guest.PowerShellScript(cmd))) <= MaxCommandLine {
				t.Fatalf("a valid, short command was refused: %v", err)
			}
			return
		}
		if len(line) > MaxCommandLine {
			t.Fatalf("line of %d characters", len(line))
		}
		enc, ok := strings.CutPrefix(line, linePrefix)
		if !ok {
			t.Fatalf("line %q lacks the prefix", line)
		}
		for _, c := range enc {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
				t.Fatalf("encoded part holds %q", c)
			}
		}
		got, err := guest.DecodePowerShell(enc)
		if err != nil {
			t.Fatal(err)
		}
		// Invalid UTF-8 cannot travel as UTF-16: compare what survives.
		want := string([]rune(prelude + guest.PowerShellScript(cmd)))
		if got != want {
			t.Fatalf("decoded %q, want %q", got, want)
		}
		for _, a := range cmd.Args {
			if !strings.Contains(got, string([]rune(guest.PowerShellQuote(a)))) {
				t.Fatalf("argument %q is not a quoted literal in %q", a, got)
			}
		}
	})
}

// receiveXML builds a ReceiveResponse as WinRM sends it, splitting each
// stream into chunks.
func receiveXML(id string, stdout, stderr []byte, done bool, code int64) []byte {
	var b bytes.Buffer
	b.WriteString(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse>`)
	for _, s := range []struct {
		name string
		data []byte
	}{{"stdout", stdout}, {"stderr", stderr}} {
		for len(s.data) > 0 {
			n := min(len(s.data), 7)
			fmt.Fprintf(&b, `<rsp:Stream Name="%s" CommandId="%s">%s</rsp:Stream>`, s.name, id, base64.StdEncoding.EncodeToString(s.data[:n]))
			s.data = s.data[n:]
		}
		if done {
			fmt.Fprintf(&b, `<rsp:Stream Name="%s" CommandId="%s" End="true"></rsp:Stream>`, s.name, id)
		}
	}
	if done {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, id, stateDone, code)
	} else {
		fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"/>`, id)
	}
	b.WriteString(`</rsp:ReceiveResponse></s:Body></s:Envelope>`)
	return b.Bytes()
}

// FuzzParseReceiveRoundTrip: a well-formed response parses back to its
// streams, state and exit code (32-bit, as Windows reports them).
func FuzzParseReceiveRoundTrip(f *testing.F) {
	f.Add([]byte("out\r\n"), []byte("err"), true, int64(3))
	f.Add([]byte{}, []byte{}, false, int64(0))
	f.Add([]byte("\x00\xff<&>]]>"), []byte("x"), true, int64(3221225786))
	f.Add([]byte("a"), []byte(""), true, int64(-1))
	f.Fuzz(func(t *testing.T, stdout, stderr []byte, done bool, code int64) {
		if code < -1<<31 || code > 1<<32-1 {
			code %= 1 << 31
		}
		r, err := parseReceive(receiveXML("CMD-1", stdout, stderr, done, code), "CMD-1")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.stdout, stdout) || !bytes.Equal(r.stderr, stderr) || r.done != done {
			t.Fatalf("parsed %+v", r)
		}
		if done && r.exitCode != int(int32(uint32(code))) {
			t.Fatalf("exit code %d, want %d", r.exitCode, int32(uint32(code)))
		}
		if !done && r.exitCode != 0 {
			t.Fatal("exit code without Done")
		}
		// A response for another command is refused.
		if len(stdout) > 0 {
			if _, err := parseReceive(receiveXML("CMD-2", stdout, stderr, done, code), "CMD-1"); err == nil {
				t.Fatal("a stream of another command was accepted")
			}
		}
	})
}

// FuzzParseReceive: arbitrary bytes never panic, and a success only ever
// reports what the input holds.
func FuzzParseReceive(f *testing.F) {
	f.Add(receiveXML("C", []byte("hello"), nil, true, 0))
	f.Add(receiveXML("C", nil, []byte("x"), false, 0))
	f.Add([]byte(`<Envelope><Body><ReceiveResponse><Stream Name="stdout">!!</Stream></ReceiveResponse></Body></Envelope>`))
	f.Add([]byte(`<Envelope><Body><ReceiveResponse><CommandState State="` + stateDone + `"><ExitCode>99999999999</ExitCode></CommandState></ReceiveResponse></Body></Envelope>`))
	f.Add([]byte(`<a>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseReceive(body, "C")
		if err != nil {
			return
		}
		if len(r.stdout)+len(r.stderr) > len(body) {
			t.Fatalf("parsed %d bytes of output from %d bytes of input", len(r.stdout)+len(r.stderr), len(body))
		}
		if !r.done && r.exitCode != 0 {
			t.Fatal("exit code without Done")
		}
	})
}

func TestDecodeCLIXML(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     "plain",
		"#< CLIXML": "",
		"#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T></TN><MS><I64 N=\"SourceId\">1</I64></MS></Obj><S S=\"Error\">boom_x000D__x000A_</S><S S=\"Warning\">careful_x000A_</S><S S=\"Error\">a_x005F_x000A_b &amp; c_x000D__x000A_</S></Objs>": "boom\r\nWARNING: careful\na_x000A_b & c\r\n",
		"before\r\n#< CLIXML\r\n<Objs><S S=\"Error\">x</S></Objs>": "before\r\nx",
		"#< CLIXML\r\n<Objs><S S=\"Error\">broken":                 "#< CLIXML\r\n<Objs><S S=\"Error\">broken",
		"text #< CLIXML mid-line":                                  "text #< CLIXML mid-line",
	} {
		if got := string(decodeCLIXML([]byte(in))); got != want {
			t.Errorf("decodeCLIXML(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzDecodeCLIXML: never panics; without the marker the input is kept.
func FuzzDecodeCLIXML(f *testing.F) {
	f.Add([]byte("#< CLIXML\r\n<Objs><S S=\"Error\">x_x000A_</S></Objs>"))
	f.Add([]byte("no marker"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := decodeCLIXML(b)
		if !bytes.Contains(b, clixmlMarker) && !bytes.Equal(out, b) {
			t.Fatalf("changed input without the marker: %q -> %q", b, out)
		}
	})
}
