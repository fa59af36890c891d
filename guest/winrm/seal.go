package winrm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/bodgit/ntlmssp"

	"github.com/managedvm/managedvm/errs"
)

// Message encryption over plain HTTP (MS-WSMV 2.2.9.1.1): after an NTLM
// handshake that negotiated signing and sealing, every message is sealed
// with the session's client-to-server RC4 key stream and signed
// (HMAC-MD5), and sent as a multipart/encrypted body; answers come back
// sealed under the server-to-client keys. github.com/bodgit/ntlmssp (the
// library masterzen/winrm's own encryption uses) runs the handshake and
// the session security; the framing and the handshake's HTTP legs are
// here, so that they stay on the lane's one connection.

const (
	sealProtocol    = "application/HTTP-SPNEGO-session-encrypted"
	sealContentType = `multipart/encrypted;protocol="` + sealProtocol + `";boundary="Encrypted Boundary"`
	sealBoundary    = "--Encrypted Boundary"
	sealOctetHeader = "\tContent-Type: application/octet-stream\r\n"
	soapContentType = "application/soap+xml;charset=UTF-8"
)

// NTLM negotiate flags the sealed transport needs from the CHALLENGE.
const (
	ntlmFlagSign = 1 << 4
	ntlmFlagSeal = 1 << 5
)

// sealer is the NTLM session of one lane's connection.
type sealer struct {
	sess *ntlmssp.SecuritySession
}

// sealBody returns the encrypted body for msg.
func (s *sealer) sealBody(msg []byte) ([]byte, error) {
	sealed, sig, err := s.sess.Wrap(msg)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(sealed) + 256)
	b.WriteString(sealBoundary + "\r\n")
	b.WriteString("\tContent-Type: " + sealProtocol + "\r\n")
	b.WriteString("\tOriginalContent: type=" + soapContentType + ";Length=" + strconv.Itoa(len(msg)) + "\r\n")
	b.WriteString(sealBoundary + "\r\n")
	b.WriteString(sealOctetHeader)
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(sig)))
	b.Write(sig)
	b.Write(sealed)
	b.WriteString(sealBoundary + "--\r\n")
	return b.Bytes(), nil
}

// isSealed reports whether a Content-Type names an NTLM-sealed message.
func isSealed(contentType string) bool {
	ct := strings.ToLower(contentType)
	return strings.HasPrefix(ct, "multipart/encrypted") && strings.Contains(ct, strings.ToLower(`protocol="`+sealProtocol+`"`))
}

// unsealBody opens an encrypted answer and checks its signature. The
// sealed message is as long as OriginalContent's Length says (RC4 keeps
// lengths), so ciphertext that looks like a boundary does not matter.
func (s *sealer) unsealBody(body []byte) ([]byte, error) {
	bad := func(why string) ([]byte, error) { return nil, errors.New("malformed encrypted answer: " + why) }
	rest, ok := bytes.CutPrefix(body, []byte(sealBoundary+"\r\n"))
	if !ok {
		return bad("no leading boundary")
	}
	length := -1
	for {
		line, after, found := bytes.Cut(rest, []byte("\r\n"))
		if !found {
			return bad("unterminated part header")
		}
		rest = after
		if bytes.Equal(line, []byte(sealBoundary)) {
			break
		}
		name, value, _ := strings.Cut(strings.TrimSpace(string(line)), ":")
		if !strings.EqualFold(name, "OriginalContent") {
			continue
		}
		for _, f := range strings.Split(value, ";") {
			if k, v, _ := strings.Cut(strings.TrimSpace(f), "="); strings.EqualFold(k, "Length") {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return bad("bad Length")
				}
				length = n
			}
		}
	}
	if length < 0 {
		return bad("no OriginalContent Length")
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(sealOctetHeader)); !ok || len(rest) < 4 {
		return bad("no application/octet-stream part")
	}
	n := int(binary.LittleEndian.Uint32(rest))
	if n != 16 || len(rest) < 4+n+length {
		return bad("signature or message length out of range")
	}
	sig, sealed, tail := rest[4:4+n], rest[4+n:4+n+length], rest[4+n+length:]
	if !bytes.Equal(tail, []byte(sealBoundary+"--\r\n")) && !bytes.Equal(tail, []byte(sealBoundary+"\r\n")) {
		return bad("bytes after the message")
	}
	return s.sess.Unwrap(sealed, sig)
}

// ntlmUser splits DOMAIN\user; user@domain stays whole with no domain, as
// Windows clients send it.
func ntlmUser(name string) (user, domain string) {
	if d, u, ok := strings.Cut(name, `\`); ok {
		return u, d
	}
	return name, ""
}

// handshake authenticates the lane's connection with NTLM (two empty
// POSTs, as pywinrm does before its first sealed message) and returns its
// session. A status other than 200 at the end is returned as is (401: the
// login was refused); err is already coded.
func (e *Driver) handshake(ctx context.Context, l *lane) (*sealer, int, error) {
	const op = "winrm.NTLM"
	user, domain := ntlmUser(e.user)
	nc, err := ntlmssp.NewClient(ntlmssp.SetUserInfo(user, e.password), ntlmssp.SetDomain(domain))
	if err != nil {
		return nil, 0, errs.Wrap(errs.Internal, op, err)
	}
	negotiate, err := nc.Authenticate(nil, nil)
	if err != nil {
		return nil, 0, errs.Wrap(errs.Internal, op, err)
	}
	resp, err := e.emptyPost(ctx, l, negotiate)
	if err != nil {
		return nil, 0, err
	}
	challenge := negotiateToken(resp.Header)
	switch {
	case resp.StatusCode == http.StatusUnauthorized && challenge != nil:
	case resp.StatusCode == http.StatusOK:
		// Without a CHALLENGE there are no session keys to seal with.
		return nil, 0, errs.New(errs.Unavailable, op, "the guest answered an NTLM NEGOTIATE with HTTP 200 and no CHALLENGE")
	default:
		return nil, resp.StatusCode, nil // 401 without a CHALLENGE: Negotiate refused
	}
	if len(challenge) < 24 {
		return nil, 0, errs.New(errs.Unavailable, op, "the guest sent a malformed NTLM CHALLENGE")
	}
	if f := binary.LittleEndian.Uint32(challenge[20:24]); f&(ntlmFlagSign|ntlmFlagSeal) != ntlmFlagSign|ntlmFlagSeal {
		return nil, 0, errs.Errorf(errs.FailedPrecondition, op, "the guest does not offer NTLM signing and sealing (flags %#08x), so messages over plain HTTP cannot be encrypted: use HTTPS", f)
	}
	authenticate, err := nc.Authenticate(challenge, nil)
	if err != nil {
		return nil, 0, errs.Errorf(errs.Unavailable, op, "answering the guest's NTLM CHALLENGE: %w", err)
	}
	resp, err = e.emptyPost(ctx, l, authenticate)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, nil
	}
	if nc.SecuritySession() == nil {
		return nil, 0, errs.New(errs.Internal, op, "the NTLM handshake produced no session keys")
	}
	return &sealer{sess: nc.SecuritySession()}, http.StatusOK, nil
}

// emptyPost sends one handshake leg with an empty body.
func (e *Driver) emptyPost(ctx context.Context, l *lane, token []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, http.NoBody)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "winrm.NTLM", err)
	}
	req.Header.Set("Content-Type", soapContentType)
	req.Header.Set("Authorization", "Negotiate "+base64.StdEncoding.EncodeToString(token))
	resp, err := l.hc.Do(req)
	if err != nil {
		return nil, e.transportError(ctx, "winrm.NTLM", err)
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		return nil, e.transportError(ctx, "winrm.NTLM", err)
	}
	return resp, nil
}

// negotiateToken returns the NTLM token of a "WWW-Authenticate:
// Negotiate <base64>" header, or nil.
func negotiateToken(h http.Header) []byte {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
		if !ok || (!strings.EqualFold(scheme, "Negotiate") && !strings.EqualFold(scheme, "NTLM")) {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok)); err == nil && len(b) > 0 {
			return b
		}
	}
	return nil
}

// sealedPost sends body sealed on lane l, authenticating the lane first if
// it has no session, and returns the answer unsealed. A 401 drops the
// lane's session (the guest no longer knows the connection: it was
// reopened, or the login was refused).
func (e *Driver) sealedPost(ctx context.Context, op string, l *lane, body string) (int, []byte, error) {
	for fresh := false; ; fresh = true {
		if l.seal == nil {
			s, status, err := e.handshake(ctx, l)
			if err != nil {
				return 0, nil, err
			}
			if s == nil {
				return status, nil, nil
			}
			l.seal, fresh = s, true
		}
		status, data, err := e.sealedExchange(ctx, op, l, body)
		if err == nil && status == http.StatusUnauthorized && !fresh && ctx.Err() == nil {
			// The session was set up on an earlier connection (the
			// transport reopened it, or the guest's service restarted):
			// nothing ran, so authenticate this connection and resend.
			continue
		}
		return status, data, err
	}
}

// sealedExchange sends one sealed message on l's authenticated connection.
func (e *Driver) sealedExchange(ctx context.Context, op string, l *lane, body string) (int, []byte, error) {
	sealed, err := l.seal.sealBody([]byte(body))
	if err != nil {
		return 0, nil, errs.Wrap(errs.Internal, op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(sealed))
	if err != nil {
		return 0, nil, errs.Wrap(errs.Internal, op, err)
	}
	req.Header.Set("Content-Type", sealContentType)
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0, nil, e.transportError(ctx, op, err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	_ = resp.Body.Close()
	if err != nil {
		return 0, nil, e.transportError(ctx, op, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		l.seal = nil
		return resp.StatusCode, nil, nil
	case isSealed(resp.Header.Get("Content-Type")):
		msg, err := l.seal.unsealBody(data)
		if err != nil {
			// The request was delivered: it may have run.
			return 0, nil, errs.Errorf(errs.OutcomeUnknown, op, "the guest's sealed answer (HTTP %d) failed its NTLM check: %w", resp.StatusCode, err)
		}
		return resp.StatusCode, msg, nil
	case len(data) > 0:
		// Anyone on the path can write plain text: it is not the guest's
		// answer, and the request may have run.
		return 0, nil, errs.Errorf(errs.OutcomeUnknown, op, "the guest answered a sealed message with an unsealed body (HTTP %d, Content-Type %s)", resp.StatusCode, quote(resp.Header.Get("Content-Type")))
	}
	return resp.StatusCode, nil, nil
}
