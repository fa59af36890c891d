package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/managedvm/managedvm/errs"
	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyPolicy decides which host keys are trusted. Build one with
// KnownHosts, PinnedKey, TrustOnFirstUse or InsecureAcceptAnyHostKey; the zero
// value trusts nothing (Dial refuses it with InvalidArgument).
type HostKeyPolicy struct {
	name     string
	callback func(host string, remote net.Addr, key xssh.PublicKey) error
	algos    func(addr string) []string
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
// policy, or different from the one it knows (a possible
// man-in-the-middle). Its code is errs.PermissionDenied.
type HostKeyError struct {
	// Host is the address the client dialed.
	Host string
	// Fingerprint is the SHA256 fingerprint of the key the server showed.
	Fingerprint string
	// Known are the fingerprints the policy knows for Host (empty: the
	// host is unknown).
	Known []string
	// Revoked is set when the key is marked @revoked.
	Revoked bool
}

func (e *HostKeyError) Error() string {
	switch {
	case e.Revoked:
		return fmt.Sprintf("ssh: host key %s of %s is revoked", e.Fingerprint, e.Host)
	case len(e.Known) == 0:
		return fmt.Sprintf("ssh: host %s is unknown (its key is %s): add it to the known hosts or pin its key", e.Host, e.Fingerprint)
	}
	return fmt.Sprintf("ssh: HOST KEY MISMATCH for %s: the server shows %s but the known key is %s (possible man-in-the-middle)", e.Host, e.Fingerprint, strings.Join(e.Known, ", "))
}

// ErrorCode makes errs.CodeOf give PermissionDenied.
func (e *HostKeyError) ErrorCode() errs.Code { return errs.PermissionDenied }

// Is makes errors.Is(err, errs.PermissionDenied) true.
func (e *HostKeyError) Is(target error) bool { return target == errs.PermissionDenied }

// KnownHosts trusts the keys in known_hosts data (OpenSSH's format, hashed
// host names and @revoked markers included). A host that is not listed, or
// listed with another key, is refused with a *HostKeyError.
func KnownHosts(data []byte) (HostKeyPolicy, error) {
	cb, err := knownHostsCallback(data)
	if err != nil {
		return HostKeyPolicy{}, err
	}
	return HostKeyPolicy{name: "known_hosts", callback: func(host string, remote net.Addr, key xssh.PublicKey) error {
		return mapKnownHostsErr(host, key, cb(host, remote, key))
	}, algos: algosFor(data)}, nil
}

func knownHostsCallback(data []byte) (xssh.HostKeyCallback, error) {
	// knownhosts reads files only: hand it the data through a private
	// temporary file (known_hosts data is public).
	dir, err := os.MkdirTemp("", "managedvm-known-hosts-")
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "ssh.KnownHosts", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, errs.Wrap(errs.Internal, "ssh.KnownHosts", err)
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		return nil, errs.Errorf(errs.InvalidArgument, "ssh.KnownHosts", "malformed known_hosts data: %v", strings.ReplaceAll(err.Error(), path, "known_hosts"))
	}
	return cb, nil
}

// algosFor returns, for an address, the host key algorithms the data lists
// for it, so the server is asked for a key we can verify.
func algosFor(data []byte) func(addr string) []string {
	return func(addr string) []string {
		var algos []string
		rest := data
		norm := knownhosts.Normalize(addr)
		for len(rest) > 0 {
			marker, hosts, key, _, next, err := xssh.ParseKnownHosts(rest)
			if err != nil {
				break
			}
			rest = next
			if marker != "" {
				continue
			}
			for _, h := range hosts {
				if h == norm || h == addr {
					algos = appendAlgos(algos, key.Type())
				}
			}
		}
		return algos
	}
}

func appendAlgos(algos []string, keyType string) []string {
	switch keyType {
	case xssh.KeyAlgoRSA:
		return append(algos, xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSA)
	default:
		return append(algos, keyType)
	}
}

func mapKnownHostsErr(host string, key xssh.PublicKey, err error) error {
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		he := &HostKeyError{Host: host, Fingerprint: xssh.FingerprintSHA256(key)}
		for _, k := range ke.Want {
			he.Known = append(he.Known, xssh.FingerprintSHA256(k.Key))
		}
		return he
	}
	var re *knownhosts.RevokedError
	if errors.As(err, &re) {
		return &HostKeyError{Host: host, Fingerprint: xssh.FingerprintSHA256(key), Revoked: true}
	}
	return errs.Wrap(errs.PermissionDenied, "ssh.HostKey", err)
}

// PinnedKey trusts exactly one host key, given in authorized_keys format
// ("ssh-ed25519 AAAA...") or as the SHA256 fingerprint ("SHA256:...").
func PinnedKey(key string) (HostKeyPolicy, error) {
	key = strings.TrimSpace(key)
	var want string
	var algos []string
	if strings.HasPrefix(key, "SHA256:") {
		want = key
	} else {
		pk, _, _, _, err := xssh.ParseAuthorizedKey([]byte(key))
		if err != nil {
			return HostKeyPolicy{}, errs.New(errs.InvalidArgument, "ssh.PinnedKey", "the pinned key is neither an authorized_keys line nor a SHA256 fingerprint")
		}
		want = xssh.FingerprintSHA256(pk)
		algos = appendAlgos(nil, pk.Type())
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
// for it, for the caller to persist. An error from learn refuses the host.
// A listed host that shows another key is always refused: trust on first
// use never replaces a key.
func TrustOnFirstUse(known []byte, learn func(host string, knownHostsLine string) error) (HostKeyPolicy, error) {
	if learn == nil {
		return HostKeyPolicy{}, errs.New(errs.InvalidArgument, "ssh.TrustOnFirstUse", "learn is nil")
	}
	cb, err := knownHostsCallback(known)
	if err != nil {
		return HostKeyPolicy{}, err
	}
	return HostKeyPolicy{name: "trust-on-first-use", callback: func(host string, remote net.Addr, key xssh.PublicKey) error {
		err := mapKnownHostsErr(host, key, cb(host, remote, key))
		var he *HostKeyError
		if errors.As(err, &he) && len(he.Known) == 0 && !he.Revoked {
			line := knownhosts.Line([]string{knownhosts.Normalize(host)}, key)
			if lerr := learn(host, line); lerr != nil {
				return errs.Wrap(errs.PermissionDenied, "ssh.TrustOnFirstUse", lerr)
			}
			return nil
		}
		return err
	}, algos: algosFor(known)}, nil
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
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, pk), nil
}
