package main

import (
	"bytes"
	"context"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQuickstart runs the quickstart (a simulated vCenter through the
// vSphere driver) and checks the story its output tells: devices sorted by
// name; web-01 enrolled; db-01 failing after its IP and NAT exist, with
// the undo lines for both; app-01 refused; and after each step holdings
// that agree with each other (as many public addresses in use as NAT rules
// as enrolled records), so a rollback that stops releasing shows.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	if err := run(ctx, &buf); err != nil {
		t.Fatalf("run: %v\n%s", err, buf.String())
	}
	out := buf.String()
	defer func() {
		if t.Failed() {
			t.Logf("--- output:\n%s", out)
		}
	}()
	for _, want := range []string{
		`(?m)^== discovering devices\n   app-01 +192\.168\.10\.13 +Debian GNU/Linux 12 \(64-bit\) +available\n   db-01 +192\.168\.10\.12 .* available\n   web-01 +192\.168\.10\.11 .* available$`,
		`(?m)^== network requirements\nSERVICE +SOURCE +DESTINATION +PROTOCOL/PORTS +REQUIRED +WHY\nService Orchestration +Orchestrator +VMware vCenter Server \(provider vcenter-lab\) at 127\.0\.0\.1 +TCP: \d+ +yes .*\nService Orchestration +Orchestrator, allowed from 198\.51\.100\.0/24 +Linux VMs, default profile .* +TCP: 22 +yes `,
		`(?m)^   ok   credentials$`,
		`(?m)^   requirements: 3 checks, 0 failed`,
		`(?m)^   enrolled: public 203\.0\.113\.\d+ -> local 192\.168\.10\.11, ports tcp/22$`,
		`(?m)^   firewall: NAT 203\.0\.113\.\d+ <-> 192\.168\.10\.11, allowed tcp/22 from 198\.51\.100\.0/24$`,
		// db-01: the IP and the NAT were made, configure failed, both undone
		// in reverse order, and the drivers hold nothing for it.
		`(?m)^== enrolling db-01.*\n(?:.*\n)*?   ok   ipam \(public 203\.0\.113\.\d+ <-> local 192\.168\.10\.12\)\n   ok   firewall\n   FAIL configure: .*cannot lock /etc/passwd.*\n(?:   undo configure\n)?   undo firewall\n   undo ipam\n   failed \(FailedPrecondition\) at step "configure"\n   db-01 now: public address none, NAT rule none$`,
		`(?m)^== enrolling app-01 with a wrong password\n   ok   eligibility\n   FAIL credentials: .*\n   failed \(Unauthenticated\) at step "credentials"$`,
		`(?m)^== unenrolling web-01\n(?:   ok   .*\n)+   holdings: ipam 0 of 13 public addresses in use; firewall 0 NAT rules; cmdb 1 available, 2 failed$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s", want)
		}
	}

	// The holdings after each of the four steps, as the drivers report them.
	holdings := regexp.MustCompile(`(?m)^   holdings: ipam (\d+) of 13 public addresses in use; firewall (\d+) NAT rules?; cmdb (.*)$`).FindAllStringSubmatch(out, -1)
	wantCMDB := []string{"2 available, 1 enrolled", "1 available, 1 enrolled, 1 failed", "1 enrolled, 2 failed", "1 available, 2 failed"}
	if len(holdings) != len(wantCMDB) {
		t.Fatalf("%d holdings lines, want %d", len(holdings), len(wantCMDB))
	}
	for i, h := range holdings {
		used, _ := strconv.Atoi(h[1])
		rules, _ := strconv.Atoi(h[2])
		enrolled := 0
		if m := regexp.MustCompile(`(\d+) enrolled`).FindStringSubmatch(h[3]); m != nil {
			enrolled, _ = strconv.Atoi(m[1])
		}
		if used != rules || used != enrolled {
			t.Errorf("holdings %d: %d addresses in use, %d NAT rules, %d enrolled: they must agree", i+1, used, rules, enrolled)
		}
		if h[3] != wantCMDB[i] {
			t.Errorf("holdings %d: cmdb %q, want %q", i+1, h[3], wantCMDB[i])
		}
	}

	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "   FAIL credentials") {
			if len(line) > 200 || strings.Count(line, "guest") > 1 {
				t.Errorf("the refused-password line is %d bytes and says \"guest\" %d times: %s", len(line), strings.Count(line, "guest"), line)
			}
		}
	}
	if strings.ContainsAny(out, "[]") {
		t.Error("the output shows a raw Go slice ([...])")
	}
	if strings.Contains(out, "customer-secret") || strings.Contains(out, "not-the-password") {
		t.Error("the output shows a password")
	}
}

// TestQuickstartImportsOnlyPublicPackages: a newcomer can copy main.go
// into a module of their own only if it imports no internal package.
func TestQuickstartImportsOnlyPublicPackages(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if strings.Contains(p, "/internal/") || strings.HasSuffix(p, "/internal") {
			t.Errorf("main.go imports %s, which a program outside this module cannot", p)
		}
	}
}

// TestQuickstartRunsInAnotherModule copies main.go into a new module that
// requires this one (through a replace directive to this checkout, with
// the same dependency versions) and runs it there with go run, with no
// network: what a newcomer who copies the quickstart does.
func TestQuickstartRunsInAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the quickstart in a new module; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go command: %v", err)
	}
	gomod, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	src, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var mod strings.Builder
	mod.WriteString("module example.com/quickstart\n\n")
	mod.WriteString(regexp.MustCompile(`(?m)^go .*$`).FindString(string(src)) + "\n\n")
	mod.WriteString("require github.com/managedvm/managedvm v0.0.0\n\n")
	for _, block := range regexp.MustCompile(`(?s)require \(.*?\)`).FindAllString(string(src), -1) {
		mod.WriteString(block + "\n\n")
	}
	mod.WriteString("replace github.com/managedvm/managedvm => " + root + "\n")

	dir := t.TempDir()
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("main.go", "main.go")
	copyFile(filepath.Join(root, "go.sum"), "go.sum")
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "run", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go run in a new module: %v\n%s\n--- go.mod:\n%s", err, stderr.String(), mod.String())
	}
	if !strings.Contains(stdout.String(), "== unenrolling web-01") {
		t.Fatalf("the copied quickstart printed:\n%s", stdout.String())
	}
}
