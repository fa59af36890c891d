// Package template makes VM templates checkable and their guest bootstrap
// data correct by construction.
//
// The reference is the provider requirements guide of HyperCloud Platform
// (HCP), a multi-provider provisioning product; managedvm
// follows it and keeps its terms in the requirement rows: the "HyperCloud
// agent" is that product's in-guest agent, which a template may have
// pre-installed instead of a bootstrap method, and "HyperCloud Blueprints"
// are its multi-tier deployments. The rows cover the four providers of the
// guide (vSphere, oVirt, Hyper-V, vCloud Director); of the provider
// drivers only vSphere exists so far. The guide spends half its
// length on VM template preparation: VMware Tools, a guest customization
// spec named exactly like the template, cloud-init limited to the NoCloud
// and ConfigDrive datasources, cloudbase-init and sysprep for Windows.
// Operators get it wrong, and provisioning then fails late, in the guest.
// This package turns the guidelines into data that drivers check before
// anything is cloned, and writes the first-boot documents with real
// encoders so that no hostname, user name or command can break them.
//
// # Requirements and validation
//
// [Requirements] lists, for each provider [Kind] (vSphere, oVirt, Hyper-V,
// vCloud Director), the template requirements as rows: a stable ID
// ("vsphere.template.marked"), the requirement and its fix in the
// reference's terms, the reference section, and the guest OS families and
// [Bootstrap] methods (guest customization, cloud-init, cloudbase-init, a
// pre-installed agent) it applies to.
//
// A driver fills an [Inspection] with what it can observe about a template
// ([Fact] values Yes, No or Unknown, the customization spec, datasource
// list, VHDX path, catalog, ...) and calls [Validate], which returns a
// report.Report: one pass/warn/fail row per applicable requirement, with
// the fix. Something the driver could not observe warns ("check by hand")
// and never passes. Drivers' Preflight merges these reports.
// [ParseDatasourceList], [CloudbaseMetadataServices] and [VMwareToolsFacts]
// turn what a driver reads from a template into Inspection fields.
//
// # Naming
//
// When several platforms share a vCenter Server, each clones the template
// under its own prefix (VMT-HCP-PROD-Win2k16x64, VMT-HCP-QA-Win2k16x64) and
// clones the customization spec with it, since the spec carries exactly the
// template's name. [Naming] builds and parses those names, [SpecNameFor]
// gives a template's spec name, and [Naming.CheckSharedVCenter] reports
// templates two environments share.
//
// # Rendering guest bootstrap data
//
// One [Settings] value (instance ID, hostname, users, packages, files,
// commands, NICs with DHCP or static addresses) renders every form:
//
//   - [RenderNoCloud]: cloud-init NoCloud meta-data, user-data
//     (#cloud-config) and network-config version 2; [NoCloud.WriteISO]
//     writes the seed ISO (volume label "cidata"); [NoCloud.VCDScript]
//     writes VMware Cloud Director's guest customization script for a
//     Linux guest: a POSIX sh script that writes the seed into
//     /var/lib/cloud/seed/nocloud for either of VCD's arguments
//     (precustomization, postcustomization), at most [MaxVCDScript]
//     (1500) bytes; the tests run it with sh in a private mount namespace
//     and have cloud-init's NoCloud datasource read what it wrote.
//   - [RenderConfigDrive]: the OpenStack config drive layout
//     (openstack/latest/meta_data.json, user_data, network_data.json) and
//     its ISO (label "config-2").
//   - [RenderGuestInfo]: VMware guestinfo keys, base64 or gzip+base64 with
//     their ".encoding" keys.
//   - [BuildCustomizationSpec]: a vSphere customization spec (LinuxPrep or
//     Sysprep, DHCP or static NICs) in a plain model, [CustomizationSpec],
//     that the vSphere driver maps to govmomi's types and compares with
//     [CustomizationSpec.Diff].
//   - [RenderCloudbaseInit]: for a [Windows] template, cloudbase-init.conf
//     and cloudbase-init-unattend.conf (INI, see [INIFile]) and the sysprep
//     Unattend.xml (encoding/xml).
//
// YAML is written with go.yaml.in/yaml/v3 from a node tree in which every
// string is quoted, so that PyYAML, the YAML 1.1 parser cloud-init uses,
// cannot read yes, 1:20 or 2024-01-02 as anything but strings; JSON with
// encoding/json; XML with encoding/xml; INI with this package's encoder,
// which rejects line breaks and control characters. Every renderer parses
// its output back and checks that it means exactly the input before
// returning it; seed ISOs (github.com/kdomanski/iso9660) are read back and
// compared file by file.
//
// # What cloud-init does with it, and which cloud-init
//
// The renderers target cloud-init 22.4.2, the version Debian 12 ships, and
// the package's level-3 tests run that cloud-init on every renderer's
// output: `cloud-init schema --config-file` on user-data, `cloud-init devel
// net-convert` to eni, networkd and netplan, and cloud-init's own NoCloud,
// ConfigDrive (cloudinit.sources.helpers.openstack) and VMware (guestinfo)
// readers, with the commands creating users captured rather than run.
// Only keys that 22.4 and current upstream (26.x) read alike are written;
// where behaviour differs, the renderer aims at 22.4 without breaking later
// versions:
//
//   - Interface names: cloud-init names an interface from set-name, then
//     the guest interface with the NIC's MAC, then the key of the
//     network-config entry, and ignores match.name (22.4 and upstream).
//     A [NIC] with a Name is therefore keyed by that name; one with a MAC
//     alone "nicN", which the guest's MAC lookup replaces (on a guest
//     without that MAC, eni and networkd would use nicN). A glob Name
//     ("ens*") reaches netplan and networkd ([Match] Name= takes globs) as
//     a pattern; ifupdown (eni) and sysconfig take it as a literal name.
//   - Users: user-data lists the users, so no distribution default user
//     (debian, ubuntu) is created; the name "default", which cloud-init
//     reads as that user, is refused. Passwords go in hashed_passwd, which
//     cloud-init applies with chpasswd -e to new and existing accounts
//     (root, or one baked into the template); passwd would reach only
//     useradd, which cloud-init skips for an existing account. An account
//     given without a password gets cloud-init's default lock_passwd: true
//     (passwd -l), existing accounts included. Shells are limited to
//     characters useradd accepts.
//   - Files: write_files runs before users-groups, so a [File] owned by a
//     user or group the same Settings create is written with defer: true
//     (cloud-init 21.3 and later), in the final stage after users and
//     packages and before runcmd.
//   - ConfigDrive DNS: 22.4 reads a network's dns_search (written for each
//     NIC's SearchDomains) and only the top-level "services" as global DNS
//     servers (eni puts them on lo); later versions also read each
//     network's "services" as that interface's servers. Both are written.
//     22.4's netplan renderer drops those global servers (eni and networkd
//     keep them), so a 22.4 guest that renders netplan from a config drive
//     gets no DNS servers from it; NoCloud and guestinfo are not affected.
//   - Search domains of a DHCP NIC reach netplan only in 22.4: its eni
//     renderer writes DNS settings for static addresses only, a version 2
//     nameservers entry without addresses is skipped for networkd
//     ("Skipping invalid command"), and a config drive's DHCP network keeps
//     none. Static NICs get them in every renderer.
//
// The tests never run cloud-init's boot stages on the machine; they need
// Debian's cloud-init package, installed after
// /etc/cloud/cloud-init.disabled (.ci/components/50-cloudinit.sh), and
// skip naming it when it is missing, except under CI=true.
//
// # Secrets
//
// Passwords are [guest.Secret] values. cloud-init gets only SHA-512 crypt
// hashes ([HashPassword], [CryptSHA512]: Drepper's algorithm, with salts
// from crypto/rand). cloudbase-init cannot take a hash, so Windows users may
// not carry passwords in user-data; the Administrator password goes into
// Unattend.xml in the PlainText=false form Windows defines
// ([UnattendPassword]), an obfuscation, not encryption: treat rendered
// answer files as secret. cloudbase-init's debug logging, which can print
// metadata, is left off. Passwords never appear in errors or logs.
//
// # Errors
//
// Invalid input is reported as errs.InvalidArgument, listing every problem
// found (invalid RFC 1123 hostnames, Windows computer names over the
// 15-character NetBIOS limit, duplicate users, an empty instance ID,
// control characters, relative paths, ...) without showing passwords,
// commands or file contents. A rendered document that does not parse back
// is errs.Internal: a bug, never the caller's fault.
//
// # Concurrency
//
// The package has no state: every function may be called from any number
// of goroutines. Options.Rand, when set, must be safe for the calls that
// share it.
package template
