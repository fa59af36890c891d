package netreq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/report"
)

// startTLSRequest is the LDAPv3 StartTLS extended request (RFC 4511
// 4.14.1) with message ID 1, BER-encoded:
//
//	LDAPMessage ::= SEQUENCE { messageID 1, extendedReq [APPLICATION 23] {
//	    requestName [0] "1.3.6.1.4.1.1466.20037" } }
var startTLSRequest = append([]byte{0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16},
	"1.3.6.1.4.1.1466.20037"...)

// maxLDAPResponse bounds the response Probe reads.
const maxLDAPResponse = 16 << 10

func (p *portCheck) ldapStartTLS(ctx context.Context, conn net.Conn) (report.Status, string, string) {
	if _, err := conn.Write(startTLSRequest); err != nil {
		return p.greetingFailure(ctx, "LDAP StartTLS exchange", err)
	}
	code, diag, err := readExtendedResponse(conn)
	if err != nil {
		return p.greetingFailure(ctx, "LDAP StartTLS response", err)
	}
	if code != 0 {
		d := fmt.Sprintf("the directory refused StartTLS (LDAP result code %d)", code)
		if diag != "" {
			d += ": " + limit.Quote(diag)
		}
		return report.Fail, d, "configure a server certificate on the directory (olcTLSCertificateFile, olcTLSCertificateKeyFile), or use ldaps:// on 636"
	}
	tc, info, err := p.handshake(conn)
	if err != nil {
		return p.tlsFailure(ctx, info, err)
	}
	_ = tc.Close()
	detail := "StartTLS accepted; " + info.String()
	if info.expiresSoon {
		return report.Warn, detail, "renew the certificate of " + p.name() + " before " + info.notAfter.Format(time.DateOnly)
	}
	return report.Pass, detail, ""
}

// readExtendedResponse reads one LDAPMessage and returns the resultCode
// and diagnosticMessage of its extendedResp [APPLICATION 24].
func readExtendedResponse(r io.Reader) (int, string, error) {
	tag, body, err := readTLV(r, maxLDAPResponse)
	if err != nil {
		return 0, "", err
	}
	if tag != 0x30 {
		return 0, "", fmt.Errorf("not an LDAP message (tag 0x%02x)", tag)
	}
	t, _, rest, err := cutTLV(body) // messageID
	if err != nil || t != 0x02 {
		return 0, "", errors.New("LDAP message without a message ID")
	}
	t, op, _, err := cutTLV(rest)
	if err != nil || t != 0x78 {
		return 0, "", fmt.Errorf("not an extended response (tag 0x%02x)", t)
	}
	t, rc, op, err := cutTLV(op)
	if err != nil || t != 0x0a || len(rc) == 0 || len(rc) > 4 {
		return 0, "", errors.New("extended response without a result code")
	}
	code := 0
	for _, b := range rc {
		code = code<<8 | int(b)
	}
	var diag string
	if _, _, op, err = cutTLV(op); err == nil { // matchedDN
		if t, d, _, err := cutTLV(op); err == nil && t == 0x04 {
			diag = string(d)
		}
	}
	return code, diag, nil
}

// readTLV reads one BER element (definite length) from r.
func readTLV(r io.Reader, max int) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1])
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 {
			return 0, nil, errors.New("BER length not definite or too long")
		}
		lb := make([]byte, k)
		if _, err := io.ReadFull(r, lb); err != nil {
			return 0, nil, err
		}
		n = 0
		for _, b := range lb {
			n = n<<8 | int(b)
		}
	}
	if n > max {
		return 0, nil, fmt.Errorf("BER element of %d bytes (at most %d)", n, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return h[0], body, nil
}

// cutTLV splits the first BER element off b.
func cutTLV(b []byte) (tag byte, val, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errors.New("short BER element")
	}
	tag, n, i := b[0], int(b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return 0, nil, nil, errors.New("bad BER length")
		}
		n = 0
		for _, x := range b[2 : 2+k] {
			n = n<<8 | int(x)
		}
		i += k
	}
	if len(b)-i < n {
		return 0, nil, nil, errors.New("short BER element")
	}
	return tag, b[i : i+n], b[i+n:], nil
}

// x224Request is an X.224 Connection Request in a TPKT (RFC 1006, MS-RDPBCGR
// 2.2.1.1) carrying an RDP Negotiation Request for TLS and CredSSP.
var x224Request = []byte{
	0x03, 0x00, 0x00, 0x13, // TPKT: version 3, length 19
	0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, // X.224 CR: LI 14, code 0xE0, dst-ref, src-ref, class 0
	0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, // RDP_NEG_REQ: PROTOCOL_SSL | PROTOCOL_HYBRID
}

// rdpConfirm sends the connection request and reads the confirm; it
// returns a note on the negotiated protocol.
func rdpConfirm(conn io.ReadWriter) (string, error) {
	if _, err := conn.Write(x224Request); err != nil {
		return "", err
	}
	var h [4]byte
	if _, err := io.ReadFull(conn, h[:]); err != nil {
		return "", err
	}
	n := int(h[2])<<8 | int(h[3])
	if h[0] != 3 || n < 7 || n > 512 {
		return "", fmt.Errorf("not a TPKT (first bytes % x)", h)
	}
	b := make([]byte, n-4)
	if _, err := io.ReadFull(conn, b); err != nil {
		return "", err
	}
	if b[1]&0xf0 != 0xd0 {
		return "", fmt.Errorf("X.224 code 0x%02x, not a connection confirm", b[1])
	}
	if len(b) >= 7+8 {
		neg := b[7:]
		v := uint32(neg[4]) | uint32(neg[5])<<8 | uint32(neg[6])<<16 | uint32(neg[7])<<24
		switch neg[0] {
		case 0x02:
			names := map[uint32]string{0: "standard RDP security", 1: "TLS", 2: "CredSSP (NLA)", 8: "RDSTLS"}
			if s, ok := names[v]; ok {
				return ", selected protocol " + s, nil
			}
			return fmt.Sprintf(", selected protocol 0x%x", v), nil
		case 0x03:
			return "", fmt.Errorf("server refused the negotiation (failure code %d)", v)
		}
	}
	return "", nil
}

// sslRequest is PostgreSQL's SSLRequest message (protocol 3, 53.2.9):
// length 8, code 80877103.
var sslRequest = []byte{0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f}

func (p *portCheck) postgresTLS(ctx context.Context, conn net.Conn) (report.Status, string, string) {
	if _, err := conn.Write(sslRequest); err != nil {
		return p.greetingFailure(ctx, "PostgreSQL SSLRequest exchange", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return p.greetingFailure(ctx, "answer to the PostgreSQL SSLRequest", err)
	}
	switch b[0] {
	case 'S':
	case 'N':
		return report.Fail, "the server does not offer TLS (answered N to the SSLRequest)",
			"set ssl = on with ssl_cert_file and ssl_key_file in postgresql.conf, and connect with sslmode=verify-full"
	default:
		return report.Fail, fmt.Sprintf("answer 0x%02x to the SSLRequest: not PostgreSQL", b[0]),
			fmt.Sprintf("check that port %d on %s is PostgreSQL", p.port, p.f.Host)
	}
	_, info, err := p.handshake(conn)
	if err != nil {
		return p.tlsFailure(ctx, info, err)
	}
	detail := "SSLRequest accepted; " + info.String()
	if info.expiresSoon {
		return report.Warn, detail, "renew the certificate of " + p.name() + " before " + info.notAfter.Format(time.DateOnly)
	}
	return report.Pass, detail, ""
}
