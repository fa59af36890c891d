package ovirt_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	ovirtsdk "github.com/ovirt/go-ovirt"

	ovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
)

func newServer(t testing.TB, o *ovirt.Options) *ovirt.Server {
	t.Helper()
	s := ovirt.New(o)
	t.Cleanup(s.Close)
	return s
}

func connect(t testing.TB, s *ovirt.Server) *ovirtsdk.Connection {
	t.Helper()
	c, err := ovirtsdk.NewConnectionBuilder().URL(s.URL()).Username(s.User()).Password(s.Password()).
		CACert(s.CACertPEM()).Timeout(30 * time.Second).Build()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// manual gives a server on a manual clock with one-second steps.
func manual(t testing.TB) (*ovirt.Server, *ovirt.ManualClock) {
	clk := ovirt.NewManualClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	return newServer(t, &ovirt.Options{Now: clk.Now, Step: time.Second}), clk
}

func TestLoginAndAPIRoot(t *testing.T) {
	s := newServer(t, nil)
	c := connect(t, s)
	resp, err := c.SystemService().Get().Send()
	if err != nil {
		t.Fatal(err)
	}
	api := resp.MustApi()
	v := api.MustProductInfo().MustVersion()
	if v.MustMajor() != 4 || v.MustMinor() != 5 || v.MustFullVersion() != "4.5.5-1.el9" {
		t.Errorf("version %d.%d %q", v.MustMajor(), v.MustMinor(), v.MustFullVersion())
	}
	if _, err := c.SystemService().VmsService().List().Send(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Logins != 1 || st.FailedLogins != 0 {
		t.Errorf("stats %+v, want one login for two calls", st)
	}
	if st := s.Stats(); st.Connections < 3 {
		t.Errorf("%d connections: go-ovirt makes one per request", st.Connections)
	}
}

func TestLoginRefused(t *testing.T) {
	s := newServer(t, &ovirt.Options{User: "ops@corp.example", Password: "pw"})
	for _, tc := range []struct{ user, pass, want string }{
		{"ops@corp.example", "wrong", "The username or password is incorrect"},
		{"other@corp.example", "pw", "The username or password is incorrect"},
		{"ops@internal", "pw", "No valid profile found in credentials"},
		{"ops", "pw", "No valid profile found in credentials"},
	} {
		c, err := ovirtsdk.NewConnectionBuilder().URL(s.URL()).Username(tc.user).Password(tc.pass).CACert(s.CACertPEM()).Build()
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.SystemService().Get().Send()
		var ae *ovirtsdk.AuthError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "access_denied") {
			t.Errorf("%s: %T %v, want *AuthError with %q", tc.user, err, err, tc.want)
		}
	}
	if st := s.Stats(); st.Logins != 0 || st.FailedLogins != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestTLSVerified(t *testing.T) {
	s := newServer(t, nil)
	c, err := ovirtsdk.NewConnectionBuilder().URL(s.URL()).Username(s.User()).Password(s.Password()).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SystemService().Get().Send(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the engine CA: %v, want a certificate error", err)
	}
	// The CA as operators fetch it from the engine (before they trust it).
	u := s.BaseURL() + "/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA"
	resp, err := s.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(s.CACertPEM()) || !strings.HasPrefix(string(body), "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("pki-resource: %d %q", resp.StatusCode, body)
	}
	c2, err := ovirtsdk.NewConnectionBuilder().URL(s.URL()).Username(s.User()).Password(s.Password()).CACert(body).Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.SystemService().Get().Send(); err != nil {
		t.Fatalf("with the fetched CA: %v", err)
	}
}

func TestInventoryDiscovery(t *testing.T) {
	s := newServer(t, nil)
	d := s.Defaults()
	sys := connect(t, s).SystemService()

	dcs := sys.DataCentersService().List().MustSend().MustDataCenters().Slice()
	if len(dcs) != 1 || dcs[0].MustId() != d.DataCenterID || dcs[0].MustStatus() != ovirtsdk.DATACENTERSTATUS_UP {
		t.Fatalf("data centers %v", dcs)
	}
	cls := sys.ClustersService().List().MustSend().MustClusters().Slice()
	if len(cls) != 1 || cls[0].MustDataCenter().MustId() != d.DataCenterID || cls[0].MustVersion().MustMajor() != 4 {
		t.Fatalf("clusters %v", cls)
	}
	sds := sys.StorageDomainsService().List().MustSend().MustStorageDomains().Slice()
	types := map[string]string{}
	for _, sd := range sds {
		types[sd.MustName()] = string(sd.MustType()) + "/" + string(sd.MustStatus())
		if sd.MustName() == "vmstore" {
			if dcs := sd.MustDataCenters().Slice(); len(dcs) != 1 || dcs[0].MustId() != d.DataCenterID {
				t.Errorf("vmstore attached to %v", dcs)
			}
		}
	}
	if fmt.Sprint(types) != "map[ovirt-image-repository:image/unattached tplstore:data/active vmstore:data/active]" {
		t.Errorf("storage domains %v", types)
	}
	att := sys.DataCentersService().DataCenterService(d.DataCenterID).StorageDomainsService().List().MustSend().MustStorageDomains().Slice()
	if len(att) != 2 {
		t.Errorf("%d storage domains attached to the data center, want 2", len(att))
	}
	nets := sys.NetworksService().List().MustSend().MustNetworks().Slice()
	vlans := map[string]int64{}
	for _, n := range nets {
		if vl, ok := n.Vlan(); ok {
			vlans[n.MustName()] = vl.MustId()
		} else {
			vlans[n.MustName()] = 0
		}
	}
	if fmt.Sprint(vlans) != "map[ovirtmgmt:0 vlan100:100]" {
		t.Errorf("networks %v", vlans)
	}
	profs := sys.VnicProfilesService().List().MustSend().MustProfiles().Slice()
	if len(profs) != 2 {
		t.Fatalf("profiles %v", profs)
	}
	for _, p := range profs {
		if p.MustId() == d.VLANProfileID && p.MustNetwork().MustId() != d.VLANNetworkID {
			t.Errorf("vlan100 profile on network %s", p.MustNetwork().MustId())
		}
	}
	tpls := sys.TemplatesService().List().MustSend().MustTemplates().Slice()
	if len(tpls) != 2 || tpls[0].MustName() != "Blank" || tpls[1].MustName() != "centos9" || tpls[1].MustStatus() != ovirtsdk.TEMPLATESTATUS_OK {
		t.Fatalf("templates %v", tpls)
	}
	das := sys.TemplatesService().TemplateService(d.TemplateID).DiskAttachmentsService().List().MustSend().MustAttachments().Slice()
	if len(das) != 1 || das[0].MustDisk().MustId() != d.TemplateDiskID {
		t.Fatalf("template disk attachments %v", das)
	}
	one := sys.TemplatesService().List().Search("name=centos*").MustSend().MustTemplates().Slice()
	if len(one) != 1 || one[0].MustCluster().MustId() != d.ClusterID {
		t.Errorf("search name=centos*: %v", one)
	}
}

func TestListPagingAndFollow(t *testing.T) {
	s := newServer(t, nil)
	ids, err := s.AddVMs("web", 250)
	if err != nil {
		t.Fatal(err)
	}
	vms := connect(t, s).SystemService().VmsService()
	seen := map[string]bool{}
	for page := 1; ; page++ {
		got := vms.List().Search(fmt.Sprintf("page %d", page)).Max(100).Follow("reported_devices,nics").MustSend().MustVms().Slice()
		for _, v := range got {
			if seen[v.MustId()] {
				t.Fatalf("page %d repeats %s", page, v.MustName())
			}
			seen[v.MustId()] = true
			rds := v.MustReportedDevices().Slice()
			if len(rds) != 1 || len(rds[0].MustIps().Slice()) != 1 {
				t.Fatalf("%s: reported devices %v", v.MustName(), rds)
			}
			nics := v.MustNics().Slice()
			if len(nics) != 1 || nics[0].MustVnicProfile().MustId() != s.Defaults().ManagementProfileID || nics[0].MustMac().MustAddress() == "" {
				t.Fatalf("%s: nics %v", v.MustName(), nics)
			}
			if v.MustStatus() != ovirtsdk.VMSTATUS_UP || v.MustFqdn() == "" || v.MustGuestOperatingSystem().MustDistribution() == "" {
				t.Fatalf("%s: status %s fqdn %q", v.MustName(), v.MustStatus(), v.MustFqdn())
			}
			if v.MustCpu().MustTopology().MustSockets() != 2 || v.MustMemory() != 2<<30 {
				t.Fatalf("%s: cpu/memory", v.MustName())
			}
		}
		if len(got) < 100 {
			if page != 3 || len(got) != 50 {
				t.Fatalf("page %d has %d", page, len(got))
			}
			break
		}
	}
	if len(seen) != len(ids) {
		t.Fatalf("%d VMs over the pages, want %d", len(seen), len(ids))
	}
	// Without follow there are links, no inline devices.
	v := vms.VmService(ids[0]).Get().MustSend().MustVm()
	if rd, ok := v.ReportedDevices(); ok && len(rd.Slice()) != 0 {
		t.Error("reported devices inline without follow")
	}
	rds := vms.VmService(ids[0]).ReportedDevicesService().List().MustSend().MustReportedDevice().Slice()
	if len(rds) != 1 {
		t.Errorf("reporteddevices: %v", rds)
	}
	// Search terms, max, sort.
	if n := len(vms.List().Search("name=web-0001*").MustSend().MustVms().Slice()); n != 10 {
		t.Errorf("name=web-0001*: %d", n)
	}
	if n := len(vms.List().Max(7).MustSend().MustVms().Slice()); n != 7 {
		t.Errorf("max 7: %d", n)
	}
	if n := len(vms.List().Search("status=down").MustSend().MustVms().Slice()); n != 0 {
		t.Errorf("status=down: %d", n)
	}
	if n := len(vms.List().Search("status=Up and cluster=Default and host=host1").MustSend().MustVms().Slice()); n != 250 {
		t.Errorf("status=Up and cluster and host: %d", n)
	}
	last := vms.List().Search("sortby name desc").Max(1).MustSend().MustVms().Slice()
	if len(last) != 1 || last[0].MustName() != "web-00250" {
		t.Errorf("sortby name desc: %v", last)
	}
	if _, err := vms.List().Search("nosuchfield=1").Send(); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bad search: %v", err)
	}
	// Pages shift when the inventory changes between requests.
	p1 := vms.List().Search("page 1").Max(100).MustSend().MustVms().Slice()
	if _, err := s.AddVM(ovirt.VMSpec{Name: "aaa-first"}); err != nil {
		t.Fatal(err)
	}
	p2 := vms.List().Search("page 2").Max(100).MustSend().MustVms().Slice()
	if p2[0].MustId() != p1[99].MustId() {
		t.Errorf("page 2 starts with %s, want the shifted %s", p2[0].MustName(), p1[99].MustName())
	}
}

// addRequest builds the add of a VM from the default template.
func addRequest(s *ovirt.Server, name string, sd string) *ovirtsdk.Vm {
	d := s.Defaults()
	return ovirtsdk.NewVmBuilder().Name(name).
		Cluster(ovirtsdk.NewClusterBuilder().Id(d.ClusterID).MustBuild()).
		Template(ovirtsdk.NewTemplateBuilder().Id(d.TemplateID).MustBuild()).
		Memory(4 << 30).
		Cpu(ovirtsdk.NewCpuBuilder().Topology(ovirtsdk.NewCpuTopologyBuilder().Sockets(4).Cores(1).Threads(1).MustBuild()).MustBuild()).
		DiskAttachmentsOfAny(ovirtsdk.NewDiskAttachmentBuilder().Disk(
			ovirtsdk.NewDiskBuilder().Id(d.TemplateDiskID).Format(ovirtsdk.DISKFORMAT_COW).Sparse(true).
				StorageDomainsOfAny(ovirtsdk.NewStorageDomainBuilder().Id(sd).MustBuild()).MustBuild()).MustBuild()).
		Initialization(ovirtsdk.NewInitializationBuilder().HostName(name + ".example.test").UserName("cloud-user").
			AuthorizedSshKeys("ssh-ed25519 AAAAC3Nza test").CustomScript("#cloud-config\npackages: [qemu-guest-agent]\n").
			RootPassword("root-secret").MustBuild()).
		MustBuild()
}

func status(t *testing.T, vs *ovirtsdk.VmService) ovirtsdk.VmStatus {
	t.Helper()
	return vs.Get().MustSend().MustVm().MustStatus()
}

func codes(s *ovirt.Server, vmID string) []int {
	var out []int
	for _, e := range s.Events() {
		if e.VMID == vmID {
			out = append(out, e.Code)
		}
	}
	return out
}

func TestProvisionLifecycle(t *testing.T) {
	s, clk := manual(t)
	d := s.Defaults()
	sys := connect(t, s).SystemService()
	vms := sys.VmsService()

	resp, err := vms.Add().Vm(addRequest(s, "db1", d.VMStorageDomainID)).Clone(true).Query("correlation_id", "req-db1").Send()
	if err != nil {
		t.Fatal(err)
	}
	v := resp.MustVm()
	id := v.MustId()
	if v.MustStatus() != ovirtsdk.VMSTATUS_IMAGE_LOCKED || v.MustName() != "db1" {
		t.Fatalf("added: %s %s", v.MustName(), v.MustStatus())
	}
	in, _ := s.VM(id)
	if !in.Clone || in.CorrelationID != "req-db1" || in.Memory != 4<<30 || in.Sockets != 4 ||
		fmt.Sprint(in.DiskDomains) != "["+d.VMStorageDomainID+"]" || fmt.Sprint(in.NICProfiles) != "["+d.ManagementProfileID+"]" {
		t.Fatalf("stored %+v", in)
	}
	if in.Init == nil || in.Init.HostName != "db1.example.test" || in.Init.UserName != "cloud-user" ||
		in.Init.AuthorizedSSHKeys != "ssh-ed25519 AAAAC3Nza test" || !strings.HasPrefix(in.Init.CustomScript, "#cloud-config") || in.Init.RootPassword != "root-secret" {
		t.Fatalf("initialization %+v", in.Init)
	}
	got := vms.VmService(id).Get().MustSend().MustVm().MustInitialization()
	if got.MustHostName() != "db1.example.test" {
		t.Error("initialization not served back")
	}
	if _, ok := got.RootPassword(); ok {
		t.Error("root_password served back")
	}
	jobs := sys.JobsService().List().Search("correlation_id=req-db1").MustSend().MustJobs().Slice()
	if len(jobs) != 1 || jobs[0].MustStatus() != ovirtsdk.JOBSTATUS_STARTED || !strings.Contains(jobs[0].MustDescription(), "Creating VM db1 from Template centos9") {
		t.Fatalf("jobs %v", jobs)
	}
	if n := len(sys.JobsService().List().Search("correlation_id=other").MustSend().MustJobs().Slice()); n != 0 {
		t.Errorf("%d jobs for another correlation id", n)
	}
	// A clone stays image_locked for CloneSteps (5) steps; actions are refused.
	clk.Advance(4 * time.Second)
	if st := status(t, vms.VmService(id)); st != ovirtsdk.VMSTATUS_IMAGE_LOCKED {
		t.Fatalf("after 4 steps: %s", st)
	}
	_, err = vms.VmService(id).Start().Send()
	var ce *ovirtsdk.ConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "Cannot run VM: VM is locked. Please try again in a few minutes.") {
		t.Fatalf("start while locked: %T %v", err, err)
	}
	clk.Advance(time.Second)
	if st := status(t, vms.VmService(id)); st != ovirtsdk.VMSTATUS_DOWN {
		t.Fatalf("after 5 steps: %s", st)
	}
	if j := sys.JobsService().List().Search("correlation_id=req-db1").MustSend().MustJobs().Slice()[0]; j.MustStatus() != ovirtsdk.JOBSTATUS_FINISHED {
		t.Fatalf("job %s", j.MustStatus())
	}
	// Start with cloud-init: wait_for_launch, powering_up, up.
	if _, err := vms.VmService(id).Start().UseCloudInit(true).Header("Correlation-Id", "req-db1-start").Send(); err != nil {
		t.Fatal(err)
	}
	if j := s.Jobs("req-db1-start"); len(j) != 1 || j[0].Description != "Launching VM db1" {
		t.Errorf("start job by the Correlation-Id header: %v", j)
	}
	for _, want := range []ovirtsdk.VmStatus{ovirtsdk.VMSTATUS_WAIT_FOR_LAUNCH, ovirtsdk.VMSTATUS_POWERING_UP, ovirtsdk.VMSTATUS_UP} {
		if st := status(t, vms.VmService(id)); st != want {
			t.Fatalf("status %s, want %s", st, want)
		}
		clk.Advance(time.Second)
	}
	if in, _ := s.VM(id); !in.StartedCloudInit {
		t.Error("use_cloud_init not recorded")
	}
	// The agent reports two steps after up: one step after the loop, none yet.
	one := vms.VmService(id).Get().Follow("reported_devices").MustSend().MustVm()
	if rd := one.MustReportedDevices().Slice(); len(rd) != 0 {
		t.Fatalf("devices before the agent reported: %v", rd)
	}
	if _, ok := one.Fqdn(); ok {
		t.Fatal("fqdn before the agent reported")
	}
	clk.Advance(time.Second)
	one = vms.VmService(id).Get().Follow("reported_devices").MustSend().MustVm()
	rd := one.MustReportedDevices().Slice()
	if len(rd) != 1 || len(rd[0].MustIps().Slice()) != 1 || one.MustFqdn() != "db1.example.test" {
		t.Fatalf("after the agent: %v fqdn %v", rd, one.MustFqdn())
	}
	ip := rd[0].MustIps().Slice()[0]
	if _, err := netip.ParseAddr(ip.MustAddress()); err != nil || ip.MustVersion() != ovirtsdk.IPVERSION_V4 {
		t.Errorf("ip %q %s", ip.MustAddress(), ip.MustVersion())
	}
	// Stop: powering_down, then down with 61.
	if _, err := vms.VmService(id).Stop().Send(); err != nil {
		t.Fatal(err)
	}
	if st := status(t, vms.VmService(id)); st != ovirtsdk.VMSTATUS_POWERING_DOWN {
		t.Fatalf("after stop: %s", st)
	}
	clk.Advance(time.Second)
	if st := status(t, vms.VmService(id)); st != ovirtsdk.VMSTATUS_DOWN {
		t.Fatalf("after stop and a step: %s", st)
	}
	if _, err := vms.VmService(id).Stop().Send(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "VM is not running") {
		t.Fatalf("stop when down: %v", err)
	}
	// Remove: 113 now, image_locked for a step, then gone (36).
	if _, err := vms.VmService(id).Remove().Query("correlation_id", "req-db1-rm").Send(); err != nil {
		t.Fatal(err)
	}
	if st := status(t, vms.VmService(id)); st != ovirtsdk.VMSTATUS_IMAGE_LOCKED {
		t.Fatalf("removing: %s", st)
	}
	clk.Advance(time.Second)
	_, err = vms.VmService(id).Get().Send()
	var nf *ovirtsdk.NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("after removal: %T %v", err, err)
	}
	if got := fmt.Sprint(codes(s, id)); got != "[34 53 153 934 61 113 36]" {
		t.Errorf("events %s", got)
	}
	for _, e := range s.Events() {
		if e.VMID == id && (e.Code == 34 || e.Code == 53) && e.CorrelationID != "req-db1" {
			t.Errorf("event %d has correlation id %q", e.Code, e.CorrelationID)
		}
	}
}

func TestShutdownAndThinAdd(t *testing.T) {
	s, clk := manual(t)
	d := s.Defaults()
	vms := connect(t, s).SystemService().VmsService()
	// Thin (no clone): disks stay where the template's are, lock one step.
	v := vms.Add().Vm(addRequest(s, "thin1", d.TemplateStorageID)).MustSend().MustVm()
	clk.Advance(time.Second)
	if st := status(t, vms.VmService(v.MustId())); st != ovirtsdk.VMSTATUS_DOWN {
		t.Fatalf("thin after a step: %s", st)
	}
	vms.VmService(v.MustId()).Start().MustSend()
	clk.Advance(2 * time.Second)
	vms.VmService(v.MustId()).Shutdown().MustSend()
	if st := status(t, vms.VmService(v.MustId())); st != ovirtsdk.VMSTATUS_POWERING_DOWN {
		t.Fatalf("shutdown: %s", st)
	}
	clk.Advance(time.Second)
	if st := status(t, vms.VmService(v.MustId())); st != ovirtsdk.VMSTATUS_DOWN {
		t.Fatalf("shutdown and a step: %s", st)
	}
	// Thin on a domain without a copy of the template's disk is refused.
	_, err := vms.Add().Vm(addRequest(s, "thin2", d.VMStorageDomainID)).Send()
	var ce *ovirtsdk.ConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "does not exist on Storage Domain vmstore") {
		t.Fatalf("thin on vmstore: %v", err)
	}
	if err := s.CopyTemplateDisk(d.TemplateID, d.VMStorageDomainID); err != nil {
		t.Fatal(err)
	}
	if _, err := vms.Add().Vm(addRequest(s, "thin2", d.VMStorageDomainID)).Send(); err != nil {
		t.Fatalf("thin on vmstore after the copy: %v", err)
	}
}

func TestAddRefused(t *testing.T) {
	s := newServer(t, nil)
	d := s.Defaults()
	vms := connect(t, s).SystemService().VmsService()
	if _, err := vms.Add().Vm(addRequest(s, "dup", d.VMStorageDomainID)).Clone(true).Send(); err != nil {
		t.Fatal(err)
	}
	var ce *ovirtsdk.ConflictError
	var nf *ovirtsdk.NotFoundError
	for _, tc := range []struct {
		name string
		vm   *ovirtsdk.Vm
		q    map[string]string
		want string
		as   any
	}{
		{"duplicate", addRequest(s, "dup", d.VMStorageDomainID), nil, "The VM name is already in use", &ce},
		{"no cluster", ovirtsdk.NewVmBuilder().Name("x").Template(ovirtsdk.NewTemplateBuilder().Id(d.TemplateID).MustBuild()).MustBuild(), nil, "Vm [cluster.id|name] required for add", nil},
		{"no template", ovirtsdk.NewVmBuilder().Name("x").Cluster(ovirtsdk.NewClusterBuilder().Name("Default").MustBuild()).MustBuild(), nil, "Vm [template.id|name] required for add", nil},
		{"bad name", addRequest(s, "a b", d.VMStorageDomainID), nil, "special characters", nil},
		{"long name", addRequest(s, strings.Repeat("n", 65), d.VMStorageDomainID), nil, "too long", nil},
		{"bad correlation", addRequest(s, "x1", d.VMStorageDomainID), map[string]string{"correlation_id": "a b"}, "Correlation ID is invalid", nil},
		{"long correlation", addRequest(s, "x2", d.VMStorageDomainID), map[string]string{"correlation_id": strings.Repeat("c", 51)}, "Correlation ID is invalid", nil},
		{"image domain", addRequest(s, "x3", d.ImageStorageDomainID), map[string]string{"clone": "true"}, "is not a data domain", &ce},
		{"unknown disk", ovirtsdk.NewVmBuilder().Name("x4").Cluster(ovirtsdk.NewClusterBuilder().Id(d.ClusterID).MustBuild()).
			Template(ovirtsdk.NewTemplateBuilder().Id(d.TemplateID).MustBuild()).
			DiskAttachmentsOfAny(ovirtsdk.NewDiskAttachmentBuilder().Disk(ovirtsdk.NewDiskBuilder().Id("nope").MustBuild()).MustBuild()).MustBuild(), nil, "404", &nf},
	} {
		req := vms.Add().Vm(tc.vm)
		for k, v := range tc.q {
			req.Query(k, v)
		}
		_, err := req.Send()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
			continue
		}
		switch as := tc.as.(type) {
		case **ovirtsdk.ConflictError:
			if !errors.As(err, as) {
				t.Errorf("%s: %T, want *ConflictError", tc.name, err)
			}
		case **ovirtsdk.NotFoundError:
			if !errors.As(err, as) {
				t.Errorf("%s: %T, want *NotFoundError", tc.name, err)
			}
		}
	}
	if err := s.SetStorageDomainStatus(d.VMStorageDomainID, "maintenance"); err != nil {
		t.Fatal(err)
	}
	if _, err := vms.Add().Vm(addRequest(s, "x5", d.VMStorageDomainID)).Clone(true).Send(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "status is maintenance") {
		t.Errorf("domain in maintenance: %v", err)
	}
	if got := len(s.VMs()); got != 1 {
		t.Errorf("%d VMs after refused adds, want 1", got)
	}
}

func TestCopyFailure(t *testing.T) {
	s, clk := manual(t)
	d := s.Defaults()
	sys := connect(t, s).SystemService()
	s.FailNextCopies(1)
	v := sys.VmsService().Add().Vm(addRequest(s, "doomed", d.VMStorageDomainID)).Clone(true).Query("correlation_id", "req-doomed").MustSend().MustVm()
	clk.Advance(5 * time.Second)
	_, err := sys.VmsService().VmService(v.MustId()).Get().Send()
	var nf *ovirtsdk.NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("failed copy leaves the VM: %v", err)
	}
	jobs := sys.JobsService().List().Search("correlation_id=req-doomed").MustSend().MustJobs().Slice()
	if len(jobs) != 1 || jobs[0].MustStatus() != ovirtsdk.JOBSTATUS_FAILED {
		t.Fatalf("jobs %v", jobs)
	}
	if got := fmt.Sprint(codes(s, v.MustId())); got != "[34 60]" {
		t.Errorf("events %s", got)
	}
	// Only the next copy failed.
	v2 := sys.VmsService().Add().Vm(addRequest(s, "fine", d.VMStorageDomainID)).Clone(true).MustSend().MustVm()
	clk.Advance(5 * time.Second)
	if st := status(t, sys.VmsService().VmService(v2.MustId())); st != ovirtsdk.VMSTATUS_DOWN {
		t.Fatalf("the copy after: %s", st)
	}
}

func TestNICs(t *testing.T) {
	s, _ := manual(t)
	d := s.Defaults()
	vms := connect(t, s).SystemService().VmsService()
	id, err := s.AddVM(ovirt.VMSpec{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	ns := vms.VmService(id).NicsService()
	nics := ns.List().MustSend().MustNics().Slice()
	if len(nics) != 1 {
		t.Fatalf("nics %v", nics)
	}
	upd := ovirtsdk.NewNicBuilder().VnicProfile(ovirtsdk.NewVnicProfileBuilder().Id(d.VLANProfileID).MustBuild()).MustBuild()
	if _, err := ns.NicService(nics[0].MustId()).Update().Nic(upd).Send(); err != nil {
		t.Fatal(err)
	}
	if in, _ := s.VM(id); fmt.Sprint(in.NICProfiles) != "["+d.VLANProfileID+"]" {
		t.Errorf("profiles %v", in.NICProfiles)
	}
	add := ovirtsdk.NewNicBuilder().Name("nic2").VnicProfile(ovirtsdk.NewVnicProfileBuilder().Id(d.ManagementProfileID).MustBuild()).MustBuild()
	if _, err := ns.Add().Nic(add).Send(); err != nil {
		t.Fatal(err)
	}
	if n := len(ns.List().MustSend().MustNics().Slice()); n != 2 {
		t.Errorf("%d nics", n)
	}
	if got := fmt.Sprint(codes(s, id)); got != "[34 53 934]" {
		t.Errorf("events %s", got)
	}
}

func TestEventsFromIndex(t *testing.T) {
	s, clk := manual(t)
	ev := connect(t, s).SystemService().EventsService()
	start := s.LastEventIndex()
	var ids []string
	for i := 0; i < 5; i++ {
		id, err := s.AddVM(ovirt.VMSpec{Name: fmt.Sprintf("e%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		clk.Advance(time.Minute)
	}
	got := ev.List().From(start).MustSend().MustEvents().Slice()
	if len(got) != 10 {
		t.Fatalf("%d events after %d, want 10", len(got), start)
	}
	for i, e := range got {
		if e.MustIndex() <= start || (i > 0 && e.MustIndex() >= got[i-1].MustIndex()) {
			t.Fatalf("event %d index %d: want > %d, newest first", i, e.MustIndex(), start)
		}
		if e.MustId() != fmt.Sprint(e.MustIndex()) || e.MustSeverity() != ovirtsdk.LOGSEVERITY_NORMAL || e.MustOrigin() != "oVirt" {
			t.Fatalf("event %v", e)
		}
	}
	if got[0].MustCode() != 53 || got[0].MustVm().MustId() != ids[4] || got[0].MustCluster().MustId() != s.Defaults().ClusterID {
		t.Errorf("newest %d on %v", got[0].MustCode(), got[0].MustVm().MustId())
	}
	// max with from: the newest max events above from (sorted first, then cut).
	two := ev.List().From(start).Max(2).MustSend().MustEvents().Slice()
	if len(two) != 2 || two[0].MustIndex() != got[0].MustIndex() {
		t.Errorf("from+max: %v", two)
	}
	// search by type.
	adds := ev.List().From(start).Search("type=34").MustSend().MustEvents().Slice()
	if len(adds) != 5 {
		t.Errorf("type=34: %d", len(adds))
	}
	if n := len(ev.List().From(start).Search("type=34 or type=53").MustSend().MustEvents().Slice()); n != 10 {
		t.Errorf("type=34 or type=53: %d", n)
	}
	// A purge moves the oldest kept index past older cursors.
	cut := got[len(got)-1].MustTime().Add(2 * time.Minute)
	oldest := s.PurgeEventsBefore(cut)
	if oldest <= start+4 {
		t.Fatalf("oldest after purge %d", oldest)
	}
	left := ev.List().From(start).MustSend().MustEvents().Slice()
	if len(left) != 6 || left[len(left)-1].MustIndex() != oldest {
		t.Errorf("after purge from %d: %d events, oldest %d (want 6, %d)", start, len(left), left[len(left)-1].MustIndex(), oldest)
	}
	if _, err := ev.EventService(fmt.Sprint(start + 1)).Get().Send(); err == nil {
		t.Error("purged event still served")
	}
	if o := s.PurgeEventsThrough(oldest); o != oldest+1 {
		t.Errorf("PurgeEventsThrough: oldest %d, want %d", o, oldest+1)
	}
}

func TestDuplicateSuppression(t *testing.T) {
	s, clk := manual(t)
	id, err := s.AddVM(ovirt.VMSpec{Name: "d1", Status: ovirt.StatusUp})
	if err != nil {
		t.Fatal(err)
	}
	s.SuppressDuplicates(30 * time.Second)
	for i, a := range []string{"10.9.0.1", "10.9.0.2", "10.9.0.3"} {
		if err := s.SetIPs(id, netip.MustParseAddr(a)); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			clk.Advance(31 * time.Second)
		}
	}
	n := 0
	for _, c := range codes(s, id) {
		if c == 934 {
			n++
		}
	}
	// one when the agent first reported, then 10.9.0.1 and 10.9.0.3
	if n != 3 || s.Suppressed() != 1 {
		t.Errorf("%d 934 events, %d suppressed; want 3 and 1", n, s.Suppressed())
	}
	s.SetIPChangeEvents(false)
	clk.Advance(time.Hour)
	_ = s.SetIPs(id, netip.MustParseAddr("10.9.0.9"))
	after := 0
	for _, c := range codes(s, id) {
		if c == 934 {
			after++
		}
	}
	if after != n {
		t.Errorf("%d 934 events with IP events off, want %d", after, n)
	}
	vm := connect(t, s).SystemService().VmsService().VmService(id).Get().Follow("reported_devices").MustSend().MustVm()
	if a := vm.MustReportedDevices().Slice()[0].MustIps().Slice()[0].MustAddress(); a != "10.9.0.9" {
		t.Errorf("address %s", a)
	}
}

func TestInventoryBehindTheClientsBack(t *testing.T) {
	s := newServer(t, nil)
	vms := connect(t, s).SystemService().VmsService()
	id, err := s.AddVM(ovirt.VMSpec{Name: "b1", Status: ovirt.StatusUp, IPs: []netip.Addr{netip.MustParseAddr("192.0.2.7")}, FQDN: "b1.corp"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RenameVM(id, "b1-renamed"); err != nil {
		t.Fatal(err)
	}
	v := vms.VmService(id).Get().Follow("reported_devices").MustSend().MustVm()
	if v.MustName() != "b1-renamed" || v.MustFqdn() != "b1.corp" || v.MustReportedDevices().Slice()[0].MustIps().Slice()[0].MustAddress() != "192.0.2.7" {
		t.Errorf("vm %s %s", v.MustName(), v.MustFqdn())
	}
	if n := len(vms.List().Search("ip=192.0.2.7").MustSend().MustVms().Slice()); n != 1 {
		t.Errorf("ip search: %d", n)
	}
	if err := s.MigrateVM(id); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAgent(id, false, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := vms.VmService(id).Get().MustSend().MustVm().Fqdn(); ok {
		t.Error("fqdn with the agent stopped")
	}
	if err := s.RemoveVM(id); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(codes(s, id)); got != "[34 53 153 934 35 63 113 36]" {
		t.Errorf("events %s", got)
	}
	tid, _, err := s.AddTemplate(ovirt.TemplateSpec{Name: "win2022", ProfileID: s.Defaults().VLANProfileID})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.RenameTemplate(tid, "win2022-v2")
	_ = s.SetTemplateStatus(tid, "locked")
	ts := connect(t, s).SystemService().TemplatesService()
	tp := ts.TemplateService(tid).Get().MustSend().MustTemplate()
	if tp.MustName() != "win2022-v2" || tp.MustStatus() != ovirtsdk.TEMPLATESTATUS_LOCKED {
		t.Errorf("template %s %s", tp.MustName(), tp.MustStatus())
	}
	_ = s.RemoveTemplate(tid)
	if _, err := ts.TemplateService(tid).Get().Send(); err == nil {
		t.Error("removed template served")
	}
}

func TestCallCounts(t *testing.T) {
	s := newServer(t, nil)
	ids, _ := s.AddVMs("c", 3)
	vms := connect(t, s).SystemService().VmsService()
	vms.List().MustSend()
	for _, id := range ids {
		vms.VmService(id).ReportedDevicesService().List().MustSend()
	}
	c := s.Calls()
	if c["GET /vms"] != 1 || c["GET /vms/{id}/reporteddevices"] != 3 || c["POST /ovirt-engine/sso/oauth/token"] != 1 {
		t.Errorf("calls %v", c)
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 {
		t.Error("ResetCalls")
	}
}

// login gets a bearer token over the SSO endpoint.
func login(t *testing.T, s *ovirt.Server) string { t.Helper(); return loginTB(t, s) }

func loginTB(t testing.TB, s *ovirt.Server) string {
	t.Helper()
	f := url.Values{"grant_type": {"password"}, "scope": {"ovirt-app-api"}, "username": {s.User()}, "password": {s.Password()}}
	resp, err := s.Client().PostForm(s.BaseURL()+"/ovirt-engine/sso/oauth/token", f)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	i := strings.Index(string(b), `"access_token":"`)
	if resp.StatusCode != 200 || i < 0 {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	rest := string(b)[i+len(`"access_token":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func do(t *testing.T, s *ovirt.Server, method, path string, hdr map[string]string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.BaseURL()+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestRawProtocol(t *testing.T) {
	s := newServer(t, nil)
	tok := login(t, s)
	auth := map[string]string{"Authorization": "Bearer " + tok, "Version": "4", "Accept": "application/xml"}
	if code, ct, body := do(t, s, "GET", "/ovirt-engine/api/vms", auth); code != 200 || ct != "application/xml" || !strings.HasPrefix(body, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<vms>") {
		t.Errorf("vms: %d %s %.40s", code, ct, body)
	}
	if code, ct, body := do(t, s, "GET", "/ovirt-engine/api/vms", map[string]string{"Version": "4"}); code != 401 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "<title>Error</title>") {
		t.Errorf("no token: %d %s %s", code, ct, body)
	}
	if code, _, _ := do(t, s, "GET", "/ovirt-engine/api/vms", map[string]string{"Authorization": "Bearer nope"}); code != 401 {
		t.Errorf("unknown token: %d", code)
	}
	if code, _, _ := do(t, s, "GET", "/ovirt-engine/api/vms", map[string]string{"Authorization": "Bearer " + tok, "Version": "3"}); code != 400 {
		t.Errorf("Version 3: %d", code)
	}
	if code, _, _ := do(t, s, "GET", "/ovirt-engine/api/vms", map[string]string{"Authorization": "Bearer " + tok, "Accept": "application/json"}); code != 406 {
		t.Errorf("Accept json: %d", code)
	}
	if code, _, body := do(t, s, "GET", "/ovirt-engine/api/vms/00000000-1111-2222-3333-444444444444", auth); code != 404 || body != "" {
		t.Errorf("unknown VM: %d %q", code, body)
	}
	if code, _, _ := do(t, s, "PATCH", "/ovirt-engine/api/vms", auth); code != 405 {
		t.Errorf("PATCH /vms: %d", code)
	}
	if code, _, _ := do(t, s, "GET", "/ovirt-engine/api/nosuch", auth); code != 404 {
		t.Errorf("unknown collection: %d", code)
	}
	if code, _, body := do(t, s, "POST", "/ovirt-engine/api/vms", auth); code != 400 || !strings.Contains(body, "<fault>") {
		t.Errorf("add without a body: %d %s", code, body)
	}
	resp, err := s.Client().PostForm(s.BaseURL()+"/ovirt-engine/sso/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"ovirt-app-api"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"error_code":"unsupported_grant_type"`) {
		t.Errorf("grant: %d %s", resp.StatusCode, b)
	}
}

func TestLogout(t *testing.T) {
	s := newServer(t, nil)
	c := connect(t, s)
	c.SystemService().Get().MustSend()
	// go-ovirt's Close sends an empty token: nothing is revoked.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Logouts != 0 || st.EmptyLogouts != 1 {
		t.Errorf("after go-ovirt Close: %+v", st)
	}
	tok := login(t, s)
	auth := map[string]string{"Authorization": "Bearer " + tok}
	resp, err := s.Client().PostForm(s.BaseURL()+"/ovirt-engine/services/sso-logout", url.Values{"scope": {""}, "token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _, _ := do(t, s, "GET", "/ovirt-engine/api", auth); code != 401 {
		t.Errorf("revoked token: %d", code)
	}
	if st := s.Stats(); st.Logouts != 1 {
		t.Errorf("logouts %d", st.Logouts)
	}
}

func TestExpiredTokenIsHTML(t *testing.T) {
	s := newServer(t, nil)
	c := connect(t, s)
	c.SystemService().Get().MustSend()
	s.ExpireTokens()
	_, err := c.SystemService().VmsService().List().Send()
	var pe *ovirtsdk.ResponseParseError
	if !errors.As(err, &pe) || pe.Code != 401 || !strings.Contains(string(pe.Body()), "invalid_grant") {
		t.Fatalf("expired token: %T %v", err, err)
	}
	var ae *ovirtsdk.AuthError
	if errors.As(err, &ae) {
		t.Error("an expired token gave *AuthError; the engine's HTML page gives *ResponseParseError")
	}
	// A new connection logs in again and works.
	if _, err := connect(t, s).SystemService().Get().Send(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Logins != 2 {
		t.Errorf("logins %d", st.Logins)
	}
}

func TestTokenTTL(t *testing.T) {
	clk := ovirt.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newServer(t, &ovirt.Options{Now: clk.Now, TokenTTL: time.Hour})
	c := connect(t, s)
	c.SystemService().Get().MustSend()
	clk.Advance(time.Hour)
	var pe *ovirtsdk.ResponseParseError
	if _, err := c.SystemService().Get().Send(); !errors.As(err, &pe) {
		t.Fatalf("after the TTL: %v", err)
	}

	s2 := newServer(t, &ovirt.Options{Now: clk.Now, TokenIdle: 30 * time.Minute})
	c2 := connect(t, s2)
	for i := 0; i < 4; i++ { // used every 20 minutes: stays alive
		if _, err := c2.SystemService().Get().Send(); err != nil {
			t.Fatalf("in use: %v", err)
		}
		clk.Advance(20 * time.Minute)
	}
	clk.Advance(10 * time.Minute)
	if _, err := c2.SystemService().Get().Send(); !errors.As(err, &pe) || pe.Code != 401 {
		t.Fatalf("idle 30 minutes: %v", err)
	}
}

func TestRestart(t *testing.T) {
	s, clk := manual(t)
	c := connect(t, s)
	c.SystemService().Get().MustSend()
	c.SystemService().VmsService().Add().Vm(addRequest(s, "during", s.Defaults().VMStorageDomainID)).Clone(true).Query("correlation_id", "req-during").MustSend()
	before := s.LastEventIndex()
	s.Restart(10 * time.Second)
	if j := s.Jobs("req-during"); len(j) != 1 || j[0].Status != "unknown" {
		t.Errorf("job across the restart: %v", j)
	}
	if ev := s.Events(); ev[len(ev)-1].Code != 2 {
		t.Errorf("while down the last event is %d, want 2 (stopping)", ev[len(ev)-1].Code)
	}
	var pe *ovirtsdk.ResponseParseError
	if _, err := c.SystemService().Get().Send(); !errors.As(err, &pe) || pe.Code != 503 {
		t.Fatalf("while restarting: %T %v", err, err)
	}
	clk.Advance(10 * time.Second)
	if _, err := c.SystemService().Get().Send(); !errors.As(err, &pe) || pe.Code != 401 {
		t.Fatalf("old token after restart: %T %v", err, err)
	}
	c2 := connect(t, s)
	ev := c2.SystemService().EventsService().List().From(before).MustSend().MustEvents().Slice()
	var got []int64
	for _, e := range ev {
		got = append(got, e.MustCode())
	}
	// newest first: the add finished after the engine was back
	if fmt.Sprint(got) != "[53 1 2]" {
		t.Errorf("restart events %v", got)
	}
	if ev[0].MustTime().Before(ev[1].MustTime()) {
		t.Error("the add finished before the engine was back")
	}
}

func TestConflictSwitches(t *testing.T) {
	s := newServer(t, nil)
	id, _ := s.AddVM(ovirt.VMSpec{Name: "l1"})
	vms := connect(t, s).SystemService().VmsService()
	var ce *ovirtsdk.ConflictError

	rm := s.FaultVMLocked("POST", "/vms/*/start", "run", 1)
	defer rm()
	if _, err := vms.VmService(id).Start().Send(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "Cannot run VM: VM is locked") || ce.Code != 409 {
		t.Fatalf("FaultVMLocked: %T %v", err, err)
	}
	unlock := s.LockVM(id)
	for _, send := range []func() error{
		func() error { _, err := vms.VmService(id).Start().Send(); return err },
		func() error { _, err := vms.VmService(id).Remove().Send(); return err },
	} {
		if err := send(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "Related operation is currently in progress. Please try again later.") {
			t.Fatalf("locked VM: %T %v", err, err)
		}
	}
	unlock()
	if _, err := vms.VmService(id).Start().Send(); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	s.FaultInProgress("DELETE", "/vms/*", "remove", 1)
	if _, err := vms.VmService(id).Remove().Send(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "Cannot remove VM. Related operation") {
		t.Fatalf("FaultInProgress: %v", err)
	}
	// A rule with Times 1 applies once.
	if _, err := vms.VmService(id).Remove().Send(); errors.As(err, &ce) && strings.Contains(err.Error(), "Related operation") {
		t.Fatal("rule applied twice")
	}
}

func TestSlowResponses(t *testing.T) {
	s := newServer(t, nil)
	vms := connect(t, s).SystemService().VmsService()
	vms.List().MustSend()
	rm := s.AddRule(ovirt.Rule{Method: "GET", Path: "/vms", Delay: 300 * time.Millisecond})
	t0 := time.Now()
	vms.List().MustSend()
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("slow rule: %v", d)
	}
	rm()
	s.SetLatency(100 * time.Millisecond)
	t0 = time.Now()
	vms.List().MustSend()
	if d := time.Since(t0); d < 100*time.Millisecond {
		t.Errorf("latency: %v", d)
	}
	s.SetLatency(0)
	// A slow request cut by the client's timeout.
	s.AddRule(ovirt.Rule{Path: "/vms", Delay: 2 * time.Second, Times: 1})
	c, _ := ovirtsdk.NewConnectionBuilder().URL(s.URL()).Username(s.User()).Password(s.Password()).CACert(s.CACertPEM()).Timeout(200 * time.Millisecond).Build()
	if _, err := c.SystemService().VmsService().List().Send(); err == nil {
		t.Error("no timeout")
	}
}

func TestRemoveRunningRefused(t *testing.T) {
	s, clk := manual(t)
	vms := connect(t, s).SystemService().VmsService()
	id, _ := s.AddVM(ovirt.VMSpec{Name: "r1", Status: ovirt.StatusUp})
	var ce *ovirtsdk.ConflictError
	if _, err := vms.VmService(id).Remove().Send(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "Cannot remove VM. VM is running.") {
		t.Fatalf("remove running: %v", err)
	}
	if _, err := vms.VmService(id).Start().Send(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "Cannot run VM. VM is running.") {
		t.Fatalf("start running: %v", err)
	}
	// A stop during start wins: the pending start steps are dropped.
	id2, _ := s.AddVM(ovirt.VMSpec{Name: "r2"})
	vms.VmService(id2).Start().MustSend()
	vms.VmService(id2).Stop().MustSend()
	clk.Advance(10 * time.Second)
	if st := status(t, vms.VmService(id2)); st != ovirtsdk.VMSTATUS_DOWN {
		t.Fatalf("stop during start: %s", st)
	}
	// One long clock jump runs a whole chain: start to up, agent reported.
	vms.VmService(id2).Start().MustSend()
	clk.Advance(10 * time.Second)
	if in, _ := s.VM(id2); in.Status != ovirt.StatusUp || !in.AgentReported {
		t.Fatalf("after a long jump: %s, agent %v", in.Status, in.AgentReported)
	}
	if got := fmt.Sprint(codes(s, id2)); got != "[34 53 61 153 934]" {
		t.Errorf("events %s", got)
	}
	if _, ok := s.VM(id); !ok {
		t.Fatal("refused removal removed the VM")
	}
}

func TestPermissions(t *testing.T) {
	s := newServer(t, nil)
	d := s.Defaults()
	sys := connect(t, s).SystemService()
	uid := sys.Get().MustSend().MustApi().MustAuthenticatedUser().MustId()
	us := sys.UsersService().UserService(uid)
	if u := us.Get().MustSend().MustUser(); u.MustUserName() != "admin@internal-authz" || u.MustPrincipal() != "admin" {
		t.Errorf("user %s %s", u.MustUserName(), u.MustPrincipal())
	}
	ps := us.PermissionsService().List().MustSend().MustPermissions().Slice()
	if len(ps) != 1 || ps[0].MustRole().MustId() != s.SuperUserRoleID() {
		t.Fatalf("permissions %v", ps)
	}
	if _, ok := ps[0].Cluster(); ok {
		t.Error("a system permission names a cluster")
	}
	role := sys.RolesService().RoleService(s.SuperUserRoleID())
	if r := role.Get().MustSend().MustRole(); r.MustName() != "SuperUser" || !r.MustAdministrative() {
		t.Errorf("role %s", r.MustName())
	}
	names := map[string]bool{}
	for _, p := range role.PermitsService().List().MustSend().MustPermits().Slice() {
		names[p.MustName()] = true
	}
	if !names["create_vm"] || !names["vm_basic_operations"] || !names["create_disk"] {
		t.Errorf("SuperUser permits %v", names)
	}

	creator, _ := s.AddRole("VmCreator", false, ovirt.PermitCreateVM)
	disks, _ := s.AddRole("DiskCreator", false, ovirt.PermitCreateDisk)
	ops, _ := s.AddRole("VmOperator", false, ovirt.PermitVMBasicOperations)
	if err := s.SetPermissions(ovirt.Grant{RoleID: creator, Object: "cluster", ID: d.ClusterID},
		ovirt.Grant{RoleID: disks, Object: "storage_domain", ID: d.VMStorageDomainID}); err != nil {
		t.Fatal(err)
	}
	vms := sys.VmsService()
	v, err := vms.Add().Vm(addRequest(s, "p1", d.VMStorageDomainID)).Clone(true).Send()
	if err != nil {
		t.Fatalf("add with create_vm and create_disk: %v", err)
	}
	var ae *ovirtsdk.AuthError
	if err := s.SetPermissions(ovirt.Grant{RoleID: disks}); err != nil {
		t.Fatal(err)
	}
	if _, err := vms.Add().Vm(addRequest(s, "p0", d.VMStorageDomainID)).Clone(true).Send(); !errors.As(err, &ae) || ae.Code != 403 {
		t.Fatalf("add without create_vm: %T %v", err, err)
	}
	_ = s.SetPermissions(ovirt.Grant{RoleID: creator, Object: "cluster", ID: d.ClusterID},
		ovirt.Grant{RoleID: disks, Object: "storage_domain", ID: d.VMStorageDomainID})
	if _, err := vms.Add().Vm(addRequest(s, "p2", d.TemplateStorageID)).Send(); !errors.As(err, &ae) || ae.Code != 403 || !strings.Contains(err.Error(), "User is not authorized to perform this action.") {
		t.Fatalf("disks on a domain without create_disk: %T %v", err, err)
	}
	s.Tick()
	id := v.MustVm().MustId()
	for _, send := range []func() error{
		func() error { _, err := vms.VmService(id).Start().Send(); return err },
		func() error { _, err := vms.VmService(id).Remove().Send(); return err },
	} {
		if err := send(); !errors.As(err, &ae) || ae.Code != 403 {
			t.Fatalf("without the permit: %T %v", err, err)
		}
	}
	// A role on the data center covers its VMs.
	if err := s.SetPermissions(ovirt.Grant{RoleID: ops, Object: "data_center", ID: d.DataCenterID}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for status(t, vms.VmService(id)) != ovirtsdk.VMSTATUS_DOWN && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := vms.VmService(id).Start().Send(); err != nil {
		t.Fatalf("start with vm_basic_operations on the data center: %v", err)
	}
	if err := s.SetPermissions(ovirt.Grant{RoleID: "nope"}); err == nil {
		t.Error("unknown role accepted")
	}
}

func TestDisksAndTemplateFollow(t *testing.T) {
	s, clk := manual(t)
	d := s.Defaults()
	sys := connect(t, s).SystemService()
	v := sys.VmsService().Add().Vm(addRequest(s, "dk1", d.VMStorageDomainID)).Clone(true).MustSend().MustVm()
	clk.Advance(5 * time.Second)
	got := sys.VmsService().VmService(v.MustId()).Get().Follow("disk_attachments.disk").MustSend().MustVm()
	das := got.MustDiskAttachments().Slice()
	if len(das) != 1 {
		t.Fatalf("disk attachments %v", das)
	}
	dk := das[0].MustDisk()
	if dk.MustStatus() != ovirtsdk.DISKSTATUS_OK || dk.MustProvisionedSize() != 10<<30 || dk.MustStorageDomains().Slice()[0].MustId() != d.VMStorageDomainID || !das[0].MustBootable() {
		t.Errorf("disk %v", dk)
	}
	if n := len(sys.VmsService().VmService(v.MustId()).DiskAttachmentsService().List().MustSend().MustAttachments().Slice()); n != 1 {
		t.Errorf("diskattachments: %d", n)
	}
	tp := sys.TemplatesService().TemplateService(d.TemplateID).Get().Follow("disk_attachments.disk,nics").MustSend().MustTemplate()
	if tp.MustDiskAttachments().Slice()[0].MustDisk().MustId() != d.TemplateDiskID || tp.MustNics().Slice()[0].MustVnicProfile().MustId() != d.ManagementProfileID {
		t.Errorf("template follow")
	}
	if tp.MustVersion().MustVersionNumber() != 1 || tp.MustMemory() != 2<<30 {
		t.Errorf("template version/memory")
	}
	nics := sys.TemplatesService().TemplateService(d.TemplateID).NicsService().List().MustSend().MustNics().Slice()
	if len(nics) != 1 || nics[0].MustName() != "nic1" {
		t.Errorf("template nics %v", nics)
	}
}

func TestJobAndEventSearch(t *testing.T) {
	s, clk := manual(t)
	d := s.Defaults()
	sys := connect(t, s).SystemService()
	v := sys.VmsService().Add().Vm(addRequest(s, "js1", d.VMStorageDomainID)).Clone(true).Query("correlation_id", "req-js1").MustSend().MustVm()
	clk.Advance(5 * time.Second)
	sys.VmsService().VmService(v.MustId()).Start().Query("correlation_id", "req-js1").MustSend()
	jobs := sys.JobsService().List().Search("correlation_id=req-js1").MustSend().MustJobs().Slice()
	if len(jobs) != 2 || !strings.HasPrefix(jobs[0].MustDescription(), "Creating VM") || jobs[1].MustDescription() != "Launching VM js1" {
		t.Fatalf("jobs oldest first: %v", jobs)
	}
	if _, err := sys.JobsService().List().Search("status=started").Send(); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("jobs search on status (not a job search field): %v", err)
	}
	ev := sys.EventsService()
	if n := len(ev.List().Search("event_vm=js1").MustSend().MustEvents().Slice()); n != 2 {
		t.Errorf("event_vm=js1: %d", n)
	}
	if n := len(ev.List().Search("correlation_id=req-js1 and type=53").MustSend().MustEvents().Slice()); n != 1 {
		t.Errorf("correlation_id and type: %d", n)
	}
	if n := len(ev.List().Search("usrname=admin@internal-authz and event_vm=js1").MustSend().MustEvents().Slice()); n != 1 {
		t.Errorf("usrname: %d (the add is the user's, its completion the system's)", n)
	}
	if _, err := ev.List().Search("index>3").Send(); err == nil {
		t.Error("index is not an audit log search field")
	}
}

func TestDroppedAnswers(t *testing.T) {
	s := newServer(t, nil)
	vms := connect(t, s).SystemService().VmsService()
	vms.List().MustSend()
	s.AddRule(ovirt.Rule{Method: "POST", Path: "/vms", Drop: ovirt.DropBefore, Times: 1})
	if _, err := vms.Add().Vm(addRequest(s, "lost1", s.Defaults().VMStorageDomainID)).Clone(true).Send(); err == nil {
		t.Fatal("no error for a dropped request")
	}
	if _, ok := s.VMByName("lost1"); ok {
		t.Fatal("DropBefore did the work")
	}
	s.AddRule(ovirt.Rule{Method: "POST", Path: "/vms", Drop: ovirt.DropAfter, Times: 1})
	if _, err := vms.Add().Vm(addRequest(s, "lost2", s.Defaults().VMStorageDomainID)).Clone(true).Send(); err == nil {
		t.Fatal("no error for a dropped answer")
	}
	if _, ok := s.VMByName("lost2"); !ok {
		t.Fatal("DropAfter did not do the work")
	}
	// The retry of the lost add meets the name in use.
	var ce *ovirtsdk.ConflictError
	if _, err := vms.Add().Vm(addRequest(s, "lost2", s.Defaults().VMStorageDomainID)).Clone(true).Send(); !errors.As(err, &ce) {
		t.Fatalf("retry: %v", err)
	}
}
