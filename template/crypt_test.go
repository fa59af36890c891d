package template_test

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/template"
)

// The SHA-512 test vectors of Ulrich Drepper's "Unix crypt using SHA-256
// and SHA-512".
var drepperVectors = []struct{ setting, password, want string }{
	{"$6$saltstring", "Hello world!",
		"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"$6$rounds=10000$saltstringsaltstring", "Hello world!",
		"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"$6$rounds=5000$toolongsaltstring", "This is just a test",
		"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	{"$6$rounds=1400$anotherlongsaltstring", "a very much longer text to encrypt.  This one even stretches over morethan one line.",
		"$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
	{"$6$rounds=77777$short", "we have a short salt string but not a short password",
		"$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
	{"$6$rounds=123456$asaltof16chars..", "a short string",
		"$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
	{"$6$rounds=10$roundstoolow", "the minimum number is still observed",
		"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
}

func TestCryptSHA512Vectors(t *testing.T) {
	for _, v := range drepperVectors {
		got, err := template.CryptSHA512(v.password, v.setting)
		if err != nil {
			t.Fatalf("CryptSHA512(%q): %v", v.setting, err)
		}
		if got != v.want {
			t.Errorf("CryptSHA512(%q, %q)\n got %s\nwant %s", v.password, v.setting, got, v.want)
		}
		// The hash itself is a valid setting and reproduces itself.
		if again, _ := template.CryptSHA512(v.password, got); again != got {
			t.Errorf("hash as setting gives %s", again)
		}
		if !template.CheckPassword(guest.NewSecret(v.password), v.want) {
			t.Errorf("CheckPassword rejects the right password for %s", v.setting)
		}
		if template.CheckPassword(guest.NewSecret(v.password+"x"), v.want) {
			t.Errorf("CheckPassword accepts a wrong password for %s", v.setting)
		}
	}
}

func TestCryptSHA512BadSettings(t *testing.T) {
	for _, s := range []string{"", "$5$salt", "$6$rounds=$salt", "$6$rounds=abc$salt", "$6$rounds=100", "$6$rounds=+5000$salt", "$6$sa:lt", "saltstring"} {
		if _, err := template.CryptSHA512("pw", s); errs.CodeOf(err) != errs.InvalidArgument {
			t.Errorf("CryptSHA512(%q) = %v, want InvalidArgument", s, err)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := template.HashPassword(guest.NewSecret("pw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 4 || parts[1] != "6" || len(parts[2]) != 16 || len(parts[3]) != 86 {
		t.Fatalf("hash %q is not $6$<16-char salt>$<86-char digest>", h)
	}
	if !template.CheckPassword(guest.NewSecret("pw"), h) || template.CheckPassword(guest.NewSecret("pW"), h) {
		t.Fatal("CheckPassword does not tell the password from another")
	}
	h2, _ := template.HashPassword(guest.NewSecret("pw"), nil)
	if h2 == h {
		t.Fatal("two hashes share a salt: salts are not random")
	}

	// Deterministic with a given source, and the rounds option shows.
	opts := &template.Options{Rand: rand.NewChaCha8([32]byte{9}), Rounds: 1000}
	a, err := template.HashPassword(guest.NewSecret("pw"), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := template.HashPassword(guest.NewSecret("pw"), &template.Options{Rand: rand.NewChaCha8([32]byte{9}), Rounds: 1000})
	if a != b || !strings.HasPrefix(a, "$6$rounds=1000$") {
		t.Fatalf("deterministic hashes %q and %q", a, b)
	}

	for _, bad := range []*template.Options{{Rounds: 999}, {Rounds: 1_000_000_000}, {Rand: bytes.NewReader(nil)}} {
		_, err := template.HashPassword(guest.NewSecret("pw"), bad)
		if errs.CodeOf(err) == errs.OK {
			t.Errorf("HashPassword with %+v succeeded", bad)
		}
	}
	if _, err := template.HashPassword(guest.Secret{}, nil); errs.CodeOf(err) != errs.InvalidArgument {
		t.Errorf("empty password: %v, want InvalidArgument", err)
	}
}

// TestCryptSHA512SystemCrossCheck compares with the system's crypt(3), via
// Python's crypt module or openssl passwd -6, when either is available.
func TestCryptSHA512SystemCrossCheck(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{7}))
	var cases []struct{ password, setting string }
	for i := range 40 {
		pw := make([]byte, r.IntN(200))
		for j := range pw {
			pw[j] = byte(0x20 + r.IntN(0x5f)) // printable ASCII
		}
		salt := make([]byte, 1+r.IntN(16))
		for j := range salt {
			salt[j] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[r.IntN(64)]
		}
		setting := "$6$" + string(salt)
		if i%4 == 0 {
			setting = "$6$rounds=" + []string{"1000", "1001", "5000", "12345"}[i/4%4] + "$" + string(salt)
		}
		cases = append(cases, struct{ password, setting string }{string(pw), setting})
	}
	for _, v := range drepperVectors[:6] { // libxcrypt rejects rounds<1000 instead of clamping
		cases = append(cases, struct{ password, setting string }{v.password, v.setting})
	}

	checked := false
	if py, err := exec.LookPath("python3"); err == nil && exec.Command(py, "-W", "ignore", "-c", "import crypt").Run() == nil {
		var in strings.Builder
		for _, c := range cases {
			in.WriteString(c.setting + "\x00" + c.password + "\n")
		}
		cmd := exec.Command(py, "-W", "ignore", "-c", `
import sys, crypt
for line in sys.stdin.read().split("\n")[:-1]:
    s, p = line.split("\x00", 1)
    print(crypt.crypt(p, s))
`)
		cmd.Stdin = strings.NewReader(in.String())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python3 crypt: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != len(cases) {
			t.Fatalf("python3 printed %d lines for %d cases", len(lines), len(cases))
		}
		for i, c := range cases {
			got, err := template.CryptSHA512(c.password, c.setting)
			if err != nil || got != lines[i] {
				t.Errorf("CryptSHA512(%q, %q) = %q, %v; system crypt says %q", c.password, c.setting, got, err, lines[i])
			}
		}
		checked = true
	}
	if ossl, err := exec.LookPath("openssl"); err == nil {
		for _, c := range cases[:10] {
			if strings.Contains(c.setting, "rounds=") || strings.HasPrefix(c.password, "-") {
				continue
			}
			salt := strings.TrimPrefix(c.setting, "$6$")
			cmd := exec.Command(ossl, "passwd", "-6", "-salt", salt, "-stdin")
			cmd.Stdin = strings.NewReader(c.password + "\n")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("openssl passwd: %v", err)
			}
			got, _ := template.CryptSHA512(c.password, c.setting)
			if want := strings.TrimSpace(string(out)); got != want {
				t.Errorf("CryptSHA512(%q, %q) = %q; openssl says %q", c.password, c.setting, got, want)
			}
		}
		checked = true
	}
	if !checked {
		t.Skip("neither python3's crypt module nor openssl is available: SHA-512 crypt not cross-checked")
	}
}
