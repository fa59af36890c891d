package guest

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

const redacted = "[REDACTED]"

// Secret holds a password, private key or token. Every way of printing it
// (String, Format with any verb, GoString, JSON, text marshaling, slog)
// gives "[REDACTED]"; only Reveal returns the value.
type Secret struct {
	v *string
}

// NewSecret wraps s.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Reveal returns the secret value. Call it only to hand the value to the
// transport that needs it.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == nil }

// String returns "[REDACTED]" (or "" for an empty secret).
func (s Secret) String() string {
	if s.v == nil {
		return ""
	}
	return redacted
}

// GoString returns a redacted Go syntax form.
func (s Secret) GoString() string { return "guest.Secret{" + redacted + "}" }

// Format makes every fmt verb print the redacted form (%#v the GoString
// form).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalJSON encodes the redacted form: a secret never reaches JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the redacted form.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue makes slog print the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Credentials are an OS account's credentials in a guest: a user name and a
// password, a private key (with an optional passphrase), or both.
//
// Printing Credentials in any way shows the user name and which secrets are
// present, never their values.
type Credentials struct {
	// Username may be "user", "DOMAIN\user" or "user@domain".
	Username string
	// Password is the account's password (also used for sudo).
	Password Secret
	// PrivateKey is a PEM-encoded private key (SSH).
	PrivateKey Secret
	// Passphrase decrypts PrivateKey.
	Passphrase Secret
}

// Password returns password credentials.
func Password(user, password string) Credentials {
	return Credentials{Username: user, Password: NewSecret(password)}
}

// String describes the credentials without their secrets.
func (c Credentials) String() string {
	kinds := ""
	if !c.Password.IsZero() {
		kinds += "+password"
	}
	if !c.PrivateKey.IsZero() {
		kinds += "+key"
	}
	if kinds == "" {
		kinds = "+none"
	}
	return fmt.Sprintf("credentials{user=%q auth=%s}", c.Username, kinds[1:])
}

// GoString describes the credentials without their secrets.
func (c Credentials) GoString() string { return "guest." + c.String() }

// Format makes every fmt verb print the String form (%#v the GoString
// form).
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(c.GoString()))
		return
	}
	_, _ = f.Write([]byte(c.String()))
}

// MarshalJSON encodes the user name and redacted secrets.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Username   string `json:"username"`
		Password   Secret `json:"password,omitempty"`
		PrivateKey Secret `json:"privateKey,omitempty"`
	}{c.Username, c.Password, c.PrivateKey})
}

// LogValue makes slog print the String form.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Validate reports an InvalidArgument error when there is no user name or
// no secret at all.
func (c Credentials) Validate() error {
	switch {
	case c.Username == "":
		return errInvalid("credentials have no user name")
	case c.Password.IsZero() && c.PrivateKey.IsZero():
		return errInvalid("credentials have neither a password nor a private key")
	}
	return nil
}
