package guest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/report"
)

// Requirements are the OS requirements checked in a guest (a service
// profile's, in enroll.Policy.Requirements). CheckRequirements reports
// every failure, not just the first.
type Requirements struct {
	// Distributions maps a supported distribution ID (os-release ID on
	// Linux, "windows" on Windows) to its minimum version ("" = any). An
	// empty map accepts any distribution.
	Distributions map[string]string
	// MinFreeDiskMiB is the free space needed on DiskPath ("/" or "C:" by
	// default). Zero skips the check.
	MinFreeDiskMiB int64
	DiskPath       string
	// Commands must be present (Linux: command -v; Windows: Get-Command).
	Commands []string
	// Checks are the policy's own checks.
	Checks []RequirementCheck
}

// IsZero reports whether r asks for no check at all (CheckRequirements
// then runs nothing in the guest).
func (r Requirements) IsZero() bool {
	return len(r.Distributions) == 0 && r.MinFreeDiskMiB == 0 && len(r.Commands) == 0 && len(r.Checks) == 0
}

// CheckRequirements runs the OS requirement checks in the guest behind ex
// and reports every row: family, distribution and version, free disk,
// commands, and the policy's own checks. The error is only for checks that
// could not run.
//
// The OS facts (DetectFacts) are asked for only when a check needs
// them: Distributions or Checks. Then the family the guest reports is also
// compared with family (a row of its own). The disk and command checks run
// by the executor's family. Empty requirements run nothing in the guest.
func CheckRequirements(ctx context.Context, ex *Executor, family OSFamily, req Requirements) (report.Report, error) {
	var rep report.Report
	facts := Facts{Family: ex.Family()}
	if len(req.Distributions) > 0 || len(req.Checks) > 0 {
		var err error
		if facts, err = DetectFacts(ctx, ex); err != nil {
			return rep, err
		}
	}
	if family != FamilyUnknown && facts.Family != family {
		rep.Add(report.Check{ID: "os.family", Name: "Guest OS family", Status: report.Fail,
			Detail: fmt.Sprintf("the provider reports %s, the guest is %s", family, facts.Family),
			Fix:    "check the VM's guest OS setting in the hypervisor"})
	}
	if len(req.Distributions) > 0 {
		row := report.Check{ID: "os.distribution", Name: "Supported OS distribution and version", Subject: facts.Name}
		min, ok := req.Distributions[facts.Distribution]
		switch {
		case !ok:
			row.Status, row.Detail = report.Fail, fmt.Sprintf("%s (%s) is not a supported distribution (supported: %s)", limit.Quote(facts.Distribution), facts.Name, supportedList(req.Distributions))
			row.Fix = "enroll a VM running a supported OS"
		case min != "" && compareVersions(facts.Version, min) < 0:
			row.Status, row.Detail = report.Fail, fmt.Sprintf("%s %s is older than the minimum %s", facts.Distribution, facts.Version, min)
			row.Fix = fmt.Sprintf("upgrade the guest OS to %s %s or later", facts.Distribution, min)
		default:
			row.Status, row.Detail = report.Pass, fmt.Sprintf("%s %s", facts.Distribution, facts.Version)
		}
		rep.Add(row)
	}
	if req.MinFreeDiskMiB > 0 {
		row := report.Check{ID: "os.disk", Name: "Free disk space"}
		free, path, err := freeDiskMiB(ctx, ex, facts.Family, req.DiskPath)
		row.Subject = path
		switch {
		case err != nil:
			row.Status, row.Detail, row.Fix = report.Fail, "could not measure free space: "+err.Error(), "make sure df (Linux) or Get-PSDrive (Windows) works for the account"
		case free < req.MinFreeDiskMiB:
			row.Status, row.Detail = report.Fail, fmt.Sprintf("%d MiB free, %d MiB needed", free, req.MinFreeDiskMiB)
			row.Fix = fmt.Sprintf("free at least %d MiB on %s", req.MinFreeDiskMiB-free, path)
		default:
			row.Status, row.Detail = report.Pass, fmt.Sprintf("%d MiB free", free)
		}
		rep.Add(row)
	}
	if len(req.Commands) > 0 {
		missing, err := missingCommands(ctx, ex, facts.Family, req.Commands)
		row := report.Check{ID: "os.commands", Name: "Required commands present"}
		switch {
		case err != nil:
			row.Status, row.Detail = report.Fail, "could not look for the commands: "+err.Error()
		case len(missing) > 0:
			row.Status, row.Detail = report.Fail, "missing: "+strings.Join(missing, ", ")
			row.Fix = "install " + strings.Join(missing, ", ")
		default:
			row.Status, row.Detail = report.Pass, strings.Join(req.Commands, ", ")
		}
		rep.Add(row)
	}
	for _, check := range req.Checks {
		row, err := check(ctx, ex, facts)
		if err != nil {
			return rep, err
		}
		rep.Add(row)
	}
	return rep, nil
}

func supportedList(m map[string]string) string {
	names := make([]string, 0, len(m))
	for k, v := range m {
		if v != "" {
			k += " " + v + "+"
		}
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func freeDiskMiB(ctx context.Context, ex *Executor, family OSFamily, path string) (int64, string, error) {
	if family == Windows {
		if path == "" {
			path = "C:"
		}
		drive := strings.TrimSuffix(strings.TrimSuffix(path, `\`), ":")
		out, err := Output(ctx, ex, Command{Script: "(Get-PSDrive -Name " + PowerShellQuote(drive) + ").Free"})
		if err != nil {
			return 0, path, err
		}
		b, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		if err != nil {
			return 0, path, fmt.Errorf("unexpected output %s", limit.Quote(out))
		}
		return b >> 20, path, nil
	}
	if path == "" {
		path = "/"
	}
	out, err := Output(ctx, ex, Command{Args: []string{"df", "-Pk", path}})
	if err != nil {
		return 0, path, err
	}
	lines := strings.Split(out, "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(lines) < 2 || len(fields) < 4 {
		return 0, path, fmt.Errorf("unexpected df output")
	}
	kib, err := strconv.ParseInt(fields[3], 10, 64)
	if err != nil {
		return 0, path, fmt.Errorf("unexpected df output")
	}
	return kib >> 10, path, nil
}

func missingCommands(ctx context.Context, ex *Executor, family OSFamily, cmds []string) ([]string, error) {
	var cmd Command
	if family == Windows {
		quoted := make([]string, len(cmds))
		for i, c := range cmds {
			quoted[i] = PowerShellQuote(c)
		}
		cmd.Script = "foreach ($c in @(" + strings.Join(quoted, ",") + ")) { if (-not (Get-Command $c -ErrorAction SilentlyContinue)) { $c } }"
	} else {
		cmd.Args = append([]string{"sh", "-c", `for c in "$@"; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done`, "sh"}, cmds...)
	}
	out, err := Output(ctx, ex, cmd)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// compareVersions compares dotted versions numerically where both parts
// are numbers ("9.4" > "9", "10" > "9"), lexically otherwise.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y string
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		xn, xerr := strconv.Atoi(x)
		yn, yerr := strconv.Atoi(y)
		switch {
		case x == y:
			continue
		case xerr == nil && yerr == nil:
			if xn != yn {
				if xn < yn {
					return -1
				}
				return 1
			}
		case x == "":
			return -1
		case y == "":
			return 1
		default:
			return strings.Compare(x, y)
		}
	}
	return 0
}
