package template

import (
	"bytes"
	"regexp"
	"strings"
)

// cloudbase-init metadata services (class paths for metadata_services).
const (
	// MetadataNoCloud reads a NoCloud seed (label "cidata").
	MetadataNoCloud = "cloudbaseinit.metadata.services.nocloudservice.NoCloudConfigDriveService"
	// MetadataConfigDrive reads an OpenStack config drive ("config-2").
	MetadataConfigDrive = "cloudbaseinit.metadata.services.configdrive.ConfigDriveService"
	// MetadataVMwareGuestInfo reads VMware guestinfo keys.
	MetadataVMwareGuestInfo = "cloudbaseinit.metadata.services.vmwareguestinfoservice.VMwareGuestInfoService"
)

// DefaultCloudbaseInstallDir is where the cloudbase-init installer puts it.
const DefaultCloudbaseInstallDir = `C:\Program Files\Cloudbase Solutions\Cloudbase-Init`

// Cloudbase configures cloudbase-init on a Windows template. Zero fields
// take the defaults shown.
type Cloudbase struct {
	// MetadataServices are tried in order; default NoCloud then
	// ConfigDrive.
	MetadataServices []string
	// Plugins run by the cloudbase-init service at every boot; default
	// [DefaultCloudbasePlugins].
	Plugins []string
	// UnattendPlugins run during sysprep's specialize pass
	// (cloudbase-init-unattend.conf); default [DefaultCloudbaseUnattendPlugins].
	UnattendPlugins []string
	// Username is the account cloudbase-init creates and gives the
	// metadata's password and keys; default "Admin".
	Username string
	// Groups the account joins; default Administrators.
	Groups []string
	// InstallDir is cloudbase-init's installation directory; default
	// [DefaultCloudbaseInstallDir].
	InstallDir string
}

// DefaultCloudbaseMetadataServices returns the default metadata services:
// NoCloud, then ConfigDrive (the reference's datasources).
func DefaultCloudbaseMetadataServices() []string {
	return []string{MetadataNoCloud, MetadataConfigDrive}
}

// DefaultCloudbasePlugins returns the plugins the cloudbase-init service
// runs by default.
func DefaultCloudbasePlugins() []string {
	return []string{
		"cloudbaseinit.plugins.common.mtu.MTUPlugin",
		"cloudbaseinit.plugins.windows.ntpclient.NTPClientPlugin",
		"cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin",
		"cloudbaseinit.plugins.windows.createuser.CreateUserPlugin",
		"cloudbaseinit.plugins.common.networkconfig.NetworkConfigPlugin",
		"cloudbaseinit.plugins.common.sshpublickeys.SetUserSSHPublicKeysPlugin",
		"cloudbaseinit.plugins.windows.extendvolumes.ExtendVolumesPlugin",
		"cloudbaseinit.plugins.common.setuserpassword.SetUserPasswordPlugin",
		"cloudbaseinit.plugins.windows.winrmlistener.ConfigWinRMListenerPlugin",
		"cloudbaseinit.plugins.common.userdata.UserDataPlugin",
		"cloudbaseinit.plugins.common.localscripts.LocalScriptsPlugin",
	}
}

// DefaultCloudbaseUnattendPlugins returns the plugins run during sysprep's
// specialize pass by default.
func DefaultCloudbaseUnattendPlugins() []string {
	return []string{
		"cloudbaseinit.plugins.common.mtu.MTUPlugin",
		"cloudbaseinit.plugins.common.sethostname.SetHostNamePlugin",
		"cloudbaseinit.plugins.windows.extendvolumes.ExtendVolumesPlugin",
	}
}

var pyClassRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)

func (c Cloudbase) withDefaults() Cloudbase {
	if len(c.MetadataServices) == 0 {
		c.MetadataServices = DefaultCloudbaseMetadataServices()
	}
	if len(c.Plugins) == 0 {
		c.Plugins = DefaultCloudbasePlugins()
	}
	if len(c.UnattendPlugins) == 0 {
		c.UnattendPlugins = DefaultCloudbaseUnattendPlugins()
	}
	if c.Username == "" {
		c.Username = "Admin"
	}
	if len(c.Groups) == 0 {
		c.Groups = []string{"Administrators"}
	}
	if c.InstallDir == "" {
		c.InstallDir = DefaultCloudbaseInstallDir
	}
	return c
}

func (c Cloudbase) validate(p *problems) {
	for _, list := range []struct {
		name  string
		items []string
	}{{"metadata service", c.MetadataServices}, {"plugin", c.Plugins}, {"unattend plugin", c.UnattendPlugins}} {
		seen := map[string]bool{}
		for i, s := range list.items {
			if !pyClassRE.MatchString(s) {
				p.addf("cloudbase-init %s[%d] %s is not a Python class path", list.name, i, quoteName(s))
			} else if seen[s] {
				p.addf("cloudbase-init %s[%d] %s is listed twice", list.name, i, quoteName(s))
			}
			seen[s] = true
		}
	}
	if c.Username != "" {
		if why := windowsNameProblem(c.Username, 20); why != "" {
			p.addf("cloudbase-init username %s %s", quoteName(c.Username), why)
		} else if strings.Contains(c.Username, "$") {
			p.addf("cloudbase-init username contains '$' (oslo.config substitutes it)")
		}
	}
	for i, g := range c.Groups {
		if why := windowsNameProblem(g, 256); why != "" {
			p.addf("cloudbase-init group[%d] %s %s", i, quoteName(g), why)
		} else if strings.Contains(g, "$") {
			p.addf("cloudbase-init group[%d] contains '$' (oslo.config substitutes it)", i)
		}
	}
	if c.InstallDir != "" && (!isWindowsAbsPath(c.InstallDir) || strings.ContainsAny(c.InstallDir, "$%&^")) {
		p.addf("cloudbase-init install dir %s is not an absolute Windows path without $, %%, & or ^", quoteName(c.InstallDir))
	}
}

// CloudbaseFiles holds the files that prepare a Windows template for
// cloudbase-init, as the reference lists them: conf\cloudbase-init.conf,
// conf\cloudbase-init-unattend.conf and conf\Unattend.xml (the answer file
// for sysprep /generalize /oobe /unattend:Unattend.xml).
type CloudbaseFiles struct {
	Conf         []byte
	UnattendConf []byte
	UnattendXML  []byte
}

// RenderCloudbaseInit renders cloudbase-init's two configuration files
// (INI, with this package's encoder, parsed back) and the sysprep
// Unattend.xml (encoding/xml, parsed back) for w. computerName, if not
// empty, is set in the specialize pass (15 characters at most); empty
// means "*": Windows generates one and cloudbase-init's SetHostNamePlugin
// applies the instance's hostname from its metadata. Invalid settings are
// InvalidArgument.
//
// The administrator password is carried in Unattend.xml in Windows'
// obfuscated form, which is not encryption: the rendered files are secret.
func RenderCloudbaseInit(w Windows, computerName string) (*CloudbaseFiles, error) {
	const op = "template.RenderCloudbaseInit"
	p := &problems{op: op}
	w.validate(p)
	if computerName != "" {
		if why := computerNameProblem(computerName); why != "" {
			p.addf("computer name %s %s", quoteName(computerName), why)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	cb := w.Cloudbase.withDefaults()
	out := &CloudbaseFiles{}
	var err error
	if out.Conf, err = renderINI(op, cloudbaseConf(cb, false)); err != nil {
		return nil, err
	}
	if out.UnattendConf, err = renderINI(op, cloudbaseConf(cb, true)); err != nil {
		return nil, err
	}
	if out.UnattendXML, err = renderUnattend(op, buildUnattend(w, cb, computerName)); err != nil {
		return nil, err
	}
	return out, nil
}

// cloudbaseConf builds cloudbase-init.conf, or cloudbase-init-unattend.conf
// for the specialize pass. debug stays off: cloudbase-init's debug log can
// hold metadata, passwords included.
func cloudbaseConf(c Cloudbase, unattend bool) INIFile {
	dir := strings.TrimRight(c.InstallDir, `\`)
	logfile, plugins := "cloudbase-init.log", c.Plugins
	if unattend {
		logfile, plugins = "cloudbase-init-unattend.log", c.UnattendPlugins
	}
	e := []INIEntry{
		{"username", c.Username},
		{"groups", strings.Join(c.Groups, ",")},
		{"inject_user_password", "true"},
		{"first_logon_behaviour", "no"},
		{"config_drive_raw_hhd", "true"},
		{"config_drive_cdrom", "true"},
		{"config_drive_vfat", "true"},
		{"bsdtar_path", dir + `\bin\bsdtar.exe`},
		{"mtools_path", dir + `\bin\`},
		{"verbose", "true"},
		{"debug", "false"},
		{"logdir", dir + `\log\`},
		{"logfile", logfile},
		{"default_log_levels", "comtypes=INFO,suds=INFO,iso8601=WARN,requests=WARN"},
		{"mtu_use_dhcp_config", "true"},
		{"ntp_use_dhcp_config", "true"},
		{"local_scripts_path", dir + `\LocalScripts\`},
		{"metadata_services", strings.Join(c.MetadataServices, ",")},
		{"plugins", strings.Join(plugins, ",")},
		{"check_latest_version", "false"},
	}
	if unattend {
		e = append(e, INIEntry{"allow_reboot", "false"}, INIEntry{"stop_service_on_exit", "false"})
	}
	return INIFile{Sections: []INISection{{Name: "DEFAULT", Entries: e}}}
}

func renderINI(op string, f INIFile) ([]byte, error) {
	out, err := f.Encode()
	if err != nil {
		// Inputs were validated: a failure here is a bug.
		return nil, internalf(op, "encoding INI: %v", err)
	}
	back, err := ParseINI(out)
	if err != nil {
		return nil, internalf(op, "rendered INI does not parse back: %v", err)
	}
	again, err := back.Encode()
	if err != nil || !bytes.Equal(out, again) {
		return nil, internalf(op, "rendered INI does not parse back to the same entries")
	}
	return out, nil
}

// CloudbaseMetadataServices reads the metadata_services option of a
// cloudbase-init.conf, for drivers filling
// [Inspection.CloudbaseMetadataServices]. A file without the option gives
// nil (cloudbase-init then tries its built-in list); a file that does not
// parse is InvalidArgument.
func CloudbaseMetadataServices(conf []byte) ([]string, error) {
	f, err := ParseINI(conf)
	if err != nil {
		return nil, err
	}
	v, ok := f.Get("DEFAULT", "metadata_services")
	if !ok || strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
