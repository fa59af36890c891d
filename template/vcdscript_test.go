package template_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/template"
)

// runVCDScript runs script with sh and arg in a mount namespace whose
// /var/lib is an empty temp directory (so the script writes exactly what
// it would in a guest, and nothing on this machine), and returns that
// directory, the exit code and stderr.
func runVCDScript(t *testing.T, script []byte, arg string, varLib string) (int, string) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		testenv.Missing(t, "unshare as root", "the VCD script tests run the script in a private mount namespace (util-linux unshare, as root)")
	}
	f := filepath.Join(t.TempDir(), "customize.sh")
	if err := os.WriteFile(f, script, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /var/lib && exec sh "$2" $3`, "sh", varLib, f, arg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatalf("running the script: %v", err)
	}
	return 0, stderr.String()
}

func seedFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := e.Info(); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
		out[e.Name()] = b
	}
	return out
}

func sameFiles(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("seed holds %d files, want %d", len(got), len(want))
	}
	for name, w := range want {
		if !bytes.Equal(got[name], w) {
			t.Fatalf("%s differs:\n%q\nwant\n%q", name, got[name], w)
		}
	}
}

// TestVCDScriptWritesSeed renders the NoCloud seed as VCD's customization
// script, runs it with sh as VCD does (precustomization, then
// postcustomization), and checks the seed byte for byte; cloud-init's own
// NoCloud datasource then reads it as the settings mean.
func TestVCDScriptWritesSeed(t *testing.T) {
	small := linuxDHCPSettings()
	static := small
	static.NICs = linuxSettings().NICs[:1]
	for name, s := range map[string]template.Settings{"dhcp": small, "static": static} {
		t.Run(name, func(t *testing.T) {
			nc, err := template.RenderNoCloud(s, detOpts())
			if err != nil {
				t.Fatal(err)
			}
			script, err := nc.VCDScript()
			if err != nil {
				t.Fatal(err)
			}
			if len(script) > template.MaxVCDScript {
				t.Fatalf("script of %d bytes", len(script))
			}
			varLib := t.TempDir()
			seed := filepath.Join(varLib, "cloud", "seed", "nocloud")
			// A network-config of an earlier seed must not survive one
			// without it.
			if err := os.MkdirAll(seed, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(seed, template.NetworkConfigFile), []byte("stale\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, arg := range []string{"precustomization", "postcustomization"} {
				if code, stderr := runVCDScript(t, script, arg, varLib); code != 0 {
					t.Fatalf("sh script %s: exit %d: %s", arg, code, stderr)
				}
				sameFiles(t, seedFiles(t, seed), nc.Files())
			}
			ci := needCloudInit(t)
			dir := t.TempDir()
			if err := os.Symlink(seed, filepath.Join(dir, "seed")); err != nil {
				t.Fatal(err)
			}
			r := ci.read(t, "nocloud", dir, nil)
			if r.MetaData["instance-id"] != s.InstanceID || r.UserData != string(nc.UserData) {
				t.Fatalf("cloud-init read instance-id %v and user-data\n%s", r.MetaData["instance-id"], r.UserData)
			}
			if (nc.NetworkConfig != nil) != (r.Network != nil) {
				t.Fatalf("cloud-init read network config %v", r.Network)
			}
		})
	}
}

// TestVCDScriptPackedForm: a seed too long for plain here-documents goes
// gzip+base64, and the script still writes it byte for byte; a document
// holding the here-document delimiter or lacking a final line feed is
// written exactly too.
func TestVCDScriptPackedForm(t *testing.T) {
	nc := &template.NoCloud{
		MetaData:      []byte("instance-id: iid-1\nlocal-hostname: vm1\n"),
		UserData:      []byte("#cloud-config\nwrite_files:\n- path: /etc/x\n  content: |\n" + strings.Repeat("    same line again and again\n", 60)),
		NetworkConfig: []byte("version: 2\nethernets:\n  eth0:\n    dhcp4: true\nMVM_SEED_EOF\nno final line feed"),
	}
	script, err := nc.VCDScript()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(script, []byte("gzip -dc")) || len(script) >= len(nc.UserData) {
		t.Fatalf("the script (%d bytes) is not the packed form", len(script))
	}
	varLib := t.TempDir()
	if code, stderr := runVCDScript(t, script, "precustomization", varLib); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sameFiles(t, seedFiles(t, filepath.Join(varLib, "cloud", "seed", "nocloud")), nc.Files())
}

// TestVCDScriptRefusals: another argument writes nothing and exits 2; a
// seed over MaxVCDScript, or without meta-data, is InvalidArgument without
// its content in the message.
func TestVCDScriptRefusals(t *testing.T) {
	nc, err := template.RenderNoCloud(linuxDHCPSettings(), detOpts())
	if err != nil {
		t.Fatal(err)
	}
	script, err := nc.VCDScript()
	if err != nil {
		t.Fatal(err)
	}
	varLib := t.TempDir()
	if code, _ := runVCDScript(t, script, "customize-now", varLib); code != 2 {
		t.Fatalf("unknown argument: exit %d, want 2", code)
	}
	if ents, _ := os.ReadDir(varLib); len(ents) != 0 {
		t.Fatalf("unknown argument wrote %v", ents)
	}

	r := rand.New(rand.NewChaCha8([32]byte{7}))
	rnd := make([]byte, 3000)
	for i := range rnd {
		rnd[i] = byte('a' + r.IntN(26))
	}
	big := &template.NoCloud{MetaData: nc.MetaData, UserData: append([]byte("#cloud-config\n# canary-secret "), append(rnd, '\n')...)}
	_, err = big.VCDScript()
	if !isInvalid(err) || strings.Contains(err.Error(), "canary") {
		t.Fatalf("oversized seed: %v", err)
	}
	if _, err := (&template.NoCloud{UserData: nc.UserData}).VCDScript(); !isInvalid(err) {
		t.Fatalf("seed without meta-data: %v", err)
	}
}
