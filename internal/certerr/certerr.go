// Package certerr recognises a server certificate that TLS verification
// refused, for the drivers that map such a failure to errs.PermissionDenied
// (vSphere, WinRM over HTTPS, PostgreSQL): retrying cannot make an untrusted
// certificate trusted.
package certerr

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// Refused reports whether err (or an error it wraps) is the refusal of a
// peer's certificate by the verification of this side: an unknown
// authority, a name the certificate does not hold, an expired or otherwise
// invalid certificate, or any failure tls reports as a verification error.
func Refused(err error) bool {
	if err == nil {
		return false
	}
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		ierr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &ierr)
}
