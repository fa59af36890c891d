//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"syscall"
)

// ctnetlink (NETLINK_NETFILTER, subsystem CTNETLINK) message types and
// attributes.
const (
	nfnlSubsysCTNetlink = 0x01
	ipctnlMsgCTGet      = 1
	ipctnlMsgCTDelete   = 2

	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaTupleIP    = 1
	ctaIPv4Src    = 1
	ctaIPv4Dst    = 2

	nlaTypeMask = 0x3fff
)

// forgetConnections deletes the conntrack entries of connections
// translated to or from public inside the driver's namespace (inbound:
// original destination public; outbound: reply destination public), so
// that connections established through a removed rule stop flowing instead
// of living on in conntrack. It returns how many entries it deleted.
func (f *Driver) forgetConnections(public netip.Addr) (int, error) {
	var deleted int
	err := f.inNetNS(func() error {
		// A dump walks the host's whole conntrack hash (10-20 ms even for
		// an empty namespace): skip it when the namespace tracks nothing.
		// The count is per namespace; no file means no conntrack at all.
		if b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count"); errors.Is(err, fs.ErrNotExist) ||
			(err == nil && strings.TrimSpace(string(b)) == "0") {
			return nil
		}
		fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("ctnetlink socket: %w", err)
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
			return fmt.Errorf("ctnetlink bind: %w", err)
		}
		// Dump first, then delete: deleting while dumping skips entries.
		var tuples [][]byte
		err = ctRequest(fd, ipctnlMsgCTGet, syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP, nil, 1, func(data []byte) {
			orig := nlaFind(data, ctaTupleOrig)
			reply := nlaFind(data, ctaTupleReply)
			if orig == nil {
				return
			}
			if tupleHas(orig, public) || tupleHas(reply, public) {
				tuples = append(tuples, nlaRaw(data, ctaTupleOrig))
			}
		})
		if err != nil {
			return err
		}
		for i, t := range tuples {
			err := ctRequest(fd, ipctnlMsgCTDelete, syscall.NLM_F_REQUEST|syscall.NLM_F_ACK, t, uint32(2+i), nil)
			if errors.Is(err, syscall.ENOENT) {
				continue // ended meanwhile
			}
			if err != nil {
				return err
			}
			deleted++
		}
		return nil
	})
	return deleted, err
}

// ctRequest sends one ctnetlink request with body after the nfgenmsg
// header, and hands each reply's attributes to fn until the request is
// done (NLMSG_DONE for a dump, the ack otherwise).
func ctRequest(fd int, typ uint16, flags uint16, body []byte, seq uint32, fn func(attrs []byte)) error {
	msg := make([]byte, 0, 20+len(body))
	msg = binary.NativeEndian.AppendUint32(msg, uint32(20+len(body)))
	msg = binary.NativeEndian.AppendUint16(msg, nfnlSubsysCTNetlink<<8|typ)
	msg = binary.NativeEndian.AppendUint16(msg, flags)
	msg = binary.NativeEndian.AppendUint32(msg, seq)
	msg = binary.NativeEndian.AppendUint32(msg, 0)
	msg = append(msg, syscall.AF_INET, 0, 0, 0) // struct nfgenmsg
	msg = append(msg, body...)
	if err := syscall.Sendto(fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return fmt.Errorf("ctnetlink send: %w", err)
	}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("ctnetlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("ctnetlink reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case syscall.NLMSG_DONE:
				return nil
			case syscall.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return errors.New("ctnetlink: short error reply")
				}
				if en := syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data[:4]))); en != 0 {
					return fmt.Errorf("ctnetlink: %w", en)
				}
				return nil // the ack
			default:
				if fn != nil && len(m.Data) >= 4 {
					fn(m.Data[4:])
				}
			}
		}
	}
}

// nlaRaw returns the whole attribute typ (header included) of a list.
func nlaRaw(attrs []byte, typ uint16) []byte {
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs))
		if l < 4 || l > len(attrs) {
			return nil
		}
		if binary.NativeEndian.Uint16(attrs[2:])&nlaTypeMask == typ {
			return attrs[:l]
		}
		step := (l + 3) &^ 3
		if step > len(attrs) {
			return nil
		}
		attrs = attrs[step:]
	}
	return nil
}

// nlaFind returns the payload of attribute typ of a list.
func nlaFind(attrs []byte, typ uint16) []byte {
	if a := nlaRaw(attrs, typ); a != nil {
		return a[4:]
	}
	return nil
}

// tupleHas reports whether a conntrack tuple's source or destination is a.
func tupleHas(tuple []byte, a netip.Addr) bool {
	ip := nlaFind(tuple, ctaTupleIP)
	if ip == nil {
		return false
	}
	for _, typ := range []uint16{ctaIPv4Src, ctaIPv4Dst} {
		if v := nlaFind(ip, typ); len(v) == 4 && netip.AddrFrom4([4]byte(v)) == a {
			return true
		}
	}
	return false
}
