//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// genSocket asks the kernel for the nftables ruleset generation of the
// driver's namespace (NFT_MSG_GETGEN). Every committed batch, by anyone,
// moves the generation on, so an unchanged generation means an unchanged
// ruleset: the driver reuses what it last read, and a read that saw the
// generation move is done again (it may have seen half of someone else's
// change).
type genSocket struct {
	mu  sync.Mutex
	fd  int
	seq uint32
}

const (
	nfnlSubsysNFTables = 0x0a
	nftMsgNewGen       = 0x0f
	nftMsgGetGen       = 0x10
	nftaGenID          = 1
)

// openGen opens the socket inside the driver's namespace.
func (f *Driver) openGen() (*genSocket, error) {
	g := &genSocket{fd: -1}
	err := f.inNetNS(func() error {
		fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("netfilter netlink socket: %w", err)
		}
		if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
			syscall.Close(fd)
			return fmt.Errorf("netfilter netlink bind: %w", err)
		}
		tv := syscall.NsecToTimeval((5 * time.Second).Nanoseconds())
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			syscall.Close(fd)
			return fmt.Errorf("netfilter netlink timeout: %w", err)
		}
		g.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (g *genSocket) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fd < 0 {
		return nil
	}
	err := syscall.Close(g.fd)
	g.fd = -1
	return err
}

// get returns the current ruleset generation.
func (g *genSocket) get() (uint32, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fd < 0 {
		return 0, errors.New("generation socket closed")
	}
	g.seq++
	seq := g.seq
	msg := make([]byte, 0, 20)
	msg = binary.NativeEndian.AppendUint32(msg, 20)
	msg = binary.NativeEndian.AppendUint16(msg, nfnlSubsysNFTables<<8|nftMsgGetGen)
	msg = binary.NativeEndian.AppendUint16(msg, syscall.NLM_F_REQUEST)
	msg = binary.NativeEndian.AppendUint32(msg, seq)
	msg = binary.NativeEndian.AppendUint32(msg, 0)
	msg = append(msg, syscall.AF_UNSPEC, 0, 0, 0) // struct nfgenmsg
	if err := syscall.Sendto(g.fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("getgen send: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := syscall.Recvfrom(g.fd, buf, 0)
		if err != nil {
			return 0, fmt.Errorf("getgen receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
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
