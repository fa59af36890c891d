package template

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/provider"
)

// NoCloud file names and the seed volume label cloud-init looks for.
const (
	MetaDataFile      = "meta-data"
	UserDataFile      = "user-data"
	NetworkConfigFile = "network-config"
	NoCloudLabel      = "cidata"
)

// CloudConfigHeader starts every user-data document this package writes.
const CloudConfigHeader = "#cloud-config\n"

// sudoAll is the sudo rule of a User with Sudo set.
const sudoAll = "ALL=(ALL) NOPASSWD:ALL"

// NoCloud holds the documents of a cloud-init NoCloud seed.
type NoCloud struct {
	// MetaData is meta-data: instance-id and local-hostname.
	MetaData []byte
	// UserData is user-data: a #cloud-config document.
	UserData []byte
	// NetworkConfig is network-config, version 2; nil when the settings
	// configure no NIC (the guest then uses DHCP on its first interface).
	NetworkConfig []byte
}

// Files returns the seed's files by name.
func (n *NoCloud) Files() map[string][]byte {
	files := map[string][]byte{MetaDataFile: n.MetaData, UserDataFile: n.UserData}
	if n.NetworkConfig != nil {
		files[NetworkConfigFile] = n.NetworkConfig
	}
	return files
}

// WriteISO writes the seed as an ISO 9660 image labelled "cidata", the
// NoCloud seed a guest reads from its CD-ROM drive (see [WriteISO]).
func (n *NoCloud) WriteISO(w io.Writer) error {
	return WriteISO(w, NoCloudLabel, n.Files())
}

// metaData is NoCloud's meta-data (and, with Network, VMware guestinfo's).
type metaData struct {
	InstanceID    string `yaml:"instance-id"`
	LocalHostname string `yaml:"local-hostname"`
	Network       *netV2 `yaml:"network,omitempty"`
}

// cloudConfig is the #cloud-config subset this package writes. The keys
// are cloud-init's; Windows guests get the subset cloudbase-init reads
// (users, write_files, runcmd).
type cloudConfig struct {
	Hostname    string   `yaml:"hostname,omitempty"`
	FQDN        string   `yaml:"fqdn,omitempty"`
	Timezone    string   `yaml:"timezone,omitempty"`
	Users       []ccUser `yaml:"users,omitempty"`
	SSHPwauth   *bool    `yaml:"ssh_pwauth,omitempty"`
	DisableRoot *bool    `yaml:"disable_root,omitempty"`
	Packages    []string `yaml:"packages,omitempty"`
	WriteFiles  []ccFile `yaml:"write_files,omitempty"`
	RunCmd      []string `yaml:"runcmd,omitempty"`
}

type ccUser struct {
	Name       string `yaml:"name"`
	Groups     string `yaml:"groups,omitempty"`
	Sudo       string `yaml:"sudo,omitempty"`
	Shell      string `yaml:"shell,omitempty"`
	LockPasswd *bool  `yaml:"lock_passwd,omitempty"`
	// HashedPasswd, not passwd: cloud-init gives passwd only to useradd,
	// so an account that already exists would keep its old password;
	// hashed_passwd is applied with chpasswd -e to new and existing
	// accounts alike.
	HashedPasswd      string   `yaml:"hashed_passwd,omitempty"`
	SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys,omitempty"`
}

type ccFile struct {
	Path        string `yaml:"path"`
	Content     string `yaml:"content"`
	Encoding    string `yaml:"encoding,omitempty"`
	Permissions string `yaml:"permissions,omitempty"`
	Owner       string `yaml:"owner,omitempty"`
	// Defer writes the file in the final stage, after users-groups: set
	// for files owned by a user or group the same document creates, which
	// write_files (run before users-groups) could not chown.
	Defer bool `yaml:"defer,omitempty"`
}

// netV2 is cloud-init's network config version 2 (netplan's format).
type netV2 struct {
	Version   int               `yaml:"version"`
	Ethernets map[string]netEth `yaml:"ethernets"`
}

type netEth struct {
	Match       *netMatch  `yaml:"match,omitempty"`
	SetName     string     `yaml:"set-name,omitempty"`
	DHCP4       bool       `yaml:"dhcp4"`
	Addresses   []string   `yaml:"addresses,omitempty"`
	Routes      []netRoute `yaml:"routes,omitempty"`
	Nameservers *netNS     `yaml:"nameservers,omitempty"`
}

type netMatch struct {
	MACAddress string `yaml:"macaddress,omitempty"`
	Name       string `yaml:"name,omitempty"`
}

type netRoute struct {
	To  string `yaml:"to"`
	Via string `yaml:"via"`
}

type netNS struct {
	Addresses []string `yaml:"addresses,omitempty"`
	Search    []string `yaml:"search,omitempty"`
}

// RenderNoCloud renders s as a cloud-init NoCloud seed: meta-data
// (instance-id, local-hostname), user-data (#cloud-config: users with
// SHA-512 crypt password hashes in hashed_passwd, ssh_pwauth, disable_root,
// packages, write_files, deferred for files owned by the users created,
// runcmd) and network-config version 2 (DHCP or static, each NIC keyed by
// its interface name).
// Documents are written with go.yaml.in/yaml/v3 and parsed back before they
// are returned. Invalid settings are InvalidArgument (see
// [Settings.Validate]).
func RenderNoCloud(s Settings, opts *Options) (*NoCloud, error) {
	const op = "template.RenderNoCloud"
	if err := validateSettings(op, s); err != nil {
		return nil, err
	}
	cc, err := buildCloudConfig(op, s, opts)
	if err != nil {
		return nil, err
	}
	out := &NoCloud{}
	if out.MetaData, err = renderYAML(op, &metaData{InstanceID: s.InstanceID, LocalHostname: s.Hostname}); err != nil {
		return nil, err
	}
	if out.UserData, err = renderUserData(op, cc); err != nil {
		return nil, err
	}
	if nw := buildNetV2(s.NICs); nw != nil {
		if out.NetworkConfig, err = renderYAML(op, nw); err != nil {
			return nil, err
		}
	}
	opts.logger().Debug("template: rendered NoCloud seed", "instance", s.InstanceID,
		"metaData", len(out.MetaData), "userData", len(out.UserData), "networkConfig", len(out.NetworkConfig))
	return out, nil
}

func validateSettings(op string, s Settings) error {
	p := &problems{op: op}
	s.validate(p)
	return p.err()
}

func renderUserData(op string, cc *cloudConfig) ([]byte, error) {
	body, err := renderYAML(op, cc)
	if err != nil {
		return nil, err
	}
	return append([]byte(CloudConfigHeader), body...), nil
}

// buildCloudConfig makes the #cloud-config document of s, hashing
// passwords. s has been validated.
func buildCloudConfig(op string, s Settings, opts *Options) (*cloudConfig, error) {
	windows := s.family() == guest.Windows
	cc := &cloudConfig{}
	if !windows {
		cc.Hostname = s.Hostname
		if s.Domain != "" {
			cc.FQDN = s.FQDN()
		}
		cc.Timezone = s.Timezone
		pwauth, disableRoot := s.SSHPasswordAuth, !s.AllowRootLogin
		cc.SSHPwauth, cc.DisableRoot = &pwauth, &disableRoot
		cc.Packages = nilIfEmpty(s.Packages)
	}
	for _, u := range s.Users {
		cu := ccUser{
			Name:              u.Name,
			Groups:            strings.Join(u.Groups, ","),
			Shell:             u.Shell,
			SSHAuthorizedKeys: nilIfEmpty(u.SSHAuthorizedKeys),
		}
		if u.Sudo {
			cu.Sudo = sudoAll
		}
		switch {
		case !u.Password.IsZero():
			h, err := HashPassword(u.Password, opts)
			if err != nil {
				return nil, err
			}
			cu.HashedPasswd = h
		case u.PasswordHash != "":
			cu.HashedPasswd = u.PasswordHash
		}
		if cu.HashedPasswd != "" {
			unlocked := false
			cu.LockPasswd = &unlocked
		}
		cc.Users = append(cc.Users, cu)
	}
	created := createdNames(s.Users)
	for _, f := range s.Files {
		cf := ccFile{Path: f.Path}
		if textProblem(string(f.Content), true) == "" {
			cf.Content = string(f.Content)
		} else {
			cf.Content = base64.StdEncoding.EncodeToString(f.Content)
			cf.Encoding = "b64"
		}
		if !windows {
			perm := f.Permissions
			if perm == 0 {
				perm = 0o644
			}
			cf.Permissions = fmt.Sprintf("0%03o", uint32(perm))
			cf.Owner = f.Owner
			user, group, _ := strings.Cut(f.Owner, ":")
			cf.Defer = created[user] || created[group]
		}
		cc.WriteFiles = append(cc.WriteFiles, cf)
	}
	cc.RunCmd = nilIfEmpty(s.RunCmd)
	return cc, nil
}

// createdNames returns the user and group names cloud-init creates for
// users: each user, its own group (useradd's USERGROUPS_ENAB) and every
// group it is put in (created when missing).
func createdNames(users []User) map[string]bool {
	m := map[string]bool{}
	for _, u := range users {
		m[u.Name] = true
		for _, g := range u.Groups {
			m[g] = true
		}
	}
	delete(m, "")
	return m
}

// netV2IDs returns the keys of nics in the version 2 ethernets map.
// cloud-init names an interface from set-name, then (with a MAC) the guest
// interface that has the MAC, then the key, and ignores match.name, so a
// NIC selected by name is keyed by its name: eni, networkd and sysconfig
// then configure that interface. A NIC selected by MAC alone is keyed
// "nicN" (N its index), a valid interface name should cloud-init ever fall
// back to the key, with "-M" added if a named NIC already uses it.
func netV2IDs(nics []NIC) []string {
	ids := make([]string, len(nics))
	used := map[string]bool{}
	for i, n := range nics {
		if n.Name != "" {
			ids[i] = n.Name
			used[n.Name] = true
		}
	}
	for i, n := range nics {
		if n.Name != "" {
			continue
		}
		id := fmt.Sprintf("nic%d", i)
		for m := 1; used[id]; m++ {
			id = fmt.Sprintf("nic%d-%d", i, m)
		}
		ids[i] = id
		used[id] = true
	}
	return ids
}

// buildNetV2 makes the version 2 network config of nics, nil for none.
// nics have been validated.
func buildNetV2(nics []NIC) *netV2 {
	if len(nics) == 0 {
		return nil
	}
	nw := &netV2{Version: 2, Ethernets: map[string]netEth{}}
	ids := netV2IDs(nics)
	for i, n := range nics {
		eth := netEth{Match: &netMatch{}}
		if n.MAC != "" {
			eth.Match.MACAddress = macString(n.MAC)
			eth.SetName = n.Name
		} else {
			eth.Match.Name = n.Name
		}
		var ns netNS
		if st := n.Static; st != nil {
			eth.Addresses = []string{st.Address.String()}
			if st.Gateway.IsValid() {
				to := "0.0.0.0/0"
				if st.Gateway.Is6() {
					to = "::/0"
				}
				eth.Routes = []netRoute{{To: to, Via: st.Gateway.String()}}
			}
			ns.Addresses = addrStrings(st.DNS)
		} else {
			eth.DHCP4 = true
		}
		ns.Search = nilIfEmpty(n.SearchDomains)
		if ns.Addresses != nil || ns.Search != nil {
			eth.Nameservers = &ns
		}
		nw.Ethernets[ids[i]] = eth
	}
	return nw
}

// nilIfEmpty returns a copy of s, or nil when s is empty, so that rendered
// documents parse back to equal values.
func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

// CustomizationFor renders s as NoCloud documents and returns them as the
// provider.Customization a driver passes to its guest (guestinfo, config
// drive or seed ISO), with the hostname and the first NIC's static address.
func CustomizationFor(s Settings, opts *Options) (provider.Customization, error) {
	nc, err := RenderNoCloud(s, opts)
	if err != nil {
		return provider.Customization{}, err
	}
	c := provider.Customization{
		Hostname:      s.Hostname,
		MetaData:      nc.MetaData,
		UserData:      nc.UserData,
		NetworkConfig: nc.NetworkConfig,
	}
	if len(s.NICs) > 0 && s.NICs[0].Static != nil {
		st := *s.NICs[0].Static
		st.DNS = append(st.DNS[:0:0], st.DNS...)
		c.Static = &st
	}
	return c, nil
}

// ParseDatasourceList reads the datasource_list key of a cloud-init
// configuration file (/etc/cloud/cloud.cfg or a file in cloud.cfg.d), for
// drivers filling [Inspection.Datasources]. A file without the key gives
// nil; malformed YAML is InvalidArgument.
func ParseDatasourceList(cfg []byte) ([]string, error) {
	const op = "template.ParseDatasourceList"
	var doc struct {
		DatasourceList []string `yaml:"datasource_list"`
	}
	if len(bytes.TrimSpace(cfg)) == 0 {
		return nil, nil
	}
	if err := decodeYAMLLoose(cfg, &doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, invalidf(op, "cloud-init configuration does not parse: %v", err)
	}
	return doc.DatasourceList, nil
}
