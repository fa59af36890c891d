package guest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/managedvm/managedvm"

// composers are the packages a guest driver must never depend on: they
// compose the drivers (enroll) or are other contracts (provider imports
// guest, not the other way round).
var composers = []string{"enroll", "ipam", "cmdb", "natfw", "provider"}

// composerDeps returns the deps that are a composer package or one of its
// subpackages.
func composerDeps(deps []string) []string {
	var bad []string
	for _, d := range deps {
		rel, ok := strings.CutPrefix(d, module+"/")
		if !ok {
			continue
		}
		for _, c := range composers {
			if rel == c || strings.HasPrefix(rel, c+"/") {
				bad = append(bad, d)
			}
		}
	}
	return bad
}

func TestComposerDeps(t *testing.T) {
	got := composerDeps([]string{
		"context", module + "/guest", module + "/errs", module + "/report", module + "/internal/limit",
		module + "/enroll", module + "/ipam/memipam", module + "/cmdb", module + "/natfw", module + "/provider/vsphere",
		module + "/enrollment", module + "/cmdbx",
	})
	want := []string{module + "/enroll", module + "/ipam/memipam", module + "/cmdb", module + "/natfw", module + "/provider/vsphere"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("composerDeps = %v, want %v", got, want)
	}
}

// TestLayering: no package under guest (the contract, its transports
// ssh and winrm, the configurators tasks and ansible, memguest, guesttest)
// depends, even indirectly, on enroll, ipam, cmdb, natfw or provider. It
// asks the go command for the import graph (go list), and is skipped when
// there is no go command.
func TestLayering(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list the import graph: %v", err)
	}
	cmd := exec.Command(goCmd, "list", "-json=ImportPath,Deps", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	seen := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		seen[p.ImportPath] = true
		if bad := composerDeps(p.Deps); len(bad) > 0 {
			t.Errorf("%s depends on %s: drivers must not import the composer (move the type into guest)", p.ImportPath, strings.Join(bad, ", "))
		}
	}
	for _, p := range []string{"guest", "guest/ssh", "guest/winrm", "guest/tasks", "guest/ansible", "guest/memguest"} {
		if !seen[module+"/"+p] {
			t.Errorf("go list did not list %s", p)
		}
	}
}
