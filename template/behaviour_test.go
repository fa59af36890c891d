package template_test

import (
	"encoding/json"
	"testing"

	"github.com/managedvm/managedvm/template"
)

// TestFilesOwnedByCreatedUsersAreDeferred: write_files runs before
// users-groups, so a file owned by a user or group the same document
// creates must be written in the final stage (defer: true); others not.
func TestFilesOwnedByCreatedUsersAreDeferred(t *testing.T) {
	s := linuxSettings() // creates ops (groups wheel, adm) and backup
	s.Files = []template.File{
		{Path: "/a", Owner: ""},
		{Path: "/b", Owner: "root:root"},
		{Path: "/c", Owner: "www-data"},
		{Path: "/d", Owner: "ops"},
		{Path: "/e", Owner: "root:backup"},
		{Path: "/f", Owner: "nobody:wheel"},
	}
	want := map[string]bool{"/a": false, "/b": false, "/c": false, "/d": true, "/e": true, "/f": true}
	nc, err := template.RenderNoCloud(s, detOpts())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range yamlMap(t, nc.UserData)["write_files"].([]any) {
		wf := f.(map[string]any)
		got, _ := wf["defer"].(bool)
		if got != want[wf["path"].(string)] {
			t.Errorf("%v: defer = %v, want %v", wf["path"], got, want[wf["path"].(string)])
		}
	}
}

// TestNICsKeyedByName: cloud-init ignores match.name when it names an
// interface, so a NIC chosen by name must be keyed by that name.
func TestNICsKeyedByName(t *testing.T) {
	s := linuxDHCPSettings()
	// nics[1], by MAC alone, is keyed nic1; nics[4] would be nic4, which
	// nics[2] names, so it gets nic4-1.
	s.NICs = []template.NIC{{Name: "ens192"}, {MAC: "00:50:56:00:00:01"}, {MAC: "00:50:56:00:00:02", Name: "nic4"}, {Name: "enp*"}, {MAC: "00:50:56:00:00:03"}}
	nc, err := template.RenderNoCloud(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	eth := yamlMap(t, nc.NetworkConfig)["ethernets"].(map[string]any)
	for k, mac := range map[string]string{"ens192": "", "nic1": "00:50:56:00:00:01", "nic4": "00:50:56:00:00:02", "enp*": "", "nic4-1": "00:50:56:00:00:03"} {
		e, ok := eth[k].(map[string]any)
		if !ok {
			t.Errorf("ethernets has no %q: %v", k, eth)
			continue
		}
		m := e["match"].(map[string]any)
		if mac != "" && m["macaddress"] != mac || mac == "" && m["name"] != k {
			t.Errorf("ethernets[%q] = %v", k, e)
		}
	}
	if len(eth) != 5 {
		t.Errorf("ethernets = %v", eth)
	}
}

// TestConfigDriveSearchDomains: network_data.json carries each NIC's
// search domains as dns_search, which cloud-init reads.
func TestConfigDriveSearchDomains(t *testing.T) {
	s := linuxSettings()
	s.NICs[1].SearchDomains = []string{"a.example", "b.example"}
	cd, err := template.RenderConfigDrive(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	var nd struct {
		Networks []struct {
			DNSSearch []string `json:"dns_search"`
		} `json:"networks"`
	}
	if err := json.Unmarshal(cd.NetworkData, &nd); err != nil {
		t.Fatal(err)
	}
	if len(nd.Networks) != 2 || len(nd.Networks[0].DNSSearch) != 1 || nd.Networks[0].DNSSearch[0] != "example.com" ||
		len(nd.Networks[1].DNSSearch) != 2 || nd.Networks[1].DNSSearch[1] != "b.example" {
		t.Errorf("networks = %+v", nd.Networks)
	}
}
