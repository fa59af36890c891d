package webhook_test

import (
	"crypto/x509"
	"errors"
)

type x509CertPool = x509.CertPool

func errorsIs(err, target error) bool { return errors.Is(err, target) }
