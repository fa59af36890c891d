package provider

import (
	"net"
	"net/url"
	"slices"
	"strconv"
)

// Flow is one network flow a driver needs from the host running the
// library (the orchestrator) to the platform it drives: the rows a
// firewall team opens. Package netreq turns them into the requirements
// matrix and probes them.
type Flow struct {
	// Service is the reference's column ("Service Orchestration").
	Service string
	// Destination names what is reached ("VMware vCenter Server").
	Destination string
	// Host is a DNS name or an IP literal.
	Host string
	// Ports are TCP ports on Host.
	Ports []uint16
	// TLS says the ports speak TLS from the first byte (HTTPS).
	TLS bool
	// Why says what the flow is used for.
	Why string
	// Optional is true when the driver works without the flow.
	Optional bool
}

// FlowsDriver is the optional capability of a Driver that states the
// flows it needs (Provider.Flows finds it). Flows does no I/O: it reports
// what the driver was configured with.
type FlowsDriver interface {
	Flows() []Flow
}

// Flows returns the flows the provider's driver states, if it implements
// FlowsDriver; ok is false otherwise. The slice and the Ports are fresh.
func (p *Provider) Flows() (flows []Flow, ok bool) {
	fd, ok := p.d.(FlowsDriver)
	if !ok {
		return nil, false
	}
	flows = slices.Clone(fd.Flows())
	for i := range flows {
		flows[i].Ports = slices.Clone(flows[i].Ports)
	}
	return flows, true
}

// URLFlow is the flow to the endpoint of an http(s) URL: its host, its
// port (443 for https, 80 for http when the URL names none), TLS for https.
// It is false when rawURL is not an http(s) URL with a host.
func URLFlow(service, destination, rawURL, why string) (Flow, bool) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return Flow{}, false
	}
	port := uint16(443)
	if u.Scheme == "http" {
		port = 80
	}
	if s := u.Port(); s != "" {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return Flow{}, false
		}
		port = uint16(n)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return Flow{Service: service, Destination: destination, Host: host, Ports: []uint16{port},
		TLS: u.Scheme == "https", Why: why}, true
}
