package template

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strings"

	"github.com/managedvm/managedvm/errs"
)

// MaxVCDScript is the longest VCD customization script VCDScript
// writes, in bytes. VMware Cloud Director hands the script to VMware
// Tools' guest customization engine, whose documented limit for the
// Linux customization script is 1500 bytes (vSphere Automation API,
// Guest.LinuxConfiguration.script_text: "The max size of the script is
// 1500 bytes").
const MaxVCDScript = 1500

// VCDSeedDir is where VCDScript writes the NoCloud seed: the seed
// directory cloud-init's NoCloud datasource reads without a seed volume.
const VCDSeedDir = "/var/lib/cloud/seed/nocloud"

// VCDScript renders the seed as a VMware Cloud Director guest
// customization script for a Linux guest: a POSIX sh script that writes
// meta-data, user-data and network-config (or removes a network-config
// left in the directory when the seed has none) into [VCDSeedDir], each
// file mode 0600 and replaced whole (written beside it, then renamed), so
// that cloud-init's NoCloud datasource takes the seed when it runs. VCD
// runs the script with the argument "precustomization" before its guest
// customization and "postcustomization" after it; the script writes the
// same files for either (and without an argument) and exits 2 without
// writing anything for another argument.
//
// Each file is a quoted here-document when the script fits in
// MaxVCDScript that way (a document that ends with a line feed, as this
// package's renderers write them); otherwise gzip and base64 (the guest
// needs gzip and base64, as every cloud-init image has). A seed that does
// not fit in MaxVCDScript either way, or without MetaData or UserData, is
// InvalidArgument; the message gives sizes only, never content.
func (n *NoCloud) VCDScript() ([]byte, error) {
	const op = "template.NoCloud.VCDScript"
	if len(n.MetaData) == 0 || len(n.UserData) == 0 {
		return nil, errs.New(errs.InvalidArgument, op, "the seed needs meta-data (instance-id) and user-data")
	}
	files := []struct {
		name string
		data []byte
	}{{MetaDataFile, n.MetaData}, {UserDataFile, n.UserData}, {NetworkConfigFile, n.NetworkConfig}}
	var best []byte
	for _, packed := range []bool{false, true} {
		var b bytes.Buffer
		b.WriteString(vcdScriptHead)
		ok := true
		for _, f := range files {
			if f.data == nil {
				b.WriteString("rm -f \"$d/" + f.name + "\"\n")
				continue
			}
			if !writeVCDFile(&b, f.name, f.data, packed) {
				ok = false
				break
			}
		}
		if ok && (best == nil || b.Len() < len(best)) {
			best = b.Bytes()
		}
	}
	if best == nil {
		return nil, internalf(op, "no form of the script could be written")
	}
	if len(best) > MaxVCDScript {
		return nil, errs.Errorf(errs.InvalidArgument, op,
			"the VCD customization script would be %d bytes (meta-data %d, user-data %d, network-config %d, compressed where smaller), longer than VCD's %d",
			len(best), len(n.MetaData), len(n.UserData), len(n.NetworkConfig), MaxVCDScript)
	}
	return best, nil
}

// vcdScriptHead checks the argument and prepares the seed directory.
const vcdScriptHead = `#!/bin/sh
# managedvm: cloud-init NoCloud seed (VCD guest customization)
case "${1-}" in
precustomization | postcustomization | "") ;;
*) echo "usage: $0 [precustomization|postcustomization]" >&2; exit 2 ;;
esac
set -e
umask 077
d=` + VCDSeedDir + `
mkdir -p "$d"
`

// vcdEOF delimits the here-documents. A line of a document equal to it
// would end the document early: such a document goes base64-encoded.
const vcdEOF = "MVM_SEED_EOF"

// writeVCDFile appends the commands writing one seed file. A plain
// here-document needs the data to end with a line feed (the shell adds
// one) and to hold no line equal to the delimiter and no NUL; ok is false
// when it cannot be written plain.
func writeVCDFile(b *bytes.Buffer, name string, data []byte, packed bool) bool {
	tmp := "\"$d/." + name + ".tmp\""
	if packed {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		_, _ = zw.Write(data)
		_ = zw.Close()
		enc := base64.StdEncoding.EncodeToString(z.Bytes())
		b.WriteString("base64 -d <<'" + vcdEOF + "' | gzip -dc >" + tmp + "\n")
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\n" + vcdEOF + "\n")
	} else {
		if !bytes.HasSuffix(data, []byte("\n")) || bytes.IndexByte(data, 0) >= 0 {
			return false
		}
		for _, line := range strings.Split(string(data[:len(data)-1]), "\n") {
			if line == vcdEOF {
				return false
			}
		}
		b.WriteString("cat >" + tmp + " <<'" + vcdEOF + "'\n")
		b.Write(data)
		b.WriteString(vcdEOF + "\n")
	}
	b.WriteString("mv -f " + tmp + " \"$d/" + name + "\"\n")
	return true
}
