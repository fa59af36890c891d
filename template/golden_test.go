package template_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/template"
)

func TestGoldenNoCloud(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    template.Settings
	}{
		{"linux-static", linuxSettings()},
		{"linux-dhcp", linuxDHCPSettings()},
		{"windows", windowsSettings()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := template.RenderNoCloud(tc.s, detOpts())
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "nocloud-"+tc.name+"/meta-data", nc.MetaData)
			golden(t, "nocloud-"+tc.name+"/user-data", nc.UserData)
			if nc.NetworkConfig != nil {
				golden(t, "nocloud-"+tc.name+"/network-config", nc.NetworkConfig)
			}
			if (nc.NetworkConfig == nil) != (len(tc.s.NICs) == 0) {
				t.Errorf("network-config present = %v with %d NICs", nc.NetworkConfig != nil, len(tc.s.NICs))
			}
		})
	}
}

func TestGoldenConfigDrive(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    template.Settings
	}{
		{"linux-static", linuxSettings()},
		{"windows", windowsSettings()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cd, err := template.RenderConfigDrive(tc.s, detOpts())
			if err != nil {
				t.Fatal(err)
			}
			for path, data := range cd.Files() {
				golden(t, "configdrive-"+tc.name+"/"+path, data)
			}
		})
	}
}

func TestGoldenGuestInfo(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", compress), func(t *testing.T) {
			opts := detOpts()
			opts.Compress = compress
			gi, err := template.RenderGuestInfo(linuxSettings(), opts)
			if err != nil {
				t.Fatal(err)
			}
			keys := make([]string, 0, len(gi))
			for k := range gi {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var b strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&b, "%s=%s\n", k, gi[k])
			}
			name := "guestinfo-linux-static.txt"
			if compress {
				name = "guestinfo-linux-static-gzip.txt"
			}
			golden(t, name, []byte(b.String()))
			// The decoded documents are golden too, for reading.
			meta, err := template.DecodeGuestInfo(gi[template.GuestInfoMetadata], gi[template.GuestInfoMetadataEncoding])
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "guestinfo-linux-static/metadata", meta)
		})
	}
}

func TestGoldenCloudbaseInit(t *testing.T) {
	files, err := template.RenderCloudbaseInit(windowsConfig(), "WIN01")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cloudbase/cloudbase-init.conf", files.Conf)
	golden(t, "cloudbase/cloudbase-init-unattend.conf", files.UnattendConf)
	golden(t, "cloudbase/Unattend.xml", files.UnattendXML)

	minimal, err := template.RenderCloudbaseInit(template.Windows{}, "")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cloudbase-minimal/Unattend.xml", minimal.UnattendXML)
}

func TestGoldenCustomizationSpec(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    template.Settings
		opts *template.SpecOptions
	}{
		{"linux-static", linuxSettings(), nil},
		{"linux-template", linuxDHCPSettings(), &template.SpecOptions{HostnameFromVMName: true, Description: "spec for VMT-HCP-PROD-Ubuntu2204"}},
		{"windows", windowsSettings(), &template.SpecOptions{HostnameFromVMName: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := template.BuildCustomizationSpec("VMT-HCP-PROD-"+tc.name, tc.s, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			out, err := json.MarshalIndent(spec, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "vsphere-spec-"+tc.name+".json", append(out, '\n'))
		})
	}
}
