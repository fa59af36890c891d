package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/go-ldap/ldap/v3"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

// ldapAuth logs users in against a directory: a search for the user's
// entry (as the bind DN, or anonymously), a bind as that entry with the
// user's password, then the operator and viewer groups decide the role.
// Every connection is TLS (ldaps://, or ldap:// with StartTLS) with the
// certificate verified against ca_file or the system roots.
type ldapAuth struct {
	cfg     *LDAPConfig
	url     *url.URL
	tls     *tls.Config
	bindPW  guest.Secret
	log     *slog.Logger
	timeout time.Duration
}

func newLDAPAuth(cfg *LDAPConfig, log *slog.Logger) (*ldapAuth, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, errs.Wrap(errs.InvalidArgument, "ldap", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, "ldap", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errs.New(errs.InvalidArgument, "ldap", "ca_file holds no PEM certificate")
		}
	}
	a := &ldapAuth{cfg: cfg, url: u, tls: tc, log: log, timeout: 10 * time.Second}
	if cfg.BindDN != "" {
		if a.bindPW, err = readSecret(cfg.BindPasswordEnv, cfg.BindPasswordFile); err != nil {
			return nil, errs.Wrap(errs.InvalidArgument, "ldap", err)
		}
	}
	return a, nil
}

// validLogin refuses user names an LDAP filter or DN could read as syntax
// (the filter is escaped as well: this is the first of two walls).
func validLogin(user string) bool {
	if user == "" || len(user) > 128 {
		return false
	}
	for _, r := range user {
		if !unicode.IsPrint(r) || strings.ContainsRune(`*()\,=+<>;"#`, r) || r == 0 {
			return false
		}
	}
	return true
}

func (a *ldapAuth) dial(ctx context.Context) (*ldap.Conn, error) {
	d := &net.Dialer{Timeout: a.timeout}
	host := a.url.Host
	if a.url.Port() == "" {
		port := "389"
		if a.url.Scheme == "ldaps" {
			port = "636"
		}
		host = net.JoinHostPort(a.url.Hostname(), port)
	}
	var conn *ldap.Conn
	var err error
	if a.url.Scheme == "ldaps" {
		conn, err = ldap.DialURL("ldaps://"+host, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(a.tls))
	} else {
		conn, err = ldap.DialURL("ldap://"+host, ldap.DialWithDialer(d))
		if err == nil {
			if serr := conn.StartTLS(a.tls); serr != nil {
				conn.Close()
				return nil, ldapError(serr)
			}
		}
	}
	if err != nil {
		return nil, ldapError(err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetTimeout(time.Until(dl))
	} else {
		conn.SetTimeout(a.timeout)
	}
	return conn, nil
}

// ldapError gives a directory error its code, without the server's text
// for refused credentials.
func ldapError(err error) error {
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.LDAPResultInvalidCredentials:
			return errs.New(errs.Unauthenticated, "", "wrong user name or password")
		case ldap.ErrorNetwork:
			var ce *tls.CertificateVerificationError
			var ue x509.UnknownAuthorityError
			var he x509.HostnameError
			// go-ldap formats a failed StartTLS handshake with %v, so
			// the certificate error is only in the text there.
			if errors.As(err, &ce) || errors.As(err, &ue) || errors.As(err, &he) ||
				strings.Contains(err.Error(), "tls: failed to verify certificate") {
				return errs.Wrap(errs.PermissionDenied, "ldap", err)
			}
			return errs.Wrap(errs.Unavailable, "ldap", err)
		}
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return errs.Wrap(errs.PermissionDenied, "ldap", err)
	}
	return errs.Wrap(errs.Unavailable, "ldap", err)
}

func (a *ldapAuth) Authenticate(ctx context.Context, user, password string) (Role, error) {
	if !validLogin(user) || password == "" {
		// An empty password would be an unauthenticated bind that
		// succeeds: never send one.
		return "", errs.New(errs.Unauthenticated, "", "wrong user name or password")
	}
	conn, err := a.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if a.cfg.BindDN != "" {
		if err := conn.Bind(a.cfg.BindDN, a.bindPW.Reveal()); err != nil {
			a.log.Warn("ldap: the portal's bind DN was refused", "bind_dn", a.cfg.BindDN)
			return "", errs.New(errs.Unavailable, "ldap", "the directory refused the portal's own bind DN")
		}
	}
	filter := fmt.Sprintf("(%s=%s)", a.cfg.UserAttribute, ldap.EscapeFilter(user))
	res, err := conn.Search(ldap.NewSearchRequest(a.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 10, false,
		filter, []string{"dn", "memberOf"}, nil))
	if err != nil {
		return "", ldapError(err)
	}
	if len(res.Entries) != 1 {
		return "", errs.New(errs.Unauthenticated, "", "wrong user name or password")
	}
	entry := res.Entries[0]
	if err := conn.Bind(entry.DN, password); err != nil {
		return "", ldapError(err)
	}
	// Read the groups as the portal again (the user may not read them).
	if a.cfg.BindDN != "" {
		if err := conn.Bind(a.cfg.BindDN, a.bindPW.Reveal()); err != nil {
			return "", errs.New(errs.Unavailable, "ldap", "the directory refused the portal's own bind DN")
		}
	}
	in := func(group string) (bool, error) {
		if group == "" {
			return false, nil
		}
		for _, g := range entry.GetAttributeValues("memberOf") {
			if strings.EqualFold(g, group) {
				return true, nil
			}
		}
		f := fmt.Sprintf("(|(member=%s)(uniqueMember=%s)(memberUid=%s))", ldap.EscapeFilter(entry.DN), ldap.EscapeFilter(entry.DN), ldap.EscapeFilter(user))
		r, err := conn.Search(ldap.NewSearchRequest(group, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false, f, []string{"dn"}, nil))
		if err != nil {
			var le *ldap.Error
			if errors.As(err, &le) && le.ResultCode == ldap.LDAPResultNoSuchObject {
				return false, nil
			}
			return false, ldapError(err)
		}
		return len(r.Entries) == 1, nil
	}
	for _, g := range []struct {
		dn   string
		role Role
	}{{a.cfg.OperatorGroup, Operator}, {a.cfg.ViewerGroup, Viewer}} {
		ok, err := in(g.dn)
		if err != nil {
			return "", err
		}
		if ok {
			return g.role, nil
		}
	}
	return "", errNoGroup
}

// errNoGroup is the refusal of a user the directory knows but who is in
// neither portal group.
var errNoGroup = errs.New(errs.PermissionDenied, "", "you are in none of the portal's groups")
