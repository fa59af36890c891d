package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/managedvm/managedvm/errs"
	"github.com/skeema/knownhosts"
	xssh "golang.org/x/crypto/ssh"
)

// MaxKnownHosts is the largest known_hosts data KnownHosts and
// TrustOnFirstUse accept (16 MiB).
const MaxKnownHosts = 16 << 20

// HostKeyPolicy decides which host keys are trusted. Build one with
// KnownHosts, PinnedKey, TrustOnFirstUse or InsecureAcceptAnyHostKey; the zero
// value trusts nothing (Dial refuses it with InvalidArgument).
type HostKeyPolicy struct {
	name     string
	callback func(host string, remote net.Addr, key xssh.PublicKey) error
	// algos returns the host key algorithms to offer for addr, most
	// preferred first (nil: x/crypto's defaults).
	algos func(addr string) []string
}

// String names the policy ("known_hosts", "pinned", "trust-on-first-use",
// "INSECURE-ignore-host-key").
func (p HostKeyPolicy) String() string {
	if p.name == "" {
		return "none"
	}
	return p.name
}

// IsZero reports whether no policy was chosen.
func (p HostKeyPolicy) IsZero() bool { return p.callback == nil }

// HostKeyError reports a host key that is not trusted: unknown to the
// policy, different from the ones it knows (a possible
// man-in-the-middle), revoked, or a host certificate that does not hold.
// Its code is errs.PermissionDenied.
type HostKeyError struct {
	// Host is the address the client dialed.
	Host string
	// Fingerprint is the SHA256 fingerprint of the key the server showed
	// (for a certificate, of the certificate's key).
	Fingerprint string
	// Known are the fingerprints the policy knows for Host: its keys and
	// the keys of the certificate authorities trusted for it (empty: the
	// host is unknown).
	Known []string
	// Revoked is set when the key (or the certificate's key, or the
	// authority that signed it) is marked @revoked.
	Revoked bool
	// Certificate, if set, says why the server's host certificate,
	// signed by an authority trusted for Host, was refused (expired,
	// not for this host name, ...).
	Certificate string
}

func (e *HostKeyError) Error() string {
	switch {
	case e.Revoked:
		return fmt.Sprintf("ssh: host key %s of %s is revoked", e.Fingerprint, e.Host)
	case e.Certificate != "":
		return fmt.Sprintf("ssh: the host certificate of %s (key %s) is refused: %s", e.Host, e.Fingerprint, e.Certificate)
	case len(e.Known) == 0:
		return fmt.Sprintf("ssh: host %s is unknown (its key is %s): add it to the known hosts or pin its key", e.Host, e.Fingerprint)
	}
	return fmt.Sprintf("ssh: HOST KEY MISMATCH for %s: the server shows %s but the known key is %s (possible man-in-the-middle)", e.Host, e.Fingerprint, strings.Join(e.Known, ", "))
}

// ErrorCode makes errs.CodeOf give PermissionDenied.
func (e *HostKeyError) ErrorCode() errs.Code { return errs.PermissionDenied }

// Is makes errors.Is(err, errs.PermissionDenied) true.
func (e *HostKeyError) Is(target error) bool { return target == errs.PermissionDenied }

// KnownHosts trusts the keys in known_hosts data, read as OpenSSH reads
// it: plain and hashed host names, patterns (with * and ?, negation with
// !), "[host]:port" entries, @cert-authority lines (the server's host
// certificate must be signed by a listed authority, name the dialed host
// as a principal and be valid now) and @revoked lines (a revoked key, or a
// certificate whose key or authority is revoked, is refused). For a port
// other than 22 the entries for "[host]:port" count; when there are none,
// an entry for the host without a port also vouches for a key it lists,
// as OpenSSH does. The server is asked for the key types the entries hold
// (certificates first when an authority is listed), so a server that also
// has other host keys shows one that can be checked. A host that is not
// listed, or listed with other keys, is refused with a *HostKeyError
// (errs.PermissionDenied). Malformed data, or more than MaxKnownHosts
// bytes, is errs.InvalidArgument.
func KnownHosts(data []byte) (HostKeyPolicy, error) {
	db, err := parseKnownHosts("ssh.KnownHosts", data)
	if err != nil {
		return HostKeyPolicy{}, err
	}
	return HostKeyPolicy{name: "known_hosts", callback: func(host string, _ net.Addr, key xssh.PublicKey) error {
		return db.check(host, key)
	}, algos: db.algorithms}, nil
}

// knownHostsDB is parsed known_hosts data: skeema/knownhosts matches
// host names (hashed, patterns, ports) and tells @cert-authority lines
// apart; the @revoked keys are kept beside it.
type knownHostsDB struct {
	db *knownhosts.HostKeyDB
	// exact looks up the host and port as given (db also lets a
	// wildcard entry without a port match other ports).
	exact   knownhosts.HostKeyCallback
	revoked map[string]bool // Marshal() of each @revoked key
}

func parseKnownHosts(op string, data []byte) (*knownHostsDB, error) {
	if len(data) > MaxKnownHosts {
		return nil, errs.Errorf(errs.InvalidArgument, op, "known_hosts data is %d bytes, more than the %d allowed", len(data), MaxKnownHosts)
	}
	k := &knownHostsDB{revoked: map[string]bool{}}
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		marker, _, key, _, _, err := xssh.ParseKnownHosts(line)
		if err != nil {
			return nil, errs.Errorf(errs.InvalidArgument, op, "known_hosts line %d is malformed: %s", i+1, quoteTrunc(string(line)))
		}
		switch marker {
		case "":
		case "revoked":
			k.revoked[string(key.Marshal())] = true
		case "cert-authority":
		default:
			return nil, errs.Errorf(errs.InvalidArgument, op, "known_hosts line %d has an unknown marker @%s", i+1, quoteTrunc(marker))
		}
	}
	// skeema/knownhosts reads files only: hand it the data through a
	// private temporary file (known_hosts data is public).
	dir, err := os.MkdirTemp("", "managedvm-known-hosts-")
	if err != nil {
		return nil, errs.Wrap(errs.Internal, op, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, errs.Wrap(errs.Internal, op, err)
	}
	malformed := func(err error) error {
		return errs.Errorf(errs.InvalidArgument, op, "malformed known_hosts data: %v", strings.ReplaceAll(err.Error(), path, "known_hosts"))
	}
	if k.db, err = knownhosts.NewDB(path); err != nil {
		return nil, malformed(err)
	}
	if k.exact, err = knownhosts.New(path); err != nil {
		return nil, malformed(err)
	}
	return k, nil
}

// entries returns the entries that speak for addr (host:port): those for
// "[host]:port" or, when there are none and the port is not 22, those for
// the host alone (portless is then true). OpenSSH looks the same way.
func (k *knownHostsDB) entries(addr string) (keys []knownhosts.PublicKey, portless bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "22" || len(k.exact.HostKeys(addr)) > 0 {
		return k.db.HostKeys(addr), false
	}
	return k.db.HostKeys(net.JoinHostPort(host, "22")), true
}

// algorithms returns the host key algorithms to ask addr for: certificate
// algorithms first when an authority is listed for it, then the algorithms
// of the keys listed for it (but not of revoked ones, as OpenSSH), then
// every other plain algorithm (so a server
// without those keys shows one that is then refused as a mismatch rather
// than failing the handshake).
func (k *knownHostsDB) algorithms(addr string) []string {
	keys, _ := k.entries(addr)
	var algos []string
	for _, key := range keys {
		if key.Cert {
			algos = appendNew(algos, certAlgos()...)
		}
	}
	for _, key := range keys {
		if !key.Cert && !k.revoked[string(key.Marshal())] {
			algos = appendNew(algos, algosForKeyType(key.Type())...)
		}
	}
	return appendNew(algos, plainAlgos()...)
}

// check verifies the key addr showed.
func (k *knownHostsDB) check(addr string, key xssh.PublicKey) error {
	if k.isRevoked(key) {
		return &HostKeyError{Host: addr, Fingerprint: fingerprint(key), Revoked: true}
	}
	keys, portless := k.entries(addr)
	var known []string
	for _, e := range keys {
		known = append(known, xssh.FingerprintSHA256(e.PublicKey))
	}
	if cert, ok := key.(*xssh.Certificate); ok {
		for _, e := range keys {
			if e.Cert && keyEqual(e.PublicKey, cert.SignatureKey) {
				return checkHostCert(addr, cert, known)
			}
		}
		// No listed authority signed it: judge the certificate's key
		// alone, as OpenSSH does.
		key = cert.Key
	}
	for _, e := range keys {
		if !e.Cert && keyEqual(e.PublicKey, key) {
			return nil
		}
	}
	if portless {
		// Entries without a port vouch only for the keys they list: a
		// different key there leaves the host unknown (as for OpenSSH).
		known = nil
	}
	return &HostKeyError{Host: addr, Fingerprint: fingerprint(key), Known: known}
}

// isRevoked reports whether key, or for a certificate its key or its
// signing authority, is marked @revoked.
func (k *knownHostsDB) isRevoked(key xssh.PublicKey) bool {
	if k.revoked[string(key.Marshal())] {
		return true
	}
	if cert, ok := key.(*xssh.Certificate); ok {
		return k.revoked[string(cert.Key.Marshal())] || k.revoked[string(cert.SignatureKey.Marshal())]
	}
	return false
}

// checkHostCert checks a host certificate signed by a trusted authority:
// a host certificate, naming the dialed host as a principal (or any host
// when it names none, as OpenSSH allows), valid now.
func checkHostCert(addr string, cert *xssh.Certificate, known []string) error {
	fail := func(why string) error {
		return &HostKeyError{Host: addr, Fingerprint: fingerprint(cert), Known: known, Certificate: why}
	}
	if cert.CertType != xssh.HostCert {
		return fail("it is not a host certificate")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fail("the address has no port")
	}
	var cc xssh.CertChecker
	if err := cc.CheckCert(host, cert); err != nil {
		return fail(strings.TrimPrefix(err.Error(), "ssh: "))
	}
	return nil
}

// fingerprint is the SHA256 fingerprint of key, or of a certificate's key.
func fingerprint(key xssh.PublicKey) string {
	if cert, ok := key.(*xssh.Certificate); ok {
		key = cert.Key
	}
	return xssh.FingerprintSHA256(key)
}

func keyEqual(a, b xssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// preferredPlain orders plain host key algorithms as OpenSSH does.
var preferredPlain = []string{
	xssh.KeyAlgoED25519, xssh.KeyAlgoECDSA256, xssh.KeyAlgoECDSA384, xssh.KeyAlgoECDSA521,
	xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256,
}

// plainAlgos returns x/crypto's supported plain (not certificate) host
// key algorithms, in OpenSSH's order of preference.
func plainAlgos() []string {
	return orderAlgos(func(a string) bool { return !strings.Contains(a, "-cert-") })
}

// certAlgos returns x/crypto's supported host certificate algorithms, in
// OpenSSH's order of preference.
func certAlgos() []string {
	return orderAlgos(func(a string) bool { return strings.Contains(a, "-cert-") })
}

func orderAlgos(keep func(string) bool) []string {
	supported := slices.DeleteFunc(xssh.SupportedAlgorithms().HostKeys, func(a string) bool { return !keep(a) })
	rank := func(a string) int {
		for i, p := range preferredPlain {
			if a == p || a == certAlgoOf(p) {
				return i
			}
		}
		return len(preferredPlain)
	}
	slices.SortStableFunc(supported, func(a, b string) int { return rank(a) - rank(b) })
	return supported
}

// certAlgoOf names the certificate algorithm of a plain one.
func certAlgoOf(algo string) string {
	switch algo {
	case xssh.KeyAlgoED25519:
		return xssh.CertAlgoED25519v01
	case xssh.KeyAlgoECDSA256:
		return xssh.CertAlgoECDSA256v01
	case xssh.KeyAlgoECDSA384:
		return xssh.CertAlgoECDSA384v01
	case xssh.KeyAlgoECDSA521:
		return xssh.CertAlgoECDSA521v01
	case xssh.KeyAlgoRSASHA512:
		return xssh.CertAlgoRSASHA512v01
	case xssh.KeyAlgoRSASHA256:
		return xssh.CertAlgoRSASHA256v01
	}
	return ""
}

// algosForKeyType returns the signature algorithms a key type verifies.
func algosForKeyType(keyType string) []string {
	if keyType == xssh.KeyAlgoRSA {
		return []string{xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

func appendNew(algos []string, add ...string) []string {
	for _, a := range add {
		if !slices.Contains(algos, a) {
			algos = append(algos, a)
		}
	}
	return algos
}

// PinnedKey trusts exactly one host key, given in authorized_keys format
// ("ssh-ed25519 AAAA...") or as the SHA256 fingerprint ("SHA256:...").
// The server is asked for that key's type first (and never for a host
// certificate).
func PinnedKey(key string) (HostKeyPolicy, error) {
	key = strings.TrimSpace(key)
	var want string
	algos := plainAlgos()
	if strings.HasPrefix(key, "SHA256:") {
		want = key
	} else {
		pk, _, _, _, err := xssh.ParseAuthorizedKey([]byte(key))
		if err != nil {
			return HostKeyPolicy{}, errs.Errorf(errs.InvalidArgument, "ssh.PinnedKey", "the pinned key %s is neither an authorized_keys line nor a SHA256 fingerprint", quoteTrunc(key))
		}
		want = xssh.FingerprintSHA256(pk)
		algos = appendNew(algosForKeyType(pk.Type()), algos...)
	}
	return HostKeyPolicy{name: "pinned", callback: func(host string, _ net.Addr, got xssh.PublicKey) error {
		if fp := xssh.FingerprintSHA256(got); fp != want {
			return &HostKeyError{Host: host, Fingerprint: fp, Known: []string{want}}
		}
		return nil
	}, algos: func(string) []string { return algos }}, nil
}

// TrustOnFirstUse verifies hosts listed in known (known_hosts data, may be
// empty) like KnownHosts; a host that is not listed at all is accepted once
// learn has accepted its key: learn receives the host and a known_hosts line
// for it ("[host]:port type key", or "host type key" for port 22), for the
// caller to persist. An error from learn refuses the host. A listed host
// that shows another key, or a revoked key, is always refused: trust on
// first use never replaces a key.
func TrustOnFirstUse(known []byte, learn func(host string, knownHostsLine string) error) (HostKeyPolicy, error) {
	if learn == nil {
		return HostKeyPolicy{}, errs.New(errs.InvalidArgument, "ssh.TrustOnFirstUse", "learn is nil")
	}
	db, err := parseKnownHosts("ssh.TrustOnFirstUse", known)
	if err != nil {
		return HostKeyPolicy{}, err
	}
	return HostKeyPolicy{name: "trust-on-first-use", callback: func(host string, _ net.Addr, key xssh.PublicKey) error {
		err := db.check(host, key)
		var he *HostKeyError
		if errors.As(err, &he) && len(he.Known) == 0 && !he.Revoked && he.Certificate == "" {
			if cert, ok := key.(*xssh.Certificate); ok {
				key = cert.Key
			}
			line := knownhosts.Line([]string{host}, key)
			if lerr := learn(host, line); lerr != nil {
				return errs.Wrap(errs.PermissionDenied, "ssh.TrustOnFirstUse", lerr)
			}
			return nil
		}
		return err
	}, algos: db.algorithms}, nil
}

// InsecureAcceptAnyHostKey accepts any host key. It makes the connection
// open to a man-in-the-middle: use it only for throwaway test guests.
func InsecureAcceptAnyHostKey() HostKeyPolicy {
	return HostKeyPolicy{name: "INSECURE-ignore-host-key", callback: func(string, net.Addr, xssh.PublicKey) error { return nil }}
}

// KnownHostsLine returns the known_hosts line for addr and an
// authorized_keys-format key, for callers that persist keys.
func KnownHostsLine(addr string, key []byte) (string, error) {
	pk, _, _, _, err := xssh.ParseAuthorizedKey(bytes.TrimSpace(key))
	if err != nil {
		return "", errs.New(errs.InvalidArgument, "ssh.KnownHostsLine", "not an authorized_keys line")
	}
	return knownhosts.Line([]string{addr}, pk), nil
}

// maxQuoted is how many bytes of an offending value a message quotes.
const maxQuoted = 64

// quoteTrunc quotes s for an error message (control characters escaped),
// cut to maxQuoted bytes on a character boundary.
func quoteTrunc(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..." + " (" + strconv.Itoa(len(s)) + " bytes)"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
