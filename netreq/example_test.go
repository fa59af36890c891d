package netreq_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/netreq"
	"github.com/managedvm/managedvm/notify/smtpnotify"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

func ExampleDerive() {
	// A stand-in for vsphere.New's Provider, which states its vCenter.
	vc := memprovider.New(&memprovider.Options{Flows: []provider.Flow{{
		Service: "Service Orchestration", Destination: "VMware vCenter Server", Host: "vc.example",
		Ports: []uint16{443}, TLS: true, Why: "vSphere API",
	}}})
	m, err := netreq.Derive(netreq.Config{
		Providers: map[string]*provider.Provider{"vc1": vc.Provider()},
		Policy:    enroll.Policy{Pool: "public", ManagementSources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		Relay:     &smtpnotify.Relay{Addr: "smtp.example:587"},
		LDAP:      []string{"ldaps://dc1.example"},
		PortalURL: "https://portal.example",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = m.WriteTable(os.Stdout)
	// Output:
	// SERVICE                SOURCE                                      DESTINATION                                                   PROTOCOL/PORTS  REQUIRED  WHY
	// Service Orchestration  Orchestrator                                VMware vCenter Server (provider vc1) at vc.example            TCP: 443        yes       vSphere API
	// Service Orchestration  Orchestrator, allowed from 198.51.100.0/24  Linux VMs, default profile (public IPs from pool "public")    TCP: 22         yes       guest configuration over SSH (enrollment, agent install)
	// Service Orchestration  Orchestrator, allowed from 198.51.100.0/24  Windows VMs, default profile (public IPs from pool "public")  TCP: 5985       yes       guest configuration over WinRM (HTTP)
	// Service Orchestration  Orchestrator, allowed from 198.51.100.0/24  Windows VMs, default profile (public IPs from pool "public")  TCP: 5986       yes       guest configuration over WinRM (HTTPS)
	// Service Orchestration  Orchestrator, allowed from 198.51.100.0/24  Windows VMs, default profile (public IPs from pool "public")  TCP: 3389       yes       remote desktop for the customer's administrators
	// Notification           Orchestrator                                SMTP relay at smtp.example                                    TCP: 587        yes       notification mail (plain connection upgraded with STARTTLS)
	// Authentication         Orchestrator                                AD/LDAP services at dc1.example                               TCP: 636        yes       directory authentication (LDAP over TLS)
	// Agent                  Managed Linux/Windows VMs                   Portal at portal.example                                      TCP: 443        yes       agent API and downloads (HTTPS)
	// Agent                  Managed Linux/Windows VMs                   Portal at portal.example                                      TCP: 5671       yes       agent message bus (AMQP over TLS)
}

func ExampleProbe() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	flows := []netreq.Flow{
		{ID: "svc", Service: "Service", Source: netreq.Orchestrator, Destination: "a service", Host: "127.0.0.1",
			Protocol: "tcp", Ports: []uint16{port}, Kind: netreq.TCP, Checkable: true},
		{ID: "agent", Service: "Agent", Source: netreq.ManagedVMs, Destination: "Portal", Host: "portal.example",
			Protocol: "tcp", Ports: []uint16{5671}, Kind: netreq.AMQPS},
	}
	r := netreq.Probe(context.Background(), flows, &netreq.ProbeOptions{Timeout: 2 * time.Second})
	for _, c := range r.Checks {
		fmt.Printf("%s %s: %s\n", c.Status, c.Name, c.Detail)
	}
	// Output:
	// pass Service: Orchestrator to a service: connected
	// warn Agent: Managed Linux/Windows VMs to Portal: not checkable from here
}
