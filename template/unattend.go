package template

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"reflect"
	"strconv"
	"unicode/utf16"
)

// Namespaces of a Windows answer file.
const (
	UnattendNamespace = "urn:schemas-microsoft-com:unattend"
	wcmNamespace      = "http://schemas.microsoft.com/WMIConfig/2002/State"
	xsiNamespace      = "http://www.w3.org/2001/XMLSchema-instance"
)

type unattend struct {
	XMLName  xml.Name   `xml:"urn:schemas-microsoft-com:unattend unattend"`
	Settings []settings `xml:"settings"`
}

type settings struct {
	Pass       string      `xml:"pass,attr"`
	Components []component `xml:"component"`
}

// component is a <component> of any of the three kinds this package
// writes; the fields of the other kinds stay empty and are left out.
type component struct {
	Name                  string    `xml:"name,attr"`
	ProcessorArchitecture string    `xml:"processorArchitecture,attr"`
	PublicKeyToken        string    `xml:"publicKeyToken,attr"`
	Language              string    `xml:"language,attr"`
	VersionScope          string    `xml:"versionScope,attr"`
	WCM                   xmlnsAttr `xml:"wcm,attr"`
	XSI                   xmlnsAttr `xml:"xsi,attr"`

	// Microsoft-Windows-Shell-Setup
	ComputerName           string              `xml:"ComputerName,omitempty"`
	RegisteredOrganization string              `xml:"RegisteredOrganization,omitempty"`
	RegisteredOwner        string              `xml:"RegisteredOwner,omitempty"`
	TimeZone               string              `xml:"TimeZone,omitempty"`
	OOBE                   *oobe               `xml:"OOBE,omitempty"`
	UserAccounts           *userAccounts       `xml:"UserAccounts,omitempty"`
	AutoLogon              *autoLogon          `xml:"AutoLogon,omitempty"`
	FirstLogonCommands     *firstLogonCommands `xml:"FirstLogonCommands,omitempty"`

	// Microsoft-Windows-Deployment
	RunSynchronous *runSynchronous `xml:"RunSynchronous,omitempty"`
}

// xmlnsAttr is a namespace declaration written as xmlns:prefix, so the
// file reads like the ones Windows System Image Manager writes.
type xmlnsAttr struct{ Prefix, URI string }

func (a xmlnsAttr) MarshalXMLAttr(xml.Name) (xml.Attr, error) {
	if a.Prefix == "" {
		return xml.Attr{}, nil
	}
	return xml.Attr{Name: xml.Name{Local: "xmlns:" + a.Prefix}, Value: a.URI}, nil
}

func (a *xmlnsAttr) UnmarshalXMLAttr(attr xml.Attr) error {
	a.Prefix, a.URI = attr.Name.Local, attr.Value
	return nil
}

// wcmAction is the wcm:action attribute of list items.
type wcmAction string

func (a wcmAction) MarshalXMLAttr(xml.Name) (xml.Attr, error) {
	if a == "" {
		return xml.Attr{}, nil
	}
	return xml.Attr{Name: xml.Name{Local: "wcm:action"}, Value: string(a)}, nil
}

func (a *wcmAction) UnmarshalXMLAttr(attr xml.Attr) error {
	*a = wcmAction(attr.Value)
	return nil
}

type oobe struct {
	HideEULAPage              bool   `xml:"HideEULAPage"`
	HideOEMRegistrationScreen bool   `xml:"HideOEMRegistrationScreen"`
	HideOnlineAccountScreens  bool   `xml:"HideOnlineAccountScreens"`
	HideWirelessSetupInOOBE   bool   `xml:"HideWirelessSetupInOOBE"`
	NetworkLocation           string `xml:"NetworkLocation"`
	ProtectYourPC             int    `xml:"ProtectYourPC"`
	SkipMachineOOBE           bool   `xml:"SkipMachineOOBE"`
	SkipUserOOBE              bool   `xml:"SkipUserOOBE"`
}

type userAccounts struct {
	AdministratorPassword *unattendPassword `xml:"AdministratorPassword"`
}

type unattendPassword struct {
	Value     string `xml:"Value"`
	PlainText bool   `xml:"PlainText"`
}

type autoLogon struct {
	Password   *unattendPassword `xml:"Password"`
	Enabled    bool              `xml:"Enabled"`
	LogonCount int               `xml:"LogonCount"`
	Username   string            `xml:"Username"`
}

type firstLogonCommands struct {
	Commands []synchronousCommand `xml:"SynchronousCommand"`
}

type synchronousCommand struct {
	Action      wcmAction `xml:"action,attr"`
	Order       int       `xml:"Order"`
	CommandLine string    `xml:"CommandLine"`
	Description string    `xml:"Description"`
}

type runSynchronous struct {
	Commands []runSynchronousCommand `xml:"RunSynchronousCommand"`
}

type runSynchronousCommand struct {
	Action      wcmAction `xml:"action,attr"`
	Order       int       `xml:"Order"`
	Path        string    `xml:"Path"`
	Description string    `xml:"Description"`
	WillReboot  string    `xml:"WillReboot"`
}

// UnattendPassword encodes a password for an answer file with
// PlainText=false: base64 of the UTF-16LE encoding of the password followed
// by the element's name ("AdministratorPassword" for
// UserAccounts/AdministratorPassword, "Password" for AutoLogon/Password and
// local accounts). It is an obfuscation defined by Windows Setup, not
// encryption.
func UnattendPassword(password, element string) string {
	u := utf16.Encode([]rune(password + element))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func newComponent(name string) component {
	return component{
		Name:                  name,
		ProcessorArchitecture: "amd64",
		PublicKeyToken:        "31bf3856ad364e35",
		Language:              "neutral",
		VersionScope:          "nonSxS",
		WCM:                   xmlnsAttr{"wcm", wcmNamespace},
		XSI:                   xmlnsAttr{"xsi", xsiNamespace},
	}
}

// buildUnattend makes the answer file: specialize sets the computer name
// and runs cloudbase-init with cloudbase-init-unattend.conf; oobeSystem
// skips the OOBE screens, sets the Administrator password, auto logon and
// first logon commands.
func buildUnattend(w Windows, cb Cloudbase, computerName string) *unattend {
	if computerName == "" {
		computerName = "*"
	}
	owner, org := w.RegisteredOwner, w.RegisteredOrganization
	if owner == "" {
		owner = "Administrator"
	}
	if org == "" {
		org = "Managed"
	}
	shell := newComponent("Microsoft-Windows-Shell-Setup")
	shell.ComputerName = computerName
	shell.RegisteredOrganization = org
	shell.RegisteredOwner = owner
	shell.TimeZone = w.TimeZone

	dir := trimBackslash(cb.InstallDir)
	deploy := newComponent("Microsoft-Windows-Deployment")
	deploy.RunSynchronous = &runSynchronous{Commands: []runSynchronousCommand{{
		Action: "add",
		Order:  1,
		Path: `cmd.exe /c ""` + dir + `\Python\Scripts\cloudbase-init.exe" --config-file "` +
			dir + `\conf\cloudbase-init-unattend.conf" && exit 1 || exit 2"`,
		Description: "Run Cloudbase-Init to set the hostname",
		WillReboot:  "OnRequest",
	}}}

	oobeShell := newComponent("Microsoft-Windows-Shell-Setup")
	oobeShell.OOBE = &oobe{
		HideEULAPage:              true,
		HideOEMRegistrationScreen: true,
		HideOnlineAccountScreens:  true,
		HideWirelessSetupInOOBE:   true,
		NetworkLocation:           "Work",
		ProtectYourPC:             1,
		SkipMachineOOBE:           true,
		SkipUserOOBE:              true,
	}
	oobeShell.TimeZone = w.TimeZone
	if !w.AdminPassword.IsZero() {
		pw := w.AdminPassword.Reveal()
		oobeShell.UserAccounts = &userAccounts{AdministratorPassword: &unattendPassword{
			Value: UnattendPassword(pw, "AdministratorPassword"),
		}}
		if w.AutoLogonCount > 0 {
			oobeShell.AutoLogon = &autoLogon{
				Password:   &unattendPassword{Value: UnattendPassword(pw, "Password")},
				Enabled:    true,
				LogonCount: w.AutoLogonCount,
				Username:   "Administrator",
			}
		}
	}
	if len(w.FirstLogonCommands) > 0 {
		flc := &firstLogonCommands{}
		for i, c := range w.FirstLogonCommands {
			flc.Commands = append(flc.Commands, synchronousCommand{
				Action:      "add",
				Order:       i + 1,
				CommandLine: c,
				Description: "First logon command " + strconv.Itoa(i+1),
			})
		}
		oobeShell.FirstLogonCommands = flc
	}

	return &unattend{
		XMLName: xml.Name{Space: UnattendNamespace, Local: "unattend"},
		Settings: []settings{
			{Pass: "specialize", Components: []component{shell, deploy}},
			{Pass: "oobeSystem", Components: []component{oobeShell}},
		},
	}
}

func trimBackslash(s string) string {
	for len(s) > 3 && s[len(s)-1] == '\\' {
		s = s[:len(s)-1]
	}
	return s
}

func encodeUnattend(u *unattend) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(u); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// renderUnattend writes u with encoding/xml, parses the output back and
// checks it means exactly u and renders to the same bytes.
func renderUnattend(op string, u *unattend) ([]byte, error) {
	out, err := encodeUnattend(u)
	if err != nil {
		return nil, internalf(op, "encoding Unattend.xml: %v", err)
	}
	var back unattend
	if err := xml.Unmarshal(out, &back); err != nil {
		return nil, internalf(op, "rendered Unattend.xml does not parse back: %v", err)
	}
	if !reflect.DeepEqual(u, &back) {
		return nil, internalf(op, "rendered Unattend.xml parses back to a different value")
	}
	again, err := encodeUnattend(&back)
	if err != nil || !bytes.Equal(out, again) {
		return nil, internalf(op, "rendered Unattend.xml does not render back identically")
	}
	return out, nil
}
