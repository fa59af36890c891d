// Package rdpx224 is a fake of the first exchange of an RDP server
// (MS-RDPBCGR 2.2.1.1 and 2.2.1.2): it reads an X.224 Connection Request
// in a TPKT and answers with an X.224 Connection Confirm carrying an RDP
// Negotiation Response (or Failure), then closes the connection. It is
// what a probe of TCP 3389 sees before TLS/CredSSP starts.
package rdpx224

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
)

// Protocols of the negotiation (requestedProtocols/selectedProtocol).
const (
	ProtocolRDP    = 0x0
	ProtocolSSL    = 0x1
	ProtocolHybrid = 0x2
)

// Server is a running fake.
type Server struct {
	ln         net.Listener
	wg         sync.WaitGroup
	selected   uint32
	disconnect bool
}

// Start listens on 127.0.0.1 and answers every connection: a
// negotiation response selecting selected when the client requested it
// (or when selected is ProtocolRDP), otherwise a negotiation failure with
// code 5 (HYBRID_REQUIRED_BY_SERVER), as an NLA-only Windows host sends.
func Start(selected uint32) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, selected: selected}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// StartDisconnect starts a server that answers every connection request
// with an X.224 Disconnect Request (code 0x80), as a server refusing the
// connection outright does.
func StartDisconnect() (*Server, error) {
	s, err := Start(ProtocolRDP)
	if err == nil {
		s.disconnect = true
	}
	return s, err
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil || h[0] != 3 {
		return
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < 11 || n > 1024 {
		return
	}
	b := make([]byte, n-4)
	if _, err := io.ReadFull(c, b); err != nil || b[1]&0xf0 != 0xe0 {
		return // not a connection request
	}
	var requested uint32
	if li := int(b[0]); li+1 <= len(b) && li >= 14 && b[7] == 0x01 {
		requested = binary.LittleEndian.Uint32(b[11:15])
	}
	if s.disconnect {
		_, _ = c.Write([]byte{0x03, 0x00, 0x00, 0x0b, 0x06, 0x80, 0x00, 0x00, 0x12, 0x34, 0x00})
		return
	}
	// TPKT (4) + X.224 CC (7) + negotiation (8) = 19.
	out := []byte{0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00}
	if s.selected == ProtocolRDP || requested&s.selected != 0 {
		out = append(out, 0x02, 0x00, 0x08, 0x00)
		out = binary.LittleEndian.AppendUint32(out, s.selected)
	} else {
		out = append(out, 0x03, 0x00, 0x08, 0x00)
		out = binary.LittleEndian.AppendUint32(out, 5) // HYBRID_REQUIRED_BY_SERVER
	}
	_, _ = c.Write(out)
}
