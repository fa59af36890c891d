package template

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"reflect"
	"strings"

	"github.com/managedvm/managedvm/errs"
)

// VMware guestinfo keys read by cloud-init's VMware datasource (and
// cloudbase-init's VMwareGuestInfoService), set as a VM's extraConfig.
const (
	GuestInfoMetadata         = "guestinfo.metadata"
	GuestInfoMetadataEncoding = "guestinfo.metadata.encoding"
	GuestInfoUserdata         = "guestinfo.userdata"
	GuestInfoUserdataEncoding = "guestinfo.userdata.encoding"
)

// The guestinfo encodings this package writes.
const (
	EncodingBase64     = "base64"
	EncodingGzipBase64 = "gzip+base64"
)

// RenderGuestInfo renders s as VMware guestinfo keys: guestinfo.metadata
// (instance-id, local-hostname and the version 2 network config under
// "network") and guestinfo.userdata (#cloud-config), each base64-encoded
// (gzip+base64 with opts.Compress) with its ".encoding" key. Values are
// decoded and parsed back before they are returned.
func RenderGuestInfo(s Settings, opts *Options) (map[string]string, error) {
	const op = "template.RenderGuestInfo"
	if err := validateSettings(op, s); err != nil {
		return nil, err
	}
	cc, err := buildCloudConfig(op, s, opts)
	if err != nil {
		return nil, err
	}
	md := &metaData{InstanceID: s.InstanceID, LocalHostname: s.Hostname, Network: buildNetV2(s.NICs)}
	meta, err := renderYAML(op, md)
	if err != nil {
		return nil, err
	}
	user, err := renderUserData(op, cc)
	if err != nil {
		return nil, err
	}
	enc := EncodingBase64
	if opts != nil && opts.Compress {
		enc = EncodingGzipBase64
	}
	out := map[string]string{GuestInfoMetadataEncoding: enc, GuestInfoUserdataEncoding: enc}
	if out[GuestInfoMetadata], err = encodeGuestInfo(meta, enc); err != nil {
		return nil, internalf(op, "encoding metadata: %v", err)
	}
	if out[GuestInfoUserdata], err = encodeGuestInfo(user, enc); err != nil {
		return nil, internalf(op, "encoding userdata: %v", err)
	}
	// Decode what will be set and check it is what was rendered.
	var back metaData
	if raw, err := DecodeGuestInfo(out[GuestInfoMetadata], enc); err != nil || !bytes.Equal(raw, meta) {
		return nil, internalf(op, "guestinfo metadata does not decode back")
	} else if err := decodeYAMLStrict(raw, &back); err != nil || !reflect.DeepEqual(&back, md) {
		return nil, internalf(op, "guestinfo metadata does not parse back")
	}
	if raw, err := DecodeGuestInfo(out[GuestInfoUserdata], enc); err != nil || !bytes.Equal(raw, user) {
		return nil, internalf(op, "guestinfo userdata does not decode back")
	}
	opts.logger().Debug("template: rendered guestinfo", "instance", s.InstanceID, "encoding", enc,
		"metadata", len(out[GuestInfoMetadata]), "userdata", len(out[GuestInfoUserdata]))
	return out, nil
}

func encodeGuestInfo(data []byte, enc string) (string, error) {
	if enc == EncodingGzipBase64 {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return "", err
		}
		if _, err := zw.Write(data); err != nil {
			return "", err
		}
		if err := zw.Close(); err != nil {
			return "", err
		}
		data = buf.Bytes()
	}
	return base64.StdEncoding.EncodeToString(data), nil
}

// DecodeGuestInfo decodes a guestinfo value written with the given
// encoding: "" (raw), "base64"/"b64" or "gzip+base64"/"gz+b64". A value
// that does not decode is InvalidArgument; decompressed data is limited to
// 16 MiB.
func DecodeGuestInfo(value, encoding string) ([]byte, error) {
	const op = "template.DecodeGuestInfo"
	switch strings.ToLower(encoding) {
	case "":
		return []byte(value), nil
	case "base64", "b64":
		b, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, op, err)
		}
		return b, nil
	case "gzip+base64", "gz+b64":
		b, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, op, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, op, err)
		}
		const limit = 16 << 20
		out, err := io.ReadAll(io.LimitReader(zr, limit+1))
		if err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, op, err)
		}
		if len(out) > limit {
			return nil, errs.New(errs.InvalidArgument, op, "decompressed value is larger than 16 MiB")
		}
		return out, nil
	}
	return nil, invalidf(op, "unknown encoding %s", quoteName(encoding))
}
