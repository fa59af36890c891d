package hyperv

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/report"
)

// domainAdmins is the SID of a domain's Domain Admins group (RID 512).
var domainAdmins = regexp.MustCompile(`^S-1-5-21-\d+-\d+-\d+-512$`)

// Preflight checks, on every node: that it answers WinRM and runs the
// templates (cluster/1), that it is in the one cluster every node names,
// that the account is a local administrator and not a Domain Admin
// (account/1), and that Options.Switch exists on it (when set); once:
// that TemplatesPath is a CSV's root or inside one and holds .vhdx files.
// It returns an error only when ctx ends; everything else is a row.
// Not checked yet (see PLAN.md): the switch trunking the zone's VLANs, a
// cluster-role operation under this account, integration services in
// each template.
func (d *driver) Preflight(ctx context.Context) (report.Report, error) {
	var r report.Report
	clusters := make([]clusterAnswer, len(d.nodes))
	cerrs := make([]error, len(d.nodes))
	accounts := make([]accountAnswer, len(d.nodes))
	aerrs := make([]error, len(d.nodes))
	idx := map[*nodeConn]int{}
	for i, n := range d.nodes {
		idx[n] = i
	}
	_ = d.eachNode(ctx, func(ctx context.Context, n *nodeConn) error {
		i := idx[n]
		if cerrs[i] = run(ctx, n.ex, n.name, scriptCluster, nil, &clusters[i]); cerrs[i] == nil {
			aerrs[i] = run(ctx, n.ex, n.name, scriptAccount, nil, &accounts[i])
		}
		return nil
	})
	if err := errs.FromContext(ctx, ""); err != nil {
		return report.Report{}, err
	}
	var ref *clusterAnswer
	for i, n := range d.nodes {
		subj := n.name
		if cerrs[i] != nil {
			r.Add(report.Check{ID: "hyperv.winrm", Name: "node answers WinRM (HTTPS 5986, NTLM) and runs PowerShell", Subject: subj, Status: report.Fail,
				Detail: cerrs[i].Error(), Fix: "enable WinRM over HTTPS on the node, trust its certificate, and let the account log on (local administrator)"})
			continue
		}
		r.Add(report.Check{ID: "hyperv.winrm", Name: "node answers WinRM (HTTPS 5986, NTLM) and runs PowerShell", Subject: subj, Status: report.Pass,
			Detail: "answered as " + limit.Quote(clusters[i].Node)})
		c := clusters[i]
		if ref == nil {
			ref = &clusters[i]
		}
		member := slices.ContainsFunc(c.Nodes, func(x wireNode) bool { return strings.EqualFold(x.Name, n.name) })
		switch {
		case !strings.EqualFold(c.Cluster, ref.Cluster):
			r.Add(report.Check{ID: "hyperv.cluster", Name: "the nodes form one failover cluster", Subject: subj, Status: report.Fail,
				Detail: "in cluster " + limit.Quote(c.Cluster) + ", not " + limit.Quote(ref.Cluster), Fix: "list only the nodes of one cluster in Options.Nodes"})
		case !member:
			r.Add(report.Check{ID: "hyperv.cluster", Name: "the nodes form one failover cluster", Subject: subj, Status: report.Fail,
				Detail: "cluster " + limit.Quote(c.Cluster) + " does not list this node", Fix: "check Node.Name (the node's name in the cluster) or add the node to the cluster"})
		default:
			r.Add(report.Check{ID: "hyperv.cluster", Name: "the nodes form one failover cluster", Subject: subj, Status: report.Pass, Detail: "member of " + limit.Quote(c.Cluster)})
		}
		if d.vmSwitch != "" {
			has := slices.ContainsFunc(c.Switches, func(w wireSwitch) bool { return strings.EqualFold(w.Name, d.vmSwitch) })
			ck := report.Check{ID: "hyperv.switch", Name: "the vmSwitch exists on every node", Subject: subj, Status: report.Pass, Detail: limit.Quote(d.vmSwitch) + " present"}
			if !has {
				ck.Status, ck.Detail, ck.Fix = report.Fail, limit.Quote(d.vmSwitch)+" missing", "create the external switch with the same name on every node (New-VMSwitch)"
			}
			r.Add(ck)
		}
		r.Add(accountCheck(subj, accounts[i], aerrs[i]))
	}
	if ref != nil {
		r.Add(d.templatesCSVCheck(*ref))
		r.Add(d.templateFilesCheck(ctx))
	}
	if err := errs.FromContext(ctx, ""); err != nil {
		return report.Report{}, err
	}
	return r, nil
}

func accountCheck(node string, a accountAnswer, err error) report.Check {
	ck := report.Check{ID: "hyperv.account", Name: "the account is local administrator on every node and not a Domain Admin", Subject: node}
	switch {
	case err != nil:
		ck.Status, ck.Detail, ck.Fix = report.Fail, err.Error(), "let the account run PowerShell over WinRM on the node"
	case a.Admin != "True":
		ck.Status, ck.Detail, ck.Fix = report.Fail, limit.Quote(a.User)+" is not in the local Administrators group", "add the service account to the node's local Administrators group"
	case slices.ContainsFunc(a.Groups, domainAdmins.MatchString):
		ck.Status, ck.Detail, ck.Fix = report.Fail, limit.Quote(a.User)+" is in Domain Admins", "use a service account that is not a Domain Admin (local administrator on each node is enough)"
	default:
		ck.Status, ck.Detail = report.Pass, limit.Quote(a.User)+" is a local administrator, not a Domain Admin"
	}
	return ck
}

// templatesCSVCheck: TemplatesPath is a CSV's root or inside one, so
// every node sees the same files.
func (d *driver) templatesCSVCheck(c clusterAnswer) report.Check {
	ck := report.Check{ID: "hyperv.templates.csv", Name: "the template path is on a Cluster Shared Volume", Subject: d.templates}
	low := strings.ToLower(strings.TrimRight(d.templates, `\`))
	for _, v := range c.CSVs {
		root := strings.ToLower(strings.TrimRight(v.Path, `\`))
		if v.Path != "" && (low == root || strings.HasPrefix(low, root+`\`)) {
			ck.Status, ck.Detail = report.Pass, "on "+limit.Quote(v.Name)+" ("+limit.Quote(v.Path)+")"
			return ck
		}
	}
	ck.Status, ck.Detail, ck.Fix = report.Fail, "not under any CSV of cluster "+limit.Quote(c.Cluster), "put the templates on a CSV (C:\\ClusterStorage\\...) and set Options.TemplatesPath to it"
	return ck
}

func (d *driver) templateFilesCheck(ctx context.Context) report.Check {
	ck := report.Check{ID: "hyperv.templates.files", Name: "the template VHDX files exist", Subject: d.templates}
	ts, err := d.Templates(ctx, "")
	switch {
	case err != nil:
		ck.Status, ck.Detail, ck.Fix = report.Fail, err.Error(), "create the directory and copy the template .vhdx files into it"
	case len(ts) == 0:
		ck.Status, ck.Detail, ck.Fix = report.Fail, "no .vhdx file", "copy the template .vhdx files into it"
	default:
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = t.Name
		}
		ck.Status, ck.Detail = report.Pass, strings.Join(names, ", ")
	}
	return ck
}
