package ovirt

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// defaultSearchLimit is the engine's SearchResultsLimit: the page size of
// "page N" searches without max.
const defaultSearchLimit = 100

// maxBody bounds a request body.
const maxBody = 1 << 20

func (s *Server) api(w http.ResponseWriter, r *http.Request, p string) {
	seg := strings.Split(strings.Trim(p, "/"), "/")
	if len(seg) == 1 && seg[0] == "" {
		seg = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	q := r.URL.Query()
	if len(seg) == 0 {
		if r.Method != http.MethodGet {
			writeFault(w, http.StatusMethodNotAllowed, "", "")
			return
		}
		var b bytes.Buffer
		s.writeAPI(xw{&b})
		writeXML(w, http.StatusOK, &b)
		return
	}
	switch seg[0] {
	case "vms":
		s.vmsAPI(w, r, seg[1:], q)
	case "templates":
		s.templatesAPI(w, r, seg[1:], q)
	case "clusters":
		s.simpleList(w, r, seg[1:], q, "clusters", "cluster")
	case "datacenters":
		s.dataCentersAPI(w, r, seg[1:], q)
	case "storagedomains":
		s.simpleList(w, r, seg[1:], q, "storage_domains", "storagedomain")
	case "networks":
		s.networksAPI(w, r, seg[1:], q)
	case "vnicprofiles":
		s.simpleList(w, r, seg[1:], q, "vnic_profiles", "vnicprofile")
	case "events":
		s.eventsAPI(w, r, seg[1:], q)
	case "jobs":
		s.jobsAPI(w, r, seg[1:], q)
	case "users":
		s.usersAPI(w, r, seg[1:])
	case "roles":
		s.rolesAPI(w, r, seg[1:])
	default:
		writeFault(w, http.StatusNotFound, "", "")
	}
}

func notFound(w http.ResponseWriter) { writeFault(w, http.StatusNotFound, "", "") }

func methodNotAllowed(w http.ResponseWriter) { writeFault(w, http.StatusMethodNotAllowed, "", "") }

func opFailed(w http.ResponseWriter, status int, detail string) {
	writeFault(w, status, "Operation Failed", "["+detail+"]")
}

func badSearch(w http.ResponseWriter) {
	writeFault(w, http.StatusBadRequest, "Operation Failed", "[Search string is invalid]")
}

// listParams reads max, search, case_sensitive.
func listParams(q url.Values, fields map[string]bool) (max int, qr query, cs bool, ok bool) {
	max = -1
	if m := q.Get("max"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil {
			return 0, qr, false, false
		}
		if n >= 0 {
			max = n
		}
	}
	cs = q.Get("case_sensitive") != "false"
	qr.any = [][]term{{}}
	if sq := q.Get("search"); sq != "" {
		var err error
		qr, err = parseQuery(sq, fields)
		if err != nil {
			return 0, qr, false, false
		}
	}
	return max, qr, cs, true
}

// window applies page and max to n results, as the engine does: "page N"
// with page size max (SearchResultsLimit without max); else max cuts.
func window(n, max int, qr query) (lo, hi int) {
	if qr.page > 0 {
		size := max
		if size < 0 {
			size = defaultSearchLimit
		}
		lo = (qr.page - 1) * size
		hi = lo + size
	} else {
		lo, hi = 0, n
		if max >= 0 {
			hi = max
		}
	}
	if lo > n {
		lo = n
	}
	if hi > n {
		hi = n
	}
	return lo, hi
}

func parseFollow(q url.Values, allowed map[string]func(*follow)) (follow, bool) {
	var f follow
	v := q.Get("follow")
	if v == "" {
		return f, true
	}
	for _, x := range strings.Split(v, ",") {
		x = strings.TrimSpace(x)
		set, ok := allowed[x]
		if !ok {
			return f, false
		}
		set(&f)
	}
	return f, true
}

var vmFollow = map[string]func(*follow){
	"nics":                                  func(f *follow) { f.nics = true },
	"reported_devices":                      func(f *follow) { f.reportedDevices = true },
	"nics.reported_devices":                 func(f *follow) { f.nics, f.reportedDevices = true, true },
	"disk_attachments":                      func(f *follow) { f.diskAttachments = true },
	"disk_attachments.disk":                 func(f *follow) { f.diskAttachments, f.disks = true, true },
	"nics.vnic_profile":                     func(f *follow) { f.nics = true },
	"disk_attachments.disk.storage_domains": func(f *follow) { f.diskAttachments, f.disks = true, true },
}

// vmFields are the engine's VM search fields the fake knows
// (VmConditionFieldAutoCompleter).
var vmFields = map[string]bool{"name": true, "comment": true, "status": true, "ip": true, "fqdn": true, "host": true, "cluster": true, "datacenter": true, "id": true, "description": true}

func (s *Server) vmField(v *vm, f string) string {
	switch f {
	case "name":
		return v.name
	case "status":
		return strings.ReplaceAll(v.status, "_", "")
	case "comment":
		return v.comment
	case "host":
		if v.host {
			return s.opts.HostName
		}
	case "cluster":
		if v.cluster != nil {
			return v.cluster.name
		}
	case "datacenter":
		if v.cluster != nil {
			return v.cluster.dc.name
		}
	case "id":
		return v.id
	case "ip":
		if len(v.ips) > 0 {
			return v.ips[0].String()
		}
	case "fqdn":
		return v.fqdn
	case "description":
		return v.description
	}
	return ""
}

func (s *Server) vmsAPI(w http.ResponseWriter, r *http.Request, seg []string, q url.Values) {
	if len(seg) == 0 {
		switch r.Method {
		case http.MethodGet:
			s.listVMs(w, q)
		case http.MethodPost:
			s.addVMReq(w, r, q)
		default:
			methodNotAllowed(w)
		}
		return
	}
	v := s.vms[seg[0]]
	if v == nil {
		notFound(w)
		return
	}
	if len(seg) == 1 {
		switch r.Method {
		case http.MethodGet:
			f, ok := parseFollow(q, vmFollow)
			if !ok {
				writeFault(w, http.StatusBadRequest, "Operation Failed", "[Unknown link in follow]")
				return
			}
			var b bytes.Buffer
			s.writeVM(xw{&b}, v, f)
			writeXML(w, http.StatusOK, &b)
		case http.MethodDelete:
			s.removeVMReq(w, r, v)
		case http.MethodPut:
			s.updateVMReq(w, r, v)
		default:
			methodNotAllowed(w)
		}
		return
	}
	switch seg[1] {
	case "start", "stop", "shutdown":
		if len(seg) != 2 || r.Method != http.MethodPost {
			methodNotAllowed(w)
			return
		}
		s.vmAction(w, r, v, seg[1])
	case "nics":
		s.nicsAPI(w, r, v, seg[2:])
	case "reporteddevices":
		if len(seg) != 2 || r.Method != http.MethodGet {
			methodNotAllowed(w)
			return
		}
		var b bytes.Buffer
		x := xw{&b}
		x.open("reported_devices")
		s.writeReportedDevices(x, v)
		x.close("reported_devices")
		writeXML(w, http.StatusOK, &b)
	case "diskattachments":
		if len(seg) != 2 || r.Method != http.MethodGet {
			methodNotAllowed(w)
			return
		}
		var b bytes.Buffer
		x := xw{&b}
		x.open("disk_attachments")
		for _, d := range v.disks {
			s.writeDiskAttachment(x, "vms", v.id, d, false)
		}
		x.close("disk_attachments")
		writeXML(w, http.StatusOK, &b)
	default:
		notFound(w)
	}
}

func (s *Server) listVMs(w http.ResponseWriter, q url.Values) {
	max, qr, cs, ok := listParams(q, vmFields)
	if !ok {
		badSearch(w)
		return
	}
	// status values are the VMStatus names, any case: imagelocked, up, ...
	for _, all := range qr.any {
		for i := range all {
			if all[i].field == "status" {
				all[i].value = strings.ToLower(strings.ReplaceAll(all[i].value, "_", ""))
			}
		}
	}
	f, ok := parseFollow(q, vmFollow)
	if !ok {
		writeFault(w, http.StatusBadRequest, "Operation Failed", "[Unknown link in follow]")
		return
	}
	all := s.sortedVMs()
	hits := all
	if !qr.empty() {
		hits = nil
		for _, v := range all {
			if qr.match(func(f string) string { return s.vmField(v, f) }, cs) {
				hits = append(hits, v)
			}
		}
	}
	if qr.sortBy != "" && len(hits) > 0 && &hits[0] == &all[0] {
		hits = append([]*vm(nil), hits...) // sort a copy, not the cached order
	}
	if qr.sortDesc && (qr.sortBy == "name" || qr.sortBy == "") {
		for i, j := 0, len(hits)-1; i < j; i, j = i+1, j-1 {
			hits[i], hits[j] = hits[j], hits[i]
		}
	} else if qr.sortBy != "" && qr.sortBy != "name" {
		sort.SliceStable(hits, func(i, j int) bool {
			a, b := s.vmField(hits[i], qr.sortBy), s.vmField(hits[j], qr.sortBy)
			if qr.sortDesc {
				return a > b
			}
			return a < b
		})
	}
	lo, hi := window(len(hits), max, qr)
	var b bytes.Buffer
	per := 1400
	if f.nics || f.reportedDevices {
		per = 3200
	}
	b.Grow((hi - lo) * per)
	x := xw{&b}
	x.open("vms")
	for _, v := range hits[lo:hi] {
		s.writeVM(x, v, f)
	}
	x.close("vms")
	writeXML(w, http.StatusOK, &b)
}

// --- request bodies, element names from the API model ---

type xRef struct {
	ID   string `xml:"id,attr"`
	Name string `xml:"name"`
}

type xVM struct {
	XMLName     xml.Name `xml:"vm"`
	Name        *string  `xml:"name"`
	Description *string  `xml:"description"`
	Comment     *string  `xml:"comment"`
	Cluster     *xRef    `xml:"cluster"`
	Template    *xRef    `xml:"template"`
	Memory      *int64   `xml:"memory"`
	CPU         *struct {
		Topology *struct {
			Cores   *int `xml:"cores"`
			Sockets *int `xml:"sockets"`
			Threads *int `xml:"threads"`
		} `xml:"topology"`
	} `xml:"cpu"`
	DiskAttachments *struct {
		Items []struct {
			Bootable  *bool  `xml:"bootable"`
			Interface string `xml:"interface"`
			Disk      *struct {
				ID             string `xml:"id,attr"`
				Alias          string `xml:"alias"`
				Format         string `xml:"format"`
				Sparse         *bool  `xml:"sparse"`
				StorageDomains *struct {
					Items []xRef `xml:"storage_domain"`
				} `xml:"storage_domains"`
			} `xml:"disk"`
		} `xml:"disk_attachment"`
	} `xml:"disk_attachments"`
	StorageDomain  *xRef `xml:"storage_domain"`
	Initialization *struct {
		HostName          string `xml:"host_name"`
		UserName          string `xml:"user_name"`
		AuthorizedSSHKeys string `xml:"authorized_ssh_keys"`
		CustomScript      string `xml:"custom_script"`
		RootPassword      string `xml:"root_password"`
		DNSServers        string `xml:"dns_servers"`
		DNSSearch         string `xml:"dns_search"`
		Timezone          string `xml:"timezone"`
	} `xml:"initialization"`
	OS *struct {
		Type string `xml:"type"`
	} `xml:"os"`
}

func readBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return err
	}
	if len(body) > maxBody {
		return fmt.Errorf("request body too large")
	}
	return xml.Unmarshal(body, v)
}

// correlationID is the request's correlation_id query parameter or
// Correlation-Id header.
func correlationID(r *http.Request) string {
	if c := r.URL.Query().Get("correlation_id"); c != "" {
		return c
	}
	return r.Header.Get("Correlation-Id")
}

var correlationRE = regexp.MustCompile(`^[_a-zA-Z0-9-]{1,50}$`)

// CorrelationIDMax is the longest correlation id the engine accepts.
const CorrelationIDMax = 50

var vmNameRE = regexp.MustCompile(`^[\p{L}0-9._-]+$`)

// VMNameMax is the longest VM name the fake accepts (the engine's limit
// for non-Windows VMs).
const VMNameMax = 64

func (s *Server) checkCorrelation(w http.ResponseWriter, r *http.Request, action string) (string, bool) {
	c := correlationID(r)
	if c != "" && !correlationRE.MatchString(c) {
		opFailed(w, http.StatusBadRequest, "Cannot "+action+". Correlation ID is invalid. It must contain letters, numbers, '_' and '-' with maximum length of 50 characters.")
		return "", false
	}
	return c, true
}

func (s *Server) findCluster(ref *xRef) *cluster {
	if ref == nil {
		return nil
	}
	if ref.ID != "" {
		return s.clusters[ref.ID]
	}
	for _, c := range s.clusters {
		if c.name == ref.Name {
			return c
		}
	}
	return nil
}

func (s *Server) findTemplate(ref *xRef) *template {
	if ref.ID != "" {
		return s.templates[ref.ID]
	}
	for _, t := range s.templates {
		if t.name == ref.Name {
			return t
		}
	}
	return nil
}

func (s *Server) addVMReq(w http.ResponseWriter, r *http.Request, q url.Values) {
	var in xVM
	if err := readBody(r, &in); err != nil {
		writeFault(w, http.StatusBadRequest, "Invalid request", "The request body isn't a valid vm element")
		return
	}
	if in.Cluster == nil || (in.Cluster.ID == "" && in.Cluster.Name == "") {
		writeFault(w, http.StatusBadRequest, "Incomplete parameters", "Vm [cluster.id|name] required for add")
		return
	}
	if in.Name == nil || *in.Name == "" {
		writeFault(w, http.StatusBadRequest, "Incomplete parameters", "Vm [name] required for add")
		return
	}
	if in.Template == nil || (in.Template.ID == "" && in.Template.Name == "") {
		writeFault(w, http.StatusBadRequest, "Incomplete parameters", "Vm [template.id|name] required for add")
		return
	}
	corr, ok := s.checkCorrelation(w, r, "add VM")
	if !ok {
		return
	}
	clone := q.Get("clone") == "true"
	cl := s.findCluster(in.Cluster)
	if cl == nil {
		notFound(w)
		return
	}
	t := s.findTemplate(in.Template)
	if t == nil {
		notFound(w)
		return
	}
	if s.deny(w, PermitCreateVM, "cluster", cl.id) {
		return
	}
	name := *in.Name
	switch {
	case len(name) > VMNameMax:
		opFailed(w, http.StatusBadRequest, fmt.Sprintf("Cannot add VM. The given name is too long (maximum %d characters).", VMNameMax))
		return
	case !vmNameRE.MatchString(name):
		opFailed(w, http.StatusBadRequest, "Cannot add VM. The given name contains special characters. Only lower-case and upper-case letters, numbers, '_', '-', '.' are allowed.")
		return
	}
	if s.byName[name] != nil {
		opFailed(w, http.StatusConflict, "Cannot add VM. The VM name is already in use, please choose a unique name and try again.")
		return
	}
	if t.status == "locked" {
		opFailed(w, http.StatusConflict, "Cannot add VM. Template is locked. Please try again in a few minutes.")
		return
	}
	if t.status != "ok" {
		opFailed(w, http.StatusConflict, "Cannot add VM. The Template's status is "+t.status+".")
		return
	}
	if t.id != BlankTemplateID && (t.cluster == nil || t.cluster.dc != cl.dc) {
		opFailed(w, http.StatusConflict, "Cannot add VM. The Template doesn't exist in the current Data Center.")
		return
	}
	if cl.dc.status != "up" {
		opFailed(w, http.StatusConflict, "Cannot add VM. The relevant Data Center is not operational.")
		return
	}
	v := &vm{id: newID(), name: name, cluster: cl, template: t, memory: t.memory, sockets: t.sockets, cores: t.cores, threads: 1, osType: t.osType, clone: clone, correlationID: corr}
	if in.Description != nil {
		v.description = *in.Description
	}
	if in.Comment != nil {
		v.comment = *in.Comment
	}
	if in.Memory != nil {
		if *in.Memory <= 0 {
			opFailed(w, http.StatusBadRequest, "Cannot add VM. Memory size must be positive.")
			return
		}
		v.memory = *in.Memory
	}
	if in.CPU != nil && in.CPU.Topology != nil {
		tp := in.CPU.Topology
		for _, x := range []struct {
			p   *int
			dst *int
		}{{tp.Sockets, &v.sockets}, {tp.Cores, &v.cores}, {tp.Threads, &v.threads}} {
			if x.p != nil {
				if *x.p < 1 || *x.p > 256 {
					opFailed(w, http.StatusBadRequest, "Cannot add VM. Invalid CPU topology.")
					return
				}
				*x.dst = *x.p
			}
		}
	}
	if in.OS != nil && in.OS.Type != "" {
		v.osType = in.OS.Type
	}
	// Disks: the template's disks, placed where disk_attachments say (a
	// disk id that is not the template's is 404, as the engine answers).
	defaultSD := (*storageDomain)(nil)
	if in.StorageDomain != nil && in.StorageDomain.ID != "" {
		defaultSD = s.sds[in.StorageDomain.ID]
		if defaultSD == nil {
			notFound(w)
			return
		}
	}
	type place struct {
		sd     *storageDomain
		format string
		sparse *bool
		alias  string
	}
	places := map[string]place{}
	if in.DiskAttachments != nil {
		for _, a := range in.DiskAttachments.Items {
			if a.Disk == nil {
				continue
			}
			var td *disk
			for _, d := range t.disks {
				if d.id == a.Disk.ID {
					td = d
				}
			}
			if td == nil {
				notFound(w)
				return
			}
			pl := place{format: a.Disk.Format, sparse: a.Disk.Sparse, alias: a.Disk.Alias}
			if a.Disk.StorageDomains != nil && len(a.Disk.StorageDomains.Items) > 0 {
				pl.sd = s.sds[a.Disk.StorageDomains.Items[0].ID]
				if pl.sd == nil {
					notFound(w)
					return
				}
			}
			places[td.id] = pl
		}
	}
	for i, td := range t.disks {
		pl := places[td.id]
		sd := pl.sd
		if sd == nil {
			sd = defaultSD
		}
		if sd == nil {
			sd = td.sd
		}
		if !clone && !td.onDomain(sd) {
			// a thin VM's disks are snapshots over the template's: they
			// live where a copy of the template's disk is
			opFailed(w, http.StatusConflict, "Cannot add VM. The Template's disk "+td.alias+" does not exist on Storage Domain "+sd.name+".")
			return
		}
		if s.deny(w, PermitCreateDisk, "storage_domain", sd.id) {
			return
		}
		if sd.typ != "data" {
			opFailed(w, http.StatusConflict, "Cannot add VM. Storage Domain "+sd.name+" is not a data domain.")
			return
		}
		if sd.dc != cl.dc {
			opFailed(w, http.StatusConflict, "Cannot add VM. Storage Domain "+sd.name+" is not attached to the Data Center of the Cluster.")
			return
		}
		if sd.status != "active" {
			opFailed(w, http.StatusConflict, "Cannot add VM. The relevant Storage Domain's status is "+sd.status+".")
			return
		}
		d := &disk{id: newID(), alias: fmt.Sprintf("%s_Disk%d", name, i+1), size: td.size, format: "cow", sparse: true, sd: sd, status: "locked", bootable: td.bootable, iface: td.iface}
		if pl.alias != "" {
			d.alias = pl.alias
		}
		if pl.format != "" {
			d.format = pl.format
		}
		if pl.sparse != nil {
			d.sparse = *pl.sparse
		}
		if !clone && (d.format != "cow" || !d.sparse) {
			opFailed(w, http.StatusConflict, "Cannot add VM. A thin VM's disks must be cow and sparse; use clone=true for a copy.")
			return
		}
		v.disks = append(v.disks, d)
	}
	// NICs come from the template: the engine ignores nics in the body
	// (add them with POST /vms/{id}/nics).
	for _, n := range t.nics {
		v.nics = append(v.nics, &nicT{id: newID(), name: n.name, mac: s.nextMAC(), profile: n.profile, iface: n.iface, linked: n.linked, plugged: n.plugged})
	}
	if in.Initialization != nil {
		i := in.Initialization
		v.init = &Initialization{HostName: i.HostName, UserName: i.UserName, AuthorizedSSHKeys: i.AuthorizedSSHKeys, CustomScript: i.CustomScript, RootPassword: i.RootPassword, DNSServers: i.DNSServers, DNSSearch: i.DNSSearch, Timezone: i.Timezone}
	}
	if s.failCopies > 0 {
		s.failCopies--
		v.failCopy = true
	}
	s.addVM(v, corr, true)
	var b bytes.Buffer
	s.writeVM(xw{&b}, v, follow{})
	writeXML(w, http.StatusCreated, &b)
}

func (s *Server) vmLocked(w http.ResponseWriter, v *vm, action string) bool {
	if s.locks[v.id] > 0 {
		opFailed(w, http.StatusConflict, "Cannot "+action+" VM. Related operation is currently in progress. Please try again later.")
		return true
	}
	if v.status == StatusImageLocked {
		opFailed(w, http.StatusConflict, "Cannot "+action+" VM: VM is locked. Please try again in a few minutes.")
		return true
	}
	return false
}

type xAction struct {
	XMLName      xml.Name `xml:"action"`
	UseCloudInit *bool    `xml:"use_cloud_init"`
	UseInit      *bool    `xml:"use_initialization"`
	Force        *bool    `xml:"force"`
	Async        *bool    `xml:"async"`
}

func (s *Server) vmAction(w http.ResponseWriter, r *http.Request, v *vm, action string) {
	var a xAction
	if err := readBody(r, &a); err != nil {
		writeFault(w, http.StatusBadRequest, "Invalid request", "The request body isn't a valid action element")
		return
	}
	verb := map[string]string{"start": "run", "stop": "stop", "shutdown": "shutdown"}[action]
	corr, ok := s.checkCorrelation(w, r, verb+" VM")
	if !ok || s.deny(w, PermitVMBasicOperations, "vm", v.id) {
		return
	}
	if s.vmLocked(w, v, verb) {
		return
	}
	switch action {
	case "start":
		if v.status != StatusDown {
			opFailed(w, http.StatusConflict, "Cannot run VM. VM is running.")
			return
		}
		ci := (a.UseCloudInit != nil && *a.UseCloudInit) || (a.UseInit != nil && *a.UseInit)
		s.startVM(v, corr, ci)
	case "stop", "shutdown":
		if v.status == StatusDown {
			opFailed(w, http.StatusConflict, "Cannot "+verb+" VM. VM is not running.")
			return
		}
		s.downVM(v, corr, action == "shutdown")
	}
	var b bytes.Buffer
	x := xw{&b}
	x.open("action")
	x.text("status", "complete")
	x.close("action")
	writeXML(w, http.StatusOK, &b)
}

func (s *Server) removeVMReq(w http.ResponseWriter, r *http.Request, v *vm) {
	corr, ok := s.checkCorrelation(w, r, "remove VM")
	if !ok || s.deny(w, PermitDeleteVM, "vm", v.id) {
		return
	}
	if s.vmLocked(w, v, "remove") {
		return
	}
	if v.status != StatusDown {
		opFailed(w, http.StatusConflict, "Cannot remove VM. VM is running.")
		return
	}
	s.removeVM(v, corr)
	w.WriteHeader(http.StatusOK)
}

// updateVMReq changes name, description, comment, memory and CPU
// topology of a VM that is down (35).
func (s *Server) updateVMReq(w http.ResponseWriter, r *http.Request, v *vm) {
	var in xVM
	if err := readBody(r, &in); err != nil {
		writeFault(w, http.StatusBadRequest, "Invalid request", "The request body isn't a valid vm element")
		return
	}
	corr, ok := s.checkCorrelation(w, r, "update VM")
	if !ok || s.deny(w, PermitEditVMProperties, "vm", v.id) || s.vmLocked(w, v, "update") {
		return
	}
	if in.Name != nil && *in.Name != v.name {
		if len(*in.Name) > VMNameMax || !vmNameRE.MatchString(*in.Name) {
			opFailed(w, http.StatusBadRequest, "Cannot update VM. The given name contains special characters. Only lower-case and upper-case letters, numbers, '_', '-', '.' are allowed.")
			return
		}
		if s.byName[*in.Name] != nil {
			opFailed(w, http.StatusConflict, "Cannot update VM. The VM name is already in use, please choose a unique name and try again.")
			return
		}
		s.rename(v, *in.Name)
	}
	if in.Description != nil {
		v.description = *in.Description
	}
	if in.Comment != nil {
		v.comment = *in.Comment
	}
	if in.Memory != nil && *in.Memory > 0 {
		v.memory = *in.Memory
	}
	if in.CPU != nil && in.CPU.Topology != nil {
		if p := in.CPU.Topology.Sockets; p != nil && *p > 0 {
			v.sockets = *p
		}
		if p := in.CPU.Topology.Cores; p != nil && *p > 0 {
			v.cores = *p
		}
	}
	s.post(s.now(), CodeUpdateVM, "normal", fmt.Sprintf("VM %s configuration was updated by %s.", v.name, s.userName()), v, corr, true)
	var b bytes.Buffer
	s.writeVM(xw{&b}, v, follow{})
	writeXML(w, http.StatusOK, &b)
}

type xNic struct {
	XMLName     xml.Name `xml:"nic"`
	Name        string   `xml:"name"`
	Interface   string   `xml:"interface"`
	VnicProfile *xRef    `xml:"vnic_profile"`
}

func (s *Server) nicsAPI(w http.ResponseWriter, r *http.Request, v *vm, seg []string) {
	if len(seg) == 0 {
		switch r.Method {
		case http.MethodGet:
			var b bytes.Buffer
			x := xw{&b}
			x.open("nics")
			for _, n := range v.nics {
				s.writeNIC(x, v, n, false)
			}
			x.close("nics")
			writeXML(w, http.StatusOK, &b)
		case http.MethodPost:
			var in xNic
			if err := readBody(r, &in); err != nil || in.Name == "" {
				writeFault(w, http.StatusBadRequest, "Incomplete parameters", "Nic [name] required for add")
				return
			}
			corr, ok := s.checkCorrelation(w, r, "add Interface")
			if !ok || s.deny(w, PermitConfigureVMNetwork, "vm", v.id) || s.vmLocked(w, v, "add Interface to") {
				return
			}
			_ = corr
			n := &nicT{id: newID(), name: in.Name, mac: s.nextMAC(), iface: "virtio", linked: true, plugged: true}
			if in.Interface != "" {
				n.iface = in.Interface
			}
			if in.VnicProfile != nil {
				n.profile = s.profiles[in.VnicProfile.ID]
				if n.profile == nil {
					notFound(w)
					return
				}
			}
			for _, o := range v.nics {
				if o.name == n.name {
					opFailed(w, http.StatusConflict, "Cannot add Interface. The VM Network Interface name is already in use.")
					return
				}
			}
			v.nics = append(v.nics, n)
			var b bytes.Buffer
			s.writeNIC(xw{&b}, v, n, false)
			writeXML(w, http.StatusCreated, &b)
		default:
			methodNotAllowed(w)
		}
		return
	}
	var n *nicT
	for _, o := range v.nics {
		if o.id == seg[0] {
			n = o
		}
	}
	if n == nil {
		notFound(w)
		return
	}
	if len(seg) == 2 && seg[1] == "reporteddevices" && r.Method == http.MethodGet {
		var b bytes.Buffer
		x := xw{&b}
		x.open("reported_devices")
		s.writeReportedDevices(x, v)
		x.close("reported_devices")
		writeXML(w, http.StatusOK, &b)
		return
	}
	if len(seg) != 1 {
		notFound(w)
		return
	}
	switch r.Method {
	case http.MethodGet:
		var b bytes.Buffer
		s.writeNIC(xw{&b}, v, n, false)
		writeXML(w, http.StatusOK, &b)
	case http.MethodPut:
		var in xNic
		if err := readBody(r, &in); err != nil {
			writeFault(w, http.StatusBadRequest, "Invalid request", "The request body isn't a valid nic element")
			return
		}
		corr, ok := s.checkCorrelation(w, r, "update Interface")
		if !ok || s.deny(w, PermitConfigureVMNetwork, "vm", v.id) || s.vmLocked(w, v, "update Interface of") {
			return
		}
		if in.VnicProfile != nil {
			p := s.profiles[in.VnicProfile.ID]
			if p == nil {
				notFound(w)
				return
			}
			n.profile = p
		}
		if in.Name != "" {
			n.name = in.Name
		}
		s.post(s.now(), CodeUpdateVMInterface, "normal", fmt.Sprintf("Interface %s (%s) was updated for VM %s. (User: %s)", n.name, n.iface, v.name, s.userName()), v, corr, true)
		var b bytes.Buffer
		s.writeNIC(xw{&b}, v, n, false)
		writeXML(w, http.StatusOK, &b)
	default:
		methodNotAllowed(w)
	}
}

var templateFields = map[string]bool{"name": true, "status": true, "cluster": true, "datacenter": true, "id": true}

var templateFollow = map[string]func(*follow){
	"disk_attachments":      func(f *follow) { f.diskAttachments = true },
	"disk_attachments.disk": func(f *follow) { f.diskAttachments, f.disks = true, true },
	"nics":                  func(f *follow) { f.nics = true },
}

func (s *Server) templateField(t *template, f string) string {
	switch f {
	case "name":
		return t.name
	case "status":
		return t.status
	case "id":
		return t.id
	case "cluster":
		if t.cluster != nil {
			return t.cluster.name
		}
	case "datacenter":
		if t.cluster != nil {
			return t.cluster.dc.name
		}
	}
	return ""
}

func (s *Server) templatesAPI(w http.ResponseWriter, r *http.Request, seg []string, q url.Values) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	f, ok := parseFollow(q, templateFollow)
	if !ok {
		writeFault(w, http.StatusBadRequest, "Operation Failed", "[Unknown link in follow]")
		return
	}
	if len(seg) == 0 {
		max, qr, cs, ok := listParams(q, templateFields)
		if !ok {
			badSearch(w)
			return
		}
		ts := make([]*template, 0, len(s.templates))
		for _, t := range s.templates {
			if qr.match(func(f string) string { return s.templateField(t, f) }, cs) {
				ts = append(ts, t)
			}
		}
		sort.Slice(ts, func(i, j int) bool {
			return ts[i].name < ts[j].name || (ts[i].name == ts[j].name && ts[i].id < ts[j].id)
		})
		lo, hi := window(len(ts), max, qr)
		var b bytes.Buffer
		x := xw{&b}
		x.open("templates")
		for _, t := range ts[lo:hi] {
			s.writeTemplate(x, t, f)
		}
		x.close("templates")
		writeXML(w, http.StatusOK, &b)
		return
	}
	t := s.templates[seg[0]]
	if t == nil {
		notFound(w)
		return
	}
	var b bytes.Buffer
	x := xw{&b}
	switch {
	case len(seg) == 1:
		s.writeTemplate(x, t, f)
	case len(seg) == 2 && seg[1] == "diskattachments":
		x.open("disk_attachments")
		for _, d := range t.disks {
			s.writeDiskAttachment(x, "templates", t.id, d, f.disks)
		}
		x.close("disk_attachments")
	case len(seg) == 2 && seg[1] == "nics":
		tf := follow{nics: true}
		var tb bytes.Buffer
		s.writeTemplate(xw{&tb}, t, tf)
		// the nics element of the template, alone
		out := tb.String()
		i, j := strings.Index(out, "<nics>"), strings.Index(out, "</nics>")
		b.WriteString(out[i : j+len("</nics>")])
	default:
		notFound(w)
		return
	}
	writeXML(w, http.StatusOK, &b)
}

// simpleList serves the collections that only list and get.
func (s *Server) simpleList(w http.ResponseWriter, r *http.Request, seg []string, q url.Values, coll, kind string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	type item struct {
		name, id string
		get      func(string) string
		write    func(xw)
	}
	var items []item
	var fields map[string]bool
	switch kind {
	case "cluster":
		fields = map[string]bool{"name": true, "datacenter": true, "id": true}
		for _, c := range s.clusters {
			items = append(items, item{c.name, c.id, func(f string) string {
				return map[string]string{"name": c.name, "datacenter": c.dc.name, "id": c.id}[f]
			}, func(x xw) { s.writeCluster(x, c) }})
		}
	case "storagedomain":
		fields = map[string]bool{"name": true, "status": true, "type": true, "datacenter": true, "id": true}
		for _, sd := range s.sds {
			dcn := ""
			if sd.dc != nil {
				dcn = sd.dc.name
			}
			items = append(items, item{sd.name, sd.id, func(f string) string {
				return map[string]string{"name": sd.name, "status": sd.status, "type": sd.typ, "datacenter": dcn, "id": sd.id}[f]
			}, func(x xw) { s.writeStorageDomain(x, sd, false) }})
		}
	case "vnicprofile":
		fields = map[string]bool{}
		for _, p := range s.profiles {
			items = append(items, item{p.name, p.id, func(string) string { return "" }, func(x xw) { s.writeProfile(x, p) }})
		}
	}
	if len(seg) > 0 {
		for _, it := range items {
			if it.id == seg[0] && len(seg) == 1 {
				var b bytes.Buffer
				it.write(xw{&b})
				writeXML(w, http.StatusOK, &b)
				return
			}
		}
		notFound(w)
		return
	}
	if kind == "vnicprofile" && q.Get("search") != "" {
		// VnicProfilesService.List has no search parameter; the engine
		// ignores it.
		q.Del("search")
	}
	max, qr, cs, ok := listParams(q, fields)
	if !ok {
		badSearch(w)
		return
	}
	sort.Slice(items, func(i, j int) bool {
		return items[i].name < items[j].name || (items[i].name == items[j].name && items[i].id < items[j].id)
	})
	var hits []item
	for _, it := range items {
		if qr.match(it.get, cs) {
			hits = append(hits, it)
		}
	}
	lo, hi := window(len(hits), max, qr)
	var b bytes.Buffer
	x := xw{&b}
	x.open(coll)
	for _, it := range hits[lo:hi] {
		it.write(x)
	}
	x.close(coll)
	writeXML(w, http.StatusOK, &b)
}

func (s *Server) dataCentersAPI(w http.ResponseWriter, r *http.Request, seg []string, q url.Values) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	if len(seg) == 0 {
		max, qr, cs, ok := listParams(q, map[string]bool{"name": true, "status": true, "id": true})
		if !ok {
			badSearch(w)
			return
		}
		var ds []*dataCenter
		for _, d := range s.dcs {
			if qr.match(func(f string) string {
				return map[string]string{"name": d.name, "status": d.status, "id": d.id}[f]
			}, cs) {
				ds = append(ds, d)
			}
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i].name < ds[j].name })
		lo, hi := window(len(ds), max, qr)
		var b bytes.Buffer
		x := xw{&b}
		x.open("data_centers")
		for _, d := range ds[lo:hi] {
			s.writeDataCenter(x, d)
		}
		x.close("data_centers")
		writeXML(w, http.StatusOK, &b)
		return
	}
	d := s.dcs[seg[0]]
	if d == nil {
		notFound(w)
		return
	}
	var b bytes.Buffer
	x := xw{&b}
	switch {
	case len(seg) == 1:
		s.writeDataCenter(x, d)
	case seg[1] == "storagedomains" && len(seg) <= 3:
		var sds []*storageDomain
		for _, sd := range s.sds {
			if sd.dc == d && (len(seg) == 2 || sd.id == seg[2]) {
				sds = append(sds, sd)
			}
		}
		sort.Slice(sds, func(i, j int) bool { return sds[i].name < sds[j].name })
		if len(seg) == 3 {
			if len(sds) == 0 {
				notFound(w)
				return
			}
			s.writeStorageDomain(x, sds[0], true)
			break
		}
		x.open("storage_domains")
		for _, sd := range sds {
			s.writeStorageDomain(x, sd, true)
		}
		x.close("storage_domains")
	case seg[1] == "clusters" && len(seg) == 2:
		var cs []*cluster
		for _, c := range s.clusters {
			if c.dc == d {
				cs = append(cs, c)
			}
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
		x.open("clusters")
		for _, c := range cs {
			s.writeCluster(x, c)
		}
		x.close("clusters")
	case seg[1] == "networks" && len(seg) == 2:
		x.open("networks")
		for _, n := range s.sortedNetworks() {
			if n.dc == d {
				s.writeNetwork(x, n)
			}
		}
		x.close("networks")
	default:
		notFound(w)
		return
	}
	writeXML(w, http.StatusOK, &b)
}

func (s *Server) sortedNetworks() []*network {
	ns := make([]*network, 0, len(s.networks))
	for _, n := range s.networks {
		ns = append(ns, n)
	}
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].dc.name != ns[j].dc.name {
			return ns[i].dc.name < ns[j].dc.name
		}
		return ns[i].name < ns[j].name
	})
	return ns
}

func (s *Server) networksAPI(w http.ResponseWriter, r *http.Request, seg []string, q url.Values) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	if len(seg) == 0 {
		max, qr, cs, ok := listParams(q, map[string]bool{"name": true, "datacenter": true, "vlanid": true, "id": true})
		if !ok {
			badSearch(w)
			return
		}
		var ns []*network
		for _, n := range s.sortedNetworks() {
			if qr.match(func(f string) string {
				return map[string]string{"name": n.name, "datacenter": n.dc.name, "vlanid": strconv.Itoa(n.vlan), "id": n.id}[f]
			}, cs) {
				ns = append(ns, n)
			}
		}
		lo, hi := window(len(ns), max, qr)
		var b bytes.Buffer
		x := xw{&b}
		x.open("networks")
		for _, n := range ns[lo:hi] {
			s.writeNetwork(x, n)
		}
		x.close("networks")
		writeXML(w, http.StatusOK, &b)
		return
	}
	n := s.networks[seg[0]]
	if n == nil {
		notFound(w)
		return
	}
	var b bytes.Buffer
	x := xw{&b}
	switch {
	case len(seg) == 1:
		s.writeNetwork(x, n)
	case len(seg) == 2 && seg[1] == "vnicprofiles":
		var ps []*vnicProfile
		for _, p := range s.profiles {
			if p.net == n {
				ps = append(ps, p)
			}
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
		x.open("vnic_profiles")
		for _, p := range ps {
			s.writeProfile(x, p)
		}
		x.close("vnic_profiles")
	default:
		notFound(w)
		return
	}
	writeXML(w, http.StatusOK, &b)
}

// eventFields are the engine's audit log search fields the fake knows
// (AuditLogConditionFieldAutoCompleter).
var eventFields = map[string]bool{"type": true, "severity": true, "message": true, "correlation_id": true, "event_vm": true, "event_template": true, "event_datacenter": true, "origin": true, "usrname": true}

// eventsAPI lists events newest first (the engine sorts by index,
// highest first); from=N keeps those with index > N; max cuts the list
// after sorting, so max with from gives the newest max events above N.
func (s *Server) eventsAPI(w http.ResponseWriter, r *http.Request, seg []string, q url.Values) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	if len(seg) == 1 {
		n, err := strconv.ParseInt(seg[0], 10, 64)
		if err != nil {
			notFound(w)
			return
		}
		for _, e := range s.events {
			if e.index == n {
				var b bytes.Buffer
				s.writeEvent(xw{&b}, e)
				writeXML(w, http.StatusOK, &b)
				return
			}
		}
		notFound(w)
		return
	}
	if len(seg) > 1 {
		notFound(w)
		return
	}
	max, qr, cs, ok := listParams(q, eventFields)
	if !ok {
		badSearch(w)
		return
	}
	from := int64(-1)
	if f := q.Get("from"); f != "" {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			writeFault(w, http.StatusBadRequest, "Invalid value", "Value '"+f+"' of parameter 'from' isn't a valid integer")
			return
		}
		from = n
	}
	var b bytes.Buffer
	x := xw{&b}
	x.open("events")
	count := 0
	for i := len(s.events) - 1; i >= 0; i-- {
		e := s.events[i]
		if e.index <= from {
			break
		}
		if !qr.match(func(f string) string {
			switch f {
			case "type":
				return strconv.Itoa(e.code)
			case "severity":
				return e.severity
			case "correlation_id":
				return e.correlationID
			case "event_vm":
				return e.vmName
			case "event_template":
				if t := s.templates[e.templateID]; t != nil {
					return t.name
				}
			case "event_datacenter":
				if d := s.dcs[e.dcID]; d != nil {
					return d.name
				}
			case "message":
				return e.description
			case "origin":
				return "oVirt"
			case "usrname":
				if e.user {
					return s.userName()
				}
			}
			return ""
		}, cs) {
			continue
		}
		if max >= 0 && count >= max {
			break
		}
		s.writeEvent(x, e)
		count++
	}
	x.close("events")
	writeXML(w, http.StatusOK, &b)
}

func (s *Server) jobsAPI(w http.ResponseWriter, r *http.Request, seg []string, q url.Values) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	if len(seg) == 1 {
		for _, j := range s.jobs {
			if j.id == seg[0] {
				var b bytes.Buffer
				s.writeJob(xw{&b}, j)
				writeXML(w, http.StatusOK, &b)
				return
			}
		}
	}
	if len(seg) > 0 {
		notFound(w)
		return
	}
	// correlation_id is the one search field of jobs
	// (JobConditionFieldAutoCompleter); results are by start_time, oldest
	// first, the engine's default sort for jobs.
	max, qr, cs, ok := listParams(q, map[string]bool{"correlation_id": true})
	if !ok {
		badSearch(w)
		return
	}
	var b bytes.Buffer
	x := xw{&b}
	x.open("jobs")
	count := 0
	for _, j := range s.jobs {
		if max >= 0 && count >= max {
			break
		}
		if qr.match(func(string) string { return j.correlationID }, cs) {
			s.writeJob(x, j)
			count++
		}
	}
	x.close("jobs")
	writeXML(w, http.StatusOK, &b)
}
