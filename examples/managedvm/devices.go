package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
)

// Device is one indexed VM as the command line, the API and the portal
// show it.
type Device struct {
	Provider   string    `json:"provider"`
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Zone       string    `json:"zone"`
	Power      string    `json:"power"`
	OS         string    `json:"os"`
	Family     string    `json:"family"`
	LocalIP    string    `json:"local_ip"`
	State      string    `json:"state"`
	PublicIP   string    `json:"public_ip,omitempty"`
	Ports      []string  `json:"ports,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	FailedStep string    `json:"failed_step,omitempty"`
	Changed    time.Time `json:"changed"`
	EnrolledAt time.Time `json:"enrolled_at,omitzero"`
	// Access is filled for one enrolled device (show, the device page).
	Access *Access `json:"access,omitempty"`
}

// Access is how an enrolled VM is reached: its public endpoint per
// protocol and the prefixes allowed to use them.
type Access struct {
	Endpoints []Endpoint `json:"endpoints"`
	Sources   []string   `json:"sources"`
}

// Endpoint is one protocol at the public address.
type Endpoint struct {
	Protocol string `json:"protocol"` // ssh, winrm-https, winrm-http, rdp, tcp
	Address  string `json:"address"`  // host:port
}

// Key is the device's CMDB key, "provider/id".
func (d Device) Key() string { return d.Provider + "/" + d.ID }

func deviceOf(r cmdb.Record) Device {
	d := Device{
		Provider:   r.Key.Provider,
		ID:         r.Key.VMID,
		Name:       r.VM.Name,
		Zone:       r.VM.Zone,
		Power:      string(r.VM.Power),
		OS:         r.VM.Guest.OSName,
		Family:     r.VM.Guest.Family.String(),
		State:      string(r.State),
		Reason:     r.Reason,
		FailedStep: r.FailedStep,
		Changed:    r.Updated.UTC(),
		EnrolledAt: r.EnrolledAt.UTC(),
	}
	if ip, ok := r.VM.PrimaryIP(); ok {
		d.LocalIP = ip.String()
	}
	if r.PublicIP.IsValid() {
		d.PublicIP = r.PublicIP.String()
	}
	for _, p := range r.Ports {
		d.Ports = append(d.Ports, p.String())
	}
	return d
}

// ListDevices lists the indexed VMs, sorted by provider then name.
func (s *Stack) ListDevices(ctx context.Context, f cmdb.Filter) ([]Device, error) {
	recs, err := s.CMDB.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]Device, len(recs))
	for i, r := range recs {
		out[i] = deviceOf(r)
	}
	slices.SortFunc(out, func(a, b Device) int {
		if c := strings.Compare(a.Provider, b.Provider); c != 0 {
			return c
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Sync indexes every provider once (what serve's Indexer does
// continuously): the command line calls it before reading the CMDB.
func (s *Stack) Sync(ctx context.Context) error {
	ix := s.Orch.Indexer(nil)
	for _, name := range s.ProviderNames() {
		if err := ix.Sync(ctx, name); err != nil {
			return fmt.Errorf("indexing %s: %w", name, err)
		}
	}
	return nil
}

// FindDevice resolves what a user typed: "provider/id", or a VM's ID or
// name (within providerName when it is set). No match is NotFound, more
// than one InvalidArgument.
func (s *Stack) FindDevice(ctx context.Context, providerName, ref string) (Device, error) {
	if p, id, ok := strings.Cut(ref, "/"); ok && providerName == "" {
		if _, known := s.Providers[p]; known {
			r, err := s.CMDB.Get(ctx, cmdb.Key{Provider: p, VMID: id})
			if err != nil {
				return Device{}, err
			}
			return s.withAccess(ctx, deviceOf(r))
		}
	}
	if providerName != "" {
		if _, known := s.Providers[providerName]; !known {
			return Device{}, errs.Errorf(errs.NotFound, "", "no provider %s in the configuration", quote(providerName))
		}
	}
	all, err := s.ListDevices(ctx, cmdb.Filter{Provider: providerName})
	if err != nil {
		return Device{}, err
	}
	var found []Device
	for _, d := range all {
		if d.ID == ref || d.Name == ref {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return Device{}, errs.Errorf(errs.NotFound, "", "no device named %s", quote(ref))
	case 1:
		return s.withAccess(ctx, found[0])
	}
	keys := make([]string, len(found))
	for i, d := range found {
		keys[i] = d.Key()
	}
	return Device{}, errs.Errorf(errs.InvalidArgument, "", "%s names %d devices (%s): give provider/id", quote(ref), len(found), strings.Join(keys, ", "))
}

// withAccess adds the access of an enrolled device from its NAT rule.
func (s *Stack) withAccess(ctx context.Context, d Device) (Device, error) {
	if d.State != string(cmdb.Enrolled) {
		return d, nil
	}
	rule, err := s.Firewall.Get(ctx, d.Key())
	if errs.CodeOf(err) == errs.NotFound {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	d.Access = accessOf(rule)
	return d, nil
}

func accessOf(r natfw.Rule) *Access {
	a := &Access{}
	for _, p := range r.Ports {
		proto := "tcp"
		if p.Protocol == natfw.TCP {
			switch p.Number {
			case 22:
				proto = "ssh"
			case 5986:
				proto = "winrm-https"
			case 5985:
				proto = "winrm-http"
			case 3389:
				proto = "rdp"
			}
		} else {
			proto = string(p.Protocol)
		}
		a.Endpoints = append(a.Endpoints, Endpoint{Protocol: proto, Address: fmt.Sprintf("%s:%d", r.Public, p.Number)})
	}
	for _, s := range r.Sources {
		a.Sources = append(a.Sources, s.String())
	}
	return a
}

// quote is for untrusted values in messages: Go-quoted, cut at 64 bytes.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
