package netreq

import (
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/notify/smtpnotify"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/report"
)

// Kind says what a flow's ports speak, and so what Probe checks on them.
type Kind string

// The kinds. Probe connects over TCP for every kind, then:
const (
	TCP        Kind = "tcp"         // nothing more
	HTTPS      Kind = "https"       // a verified TLS handshake
	SSH        Kind = "ssh"         // the SSH identification banner
	SMTP       Kind = "smtp"        // 220 greeting, STARTTLS offered in the EHLO reply, STARTTLS and a verified handshake
	SMTPS      Kind = "smtps"       // a verified TLS handshake, then the 220 greeting
	LDAP       Kind = "ldap"        // the StartTLS extended operation, then a verified handshake
	LDAPS      Kind = "ldaps"       // a verified TLS handshake
	WinRMHTTP  Kind = "winrm-http"  // nothing more
	WinRMHTTPS Kind = "winrm-https" // a verified TLS handshake
	RDP        Kind = "rdp"         // an X.224 connection confirm to a connection request
	AMQPS      Kind = "amqps"       // a verified TLS handshake
	PostgreSQL Kind = "postgresql"  // an SSLRequest answered with 'S', then a verified handshake
)

// tlsFirst reports whether the kind speaks TLS from the first byte.
func (k Kind) tlsFirst() bool {
	switch k {
	case HTTPS, SMTPS, LDAPS, WinRMHTTPS, AMQPS:
		return true
	}
	return false
}

// Sources and destinations the matrix names.
const (
	// Orchestrator is the host running the library.
	Orchestrator = "Orchestrator"
	// ManagedVMs are the enrolled VMs, as a source.
	ManagedVMs = "Managed Linux/Windows VMs"
)

// Flow is one row of the requirements matrix: a TCP flow from Source to
// Destination on Ports. Host is the address Probe dials (empty when the
// destination is not one address, e.g. every enrolled VM); ServerName is
// the name a TLS certificate must carry (Host when empty).
type Flow struct {
	ID          string   `json:"id"`
	Service     string   `json:"service"`
	Source      string   `json:"source"`
	Destination string   `json:"destination"`
	Host        string   `json:"host,omitempty"`
	ServerName  string   `json:"server_name,omitempty"`
	Protocol    string   `json:"protocol"`
	Ports       []uint16 `json:"ports"`
	Kind        Kind     `json:"kind"`
	Why         string   `json:"why"`
	Required    bool     `json:"required"`
	// Checkable is true when Probe can check the flow from the
	// orchestrator: it starts there and Host is set.
	Checkable bool `json:"checkable"`
}

// PortList is the reference's "TCP: 389,636" form.
func (f Flow) PortList() string {
	s := make([]string, len(f.Ports))
	for i, p := range f.Ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.ToUpper(f.Protocol) + ": " + strings.Join(s, ",")
}

// Config is what the host configured; every field is optional.
type Config struct {
	// Providers by name (enroll.Config.Providers). Each one whose driver
	// implements provider.FlowsDriver adds its rows.
	Providers map[string]*provider.Provider
	// Policy and Profiles are enroll.Config's: the ports per OS family
	// give the orchestrator-to-VM rows, the pools name the addresses.
	Policy   enroll.Policy
	Profiles map[string]enroll.Policy
	// Relay is the notification relay (smtpnotify).
	Relay *smtpnotify.Relay
	// LDAP are the directory URLs: ldap://host[:port] (StartTLS, 389) or
	// ldaps://host[:port] (636).
	LDAP []string
	// PortalURL is the portal the VMs' agents reach; AgentPorts the ports
	// on its host they use (default 443 and 5671, the reference's).
	PortalURL  string
	AgentPorts []uint16
	// PostgreSQL are the URLs of the databases the orchestrator uses
	// (enroll/pgstore, ipam/pgipam, cmdb/pgcmdb): only their host and port
	// are read (default 5432); user information is ignored.
	PostgreSQL []string
}

// Matrix is the requirements matrix: every flow the configuration needs.
type Matrix struct {
	Flows []Flow `json:"flows"`
	// Silent are the providers whose driver states no flows (it does not
	// implement provider.FlowsDriver): their endpoints are missing from
	// Flows and must be opened by hand.
	Silent []string `json:"silent_providers,omitempty"`
}

// Derive computes the matrix from cfg. It does no I/O. The default
// Policy adds rows only when it is set (not the zero Policy); each named
// profile adds its own. A relay address,
// LDAP URL or portal URL that does not parse is InvalidArgument.
func Derive(cfg Config) (*Matrix, error) {
	const op = "netreq.Derive"
	m := &Matrix{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Providers)) {
		flows, ok := cfg.Providers[name].Flows()
		if !ok {
			m.Silent = append(m.Silent, name)
			continue
		}
		for i, pf := range flows {
			kind := TCP
			if pf.TLS {
				kind = HTTPS
			}
			m.Flows = append(m.Flows, Flow{
				ID: fmt.Sprintf("provider.%s.%d", name, i), Service: pf.Service, Source: Orchestrator,
				Destination: pf.Destination + " (provider " + name + ")", Host: pf.Host, Protocol: "tcp",
				Ports: slices.Clone(pf.Ports), Kind: kind, Why: pf.Why, Required: !pf.Optional, Checkable: pf.Host != "",
			})
		}
	}
	profiles := map[string]enroll.Policy{}
	if !zeroPolicy(cfg.Policy) {
		profiles[""] = cfg.Policy
	}
	for name, p := range cfg.Profiles {
		profiles[name] = p
	}
	for _, name := range slices.Sorted(maps.Keys(profiles)) {
		m.Flows = append(m.Flows, vmFlows(name, profiles[name])...)
	}
	if cfg.Relay != nil {
		host, port, err := hostPort(cfg.Relay.Addr)
		if err != nil {
			return nil, errs.Errorf(errs.InvalidArgument, op, "relay address %s: %v", limit.Quote(cfg.Relay.Addr), err)
		}
		kind, why := SMTP, "notification mail (plain connection upgraded with STARTTLS)"
		if cfg.Relay.Security == smtpnotify.ImplicitTLS {
			kind, why = SMTPS, "notification mail (implicit TLS)"
		}
		m.Flows = append(m.Flows, Flow{ID: "notify.smtp", Service: "Notification", Source: Orchestrator,
			Destination: "SMTP relay", Host: host, ServerName: cfg.Relay.ServerName, Protocol: "tcp",
			Ports: []uint16{port}, Kind: kind, Why: why, Required: true, Checkable: true})
	}
	for i, raw := range cfg.LDAP {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" {
			return nil, errs.Errorf(errs.InvalidArgument, op, "LDAP URL %s: want ldap://host[:port] or ldaps://host[:port]", limit.Quote(raw))
		}
		kind, port, why := LDAP, uint16(389), "directory authentication (LDAP upgraded with StartTLS)"
		if u.Scheme == "ldaps" {
			kind, port, why = LDAPS, 636, "directory authentication (LDAP over TLS)"
		}
		if u.Port() != "" {
			if port, err = parsePort(u.Port()); err != nil {
				return nil, errs.Errorf(errs.InvalidArgument, op, "LDAP URL %s: %v", limit.Quote(raw), err)
			}
		}
		m.Flows = append(m.Flows, Flow{ID: fmt.Sprintf("auth.ldap.%d", i), Service: "Authentication", Source: Orchestrator,
			Destination: "AD/LDAP services", Host: u.Hostname(), Protocol: "tcp", Ports: []uint16{port}, Kind: kind,
			Why: why, Required: true, Checkable: true})
	}
	for i, raw := range cfg.PostgreSQL {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Hostname() == "" {
			// Not quoted: the URL may hold a password.
			return nil, errs.Errorf(errs.InvalidArgument, op, "PostgreSQL URL %d: want postgres://host[:port]/...", i)
		}
		port := uint16(5432)
		if u.Port() != "" {
			if port, err = parsePort(u.Port()); err != nil {
				return nil, errs.Errorf(errs.InvalidArgument, op, "PostgreSQL URL %d: %v", i, err)
			}
		}
		m.Flows = append(m.Flows, Flow{ID: fmt.Sprintf("db.postgresql.%d", i), Service: "State", Source: Orchestrator,
			Destination: "PostgreSQL", Host: u.Hostname(), Protocol: "tcp", Ports: []uint16{port}, Kind: PostgreSQL,
			Why: "journals, leases, address pools and CMDB records", Required: true, Checkable: true})
	}
	if cfg.PortalURL != "" {
		u, err := url.Parse(cfg.PortalURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
			return nil, errs.Errorf(errs.InvalidArgument, op, "portal URL %s: want an http(s) URL", limit.Quote(cfg.PortalURL))
		}
		ports := cfg.AgentPorts
		if len(ports) == 0 {
			ports = []uint16{443, 5671}
		}
		for _, p := range ports {
			kind, why := TCP, "agent traffic to the portal"
			switch p {
			case 443:
				kind, why = HTTPS, "agent API and downloads (HTTPS)"
			case 5671:
				kind, why = AMQPS, "agent message bus (AMQP over TLS)"
			}
			m.Flows = append(m.Flows, Flow{ID: fmt.Sprintf("agent.%d", p), Service: "Agent", Source: ManagedVMs,
				Destination: "Portal", Host: u.Hostname(), Protocol: "tcp", Ports: []uint16{p},
				Kind: kind, Why: why, Required: true})
		}
	}
	return m, nil
}

// zeroPolicy reports whether p is unset (a Config without enrollment).
func zeroPolicy(p enroll.Policy) bool {
	return len(p.Families) == 0 && len(p.Requirements) == 0 && len(p.Ports) == 0 &&
		len(p.ManagementSources) == 0 && p.Pool == "" && len(p.PoolByZone) == 0
}

// vmFlows are the orchestrator-to-VM rows of one profile ("" is the
// default Policy): one per family and port.
func vmFlows(profile string, p enroll.Policy) []Flow {
	families := p.Families
	if len(families) == 0 {
		families = []guest.OSFamily{guest.Linux, guest.Windows}
	}
	label := "default profile"
	id := "vm.default"
	if profile != "" {
		label, id = "profile "+limit.Quote(profile), "vm."+profile
	}
	pools := p.Pool
	if pools == "" {
		pools = "(none)"
	} else {
		pools = limit.Quote(pools)
	}
	for _, z := range slices.Sorted(maps.Keys(p.PoolByZone)) {
		pools += fmt.Sprintf(", zone %s: %s", limit.Quote(z), limit.Quote(p.PoolByZone[z]))
	}
	source := Orchestrator
	if len(p.ManagementSources) > 0 {
		src := make([]string, len(p.ManagementSources))
		for i, s := range p.ManagementSources {
			src[i] = s.String()
		}
		source += ", allowed from " + strings.Join(src, ", ")
	}
	var out []Flow
	for _, f := range families {
		ports, ok := p.Ports[f]
		if !ok {
			ports = natfw.LinuxPorts()
			if f == guest.Windows {
				ports = natfw.WindowsPorts()
			}
		}
		for _, port := range ports {
			kind, why := vmKind(port)
			out = append(out, Flow{
				ID: fmt.Sprintf("%s.%s.%s", id, f, port), Service: "Service Orchestration", Source: source,
				Destination: fmt.Sprintf("%s VMs, %s (public IPs from pool %s)", familyName(f), label, pools),
				Protocol:    string(port.Protocol), Ports: []uint16{port.Number}, Kind: kind, Why: why, Required: true,
			})
		}
	}
	return out
}

func familyName(f guest.OSFamily) string {
	switch f {
	case guest.Linux:
		return "Linux"
	case guest.Windows:
		return "Windows"
	}
	return limit.Quote(string(f))
}

func vmKind(p natfw.Port) (Kind, string) {
	if p.Protocol != natfw.TCP {
		return TCP, "management port of the profile"
	}
	switch p.Number {
	case 22:
		return SSH, "guest configuration over SSH (enrollment, agent install)"
	case 5985:
		return WinRMHTTP, "guest configuration over WinRM (HTTP)"
	case 5986:
		return WinRMHTTPS, "guest configuration over WinRM (HTTPS)"
	case 3389:
		return RDP, "remote desktop for the customer's administrators"
	}
	return TCP, "management port of the profile"
}

func hostPort(addr string) (string, uint16, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port")
	}
	if h == "" {
		return "", 0, fmt.Errorf("no host")
	}
	n, err := parsePort(p)
	return h, n, err
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s is not 1-65535", limit.Quote(s))
	}
	return uint16(n), nil
}

// Report is the matrix as report rows: one Pass row per flow (the row
// states a requirement; Probe checks it), and one Warn row per provider
// whose driver states no flows.
func (m *Matrix) Report() report.Report {
	var r report.Report
	for _, f := range m.Flows {
		need := "required"
		if !f.Required {
			need = "optional"
		}
		subject := f.Destination
		if f.Host != "" {
			subject = f.Host
		}
		r.Add(report.Check{ID: "netreq." + f.ID, Name: f.Service + ": " + f.Source + " to " + f.Destination,
			Status: report.Pass, Subject: subject, Detail: fmt.Sprintf("%s, %s: %s", f.PortList(), need, f.Why)})
	}
	for _, name := range m.Silent {
		r.Add(report.Check{ID: "netreq.provider." + name, Name: "Provider states its network flows", Status: report.Warn,
			Subject: name, Detail: "the driver does not implement provider.FlowsDriver",
			Fix: "open the provider's API endpoint from the orchestrator by hand, or add Flows to the driver"})
	}
	return r
}

// WriteTable writes the matrix in the reference's columns (Service,
// Source, Destination, Protocol/Ports) plus Required and Why.
func (m *Matrix) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSOURCE\tDESTINATION\tPROTOCOL/PORTS\tREQUIRED\tWHY")
	for _, f := range m.Flows {
		dst := f.Destination
		if f.Host != "" {
			dst += " at " + f.Host
		}
		need := "yes"
		if !f.Required {
			need = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Service, f.Source, dst, f.PortList(), need, f.Why)
	}
	return tw.Flush()
}

// VMFlows are the flows from the orchestrator to one enrolled VM through
// its public address, one per port of its NAT rule (enroll's
// Resources.PublicIP and Ports), with the kinds of the profile rows (SSH
// on 22, WinRM on 5985/5986, RDP on 3389, TCP otherwise). Probe checks
// them: that the VM's management ports answer through the NAT from here.
func VMFlows(public netip.Addr, ports []natfw.Port) []Flow {
	var out []Flow
	for _, p := range ports {
		kind, why := vmKind(p)
		out = append(out, Flow{
			ID: "vm." + public.String() + "." + p.String(), Service: "Service Orchestration", Source: Orchestrator,
			Destination: "VM at " + public.String(), Host: public.String(), Protocol: string(p.Protocol),
			Ports: []uint16{p.Number}, Kind: kind, Why: why, Required: true, Checkable: p.Protocol == natfw.TCP,
		})
	}
	return out
}
