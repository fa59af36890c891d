package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"
)

// TestQuickstart runs the quickstart (a simulated vCenter through the
// vSphere driver) and checks the lines that tell its story.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`(?m)^== discovering devices$`,
		`(?m)^   web-01 +192\.168\.10\.11 +Debian GNU/Linux 12 \(64-bit\) +available$`,
		`(?m)^   db-01 +192\.168\.10\.12 .* available$`,
		`(?m)^   app-01 +192\.168\.10\.13 .* available$`,
		`(?m)^   ok   credentials$`,
		`(?m)^   requirements: 3 checks, 0 failed`,
		`(?m)^   enrolled: public 203\.0\.113\.\d+ -> local 192\.168\.10\.11, ports \[tcp/22\]$`,
		`(?m)^   firewall: NAT 203\.0\.113\.\d+ <-> 192\.168\.10\.11, allowed \[tcp/22\] from \[198\.51\.100\.0/24\]$`,
		`(?m)^   cmdb:     vcenter-lab/[0-9a-f-]{36} state=enrolled public=203\.0\.113\.\d+$`,
		`(?m)^   failed \(Unauthenticated\) at step "credentials"$`,
		`(?m)^   cmdb:     vcenter-lab/[0-9a-f-]{36} state=failed$`,
		`(?m)^   ipam:     1 of 13 public addresses in use`,
		`(?m)^   cmdb: state=available; firewall: 0 NAT rules; ipam: 0 addresses in use$`,
	} {
		if !regexp.MustCompile(want).Match(out.Bytes()) {
			t.Errorf("output lacks %s\n--- output:\n%s", want, out.String())
		}
	}
	if bytes.Contains(out.Bytes(), []byte("customer-secret")) || bytes.Contains(out.Bytes(), []byte("not-the-password")) {
		t.Error("the output shows a password")
	}
}
