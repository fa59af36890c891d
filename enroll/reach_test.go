package enroll_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
)

type reachFunc func(ctx context.Context, public netip.Addr, ports []natfw.Port) error

func (f reachFunc) Check(ctx context.Context, public netip.Addr, ports []natfw.Port) error {
	return f(ctx, public, ports)
}

// Policy.Reachability runs once the NAT exists; its failure fails the
// firewall step, which is rolled back, and the error names the port.
func TestReachabilityCheck(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	var calls int
	fail := true
	o := w.orchestrator("i1", func(c *enroll.Config, opts *enroll.Options) {
		opts.Retries = -1
		c.Policy.Reachability = reachFunc(func(ctx context.Context, public netip.Addr, ports []natfw.Port) error {
			calls++
			rule, err := w.fw.Get(ctx, w.key(0).String())
			if err != nil || rule.Public != public || !slices.Equal(ports, natfw.LinuxPorts()) {
				t.Errorf("checked %s %v; rule %+v, %v", public, ports, rule, err)
			}
			if fail {
				return errors.New("tcp/22 on " + public.String() + ": connection refused")
			}
			return nil
		})
	})
	_, err := o.Enroll(ctx, w.request(0, ""))
	testkit.WantCode(t, "enroll with a port that does not answer", err, errs.Unavailable)
	if err == nil || !strings.Contains(err.Error(), "tcp/22 on ") || !strings.Contains(err.Error(), "do not answer") {
		t.Fatalf("error %v does not say which port did not answer", err)
	}
	if calls != 1 {
		t.Errorf("%d checks, want 1", calls)
	}
	if _, err := w.fw.Get(ctx, w.key(0).String()); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("NAT rule left after the failed check: %v", err)
	}
	rec, err := w.db.Get(ctx, w.key(0))
	if err != nil || rec.State != cmdb.Failed || rec.FailedStep != enroll.StepFirewall {
		t.Errorf("record %+v, %v; want failed at %s", rec, err, enroll.StepFirewall)
	}
	w.checkInvariants(t)

	fail = false
	res, err := o.Enroll(ctx, w.request(0, "again"))
	if err != nil || res.State != cmdb.Enrolled {
		t.Fatalf("enroll with answering ports: %+v, %v", res, err)
	}
	w.checkInvariants(t)
}
