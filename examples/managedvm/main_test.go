package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// canary is the guest password of the embedded defaults: it must never
// appear in anything the program prints.
const canary = "customer-secret"

type result struct {
	code           int
	stdout, stderr string
}

// cli runs the program with args (embedded defaults unless -config is
// given) and standard input stdin.
func cli(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, args, &env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(string) string { return "" },
		prompt: func(string) (string, error) { return "", errs.New(errs.InvalidArgument, "", "no prompt in tests") },
	})
	return result{code, out.String(), errOut.String()}
}

var (
	timeRe = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ`)
	portRe = regexp.MustCompile(`TCP: [1-9]\d{4}  `)
)

// normalize replaces what changes from run to run: times, the simulator's
// port.
func normalize(s string) string {
	s = timeRe.ReplaceAllString(s, "2006-01-02 15:04:05Z")
	return portRe.ReplaceAllStringFunc(s, func(m string) string { return "TCP: PORT" + strings.Repeat(" ", len(m)-len("TCP: PORT")) })
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	got = normalize(got)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func wantExit(t *testing.T, r result, code errs.Code) {
	t.Helper()
	if r.code != int(code) {
		t.Fatalf("exit status %d, want %d (%s)\nstdout:\n%s\nstderr:\n%s", r.code, int(code), code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, canary) {
		t.Fatalf("the guest password appears in the output:\n%s\n%s", r.stdout, r.stderr)
	}
}

func TestDevicesTable(t *testing.T) {
	r := cli(t, "", "devices")
	wantExit(t, r, errs.OK)
	golden(t, "devices", r.stdout)
}

func TestDevicesJSON(t *testing.T) {
	r := cli(t, "", "devices", "-json", "-state", "available")
	wantExit(t, r, errs.OK)
	var devs []Device
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil {
		t.Fatalf("-json output does not decode: %v\n%s", err, r.stdout)
	}
	var names []string
	for _, d := range devs {
		names = append(names, d.Name)
		if d.Provider != "vcenter-lab" || d.State != "available" || d.Power != "poweredOn" || d.LocalIP == "" || d.ID == "" || d.Changed.IsZero() {
			t.Errorf("device %+v: want an available, powered-on VM of vcenter-lab with an ID, a local IP and a change time", d)
		}
	}
	if got := strings.Join(names, ","); got != "app-01,db-01,web-01,web-02" {
		t.Errorf("devices %s, want app-01,db-01,web-01,web-02", got)
	}
	r = cli(t, "", "devices", "-json", "-state", "enrolled")
	wantExit(t, r, errs.OK)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("no VM is enrolled, yet -json printed %s", r.stdout)
	}
}

func TestEnrollShowsSteps(t *testing.T) {
	r := cli(t, canary+"\n", "enroll", "-v", "-password-file", "-", "web-01")
	wantExit(t, r, errs.OK)
	golden(t, "enroll-web-01", r.stdout)
	for _, step := range []string{"ok   credentials", "ok   ipam: public 203.0.113.5 <-> local 192.168.10.11", "ok   firewall", "ok   cmdb"} {
		if !strings.Contains(r.stderr, step) {
			t.Errorf("stderr lacks the step line %q:\n%s", step, r.stderr)
		}
	}
}

func TestEnrollJSONFailure(t *testing.T) {
	r := cli(t, canary+"\n", "enroll", "-json", "-password-file", "-", "db-01")
	wantExit(t, r, errs.FailedPrecondition)
	var res resultJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("-json output does not decode: %v\n%s", err, r.stdout)
	}
	if res.State != "failed" || res.FailedStep != "configure" || res.Code != "FailedPrecondition" || res.PublicIP != "" {
		t.Errorf("result %+v: want failed at configure, FailedPrecondition, no public IP", res)
	}
	for _, undo := range []string{"undo firewall", "undo ipam"} {
		if !strings.Contains(r.stderr, undo) {
			t.Errorf("stderr lacks %q:\n%s", undo, r.stderr)
		}
	}
}

func TestEnrollWrongPassword(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, "", "enroll", "-password-file", pw, "app-01")
	wantExit(t, r, errs.Unauthenticated)
	if !strings.Contains(r.stderr, "failed at step credentials, rolled back") || strings.Contains(r.stderr, "not-the-password") {
		t.Errorf("stderr should say the credentials step failed, without the password:\n%s", r.stderr)
	}
}

func TestShowAndUnenroll(t *testing.T) {
	// Each run starts its own simulator, so show an enrolled VM through
	// enroll's own output, and unenroll a VM that is not enrolled.
	r := cli(t, "", "show", "db-01")
	wantExit(t, r, errs.OK)
	golden(t, "show-db-01", r.stdout)
	r = cli(t, "", "show", "-json", "vcenter-lab/"+deviceID(t, "db-01"))
	wantExit(t, r, errs.OK)
	var d Device
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.Name != "db-01" {
		t.Fatalf("show -json by provider/id: %v %+v", err, d)
	}
	r = cli(t, "", "unenroll", "-force", "web-02")
	wantExit(t, r, errs.OK)
	if strings.TrimSpace(r.stdout) != "nothing to do" {
		t.Errorf("unenrolling a VM that is not enrolled printed %q", r.stdout)
	}
}

func deviceID(t *testing.T, name string) string {
	r := cli(t, "", "devices", "-json")
	wantExit(t, r, errs.OK)
	var devs []Device
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.Name == name {
			return d.ID
		}
	}
	t.Fatalf("no device %s", name)
	return ""
}

func TestPreflightAndNetreq(t *testing.T) {
	r := cli(t, "", "preflight")
	wantExit(t, r, errs.OK)
	golden(t, "preflight", r.stdout)
	r = cli(t, "", "preflight", "-json")
	wantExit(t, r, errs.OK)
	var rows []preflightRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) == 0 {
		t.Fatalf("preflight -json: %v, %d rows", err, len(rows))
	}
	for _, row := range rows {
		if row.Provider != "vcenter-lab" || row.ID == "" || row.Status == "" {
			t.Errorf("row %+v: want provider, ID and status", row)
		}
	}
	r = cli(t, "", "netreq")
	wantExit(t, r, errs.OK)
	golden(t, "netreq", r.stdout)
	r = cli(t, "", "netreq", "-json")
	wantExit(t, r, errs.OK)
	var m struct {
		Flows []struct {
			Service string   `json:"service"`
			Ports   []uint16 `json:"ports"`
		} `json:"flows"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || len(m.Flows) < 2 {
		t.Fatalf("netreq -json: %v, %+v", err, m)
	}
	r = cli(t, "", "resume", "-json")
	wantExit(t, r, errs.OK)
	var rep struct {
		Resumed []resultJSON `json:"resumed"`
		Skipped int          `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Resumed == nil {
		t.Fatalf("resume -json: %v %s", err, r.stdout)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		code  errs.Code
		inErr string
	}{
		{"no verb", nil, errs.InvalidArgument, "usage:"},
		{"unknown verb", []string{"frobnicate"}, errs.InvalidArgument, "unknown verb"},
		{"password on argv", []string{"enroll", "-password", canary, "web-01"}, errs.InvalidArgument, "-password"},
		{"missing VM", []string{"enroll"}, errs.InvalidArgument, "takes 1 argument"},
		{"no prompt", []string{"enroll", "web-01"}, errs.InvalidArgument, "no prompt"},
		{"unknown VM", []string{"show", "nope"}, errs.NotFound, `no device named "nope"`},
		{"unknown provider", []string{"devices", "-provider", "nope"}, errs.NotFound, "no provider"},
		{"unknown state", []string{"devices", "-state", "happy"}, errs.InvalidArgument, "not a state"},
		{"unknown profile", []string{"enroll", "-profile", "gold", "-password-file", "-", "web-01"}, errs.InvalidArgument, "no profile"},
		{"missing config", []string{"devices", "-config", "/nonexistent.yaml"}, errs.InvalidArgument, "bad configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, "x\n", tc.args...)
			wantExit(t, r, tc.code)
			if !strings.Contains(r.stderr, tc.inErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.inErr, r.stderr)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	r := cli(t, "", "check")
	wantExit(t, r, errs.OK)
	golden(t, "check", r.stdout)
}
