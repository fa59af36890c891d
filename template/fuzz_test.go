package template_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/template"
)

// Plain `go test` runs these on their seeds only; run one for a while with
// e.g. go test -run=^$ -fuzz=FuzzRenderLinux -fuzztime=60s ./template/

func sortedKeys(m map[string]any) []string {
	k := keys(m)
	slices.Sort(k)
	return k
}

// mustReject fails unless err is InvalidArgument: valid-looking input
// must never make a renderer fail in any other way.
func mustReject(t *testing.T, what string, err error) {
	t.Helper()
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("%s: %v (code %v), want success or InvalidArgument", what, err, errs.CodeOf(err))
	}
}

func FuzzRenderLinux(f *testing.F) {
	f.Add("web01", "ops", "echo hello", "content\n", "s3cret")
	f.Add("web01", "ops", "yes", "no", "")
	f.Add("web01\nruncmd: [reboot]", "ops\n  sudo: ALL", "x\"\n- reboot", "a: b\n- c", "p\nw")
	f.Add("web01", "ops", "echo 1:20 && echo 2001-12-14 ~ &a *a !!binary", "\n leading newline\n", "")
	f.Add("a", "_", "\n", "\x00\xff", "\t")
	f.Add("web-01", "ops", "#comment", "]]></content><x>", "--- ...")
	f.Fuzz(func(t *testing.T, hostname, user, command, content, password string) {
		s := template.Settings{
			InstanceID: "iid-fuzz",
			Hostname:   hostname,
			Users:      []template.User{{Name: user, Password: guest.NewSecret(password)}},
			RunCmd:     []string{command},
			Files:      []template.File{{Path: "/etc/fuzz", Content: []byte(content)}},
		}
		opts := &template.Options{Rounds: 1000}
		nc, err := template.RenderNoCloud(s, opts)
		if err != nil {
			mustReject(t, "RenderNoCloud", err)
			if s.Validate() == nil {
				t.Fatalf("RenderNoCloud rejects what Validate accepts: %v", err)
			}
			_, err = template.RenderConfigDrive(s, opts)
			mustReject(t, "RenderConfigDrive", err)
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Validate rejects what RenderNoCloud accepts: %v", err)
		}

		md := yamlMap(t, nc.MetaData)
		if got := sortedKeys(md); !slices.Equal(got, []string{"instance-id", "local-hostname"}) || md["local-hostname"] != hostname {
			t.Fatalf("meta-data %v", md)
		}
		ud := yamlMap(t, nc.UserData)
		if got := sortedKeys(ud); !slices.Equal(got, []string{"disable_root", "hostname", "runcmd", "ssh_pwauth", "users", "write_files"}) {
			t.Fatalf("user-data keys %v:\n%s", got, nc.UserData)
		}
		if ud["hostname"] != hostname {
			t.Fatalf("hostname %v", ud["hostname"])
		}
		users := ud["users"].([]any)
		u := users[0].(map[string]any)
		wantUserKeys := []string{"name"}
		if password != "" {
			wantUserKeys = []string{"hashed_passwd", "lock_passwd", "name"}
			if !template.CheckPassword(guest.NewSecret(password), u["hashed_passwd"].(string)) {
				t.Fatalf("passwd does not verify")
			}
		}
		if len(users) != 1 || u["name"] != user || !slices.Equal(sortedKeys(u), wantUserKeys) {
			t.Fatalf("users %v", users)
		}
		if rc := ud["runcmd"].([]any); len(rc) != 1 || rc[0] != command {
			t.Fatalf("runcmd %q, want [%q]", rc, command)
		}
		wf := ud["write_files"].([]any)
		file := wf[0].(map[string]any)
		got := []byte(file["content"].(string))
		if file["encoding"] == "b64" {
			got, err = base64.StdEncoding.DecodeString(string(got))
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(wf) != 1 || file["path"] != "/etc/fuzz" || !bytes.Equal(got, []byte(content)) {
			t.Fatalf("write_files %v", wf)
		}
		if password != "" && bytes.Contains(nc.UserData, []byte(password)) && len(password) > 3 {
			// A short password can occur in a hash by chance; a longer one must not.
			if !strings.Contains(command+content+user+hostname, password) {
				t.Fatalf("user-data contains the password")
			}
		}

		cd, err := template.RenderConfigDrive(s, opts)
		if err != nil {
			t.Fatalf("RenderConfigDrive fails where RenderNoCloud succeeds: %v", err)
		}
		var meta map[string]any
		if err := json.Unmarshal(cd.MetaData, &meta); err != nil || meta["name"] != hostname || len(meta) != 4 {
			t.Fatalf("meta_data.json %s: %v", cd.MetaData, err)
		}
		gi, err := template.RenderGuestInfo(s, opts)
		if err != nil {
			t.Fatalf("RenderGuestInfo fails where RenderNoCloud succeeds: %v", err)
		}
		raw, err := template.DecodeGuestInfo(gi[template.GuestInfoUserdata], gi[template.GuestInfoUserdataEncoding])
		if err != nil || yamlMap(t, raw)["hostname"] != hostname {
			t.Fatalf("guestinfo userdata: %v", err)
		}
	})
}

func FuzzRenderWindows(f *testing.F) {
	f.Add("WIN01", "powershell.exe -File C:\\agent.ps1", "P@ssw0rd!", "Ops")
	f.Add("", "cmd /c echo </CommandLine><CommandLine>evil", "", "A & B <C>")
	f.Add("WIN-01", "]]>&amp;\"'", "pw\x00", "\xff")
	f.Add("W", "x", "é日本😀", "  spaced  ")
	f.Fuzz(func(t *testing.T, computerName, command, password, owner string) {
		w := template.Windows{
			AdminPassword:      guest.NewSecret(password),
			FirstLogonCommands: []string{command},
			RegisteredOwner:    owner,
		}
		if password != "" {
			w.AutoLogonCount = 1
		}
		files, err := template.RenderCloudbaseInit(w, computerName)
		if err != nil {
			mustReject(t, "RenderCloudbaseInit", err)
			return
		}
		root := parseXMLTree(t, files.UnattendXML)
		want := 1 + 2 + 4 + 7 + 10 + 1 + 4 // root, passes, specialize, deployment, oobe, one command
		if password != "" {
			want += 4 + 7
		}
		if got := root.count(); got != want {
			t.Fatalf("Unattend.xml has %d elements, want %d:\n%s", got, want, files.UnattendXML)
		}
		wantName := computerName
		if wantName == "" {
			wantName = "*"
		}
		if cn := root.find("settings", "component", "ComputerName"); len(cn) != 1 || cn[0].Text != wantName {
			t.Fatalf("ComputerName %v", cn)
		}
		cl := root.find("settings", "component", "FirstLogonCommands", "SynchronousCommand", "CommandLine")
		if len(cl) != 1 || cl[0].Text != command {
			t.Fatalf("CommandLine %v, want %q", cl, command)
		}
		wantOwner := owner
		if wantOwner == "" {
			wantOwner = "Administrator"
		}
		if ro := root.find("settings", "component", "RegisteredOwner"); len(ro) != 1 || ro[0].Text != wantOwner {
			t.Fatalf("RegisteredOwner %v, want %q", ro, wantOwner)
		}
		if password != "" {
			v := root.find("settings", "component", "UserAccounts", "AdministratorPassword", "Value")
			if len(v) != 1 || decodeUnattendPassword(t, v[0].Text) != password+"AdministratorPassword" {
				t.Fatalf("AdministratorPassword does not decode to the password")
			}
		}
		for name, data := range map[string][]byte{"conf": files.Conf, "unattend": files.UnattendConf} {
			ini, err := template.ParseINI(data)
			if err != nil || len(ini.Sections) != 1 || ini.Sections[0].Name != "DEFAULT" {
				t.Fatalf("%s: %v", name, err)
			}
		}
	})
}

func FuzzINI(f *testing.F) {
	f.Add("DEFAULT", "key", "value")
	f.Add("s", "k", "a\n[evil]\nk=v")
	f.Add("a b", "k.x-y", "#;=:[]")
	f.Add("s]", "k=", " v ")
	f.Fuzz(func(t *testing.T, section, key, value string) {
		in := template.INIFile{Sections: []template.INISection{{Name: section, Entries: []template.INIEntry{{Key: key, Value: value}}}}}
		out, err := in.Encode()
		if err != nil {
			mustReject(t, "Encode", err)
			return
		}
		back, err := template.ParseINI(out)
		if err != nil {
			t.Fatalf("encoded INI does not parse: %v\n%q", err, out)
		}
		if len(back.Sections) != 1 || back.Sections[0].Name != section || len(back.Sections[0].Entries) != 1 ||
			back.Sections[0].Entries[0] != (template.INIEntry{Key: key, Value: value}) {
			t.Fatalf("round trip %+v, want %+v\n%q", back, in, out)
		}
	})
}

func FuzzReadISO(f *testing.F) {
	nc, _ := template.RenderNoCloud(linuxDHCPSettings(), nil)
	var img bytes.Buffer
	if err := nc.WriteISO(&img); err != nil {
		f.Fatal(err)
	}
	f.Add(img.Bytes())
	f.Add([]byte{})
	f.Add(make([]byte, 18*2048))
	f.Fuzz(func(t *testing.T, data []byte) {
		label, files, err := template.ReadISO(bytes.NewReader(data))
		if err != nil {
			mustReject(t, "ReadISO", err)
			return
		}
		total := 0
		for _, d := range files {
			total += len(d)
		}
		if total > 64<<20 || len(label) > 32 {
			t.Fatalf("ReadISO returned %d bytes, label %q", total, label)
		}
	})
}

func FuzzCryptSHA512(f *testing.F) {
	f.Add("Hello world!", "saltstring")
	f.Add("", "")
	f.Add("pw", "rounds=1000$salt")
	f.Add("pw", "rounds=1000$")
	f.Fuzz(func(t *testing.T, password, rest string) {
		if strings.HasPrefix(rest, "rounds=") {
			num, _, _ := strings.Cut(strings.TrimPrefix(rest, "rounds="), "$")
			if len(num) > 4 || num > "2000" && len(num) == 4 {
				return // keep each run cheap
			}
		}
		h, err := template.CryptSHA512(password, "$6$"+rest)
		if err != nil {
			mustReject(t, "CryptSHA512", err)
			return
		}
		parts := strings.Split(h, "$")
		digest := parts[len(parts)-1]
		if !strings.HasPrefix(h, "$6$") || len(digest) != 86 || strings.Trim(digest, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("hash %q", h)
		}
		if again, err := template.CryptSHA512(password, h); err != nil || again != h {
			t.Fatalf("hash does not reproduce itself: %q, %v", again, err)
		}
	})
}
