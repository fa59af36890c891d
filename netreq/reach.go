package netreq

import (
	"context"
	"net/netip"
	"strings"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/report"
)

// maxReachMessage bounds the error of a Reachability check.
const maxReachMessage = 1024

// Reachability is the post-enrollment check for enroll.Policy.Reachability:
// Probe of VMFlows(public, ports) with opts (nil: the defaults). Check
// returns nil when no port fails (a Warn, such as WinRM over HTTP, is not
// a failure), and otherwise an Unavailable error naming every port that
// did not answer and why, at most 1 KiB.
func Reachability(opts *ProbeOptions) enroll.Reachability { return reach{opts} }

type reach struct{ opts *ProbeOptions }

func (r reach) Check(ctx context.Context, public netip.Addr, ports []natfw.Port) error {
	rep := Probe(ctx, VMFlows(public, ports), r.opts)
	var bad []string
	for i, c := range rep.Checks {
		if c.Status == report.Fail {
			bad = append(bad, ports[i].String()+" on "+public.String()+": "+c.Detail)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	msg := strings.Join(bad, "; ")
	if len(msg) > maxReachMessage {
		msg = msg[:maxReachMessage] + "…"
	}
	return errs.New(errs.Unavailable, "netreq.Reachability", msg)
}
