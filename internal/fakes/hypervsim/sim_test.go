package hypervsim

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
)

func TestWriteJSONAsPowerShell51(t *testing.T) {
	var b strings.Builder
	writeJSON(&b, obj{"Name": "a<b>&'c\"\\\n\x01ü😀", "L": []string{}, "N": nil, "O": []obj{{"X": "1"}}})
	got := b.String()
	for _, want := range []string{`"Name":"a\u003cb\u003e\u0026\u0027c\"\\\n\u0001\u00fc\ud83d\ude00"`, `"L":[]`, `"N":null`, `"O":[{"X":"1"}]`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %s", got, want)
		}
	}
	if strings.ContainsAny(got, " \t") {
		t.Errorf("not compressed: %s", got)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	if back["Name"] != "a<b>&'c\"\\\n\x01ü😀" {
		t.Errorf("round trip %q", back["Name"])
	}
	// Key order is the hash order, the same every time, not insertion.
	var b2 strings.Builder
	writeJSON(&b2, obj{"O": []obj{{"X": "1"}}, "N": nil, "L": []string{}, "Name": "a<b>&'c\"\\\n\x01ü😀"})
	if b2.String() != got {
		t.Errorf("key order depends on insertion")
	}
}

func newSim(t *testing.T) *Sim {
	t.Helper()
	s, err := New(Options{Cluster: "HVC1", Domain: "CORP", Nodes: []string{"HV1", "HV2"}, User: "svc", Password: "example-only"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func executor(t *testing.T, s *Sim, node string) *guest.Executor {
	t.Helper()
	ep, _ := s.Endpoint(node)
	ex, err := winrm.New(ep.Host, guest.Password(`corp\svc`, "example-only"), &winrm.Options{Port: ep.Port, CACertPEM: ep.CACertPEM})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

const rules = "$p = [Console]::In.ReadToEnd() | ConvertFrom-Json\n# ConvertTo-Json -Depth 6 -Compress\n"

func runScript(t *testing.T, ex *guest.Executor, script, stdin string) (string, error) {
	t.Helper()
	res, err := ex.Run(context.Background(), guest.Command{Script: script, Stdin: strings.NewReader(stdin)})
	return string(res.Stdout), err
}

func TestNodesAnswerTheirOwnVMs(t *testing.T) {
	s := newSim(t)
	id, err := s.AddVM(VM{Name: "web", Owner: "HV2", CPUs: 2, MemoryStartup: 4 << 30, State: "Running", Heartbeat: "OkApplicationsUnknown",
		Adapters: []Adapter{{MAC: "00155d010203", Switch: "vSwitch", IPs: []string{"10.0.0.5"}, VLAN: 20}}})
	if err != nil {
		t.Fatal(err)
	}
	inv := "# managedvm-hyperv inventory/1\n" + rules
	out1, err := runScript(t, executor(t, s, "HV1"), inv, "{}")
	if err != nil || !strings.Contains(out1, `"VMs":[]`) {
		t.Fatalf("HV1: %v %s", err, out1)
	}
	out2, err := runScript(t, executor(t, s, "HV2"), inv, "{}")
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Node string
		VMs  []map[string]any
	}
	if err := json.Unmarshal([]byte(out2), &a); err != nil || a.Node != "HV2" || len(a.VMs) != 1 {
		t.Fatalf("HV2: %v %s", err, out2)
	}
	v := a.VMs[0]
	if v["Id"] != id || v["CPUs"] != "2" || v["Memory"] != "4294967296" || v["Clustered"] != "False" || v["State"] != "Running" {
		t.Fatalf("VM %v", v)
	}
	ad := v["Adapters"].([]any)[0].(map[string]any)
	if ad["Vlan"] != "20" || ad["VlanMode"] != "Access" || ad["Mac"] != "00155D010203" || ad["IPs"].([]any)[0] != "10.0.0.5" {
		t.Fatalf("adapter %v", ad)
	}
	if s.ScriptRuns("inventory/1") != 2 || len(s.Events("HV2")) != 1 || s.Events("HV2")[0].ID != 13002 {
		t.Fatalf("runs %d events %v", s.ScriptRuns("inventory/1"), s.Events("HV2"))
	}
	// After a live migration HV1 holds it, with the same VMId.
	if err := s.Move(id, "HV1"); err != nil {
		t.Fatal(err)
	}
	get := "# managedvm-hyperv get/1\n" + rules
	out, err := runScript(t, executor(t, s, "HV1"), get, `{"Id":"`+id+`"}`)
	if err != nil || !strings.Contains(out, `"Id":"`+id+`"`) || !strings.Contains(out, `"Node":"HV1"`) {
		t.Fatalf("get on HV1: %v %s", err, out)
	}
	out, err = runScript(t, executor(t, s, "HV2"), get, `{"Id":"`+id+`"}`)
	if err != nil || !strings.Contains(out, `"VM":null`) {
		t.Fatalf("get on HV2: %v %s", err, out)
	}
}

func TestRefusals(t *testing.T) {
	s := newSim(t)
	ex := executor(t, s, "HV1")
	cases := []struct{ name, script, stdin, want string }{
		{"no header", rules, "{}", "no header line"},
		{"no stdin parameters", "# managedvm-hyperv inventory/1\n# ConvertTo-Json -Depth 6 -Compress\n", "{}", "ConvertFrom-Json"},
		{"non-ASCII stdin", "# managedvm-hyperv get/1\n" + rules, `{"Id":"ü"}`, "code page"},
		{"pasted parameter", "# managedvm-hyperv get/1\n" + rules + "Get-VM -Id 'abc-def'\n", `{"Id":"abc-def"}`, "pasted"},
		{"double hop by parameter", "# managedvm-hyperv inventory/1\n" + rules + "Get-VM -ComputerName $p.Node\n", `{"Node":"HV2"}`, "required permission"},
		{"double hop literal", "# managedvm-hyperv inventory/1\n" + rules + "Get-VM -ComputerName 'HV2'\n", `{}`, "computer 'HV2'"},
		{"bad GUID", "# managedvm-hyperv get/1\n" + rules, `{"Id":"nope"}`, "System.Guid"},
		{"unknown template", "# managedvm-hyperv teleport/1\n" + rules, `{}`, "not simulated"},
	}
	for _, c := range cases {
		_, err := runScript(t, ex, c.script, c.stdin)
		var ee *guest.ExitError
		if !errs.Is(err, errs.FailedPrecondition) || !errorsAs(err, &ee) || !strings.Contains(string(ee.Stderr), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// The node's own name is not a double hop.
	if _, err := runScript(t, ex, "# managedvm-hyperv inventory/1\n"+rules+"Get-VM -ComputerName $p.Node\n", `{"Node":"hv1"}`); err != nil {
		t.Errorf("own node refused: %v", err)
	}
}

func errorsAs(err error, target **guest.ExitError) bool { return errors.As(err, target) }
