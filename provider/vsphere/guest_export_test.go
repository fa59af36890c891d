package vsphere

import (
	"context"

	"github.com/managedvm/managedvm/guest"
)

// GuestExecutorWith is GuestExecutor with the *guest.Executor's options,
// for the conformance suite's Telemetry and DefaultTimeout cases.
func (p *Provider) GuestExecutorWith(ctx context.Context, vmID string, cred guest.Credentials, opts *guest.Options) (*guest.Executor, error) {
	return p.guestExecutor(ctx, vmID, cred, opts)
}
