package template_test

// Level-3 tests: what Debian's real cloud-init (22.4.2) does with the
// rendered documents. They run only cloud-init's schema check, its network
// converter into temp dirs, and its Python datasource readers on temp files
// (testdata/cloudinit/read.py); nothing acts on this machine. Every command
// goes through testdata/cloudinit/forkserver.py, which runs cloud-init's
// own entry point (what the cloud-init command runs) in a child forked
// after cloud-init's imports: the same code, without paying the imports for
// each of the hundred-odd commands.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/testenv"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/template"
)

// cloudInit is the cloud-init command and the Python that runs it.
type cloudInit struct {
	bin, python string
	srv         *ciServer
}

// ciServer is testdata/cloudinit/forkserver.py, started once per test
// binary and shared (one job at a time).
type ciServer struct {
	mu  sync.Mutex
	in  *json.Encoder
	out *bufio.Reader
	err error // once the server broke, every job fails with it
}

var ciServers struct {
	once sync.Once
	srv  *ciServer
	err  error
}

// ciAnswer is a job's exit status and output.
type ciAnswer struct {
	Code   int    `json:"code"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

func startCIServer(python string) (*ciServer, error) {
	script, err := filepath.Abs(filepath.Join("testdata", "cloudinit", "forkserver.py"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(python, script)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr // a crash of the server itself is seen
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// The server ends when its stdin closes: when this test binary exits.
	return &ciServer{in: json.NewEncoder(in), out: bufio.NewReaderSize(out, 1<<20)}, nil
}

// do runs one job (see forkserver.py) and returns its answer.
func (s *ciServer) do(job map[string]any) (ciAnswer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return ciAnswer{}, s.err
	}
	var a ciAnswer
	if err := s.in.Encode(job); err != nil {
		s.err = fmt.Errorf("forkserver: %w", err)
		return a, s.err
	}
	line, err := s.out.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &a)
	}
	if err != nil {
		s.err = fmt.Errorf("forkserver answer: %w", err)
	}
	return a, err
}

// run runs `cloud-init args...` through the server.
func (c cloudInit) run(args ...string) (ciAnswer, error) {
	return c.srv.do(map[string]any{"argv": append([]string{c.bin}, args...)})
}

const cloudInitHowTo = "cloud-init is not installed: run `mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled && " +
	"apt-get install --no-install-recommends cloud-init` (Debian 12: 22.4.2; the disabled file keeps it from acting on the machine)"

func needCloudInit(t *testing.T) cloudInit {
	t.Helper()
	bin := os.Getenv("MANAGEDVM_CLOUDINIT")
	if bin == "" {
		bin, _ = exec.LookPath("cloud-init")
	}
	if bin == "" {
		testenv.Missing(t, "cloud-init", cloudInitHowTo)
	}
	// cloud-init's Python is the one on its #! line, not whichever
	// python3 comes first in PATH.
	head, err := os.ReadFile(bin)
	if err != nil {
		testenv.Missing(t, "cloud-init", cloudInitHowTo)
	}
	line, _, _ := bytes.Cut(head, []byte("\n"))
	py := strings.TrimSpace(strings.TrimPrefix(string(line), "#!"))
	if !strings.HasPrefix(py, "/") || exec.Command(py, "-c", "import cloudinit.sources.helpers.openstack").Run() != nil {
		testenv.Missing(t, "cloud-init", cloudInitHowTo+" (its Python package does not import)")
	}
	// net-convert names a MAC-matched interface after this machine's
	// interface with that MAC, if it has one: the simulated guest's MACs
	// must not be here.
	addrs, _ := filepath.Glob("/sys/class/net/*/address")
	for _, a := range addrs {
		if b, err := os.ReadFile(a); err == nil && guestMACs[strings.TrimSpace(string(b))] != "" {
			t.Fatalf("this machine has %s, a MAC of the simulated guest: cloud-init would name the interface after it", a)
		}
	}
	ciServers.once.Do(func() { ciServers.srv, ciServers.err = startCIServer(py) })
	if ciServers.err != nil {
		t.Fatalf("starting testdata/cloudinit/forkserver.py: %v", ciServers.err)
	}
	return cloudInit{bin: bin, python: py, srv: ciServers.srv}
}

// schema runs `cloud-init schema --config-file` on a user-data document.
func (c cloudInit) schema(t *testing.T, userData []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(f, userData, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := c.run("schema", "--config-file", f)
	if err != nil || a.Code != 0 || !strings.Contains(a.Stdout+a.Stderr, "Valid cloud-config") {
		t.Errorf("cloud-init schema: %v, exit %d\n%s%s\n%s", err, a.Code, a.Stdout, a.Stderr, userData)
	}
}

// netConvert runs `cloud-init devel net-convert` on a network config
// (kind "yaml" or "network_data.json") for each output format and returns
// the files written, by format and path. macs (name -> MAC) is the guest's
// interfaces for network_data.json.
func (c cloudInit) netConvert(t *testing.T, kind string, config []byte, macs map[string]string) map[string]map[string]string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "input")
	if err := os.WriteFile(in, config, 0o600); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, format := range []string{"eni", "networkd", "netplan"} {
		target := filepath.Join(dir, format)
		args := []string{"devel", "net-convert", "-p", in, "-k", kind, "-D", "debian", "-d", target, "-O", format}
		for name, mac := range macs {
			args = append(args, "-m", name+","+mac)
		}
		if a, err := c.run(args...); err != nil || a.Code != 0 {
			t.Fatalf("cloud-init %s: %v, exit %d\n%s%s\ninput:\n%s", strings.Join(args, " "), err, a.Code, a.Stdout, a.Stderr, config)
		}
		files := map[string]string{}
		err := filepath.Walk(target, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(target, p)
			files[rel] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out[format] = files
	}
	return out
}

// ciRead is what read.py reports cloud-init's datasource read and would do.
type ciRead struct {
	MetaData map[string]any            `json:"metadata"`
	UserData string                    `json:"userdata"`
	Network  map[string]any            `json:"network"`
	Users    map[string]map[string]any `json:"users"`
	Commands []struct {
		Argv  []string `json:"argv"`
		Stdin string   `json:"stdin"`
	} `json:"commands"`
	Sudo map[string][]string `json:"sudo"`
	Keys map[string][]string `json:"keys"`
}

// The simulated guest: its interfaces, accounts and groups.
var (
	guestMACs     = map[string]string{"00:50:56:00:00:10": "ens192", "00:50:56:00:00:20": "ens224"}
	guestAccounts = []string{"root", "debian"}
	guestGroups   = []string{"root", "adm", "sudo", "users"}
)

func (c cloudInit) read(t *testing.T, kind, dir string, keys map[string]string) ciRead {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"kind": kind, "dir": dir, "keys": keys, "macs": guestMACs,
		"existing": guestAccounts, "groups": guestGroups})
	script, err := filepath.Abs(filepath.Join("testdata", "cloudinit", "read.py"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.srv.do(map[string]any{"script": script, "stdin": string(req)})
	if err != nil || a.Code != 0 {
		t.Fatalf("read.py %s: %v, exit %d\n%s", kind, err, a.Code, a.Stderr)
	}
	var r ciRead
	if err := json.Unmarshal([]byte(a.Stdout), &r); err != nil {
		t.Fatalf("read.py output: %v\n%s", err, a.Stdout)
	}
	return r
}

func writeTree(t *testing.T, root string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// wantNIC is what cloud-init must configure for one NIC.
type wantNIC struct {
	name   string // interface name cloud-init configures ("" when only the MAC is known here)
	mac    string
	glob   bool // name is a pattern
	addr   string
	gw     string
	dns    []string
	search []string
}

// ciCase is one row of the settings table.
type ciCase struct {
	name     string
	s        template.Settings
	nics     []wantNIC
	noConfig bool // ConfigDrive refuses these settings
}

func ciCases() []ciCase {
	static := func(a, gw string, dns ...string) *provider.StaticIP {
		st := &provider.StaticIP{Address: netip.MustParsePrefix(a), Gateway: netip.MustParseAddr(gw)}
		for _, d := range dns {
			st.DNS = append(st.DNS, netip.MustParseAddr(d))
		}
		return st
	}
	base := func() template.Settings {
		return template.Settings{InstanceID: "iid-ci-0001", Hostname: "ci01", Domain: "example.com"}
	}
	users := base()
	users.Users = []template.User{
		{Name: "ops", Password: guest.NewSecret(linuxPassword), Sudo: true, Shell: "/bin/bash", Groups: []string{"adm", "monitoring"},
			SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqsZC3SWcqTUQH2jzzK0wqN ops@example"}},
		{Name: "root", PasswordHash: "$6$saltsalt$0Mkq7rLRyYuGbbeLsi9ZScm1kp3D1ThjyzHSzuxQxmAjzUutsVybLkChSwqL6GeQKfOEBDBXT7e9n2V7Lz2L9.",
			SSHAuthorizedKeys: []string{"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 root@example"}},
	}
	users.Files = []template.File{
		{Path: "/home/ops/.config/agent.conf", Content: []byte("server=hcp.example.com\n"), Permissions: 0o600, Owner: "ops:ops"},
		{Path: "/var/lib/agent/state", Content: []byte("x\n"), Owner: "root:monitoring"},
		{Path: "/etc/motd", Content: []byte("managed\n")},
	}
	users.RunCmd = []string{"echo 'yes: no' > /var/tmp/first", "systemctl enable --now qemu-guest-agent"}
	users.Packages = []string{"curl", "qemu-guest-agent"}

	dhcpName, staticMAC, both, glob := base(), base(), base(), base()
	dhcpName.NICs = []template.NIC{{Name: "ens192"}}
	staticMAC.NICs = []template.NIC{{MAC: "00:50:56:00:00:10", Static: static("192.0.2.10/24", "192.0.2.1", "192.0.2.53", "192.0.2.54"),
		SearchDomains: []string{"example.com", "corp.example"}}}
	both.NICs = []template.NIC{
		{MAC: "00-50-56-00-00-20", Name: "lan0", Static: static("198.51.100.7/25", "198.51.100.1", "198.51.100.2"), SearchDomains: []string{"lan.example"}},
		{Name: "ens192", SearchDomains: []string{"dhcp.example"}},
	}
	glob.NICs = []template.NIC{{Name: "ens*"}}
	return []ciCase{
		{name: "dhcp-nic-by-name", s: dhcpName, nics: []wantNIC{{name: "ens192"}}},
		{name: "static-nic-by-mac", s: staticMAC, nics: []wantNIC{{mac: "00:50:56:00:00:10", addr: "192.0.2.10/24", gw: "192.0.2.1",
			dns: []string{"192.0.2.53", "192.0.2.54"}, search: []string{"example.com", "corp.example"}}}},
		{name: "mac-renamed-and-name", s: both, nics: []wantNIC{
			{name: "lan0", mac: "00:50:56:00:00:20", addr: "198.51.100.7/25", gw: "198.51.100.1", dns: []string{"198.51.100.2"}, search: []string{"lan.example"}},
			{name: "ens192", search: []string{"dhcp.example"}},
		}},
		{name: "dhcp-nic-by-glob", s: glob, nics: []wantNIC{{name: "ens*", glob: true}}, noConfig: true},
		{name: "users-files-runcmd-packages", s: users},
	}
}

// TestCloudInitReadsWhatWeMean renders every row of the settings table
// with every renderer and checks, with the real cloud-init, the schema,
// the interfaces eni, networkd and netplan configure, and the users,
// passwords, sudo rules, keys, files, commands and packages cloud-init
// applies.
func TestCloudInitReadsWhatWeMean(t *testing.T) {
	ci := needCloudInit(t)
	for _, tc := range ciCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("nocloud", func(t *testing.T) {
				nc, err := template.RenderNoCloud(tc.s, detOpts())
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				writeTree(t, filepath.Join(dir, "seed"), nc.Files())
				r := ci.read(t, "nocloud", dir, nil)
				checkRead(t, ci, tc, r, "yaml")
			})
			t.Run("configdrive", func(t *testing.T) {
				cd, err := template.RenderConfigDrive(tc.s, detOpts())
				if tc.noConfig {
					if !isInvalid(err) {
						t.Fatalf("RenderConfigDrive = %v, want InvalidArgument", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				writeTree(t, filepath.Join(dir, "drive"), cd.Files())
				r := ci.read(t, "configdrive", dir, nil)
				checkRead(t, ci, tc, r, "network_data.json")
				if cd.NetworkData != nil {
					// The converter's own network_data.json reader agrees.
					macs := map[string]string{}
					for mac, name := range guestMACs {
						macs[name] = mac
					}
					checkNetwork(t, tc, ci.netConvert(t, "network_data.json", cd.NetworkData, macs), "network_data.json")
				}
			})
			t.Run("guestinfo", func(t *testing.T) {
				for _, compress := range []bool{false, true} {
					opts := detOpts()
					opts.Compress = compress
					gi, err := template.RenderGuestInfo(tc.s, opts)
					if err != nil {
						t.Fatal(err)
					}
					r := ci.read(t, "guestinfo", t.TempDir(), gi)
					checkRead(t, ci, tc, r, "yaml")
				}
			})
		})
	}
}

func checkRead(t *testing.T, ci cloudInit, tc ciCase, r ciRead, netKind string) {
	t.Helper()
	s := tc.s
	id := r.MetaData["instance-id"]
	if id == nil {
		id = r.MetaData["uuid"]
	}
	if id != s.InstanceID {
		t.Errorf("cloud-init reads instance ID %v, want %q", id, s.InstanceID)
	}
	ci.schema(t, []byte(r.UserData))
	var cc map[string]any
	if err := yaml.Unmarshal([]byte(r.UserData), &cc); err != nil {
		t.Fatal(err)
	}
	if cc["hostname"] != s.Hostname || cc["fqdn"] != s.FQDN() {
		t.Errorf("hostname %v fqdn %v, want %q %q", cc["hostname"], cc["fqdn"], s.Hostname, s.FQDN())
	}
	checkUsers(t, s, r)
	checkFiles(t, s, cc)
	if got := anyStrings(cc["runcmd"]); !slices.Equal(got, s.RunCmd) {
		t.Errorf("runcmd = %q, want %q", got, s.RunCmd)
	}
	if got := anyStrings(cc["packages"]); !slices.Equal(got, s.Packages) {
		t.Errorf("packages = %q, want %q", got, s.Packages)
	}

	if len(tc.nics) == 0 {
		if r.Network != nil {
			t.Errorf("network config without NICs: %v", r.Network)
		}
		return
	}
	if r.Network == nil {
		t.Fatal("cloud-init reads no network config")
	}
	// The datasource's network config, as cloud-init hands it to the
	// renderers, through the real converter.
	nw, _ := yaml.Marshal(r.Network)
	checkNetwork(t, tc, ci.netConvert(t, "yaml", nw, nil), netKind)
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// checkUsers: every user is created (or, when the guest has it already,
// only updated), gets its password hash through chpasswd -e, its sudo rule
// and its keys; no distribution default user appears.
func checkUsers(t *testing.T, s template.Settings, r ciRead) {
	t.Helper()
	if len(r.Users) != len(s.Users) {
		t.Errorf("cloud-init users %v, want %d", keysOfUsers(r.Users), len(s.Users))
	}
	chpasswd := map[string]string{}
	useradd := map[string][]string{}
	for _, c := range r.Commands {
		switch c.Argv[0] {
		case "chpasswd":
			if !slices.Equal(c.Argv, []string{"chpasswd", "-e"}) {
				t.Errorf("chpasswd %q, want chpasswd -e (a hash)", c.Argv)
			}
			name, hash, _ := strings.Cut(c.Stdin, ":")
			chpasswd[name] = strings.TrimSpace(hash)
		case "useradd":
			useradd[c.Argv[1]] = c.Argv
		}
	}
	for _, u := range s.Users {
		existing := slices.Contains(guestAccounts, u.Name)
		argv, added := useradd[u.Name]
		if added == existing {
			t.Errorf("user %s: useradd run = %v, the guest has it already = %v", u.Name, added, existing)
		}
		if added && u.Shell != "" && !strings.Contains(strings.Join(argv, " "), "--shell "+u.Shell) {
			t.Errorf("useradd %q without --shell %s", argv, u.Shell)
		}
		for _, g := range u.Groups {
			if added && !strings.Contains(strings.Join(argv, " "), g) {
				t.Errorf("useradd %q without group %s", argv, g)
			}
		}
		hash := chpasswd[u.Name]
		switch {
		case !u.Password.IsZero():
			if !template.CheckPassword(u.Password, hash) {
				t.Errorf("user %s: chpasswd -e gets %q, not a hash of the password", u.Name, hash)
			}
		case u.PasswordHash != "":
			if hash != u.PasswordHash {
				t.Errorf("user %s: chpasswd -e gets %q, want %q", u.Name, hash, u.PasswordHash)
			}
		default:
			if hash != "" {
				t.Errorf("user %s: password set without one", u.Name)
			}
		}
		if got := r.Sudo[u.Name]; u.Sudo != (len(got) == 1 && got[0] == "ALL=(ALL) NOPASSWD:ALL") {
			t.Errorf("user %s: sudo rules %q, Sudo = %v", u.Name, got, u.Sudo)
		}
		if got := r.Keys[u.Name]; !slices.Equal(got, slices.Sorted(slices.Values(u.SSHAuthorizedKeys))) {
			t.Errorf("user %s: authorized keys %q, want %q", u.Name, got, u.SSHAuthorizedKeys)
		}
	}
	for name := range r.Users {
		if !slices.ContainsFunc(s.Users, func(u template.User) bool { return u.Name == name }) {
			t.Errorf("cloud-init would set up user %q, not in the settings", name)
		}
	}
}

func keysOfUsers(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkFiles: each file is written by write_files (before users-groups)
// or, when its owner is created by the same document, deferred to the
// final stage, after users-groups: the order /etc/cloud/cloud.cfg gives.
func checkFiles(t *testing.T, s template.Settings, cc map[string]any) {
	t.Helper()
	wf, _ := cc["write_files"].([]any)
	if len(wf) != len(s.Files) {
		t.Fatalf("write_files %v, want %d files", wf, len(s.Files))
	}
	created := map[string]bool{}
	for _, u := range s.Users {
		created[u.Name] = true
		for _, g := range u.Groups {
			created[g] = true
		}
	}
	stage := moduleStages(t)
	for i, f := range s.Files {
		e := wf[i].(map[string]any)
		owner, _ := e["owner"].(string)
		if e["path"] != f.Path || owner != f.Owner {
			t.Errorf("write_files[%d] = %v", i, e)
		}
		module := "write-files"
		if d, _ := e["defer"].(bool); d {
			module = "write-files-deferred"
		}
		user, group, _ := strings.Cut(owner, ":")
		if created[user] || created[group] {
			if !stage.before("users-groups", module) {
				t.Errorf("%s owned by %s is written by %s, before users-groups creates the owner", f.Path, owner, module)
			}
		} else if module != "write-files" {
			t.Errorf("%s owned by %q is deferred without need", f.Path, owner)
		}
		if !stage.before(module, "scripts-user") {
			t.Errorf("%s is written by %s, after runcmd runs", f.Path, module)
		}
	}
}

// stages is the module order of /etc/cloud/cloud.cfg: stage index and
// position within the stage.
type stages map[string][2]int

func (s stages) before(a, b string) bool {
	x, okx := s[a]
	y, oky := s[b]
	return okx && oky && (x[0] < y[0] || x[0] == y[0] && x[1] < y[1])
}

func moduleStages(t *testing.T) stages {
	t.Helper()
	b, err := os.ReadFile("/etc/cloud/cloud.cfg")
	if err != nil {
		t.Fatalf("cloud-init's module order: %v", err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	out := stages{}
	for i, key := range []string{"cloud_init_modules", "cloud_config_modules", "cloud_final_modules"} {
		for j, m := range anyStrings(cfg[key]) {
			out[strings.ReplaceAll(m, "_", "-")] = [2]int{i, j}
		}
	}
	return out
}

// checkNetwork checks eni, networkd and netplan output against tc.nics.
func checkNetwork(t *testing.T, tc ciCase, out map[string]map[string]string, kind string) {
	t.Helper()
	eni := out["eni"]["etc/network/interfaces.d/50-cloud-init"]
	stanzas := eniStanzas(eni)
	networks := networkdFiles(out["networkd"])
	var plan struct {
		Network struct {
			Ethernets map[string]map[string]any `yaml:"ethernets"`
		} `yaml:"network"`
	}
	if err := yaml.Unmarshal([]byte(out["netplan"]["etc/netplan/50-cloud-init.yaml"]), &plan); err != nil {
		t.Fatalf("netplan: %v", err)
	}
	for _, n := range tc.nics {
		what := n.name
		if what == "" {
			what = n.mac
		}
		// eni (ifupdown): the stanza is the interface name cloud-init
		// picked; a NIC known only by MAC is named on the guest, or here
		// from the config drive's MAC map.
		name := n.name
		if name == "" && kind == "network_data.json" {
			name = guestMACs[n.mac]
		}
		if name != "" {
			st, ok := stanzas[name]
			switch {
			case !ok:
				t.Errorf("%s: eni configures %v, not %s:\n%s", kind, keysOfStanzas(stanzas), name, eni)
			default:
				checkLines(t, kind+" eni "+name, st, eniWant(n))
			}
			// DNS servers: on the interface from a version 2 config; a
			// config drive's are global (services), which eni puts on lo.
			if len(n.dns) > 0 {
				where, lines := name, st
				if kind == "network_data.json" {
					where, lines = "lo", stanzas["lo"]
				}
				checkLines(t, kind+" eni "+where, lines, []string{"dns-nameservers " + strings.Join(n.dns, " ")})
			}
		} else if !strings.Contains(eni, "address "+n.addr) {
			t.Errorf("%s: eni lacks address %s:\n%s", kind, n.addr, eni)
		}
		// networkd: a .network file matching the interface by name or MAC.
		nd := findNetworkd(networks, n, name)
		if nd == nil {
			t.Errorf("%s: no networkd file matches %s: %v", kind, what, out["networkd"])
		} else {
			checkLines(t, kind+" networkd "+what, nd, networkdWant(n, kind))
		}
		// netplan: an ethernets entry that selects the interface.
		if e := findNetplan(plan.Network.Ethernets, n, name); e == nil {
			t.Errorf("%s: no netplan entry selects %s: %v", kind, what, plan.Network.Ethernets)
		} else {
			checkNetplan(t, kind, what, e, n)
		}
	}
}

// dhcpSearchApplies reports whether cloud-init 22.4 applies a DHCP NIC's
// search domains in format: only netplan from a version 2 config (NoCloud,
// guestinfo). eni renders DNS settings of static subnets only; networkd's
// per-interface DNS is lost because 22.4 refuses a v2 "nameservers" entry
// without addresses (a warning, "Skipping invalid command"); a config
// drive puts them on the DHCP subnet, where no renderer reads them.
func dhcpSearchApplies(kind, format string) bool { return kind == "yaml" && format == "netplan" }

func eniWant(n wantNIC) []string {
	if n.addr == "" {
		return []string{"inet dhcp"}
	}
	want := []string{"inet static", "address " + n.addr, "post-up route add default gw " + n.gw + " || true"}
	if len(n.search) > 0 {
		want = append(want, "dns-search "+strings.Join(n.search, " "))
	}
	return want
}

func networkdWant(n wantNIC, kind string) []string {
	var want []string
	if n.glob || n.name != "" && kind != "network_data.json" {
		want = append(want, "Name="+n.name)
	}
	if n.mac != "" {
		want = append(want, "MACAddress="+n.mac)
	}
	if n.addr == "" {
		want = append(want, "DHCP=ipv4")
	} else {
		want = append(want, "Address="+n.addr, "Gateway="+n.gw)
		if len(n.search) > 0 {
			want = append(want, "Domains="+strings.Join(n.search, " "))
		}
	}
	if len(n.dns) > 0 {
		want = append(want, "DNS="+strings.Join(n.dns, " "))
	}
	return want
}

func checkLines(t *testing.T, what string, have []string, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.ContainsFunc(have, func(l string) bool { return strings.Contains(l, w) }) {
			t.Errorf("%s: no %q in\n%s", what, w, strings.Join(have, "\n"))
		}
	}
}

var ifaceRE = regexp.MustCompile(`^iface (\S+) (inet6? \S+)`)

// eniStanzas splits /etc/network/interfaces into stanzas by interface.
func eniStanzas(eni string) map[string][]string {
	out := map[string][]string{}
	var cur string
	for _, l := range strings.Split(eni, "\n") {
		if m := ifaceRE.FindStringSubmatch(l); m != nil {
			cur = m[1]
			out[cur] = append(out[cur], m[2])
			continue
		}
		if strings.HasPrefix(l, " ") && cur != "" {
			out[cur] = append(out[cur], strings.TrimSpace(l))
		} else {
			cur = ""
		}
	}
	return out
}

func keysOfStanzas(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func networkdFiles(files map[string]string) [][]string {
	var out [][]string
	for p, c := range files {
		if strings.HasSuffix(p, ".network") {
			var lines []string
			for _, l := range strings.Split(c, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					lines = append(lines, l)
				}
			}
			out = append(out, lines)
		}
	}
	return out
}

func findNetworkd(files [][]string, n wantNIC, name string) []string {
	for _, f := range files {
		if name != "" && slices.Contains(f, "Name="+name) || n.mac != "" && slices.Contains(f, "MACAddress="+n.mac) {
			return f
		}
	}
	return nil
}

func findNetplan(eth map[string]map[string]any, n wantNIC, name string) map[string]any {
	for key, e := range eth {
		m, _ := e["match"].(map[string]any)
		switch {
		case n.mac != "" && m["macaddress"] == n.mac:
			return e
		case n.mac == "" && name != "" && (m["name"] == name || m == nil && key == name):
			return e
		}
	}
	return nil
}

func checkNetplan(t *testing.T, kind, what string, e map[string]any, n wantNIC) {
	t.Helper()
	if n.mac != "" && n.name != "" && e["set-name"] != n.name {
		t.Errorf("%s netplan %s: set-name %v, want %s", kind, what, e["set-name"], n.name)
	}
	if n.addr == "" {
		if e["dhcp4"] != true {
			t.Errorf("%s netplan %s: dhcp4 %v", kind, what, e["dhcp4"])
		}
	} else if a := anyStrings(e["addresses"]); !slices.Contains(a, n.addr) {
		t.Errorf("%s netplan %s: addresses %v, want %s", kind, what, a, n.addr)
	}
	ns, _ := e["nameservers"].(map[string]any)
	// 22.4's netplan renderer drops a config drive's (global) DNS servers.
	if len(n.dns) > 0 && kind == "yaml" && !slices.Equal(anyStrings(ns["addresses"]), n.dns) {
		t.Errorf("%s netplan %s: nameservers %v, want %v", kind, what, ns["addresses"], n.dns)
	}
	if len(n.search) > 0 && (n.addr != "" || dhcpSearchApplies(kind, "netplan")) && !slices.Equal(anyStrings(ns["search"]), n.search) {
		t.Errorf("%s netplan %s: search %v, want %v", kind, what, ns["search"], n.search)
	}
}
