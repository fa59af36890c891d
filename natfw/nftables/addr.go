//go:build linux

package nftables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"

	"github.com/managedvm/managedvm/errs"
)

// setAddr adds (add) or removes the address a/32 on the WAN interface,
// through rtnetlink inside the driver's namespace. Adding an address that
// is there and removing one that is not are no-ops. The caller's context
// bounds it: its deadline is the socket's read deadline, and its end
// closes the socket (the error is then the context's code).
func (f *Driver) setAddr(ctx context.Context, add bool, a netip.Addr) (err error) {
	if err := errs.FromContext(ctx, ""); err != nil {
		return err
	}
	c, err := rtnetlink.Dial(f.netlinkConfig())
	if err != nil {
		return fmt.Errorf("rtnetlink socket: %w", err)
	}
	done := bindContext(ctx, c.Close)
	defer func() { err = done(err) }()
	if d, ok := ctx.Deadline(); ok {
		if err := c.SetReadDeadline(d); err != nil {
			return fmt.Errorf("rtnetlink deadline: %w", err)
		}
	}

	msgs, err := c.Execute(&rtnetlink.LinkMessage{
		Family:     syscall.AF_UNSPEC,
		Attributes: &rtnetlink.LinkAttributes{Name: f.wan},
	}, syscall.RTM_GETLINK, netlink.Request)
	var link *rtnetlink.LinkMessage
	if err == nil && len(msgs) == 1 {
		link, _ = msgs[0].(*rtnetlink.LinkMessage)
	}
	switch {
	case errors.Is(err, syscall.ENODEV):
		return fmt.Errorf("interface %q: no such interface", f.wan)
	case err != nil:
		return fmt.Errorf("interface %q: %w", f.wan, err)
	case link == nil:
		return fmt.Errorf("interface %q: unexpected rtnetlink reply", f.wan)
	}

	ip := a.AsSlice()
	req := &rtnetlink.AddressMessage{
		Family:       syscall.AF_INET,
		PrefixLength: 32,
		Scope:        syscall.RT_SCOPE_UNIVERSE,
		Index:        link.Index,
		Attributes:   &rtnetlink.AddressAttributes{Address: ip, Local: ip},
	}
	if add {
		_, err = c.Execute(req, syscall.RTM_NEWADDR, netlink.Request|netlink.Create|netlink.Replace|netlink.Acknowledge)
	} else {
		_, err = c.Execute(req, syscall.RTM_DELADDR, netlink.Request|netlink.Acknowledge)
		if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.ENOENT) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s/32 on %s: %w", map[bool]string{true: "add", false: "remove"}[add], a, f.wan, err)
	}
	return nil
}
