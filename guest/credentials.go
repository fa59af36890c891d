package guest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
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
	return fmt.Sprintf("credentials{user=%s auth=%s}", limit.Quote(c.Username), kinds[1:])
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

// The credential limits every transport enforces (Credentials.Validate);
// a transport may refuse more (SSH: white space in a user name; WinRM:
// the characters Windows forbids in account names).
const (
	// MaxUsername is the longest user name, in bytes.
	MaxUsername = 256
	// MaxPassword is the longest password or passphrase, in bytes
	// (Windows passwords hold at most 256 characters).
	MaxPassword = 1024
	// MaxPrivateKey is the largest private key, in bytes (a 16384-bit RSA
	// key is about 12 KiB).
	MaxPrivateKey = 64 << 10
)

// Validate reports an InvalidArgument error when the credentials break
// the limits every transport shares: a user name of 1 to MaxUsername bytes
// of valid UTF-8 without control characters and without leading or
// trailing white space; a password or a private key (or both); a password
// and passphrase of at most MaxPassword bytes of valid UTF-8 without NUL,
// CR or LF (sudo reads a password as one line); a private key of at most
// MaxPrivateKey bytes. Messages quote the user name with limit.Quote and
// never show a secret.
func (c Credentials) Validate() error {
	const op = "guest.Credentials"
	u := c.Username
	if why := limit.Why(u, 1, MaxUsername, true); why != "" {
		if u == "" {
			return errs.New(errs.InvalidArgument, op, "credentials have no user name")
		}
		return errs.Errorf(errs.InvalidArgument, op, "the user name %s %s", limit.Quote(u), why)
	}
	if strings.TrimSpace(u) != u {
		return errs.Errorf(errs.InvalidArgument, op, "the user name %s starts or ends with white space", limit.Quote(u))
	}
	if c.Password.IsZero() && c.PrivateKey.IsZero() {
		return errs.New(errs.InvalidArgument, op, "credentials have neither a password nor a private key")
	}
	for _, s := range []struct{ name, v string }{{"password", c.Password.Reveal()}, {"passphrase", c.Passphrase.Reveal()}} {
		switch {
		case len(s.v) > MaxPassword:
			return errs.Errorf(errs.InvalidArgument, op, "the %s is %d bytes, more than the %d allowed", s.name, len(s.v), MaxPassword)
		case !utf8.ValidString(s.v):
			return errs.Errorf(errs.InvalidArgument, op, "the %s is not valid UTF-8", s.name)
		case strings.ContainsAny(s.v, "\x00\r\n"):
			return errs.Errorf(errs.InvalidArgument, op, "the %s holds a NUL, CR or LF character", s.name)
		}
	}
	if n := len(c.PrivateKey.Reveal()); n > MaxPrivateKey {
		return errs.Errorf(errs.InvalidArgument, op, "the private key is %d bytes, more than the %d allowed", n, MaxPrivateKey)
	}
	return nil
}
