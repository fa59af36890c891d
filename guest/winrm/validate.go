package winrm

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
)

// Limits New enforces on its arguments.
const (
	// MaxHost is the longest host (and Options.TLSServerName) New
	// accepts, the length limit of a DNS name.
	MaxHost = 253
	// MaxUserName is the longest user name ("user", "DOMAIN\user" or
	// "user@domain") New accepts, in bytes.
	MaxUserName = guest.MaxUsername
	// MaxPassword is the longest password New accepts, in bytes
	// (guest.MaxPassword).
	MaxPassword = guest.MaxPassword
	// MinEnvelopeSize is the smallest Options.EnvelopeSize.
	MinEnvelopeSize = 16384
)

// userNameForbidden are the characters Windows does not allow in account
// names (a backslash separates the domain, '@' the UPN suffix).
const userNameForbidden = `"/[]:;|=,+*?<>`

// quote quotes an untrusted value for an error message (limit.Quote).
func quote(s string) string { return limit.Quote(s) }

// validate checks New's arguments before anything touches the network.
func validate(host string, creds guest.Credentials, o *Options) error {
	if err := validateHost("host", host); err != nil {
		return err
	}
	if err := creds.Validate(); err != nil {
		return errs.WrapOp(opNew, err)
	}
	if err := validateUser(creds.Username); err != nil {
		return err
	}
	if creds.Password.IsZero() {
		return errs.New(errs.InvalidArgument, opNew, "WinRM needs a password")
	}
	tlsOpts := o.CACertPEM != nil || o.PinnedCertSHA256 != nil || o.TLSServerName != "" || o.InsecureSkipVerify
	switch {
	case o.Port < 0 || o.Port > 65535:
		return errs.Errorf(errs.InvalidArgument, opNew, "Port %d is outside 1-65535 (0 means the default)", o.Port)
	case o.HTTP && o.Basic && !o.InsecureUnencryptedBasic:
		return errs.New(errs.InvalidArgument, opNew, "refusing Basic authentication over plain HTTP, which cannot be encrypted: use NTLM (sealed over HTTP), HTTPS, or set Options.InsecureUnencryptedBasic")
	case o.InsecureUnencryptedBasic && !(o.HTTP && o.Basic):
		return errs.New(errs.InvalidArgument, opNew, "InsecureUnencryptedBasic is only for Basic over plain HTTP (Options.HTTP and Options.Basic)")
	case o.HTTP && tlsOpts:
		return errs.New(errs.InvalidArgument, opNew, "TLS options (CACertPEM, PinnedCertSHA256, TLSServerName, InsecureSkipVerify) given with plain HTTP")
	case o.PinnedCertSHA256 != nil && len(o.PinnedCertSHA256) != sha256.Size:
		return errs.Errorf(errs.InvalidArgument, opNew, "PinnedCertSHA256 must be %d bytes, not %d", sha256.Size, len(o.PinnedCertSHA256))
	case o.InsecureSkipVerify && (o.CACertPEM != nil || o.PinnedCertSHA256 != nil):
		return errs.New(errs.InvalidArgument, opNew, "InsecureSkipVerify given with CACertPEM or PinnedCertSHA256")
	case o.OperationTimeout < 0:
		return errs.New(errs.InvalidArgument, opNew, "negative OperationTimeout")
	case o.EnvelopeSize != 0 && o.EnvelopeSize < MinEnvelopeSize:
		return errs.Errorf(errs.InvalidArgument, opNew, "EnvelopeSize %d is below %d bytes", o.EnvelopeSize, MinEnvelopeSize)
	}
	if o.TLSServerName != "" {
		if err := validateHost("TLSServerName", o.TLSServerName); err != nil {
			return err
		}
	}
	if o.CACertPEM != nil {
		if _, err := parseCACerts(o.CACertPEM); err != nil {
			return err
		}
	}
	return nil
}

// validateHost accepts a DNS name (letters, digits, '-', '_' in labels of
// 1-63 bytes, an optional final dot) or an IP address (IPv6 with or
// without brackets, no zone), at most MaxHost bytes.
func validateHost(field, h string) error {
	bad := func(why string) error {
		return errs.Errorf(errs.InvalidArgument, opNew, "%s %s %s", field, quote(h), why)
	}
	switch {
	case h == "":
		return errs.Errorf(errs.InvalidArgument, opNew, "no %s", field)
	case len(h) > MaxHost:
		return bad("is longer than " + strconv.Itoa(MaxHost) + " bytes")
	}
	for _, r := range h {
		if r < 0x20 || r == 0x7f || unicode.IsControl(r) {
			return bad("contains a control character (NUL, a line break...)")
		}
		if r == ' ' {
			return bad("contains a space")
		}
	}
	inner := h
	if strings.HasPrefix(h, "[") || strings.HasSuffix(h, "]") {
		if !strings.HasPrefix(h, "[") || !strings.HasSuffix(h, "]") {
			return bad("has unbalanced brackets")
		}
		inner = h[1 : len(h)-1]
	}
	if a, err := netip.ParseAddr(inner); err == nil {
		if a.Zone() != "" {
			return bad("has an IPv6 zone, which is not supported")
		}
		if inner != h && !a.Is6() {
			return bad("puts an IPv4 address in brackets")
		}
		return nil
	}
	if inner != h {
		return bad("is not an IPv6 address in brackets")
	}
	if strings.Contains(h, ":") {
		return bad("is not a host name or IP address (give the port in Options.Port)")
	}
	name := strings.TrimSuffix(h, ".")
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return bad("has an empty label")
		case len(l) > 63:
			return bad("has a label longer than 63 bytes")
		case l[0] == '-' || l[len(l)-1] == '-':
			return bad("has a label that starts or ends with '-'")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return bad("contains " + strconv.QuoteRune(rune(c)) + ", which is not allowed in a host name")
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return bad("is neither a valid IP address nor a host name (its last label is numeric)")
	}
	return nil
}

// validateUser accepts "user", "DOMAIN\user" or "user@domain": at most
// MaxUserName bytes of UTF-8, no control characters, none of
// userNameForbidden, one separator at most and no empty part.
func validateUser(u string) error {
	bad := func(why string) error {
		return errs.Errorf(errs.InvalidArgument, opNew, "user name %s %s", quote(u), why)
	}
	switch {
	case u == "":
		return errs.New(errs.InvalidArgument, opNew, "credentials have no user name")
	case len(u) > MaxUserName:
		return bad("is longer than " + strconv.Itoa(MaxUserName) + " bytes")
	case !utf8.ValidString(u):
		return bad("is not valid UTF-8")
	}
	for _, r := range u {
		if unicode.IsControl(r) {
			return bad("contains a control character (NUL, a line break...)")
		}
		if strings.ContainsRune(userNameForbidden, r) {
			return bad("contains " + strconv.QuoteRune(r) + ", which Windows does not allow in account names")
		}
	}
	seps := strings.Count(u, `\`) + strings.Count(u, "@")
	switch {
	case seps > 1:
		return bad(`has more than one '\' or '@' (want user, DOMAIN\user or user@domain)`)
	case strings.HasPrefix(u, `\`) || strings.HasSuffix(u, `\`) || strings.HasPrefix(u, "@") || strings.HasSuffix(u, "@"):
		return bad("has an empty domain or user part")
	case strings.TrimSpace(u) != u:
		return bad("starts or ends with a space")
	}
	return nil
}

// parseCACerts parses CACertPEM: one or more CERTIFICATE blocks (text
// between blocks is ignored).
func parseCACerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for i := 1; ; i++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, errs.Errorf(errs.InvalidArgument, opNew, "CACertPEM block %d is a %s, not a CERTIFICATE", i, quote(b.Type))
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errs.Errorf(errs.InvalidArgument, opNew, "CACertPEM block %d is not a valid certificate: %v", i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errs.New(errs.InvalidArgument, opNew, "CACertPEM holds no PEM certificate")
	}
	return certs, nil
}
