package hyperv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"slices"
	"strconv"
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
// (account/1), that Options.Switch exists there, is External and that
// the physical adapter under it filters no VLAN (switch/1), and that a
// cluster-role operation works under the account (rolecheck/1: a
// throw-away VM without disk in Options.VMsPath made a role and removed);
// once: that TemplatesPath and VMsPath are a CSV's root or inside one,
// that TemplatesPath holds .vhdx files, and per template what its sidecar
// NAME.json says of integration services. It returns an error only when
// ctx ends; everything else is a row, each failing one with a Fix.
//
// Whether the physical switch ports trunk Options.VLANs cannot be seen
// from a node: the hyperv.vlans row says what was seen and names them.
func (d *Provider) Preflight(ctx context.Context) (report.Report, error) {
	var r report.Report
	type nodeFacts struct {
		cluster   clusterAnswer
		cerr      error
		account   accountAnswer
		aerr      error
		sw        switchAnswer
		swerr     error
		role      roleCheckAnswer
		roleerr   error
		roleTried bool
	}
	facts := make([]nodeFacts, len(d.nodes))
	idx := map[*nodeConn]int{}
	for i, n := range d.nodes {
		idx[n] = i
	}
	_ = d.eachNode(ctx, func(ctx context.Context, n *nodeConn) error {
		f := &facts[idx[n]]
		if f.cerr = run(ctx, n.ex, n.name, scriptCluster, nil, &f.cluster); f.cerr != nil {
			return nil
		}
		f.aerr = run(ctx, n.ex, n.name, scriptAccount, nil, &f.account)
		if d.vmSwitch != "" {
			f.swerr = run(ctx, n.ex, n.name, scriptSwitch, map[string]string{"Name": d.vmSwitch}, &f.sw)
		}
		if d.vmsPath != "" {
			f.roleTried = true
			name := "managedvm-preflight-" + randomHex(6)
			f.roleerr = run(ctx, n.ex, n.name, scriptRoleCheck, roleCheckParams{Name: name, Dir: d.vmsPath + `\mvm-preflight-` + randomHex(6)}, &f.role)
		}
		return nil
	})
	if err := errs.FromContext(ctx, ""); err != nil {
		return report.Report{}, err
	}
	var ref *clusterAnswer
	for i, n := range d.nodes {
		subj := n.name
		f := facts[i]
		if f.cerr != nil {
			r.Add(report.Check{ID: "hyperv.winrm", Name: "node answers WinRM (HTTPS 5986, NTLM) and runs PowerShell", Subject: subj, Status: report.Fail,
				Detail: f.cerr.Error(), Fix: "enable WinRM over HTTPS on the node, trust its certificate, and let the account log on (local administrator)"})
			continue
		}
		r.Add(report.Check{ID: "hyperv.winrm", Name: "node answers WinRM (HTTPS 5986, NTLM) and runs PowerShell", Subject: subj, Status: report.Pass,
			Detail: "answered as " + limit.Quote(f.cluster.Node)})
		c := f.cluster
		if ref == nil {
			ref = &facts[i].cluster
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
			r.Add(d.switchCheck(subj, f.sw, f.swerr))
			if f.swerr == nil && f.sw.Found == "True" {
				r.Add(d.vlanCheck(subj, f.sw))
			}
		}
		r.Add(accountCheck(subj, f.account, f.aerr))
		r.Add(d.roleCheck(subj, f.roleTried, f.role, f.roleerr))
	}
	if ref != nil {
		r.Add(csvCheck("hyperv.templates.csv", "the template path is on a Cluster Shared Volume", d.templates, "Options.TemplatesPath", *ref))
		if d.vmsPath != "" {
			r.Add(csvCheck("hyperv.vms.csv", "the VM path is on a Cluster Shared Volume", d.vmsPath, "Options.VMsPath", *ref))
		}
		for _, ck := range d.templateChecks(ctx) {
			r.Add(ck)
		}
	}
	if err := errs.FromContext(ctx, ""); err != nil {
		return report.Report{}, err
	}
	return r, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *Provider) switchCheck(node string, a switchAnswer, err error) report.Check {
	ck := report.Check{ID: "hyperv.switch", Name: "the vmSwitch exists on every node and is External", Subject: node}
	switch {
	case err != nil:
		ck.Status, ck.Detail, ck.Fix = report.Fail, err.Error(), "let the account run Get-VMSwitch on the node (Hyper-V Administrators or local administrator)"
	case a.Found != "True":
		ck.Status, ck.Detail, ck.Fix = report.Fail, limit.Quote(d.vmSwitch)+" missing", "create the external switch with the same name on every node (New-VMSwitch -NetAdapterName <trunk NIC>)"
	case a.Type != "External":
		ck.Status, ck.Detail, ck.Fix = report.Fail, limit.Quote(d.vmSwitch)+" is "+limit.Quote(a.Type)+": it reaches no physical network", "make it an External switch bound to the NIC that trunks the VLANs (Set-VMSwitch -NetAdapterName)"
	default:
		ck.Status, ck.Detail = report.Pass, limit.Quote(d.vmSwitch)+" present, External on "+limit.Quote(a.Adapter)
	}
	return ck
}

// vlanCheck: what a node shows of the trunk. An External switch's
// adapter whose own VlanID is set passes that one VLAN only; whether the
// physical switch port trunks the zone's VLANs is not visible from here.
func (d *Provider) vlanCheck(node string, a switchAnswer) report.Check {
	ck := report.Check{ID: "hyperv.vlans", Name: "the vmSwitch trunks the zone's VLANs", Subject: node}
	vl := make([]string, len(d.vlans))
	for i, v := range d.vlans {
		vl[i] = strconv.Itoa(v)
	}
	switch {
	case a.Type != "External":
		ck.Status, ck.Detail, ck.Fix = report.Fail, "the switch is not External", "bind the switch to the trunk NIC (see hyperv.switch)"
	case a.AdapterVlan != "" && a.AdapterVlan != "0":
		ck.Status, ck.Detail, ck.Fix = report.Fail, "adapter "+limit.Quote(a.Adapter)+" filters VLAN "+limit.Quote(a.AdapterVlan)+": the other VLANs never reach the switch",
			"clear the adapter's VLAN ID (Set-NetAdapterAdvancedProperty -Name <NIC> -RegistryKeyword VlanID -RegistryValue 0) and trunk the VLANs on the physical port"
	case len(d.vlans) == 0:
		ck.Status, ck.Detail, ck.Fix = report.Warn, "adapter "+limit.Quote(a.Adapter)+" filters no VLAN; the zone's VLANs are not configured", "set Options.VLANs to the VLANs the VMs use"
	default:
		ck.Status, ck.Detail = report.Pass, "adapter "+limit.Quote(a.Adapter)+" filters no VLAN; VMs are tagged with VLANs "+strings.Join(vl, ", ")+
			" (the physical switch port must trunk them: not visible from the node)"
	}
	return ck
}

func (d *Provider) roleCheck(node string, tried bool, a roleCheckAnswer, err error) report.Check {
	ck := report.Check{ID: "hyperv.role", Name: "the account can make and remove a cluster role on the node", Subject: node}
	switch {
	case !tried:
		ck.Status, ck.Detail, ck.Fix = report.Fail, "Options.VMsPath is not set: the check needs a directory on the VMs CSV", "set Options.VMsPath to a directory on the VMs CSV"
	case err != nil:
		ck.Status, ck.Detail, ck.Fix = report.Fail, err.Error(), "let the account run New-VM and Add-ClusterVirtualMachineRole on the node"
	case a.Error != "":
		ck.Status, ck.Detail = report.Fail, "a throw-away VM could not be made a cluster role and removed: "+limit.Quote(a.Error)
		ck.Fix = "give the account full cluster access (on a node: Grant-ClusterAccess -User DOMAIN\\account -Full) and Hyper-V rights (local administrator)"
	default:
		ck.Status, ck.Detail = report.Pass, "a throw-away VM was made a cluster role and removed"
	}
	return ck
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

// csvCheck: path is a CSV's root or inside one, so every node sees the
// same files.
func csvCheck(id, name, path, option string, c clusterAnswer) report.Check {
	ck := report.Check{ID: id, Name: name, Subject: path}
	low := strings.ToLower(strings.TrimRight(path, `\`))
	for _, v := range c.CSVs {
		root := strings.ToLower(strings.TrimRight(v.Path, `\`))
		if v.Path != "" && (low == root || strings.HasPrefix(low, root+`\`)) {
			ck.Status, ck.Detail = report.Pass, "on "+limit.Quote(v.Name)+" ("+limit.Quote(v.Path)+")"
			return ck
		}
	}
	ck.Status, ck.Detail, ck.Fix = report.Fail, "not under any CSV of cluster "+limit.Quote(c.Cluster), "put it on a CSV (C:\\ClusterStorage\\...) and set "+option+" to it"
	return ck
}

// templateChecks: the template files exist, and each one's sidecar says
// its guest runs the integration services.
func (d *Provider) templateChecks(ctx context.Context) []report.Check {
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
	out := []report.Check{ck}
	for _, t := range ts {
		is := report.Check{ID: "hyperv.templates.is", Name: "the template's guest runs the Hyper-V integration services", Subject: t.Name}
		side := strings.TrimSuffix(t.ID, t.ID[len(t.ID)-5:]) + ".json"
		switch {
		case t.Attributes["sidecar"] == "":
			is.Status, is.Detail = report.Warn, "no sidecar "+limit.Quote(side)+": not known"
			is.Fix = `write {"family":"linux","osName":"...","integrationServices":true} to the sidecar once the template's guest runs them (Linux: hyperv-daemons; Windows: built in)`
		case t.Attributes["sidecar"] != "ok":
			is.Status, is.Detail, is.Fix = report.Fail, "sidecar "+limit.Quote(side)+" is not JSON", "rewrite it as {\"family\":...,\"integrationServices\":true}"
		case t.Attributes["integrationServices"] != "true":
			is.Status, is.Detail, is.Fix = report.Fail, "the sidecar does not say integrationServices true", "install the integration services in the template's guest (Linux: hyperv-daemons, hv_kvp_daemon) and record it in the sidecar"
		default:
			is.Status, is.Detail = report.Pass, "integration services installed ("+limit.Quote(t.OSName)+")"
		}
		out = append(out, is)
	}
	return out
}
