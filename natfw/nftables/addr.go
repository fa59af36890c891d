//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	"github.com/vishvananda/netns"
)

// inNetNS runs fn on a thread that is inside the driver's network namespace
// (or directly, when the driver works in the caller's namespace). Sockets
// fn opens stay in that namespace.
func (f *Driver) inNetNS(fn func() error) error {
	if f.ns == nil {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(*f.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime ends it with this
			// goroutine instead of reusing a thread in the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("restore network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// setAddr adds (add) or removes the address a/32 on the WAN interface,
// through rtnetlink inside the driver's namespace. Adding an address that
// is there and removing one that is not are no-ops.
func (f *Driver) setAddr(add bool, a netip.Addr) error {
	return f.inNetNS(func() error {
		ifi, err := net.InterfaceByName(f.wan)
		if err != nil {
			return fmt.Errorf("interface %q: %w", f.wan, err)
		}
		fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("rtnetlink socket: %w", err)
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
			return fmt.Errorf("rtnetlink bind: %w", err)
		}

		typ := uint16(syscall.RTM_DELADDR)
		flags := uint16(syscall.NLM_F_REQUEST | syscall.NLM_F_ACK)
		if add {
			typ = syscall.RTM_NEWADDR
			flags |= syscall.NLM_F_CREATE | syscall.NLM_F_REPLACE
		}
		const seq = 1
		ip := a.As4()
		msg := make([]byte, 0, 40)
		msg = binary.NativeEndian.AppendUint32(msg, 0) // length, set below
		msg = binary.NativeEndian.AppendUint16(msg, typ)
		msg = binary.NativeEndian.AppendUint16(msg, flags)
		msg = binary.NativeEndian.AppendUint32(msg, seq)
		msg = binary.NativeEndian.AppendUint32(msg, 0)
		// struct ifaddrmsg
		msg = append(msg, syscall.AF_INET, 32, 0, syscall.RT_SCOPE_UNIVERSE)
		msg = binary.NativeEndian.AppendUint32(msg, uint32(ifi.Index))
		for _, attr := range []uint16{syscall.IFA_LOCAL, syscall.IFA_ADDRESS} {
			msg = binary.NativeEndian.AppendUint16(msg, 8)
			msg = binary.NativeEndian.AppendUint16(msg, attr)
			msg = append(msg, ip[:]...)
		}
		binary.NativeEndian.PutUint32(msg, uint32(len(msg)))
		if err := syscall.Sendto(fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
			return fmt.Errorf("rtnetlink send: %w", err)
		}
		buf := make([]byte, 8192)
		for {
			n, _, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil {
				return fmt.Errorf("rtnetlink receive: %w", err)
			}
			msgs, err := syscall.ParseNetlinkMessage(buf[:n])
			if err != nil {
				return fmt.Errorf("rtnetlink reply: %w", err)
			}
			for _, m := range msgs {
				if m.Header.Seq != seq || m.Header.Type != syscall.NLMSG_ERROR || len(m.Data) < 4 {
					continue
				}
				errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data[:4])))
				switch {
				case errno == 0:
					return nil
				case !add && (errno == syscall.EADDRNOTAVAIL || errno == syscall.ENOENT):
					return nil
				default:
					return fmt.Errorf("%s %s/32 on %s: %w", map[bool]string{true: "add", false: "remove"}[add], a, f.wan, errno)
				}
			}
		}
	})
}
