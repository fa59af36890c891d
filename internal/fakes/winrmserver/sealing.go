package winrmserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rc4"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ntlmSession is the server side of NTLM session security (MS-NLMP
// 3.4): messages from the client are unsealed and their signatures
// checked with the client-to-server keys, answers sealed and signed with
// the server-to-client keys. Both RC4 key streams run on across the
// messages of one connection, as do the sequence numbers.
type ntlmSession struct {
	keyExch             bool
	clientSign, srvSign []byte
	clientSeal, srvSeal *rc4.Cipher
	inSeq, outSeq       uint32
}

var (
	clientSignMagic = []byte("session key to client-to-server signing key magic constant\x00")
	serverSignMagic = []byte("session key to server-to-client signing key magic constant\x00")
	clientSealMagic = []byte("session key to client-to-server sealing key magic constant\x00")
	serverSealMagic = []byte("session key to server-to-client sealing key magic constant\x00")
)

// newServerSession derives the signing and sealing keys from the
// exported session key. Only NTLMv2 with extended session security and
// 128-bit keys is offered, so SEAL, SIGN, ESS and 128 must all be
// negotiated.
func newServerSession(a authenticated) (*ntlmSession, error) {
	const need = flagSign | flagSeal | flagESS | flag128
	if a.Flags&need != need {
		return nil, fmt.Errorf("ntlm: sealing needs SIGN, SEAL, EXTENDED_SESSIONSECURITY and 128 (flags %#08x)", a.Flags)
	}
	k := a.ExportedSessionKey
	cs, err := rc4.NewCipher(md5Sum(k, clientSealMagic))
	if err != nil {
		return nil, err
	}
	ss, err := rc4.NewCipher(md5Sum(k, serverSealMagic))
	if err != nil {
		return nil, err
	}
	return &ntlmSession{
		keyExch:    a.Flags&flagKeyExch != 0,
		clientSign: md5Sum(k, clientSignMagic),
		srvSign:    md5Sum(k, serverSignMagic),
		clientSeal: cs,
		srvSeal:    ss,
	}, nil
}

func md5Sum(parts ...[]byte) []byte {
	h := md5.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// signature is MS-NLMP 3.4.4.2 with extended session security: version
// 1, the first 8 bytes of HMAC_MD5(SigningKey, SeqNum || message)
// (RC4-encrypted with the sealing key stream when KEY_EXCH was
// negotiated), and SeqNum.
func (s *ntlmSession) signature(signKey []byte, seal *rc4.Cipher, seq uint32, msg []byte) []byte {
	var seqb [4]byte
	binary.LittleEndian.PutUint32(seqb[:], seq)
	sum := hmacMD5(signKey, seqb[:], msg)[:8]
	if s.keyExch {
		seal.XORKeyStream(sum, sum)
	}
	sig := make([]byte, 16)
	binary.LittleEndian.PutUint32(sig, 1)
	copy(sig[4:12], sum)
	copy(sig[12:], seqb[:])
	return sig
}

// unseal decrypts a message from the client and checks its signature and
// sequence number.
func (s *ntlmSession) unseal(sealed, sig []byte) ([]byte, error) {
	if len(sig) != 16 {
		return nil, errors.New("ntlm: the signature is not 16 bytes")
	}
	msg := make([]byte, len(sealed))
	s.clientSeal.XORKeyStream(msg, sealed)
	want := s.signature(s.clientSign, s.clientSeal, s.inSeq, msg)
	if !hmac.Equal(want, sig) {
		return nil, errors.New("ntlm: the message signature does not match (wrong keys, a replayed or altered message)")
	}
	s.inSeq++
	return msg, nil
}

// seal encrypts and signs an answer.
func (s *ntlmSession) seal(msg []byte) (sealed, sig []byte) {
	sealed = make([]byte, len(msg))
	s.srvSeal.XORKeyStream(sealed, msg)
	sig = s.signature(s.srvSign, s.srvSeal, s.outSeq, msg)
	s.outSeq++
	return sealed, sig
}

// MS-WSMV 2.2.9.1.1: an encrypted message is a multipart/encrypted body
// of two parts, the first naming the protocol and the original content
// type and length, the second the signature length (uint32 LE), the
// signature and the sealed message.
const (
	sealProtocol    = "application/HTTP-SPNEGO-session-encrypted"
	sealContentType = `multipart/encrypted;protocol="` + sealProtocol + `";boundary="Encrypted Boundary"`
	sealBoundary    = "--Encrypted Boundary"
	sealOctetHeader = "\tContent-Type: application/octet-stream\r\n"
)

// isSealed reports whether a Content-Type header names an NTLM-sealed
// message.
func isSealed(contentType string) bool {
	ct := strings.ToLower(contentType)
	return strings.HasPrefix(ct, "multipart/encrypted") && strings.Contains(ct, strings.ToLower(`protocol="`+sealProtocol+`"`))
}

// parseSealed splits an encrypted body into the original content type,
// the signature and the sealed message. The sealed message's length is
// the one OriginalContent states (RC4 keeps lengths), so bytes of the
// ciphertext that happen to look like a boundary do not matter.
func parseSealed(body []byte) (origType string, sig, sealed []byte, err error) {
	bad := func(why string) (string, []byte, []byte, error) {
		return "", nil, nil, errors.New("malformed encrypted message: " + why)
	}
	rest, ok := bytes.CutPrefix(body, []byte(sealBoundary+"\r\n"))
	if !ok {
		return bad("no leading boundary")
	}
	var length = -1
	for {
		line, after, found := bytes.Cut(rest, []byte("\r\n"))
		if !found {
			return bad("unterminated header")
		}
		if bytes.Equal(line, []byte(sealBoundary)) {
			rest = after
			break
		}
		name, value, _ := strings.Cut(strings.TrimSpace(string(line)), ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-type":
			if !strings.EqualFold(value, sealProtocol) {
				return bad("first part is " + strconv.Quote(value))
			}
		case "originalcontent":
			for _, f := range strings.Split(value, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
				switch strings.ToLower(k) {
				case "type":
					origType = v
				case "length":
					n, err := strconv.Atoi(v)
					if err != nil || n < 0 {
						return bad("bad Length")
					}
					length = n
				default:
					if origType != "" && length < 0 {
						origType += ";" + strings.TrimSpace(f) // charset=UTF-8
					}
				}
			}
		}
		rest = after
	}
	if length < 0 || origType == "" {
		return bad("no OriginalContent type and Length")
	}
	rest, ok = bytes.CutPrefix(rest, []byte(sealOctetHeader))
	if !ok {
		return bad("second part is not application/octet-stream")
	}
	if len(rest) < 4 {
		return bad("short")
	}
	n := int(binary.LittleEndian.Uint32(rest))
	if n != 16 || len(rest) < 4+n+length {
		return bad("signature or message length out of range")
	}
	sig, sealed, rest = rest[4:4+n], rest[4+n:4+n+length], rest[4+n+length:]
	if !bytes.Equal(rest, []byte(sealBoundary+"--\r\n")) && !bytes.Equal(rest, []byte(sealBoundary+"\r\n")) {
		return bad("bytes after the message")
	}
	return origType, sig, sealed, nil
}

// buildSealed is the encrypted body of a sealed message whose original
// content type is origType.
func buildSealed(origType string, sig, sealed []byte) []byte {
	var b bytes.Buffer
	b.WriteString(sealBoundary + "\r\n")
	b.WriteString("\tContent-Type: " + sealProtocol + "\r\n")
	b.WriteString("\tOriginalContent: type=" + origType + ";Length=" + strconv.Itoa(len(sealed)) + "\r\n")
	b.WriteString(sealBoundary + "\r\n")
	b.WriteString(sealOctetHeader)
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(sig)))
	b.Write(sig)
	b.Write(sealed)
	b.WriteString(sealBoundary + "--\r\n")
	return b.Bytes()
}
