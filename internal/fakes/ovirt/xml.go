package ovirt

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"time"
)

// apiPrefix is where the engine serves its API.
const apiPrefix = "/ovirt-engine/api"

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// xw writes the engine's XML by hand: element names follow the
// ovirt-engine-api-model (and go-ovirt's readers), and a hand-written
// writer keeps listing thousands of VMs cheap.
type xw struct{ b *bytes.Buffer }

func (w xw) open(name string)  { w.b.WriteByte('<'); w.b.WriteString(name); w.b.WriteByte('>') }
func (w xw) close(name string) { w.b.WriteString("</"); w.b.WriteString(name); w.b.WriteByte('>') }

func (w xw) openID(name, coll, id string) {
	w.b.WriteByte('<')
	w.b.WriteString(name)
	w.b.WriteString(` href="`)
	w.b.WriteString(apiPrefix)
	w.b.WriteByte('/')
	w.b.WriteString(coll)
	w.b.WriteByte('/')
	w.attr(id)
	w.b.WriteString(`" id="`)
	w.attr(id)
	w.b.WriteString(`">`)
}

func (w xw) attr(s string) { _ = xml.EscapeText(w.b, []byte(s)) }

func (w xw) text(name, s string) {
	w.open(name)
	_ = xml.EscapeText(w.b, []byte(s))
	w.close(name)
}

func (w xw) opt(name, s string) {
	if s != "" {
		w.text(name, s)
	}
}

func (w xw) int(name string, n int64) { w.text(name, strconv.FormatInt(n, 10)) }

func (w xw) bool(name string, v bool) { w.text(name, strconv.FormatBool(v)) }

func (w xw) time(name string, t time.Time) {
	if !t.IsZero() {
		w.text(name, t.Format(timeLayout))
	}
}

// ref writes a link to another object: <name href="..." id="..."/>.
func (w xw) ref(name, coll, id string) {
	w.b.WriteByte('<')
	w.b.WriteString(name)
	w.b.WriteString(` href="`)
	w.b.WriteString(apiPrefix)
	w.b.WriteByte('/')
	w.b.WriteString(coll)
	w.b.WriteByte('/')
	w.attr(id)
	w.b.WriteString(`" id="`)
	w.attr(id)
	w.b.WriteString(`"/>`)
}

// link writes <link href="base/rel" rel="rel"/>.
func (w xw) link(coll, id, rel string) {
	w.b.WriteString(`<link href="`)
	w.b.WriteString(apiPrefix)
	w.b.WriteByte('/')
	w.b.WriteString(coll)
	w.b.WriteByte('/')
	w.attr(id)
	w.b.WriteByte('/')
	w.b.WriteString(rel)
	w.b.WriteString(`" rel="`)
	w.b.WriteString(rel)
	w.b.WriteString(`"/>`)
}

func (w xw) version(name string, major, minor int) {
	w.open(name)
	w.int("major", int64(major))
	w.int("minor", int64(minor))
	w.close(name)
}

func (w xw) cpu(sockets, cores, threads int) {
	w.open("cpu")
	w.text("architecture", "x86_64")
	w.open("topology")
	w.int("cores", int64(cores))
	w.int("sockets", int64(sockets))
	w.int("threads", int64(threads))
	w.close("topology")
	w.close("cpu")
}

type follow struct{ nics, reportedDevices, diskAttachments, disks bool }

func (s *Server) writeVM(w xw, v *vm, f follow) {
	w.openID("vm", "vms", v.id)
	w.text("name", v.name)
	w.opt("description", v.description)
	w.opt("comment", v.comment)
	for _, rel := range [...]string{"diskattachments", "nics", "reporteddevices"} {
		if (rel == "nics" && f.nics) || (rel == "reporteddevices" && f.reportedDevices) || (rel == "diskattachments" && f.diskAttachments) {
			continue
		}
		w.link("vms", v.id, rel)
	}
	w.cpu(v.sockets, v.cores, v.threads)
	w.time("creation_time", v.created)
	w.bool("delete_protected", false)
	if f.diskAttachments {
		w.open("disk_attachments")
		for _, d := range v.disks {
			s.writeDiskAttachment(w, "vms", v.id, d, f.disks)
		}
		w.close("disk_attachments")
	}
	if v.agent && v.fqdn != "" {
		w.text("fqdn", v.fqdn)
	}
	if v.agent && v.guestOS != (GuestOS{}) {
		g := v.guestOS
		w.open("guest_operating_system")
		w.opt("architecture", g.Architecture)
		w.opt("codename", g.Codename)
		w.opt("distribution", g.Distribution)
		w.opt("family", g.Family)
		if g.Kernel != "" {
			w.open("kernel")
			w.open("version")
			w.text("full_version", g.Kernel)
			w.close("version")
			w.close("kernel")
		}
		if g.Version != "" {
			w.open("version")
			w.text("full_version", g.Version)
			w.close("version")
		}
		w.close("guest_operating_system")
	}
	if v.init != nil {
		in := v.init
		w.open("initialization")
		w.opt("authorized_ssh_keys", in.AuthorizedSSHKeys)
		w.opt("custom_script", in.CustomScript)
		w.opt("dns_search", in.DNSSearch)
		w.opt("dns_servers", in.DNSServers)
		w.opt("host_name", in.HostName)
		w.opt("timezone", in.Timezone)
		w.opt("user_name", in.UserName)
		w.close("initialization")
	}
	w.int("memory", v.memory)
	if f.nics {
		w.open("nics")
		for _, n := range v.nics {
			s.writeNIC(w, v, n, f.reportedDevices)
		}
		w.close("nics")
	}
	w.b.WriteString("<os><type>")
	w.attr(v.osType)
	w.b.WriteString("</type></os>")
	if f.reportedDevices {
		w.open("reported_devices")
		s.writeReportedDevices(w, v)
		w.close("reported_devices")
	}
	w.time("start_time", v.startTime)
	w.bool("stateless", false)
	w.text("status", v.status)
	if v.stopReason != "" {
		w.text("stop_reason", v.stopReason)
	}
	w.time("stop_time", v.stopTime)
	w.text("type", "server")
	if v.cluster != nil {
		w.ref("cluster", "clusters", v.cluster.id)
	}
	if v.host {
		w.ref("host", "hosts", s.hostID)
	}
	tid := BlankTemplateID
	if v.template != nil {
		tid = v.template.id
	}
	w.ref("original_template", "templates", tid)
	w.ref("template", "templates", tid)
	w.close("vm")
}

func (s *Server) writeNIC(w xw, v *vm, n *nicT, rd bool) {
	w.b.WriteString(`<nic href="`)
	w.b.WriteString(apiPrefix + "/vms/" + v.id + "/nics/" + n.id)
	w.b.WriteString(`" id="`)
	w.attr(n.id)
	w.b.WriteString(`">`)
	w.text("name", n.name)
	w.text("interface", n.iface)
	w.bool("linked", n.linked)
	w.open("mac")
	w.text("address", n.mac)
	w.close("mac")
	w.bool("plugged", n.plugged)
	if rd {
		w.open("reported_devices")
		s.writeReportedDevices(w, v)
		w.close("reported_devices")
	}
	w.ref("vm", "vms", v.id)
	if n.profile != nil {
		w.ref("vnic_profile", "vnicprofiles", n.profile.id)
	}
	w.close("nic")
}

// writeReportedDevices writes what the guest agent reported: one network
// device per NIC, holding the VM's addresses on the first one.
func (s *Server) writeReportedDevices(w xw, v *vm) {
	if !v.agent {
		return
	}
	for i, n := range v.nics {
		w.b.WriteString(`<reported_device href="`)
		w.b.WriteString(apiPrefix + "/vms/" + v.id + "/reporteddevices/" + n.id)
		w.b.WriteString(`" id="`)
		w.attr(n.id)
		w.b.WriteString(`">`)
		w.text("description", "guest reported data")
		w.text("name", "eth"+strconv.Itoa(i))
		w.open("ips")
		if i == 0 {
			for _, a := range v.ips {
				w.open("ip")
				w.text("address", a.String())
				if a.Is4() {
					w.text("version", "v4")
				} else {
					w.text("version", "v6")
				}
				w.close("ip")
			}
		}
		w.close("ips")
		w.open("mac")
		w.text("address", n.mac)
		w.close("mac")
		w.text("type", "network")
		w.ref("vm", "vms", v.id)
		w.close("reported_device")
	}
}

func (s *Server) writeDiskAttachment(w xw, coll, owner string, d *disk, withDisk bool) {
	w.b.WriteString(`<disk_attachment href="`)
	w.b.WriteString(apiPrefix + "/" + coll + "/" + owner + "/diskattachments/" + d.id)
	w.b.WriteString(`" id="`)
	w.attr(d.id)
	w.b.WriteString(`">`)
	w.bool("active", true)
	w.bool("bootable", d.bootable)
	w.text("interface", d.iface)
	w.bool("pass_discard", false)
	w.bool("read_only", false)
	if withDisk {
		s.writeDisk(w, d)
	} else {
		w.ref("disk", "disks", d.id)
	}
	if coll == "vms" {
		w.ref("vm", "vms", owner)
	} else {
		w.ref("template", "templates", owner)
	}
	w.close("disk_attachment")
}

func (s *Server) writeDisk(w xw, d *disk) {
	w.openID("disk", "disks", d.id)
	w.text("alias", d.alias)
	w.text("format", d.format)
	w.text("name", d.alias)
	w.int("provisioned_size", d.size)
	w.bool("sparse", d.sparse)
	w.text("status", d.status)
	w.text("storage_type", "image")
	if d.sd != nil {
		w.open("storage_domains")
		w.ref("storage_domain", "storagedomains", d.sd.id)
		for _, c := range d.copies {
			w.ref("storage_domain", "storagedomains", c.id)
		}
		w.close("storage_domains")
	}
	w.close("disk")
}

func (s *Server) writeTemplate(w xw, t *template, f follow) {
	w.openID("template", "templates", t.id)
	w.text("name", t.name)
	w.opt("description", t.description)
	if !f.diskAttachments {
		w.link("templates", t.id, "diskattachments")
	}
	if !f.nics {
		w.link("templates", t.id, "nics")
	}
	w.cpu(t.sockets, t.cores, 1)
	w.time("creation_time", t.created)
	if f.diskAttachments {
		w.open("disk_attachments")
		for _, d := range t.disks {
			s.writeDiskAttachment(w, "templates", t.id, d, f.disks)
		}
		w.close("disk_attachments")
	}
	w.int("memory", t.memory)
	if f.nics {
		w.open("nics")
		for _, n := range t.nics {
			w.b.WriteString(`<nic href="` + apiPrefix + "/templates/" + t.id + "/nics/" + n.id + `" id="` + n.id + `">`)
			w.text("name", n.name)
			w.text("interface", n.iface)
			w.bool("linked", n.linked)
			w.bool("plugged", n.plugged)
			if n.profile != nil {
				w.ref("vnic_profile", "vnicprofiles", n.profile.id)
			}
			w.close("nic")
		}
		w.close("nics")
	}
	w.b.WriteString("<os><type>")
	w.attr(t.osType)
	w.b.WriteString("</type></os>")
	w.text("status", t.status)
	w.text("type", "server")
	w.open("version")
	w.text("version_name", "base version")
	w.int("version_number", 1)
	w.ref("base_template", "templates", t.id)
	w.close("version")
	if t.cluster != nil {
		w.ref("cluster", "clusters", t.cluster.id)
	}
	w.close("template")
}

func (s *Server) writeCluster(w xw, c *cluster) {
	w.openID("cluster", "clusters", c.id)
	w.text("name", c.name)
	w.opt("description", c.description)
	w.open("cpu")
	w.text("architecture", "x86_64")
	w.text("type", c.cpuType)
	w.close("cpu")
	w.bool("gluster_service", false)
	w.version("version", c.major, c.minor)
	w.bool("virt_service", true)
	w.ref("data_center", "datacenters", c.dc.id)
	w.close("cluster")
}

func (s *Server) writeDataCenter(w xw, d *dataCenter) {
	w.openID("data_center", "datacenters", d.id)
	w.text("name", d.name)
	w.opt("description", d.description)
	w.link("datacenters", d.id, "clusters")
	w.link("datacenters", d.id, "networks")
	w.link("datacenters", d.id, "storagedomains")
	w.bool("local", false)
	w.text("quota_mode", "disabled")
	w.text("status", d.status)
	w.text("storage_format", "v5")
	w.open("supported_versions")
	w.version("version", d.major, d.minor)
	w.close("supported_versions")
	w.version("version", d.major, d.minor)
	w.close("data_center")
}

func (s *Server) writeStorageDomain(w xw, sd *storageDomain, dcView bool) {
	if dcView && sd.dc != nil {
		w.b.WriteString(`<storage_domain href="` + apiPrefix + "/datacenters/" + sd.dc.id + "/storagedomains/" + sd.id + `" id="` + sd.id + `">`)
	} else {
		w.openID("storage_domain", "storagedomains", sd.id)
	}
	w.text("name", sd.name)
	w.int("available", sd.available)
	w.bool("backup", false)
	w.int("committed", 0)
	if sd.dc != nil {
		w.open("data_centers")
		w.ref("data_center", "datacenters", sd.dc.id)
		w.close("data_centers")
	}
	w.text("external_status", "ok")
	w.bool("master", sd.master)
	w.text("status", sd.status)
	w.open("storage")
	w.text("type", sd.storageTyp)
	w.close("storage")
	w.text("storage_format", "v5")
	w.text("type", sd.typ)
	w.int("used", sd.used)
	if dcView && sd.dc != nil {
		w.ref("data_center", "datacenters", sd.dc.id)
	}
	w.close("storage_domain")
}

func (s *Server) writeNetwork(w xw, n *network) {
	w.openID("network", "networks", n.id)
	w.text("name", n.name)
	w.link("networks", n.id, "vnicprofiles")
	w.int("mtu", int64(n.mtu))
	w.bool("required", true)
	w.bool("stp", false)
	w.open("usages")
	w.text("usage", "vm")
	w.close("usages")
	if n.vlan > 0 {
		w.b.WriteString(`<vlan id="` + strconv.Itoa(n.vlan) + `"/>`)
	}
	w.ref("data_center", "datacenters", n.dc.id)
	w.close("network")
}

func (s *Server) writeProfile(w xw, p *vnicProfile) {
	w.openID("vnic_profile", "vnicprofiles", p.id)
	w.text("name", p.name)
	w.bool("migratable", false)
	w.open("pass_through")
	w.text("mode", "disabled")
	w.close("pass_through")
	w.bool("port_mirroring", false)
	w.ref("network", "networks", p.net.id)
	w.close("vnic_profile")
}

func (s *Server) writeEvent(w xw, e *event) {
	w.b.WriteString(`<event href="` + apiPrefix + "/events/")
	id := strconv.FormatInt(e.index, 10)
	w.b.WriteString(id + `" id="` + id + `">`)
	w.text("description", e.description)
	w.int("code", int64(e.code))
	w.opt("correlation_id", e.correlationID)
	w.int("custom_id", -1)
	w.int("flood_rate", int64(e.floodRate))
	w.int("index", e.index)
	w.text("origin", "oVirt")
	w.text("severity", e.severity)
	w.time("time", e.time)
	if e.clusterID != "" {
		w.ref("cluster", "clusters", e.clusterID)
	}
	if e.dcID != "" {
		w.ref("data_center", "datacenters", e.dcID)
	}
	if e.templateID != "" {
		w.ref("template", "templates", e.templateID)
	}
	if e.user {
		w.ref("user", "users", s.userID)
	}
	if e.vmID != "" {
		w.ref("vm", "vms", e.vmID)
	}
	w.close("event")
}

func (s *Server) writeJob(w xw, j *job) {
	w.openID("job", "jobs", j.id)
	w.text("description", j.description)
	w.bool("auto_cleared", true)
	w.time("end_time", j.end)
	w.bool("external", false)
	w.time("last_updated", j.updated)
	w.time("start_time", j.start)
	w.text("status", j.status)
	w.ref("owner", "users", s.userID)
	w.close("job")
}

func (s *Server) writeAPI(w xw) {
	w.open("api")
	for _, rel := range [...]string{"clusters", "datacenters", "events", "jobs", "networks", "roles", "storagedomains", "templates", "users", "vms", "vnicprofiles"} {
		w.b.WriteString(`<link href="` + apiPrefix + "/" + rel + `" rel="` + rel + `"/>`)
	}
	w.open("product_info")
	w.text("name", "oVirt Engine")
	w.text("vendor", "ovirt.org")
	w.open("version")
	w.int("build", int64(s.opts.Version.Build))
	w.text("full_version", s.opts.Version.Full)
	w.int("major", int64(s.opts.Version.Major))
	w.int("minor", int64(s.opts.Version.Minor))
	w.int("revision", int64(s.opts.Version.Revision))
	w.close("version")
	w.close("product_info")
	w.open("special_objects")
	w.ref("blank_template", "templates", BlankTemplateID)
	w.close("special_objects")
	w.open("summary")
	var up int64
	for _, v := range s.vms {
		if v.status == StatusUp {
			up++
		}
	}
	w.open("vms")
	w.int("active", up)
	w.int("total", int64(len(s.vms)))
	w.close("vms")
	w.close("summary")
	w.time("time", s.now())
	w.ref("authenticated_user", "users", s.userID)
	w.ref("effective_user", "users", s.userID)
	w.close("api")
}
