package template_test

import (
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/template"
)

// nastyPieces are fragments that a careless YAML writer gets wrong: YAML
// 1.1 booleans, sexagesimal numbers, dates, nulls, indicators, comments,
// quotes, escapes, folding, non-ASCII.
var nastyPieces = []string{
	"yes", "No", "on", "OFF", "y", "n", "~", "null", "1:20", "190:20:30", "1_000", "0x1F", "0o17", "017", ".inf", "-.5",
	"2001-12-14", "2001-12-14t21:59:43.10-05:00", "&a", "*a", "!!binary", "!tag", "%YAML", "---", "...", "- ", ": ",
	" #", "#", "? ", "|", ">", "'", "\"", "\\", "\\n", "{", "}", "[", "]", ",", "@", "`", "\t", " ", "  ",
	"\n", "\n\n", "\r\n", " \n", "\n ", "é", "日本", "😀", "\u00a0", "<tag>", "&amp;", "]]>", "$(reboot)", "; rm -rf /",
	strings.Repeat("long words ", 12),
}

func nastyString(r *rand.Rand, n int, multiline bool) string {
	var b strings.Builder
	for range 1 + r.IntN(n) {
		p := nastyPieces[r.IntN(len(nastyPieces))]
		if !multiline && strings.ContainsAny(p, "\r\n") {
			continue
		}
		b.WriteString(p)
	}
	if strings.TrimSpace(b.String()) == "" {
		b.WriteString("x")
	}
	return b.String()
}

// TestPyYAMLReadsWhatWeMean renders user-data full of YAML 1.1 traps and
// checks that PyYAML, the parser cloud-init uses, reads exactly the same
// values as go.yaml.in/yaml/v3 and as the input. It skips when python3 with
// the yaml module is not available.
func TestPyYAMLReadsWhatWeMean(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import yaml").Run() != nil {
		t.Skip("python3 with PyYAML is not available: rendered YAML not cross-checked with cloud-init's parser")
	}
	r := rand.New(rand.NewChaCha8([32]byte{42}))
	var docs []string
	var inputs []template.Settings
	for range 200 {
		s := linuxDHCPSettings()
		s.RunCmd = []string{nastyString(r, 6, true), nastyString(r, 3, false)}
		s.Files = []template.File{{Path: "/etc/x", Content: []byte(nastyString(r, 8, true))}}
		s.Users[0].SSHAuthorizedKeys = []string{"ssh-ed25519 " + nastyString(r, 4, false)}
		s.Packages = []string{[]string{"yes", "no", "1:20", "2001-12-14", "on", "0x1F"}[r.IntN(6)]}
		nc, err := template.RenderNoCloud(s, detOpts())
		if err != nil {
			if isInvalid(err) {
				continue // e.g. a key line that is not two fields
			}
			t.Fatalf("render: %v", err)
		}
		docs = append(docs, string(nc.UserData), string(nc.MetaData))
		inputs = append(inputs, s)
	}
	if len(inputs) < 100 {
		t.Fatalf("only %d of 200 random settings were valid", len(inputs))
	}
	in, _ := json.Marshal(docs)
	cmd := exec.Command(py, "-c", `
import sys, json, yaml
docs = json.load(sys.stdin)
json.dump([yaml.safe_load(d) for d in docs], sys.stdout, default=str)
`)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var parsed []map[string]any
	if err := json.Unmarshal(out, &parsed); err != nil {
		t.Fatal(err)
	}
	for i, s := range inputs {
		ud, md := parsed[2*i], parsed[2*i+1]
		goView := yamlMap(t, []byte(docs[2*i]))
		gj, _ := json.Marshal(goView)
		var goJSON map[string]any
		_ = json.Unmarshal(gj, &goJSON)
		if !reflect.DeepEqual(ud, goJSON) {
			t.Errorf("PyYAML and yaml.v3 disagree on:\n%s\nPyYAML: %v\nyaml.v3: %v", docs[2*i], ud, goJSON)
			continue
		}
		rc, _ := ud["runcmd"].([]any)
		if len(rc) != 2 || rc[0] != s.RunCmd[0] || rc[1] != s.RunCmd[1] {
			t.Errorf("PyYAML reads runcmd %q, want %q", rc, s.RunCmd)
		}
		wf := ud["write_files"].([]any)[0].(map[string]any)
		if wf["content"] != string(s.Files[0].Content) {
			t.Errorf("PyYAML reads content %q, want %q", wf["content"], s.Files[0].Content)
		}
		if pk := ud["packages"].([]any); pk[0] != s.Packages[0] {
			t.Errorf("PyYAML reads package %#v, want %q", pk[0], s.Packages[0])
		}
		if md["instance-id"] != s.InstanceID {
			t.Errorf("meta-data %v", md)
		}
	}
}
