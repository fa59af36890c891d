package guest_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

const (
	canaryPassword   = "canary-P4ssw0rd-7e1f"
	canaryKey        = "-----BEGIN OPENSSH PRIVATE KEY-----\ncanary-key-body-93ab\n-----END OPENSSH PRIVATE KEY-----"
	canaryPassphrase = "canary-passphrase-c0de"
)

var canaries = []string{canaryPassword, "canary-key-body-93ab", canaryPassphrase, "P4ssw0rd", "93ab", "c0de"}

func canaryCredentials() guest.Credentials {
	return guest.Credentials{
		Username:   `CORP\admin`,
		Password:   guest.NewSecret(canaryPassword),
		PrivateKey: guest.NewSecret(canaryKey),
		Passphrase: guest.NewSecret(canaryPassphrase),
	}
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, c := range canaries {
		if strings.Contains(s, c) {
			t.Errorf("%s shows a secret (%q): %s", what, c, s)
		}
	}
	// Hex and base64 forms too.
	for _, c := range canaries[:3] {
		if strings.Contains(strings.ToLower(s), fmt.Sprintf("%x", c)[:16]) {
			t.Errorf("%s shows a secret in hex: %s", what, s)
		}
	}
}

type holder struct {
	Name  string
	Creds guest.Credentials
	Ptr   *guest.Credentials
	Pass  guest.Secret
	creds guest.Credentials // unexported: fmt cannot call its methods
	pass  guest.Secret
	List  []guest.Credentials
	Map   map[string]guest.Secret
}

func TestCredentialsNeverPrintSecrets(t *testing.T) {
	c := canaryCredentials()
	h := holder{Name: "vm-1", Creds: c, Ptr: &c, Pass: c.Password, creds: c, pass: c.Password,
		List: []guest.Credentials{c}, Map: map[string]guest.Secret{"k": c.Password}}

	values := map[string]any{"Credentials": c, "*Credentials": &c, "Secret": c.Password, "holder": h, "*holder": &h}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%10.3v"} {
			assertNoSecret(t, name+" "+verb, fmt.Sprintf(verb, v))
		}
		assertNoSecret(t, name+" Sprint", fmt.Sprint(v))
		assertNoSecret(t, name+" Sprintln", fmt.Sprintln(v))
		assertNoSecret(t, name+" in an error", fmt.Errorf("login with %v failed: %w", v, errors.New("x")).Error())

		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json %s: %v", name, err)
		}
		assertNoSecret(t, name+" JSON", string(j))
		x, err := xml.Marshal(v)
		if err == nil {
			assertNoSecret(t, name+" XML", string(x))
		}

		for hname, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
			"JSON": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			"Text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		} {
			var buf bytes.Buffer
			log := slog.New(newHandler(&buf))
			log.Info("connect", "creds", v, slog.Any("any", v), slog.Group("g", "v", v))
			log.With("bound", v).Info("again")
			if !strings.Contains(buf.String(), "connect") {
				t.Fatalf("slog %s wrote nothing", hname)
			}
			assertNoSecret(t, name+" slog "+hname, buf.String())
		}
	}

	// What is shown instead.
	if got := c.String(); got != `credentials{user="CORP\\admin" auth=password+key}` {
		t.Errorf("String() = %s", got)
	}
	if got := fmt.Sprintf("%#v", c); got != `guest.credentials{user="CORP\\admin" auth=password+key}` {
		t.Errorf("%%#v = %s", got)
	}
	if got := fmt.Sprintf("%v|%s|%#v", c.Password, c.Password, c.Password); got != "[REDACTED]|[REDACTED]|guest.Secret{[REDACTED]}" {
		t.Errorf("secret prints %s", got)
	}
	j, _ := json.Marshal(c)
	if string(j) != `{"username":"CORP\\admin","password":"[REDACTED]","privateKey":"[REDACTED]"}` {
		t.Errorf("JSON %s", j)
	}
	if got := (guest.Credentials{Username: "u"}).String(); got != `credentials{user="u" auth=none}` {
		t.Errorf("no secrets: %s", got)
	}
}

func TestSecret(t *testing.T) {
	s := guest.NewSecret(canaryPassword)
	if s.Reveal() != canaryPassword || s.IsZero() {
		t.Fatal("Reveal lost the value")
	}
	var zero guest.Secret
	if !zero.IsZero() || zero.Reveal() != "" || zero.String() != "" || !guest.NewSecret("").IsZero() {
		t.Fatal("zero secret")
	}
	b, _ := s.MarshalText()
	if string(b) != "[REDACTED]" || s.GoString() != "guest.Secret{[REDACTED]}" {
		t.Fatalf("MarshalText %q GoString %q", b, s.GoString())
	}
	if s.LogValue().String() != "[REDACTED]" {
		t.Fatal(s.LogValue())
	}
	// Copies share nothing writable: a Secret is a value.
	p := guest.Password("u", "pw")
	q := p
	q.Password = guest.NewSecret("other")
	if p.Password.Reveal() != "pw" {
		t.Fatal("copies share the secret")
	}
}

func TestCredentialsValidate(t *testing.T) {
	cases := []struct {
		c    guest.Credentials
		want errs.Code
	}{
		{guest.Password("root", "pw"), errs.OK},
		{guest.Credentials{Username: "root", PrivateKey: guest.NewSecret(canaryKey)}, errs.OK},
		{guest.Password("", "pw"), errs.InvalidArgument},
		{guest.Password("root", ""), errs.InvalidArgument},
		{guest.Credentials{Username: "root", Passphrase: guest.NewSecret("x")}, errs.InvalidArgument},
	}
	for _, c := range cases {
		err := c.c.Validate()
		if errs.CodeOf(err) != c.want {
			t.Errorf("Validate(%v) = %v, want %v", c.c, err, c.want)
		}
		if err != nil {
			assertNoSecret(t, "Validate error", err.Error())
		}
	}
}
