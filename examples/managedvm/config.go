package main

import (
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/natfw"
)

// defaultsYAML is the configuration used when no file is given: a
// simulated vCenter in this process with a few VMs, in-memory drivers and
// the demo login. It is also a commented example of every key.
//
//go:embed defaults.yaml
var defaultsYAML []byte

// Config is the whole configuration file.
type Config struct {
	// Instance names this replica for the orchestrator's leases (default:
	// the host name).
	Instance string `yaml:"instance"`
	// Listen is the portal's and API's address; TLS its certificate.
	Listen string    `yaml:"listen"`
	TLS    TLSConfig `yaml:"tls"`
	// PostgreSQL is the database the drivers set to "postgresql" share.
	PostgreSQL PostgreSQLConfig `yaml:"postgresql"`
	Store      DriverConfig     `yaml:"store"`
	CMDB       DriverConfig     `yaml:"cmdb"`
	Firewall   FirewallConfig   `yaml:"firewall"`
	IPAM       IPAMConfig       `yaml:"ipam"`
	Providers  []ProviderConfig `yaml:"providers"`
	// Policy is the default service profile; Profiles the named ones.
	Policy   PolicyConfig            `yaml:"policy"`
	Profiles map[string]PolicyConfig `yaml:"profiles"`
	// GuestNetwork says how enrollment reaches guests over the network
	// (SSH for Linux, WinRM for Windows, through their public IP). Unset,
	// it reaches them through the provider's guest access (vSphere's
	// VMware Tools, Hyper-V's PowerShell Direct); oVirt and Cloud Director
	// have none, so their VMs need it.
	GuestNetwork *GuestNetworkConfig `yaml:"guest_network"`
	// ServiceAccount, if set, is the OS account the configure step
	// creates in each enrolled guest (and unenrollment removes).
	ServiceAccount string `yaml:"service_account"`
	// ResumeEvery is how often open journals of crashed replicas are
	// taken over (Go duration; default 30s).
	ResumeEvery string       `yaml:"resume_every"`
	Portal      PortalConfig `yaml:"portal"`
	LDAP        *LDAPConfig  `yaml:"ldap"`
}

// TLSConfig names the portal's certificate and key (PEM files).
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// PostgreSQLConfig says where the database is. The DSN holds a password,
// so it is read from an environment variable or a file (or given inline).
type PostgreSQLConfig struct {
	DSN     string `yaml:"dsn"`
	DSNEnv  string `yaml:"dsn_env"`
	DSNFile string `yaml:"dsn_file"`
}

// DriverConfig picks a driver: "memory" (default) or "postgresql".
type DriverConfig struct {
	Driver string `yaml:"driver"`
}

// FirewallConfig picks the firewall driver: "memory" (default),
// "nftables" (this Linux host's kernel; Linux only) or "vcd" (a Cloud
// Director provider's NSX-T edge gateway).
type FirewallConfig struct {
	Driver   string          `yaml:"driver"`
	NFTables *NFTablesConfig `yaml:"nftables"`
	VCD      *VCDEdgeConfig  `yaml:"vcd"`
}

// NFTablesConfig is natfw/nftables' options.
type NFTablesConfig struct {
	// Table is the nftables table of the NAT rules (default managedvm).
	Table string `yaml:"table"`
	// NetNSPath runs the rules in that network namespace (for example
	// /run/netns/edge); empty is this process's.
	NetNSPath string `yaml:"netns_path"`
	// WANInterface is the public interface; with ManagePublicAddress the
	// driver adds each public IP to it and removes it with the rule.
	WANInterface        string `yaml:"wan_interface"`
	ManagePublicAddress bool   `yaml:"manage_public_address"`
	// LockDir holds the lock that serializes writers across processes.
	LockDir string `yaml:"lock_dir"`
}

// VCDEdgeConfig names the edge gateway of a vcd provider.
type VCDEdgeConfig struct {
	// Provider is the name of a provider of type vcd: its endpoint,
	// credentials and certificate are used.
	Provider string `yaml:"provider"`
	// Gateway is the edge gateway's name in that organization.
	Gateway string `yaml:"gateway"`
}

// GuestNetworkConfig configures the network dialers.
type GuestNetworkConfig struct {
	SSH   *SSHDialConfig   `yaml:"ssh"`
	WinRM *WinRMDialConfig `yaml:"winrm"`
}

// SSHDialConfig reaches Linux guests over SSH. The host key is verified
// against KnownHostsFile (OpenSSH known_hosts format); with
// TrustOnFirstUse a host not in it is accepted once and its key appended
// to the file (a changed key is still refused).
// InsecureAcceptAnyHostKey turns verification off (loudly; never in
// production).
type SSHDialConfig struct {
	Port                     int    `yaml:"port"`
	KnownHostsFile           string `yaml:"known_hosts_file"`
	TrustOnFirstUse          bool   `yaml:"trust_on_first_use"`
	InsecureAcceptAnyHostKey bool   `yaml:"insecure_accept_any_host_key"`
}

// WinRMDialConfig reaches Windows guests over WinRM HTTPS with NTLM; the
// guest's certificate is verified against CAFile (else the system's
// roots). InsecureSkipVerify turns that off (loudly).
type WinRMDialConfig struct {
	Port               int    `yaml:"port"`
	CAFile             string `yaml:"ca_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// IPAMConfig picks the IPAM driver and the pools it must hold.
type IPAMConfig struct {
	Driver string       `yaml:"driver"`
	Pools  []PoolConfig `yaml:"pools"`
}

// PoolConfig is one public address pool.
type PoolConfig struct {
	Name    string   `yaml:"name"`
	Prefix  string   `yaml:"prefix"`
	Gateway string   `yaml:"gateway"`
	Exclude []string `yaml:"exclude"` // addresses or FROM-TO ranges
}

// ProviderConfig is one hypervisor.
type ProviderConfig struct {
	Name string `yaml:"name"`
	// Type is "vsphere" (a vCenter), "ovirt" (an oVirt/RHV engine), "vcd"
	// (a VMware Cloud Director organization), "hyperv" (a Hyper-V
	// failover cluster) or "vspheresim" (a simulated vCenter started in
	// this process, for demos and tests).
	Type string `yaml:"type"`
	// URL: vsphere the SDK URL (https://vc/sdk), ovirt the engine's API
	// (https://engine/ovirt-engine/api), vcd the site (https://vcd).
	URL string `yaml:"url"`
	// Org is the vcd organization ("System" for a provider account).
	Org string `yaml:"org"`
	// Username and its password (environment variable or file) are the
	// service account; vcd may use an API token instead, hyperv a
	// DOMAIN\user for every node.
	Username     string `yaml:"username"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	APITokenEnv  string `yaml:"api_token_env"`
	APITokenFile string `yaml:"api_token_file"`
	// CAFile verifies the certificate (hyperv: of every node's WinRM);
	// vsphere may pin Thumbprint instead. Insecure turns verification
	// off and must be asked for.
	CAFile     string `yaml:"ca_file"`
	Thumbprint string `yaml:"thumbprint"`
	Insecure   bool   `yaml:"insecure"`
	// Zones map availability zones: vsphere onto datacenters and
	// clusters, ovirt onto one data center and cluster each. vcd's zones
	// are its VDCs and hyperv's the cluster (hyperv.zone).
	Zones []ZoneConfig `yaml:"zones"`
	// Nodes are a hyperv cluster's nodes, each reached over WinRM HTTPS.
	Nodes []HypervNodeConfig `yaml:"nodes"`
	// HyperV shapes a hyperv provider.
	HyperV *HypervConfig `yaml:"hyperv"`
	// Sim shapes a vspheresim provider.
	Sim *SimConfig `yaml:"sim"`
}

// ZoneConfig maps a zone onto vSphere objects (datacenters, clusters,
// networks) or one oVirt data center and cluster (datacenter, cluster,
// storage_domain, template_storage_domain).
type ZoneConfig struct {
	Name        string   `yaml:"name"`
	Datacenters []string `yaml:"datacenters"`
	Clusters    []string `yaml:"clusters"`
	Networks    []string `yaml:"networks"`

	DataCenter            string `yaml:"datacenter"`
	Cluster               string `yaml:"cluster"`
	StorageDomain         string `yaml:"storage_domain"`
	TemplateStorageDomain string `yaml:"template_storage_domain"`
}

// HypervNodeConfig is one Hyper-V node: its cluster name, the address
// WinRM reaches it at, and optionally the port (default 5986) and the
// SHA-256 of its certificate to pin (hex) instead of ca_file.
type HypervNodeConfig struct {
	Name       string `yaml:"name"`
	Host       string `yaml:"host"`
	Port       int    `yaml:"port"`
	CertSHA256 string `yaml:"cert_sha256"`
}

// HypervConfig is hyperv.Options.
type HypervConfig struct {
	Zone          string `yaml:"zone"`
	Switch        string `yaml:"switch"`
	TemplatesPath string `yaml:"templates_path"`
	VMsPath       string `yaml:"vms_path"`
	VLANs         []int  `yaml:"vlans"`
	Generation    int    `yaml:"generation"`
	FullCopy      bool   `yaml:"full_copy"`
}

// SimConfig describes the simulated vCenter's guests.
type SimConfig struct {
	// GuestAccounts are the guest OS accounts (user -> password) every
	// simulated guest accepts.
	GuestAccounts map[string]string `yaml:"guest_accounts"`
	VMs           []SimVMConfig     `yaml:"vms"`
	// Generate adds Count more VMs named Prefix0001... (load tests).
	Generate struct {
		Count  int    `yaml:"count"`
		Prefix string `yaml:"prefix"`
	} `yaml:"generate"`
}

// SimVMConfig is one simulated Debian 12 guest.
type SimVMConfig struct {
	Name string `yaml:"name"`
	IP   string `yaml:"ip"`
	// UseraddFails makes creating the service account fail in the guest
	// (to show an enrollment rolled back after its IP and NAT exist).
	UseraddFails bool `yaml:"useradd_fails"`
}

// PolicyConfig is a service profile.
type PolicyConfig struct {
	Pool              string                       `yaml:"pool"`
	PoolByZone        map[string]string            `yaml:"pool_by_zone"`
	ManagementSources []string                     `yaml:"management_sources"`
	Families          []string                     `yaml:"families"`
	Ports             map[string][]string          `yaml:"ports"`
	Requirements      map[string]RequirementConfig `yaml:"requirements"`
}

// RequirementConfig is the OS requirements of one family.
type RequirementConfig struct {
	Distributions  map[string]string `yaml:"distributions"`
	MinFreeDiskMiB int64             `yaml:"min_free_disk_mib"`
	DiskPath       string            `yaml:"disk_path"`
	Commands       []string          `yaml:"commands"`
}

// PortalConfig tunes the portal.
type PortalConfig struct {
	// DemoLogin enables the local demo account (embedded defaults only
	// should set it): user "demo", a random password printed at start-up.
	DemoLogin bool `yaml:"demo_login"`
	// URL is the portal's public URL (for the network requirements).
	URL string `yaml:"url"`
	// MetricsTokenEnv or MetricsTokenFile hold a bearer token that lets
	// a Prometheus scraper read /metrics without a portal session
	// ("Authorization: Bearer <token>", at least 16 bytes). Unset,
	// /metrics needs a logged-in session like every other page.
	MetricsTokenEnv  string `yaml:"metrics_token_env"`
	MetricsTokenFile string `yaml:"metrics_token_file"`
}

// LDAPConfig is the directory users log in against.
type LDAPConfig struct {
	// URL is ldaps://host[:636] or ldap://host[:389] (then StartTLS).
	URL    string `yaml:"url"`
	CAFile string `yaml:"ca_file"`
	// BindDN and its password (env or file) search for the user's entry.
	BindDN           string `yaml:"bind_dn"`
	BindPasswordEnv  string `yaml:"bind_password_env"`
	BindPasswordFile string `yaml:"bind_password_file"`
	BaseDN           string `yaml:"base_dn"`
	// UserAttribute is matched against the login name (default "uid").
	UserAttribute string `yaml:"user_attribute"`
	// OperatorGroup and ViewerGroup are group DNs; membership (the
	// user's memberOf, or the group's member) decides the role.
	OperatorGroup string `yaml:"operator_group"`
	ViewerGroup   string `yaml:"viewer_group"`
}

// ConfigError is a configuration mistake: the file, the key (a path such
// as providers[0].url) and its line.
type ConfigError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// LoadConfig reads a configuration file; path "" means the embedded
// defaults. Every mistake is reported at once, each naming its key and
// line.
func LoadConfig(path string) (*Config, error) {
	data, name := defaultsYAML, "(embedded defaults)"
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading the configuration: %w", err)
		}
		data, name = b, path
	}
	return ParseConfig(name, data)
}

// ParseConfig parses and checks a configuration.
func ParseConfig(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &ConfigError{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	cfg := &Config{}
	if len(root.Content) == 0 {
		return nil, &ConfigError{File: name, Msg: "the file is empty"}
	}
	p := &positions{file: name, lines: map[string]int{}}
	p.walk(root.Content[0], reflect.TypeOf(cfg).Elem(), "")
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if err := root.Content[0].Decode(cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				p.errs = append(p.errs, p.typeError(m))
			}
			return nil, errors.Join(p.errs...)
		}
		return nil, &ConfigError{File: name, Msg: err.Error()}
	}
	cfg.validate(p)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			return p.errs[i].(*ConfigError).Line < p.errs[j].(*ConfigError).Line
		})
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

var typeErrorLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeError names the key of a yaml type error ("line 3: cannot unmarshal
// !!str `x` into int"): the deepest key on that line.
func (p *positions) typeError(msg string) *ConfigError {
	m := typeErrorLine.FindStringSubmatch(msg)
	if m == nil {
		return &ConfigError{File: p.file, Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	key := ""
	for k, l := range p.lines {
		if l == line && (len(k) > len(key) || (len(k) == len(key) && k < key)) {
			key = k
		}
	}
	return &ConfigError{File: p.file, Line: line, Key: key, Msg: m[2]}
}

// positions records the line of every key and collects the mistakes.
type positions struct {
	file  string
	lines map[string]int
	errs  []error
}

func (p *positions) fail(key, format string, args ...any) {
	line := p.lines[key]
	// A missing key is reported at its parent's line.
	for k := key; line == 0 && k != ""; {
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
		line = p.lines[k]
	}
	p.errs = append(p.errs, &ConfigError{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// walk records where each key is and reports keys the type does not have.
func (p *positions) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if _, seen := p.lines[path]; !seen && path != "" {
		p.lines[path] = n.Line
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				p.errs = append(p.errs, &ConfigError{File: p.file, Line: n.Line, Key: path, Msg: "must be a mapping of keys"})
			}
			return
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields[tag] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				p.errs = append(p.errs, &ConfigError{File: p.file, Line: k.Line, Key: key, Msg: "unknown key (known: " + strings.Join(sortedKeys(fields), ", ") + ")"})
				continue
			}
			p.lines[key] = k.Line
			p.walk(v, ft, key)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return // Decode reports the type
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := join(path, n.Content[i].Value)
			p.lines[key] = n.Content[i].Line
			p.walk(n.Content[i+1], t.Elem(), key)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				p.errs = append(p.errs, &ConfigError{File: p.file, Line: n.Line, Key: path, Msg: "must be a list"})
			}
			return
		}
		for i, c := range n.Content {
			p.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			p.errs = append(p.errs, &ConfigError{File: p.file, Line: n.Line, Key: path, Msg: "must be a single " + t.Kind().String() + " value"})
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validate checks every value; mistakes go to p.
func (c *Config) validate(p *positions) {
	if c.Instance != "" && !namePattern.MatchString(c.Instance) {
		p.fail("instance", "%s is not a name (letters, digits, . _ -, at most 64)", strconv.Quote(c.Instance))
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8443"
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		p.fail("listen", "%s is not host:port", strconv.Quote(c.Listen))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.fail("listen", "port %s is not a number from 0 to 65535", strconv.Quote(port))
	} else if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.fail("tls", "cert_file and key_file go together")
	} else if c.TLS.CertFile == "" && !isLoopback(host) {
		p.fail("listen", "%s is not a loopback address: a portal reachable from elsewhere needs tls.cert_file and tls.key_file", strconv.Quote(c.Listen))
	}
	for _, f := range []struct{ key, path string }{{"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
		checkFile(p, f.key, f.path)
	}
	usesPG := false
	for _, d := range []struct {
		key string
		v   *string
		ok  []string
	}{
		{"store.driver", &c.Store.Driver, []string{"memory", "postgresql"}},
		{"cmdb.driver", &c.CMDB.Driver, []string{"memory", "postgresql"}},
		{"ipam.driver", &c.IPAM.Driver, []string{"memory", "postgresql"}},
		{"firewall.driver", &c.Firewall.Driver, []string{"memory", "nftables", "vcd"}},
	} {
		if *d.v == "" {
			*d.v = "memory"
		}
		if !contains(d.ok, *d.v) {
			p.fail(d.key, "%s is not one of %s", strconv.Quote(*d.v), strings.Join(d.ok, ", "))
		}
		usesPG = usesPG || *d.v == "postgresql"
	}
	pg := c.PostgreSQL
	set := 0
	for _, s := range []string{pg.DSN, pg.DSNEnv, pg.DSNFile} {
		if s != "" {
			set++
		}
	}
	switch {
	case usesPG && set == 0:
		p.fail("postgresql", "a driver is postgresql: set one of dsn, dsn_env, dsn_file")
	case set > 1:
		p.fail("postgresql", "set only one of dsn, dsn_env, dsn_file")
	case pg.DSNEnv != "" && os.Getenv(pg.DSNEnv) == "" && usesPG:
		p.fail("postgresql.dsn_env", "the environment variable %s is empty", pg.DSNEnv)
	case pg.DSNFile != "":
		checkFile(p, "postgresql.dsn_file", pg.DSNFile)
	}
	if pg.DSN != "" {
		if _, err := url.Parse(pg.DSN); err != nil || !strings.HasPrefix(pg.DSN, "postgres") {
			// Never quote a DSN: it may hold a password.
			p.fail("postgresql.dsn", "is not a postgres:// or postgresql:// URL")
		}
	}

	pools := map[string]bool{}
	for i, pl := range c.IPAM.Pools {
		key := fmt.Sprintf("ipam.pools[%d]", i)
		if !namePattern.MatchString(pl.Name) {
			p.fail(key+".name", "%s is not a name", strconv.Quote(pl.Name))
		} else if pools[pl.Name] {
			p.fail(key+".name", "pool %s is listed twice", strconv.Quote(pl.Name))
		}
		pools[pl.Name] = true
		if _, err := pl.parse(); err != nil {
			p.fail(key+"."+err.(*fieldError).key, "%s", err.(*fieldError).msg)
		}
	}

	if len(c.Providers) == 0 {
		p.fail("providers", "at least one provider is needed")
	}
	names := map[string]bool{}
	for i, pc := range c.Providers {
		key := fmt.Sprintf("providers[%d]", i)
		if !namePattern.MatchString(pc.Name) {
			p.fail(key+".name", "%s is not a name (letters, digits, . _ -, at most 64)", strconv.Quote(pc.Name))
		} else if names[pc.Name] {
			p.fail(key+".name", "provider %s is listed twice", strconv.Quote(pc.Name))
		}
		names[pc.Name] = true
		switch pc.Type {
		case "vsphere":
			if u, err := url.Parse(pc.URL); err != nil || u.Scheme != "https" || u.Host == "" {
				p.fail(key+".url", "%s is not an https:// SDK URL", strconv.Quote(pc.URL))
			}
			if pc.Username == "" {
				p.fail(key+".username", "is required")
			}
			checkSecret(p, key, "password", pc.PasswordEnv, pc.PasswordFile, true)
			checkFile(p, key+".ca_file", pc.CAFile)
			pc.only(p, key, "org", "api_token_env", "api_token_file", "nodes", "hyperv", "sim")
			for j, z := range pc.Zones {
				if z.DataCenter != "" || z.Cluster != "" || z.StorageDomain != "" || z.TemplateStorageDomain != "" {
					p.fail(fmt.Sprintf("%s.zones[%d]", key, j), "a vsphere zone has datacenters, clusters and networks (lists)")
				}
			}
		case "ovirt":
			if u, err := url.Parse(pc.URL); err != nil || u.Scheme != "https" || u.Host == "" {
				p.fail(key+".url", "%s is not an https:// engine API URL such as https://engine.example.com/ovirt-engine/api", strconv.Quote(pc.URL))
			}
			if pc.Username == "" {
				p.fail(key+".username", "is required (user@domain, such as admin@internal)")
			}
			checkSecret(p, key, "password", pc.PasswordEnv, pc.PasswordFile, true)
			checkFile(p, key+".ca_file", pc.CAFile)
			pc.only(p, key, "org", "api_token_env", "api_token_file", "thumbprint", "nodes", "hyperv", "sim")
			if len(pc.Zones) == 0 {
				p.fail(key+".zones", "an ovirt provider needs at least one zone (datacenter and cluster)")
			}
			for j, z := range pc.Zones {
				zk := fmt.Sprintf("%s.zones[%d]", key, j)
				if z.DataCenter == "" || z.Cluster == "" {
					p.fail(zk, "an ovirt zone needs datacenter and cluster")
				}
				if len(z.Datacenters)+len(z.Clusters)+len(z.Networks) > 0 {
					p.fail(zk, "an ovirt zone has datacenter and cluster (one each), not lists")
				}
			}
		case "vcd":
			if u, err := url.Parse(pc.URL); err != nil || u.Scheme != "https" || u.Host == "" {
				p.fail(key+".url", "%s is not an https:// Cloud Director URL", strconv.Quote(pc.URL))
			}
			if !namePattern.MatchString(pc.Org) {
				p.fail(key+".org", "%s is not an organization name", strconv.Quote(pc.Org))
			}
			token := pc.APITokenEnv != "" || pc.APITokenFile != ""
			pass := pc.PasswordEnv != "" || pc.PasswordFile != ""
			switch {
			case token && pass:
				p.fail(key, "set a password or an API token, not both")
			case token:
				checkSecret(p, key, "api_token", pc.APITokenEnv, pc.APITokenFile, true)
			default:
				if pc.Username == "" {
					p.fail(key+".username", "is required with a password")
				}
				checkSecret(p, key, "password", pc.PasswordEnv, pc.PasswordFile, true)
			}
			checkFile(p, key+".ca_file", pc.CAFile)
			pc.only(p, key, "thumbprint", "zones", "nodes", "hyperv", "sim")
		case "hyperv":
			if pc.Username == "" {
				p.fail(key+".username", "is required (DOMAIN\\user, the same on every node)")
			}
			checkSecret(p, key, "password", pc.PasswordEnv, pc.PasswordFile, true)
			checkFile(p, key+".ca_file", pc.CAFile)
			pc.only(p, key, "url", "org", "api_token_env", "api_token_file", "thumbprint", "zones", "sim")
			if len(pc.Nodes) == 0 {
				p.fail(key+".nodes", "a hyperv provider needs its cluster's nodes")
			}
			seen := map[string]bool{}
			for j, n := range pc.Nodes {
				nk := fmt.Sprintf("%s.nodes[%d]", key, j)
				if !namePattern.MatchString(n.Name) || seen[strings.ToUpper(n.Name)] {
					p.fail(nk+".name", "%s is not a new node name", strconv.Quote(n.Name))
				}
				seen[strings.ToUpper(n.Name)] = true
				if n.Host == "" || strings.ContainsAny(n.Host, "/ @?#") {
					p.fail(nk+".host", "%s is not a host name or address", strconv.Quote(n.Host))
				}
				if n.Port < 0 || n.Port > 65535 {
					p.fail(nk+".port", "%d is not a port", n.Port)
				}
				if n.CertSHA256 != "" {
					if b, err := parseFingerprint(n.CertSHA256); err != nil || len(b) != 32 {
						p.fail(nk+".cert_sha256", "is not a SHA-256 fingerprint (64 hex digits, colons allowed)")
					}
				}
			}
			if pc.HyperV == nil || pc.HyperV.TemplatesPath == "" {
				p.fail(key+".hyperv.templates_path", "is required (the templates directory on the CSV, such as C:\\ClusterStorage\\Templates)")
			} else if g := pc.HyperV.Generation; g != 0 && g != 1 && g != 2 {
				p.fail(key+".hyperv.generation", "%d is not 1 or 2", g)
			}
		case "vspheresim":
			if pc.URL != "" || pc.Username != "" || pc.PasswordEnv != "" || pc.PasswordFile != "" || pc.CAFile != "" || pc.Thumbprint != "" {
				p.fail(key, "a vspheresim provider runs in this process: no url, username, password or certificate")
			}
			pc.only(p, key, "org", "api_token_env", "api_token_file", "nodes", "hyperv")
			if pc.Sim != nil {
				seen := map[string]bool{}
				for j, vm := range pc.Sim.VMs {
					vk := fmt.Sprintf("%s.sim.vms[%d]", key, j)
					// vCenter takes any display name: so does the simulator
					// (the portal's tests give one VM a hostile name).
					if vm.Name == "" || len(vm.Name) > 80 || !utf8.ValidString(vm.Name) || strings.ContainsFunc(vm.Name, unicode.IsControl) || seen[vm.Name] {
						p.fail(vk+".name", "%s is not a new VM name (1-80 bytes, no control characters)", quote(vm.Name))
					}
					seen[vm.Name] = true
					if a, err := netip.ParseAddr(vm.IP); err != nil || !a.Is4() {
						p.fail(vk+".ip", "%s is not an IPv4 address", strconv.Quote(vm.IP))
					}
				}
				if g := pc.Sim.Generate; g.Count < 0 || g.Count > 10000 {
					p.fail(key+".sim.generate.count", "%d is not from 0 to 10000", g.Count)
				}
			}
		default:
			p.fail(key+".type", "%s is not a provider type (vsphere, ovirt, vcd, hyperv, vspheresim)", strconv.Quote(pc.Type))
		}
		for j, z := range pc.Zones {
			if !namePattern.MatchString(z.Name) {
				p.fail(fmt.Sprintf("%s.zones[%d].name", key, j), "%s is not a name", strconv.Quote(z.Name))
			}
		}
	}

	c.checkFirewall(p)
	c.checkGuestNetwork(p)
	c.Policy.check(p, "policy", pools)
	for name, pol := range c.Profiles {
		if !namePattern.MatchString(name) {
			p.fail("profiles."+name, "%s is not a profile name", strconv.Quote(name))
		}
		pol.check(p, "profiles."+name, pools)
	}
	if c.ServiceAccount != "" && !regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`).MatchString(c.ServiceAccount) {
		p.fail("service_account", "%s is not a POSIX user name", strconv.Quote(c.ServiceAccount))
	}
	if c.ResumeEvery != "" {
		if d, err := parseDuration(c.ResumeEvery); err != nil || d <= 0 {
			p.fail("resume_every", "%s is not a positive duration such as 30s", strconv.Quote(c.ResumeEvery))
		}
	}
	switch pt := c.Portal; {
	case pt.MetricsTokenEnv != "" && pt.MetricsTokenFile != "":
		p.fail("portal", "set only one of metrics_token_env, metrics_token_file")
	case pt.MetricsTokenEnv != "" && len(os.Getenv(pt.MetricsTokenEnv)) < 16:
		p.fail("portal.metrics_token_env", "the environment variable %s holds less than 16 bytes", pt.MetricsTokenEnv)
	default:
		checkFile(p, "portal.metrics_token_file", pt.MetricsTokenFile)
	}
	if c.LDAP != nil {
		l := c.LDAP
		u, err := url.Parse(l.URL)
		if err != nil || (u.Scheme != "ldaps" && u.Scheme != "ldap") || u.Host == "" {
			p.fail("ldap.url", "%s is not an ldaps:// or ldap:// URL", strconv.Quote(l.URL))
		}
		checkFile(p, "ldap.ca_file", l.CAFile)
		if l.BaseDN == "" {
			p.fail("ldap.base_dn", "is required")
		}
		if l.OperatorGroup == "" {
			p.fail("ldap.operator_group", "is required")
		}
		if l.BindDN != "" && (l.BindPasswordEnv == "") == (l.BindPasswordFile == "") {
			p.fail("ldap", "bind_dn needs one of bind_password_env, bind_password_file")
		}
		checkFile(p, "ldap.bind_password_file", l.BindPasswordFile)
		if l.UserAttribute == "" {
			l.UserAttribute = "uid"
		} else if !regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`).MatchString(l.UserAttribute) {
			p.fail("ldap.user_attribute", "%s is not an attribute name", strconv.Quote(l.UserAttribute))
		}
	}
}

func (pol *PolicyConfig) check(p *positions, key string, pools map[string]bool) {
	if pol.Pool == "" && len(pol.PoolByZone) == 0 {
		p.fail(key+".pool", "is required")
	}
	for k, name := range map[string]string{"pool": pol.Pool} {
		if name != "" && !pools[name] {
			p.fail(key+"."+k, "pool %s is not in ipam.pools", strconv.Quote(name))
		}
	}
	for z, name := range pol.PoolByZone {
		if !pools[name] {
			p.fail(key+".pool_by_zone."+z, "pool %s is not in ipam.pools", strconv.Quote(name))
		}
	}
	if len(pol.ManagementSources) == 0 {
		p.fail(key+".management_sources", "at least one prefix is required")
	}
	for i, s := range pol.ManagementSources {
		if _, err := netip.ParsePrefix(s); err != nil {
			p.fail(fmt.Sprintf("%s.management_sources[%d]", key, i), "%s is not a prefix such as 198.51.100.0/24", strconv.Quote(s))
		}
	}
	for i, f := range pol.Families {
		if guest.ParseFamily(f) == guest.FamilyUnknown {
			p.fail(fmt.Sprintf("%s.families[%d]", key, i), "%s is not linux or windows", strconv.Quote(f))
		}
	}
	for f, ports := range pol.Ports {
		if guest.ParseFamily(f) == guest.FamilyUnknown {
			p.fail(key+".ports."+f, "%s is not linux or windows", strconv.Quote(f))
		}
		for i, s := range ports {
			if _, err := natfw.ParsePort(s); err != nil {
				p.fail(fmt.Sprintf("%s.ports.%s[%d]", key, f, i), "%s is not a port such as tcp/22", strconv.Quote(s))
			}
		}
	}
	for f := range pol.Requirements {
		if guest.ParseFamily(f) == guest.FamilyUnknown {
			p.fail(key+".requirements."+f, "%s is not linux or windows", strconv.Quote(f))
		}
	}
}

type fieldError struct{ key, msg string }

func (e *fieldError) Error() string { return e.key + ": " + e.msg }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func checkFile(p *positions, key, path string) {
	if path == "" {
		return
	}
	if st, err := os.Stat(path); err != nil {
		p.fail(key, "cannot read %s: %v", strconv.Quote(path), errors.Unwrap(err))
	} else if st.IsDir() {
		p.fail(key, "%s is a directory", strconv.Quote(path))
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// only fails for each named key of another provider type that is set.
func (pc *ProviderConfig) only(p *positions, key string, notHere ...string) {
	set := map[string]bool{
		"url": pc.URL != "", "org": pc.Org != "", "api_token_env": pc.APITokenEnv != "", "api_token_file": pc.APITokenFile != "",
		"thumbprint": pc.Thumbprint != "", "zones": len(pc.Zones) > 0, "nodes": len(pc.Nodes) > 0,
		"hyperv": pc.HyperV != nil, "sim": pc.Sim != nil,
	}
	for _, k := range notHere {
		if set[k] {
			p.fail(key+"."+k, "is not a key of a %s provider", pc.Type)
		}
	}
}

// checkSecret wants exactly one of NAME_env and NAME_file (when required),
// a non-empty variable and a readable file.
func checkSecret(p *positions, key, name, env, file string, required bool) {
	switch {
	case env != "" && file != "":
		p.fail(key, "set only one of %s_env, %s_file", name, name)
	case env == "" && file == "":
		if required {
			p.fail(key, "set one of %s_env, %s_file", name, name)
		}
	case env != "" && os.Getenv(env) == "":
		p.fail(key+"."+name+"_env", "the environment variable %s is empty", env)
	default:
		checkFile(p, key+"."+name+"_file", file)
	}
}

func (c *Config) checkFirewall(p *positions) {
	fw := c.Firewall
	if fw.NFTables != nil && fw.Driver != "nftables" {
		p.fail("firewall.nftables", "only with driver nftables")
	}
	if fw.VCD != nil && fw.Driver != "vcd" {
		p.fail("firewall.vcd", "only with driver vcd")
	}
	switch fw.Driver {
	case "nftables":
		if !nftablesSupported {
			p.fail("firewall.driver", "nftables runs on Linux only")
		}
		if n := fw.NFTables; n != nil {
			if n.Table != "" && !regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,31}$`).MatchString(n.Table) {
				p.fail("firewall.nftables.table", "%s is not a table name (letters, digits, _, at most 32)", strconv.Quote(n.Table))
			}
			if n.NetNSPath != "" && !strings.HasPrefix(n.NetNSPath, "/") {
				p.fail("firewall.nftables.netns_path", "%s is not an absolute path", strconv.Quote(n.NetNSPath))
			} else if n.NetNSPath != "" {
				checkFile(p, "firewall.nftables.netns_path", n.NetNSPath)
			}
			if n.WANInterface != "" && !regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,15}$`).MatchString(n.WANInterface) {
				p.fail("firewall.nftables.wan_interface", "%s is not an interface name", strconv.Quote(n.WANInterface))
			}
			if n.ManagePublicAddress && n.WANInterface == "" {
				p.fail("firewall.nftables.manage_public_address", "needs wan_interface")
			}
			if n.LockDir != "" && !strings.HasPrefix(n.LockDir, "/") {
				p.fail("firewall.nftables.lock_dir", "%s is not an absolute path", strconv.Quote(n.LockDir))
			}
		}
	case "vcd":
		v := fw.VCD
		if v == nil {
			p.fail("firewall.vcd", "driver vcd needs provider and gateway")
			return
		}
		found := false
		for _, pc := range c.Providers {
			found = found || (pc.Name == v.Provider && pc.Type == "vcd")
		}
		if !found {
			p.fail("firewall.vcd.provider", "%s is not a provider of type vcd", strconv.Quote(v.Provider))
		}
		if v.Gateway == "" || len(v.Gateway) > 128 || strings.ContainsFunc(v.Gateway, unicode.IsControl) {
			p.fail("firewall.vcd.gateway", "%s is not an edge gateway name", quote(v.Gateway))
		}
	}
}

func (c *Config) checkGuestNetwork(p *positions) {
	g := c.GuestNetwork
	if g == nil {
		return
	}
	if g.SSH == nil && g.WinRM == nil {
		p.fail("guest_network", "set ssh, winrm or both")
	}
	if s := g.SSH; s != nil {
		if s.Port < 0 || s.Port > 65535 {
			p.fail("guest_network.ssh.port", "%d is not a port", s.Port)
		}
		switch {
		case s.InsecureAcceptAnyHostKey && (s.KnownHostsFile != "" || s.TrustOnFirstUse):
			p.fail("guest_network.ssh.insecure_accept_any_host_key", "verifies nothing: drop known_hosts_file and trust_on_first_use, or this")
		case s.InsecureAcceptAnyHostKey:
		case s.KnownHostsFile == "":
			p.fail("guest_network.ssh.known_hosts_file", "is required (host keys are verified; trust_on_first_use learns new hosts into it)")
		case s.TrustOnFirstUse:
			// The file may not exist yet: its directory must.
			if st, err := os.Stat(filepath.Dir(s.KnownHostsFile)); err != nil || !st.IsDir() {
				p.fail("guest_network.ssh.known_hosts_file", "the directory of %s does not exist", strconv.Quote(s.KnownHostsFile))
			}
		default:
			checkFile(p, "guest_network.ssh.known_hosts_file", s.KnownHostsFile)
		}
	}
	if w := g.WinRM; w != nil {
		if w.Port < 0 || w.Port > 65535 {
			p.fail("guest_network.winrm.port", "%d is not a port", w.Port)
		}
		if w.InsecureSkipVerify && w.CAFile != "" {
			p.fail("guest_network.winrm", "set ca_file or insecure_skip_verify, not both")
		}
		checkFile(p, "guest_network.winrm.ca_file", w.CAFile)
	}
}

// parseFingerprint reads hex digits, with or without colons.
func parseFingerprint(s string) ([]byte, error) {
	return hex.DecodeString(strings.ReplaceAll(s, ":", ""))
}
