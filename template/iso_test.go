package template_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/template"
)

func TestNoCloudSeedISO(t *testing.T) {
	nc, err := template.RenderNoCloud(linuxSettings(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	if err := nc.WriteISO(&img); err != nil {
		t.Fatal(err)
	}
	label, files, err := template.ReadISO(bytes.NewReader(img.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if label != "cidata" {
		t.Errorf("label %q, want cidata", label)
	}
	want := nc.Files()
	if len(files) != len(want) || len(files) != 3 {
		t.Fatalf("files %v, want meta-data, user-data, network-config", keysOf(files))
	}
	for name, data := range want {
		if !bytes.Equal(files[name], data) {
			t.Errorf("%s differs after reading the ISO back", name)
		}
	}
	blkidCheck(t, img.Bytes(), "cidata")
}

func TestConfigDriveISO(t *testing.T) {
	cd, err := template.RenderConfigDrive(linuxSettings(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	if err := cd.WriteISO(&img); err != nil {
		t.Fatal(err)
	}
	label, files, err := template.ReadISO(bytes.NewReader(img.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if label != "config-2" {
		t.Errorf("label %q", label)
	}
	for _, p := range []string{template.ConfigDriveMetaData, template.ConfigDriveUserData, template.ConfigDriveNetworkData} {
		if !bytes.Equal(files[p], cd.Files()[p]) {
			t.Errorf("%s differs after reading the ISO back (have %v)", p, keysOf(files))
		}
	}
	blkidCheck(t, img.Bytes(), "config-2")
}

// blkidCheck asks util-linux's blkid, an independent ISO 9660 reader, for
// the image's type and label; it skips when blkid is missing.
func blkidCheck(t *testing.T, img []byte, label string) {
	t.Helper()
	blkid, err := exec.LookPath("blkid")
	if err != nil {
		t.Log("blkid not available: ISO not checked by an independent reader")
		return
	}
	path := filepath.Join(t.TempDir(), "seed.iso")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(blkid, "-p", "-o", "export", path).Output()
	if err != nil {
		t.Fatalf("blkid: %v", err)
	}
	if s := string(out); !strings.Contains(s, "TYPE=iso9660") || !strings.Contains(s, "LABEL="+label+"\n") {
		t.Errorf("blkid says:\n%s", s)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWriteISORejects(t *testing.T) {
	for name, tc := range map[string]struct {
		label string
		files map[string][]byte
	}{
		"empty label":     {"", map[string][]byte{"a": nil}},
		"label space":     {"ci data", map[string][]byte{"a": nil}},
		"long label":      {strings.Repeat("x", 33), map[string][]byte{"a": nil}},
		"no files":        {"cidata", nil},
		"upper case":      {"cidata", map[string][]byte{"META-DATA": nil}},
		"absolute":        {"cidata", map[string][]byte{"/meta-data": nil}},
		"two dots":        {"cidata", map[string][]byte{"a.tar.gz": nil}},
		"dot dir":         {"cidata", map[string][]byte{"a.b/c": nil}},
		"file is dir":     {"cidata", map[string][]byte{"a": nil, "a/b": nil}},
		"long name":       {"cidata", map[string][]byte{strings.Repeat("a", 29): nil}},
		"too big":         {"cidata", map[string][]byte{"a": make([]byte, 16<<20+1)}},
		"dotdot":          {"cidata", map[string][]byte{"../x": nil}},
		"trailing slash":  {"cidata", map[string][]byte{"x/": nil}},
		"space in name":   {"cidata", map[string][]byte{"user data": nil}},
		"unicode in name": {"cidata", map[string][]byte{"é": nil}},
	} {
		var w bytes.Buffer
		if err := template.WriteISO(&w, tc.label, tc.files); !isInvalid(err) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
		if w.Len() != 0 {
			t.Errorf("%s: %d bytes written despite the error", name, w.Len())
		}
	}
}

func TestWriteISOEmptyAndNested(t *testing.T) {
	files := map[string][]byte{"empty": {}, "a/b/c/deep.txt": []byte("deep"), "vendor-data": []byte("#cloud-config\n{}\n")}
	var img bytes.Buffer
	if err := template.WriteISO(&img, "CIDATA", files); err != nil {
		t.Fatal(err)
	}
	label, got, err := template.ReadISO(bytes.NewReader(img.Bytes()))
	if err != nil || label != "CIDATA" || len(got) != 3 || string(got["a/b/c/deep.txt"]) != "deep" || len(got["empty"]) != 0 {
		t.Fatalf("ReadISO = %q, %v, %v", label, got, err)
	}
}

func TestReadISORejectsGarbage(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("not an iso"), make([]byte, 40000)} {
		if _, _, err := template.ReadISO(bytes.NewReader(data)); !isInvalid(err) {
			t.Errorf("ReadISO(%d bytes) = %v, want InvalidArgument", len(data), err)
		}
	}
}
