//go:build linux

package nftables

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/mdlayher/netlink"

	"github.com/managedvm/managedvm/errs"
)

// netlinkConfig opens netlink sockets in the driver's namespace:
// mdlayher/netlink creates them on a locked OS thread of its own that it
// switches into the namespace and back (and never hands back to the
// scheduler in the wrong one), so no thread of ours changes namespace.
func (f *Driver) netlinkConfig() *netlink.Config {
	cfg := &netlink.Config{}
	if f.ns != nil {
		cfg.NetNS = int(*f.ns)
	}
	return cfg
}

// bindContext ties one netlink connection's use to ctx: close is called
// when ctx ends (cancelled, or its deadline passed), which unblocks a
// read in progress. done stops that and must be called when the
// connection is no longer used (it then calls close itself), and maps
// an error the connection returned because ctx ended to the context's
// Canceled or DeadlineExceeded.
func bindContext(ctx context.Context, close func() error) (done func(err error) error) {
	stop := context.AfterFunc(ctx, func() { _ = close() })
	return func(err error) error {
		if stop() {
			_ = close()
		}
		return ctxErr(ctx, err)
	}
}

// ctxErr returns the context's error in place of err when ctx ended, or
// when err is a read deadline that was ctx's own.
func ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return errs.FromContext(ctx, "")
	}
	if d, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		return errs.Wrap(errs.DeadlineExceeded, "", context.DeadlineExceeded)
	}
	return err
}
