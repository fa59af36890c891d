//go:build linux

package nftables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"

	"github.com/managedvm/managedvm/errs"
)

// forgetConnections deletes the conntrack entries of connections
// translated to or from public inside the driver's namespace (inbound:
// original destination public; outbound: reply destination public), so
// that connections established through a removed rule stop flowing instead
// of living on in conntrack. It returns how many entries it deleted.
//
// The ctnetlink socket is closed when ctx ends (cancelled, or its deadline
// passed), which unblocks a read in progress; the error is then the
// context's Canceled or DeadlineExceeded. ti-mo/conntrack v0.6.0 does not
// expose the socket's read deadline, so a deadline works through the same
// close.
func (f *Driver) forgetConnections(ctx context.Context, public netip.Addr) (deleted int, err error) {
	if err := errs.FromContext(ctx, ""); err != nil {
		return 0, err
	}
	c, err := conntrack.Dial(f.netlinkConfig())
	if err != nil {
		return 0, fmt.Errorf("ctnetlink socket: %w", err)
	}
	done := bindContext(ctx, c.Close)
	defer func() { err = done(err) }()

	// A dump walks the host's whole conntrack hash (10-20 ms even for an
	// empty namespace): skip it when the namespace tracks nothing. The
	// count is the namespace's own.
	st, err := c.StatsGlobal()
	if err != nil {
		return 0, fmt.Errorf("ctnetlink stats: %w", err)
	}
	if st.Entries == 0 {
		return 0, nil
	}
	// Dump first, then delete: deleting while dumping skips entries.
	flows, err := c.DumpFilter(conntrack.NewFilter().Family(netfilter.ProtoIPv4), nil)
	if err != nil {
		return 0, fmt.Errorf("ctnetlink dump: %w", err)
	}
	for _, fl := range flows {
		if !tupleHas(fl.TupleOrig, public) && !tupleHas(fl.TupleReply, public) {
			continue
		}
		err := c.Delete(conntrack.Flow{TupleOrig: fl.TupleOrig, Zone: fl.Zone})
		if errors.Is(err, syscall.ENOENT) {
			continue // ended meanwhile
		}
		if err != nil {
			return deleted, fmt.Errorf("ctnetlink delete: %w", err)
		}
		deleted++
	}
	return deleted, nil
}

// tupleHas reports whether a conntrack tuple's source or destination is a.
func tupleHas(t conntrack.Tuple, a netip.Addr) bool {
	return t.IP.SourceAddress == a || t.IP.DestinationAddress == a
}
