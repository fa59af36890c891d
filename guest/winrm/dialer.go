package winrm

import (
	"context"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

// DialerConfig configures Dialer. The zero value dials HTTPS with NTLM on
// port 5986 and verifies the guest's certificate against the system's
// roots.
type DialerConfig struct {
	// Options tune every executor (certificate verification, HTTP, Basic,
	// timeouts, ...), as for New. Options.Port, when set, is used for
	// every target instead of the port chosen from the target.
	Options *Options
	// OptionsFor, if set, returns the options for one target instead of
	// Options (for example the CA or certificate pin the host application
	// stored for that VM). An error fails the dial with its code.
	OptionsFor func(ctx context.Context, t guest.Target) (*Options, error)
}

// probe is the command Dial runs to authenticate: it prints nothing and
// changes nothing.
var probe = guest.Command{Script: "exit 0"}

// Dialer returns a guest.Dialer (for enroll.Config.Dialer) that reaches
// Windows targets over WinRM at their public IP: HTTPS with NTLM unless
// the options say otherwise. Linux targets are refused with
// errs.Unimplemented; a target without a public IP is errs.InvalidArgument.
//
// The port is Options.Port when set. Otherwise it is the WinRM default of
// the scheme, PortHTTPS (5986) or, with Options.HTTP, PortHTTP (5985),
// and it must be among the target's Ports when the target lists any
// (errs.FailedPrecondition before any network I/O: the NAT would not let
// the connection through, and Dialer never falls back to plain HTTP).
//
// Dial authenticates before it returns, by running one empty PowerShell
// command, so refused credentials are errs.Unauthenticated from Dial (and
// a refused certificate errs.PermissionDenied, an unreachable guest
// errs.Unavailable), as the guest.Dialer contract asks. The executor is
// closed when that check fails.
func Dialer(cfg DialerConfig) guest.DialFunc {
	return func(ctx context.Context, t guest.Target, cred guest.Credentials) (*guest.Executor, error) {
		const op = "winrm.Dialer"
		if t.Family != guest.Windows && t.Family != guest.FamilyUnknown {
			return nil, errs.Errorf(errs.Unimplemented, op, "WinRM reaches Windows guests, not %s", t.Family)
		}
		if !t.PublicIP.IsValid() {
			return nil, errs.New(errs.InvalidArgument, op, "the target has no public IP")
		}
		opts := cfg.Options
		if cfg.OptionsFor != nil {
			var err error
			if opts, err = cfg.OptionsFor(ctx, t); err != nil {
				return nil, errs.WrapOp(op, err)
			}
		}
		var o Options
		if opts != nil {
			o = *opts
		}
		if o.Port == 0 {
			port := uint16(PortHTTPS)
			if o.HTTP {
				port = PortHTTP
			}
			if len(t.Ports) > 0 && !t.HasPort("tcp", port) {
				return nil, errs.Errorf(errs.FailedPrecondition, op, "the target's inbound ports do not include tcp/%d, the WinRM port of %s: open it or set Options.Port", port, scheme(o.HTTP))
			}
			o.Port = int(port)
		}
		ex, err := New(t.PublicIP.String(), cred, &o)
		if err != nil {
			return nil, err
		}
		if _, err := ex.Run(ctx, probe); err != nil {
			_ = ex.Close()
			return nil, err
		}
		return ex, nil
	}
}

func scheme(http bool) string {
	if http {
		return "HTTP"
	}
	return "HTTPS"
}

var _ guest.Dialer = Dialer(DialerConfig{})
