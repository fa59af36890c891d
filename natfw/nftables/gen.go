//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
)

// genSocket asks the kernel for the nftables ruleset generation of the
// driver's namespace (NFT_MSG_GETGEN). Every committed batch, by anyone,
// moves the generation on, so an unchanged generation means an unchanged
// ruleset: the driver reuses what it last read, and a read that saw the
// generation move is done again (it may have seen half of someone else's
// change).
type genSocket struct {
	mu   sync.Mutex
	c    *netlink.Conn // nil once closed
	raw  syscall.RawConn
	seq  uint32
	buf  []byte
	sent []byte
}

const (
	nfnlSubsysNFTables = 0x0a
	nftMsgNewGen       = 0x0f
	nftMsgGetGen       = 0x10
	nftaGenID          = 1

	// genTimeout bounds the wait for the kernel's answer (the kernel
	// answers at once, so this only matters if netlink is broken).
	genTimeout = 5 * time.Second
)

// openGen opens the socket inside the driver's namespace. mdlayher/netlink
// opens it there (see netlinkConfig) and puts it under the runtime's
// poller, so reads honour a deadline; the request itself is one 20-byte
// message written and read on the raw socket, without the allocations of
// a full Execute, because every read of the table starts with it.
func (f *Driver) openGen() (*genSocket, error) {
	c, err := netlink.Dial(syscall.NETLINK_NETFILTER, f.netlinkConfig())
	if err != nil {
		return nil, fmt.Errorf("netfilter netlink socket: %w", err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("netfilter netlink socket: %w", err)
	}
	return &genSocket{c: c, raw: raw, buf: make([]byte, 4096), sent: make([]byte, 0, 20)}, nil
}

func (g *genSocket) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.c == nil {
		return nil
	}
	err := g.c.Close()
	g.c = nil
	return err
}

// get returns the current ruleset generation.
func (g *genSocket) get() (uint32, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.c == nil {
		return 0, errors.New("generation socket closed")
	}
	if err := g.c.SetReadDeadline(time.Now().Add(genTimeout)); err != nil {
		return 0, fmt.Errorf("getgen deadline: %w", err)
	}
	g.seq++
	seq := g.seq
	msg := g.sent[:0]
	msg = binary.NativeEndian.AppendUint32(msg, 20)
	msg = binary.NativeEndian.AppendUint16(msg, nfnlSubsysNFTables<<8|nftMsgGetGen)
	msg = binary.NativeEndian.AppendUint16(msg, syscall.NLM_F_REQUEST)
	msg = binary.NativeEndian.AppendUint32(msg, seq)
	msg = binary.NativeEndian.AppendUint32(msg, 0)
	msg = append(msg, syscall.AF_UNSPEC, 0, 0, 0) // struct nfgenmsg
	var serr error
	if err := g.raw.Write(func(fd uintptr) bool {
		serr = syscall.Sendto(int(fd), msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
		return serr != syscall.EAGAIN
	}); err != nil {
		return 0, fmt.Errorf("getgen send: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("getgen send: %w", serr)
	}
	for {
		var (
			n    int
			rerr error
		)
		if err := g.raw.Read(func(fd uintptr) bool {
			n, _, rerr = syscall.Recvfrom(int(fd), g.buf, 0)
			return rerr != syscall.EAGAIN
		}); err != nil {
			return 0, fmt.Errorf("getgen receive: %w", err)
		}
		if rerr != nil {
			return 0, fmt.Errorf("getgen receive: %w", rerr)
		}
		msgs, err := syscall.ParseNetlinkMessage(g.buf[:n])
		if err != nil {
			return 0, fmt.Errorf("getgen reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case syscall.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if en := syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data[:4]))); en != 0 {
						return 0, fmt.Errorf("getgen: %w", en)
					}
				}
			case nfnlSubsysNFTables<<8 | nftMsgNewGen:
				attrs := m.Data
				if len(attrs) < 4 {
					return 0, errors.New("getgen: short reply")
				}
				attrs = attrs[4:] // struct nfgenmsg
				for len(attrs) >= 4 {
					l := int(binary.NativeEndian.Uint16(attrs))
					typ := binary.NativeEndian.Uint16(attrs[2:]) & 0x3fff
					if l < 4 || l > len(attrs) {
						break
					}
					if typ == nftaGenID && l >= 8 {
						return binary.BigEndian.Uint32(attrs[4:8]), nil
					}
					step := (l + 3) &^ 3
					if step > len(attrs) {
						break
					}
					attrs = attrs[step:]
				}
				return 0, errors.New("getgen: no generation in reply")
			}
		}
	}
}
