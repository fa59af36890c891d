package hyperv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
	"github.com/managedvm/managedvm/internal/testkit"
)

// Every template must fit one WinRM command line after the executor's
// prelude: a longer one would have to be uploaded first.
func TestScriptsFitACommandLine(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, s := range scripts {
		line, err := winrm.CommandLine(guest.Command{Script: s.text})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		t.Logf("%s: %d of %d characters", s.name, len(line), winrm.MaxCommandLine)
		if !strings.HasPrefix(s.text, scriptHeader+s.name+"\n") {
			t.Errorf("%s: no header line", s.name)
		}
		if names[s.name] {
			t.Errorf("%s: two templates share the name", s.name)
		}
		names[s.name] = true
		for _, must := range []string{"[Console]::In.ReadToEnd() | ConvertFrom-Json", "ConvertTo-Json -InputObject $o -Depth 6 -Compress"} {
			if !strings.Contains(s.text, must) {
				t.Errorf("%s lacks %q", s.name, must)
			}
		}
	}
}

func TestASCIIJSON(t *testing.T) {
	t.Parallel()
	in := map[string]string{"Name": "vm-ü-😀<&>'\"\\\n"}
	b, err := asciiJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b {
		if c >= 0x80 {
			t.Fatalf("non-ASCII byte in %s", b)
		}
	}
	if !strings.Contains(string(b), `\u00fc`) || !strings.Contains(string(b), `\ud83d\ude00`) {
		t.Fatalf("escapes: %s", b)
	}
	var back map[string]string
	if err := json.Unmarshal(b, &back); err != nil || back["Name"] != in["Name"] {
		t.Fatalf("round trip: %v %q", err, back)
	}
}

// run sends the template text unchanged, the parameters on standard input
// only, and decodes the answer; a failing script's text becomes a coded,
// quoted error.
func TestRunSendsParametersOnStdin(t *testing.T) {
	t.Parallel()
	const secretish = "value-that-must-not-be-in-the-script"
	srv, err := winrmserver.New(winrmserver.Options{User: "ops", Password: "example-only",
		Handler: func(_ context.Context, r *winrmserver.Request) int {
			in, _ := io.ReadAll(r.Stdin)
			if strings.Contains(r.Script, secretish) || strings.Contains(r.CommandLine, secretish) {
				fmt.Fprint(r.Stderr, "parameter pasted into the script")
				return 1
			}
			var p struct{ Id string }
			if err := json.Unmarshal(in, &p); err != nil {
				fmt.Fprint(r.Stderr, err)
				return 1
			}
			if p.Id == "denied" {
				fmt.Fprint(r.Stderr, "Get-VM : You do not have the required permission to complete this task.")
				return 1
			}
			fmt.Fprintf(r.Stdout, `{"Node":"N1","V":"1","VM":{"Id":%q}}`+"\r\n", p.Id)
			return 0
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ex, err := winrm.New(srv.Host(), guest.Password("ops", "example-only"), &winrm.Options{Port: srv.Port(), CACertPEM: srv.CACertPEM()})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	var out getAnswer
	if err := run(context.Background(), ex, "N1", scriptGet, map[string]string{"Id": secretish}, &out); err != nil {
		t.Fatal(err)
	}
	if out.VM == nil || out.VM.ID != secretish || out.Node != "N1" {
		t.Fatalf("answer %+v", out)
	}
	if got := srv.Requests()[0].Script; !strings.HasSuffix(got, scriptGet.text+"\n") {
		t.Fatalf("script sent is not the template:\n%s", got)
	}
	err = run(context.Background(), ex, "N1", scriptGet, map[string]string{"Id": "denied"}, &out)
	testkit.WantCode(t, "access denied", err, errs.PermissionDenied)
	testkit.Bounded(t, "script error", err, 300)
}
