package tasks

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/report"
)

// Requirement checks for guest.Requirements.Checks, built on the facts
// guest.DetectFacts gathers (package manager, init system), so a policy
// can refuse guests the native tasks cannot configure.

// RequirePackageManager passes when the guest's package manager is one of
// allowed (default: the ones Package supports, apt, dnf, yum and zypper).
func RequirePackageManager(allowed ...string) guest.RequirementCheck {
	if len(allowed) == 0 {
		allowed = []string{"apt", "dnf", "yum", "zypper"}
	}
	return func(_ context.Context, _ *guest.Executor, f guest.Facts) (report.Check, error) {
		c := report.Check{ID: "os.package-manager", Name: "Supported package manager", Subject: f.Name}
		switch {
		case f.Family == guest.Windows:
			c.Status, c.Detail = report.Pass, "not checked on Windows"
		case slices.Contains(allowed, f.PackageManager):
			c.Status, c.Detail = report.Pass, show(f.PackageManager)
		case f.PackageManager == "":
			c.Status, c.Detail = report.Fail, "no package manager found"
			c.Fix = "use a distribution with " + strings.Join(allowed, ", ")
		default:
			c.Status, c.Detail = report.Fail, fmt.Sprintf("%s is not supported (supported: %s)", show(f.PackageManager), strings.Join(allowed, ", "))
			c.Fix = "use a distribution with " + strings.Join(allowed, ", ")
		}
		return c, nil
	}
}

// RequireInitSystem passes when the guest's init system is one of allowed
// (default: systemd and sysvinit, which Service handles fully).
func RequireInitSystem(allowed ...string) guest.RequirementCheck {
	if len(allowed) == 0 {
		allowed = []string{"systemd", "sysvinit"}
	}
	return func(_ context.Context, _ *guest.Executor, f guest.Facts) (report.Check, error) {
		c := report.Check{ID: "os.init-system", Name: "Supported init system", Subject: f.Name}
		switch {
		case f.Family == guest.Windows:
			c.Status, c.Detail = report.Pass, "not checked on Windows"
		case slices.Contains(allowed, f.InitSystem):
			c.Status, c.Detail = report.Pass, show(f.InitSystem)
		default:
			name := "unknown"
			if f.InitSystem != "" {
				name = show(f.InitSystem)
			}
			c.Status, c.Detail = report.Fail, fmt.Sprintf("init system %s is not supported (supported: %s)", name, strings.Join(allowed, ", "))
			c.Fix = "use a guest whose init system is one of " + strings.Join(allowed, ", ")
		}
		return c, nil
	}
}
