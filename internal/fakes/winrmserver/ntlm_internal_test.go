package winrmserver

import (
	"encoding/hex"
	"testing"

	"github.com/Azure/go-ntlmssp"
)

func TestMD4(t *testing.T) {
	for in, want := range map[string]string{
		"":    "31d6cfe0d16ae931b73c59d7e0c089c0",
		"a":   "bde52cb31de33e46245e05fbdbd6fb24",
		"abc": "a448017aaf21d8525fc10ae87aa6729d",
		"12345678901234567890123456789012345678901234567890123456789012345678901234567890": "e33b4ddc9c38f2199c3e7b164fcc0536",
	} {
		if got := hex.EncodeToString(md4Sum([]byte(in))); got != want {
			t.Errorf("md4(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestVerifyAuthenticate(t *testing.T) {
	lookup := func(user, domain string) (string, bool) {
		if user == "ops" && (domain == "" || domain == "CORP") || user == "ops@corp" {
			return "right", true
		}
		return "", false
	}
	for _, c := range []struct {
		user, password string
		ok             bool
	}{
		{"ops", "right", true}, {`CORP\ops`, "right", true}, {"ops@corp", "right", true},
		{"ops", "wrong", false}, {`CORP\ops`, "Right", false}, {"other", "right", false}, {`X\ops`, "right", false},
	} {
		challenge, server, err := newChallenge("CORP")
		if err != nil {
			t.Fatal(err)
		}
		msg, err := ntlmssp.NewAuthenticateMessage(challenge, c.user, c.password, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = verifyAuthenticate(msg, server, lookup)
		if (err == nil) != c.ok {
			t.Errorf("%s / %s: %v, want ok=%v", c.user, c.password, err, c.ok)
		}
		// The same message against another server challenge fails.
		var other [8]byte
		copy(other[:], server[:])
		other[0] ^= 1
		if _, err := verifyAuthenticate(msg, other, lookup); err == nil {
			t.Errorf("%s: a proof for another challenge was accepted", c.user)
		}
	}
	if _, err := verifyAuthenticate([]byte("NTLMSSP\x00\x03\x00\x00\x00"), [8]byte{}, lookup); err == nil {
		t.Error("a truncated message was accepted")
	}
}
