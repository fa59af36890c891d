package ssh

import (
	"context"
	"net"
	"strconv"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

// DialerConfig configures Dialer.
type DialerConfig struct {
	// HostKeys returns the host-key policy for a target (for example
	// KnownHosts with the keys the host application stored for the VM, or
	// TrustOnFirstUse with a callback that stores the learned key).
	// Required.
	HostKeys func(ctx context.Context, t guest.Target) (HostKeyPolicy, error)
	// Port is the SSH port (default 22).
	Port uint16
	// Options tune every executor.
	Options *Options
}

// Dialer returns a guest.Dialer (for enroll.Config.Dialer) that reaches
// Linux targets over SSH at their public IP. Non-Linux targets are refused with errs.Unimplemented.
func Dialer(cfg DialerConfig) guest.DialFunc {
	return func(ctx context.Context, t guest.Target, cred guest.Credentials) (*guest.Executor, error) {
		const op = "ssh.Dialer"
		if t.Family != guest.Linux && t.Family != guest.FamilyUnknown {
			return nil, errs.Errorf(errs.Unimplemented, op, "SSH reaches Linux guests, not %s", t.Family)
		}
		if !t.PublicIP.IsValid() {
			return nil, errs.New(errs.InvalidArgument, op, "the target has no public IP")
		}
		if cfg.HostKeys == nil {
			return nil, errs.New(errs.InvalidArgument, op, "DialerConfig.HostKeys is nil")
		}
		hk, err := cfg.HostKeys(ctx, t)
		if err != nil {
			return nil, errs.WrapOp(op, err)
		}
		port := cfg.Port
		if port == 0 {
			port = 22
			for _, p := range t.Ports {
				if p.Protocol == "tcp" && p.Number == 22 {
					port = p.Number
				}
			}
		}
		ex, err := Dial(ctx, Config{Addr: net.JoinHostPort(t.PublicIP.String(), strconv.Itoa(int(port))), Credentials: cred, HostKeys: hk}, cfg.Options)
		if err != nil {
			return nil, err
		}
		return ex, nil
	}
}

var _ guest.Dialer = Dialer(DialerConfig{})
