package template_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf16"

	yaml "go.yaml.in/yaml/v3"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/template"
)

// yamlMap parses one YAML document into generic values.
func yamlMap(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("YAML does not parse: %v\n%s", err, data)
	}
	return m
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestNoCloudRoundTrip(t *testing.T) {
	s := linuxSettings()
	nc, err := template.RenderNoCloud(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := yamlMap(t, nc.MetaData)
	if !reflect.DeepEqual(md, map[string]any{"instance-id": s.InstanceID, "local-hostname": s.Hostname}) {
		t.Errorf("meta-data = %v", md)
	}

	if !bytes.HasPrefix(nc.UserData, []byte("#cloud-config\n")) {
		t.Fatalf("user-data does not start with #cloud-config")
	}
	ud := yamlMap(t, nc.UserData)
	wantKeys := []string{"disable_root", "fqdn", "hostname", "packages", "runcmd", "ssh_pwauth", "timezone", "users", "write_files"}
	if got := keys(ud); !slices.Equal(got, wantKeys) {
		t.Errorf("user-data keys = %v, want %v", got, wantKeys)
	}
	if ud["ssh_pwauth"] != true || ud["disable_root"] != true {
		t.Errorf("ssh_pwauth=%v disable_root=%v", ud["ssh_pwauth"], ud["disable_root"])
	}
	users := ud["users"].([]any)
	ops := users[0].(map[string]any)
	hash, _ := ops["hashed_passwd"].(string)
	if !strings.HasPrefix(hash, "$6$") || !template.CheckPassword(guest.NewSecret(linuxPassword), hash) {
		t.Errorf("hashed_passwd %q is not a SHA-512 crypt hash of the password", hash)
	}
	if bytes.Contains(nc.UserData, []byte(linuxPassword)) {
		t.Error("user-data contains the clear-text password")
	}
	if ops["lock_passwd"] != false || ops["sudo"] != "ALL=(ALL) NOPASSWD:ALL" || ops["groups"] != "wheel,adm" {
		t.Errorf("ops = %v", ops)
	}
	if _, ok := users[1].(map[string]any)["hashed_passwd"]; ok {
		t.Error("a user without password got one")
	}
	files := ud["write_files"].([]any)
	for i, f := range s.Files {
		wf := files[i].(map[string]any)
		content := []byte(wf["content"].(string))
		if wf["encoding"] == "b64" {
			content, err = base64.StdEncoding.DecodeString(string(content))
			if err != nil {
				t.Fatal(err)
			}
		}
		if wf["path"] != f.Path || !bytes.Equal(content, f.Content) {
			t.Errorf("write_files[%d] = %v", i, wf)
		}
	}
	if p := files[0].(map[string]any)["permissions"]; p != "0644" {
		t.Errorf("default permissions %v", p)
	}
	if got := ud["runcmd"].([]any); len(got) != 2 || got[0] != s.RunCmd[0] {
		t.Errorf("runcmd = %v", got)
	}

	nw := yamlMap(t, nc.NetworkConfig)
	eth := nw["ethernets"].(map[string]any)
	nic0 := eth["eth0"].(map[string]any)
	if nw["version"] != 2 || nic0["match"].(map[string]any)["macaddress"] != "00:50:56:ab:cd:ef" ||
		nic0["addresses"].([]any)[0] != "10.0.0.5/24" || nic0["dhcp4"] != false {
		t.Errorf("network-config = %v", nw)
	}
	if nic1 := eth["ens224"].(map[string]any); nic1["dhcp4"] != true {
		t.Errorf("nic1 = %v", nic1)
	}
}

func TestNoCloudDHCPWithoutNICs(t *testing.T) {
	nc, err := template.RenderNoCloud(linuxDHCPSettings(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if nc.NetworkConfig != nil {
		t.Errorf("network-config written without NICs")
	}
	if _, ok := nc.Files()[template.NetworkConfigFile]; ok {
		t.Error("Files lists network-config")
	}
	ud := yamlMap(t, nc.UserData)
	if ud["disable_root"] != true || ud["ssh_pwauth"] != false {
		t.Errorf("defaults: %v", ud)
	}
}

func TestWindowsUserDataSubset(t *testing.T) {
	nc, err := template.RenderNoCloud(windowsSettings(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ud := yamlMap(t, nc.UserData)
	if got := keys(ud); !slices.Equal(got, []string{"runcmd", "users", "write_files"}) {
		t.Errorf("windows user-data keys = %v", got)
	}
	if bytes.Contains(nc.UserData, []byte(windowsPassword)) {
		t.Error("windows user-data contains the admin password")
	}
}

func TestConfigDriveRoundTrip(t *testing.T) {
	s := linuxSettings()
	cd, err := template.RenderConfigDrive(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(cd.MetaData, &meta); err != nil {
		t.Fatal(err)
	}
	if meta["uuid"] != s.InstanceID || meta["hostname"] != "web01.example.com" || meta["name"] != "web01" {
		t.Errorf("meta_data.json = %v", meta)
	}
	var nd struct {
		Links []struct {
			ID, Type, Name string
			MAC            string `json:"ethernet_mac_address"`
		}
		Networks []struct {
			ID, Type, Link string
			IP             string `json:"ip_address"`
			Netmask        string
			Routes         []struct{ Network, Netmask, Gateway string }
		}
		Services []struct{ Type, Address string }
	}
	if err := json.Unmarshal(cd.NetworkData, &nd); err != nil {
		t.Fatal(err)
	}
	if len(nd.Links) != 2 || nd.Links[0].MAC != "00:50:56:ab:cd:ef" || nd.Links[1].Name != "ens224" {
		t.Errorf("links = %+v", nd.Links)
	}
	n0 := nd.Networks[0]
	if n0.Type != "ipv4" || n0.IP != "10.0.0.5" || n0.Netmask != "255.255.255.0" || n0.Link != nd.Links[0].ID ||
		len(n0.Routes) != 1 || n0.Routes[0].Gateway != "10.0.0.1" {
		t.Errorf("network0 = %+v", n0)
	}
	if nd.Networks[1].Type != "ipv4_dhcp" || len(nd.Services) != 2 {
		t.Errorf("networks = %+v services = %+v", nd.Networks, nd.Services)
	}
	nc, _ := template.RenderNoCloud(s, nil)
	// Same cloud-config apart from the password salt.
	strip := func(b []byte) string {
		m := yamlMap(t, b)
		for _, u := range m["users"].([]any) {
			delete(u.(map[string]any), "hashed_passwd")
		}
		out, _ := json.Marshal(m)
		return string(out)
	}
	if strip(cd.UserData) != strip(nc.UserData) {
		t.Error("config drive user_data differs from NoCloud user-data")
	}
}

func TestGuestInfoRoundTrip(t *testing.T) {
	for _, compress := range []bool{false, true} {
		gi, err := template.RenderGuestInfo(linuxSettings(), &template.Options{Compress: compress})
		if err != nil {
			t.Fatal(err)
		}
		if len(gi) != 4 {
			t.Errorf("guestinfo keys: %v", gi)
		}
		meta, err := template.DecodeGuestInfo(gi[template.GuestInfoMetadata], gi[template.GuestInfoMetadataEncoding])
		if err != nil {
			t.Fatal(err)
		}
		md := yamlMap(t, meta)
		if md["instance-id"] != "iid-web01-0001" || md["network"].(map[string]any)["version"] != 2 {
			t.Errorf("metadata = %v", md)
		}
		user, err := template.DecodeGuestInfo(gi[template.GuestInfoUserdata], gi[template.GuestInfoUserdataEncoding])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(user, []byte("#cloud-config\n")) {
			t.Errorf("userdata = %q", user)
		}
	}
	for _, bad := range [][2]string{{"!!!", "base64"}, {"aGVsbG8=", "gzip+base64"}, {"x", "rot13"}} {
		if _, err := template.DecodeGuestInfo(bad[0], bad[1]); err == nil {
			t.Errorf("DecodeGuestInfo(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

func TestCloudbaseConfRoundTrip(t *testing.T) {
	files, err := template.RenderCloudbaseInit(windowsConfig(), "WIN01")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"conf": files.Conf, "unattend": files.UnattendConf} {
		f, err := template.ParseINI(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if v, _ := f.Get("DEFAULT", "metadata_services"); v != template.MetadataNoCloud+","+template.MetadataConfigDrive {
			t.Errorf("%s metadata_services = %q", name, v)
		}
		if v, _ := f.Get("DEFAULT", "debug"); v != "false" {
			t.Errorf("%s debug = %q", name, v)
		}
		svcs, err := template.CloudbaseMetadataServices(data)
		if err != nil || len(svcs) != 2 {
			t.Errorf("%s: CloudbaseMetadataServices = %v, %v", name, svcs, err)
		}
	}
	f, _ := template.ParseINI(files.UnattendConf)
	if v, _ := f.Get("DEFAULT", "plugins"); v != strings.Join(template.DefaultCloudbaseUnattendPlugins(), ",") {
		t.Errorf("unattend plugins = %q", v)
	}
	if bytes.Contains(files.Conf, []byte(windowsPassword)) || bytes.Contains(files.UnattendXML, []byte(windowsPassword)) {
		t.Error("a cloudbase-init file contains the clear-text password")
	}
}

// xmlNode is a generic element tree with namespace-resolved names.
type xmlNode struct {
	Name     xml.Name
	Attrs    []xml.Attr
	Text     string
	Children []*xmlNode
}

func parseXMLTree(t testing.TB, data []byte) *xmlNode {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("XML does not parse: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{Name: tok.Name, Attrs: tok.Attr}
			if len(stack) == 0 {
				if root != nil {
					t.Fatal("XML has two root elements")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tok)
			}
		}
	}
	return root
}

// find returns the descendants of n at the path of local names.
func (n *xmlNode) find(path ...string) []*xmlNode {
	if len(path) == 0 {
		return []*xmlNode{n}
	}
	var out []*xmlNode
	for _, c := range n.Children {
		if c.Name.Local == path[0] {
			out = append(out, c.find(path[1:]...)...)
		}
	}
	return out
}

func (n *xmlNode) count() int {
	c := 1
	for _, k := range n.Children {
		c += k.count()
	}
	return c
}

func (n *xmlNode) attr(space, local string) string {
	for _, a := range n.Attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func decodeUnattendPassword(t testing.TB, v string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b)%2 != 0 {
		t.Fatalf("password value %q is not base64 UTF-16", v)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}

func TestUnattendStructure(t *testing.T) {
	w := windowsConfig()
	files, err := template.RenderCloudbaseInit(w, "WIN01")
	if err != nil {
		t.Fatal(err)
	}
	root := parseXMLTree(t, files.UnattendXML)
	if root.Name != (xml.Name{Space: template.UnattendNamespace, Local: "unattend"}) {
		t.Fatalf("root = %v", root.Name)
	}
	var passes []string
	for _, s := range root.find("settings") {
		if s.Name.Space != template.UnattendNamespace {
			t.Errorf("settings in namespace %q", s.Name.Space)
		}
		passes = append(passes, s.attr("", "pass"))
	}
	if !slices.Equal(passes, []string{"specialize", "oobeSystem"}) {
		t.Errorf("passes = %v", passes)
	}
	spec := root.find("settings")[0]
	if cn := spec.find("component", "ComputerName"); len(cn) != 1 || cn[0].Text != "WIN01" {
		t.Errorf("ComputerName = %v", cn)
	}
	run := spec.find("component", "RunSynchronous", "RunSynchronousCommand")
	if len(run) != 1 || run[0].attr("http://schemas.microsoft.com/WMIConfig/2002/State", "action") != "add" ||
		!strings.Contains(run[0].find("Path")[0].Text, `conf\cloudbase-init-unattend.conf" && exit 1 || exit 2"`) {
		t.Errorf("RunSynchronous = %+v", run)
	}
	oobe := root.find("settings")[1]
	admin := oobe.find("component", "UserAccounts", "AdministratorPassword")
	if len(admin) != 1 || admin[0].find("PlainText")[0].Text != "false" ||
		decodeUnattendPassword(t, admin[0].find("Value")[0].Text) != windowsPassword+"AdministratorPassword" {
		t.Errorf("AdministratorPassword is not base64(UTF-16LE(password+\"AdministratorPassword\"))")
	}
	al := oobe.find("component", "AutoLogon")
	if len(al) != 1 || al[0].find("LogonCount")[0].Text != "1" || al[0].find("Username")[0].Text != "Administrator" ||
		decodeUnattendPassword(t, al[0].find("Password", "Value")[0].Text) != windowsPassword+"Password" {
		t.Errorf("AutoLogon = %+v", al)
	}
	cmds := oobe.find("component", "FirstLogonCommands", "SynchronousCommand")
	if len(cmds) != len(w.FirstLogonCommands) {
		t.Fatalf("%d first logon commands", len(cmds))
	}
	for i, c := range cmds {
		if c.find("CommandLine")[0].Text != w.FirstLogonCommands[i] || c.find("Order")[0].Text != string(rune('1'+i)) {
			t.Errorf("command %d = %q", i, c.find("CommandLine")[0].Text)
		}
	}
	if got := template.UnattendPassword("P@ssw0rd!", "AdministratorPassword"); got != "UABAAHMAcwB3ADAAcgBkACEAQQBkAG0AaQBuAGkAcwB0AHIAYQB0AG8AcgBQAGEAcwBzAHcAbwByAGQA" {
		t.Errorf("UnattendPassword = %s", got)
	}
}

func TestRenderCloudbaseInitRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		w    template.Windows
		name string
	}{
		"long computer name":   {template.Windows{}, "ABCDEFGHIJKLMNOP"},
		"dotted computer name": {template.Windows{}, "win.example"},
		"control char command": {template.Windows{FirstLogonCommands: []string{"echo \x07"}}, ""},
		"bad install dir":      {template.Windows{Cloudbase: template.Cloudbase{InstallDir: `relative\dir`}}, ""},
		"dup metadata service": {template.Windows{Cloudbase: template.Cloudbase{MetadataServices: []string{template.MetadataNoCloud, template.MetadataNoCloud}}}, ""},
		"bad time zone":        {template.Windows{TimeZone: "UTC<script>"}, ""},
		"autologon no pw":      {template.Windows{AutoLogonCount: 1}, ""},
		"long password":        {template.Windows{AdminPassword: guest.NewSecret(strings.Repeat("x", 128))}, ""},
	} {
		if _, err := template.RenderCloudbaseInit(tc.w, tc.name); !isInvalid(err) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}
