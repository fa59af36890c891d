package template_test

import (
	"bytes"
	"fmt"
	"log"
	"sort"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/template"
)

func ExampleRenderNoCloud() {
	nc, err := template.RenderNoCloud(template.Settings{
		InstanceID: "iid-web01",
		Hostname:   "web01",
		Users:      []template.User{{Name: "ops", SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3Nza ops@example"}}},
		RunCmd:     []string{"curl -Ls https://repo.example.com/agent.sh | bash -s hcp.example.com 5671"},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s---\n%s", nc.MetaData, nc.UserData)
	// Output:
	// instance-id: "iid-web01"
	// local-hostname: "web01"
	// ---
	// #cloud-config
	// hostname: "web01"
	// users:
	//   - name: "ops"
	//     ssh_authorized_keys:
	//       - "ssh-ed25519 AAAAC3Nza ops@example"
	// ssh_pwauth: false
	// disable_root: true
	// runcmd:
	//   - "curl -Ls https://repo.example.com/agent.sh | bash -s hcp.example.com 5671"
}

func ExampleValidate() {
	report, err := template.Validate(template.Inspection{
		Provider:       template.VSphere,
		Name:           "VMT-HCP-PROD-Ubuntu2204",
		Family:         guest.Linux,
		IsTemplate:     template.Yes,
		ToolsInstalled: template.Yes,
		ToolsCurrent:   template.No,
		// The driver listed the customization specs: none is named like
		// the template.
		SpecNames:              []string{"VMT-HCP-QA-Ubuntu2204"},
		CustomizationSupported: template.Yes,
	}, &template.ValidateOptions{Environment: "PROD"})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range report.Checks {
		fmt.Printf("%-4s %s: %s\n", c.Status, c.ID, c.Detail)
	}
	fmt.Println("ok:", report.OK())
	// Output:
	// pass vsphere.template.os-family: linux
	// pass vsphere.template.bootstrap: guest-customization (inferred)
	// pass vsphere.template.marked: marked as a template
	// pass vsphere.template.tools: installed
	// fail vsphere.template.tools-current: out of date
	// pass vsphere.template.customization-os: supported
	// fail vsphere.template.customization-spec: no spec named "VMT-HCP-PROD-Ubuntu2204"
	// warn vsphere.template.customization-type: the guest customization spec was not read
	// warn vsphere.template.customization-hostname: the guest customization spec was not read
	// warn vsphere.template.customization-network: the guest customization spec was not read
	// pass vsphere.template.environment-prefix: PROD's template
	// ok: false
}

func ExampleNaming_TemplateName() {
	var n template.Naming
	for _, env := range []string{"prod", "qa"} {
		name, _ := n.TemplateName(env, "Win2k16x64")
		fmt.Println(name, "-> spec", template.SpecNameFor(name))
	}
	// Output:
	// VMT-HCP-PROD-Win2k16x64 -> spec VMT-HCP-PROD-Win2k16x64
	// VMT-HCP-QA-Win2k16x64 -> spec VMT-HCP-QA-Win2k16x64
}

func ExampleCryptSHA512() {
	h, _ := template.CryptSHA512("Hello world!", "$6$saltstring")
	fmt.Println(h)
	fmt.Println(template.CheckPassword(guest.NewSecret("Hello world!"), h))
	// Output:
	// $6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1
	// true
}

func ExampleNoCloud_WriteISO() {
	nc, err := template.RenderNoCloud(template.Settings{InstanceID: "iid-1", Hostname: "vm1"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	var iso bytes.Buffer
	if err := nc.WriteISO(&iso); err != nil {
		log.Fatal(err)
	}
	label, files, err := template.ReadISO(bytes.NewReader(iso.Bytes()))
	if err != nil {
		log.Fatal(err)
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Println(label, names)
	// Output:
	// cidata [meta-data user-data]
}
