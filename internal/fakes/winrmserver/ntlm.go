package winrmserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/bits"
	"strings"
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

// Flags the CHALLENGE offers: UNICODE, REQUEST_TARGET, NTLM, ALWAYS_SIGN,
// EXTENDED_SESSIONSECURITY, TARGET_INFO, 128. No KEY_EXCH, no LM_KEY.
const challengeFlags = 1<<0 | 1<<2 | 1<<9 | 1<<15 | 1<<19 | 1<<23 | 1<<29

// newChallenge builds a CHALLENGE message with a random server challenge.
func newChallenge(target string) (msg []byte, serverChallenge [8]byte, err error) {
	if _, err = rand.Read(serverChallenge[:]); err != nil {
		return nil, serverChallenge, err
	}
	name := utf16le(target)
	// Target info: MsvAvNbDomainName, MsvAvEOL.
	var info bytes.Buffer
	_ = binary.Write(&info, binary.LittleEndian, uint16(2))
	_ = binary.Write(&info, binary.LittleEndian, uint16(len(name)))
	info.Write(name)
	info.Write([]byte{0, 0, 0, 0})

	const header = 48
	var b bytes.Buffer
	b.Write(ntlmSignature)
	_ = binary.Write(&b, binary.LittleEndian, uint32(ntlmChallenge))
	writeVarField(&b, len(name), header)
	_ = binary.Write(&b, binary.LittleEndian, uint32(challengeFlags))
	b.Write(serverChallenge[:])
	b.Write(make([]byte, 8))
	writeVarField(&b, info.Len(), header+len(name))
	b.Write(name)
	b.Write(info.Bytes())
	return b.Bytes(), serverChallenge, nil
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
}

// verifyAuthenticate checks the NTLMv2 proof of an AUTHENTICATE message
// against the password of the account it names.
func verifyAuthenticate(msg []byte, serverChallenge [8]byte, lookup func(user, domain string) (password string, ok bool)) (authenticated, error) {
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
	user, domain := fromUTF16LE(userB), fromUTF16LE(domainB)
	if len(nt) < 16+28 {
		return authenticated{}, errors.New("ntlm: not an NTLMv2 response")
	}
	password, ok := lookup(user, domain)
	if !ok {
		return authenticated{}, errors.New("ntlm: unknown account")
	}
	key := hmacMD5(md4Sum(utf16le(password)), utf16le(strings.ToUpper(user)+domain))
	proof := hmacMD5(key, serverChallenge[:], nt[16:])
	if !hmac.Equal(proof, nt[:16]) {
		return authenticated{}, errors.New("ntlm: wrong password")
	}
	return authenticated{User: user, Domain: domain}, nil
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
