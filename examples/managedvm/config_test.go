package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultsParse(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Providers) != 1 || cfg.Providers[0].Type != "vspheresim" || !cfg.Portal.DemoLogin || cfg.Store.Driver != "memory" {
		t.Errorf("embedded defaults: %+v", cfg)
	}
}

// base is a valid configuration the cases below break one key at a time.
const base = `listen: 127.0.0.1:0
ipam:
  pools:
    - name: p1
      prefix: 203.0.113.0/28
providers:
  - name: vc
    type: vspheresim
policy:
  pool: p1
  management_sources: [198.51.100.0/24]
`

func TestConfigErrorsNameKeyAndLine(t *testing.T) {
	if _, err := ParseConfig("site.yaml", []byte(base)); err != nil {
		t.Fatalf("the base configuration is refused: %v", err)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string // each a line of the error
	}{
		{"unknown top key", base + "listne: x\n", []string{"site.yaml:12: listne: unknown key (known: "}},
		{"unknown nested key", strings.Replace(base, "    type: vspheresim", "    type: vspheresim\n    usrname: x", 1),
			[]string{"site.yaml:9: providers[0].usrname: unknown key"}},
		{"bad prefix", strings.Replace(base, "203.0.113.0/28", "203.0.113.0/33", 1),
			[]string{`site.yaml:5: ipam.pools[0].prefix: "203.0.113.0/33" is not an IPv4 prefix`}},
		{"bad driver", base + "store: {driver: mysql}\n", []string{`site.yaml:12: store.driver: "mysql" is not one of memory, postgresql`}},
		{"pool missing", strings.Replace(base, "pool: p1", "pool: p2", 1), []string{`site.yaml:10: policy.pool: pool "p2" is not in ipam.pools`}},
		{"bad source", strings.Replace(base, "198.51.100.0/24", "198.51.100.0", 1),
			[]string{`site.yaml:11: policy.management_sources[0]: "198.51.100.0" is not a prefix`}},
		{"no sources", strings.Replace(base, "  management_sources: [198.51.100.0/24]\n", "", 1),
			[]string{"site.yaml:9: policy.management_sources: at least one prefix is required"}},
		{"public listen without TLS", strings.Replace(base, "127.0.0.1:0", "0.0.0.0:8443", 1),
			[]string{`site.yaml:1: listen: "0.0.0.0:8443" is not a loopback address`}},
		{"type mismatch", strings.Replace(base, "listen: 127.0.0.1:0", "listen: [a]", 1), []string{"site.yaml:1: listen: must be a single string value"}},
		{"yaml type error", base + "portal: {demo_login: maybe}\n", []string{"site.yaml:12: portal.demo_login: cannot unmarshal !!str `maybe` into bool"}},
		{"vsphere without password", strings.Replace(base, "type: vspheresim", "type: vsphere\n    url: http://vc/sdk", 1), []string{
			`site.yaml:9: providers[0].url: "http://vc/sdk" is not an https:// SDK URL`,
			"site.yaml:7: providers[0].username: is required",
			"site.yaml:7: providers[0]: set one of password_env, password_file",
		}},
		{"postgresql without DSN", base + "cmdb: {driver: postgresql}\n", []string{"postgresql: a driver is postgresql: set one of dsn, dsn_env, dsn_file"}},
		{"DSN never quoted", base + "cmdb: {driver: postgresql}\npostgresql: {dsn: 'mysql://u:canary-pw@h/db'}\n", []string{"site.yaml:13: postgresql.dsn: is not a postgres:// or postgresql:// URL"}},
		{"ldap", base + "ldap: {url: 'http://x', base_dn: 'dc=x'}\n", []string{
			`site.yaml:12: ldap.url: "http://x" is not an ldaps:// or ldap:// URL`,
			"site.yaml:12: ldap.operator_group: is required",
		}},
		{"sim VM", base[:strings.Index(base, "policy:")] + "    sim: {vms: [{name: a, ip: 300.1.1.1}]}\n" + base[strings.Index(base, "policy:"):],
			[]string{`site.yaml:9: providers[0].sim.vms[0].ip: "300.1.1.1" is not an IPv4 address`}},
		{"syntax", "a: [", []string{"site.yaml: line 1: did not find expected node content"}},
		{"empty", "", []string{"site.yaml: the file is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("site.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "canary-pw") {
				t.Errorf("the error prints the DSN's password:\n%s", msg)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("not a *ConfigError: %T", err)
			}
		})
	}
}

func TestConfigFileReadsSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(base, "type: vspheresim", "type: vsphere\n    url: https://vc.example/sdk\n    username: svc\n    password_file: "+pw, 1)
	if _, err := ParseConfig("site.yaml", []byte(y)); err != nil {
		t.Fatalf("refused: %v", err)
	}
	y = strings.Replace(y, pw, filepath.Join(dir, "missing"), 1)
	_, err := ParseConfig("site.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), "providers[0].password_file: cannot read") {
		t.Fatalf("a missing password file: %v", err)
	}
}
