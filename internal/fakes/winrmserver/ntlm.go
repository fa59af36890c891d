package winrmserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/bits"
	"strings"
	"time"
	"unicode/utf16"
)

// NTLM message types.
const (
	ntlmNegotiate    = 1
	ntlmChallenge    = 2
	ntlmAuthenticate = 3
)

var ntlmSignature = []byte("NTLMSSP\x00")

// ntlmMessageType returns the type of an NTLM message, or 0.
func ntlmMessageType(msg []byte) uint32 {
	if len(msg) < 12 || !bytes.Equal(msg[:8], ntlmSignature) {
		return 0
	}
	return binary.LittleEndian.Uint32(msg[8:12])
}

// NTLM negotiate flags (MS-NLMP 2.2.2.5).
const (
	flagUnicode       = 1 << 0
	flagRequestTarget = 1 << 2
	flagSign          = 1 << 4
	flagSeal          = 1 << 5
	flagNTLM          = 1 << 9
	flagAlwaysSign    = 1 << 15
	flagESS           = 1 << 19 // extended session security
	flagTargetInfo    = 1 << 23
	flag128           = 1 << 29
	flagKeyExch       = 1 << 30
	flag56            = 1 << 31
)

// challengeFlags are what every CHALLENGE offers: UNICODE, REQUEST_TARGET,
// NTLM, ALWAYS_SIGN, EXTENDED_SESSIONSECURITY, TARGET_INFO, 128. Never
// LM_KEY.
const challengeFlags = flagUnicode | flagRequestTarget | flagNTLM | flagAlwaysSign | flagESS | flagTargetInfo | flag128

// echoedFlags are granted only when the NEGOTIATE asks for them, as
// Windows does: signing, sealing and key exchange (a client that does not
// ask for KEY_EXCH, such as go-ntlmssp, must not get it).
const echoedFlags = flagSign | flagSeal | flagKeyExch | flag56

// AV pair ids (MS-NLMP 2.2.2.1).
const (
	avEOL          = 0
	avNbDomainName = 2
	avFlags        = 6
	avTimestamp    = 7
	avFlagMIC      = 0x2 // MsvAvFlags: the AUTHENTICATE carries a MIC
)

// newChallenge builds a CHALLENGE message answering the NEGOTIATE message
// negotiate, with a random server challenge and a timestamp (so that a
// client computes a MIC, as it does against Windows).
func newChallenge(target string, negotiate []byte) (msg []byte, serverChallenge [8]byte, err error) {
	if _, err = rand.Read(serverChallenge[:]); err != nil {
		return nil, serverChallenge, err
	}
	flags := uint32(challengeFlags)
	if ntlmMessageType(negotiate) == ntlmNegotiate && len(negotiate) >= 16 {
		flags |= binary.LittleEndian.Uint32(negotiate[12:16]) & echoedFlags
	}
	name := utf16le(target)
	var ts [8]byte
	// FILETIME: 100 ns intervals since 1601-01-01.
	binary.LittleEndian.PutUint64(ts[:], uint64(time.Now().UnixNano()/100+116444736000000000))
	var info bytes.Buffer
	writeAV(&info, avNbDomainName, name)
	writeAV(&info, avTimestamp, ts[:])
	writeAV(&info, avEOL, nil)

	const header = 48
	var b bytes.Buffer
	b.Write(ntlmSignature)
	_ = binary.Write(&b, binary.LittleEndian, uint32(ntlmChallenge))
	writeVarField(&b, len(name), header)
	_ = binary.Write(&b, binary.LittleEndian, flags)
	b.Write(serverChallenge[:])
	b.Write(make([]byte, 8))
	writeVarField(&b, info.Len(), header+len(name))
	b.Write(name)
	b.Write(info.Bytes())
	return b.Bytes(), serverChallenge, nil
}

func writeAV(b *bytes.Buffer, id uint16, v []byte) {
	_ = binary.Write(b, binary.LittleEndian, id)
	_ = binary.Write(b, binary.LittleEndian, uint16(len(v)))
	b.Write(v)
}

// avPair returns the value of AV pair id in an AV pair list.
func avPair(list []byte, id uint16) ([]byte, bool) {
	for len(list) >= 4 {
		k := binary.LittleEndian.Uint16(list)
		n := int(binary.LittleEndian.Uint16(list[2:]))
		if k == avEOL || 4+n > len(list) {
			return nil, false
		}
		if k == id {
			return list[4 : 4+n], true
		}
		list = list[4+n:]
	}
	return nil, false
}

func writeVarField(b *bytes.Buffer, n, offset int) {
	_ = binary.Write(b, binary.LittleEndian, uint16(n))
	_ = binary.Write(b, binary.LittleEndian, uint16(n))
	_ = binary.Write(b, binary.LittleEndian, uint32(offset))
}

func readVarField(msg []byte, at int) ([]byte, error) {
	if at+8 > len(msg) {
		return nil, errors.New("ntlm: short message")
	}
	n := int(binary.LittleEndian.Uint16(msg[at:]))
	off := int(binary.LittleEndian.Uint32(msg[at+4:]))
	if off < 0 || n < 0 || off+n > len(msg) {
		return nil, errors.New("ntlm: field out of range")
	}
	return msg[off : off+n], nil
}

// authenticated is what a verified AUTHENTICATE message says.
type authenticated struct {
	User, Domain string
	// Flags are the negotiated flags of the AUTHENTICATE message.
	Flags uint32
	// ExportedSessionKey is the session key both sides derived (MS-NLMP
	// 3.2.5.1.2 and 3.3.1): the NTLMv2 SessionBaseKey, or with KEY_EXCH
	// the client's random key, decrypted with it.
	ExportedSessionKey []byte
}

// handshake is one connection's NTLM exchange so far: the NEGOTIATE and
// CHALLENGE messages (a MIC covers them) and the server challenge.
type handshake struct {
	negotiate, challenge []byte
	serverChallenge      [8]byte
}

// verifyAuthenticate checks the NTLMv2 proof of an AUTHENTICATE message
// against the password of the account it names, derives the session key,
// and checks the message's MIC when the client says it sent one.
func verifyAuthenticate(msg []byte, hs handshake, lookup func(user, domain string) (password string, ok bool)) (authenticated, error) {
	if ntlmMessageType(msg) != ntlmAuthenticate || len(msg) < 64 {
		return authenticated{}, errors.New("ntlm: not an AUTHENTICATE message")
	}
	nt, err := readVarField(msg, 20)
	if err != nil {
		return authenticated{}, err
	}
	domainB, err := readVarField(msg, 28)
	if err != nil {
		return authenticated{}, err
	}
	userB, err := readVarField(msg, 36)
	if err != nil {
		return authenticated{}, err
	}
	encKey, err := readVarField(msg, 52)
	if err != nil {
		return authenticated{}, err
	}
	flags := binary.LittleEndian.Uint32(msg[60:64])
	user, domain := fromUTF16LE(userB), fromUTF16LE(domainB)
	if len(nt) < 16+28 {
		return authenticated{}, errors.New("ntlm: not an NTLMv2 response")
	}
	password, ok := lookup(user, domain)
	if !ok {
		return authenticated{}, errors.New("ntlm: unknown account")
	}
	key := hmacMD5(md4Sum(utf16le(password)), utf16le(strings.ToUpper(user)+domain))
	proof := hmacMD5(key, hs.serverChallenge[:], nt[16:])
	if !hmac.Equal(proof, nt[:16]) {
		return authenticated{}, errors.New("ntlm: wrong password")
	}
	// NTLMv2: KeyExchangeKey = SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr).
	exported := hmacMD5(key, proof)
	if flags&flagKeyExch != 0 {
		if len(encKey) != 16 {
			return authenticated{}, errors.New("ntlm: KEY_EXCH without a 16-byte encrypted session key")
		}
		c, err := rc4.NewCipher(exported)
		if err != nil {
			return authenticated{}, err
		}
		random := make([]byte, 16)
		c.XORKeyStream(random, encKey)
		exported = random
	}
	// The client's AV pairs (after the 28-byte NTLMv2 client challenge
	// header) say whether a MIC follows the Version field.
	if fl, ok := avPair(nt[16+28:], avFlags); ok && len(fl) == 4 && binary.LittleEndian.Uint32(fl)&avFlagMIC != 0 {
		if len(msg) < 88 {
			return authenticated{}, errors.New("ntlm: MIC announced but missing")
		}
		zeroed := append([]byte(nil), msg...)
		clear(zeroed[72:88])
		if !hmac.Equal(hmacMD5(exported, hs.negotiate, hs.challenge, zeroed), msg[72:88]) {
			return authenticated{}, errors.New("ntlm: the MIC does not match the handshake")
		}
	}
	return authenticated{User: user, Domain: domain, Flags: flags, ExportedSessionKey: exported}, nil
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16LE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// parseAuthorization splits "Negotiate <base64>" or "NTLM <base64>".
func parseAuthorization(h string) (scheme string, token []byte, ok bool) {
	scheme, rest, found := strings.Cut(h, " ")
	if !found {
		return scheme, nil, false
	}
	tok, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return scheme, nil, false
	}
	return scheme, tok, true
}

// md4Sum is MD4 (RFC 1320), which NTLM needs for the NT hash.
func md4Sum(msg []byte) []byte {
	a, b, c, d := uint32(0x67452301), uint32(0xefcdab89), uint32(0x98badcfe), uint32(0x10325476)
	n := len(msg)
	padded := append([]byte{}, msg...)
	padded = append(padded, 0x80)
	for len(padded)%64 != 56 {
		padded = append(padded, 0)
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(n)*8)
	padded = append(padded, lenb[:]...)
	var x [16]uint32
	for off := 0; off < len(padded); off += 64 {
		for i := range x {
			x[i] = binary.LittleEndian.Uint32(padded[off+4*i:])
		}
		aa, bb, cc, dd := a, b, c, d
		f := func(x, y, z uint32) uint32 { return x&y | ^x&z }
		g := func(x, y, z uint32) uint32 { return x&y | x&z | y&z }
		h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
		r1 := [4]int{3, 7, 11, 19}
		for i := 0; i < 16; i++ {
			k := i
			s := r1[i%4]
			switch i % 4 {
			case 0:
				a = bits.RotateLeft32(a+f(b, c, d)+x[k], s)
			case 1:
				d = bits.RotateLeft32(d+f(a, b, c)+x[k], s)
			case 2:
				c = bits.RotateLeft32(c+f(d, a, b)+x[k], s)
			case 3:
				b = bits.RotateLeft32(b+f(c, d, a)+x[k], s)
			}
		}
		r2 := [4]int{3, 5, 9, 13}
		order2 := [16]int{0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15}
		for i := 0; i < 16; i++ {
			k := order2[i]
			s := r2[i%4]
			const c2 = 0x5a827999
			switch i % 4 {
			case 0:
				a = bits.RotateLeft32(a+g(b, c, d)+x[k]+c2, s)
			case 1:
				d = bits.RotateLeft32(d+g(a, b, c)+x[k]+c2, s)
			case 2:
				c = bits.RotateLeft32(c+g(d, a, b)+x[k]+c2, s)
			case 3:
				b = bits.RotateLeft32(b+g(c, d, a)+x[k]+c2, s)
			}
		}
		r3 := [4]int{3, 9, 11, 15}
		order3 := [16]int{0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15}
		for i := 0; i < 16; i++ {
			k := order3[i]
			s := r3[i%4]
			const c3 = 0x6ed9eba1
			switch i % 4 {
			case 0:
				a = bits.RotateLeft32(a+h(b, c, d)+x[k]+c3, s)
			case 1:
				d = bits.RotateLeft32(d+h(a, b, c)+x[k]+c3, s)
			case 2:
				c = bits.RotateLeft32(c+h(d, a, b)+x[k]+c3, s)
			case 3:
				b = bits.RotateLeft32(b+h(c, d, a)+x[k]+c3, s)
			}
		}
		a, b, c, d = a+aa, b+bb, c+cc, d+dd
	}
	out := make([]byte, 16)
	binary.LittleEndian.PutUint32(out[0:], a)
	binary.LittleEndian.PutUint32(out[4:], b)
	binary.LittleEndian.PutUint32(out[8:], c)
	binary.LittleEndian.PutUint32(out[12:], d)
	return out
}
