package winrmserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/Azure/go-ntlmssp"
	bodgit "github.com/bodgit/ntlmssp"
)

func challengeFlagsOf(challenge []byte) uint32 { return binary.LittleEndian.Uint32(challenge[20:24]) }

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
		negotiate, err := ntlmssp.NewNegotiateMessage("", "")
		if err != nil {
			t.Fatal(err)
		}
		challenge, server, err := newChallenge("CORP", negotiate)
		if err != nil {
			t.Fatal(err)
		}
		if f := challengeFlagsOf(challenge); f&(flagKeyExch|flagSeal|flagSign) != 0 {
			t.Fatalf("go-ntlmssp asked for no KEY_EXCH, SEAL or SIGN, but the CHALLENGE grants %#08x", f)
		}
		msg, err := ntlmssp.NewAuthenticateMessage(challenge, c.user, c.password, nil)
		if err != nil {
			t.Fatal(err)
		}
		hs := handshake{negotiate: negotiate, challenge: challenge, serverChallenge: server}
		_, err = verifyAuthenticate(msg, hs, lookup)
		if (err == nil) != c.ok {
			t.Errorf("%s / %s: %v, want ok=%v", c.user, c.password, err, c.ok)
		}
		// The same message against another server challenge fails.
		other := hs
		other.serverChallenge[0] ^= 1
		if _, err := verifyAuthenticate(msg, other, lookup); err == nil {
			t.Errorf("%s: a proof for another challenge was accepted", c.user)
		}
	}
	if _, err := verifyAuthenticate([]byte("NTLMSSP\x00\x03\x00\x00\x00"), handshake{}, lookup); err == nil {
		t.Error("a truncated message was accepted")
	}
}

// TestSessionSecurity cross-checks the server's NTLM session security
// against an independent client implementation (github.com/bodgit/ntlmssp,
// which masterzen/winrm's encryption uses): keys from a real handshake
// (with KEY_EXCH and a MIC, as against Windows), sealing both ways, and
// refusal of altered, replayed and mis-keyed messages.
func TestSessionSecurity(t *testing.T) {
	lookup := func(user, domain string) (string, bool) { return "right", user == "ops" }
	start := func(t *testing.T, password string) (*bodgit.Client, handshake, []byte) {
		t.Helper()
		c, err := bodgit.NewClient(bodgit.SetUserInfo("ops", password), bodgit.SetDomain("CORP"))
		if err != nil {
			t.Fatal(err)
		}
		neg, err := c.Authenticate(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		chal, sc, err := newChallenge("CORP", neg)
		if err != nil {
			t.Fatal(err)
		}
		if f := challengeFlagsOf(chal); f&(flagKeyExch|flagSeal|flagSign) != flagKeyExch|flagSeal|flagSign {
			t.Fatalf("the client asked for KEY_EXCH, SEAL and SIGN; the CHALLENGE grants %#08x", f)
		}
		auth, err := c.Authenticate(chal, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c, handshake{negotiate: neg, challenge: chal, serverChallenge: sc}, auth
	}

	c, hs, auth := start(t, "right")
	a, err := verifyAuthenticate(auth, hs, lookup)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServerSession(a)
	if err != nil {
		t.Fatal(err)
	}
	cli := c.SecuritySession()
	for i, m := range []string{"<s:Envelope>first</s:Envelope>", "second, longer message " + strings.Repeat("x", 5000), ""} {
		sealed, sig, err := cli.Wrap([]byte(m))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) > 8 && bytes.Contains(sealed, []byte(m[:8])) {
			t.Fatalf("message %d: the sealed bytes hold the plain text", i)
		}
		got, err := srv.unseal(sealed, sig)
		if err != nil || string(got) != m {
			t.Fatalf("message %d: server unsealed %q, %v", i, got, err)
		}
		answer := "answer " + m
		sealed, sig = srv.seal([]byte(answer))
		back, err := cli.Unwrap(sealed, sig)
		if err != nil || string(back) != answer {
			t.Fatalf("message %d: client unsealed %q, %v", i, back, err)
		}
	}

	// An altered message, and a replayed one, fail the signature check.
	sealed, sig, _ := cli.Wrap([]byte("Write-Output 1"))
	altered := append([]byte(nil), sealed...)
	altered[3] ^= 0x20
	if _, err := srv.unseal(altered, sig); err == nil {
		t.Fatal("an altered message was accepted")
	}
	c2, hs2, auth2 := start(t, "right")
	a2, err := verifyAuthenticate(auth2, hs2, lookup)
	if err != nil {
		t.Fatal(err)
	}
	srv2, _ := newServerSession(a2)
	s1, g1, _ := c2.SecuritySession().Wrap([]byte("one"))
	if _, err := srv2.unseal(s1, g1); err != nil {
		t.Fatal(err)
	}
	if _, err := srv2.unseal(s1, g1); err == nil {
		t.Fatal("a replayed message was accepted")
	}
	// A session keyed by another handshake cannot open the message.
	s3, g3, _ := c2.SecuritySession().Wrap([]byte("two"))
	if _, err := srv.unseal(s3, g3); err == nil {
		t.Fatal("a message sealed under another session's keys was accepted")
	}

	// The MIC binds the AUTHENTICATE to the NEGOTIATE and CHALLENGE it
	// answers: a changed CHALLENGE is detected even with the right password.
	_, hs4, auth4 := start(t, "right")
	hs4.challenge = append([]byte(nil), hs4.challenge...)
	hs4.challenge[len(hs4.challenge)-5] ^= 1
	if _, err := verifyAuthenticate(auth4, hs4, lookup); err == nil || !strings.Contains(err.Error(), "MIC") {
		t.Fatalf("a MIC over another CHALLENGE: %v", err)
	}
	_, hs5, auth5 := start(t, "wrong")
	if _, err := verifyAuthenticate(auth5, hs5, lookup); err == nil {
		t.Fatal("a wrong password was accepted")
	}
}

func TestSealedBodyFormat(t *testing.T) {
	sig := bytes.Repeat([]byte{7}, 16)
	// Ciphertext that contains the boundary must not confuse the parser.
	sealed := []byte("xx--Encrypted Boundary\r\nyy")
	body := buildSealed("application/soap+xml;charset=UTF-8", sig, sealed)
	typ, gsig, gsealed, err := parseSealed(body)
	if err != nil || typ != "application/soap+xml;charset=UTF-8" || !bytes.Equal(gsig, sig) || !bytes.Equal(gsealed, sealed) {
		t.Fatalf("round trip: %q %x %q %v", typ, gsig, gsealed, err)
	}
	// pywinrm ends with a plain boundary instead of the closing one.
	alt := append(bytes.TrimSuffix(body, []byte("--\r\n")), "\r\n"...)
	if _, _, _, err := parseSealed(alt); err != nil {
		t.Fatalf("pywinrm's ending: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": body[:len(body)-30],
		"trailing":  append(append([]byte(nil), body...), 'x'),
		"plain":     []byte("<s:Envelope/>"),
	} {
		if _, _, _, err := parseSealed(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
