package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"

	"go.opentelemetry.io/otel/metric"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/hyperv"
	"github.com/managedvm/managedvm/provider/ovirt"
	"github.com/managedvm/managedvm/provider/vcd"
)

// readPEM reads a CA file (empty path: nil, the system's roots).
func readPEM(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	return os.ReadFile(path)
}

func startOVirt(ctx context.Context, pc ProviderConfig, log *slog.Logger, mp metric.MeterProvider) (*provider.Provider, error) {
	pw, err := readSecret(pc.PasswordEnv, pc.PasswordFile)
	if err != nil {
		return nil, err
	}
	ca, err := readPEM(pc.CAFile)
	if err != nil {
		return nil, err
	}
	o := &ovirt.Options{CACertPEM: ca, Insecure: pc.Insecure, Logger: log, MeterProvider: mp}
	for _, z := range pc.Zones {
		o.Zones = append(o.Zones, ovirt.ZoneConfig{Name: z.Name, DataCenter: z.DataCenter, Cluster: z.Cluster,
			StorageDomain: z.StorageDomain, TemplateStorageDomain: z.TemplateStorageDomain})
	}
	warnInsecure(log, pc)
	return ovirt.New(ctx, pc.URL, pc.Username, pw, o)
}

// vcdCredentials reads a vcd provider's password or API token.
func vcdCredentials(pc ProviderConfig) (vcd.Credentials, error) {
	cred := vcd.Credentials{Org: pc.Org, User: pc.Username}
	var err error
	if pc.APITokenEnv != "" || pc.APITokenFile != "" {
		cred.APIToken, err = readSecret(pc.APITokenEnv, pc.APITokenFile)
	} else {
		cred.Password, err = readSecret(pc.PasswordEnv, pc.PasswordFile)
	}
	return cred, err
}

func startVCD(ctx context.Context, pc ProviderConfig, log *slog.Logger, mp metric.MeterProvider) (*provider.Provider, error) {
	cred, err := vcdCredentials(pc)
	if err != nil {
		return nil, err
	}
	ca, err := readPEM(pc.CAFile)
	if err != nil {
		return nil, err
	}
	warnInsecure(log, pc)
	return vcd.New(ctx, pc.URL, cred, &vcd.Options{CACertPEM: ca, Insecure: pc.Insecure, Logger: log, MeterProvider: mp})
}

func startHyperV(ctx context.Context, pc ProviderConfig, log *slog.Logger, mp metric.MeterProvider) (*provider.Provider, error) {
	pw, err := readSecret(pc.PasswordEnv, pc.PasswordFile)
	if err != nil {
		return nil, err
	}
	ca, err := readPEM(pc.CAFile)
	if err != nil {
		return nil, err
	}
	nodes := make([]hyperv.Node, len(pc.Nodes))
	for i, n := range pc.Nodes {
		w := winrm.Options{Port: n.Port, CACertPEM: ca, InsecureSkipVerify: pc.Insecure}
		if n.CertSHA256 != "" {
			w.PinnedCertSHA256, _ = parseFingerprint(n.CertSHA256) // checked by validate
		}
		nodes[i] = hyperv.Node{Name: n.Name, Host: n.Host, WinRM: w}
	}
	h := pc.HyperV
	o := &hyperv.Options{Zone: h.Zone, Switch: h.Switch, TemplatesPath: h.TemplatesPath, VMsPath: h.VMsPath,
		VLANs: h.VLANs, Generation: h.Generation, FullCopy: h.FullCopy, Logger: log, MeterProvider: mp}
	warnInsecure(log, pc)
	return hyperv.New(ctx, nodes, guest.Credentials{Username: pc.Username, Password: pw}, o)
}

func warnInsecure(log *slog.Logger, pc ProviderConfig) {
	if pc.Insecure {
		log.Warn("INSECURE: certificate verification is off for this provider", "provider", pc.Name)
	}
}

// vcdEdge is the firewall driver of a vcd provider's edge gateway, with
// that provider's endpoint, credentials and certificate.
func (s *Stack) vcdEdge(ctx context.Context, ec *VCDEdgeConfig, log *slog.Logger, mp metric.MeterProvider) (*natfw.Firewall, error) {
	for _, pc := range s.Config.Providers {
		if pc.Name != ec.Provider || pc.Type != "vcd" {
			continue
		}
		cred, err := vcdCredentials(pc)
		if err != nil {
			return nil, err
		}
		ca, err := readPEM(pc.CAFile)
		if err != nil {
			return nil, err
		}
		return vcd.NewFirewall(ctx, pc.URL, cred, ec.Gateway, &vcd.FirewallOptions{CACertPEM: ca, Insecure: pc.Insecure, Logger: log, MeterProvider: mp})
	}
	return nil, errs.Errorf(errs.InvalidArgument, "", "firewall.vcd.provider %s is not a vcd provider", quote(ec.Provider))
}

// guestDialer reaches Linux guests over SSH and Windows guests over
// WinRM, as guest_network configures them.
func guestDialer(g *GuestNetworkConfig, log *slog.Logger) (guest.Dialer, error) {
	var sshDial, winrmDial guest.DialFunc
	if c := g.SSH; c != nil {
		hk, err := sshHostKeys(c, log)
		if err != nil {
			return nil, err
		}
		sshDial = ssh.Dialer(ssh.DialerConfig{HostKeys: hk, Port: uint16(c.Port)})
	}
	if c := g.WinRM; c != nil {
		ca, err := readPEM(c.CAFile)
		if err != nil {
			return nil, err
		}
		if c.InsecureSkipVerify {
			log.Warn("INSECURE: WinRM certificates of guests are not verified (guest_network.winrm.insecure_skip_verify)")
		}
		winrmDial = winrm.Dialer(winrm.DialerConfig{Options: &winrm.Options{Port: c.Port, CACertPEM: ca, InsecureSkipVerify: c.InsecureSkipVerify}})
	}
	return guest.DialFunc(func(ctx context.Context, t guest.Target, cred guest.Credentials) (*guest.Executor, error) {
		switch {
		case t.Family == guest.Windows && winrmDial != nil:
			return winrmDial(ctx, t, cred)
		case t.Family != guest.Windows && sshDial != nil:
			return sshDial(ctx, t, cred)
		}
		return nil, errs.Errorf(errs.FailedPrecondition, "", "guest_network has no dialer for %s guests: configure guest_network.%s", t.Family,
			map[bool]string{true: "winrm", false: "ssh"}[t.Family == guest.Windows])
	}), nil
}

// sshHostKeys reads known_hosts_file at each dial (other processes and
// trust on first use add to it); with trust_on_first_use an unknown host's
// key is appended to it.
func sshHostKeys(c *SSHDialConfig, log *slog.Logger) (func(context.Context, guest.Target) (ssh.HostKeyPolicy, error), error) {
	if c.InsecureAcceptAnyHostKey {
		log.Warn("INSECURE: SSH host keys of guests are not verified (guest_network.ssh.insecure_accept_any_host_key)")
		return func(context.Context, guest.Target) (ssh.HostKeyPolicy, error) {
			return ssh.InsecureAcceptAnyHostKey(), nil
		}, nil
	}
	var mu sync.Mutex // one learner at a time in this process
	learn := func(host, line string) error {
		mu.Lock()
		defer mu.Unlock()
		f, err := os.OpenFile(c.KnownHostsFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		_, err = f.WriteString(line + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			log.Info("learned a guest's SSH host key (trust on first use)", "host", host)
		}
		return err
	}
	return func(ctx context.Context, t guest.Target) (ssh.HostKeyPolicy, error) {
		data, err := os.ReadFile(c.KnownHostsFile)
		if err != nil && !(c.TrustOnFirstUse && errors.Is(err, os.ErrNotExist)) {
			return ssh.HostKeyPolicy{}, errs.Wrap(errs.FailedPrecondition, "guest_network.ssh.known_hosts_file", err)
		}
		if c.TrustOnFirstUse {
			return ssh.TrustOnFirstUse(data, learn)
		}
		return ssh.KnownHosts(data)
	}, nil
}
