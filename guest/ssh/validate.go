package ssh

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
)

// Limits Dial checks before any network I/O; a Config or Options beyond
// them is errs.InvalidArgument.
const (
	// MaxHostLen is the longest host name (a DNS name's limit).
	MaxHostLen = 253
	// MaxUsernameLen is the longest user name, in bytes (the limit of
	// every transport, guest.MaxUsername).
	MaxUsernameLen = guest.MaxUsername
	// MaxPasswordLen is the longest password or passphrase, in bytes
	// (guest.MaxPassword).
	MaxPasswordLen = guest.MaxPassword
	// MaxPrivateKeyLen is the largest private key, in bytes
	// (guest.MaxPrivateKey).
	MaxPrivateKeyLen = guest.MaxPrivateKey
	// MaxMaxSessions is the largest Options.MaxSessions.
	MaxMaxSessions = 1024
)

// validate checks cfg and opts and returns the address to dial
// (host:port). Messages quote (and cut) offending values, never secrets.
func validate(op string, cfg Config, opts Options) (string, error) {
	addr, why := parseAddr(cfg.Addr)
	if why != "" {
		return "", errs.Errorf(errs.InvalidArgument, op, "Config.Addr %s %s", limit.Quote(cfg.Addr), why)
	}
	if cfg.HostKeys.IsZero() {
		return "", errs.New(errs.InvalidArgument, op, "no host key policy: use KnownHosts, PinnedKey, TrustOnFirstUse or (for throwaway guests only) InsecureAcceptAnyHostKey")
	}
	cred := cfg.Credentials
	if err := cred.Validate(); err != nil {
		return "", errs.WrapOp(op, err)
	}
	if strings.IndexFunc(cred.Username, unicode.IsSpace) >= 0 {
		return "", errs.Errorf(errs.InvalidArgument, op, "the user name %s holds a white space character", limit.Quote(cred.Username))
	}
	switch {
	case opts.DialTimeout < 0:
		return "", errs.Errorf(errs.InvalidArgument, op, "Options.DialTimeout is negative (%s)", opts.DialTimeout)
	case opts.KillGrace < 0:
		return "", errs.Errorf(errs.InvalidArgument, op, "Options.KillGrace is negative (%s)", opts.KillGrace)
	case opts.MaxSessions < 0 || opts.MaxSessions > MaxMaxSessions:
		return "", errs.Errorf(errs.InvalidArgument, op, "Options.MaxSessions is %d, not between 0 and %d", opts.MaxSessions, MaxMaxSessions)
	}
	return addr, nil
}

// parseAddr checks "host", "host:port", "[ipv6]" or "[ipv6]:port" (an
// IPv6 address may also stand alone, without brackets or port) and returns
// host:port, port 22 by default. The host is an IP address (IPv6 with an
// optional zone) or a DNS name; the port is decimal, 1 to 65535.
func parseAddr(addr string) (string, string) {
	if addr == "" {
		return "", "is empty"
	}
	if !utf8.ValidString(addr) {
		return "", "is not valid UTF-8"
	}
	host, port := addr, "22"
	bracketed := false
	switch {
	case strings.HasPrefix(addr, "["):
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return "", "has no closing ]"
		}
		host, bracketed = addr[1:end], true
		switch rest := addr[end+1:]; {
		case rest == "":
		case strings.HasPrefix(rest, ":"):
			port = rest[1:]
		default:
			return "", "has something other than :port after ]"
		}
	case strings.Count(addr, ":") == 1:
		i := strings.IndexByte(addr, ':')
		host, port = addr[:i], addr[i+1:]
	}
	if why := checkPort(port); why != "" {
		return "", why
	}
	if why := checkHost(host, bracketed); why != "" {
		return "", why
	}
	return net.JoinHostPort(host, port), ""
}

func checkPort(port string) string {
	if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return "has a port that is not a decimal number from 1 to 65535"
	}
	if n, _ := strconv.Atoi(port); n < 1 || n > 65535 {
		return "has a port that is not a decimal number from 1 to 65535"
	}
	return ""
}

func checkHost(host string, bracketed bool) string {
	if host == "" {
		return "has no host"
	}
	if strings.Contains(host, ":") || bracketed {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return "is not a valid IPv6 address"
		}
		if z := ip.Zone(); z != "" && strings.Trim(z, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return "has an IPv6 zone with characters other than letters, digits, '.', '_' and '-'"
		}
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	name := strings.TrimSuffix(host, ".")
	if len(name) > MaxHostLen {
		return "has a host name longer than " + strconv.Itoa(MaxHostLen) + " bytes"
	}
	numeric := true
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return "has a host name with an empty label or one longer than 63 bytes"
		}
		if strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return "has a host name with characters other than letters, digits, '-', '_' and '.'"
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "has a host name label that begins or ends with '-'"
		}
		if strings.Trim(label, "0123456789") != "" {
			numeric = false
		}
	}
	if numeric {
		return "is not a valid IPv4 address"
	}
	return ""
}
