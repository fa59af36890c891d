package main

// This file tests the provider types and firewall drivers that need a
// simulated engine, Cloud Director or Hyper-V cluster: it uses the
// module's wire-level fakes (internal/fakes), so it is the one file to
// leave behind when copying this program into another module.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	fakeovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
	"github.com/managedvm/managedvm/internal/fakes/sshserver"
	fakevcd "github.com/managedvm/managedvm/internal/fakes/vcd"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigOtherProviderTypes(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", "x\n")
	for _, tc := range []struct {
		name, provider string
		extra          string // appended at the top level
		want           []string
	}{
		{"ovirt without zones", "    type: ovirt\n    url: https://engine/ovirt-engine/api\n    username: admin@internal\n    password_file: " + pw + "\n", "",
			[]string{"site.yaml:7: providers[0].zones: an ovirt provider needs at least one zone"}},
		{"ovirt zone lists", "    type: ovirt\n    url: https://engine/ovirt-engine/api\n    username: admin@internal\n    password_file: " + pw + "\n    zones: [{name: z, clusters: [a]}]\n", "",
			[]string{"site.yaml:12: providers[0].zones[0]: an ovirt zone needs datacenter and cluster"}},
		{"vcd password and token", "    type: vcd\n    url: https://vcd\n    org: acme\n    username: u\n    password_file: " + pw + "\n    api_token_file: " + pw + "\n", "",
			[]string{"site.yaml:7: providers[0]: set a password or an API token, not both"}},
		{"vcd without org", "    type: vcd\n    url: https://vcd\n    api_token_file: " + pw + "\n", "",
			[]string{`site.yaml:7: providers[0].org: "" is not an organization name`}},
		{"vcd with zones", "    type: vcd\n    url: https://vcd\n    org: acme\n    api_token_file: " + pw + "\n    zones: [{name: z}]\n", "",
			[]string{"site.yaml:12: providers[0].zones: is not a key of a vcd provider"}},
		{"hyperv without nodes", "    type: hyperv\n    username: 'CORP\\svc'\n    password_file: " + pw + "\n", "",
			[]string{"providers[0].nodes: a hyperv provider needs its cluster's nodes", "providers[0].hyperv.templates_path: is required"}},
		{"hyperv bad pin", "    type: hyperv\n    username: 'CORP\\svc'\n    password_file: " + pw + "\n    nodes: [{name: HV1, host: hv1, cert_sha256: abc}]\n    hyperv: {templates_path: 'C:\\T'}\n", "",
			[]string{"site.yaml:11: providers[0].nodes[0].cert_sha256: is not a SHA-256 fingerprint"}},
		{"unknown type", "    type: xen\n", "", []string{`providers[0].type: "xen" is not a provider type (vsphere, ovirt, vcd, hyperv, vspheresim)`}},
		{"vcd firewall without vcd provider", "    type: vspheresim\n", "firewall: {driver: vcd, vcd: {provider: vc, gateway: edge1}}\n",
			[]string{`site.yaml:12: firewall.vcd.provider: "vc" is not a provider of type vcd`}},
		{"nftables options on memory", "    type: vspheresim\n", "firewall: {nftables: {table: t}}\n",
			[]string{"site.yaml:12: firewall.nftables: only with driver nftables"}},
		{"nftables bad table", "    type: vspheresim\n", "firewall: {driver: nftables, nftables: {table: 'a b', manage_public_address: true}}\n",
			[]string{`site.yaml:12: firewall.nftables.table: "a b" is not a table name`, "firewall.nftables.manage_public_address: needs wan_interface"}},
		{"ssh without known hosts", "    type: vspheresim\n", "guest_network: {ssh: {port: 2222}}\n",
			[]string{"site.yaml:12: guest_network.ssh.known_hosts_file: is required"}},
		{"ssh insecure and known hosts", "    type: vspheresim\n", "guest_network: {ssh: {known_hosts_file: " + pw + ", insecure_accept_any_host_key: true}}\n",
			[]string{"guest_network.ssh.insecure_accept_any_host_key: verifies nothing"}},
		{"winrm both", "    type: vspheresim\n", "guest_network: {winrm: {ca_file: " + pw + ", insecure_skip_verify: true}}\n",
			[]string{"site.yaml:12: guest_network.winrm: set ca_file or insecure_skip_verify, not both"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(base, "    type: vspheresim\n", tc.provider, 1) + tc.extra
			_, err := ParseConfig("site.yaml", []byte(y))
			if err == nil {
				t.Fatalf("accepted:\n%s", y)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s\n--- config:\n%s", w, err, y)
				}
			}
		})
	}
}

// TestOtherProvidersAndEdgeFirewall runs the command line over an oVirt
// engine, a Cloud Director organization and a two-node Hyper-V cluster
// (their wire-level fakes), with the Cloud Director edge gateway as the
// firewall and SSH as the guest network: devices lists all three
// providers' VMs, preflight answers for each, and a Cloud Director VM
// enrolls over SSH (trust on first use, its key learned into the
// known_hosts file) with its NAT rule on the edge gateway, then
// unenrolls and the rule is gone.
func TestOtherProvidersAndEdgeFirewall(t *testing.T) {
	dir := t.TempDir()

	ov := fakeovirt.New(nil)
	t.Cleanup(ov.Close)
	if _, err := ov.AddVM(fakeovirt.VMSpec{Name: "ov-web", Status: "up", IPs: []netip.Addr{netip.MustParseAddr("10.1.0.5")}}); err != nil {
		t.Fatal(err)
	}

	vc := fakevcd.New(nil)
	t.Cleanup(vc.Close)
	_, err := vc.AddVM(fakevcd.VMSpec{Name: "vcd-web", IP: "10.2.0.5", PoweredOn: true, Tools: true})
	if err != nil {
		t.Fatal(err)
	}

	hv, err := hypervsim.New(hypervsim.Options{Cluster: "HVC1", Domain: "CORP", Nodes: []string{"HV1", "HV2"}, User: "svc-managedvm", Password: "hv-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hv.Close() })
	hv.AddCSV(hypervsim.CSV{Name: "Cluster Disk 1", Path: `C:\ClusterStorage\Templates`, Owner: "HV1"})
	if _, err := hv.AddVM(hypervsim.VM{Name: "hv-web", Owner: "HV2", State: "Running", Clustered: true}); err != nil {
		t.Fatal(err)
	}
	var hvCAs, nodes strings.Builder
	for _, n := range hv.Nodes() {
		ep, _ := hv.Endpoint(n)
		hvCAs.Write(ep.CACertPEM)
		fmt.Fprintf(&nodes, "      - {name: %s, host: %s, port: %d}\n", n, ep.Host, ep.Port)
	}

	// The guest: an SSH server on the loopback, which the pool's one
	// address (127.0.0.1) reaches; the customer's password.
	const guestPW = "vcd-guest-canary-8812"
	srv, err := sshserver.Start(sshserver.Config{User: "ops", Password: guestPW})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	_, sshPort, _ := strings.Cut(srv.Addr(), ":")
	knownHosts := filepath.Join(dir, "known_hosts")

	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
ipam:
  pools:
    - name: loop
      prefix: 127.0.0.0/30
      exclude: [127.0.0.2]
providers:
  - name: engine
    type: ovirt
    url: %s
    username: %s
    password_file: %s
    ca_file: %s
    zones: [{name: az1, datacenter: Default, cluster: Default}]
  - name: cloud
    type: vcd
    url: %s
    org: acme
    username: orgadmin
    password_file: %s
    ca_file: %s
  - name: hvc
    type: hyperv
    username: 'CORP\svc-managedvm'
    password_file: %s
    ca_file: %s
    nodes:
%s    hyperv: {zone: hz, templates_path: 'C:\ClusterStorage\Templates'}
firewall:
  driver: vcd
  vcd: {provider: cloud, gateway: edge1}
guest_network:
  ssh: {port: %s, known_hosts_file: %s, trust_on_first_use: true}
policy:
  pool: loop
  management_sources: [198.51.100.0/24]
`, ov.URL(), ov.User(), writeFile(t, dir, "ovpw", ov.Password()), writeFile(t, dir, "ovca", string(ov.CACertPEM())),
		vc.URL(), writeFile(t, dir, "vcdpw", "Passw0rd-tenant"), writeFile(t, dir, "vcdca", string(vc.CACertPEM())),
		writeFile(t, dir, "hvpw", "hv-pw"), writeFile(t, dir, "hvca", hvCAs.String()), nodes.String(),
		sshPort, knownHosts)
	path := writeFile(t, dir, "site.yaml", cfg)

	r := cli(t, "", "devices", "-config", path, "-json")
	wantExit(t, r, errs.OK)
	var devs []Device
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil {
		t.Fatalf("devices -json: %v\n%s", err, r.stdout)
	}
	byName := map[string]Device{}
	for _, d := range devs {
		byName[d.Name] = d
	}
	for name, prov := range map[string]string{"ov-web": "engine", "vcd-web": "cloud", "hv-web": "hvc"} {
		if d, ok := byName[name]; !ok || d.Provider != prov {
			t.Errorf("devices: %s on %q (listed: %v), want on %s", name, d.Provider, ok, prov)
		}
	}

	r = cli(t, "", "preflight", "-config", path, "-json")
	if r.code != 0 && r.code != int(errs.FailedPrecondition) {
		t.Fatalf("preflight: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) == 0 {
		t.Fatalf("preflight -json: %v\n%s", err, r.stdout)
	}
	seen := map[string]bool{}
	for _, row := range rows {
		p, _ := row["provider"].(string)
		seen[p] = true
	}
	for _, p := range []string{"engine", "cloud", "hvc"} {
		if !seen[p] {
			t.Errorf("preflight has no row of %s:\n%s", p, r.stdout)
		}
	}

	r = cli(t, guestPW+"\n", "enroll", "-config", path, "-json", "-user", "ops", "-password-file", "-", "vcd-web")
	wantExit(t, r, errs.OK)
	var res resultJSON
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.PublicIP != "127.0.0.1" {
		t.Fatalf("enroll: %v %+v\n%s", err, res, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, guestPW) {
		t.Errorf("the guest password appears in the output")
	}
	kh, err := os.ReadFile(knownHosts)
	if err != nil || !strings.Contains(string(kh), "[127.0.0.1]:"+sshPort+" ssh-ed25519 ") {
		t.Errorf("known_hosts after the first enrollment: %v %q", err, kh)
	}
	rules := vc.NATRules("edge1")
	found := false
	for _, rule := range rules {
		found = found || (rule.ExternalAddresses == "127.0.0.1" && rule.InternalAddresses == "10.2.0.5")
	}
	if !found {
		t.Errorf("no NAT rule 127.0.0.1 -> 10.2.0.5 on edge1: %+v", rules)
	}

	r = cli(t, guestPW+"\n", "unenroll", "-config", path, "-user", "ops", "-password-file", "-", "vcd-web")
	wantExit(t, r, errs.OK)
	for _, rule := range vc.NATRules("edge1") {
		if rule.ExternalAddresses == "127.0.0.1" {
			t.Errorf("the NAT rule outlived the unenrollment: %+v", rule)
		}
	}
}
