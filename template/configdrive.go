package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
	"strings"
)

// ConfigDrive file paths (the OpenStack layout) and the volume label
// cloud-init and cloudbase-init look for.
const (
	ConfigDriveMetaData    = "openstack/latest/meta_data.json"
	ConfigDriveUserData    = "openstack/latest/user_data"
	ConfigDriveNetworkData = "openstack/latest/network_data.json"
	ConfigDriveLabel       = "config-2"
)

// ConfigDrive holds the documents of an OpenStack config drive.
type ConfigDrive struct {
	// MetaData is meta_data.json: uuid (the instance ID), hostname, name.
	MetaData []byte
	// UserData is user_data: the same #cloud-config document as NoCloud's.
	UserData []byte
	// NetworkData is network_data.json (links, networks, services); nil
	// when the settings configure no NIC.
	NetworkData []byte
}

// Files returns the drive's files by path.
func (c *ConfigDrive) Files() map[string][]byte {
	files := map[string][]byte{ConfigDriveMetaData: c.MetaData, ConfigDriveUserData: c.UserData}
	if c.NetworkData != nil {
		files[ConfigDriveNetworkData] = c.NetworkData
	}
	return files
}

// WriteISO writes the drive as an ISO 9660 image labelled "config-2" (see
// [WriteISO]).
func (c *ConfigDrive) WriteISO(w io.Writer) error {
	return WriteISO(w, ConfigDriveLabel, c.Files())
}

type osMeta struct {
	UUID        string `json:"uuid"`
	Hostname    string `json:"hostname"`
	Name        string `json:"name"`
	LaunchIndex int    `json:"launch_index"`
}

type osNetworkData struct {
	Links    []osLink    `json:"links"`
	Networks []osNetwork `json:"networks"`
	Services []osService `json:"services"`
}

type osLink struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	MAC  string `json:"ethernet_mac_address,omitempty"`
	// Name is not in OpenStack's schema; cloud-init honours it.
	Name string `json:"name,omitempty"`
}

type osNetwork struct {
	ID        string      `json:"id"`
	Type      string      `json:"type"`
	Link      string      `json:"link"`
	IPAddress string      `json:"ip_address,omitempty"`
	Netmask   string      `json:"netmask,omitempty"`
	Routes    []osRoute   `json:"routes,omitempty"`
	Services  []osService `json:"services,omitempty"`
	// DNSSearch is not in OpenStack's schema; cloud-init reads it into
	// the interface's dns-search (eni) or Domains= (networkd).
	DNSSearch []string `json:"dns_search,omitempty"`
}

type osRoute struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

type osService struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// RenderConfigDrive renders s in the OpenStack config drive layout
// (openstack/latest/meta_data.json, user_data, network_data.json), read by
// cloud-init's ConfigDrive and cloudbase-init's ConfigDriveService. The
// documents are parsed back before they are returned. Besides
// [Settings.Validate]'s rules, every NIC needs a MAC address or an exact
// interface name (no glob): InvalidArgument otherwise.
func RenderConfigDrive(s Settings, opts *Options) (*ConfigDrive, error) {
	const op = "template.RenderConfigDrive"
	if err := validateSettings(op, s); err != nil {
		return nil, err
	}
	for i, n := range s.NICs {
		if n.MAC == "" && strings.Contains(n.Name, "*") {
			return nil, invalidf(op, "nics[%d]: a config drive cannot select an interface by a name glob; give its MAC address or exact name", i)
		}
	}
	cc, err := buildCloudConfig(op, s, opts)
	if err != nil {
		return nil, err
	}
	out := &ConfigDrive{}
	if out.MetaData, err = renderJSON(op, &osMeta{UUID: s.InstanceID, Hostname: s.FQDN(), Name: s.Hostname}); err != nil {
		return nil, err
	}
	if out.UserData, err = renderUserData(op, cc); err != nil {
		return nil, err
	}
	if nd := buildNetworkData(s.NICs); nd != nil {
		if out.NetworkData, err = renderJSON(op, nd); err != nil {
			return nil, err
		}
	}
	opts.logger().Debug("template: rendered config drive", "instance", s.InstanceID,
		"metaData", len(out.MetaData), "userData", len(out.UserData), "networkData", len(out.NetworkData))
	return out, nil
}

func buildNetworkData(nics []NIC) *osNetworkData {
	if len(nics) == 0 {
		return nil
	}
	nd := &osNetworkData{Links: []osLink{}, Networks: []osNetwork{}, Services: []osService{}}
	dns := map[netip.Addr]bool{}
	for i, n := range nics {
		link := osLink{ID: fmt.Sprintf("interface%d", i), Type: "phy", Name: n.Name}
		if n.MAC != "" {
			link.MAC = macString(n.MAC)
		}
		nd.Links = append(nd.Links, link)
		nw := osNetwork{ID: fmt.Sprintf("network%d", i), Type: "ipv4_dhcp", Link: link.ID}
		if st := n.Static; st != nil {
			a := st.Address
			nw.Type = "ipv4"
			if a.Addr().Is6() {
				nw.Type = "ipv6"
			}
			nw.IPAddress = a.Addr().String()
			nw.Netmask = netmaskString(a)
			if st.Gateway.IsValid() {
				zero := "0.0.0.0"
				if st.Gateway.Is6() {
					zero = "::"
				}
				nw.Routes = []osRoute{{Network: zero, Netmask: zero, Gateway: st.Gateway.String()}}
			}
			for _, d := range st.DNS {
				nw.Services = append(nw.Services, osService{Type: "dns", Address: d.String()})
				if !dns[d] {
					dns[d] = true
					nd.Services = append(nd.Services, osService{Type: "dns", Address: d.String()})
				}
			}
		}
		nw.DNSSearch = nilIfEmpty(n.SearchDomains)
		nd.Networks = append(nd.Networks, nw)
	}
	return nd
}

// netmaskString writes a prefix's mask the way OpenStack does: dotted quad
// for IPv4, an IPv6 address for IPv6.
func netmaskString(p netip.Prefix) string {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	mask := net.CIDRMask(p.Bits(), bits)
	a, _ := netip.AddrFromSlice(mask)
	return a.String()
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// renderJSON renders *v with encoding/json, parses it back strictly and
// checks it means exactly v.
func renderJSON[T any](op string, v *T) ([]byte, error) {
	out, err := encodeJSON(v)
	if err != nil {
		return nil, internalf(op, "encoding JSON: %v", err)
	}
	var back T
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		return nil, internalf(op, "rendered JSON does not parse back: %v", err)
	}
	if dec.More() {
		return nil, internalf(op, "rendered JSON has trailing data")
	}
	if !reflect.DeepEqual(v, &back) {
		return nil, internalf(op, "rendered JSON parses back to a different value")
	}
	again, err := encodeJSON(&back)
	if err != nil || !bytes.Equal(out, again) {
		return nil, internalf(op, "rendered JSON does not render back identically")
	}
	return out, nil
}
