package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/cmdb/pgcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/pgstore"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/ipam/pgipam"
	"github.com/managedvm/managedvm/natfw"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/netreq"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/vsphere"
	"github.com/managedvm/managedvm/provider/vsphere/vspheresim"
)

// Stack is everything a configuration builds: the providers, the drivers
// and the orchestrator over them. Close releases it in reverse.
type Stack struct {
	Config    *Config
	Providers map[string]*provider.Provider
	IPAM      *ipam.IPAM
	Firewall  *natfw.Firewall
	CMDB      *cmdb.CMDB
	Store     *enroll.Store
	Orch      *enroll.Orchestrator
	// Sims are the simulated vCenters of vspheresim providers, by
	// provider name (changes behind the driver's back, in tests).
	Sims     map[string]*vspheresim.Sim
	Policy   enroll.Policy
	Profiles map[string]enroll.Policy

	closers []func() error
}

// BuildOptions are what a caller adds to a configuration.
type BuildOptions struct {
	Logger   *slog.Logger
	Observer enroll.Observer
	// MeterProvider, if set, records the orchestrator's and the
	// providers' metrics.
	MeterProvider metric.MeterProvider
}

// Build starts what cfg describes. On error everything started is closed.
func Build(ctx context.Context, cfg *Config, opts BuildOptions) (_ *Stack, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Stack{Config: cfg, Providers: map[string]*provider.Provider{}, Sims: map[string]*vspheresim.Sim{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	var pool *pgxpool.Pool
	if cfg.Store.Driver == "postgresql" || cfg.CMDB.Driver == "postgresql" || cfg.IPAM.Driver == "postgresql" {
		dsn, err := cfg.PostgreSQL.dsn()
		if err != nil {
			return nil, err
		}
		pool, err = pgxpool.New(ctx, dsn)
		if err != nil {
			// pgx's parse errors may quote the DSN: say only what failed.
			return nil, errs.New(errs.InvalidArgument, "postgresql", "the DSN cannot be parsed")
		}
		s.closers = append(s.closers, func() error { pool.Close(); return nil })
		if err := pool.Ping(ctx); err != nil {
			return nil, errs.Wrap(errs.Unavailable, "postgresql", err)
		}
	}

	switch cfg.Store.Driver {
	case "postgresql":
		if err := pgstore.Migrate(ctx, pool); err != nil {
			return nil, err
		}
		s.Store = pgstore.New(pool, &pgstore.Options{Logger: log})
	default:
		s.Store = enroll.NewMemoryStore(&enroll.MemoryStoreOptions{StoreOptions: enroll.StoreOptions{Logger: log}})
	}
	s.closers = append(s.closers, s.Store.Close)
	switch cfg.CMDB.Driver {
	case "postgresql":
		if err := pgcmdb.Migrate(ctx, pool); err != nil {
			return nil, err
		}
		s.CMDB = pgcmdb.New(pool, &pgcmdb.Options{Logger: log})
	default:
		s.CMDB = memcmdb.New(&memcmdb.Options{Logger: log})
	}
	s.closers = append(s.closers, s.CMDB.Close)
	switch cfg.IPAM.Driver {
	case "postgresql":
		if err := pgipam.Migrate(ctx, pool); err != nil {
			return nil, err
		}
		if s.IPAM, err = pgipam.Open(ctx, pool, &pgipam.Options{Logger: log}); err != nil {
			return nil, err
		}
	default:
		s.IPAM = memipam.New(&memipam.Options{Logger: log})
	}
	s.closers = append(s.closers, s.IPAM.Close)
	for i, pc := range cfg.IPAM.Pools {
		p, _ := pc.parse() // checked by validate
		if err := s.IPAM.CreatePool(ctx, p); err != nil {
			return nil, fmt.Errorf("ipam.pools[%d] %s: %w", i, pc.Name, err)
		}
	}
	for _, pc := range cfg.Providers {
		p, err := s.startProvider(ctx, pc, log, opts.MeterProvider)
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", pc.Name, err)
		}
		s.Providers[pc.Name] = p
	}
	switch cfg.Firewall.Driver {
	case "nftables":
		if s.Firewall, err = newNFTables(cfg.Firewall.NFTables, log, opts.MeterProvider); err != nil {
			return nil, fmt.Errorf("firewall: %w", err)
		}
	case "vcd":
		if s.Firewall, err = s.vcdEdge(ctx, cfg.Firewall.VCD, log, opts.MeterProvider); err != nil {
			return nil, fmt.Errorf("firewall: %w", err)
		}
	default:
		s.Firewall = memfw.New(&memfw.Options{Logger: log})
	}
	s.closers = append(s.closers, s.Firewall.Close)
	var dialer guest.Dialer
	if cfg.GuestNetwork != nil {
		if dialer, err = guestDialer(cfg.GuestNetwork, log); err != nil {
			return nil, fmt.Errorf("guest_network: %w", err)
		}
	}

	s.Policy = cfg.Policy.policy()
	s.Profiles = map[string]enroll.Policy{}
	for name, pol := range cfg.Profiles {
		s.Profiles[name] = pol.policy()
	}
	var conf guest.Configurator
	if cfg.ServiceAccount != "" {
		conf = serviceAccount(cfg.ServiceAccount)
	}
	instance := cfg.Instance
	if instance == "" {
		if h, err := os.Hostname(); err == nil && namePattern.MatchString(h) {
			instance = h
		}
	}
	s.Orch, err = enroll.New(enroll.Config{
		Providers:    s.Providers,
		IPAM:         s.IPAM,
		Firewall:     s.Firewall,
		CMDB:         s.CMDB,
		Store:        s.Store,
		Policy:       s.Policy,
		Profiles:     s.Profiles,
		Configurator: conf,
		Dialer:       dialer,
	}, &enroll.Options{Logger: log, Observer: opts.Observer, Instance: instance, MeterProvider: opts.MeterProvider})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Orch.Close)
	return s, nil
}

// Close closes what Build started, last first.
func (s *Stack) Close() error {
	var all []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		all = append(all, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(all...)
}

// ProviderNames lists the providers in configuration order.
func (s *Stack) ProviderNames() []string {
	names := make([]string, 0, len(s.Config.Providers))
	for _, pc := range s.Config.Providers {
		names = append(names, pc.Name)
	}
	return names
}

// NetworkRequirements derives the firewall matrix of the configuration.
func (s *Stack) NetworkRequirements() (*netreq.Matrix, error) {
	cfg := netreq.Config{Providers: s.Providers, Policy: s.Policy, Profiles: s.Profiles, PortalURL: s.Config.Portal.URL}
	if s.Config.LDAP != nil {
		cfg.LDAP = []string{s.Config.LDAP.URL}
	}
	if s.Config.PostgreSQL.DSN != "" {
		cfg.PostgreSQL = []string{s.Config.PostgreSQL.DSN}
	} else if dsn, err := s.Config.PostgreSQL.dsn(); err == nil && dsn != "" {
		cfg.PostgreSQL = []string{dsn}
	}
	return netreq.Derive(cfg)
}

func (s *Stack) startProvider(ctx context.Context, pc ProviderConfig, log *slog.Logger, mp metric.MeterProvider) (*provider.Provider, error) {
	var p *provider.Provider
	var err error
	switch pc.Type {
	case "ovirt":
		p, err = startOVirt(ctx, pc, log, mp)
	case "vcd":
		p, err = startVCD(ctx, pc, log, mp)
	case "hyperv":
		p, err = startHyperV(ctx, pc, log, mp)
	default:
		return s.startVSphere(ctx, pc, log, mp)
	}
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, p.Close)
	return p, nil
}

func (s *Stack) startVSphere(ctx context.Context, pc ProviderConfig, log *slog.Logger, mp metric.MeterProvider) (*provider.Provider, error) {
	zones := make([]vsphere.ZoneConfig, len(pc.Zones))
	for i, z := range pc.Zones {
		zones[i] = vsphere.ZoneConfig{Name: z.Name, Datacenters: z.Datacenters, Clusters: z.Clusters, Networks: z.Networks}
	}
	opts := &vsphere.Options{Zones: zones, Logger: log, MeterProvider: mp}
	switch pc.Type {
	case "vspheresim":
		sim, err := startSim(ctx, pc.Sim)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, sim.Close)
		s.Sims[pc.Name] = sim
		opts.RootCAs = sim.CAs
		opts.GuestPollInterval = 10 * time.Millisecond
		p, err := vsphere.New(ctx, sim.URL.String(), sim.Username, guest.NewSecret(sim.Password), opts)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, p.Close)
		return p, nil
	default:
		pw, err := readSecret(pc.PasswordEnv, pc.PasswordFile)
		if err != nil {
			return nil, err
		}
		if pc.CAFile != "" {
			pem, err := os.ReadFile(pc.CAFile)
			if err != nil {
				return nil, err
			}
			opts.RootCAs = x509.NewCertPool()
			if !opts.RootCAs.AppendCertsFromPEM(pem) {
				return nil, errs.Errorf(errs.InvalidArgument, "", "ca_file %s holds no PEM certificate", pc.CAFile)
			}
		}
		opts.Thumbprint = pc.Thumbprint
		opts.Insecure = pc.Insecure
		if pc.Insecure {
			log.Warn("certificate verification is off for this provider", "provider", pc.Name)
		}
		p, err := vsphere.New(ctx, pc.URL, pc.Username, pw, opts)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, p.Close)
		return p, nil
	}
}

// What a Debian 12 guest prints for the OS facts script and for df.
const (
	debianFacts = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
__MANAGEDVM_UNAME__
6.1.0-28-amd64
x86_64
__MANAGEDVM_EXTRA__
PKG=apt-get
INIT=systemd
DISK=20480000
`
	debianDF = `Filesystem     1024-blocks    Used Available Capacity Mounted on
/dev/sda1         30830592 8000000  20480000      29% /
`
)

// debianGuest is a scripted Debian 12 guest (nothing runs on this machine).
func debianGuest(useradd memguest.Handler) *memguest.Driver {
	d := memguest.NewDriver(guest.Linux, nil)
	d.HandleScript("__MANAGEDVM_UNAME__", memguest.Reply(debianFacts))
	d.HandleArgs([]string{"df", "-Pk", "/"}, memguest.Reply(debianDF))
	d.HandleArgsPrefix([]string{"sh", "-c"}, memguest.Reply(""))
	d.HandleArgsPrefix([]string{"useradd"}, useradd)
	d.HandleArgsPrefix([]string{"userdel"}, memguest.Reply(""))
	return d
}

// startSim starts a simulated vCenter with the configured guests.
func startSim(ctx context.Context, sc *SimConfig) (*vspheresim.Sim, error) {
	if sc == nil {
		sc = &SimConfig{}
	}
	healthy := debianGuest(memguest.Reply(""))
	locked := debianGuest(memguest.Exit(1, "", "useradd: cannot lock /etc/passwd; try again later.\n"))
	failing := map[string]bool{}
	for _, vm := range sc.VMs {
		failing[vm.Name] = vm.UseraddFails
	}
	sim, err := vspheresim.New(ctx, &vspheresim.Options{
		ModelVMs:      -1,
		GuestAccounts: sc.GuestAccounts,
		GuestHandler: vspheresim.ExecutorHandler(func(vm vspheresim.GuestVM) *guest.Executor {
			if failing[vm.Name] {
				return locked.Executor()
			}
			return healthy.Executor()
		}),
	})
	if err != nil {
		return nil, err
	}
	ips := map[string]string{}
	var names []string
	for _, vm := range sc.VMs {
		ips[vm.Name] = vm.IP
		names = append(names, vm.Name)
	}
	if g := sc.Generate; g.Count > 0 {
		prefix := g.Prefix
		if prefix == "" {
			prefix = "vm-"
		}
		for i := 1; i <= g.Count; i++ {
			name := fmt.Sprintf("%s%04d", prefix, i)
			names = append(names, name)
			ips[name] = fmt.Sprintf("10.%d.%d.%d", 20+i/65536, (i/256)%256, i%256)
		}
	}
	if len(names) > 0 {
		_, err = sim.CreateNamedVMs(ctx, names, vspheresim.Placement{}, func(name string) *vspheresim.GuestState {
			return &vspheresim.GuestState{ToolsRunning: true, IP: ips[name], Hostname: name, Family: "linuxGuest", FullName: "Debian GNU/Linux 12 (64-bit)"}
		})
		if err != nil {
			_ = sim.Close()
			return nil, err
		}
	}
	return sim, nil
}

// serviceAccount is the configure step: it creates the operator's
// service account in the guest, and unenrollment removes it.
type serviceAccount string

func (a serviceAccount) Configure(ctx context.Context, t guest.Target, ex *guest.Executor) error {
	_, err := ex.Run(ctx, guest.Command{Args: []string{"useradd", "--create-home", string(a)}})
	return err
}

func (a serviceAccount) Unconfigure(ctx context.Context, t guest.Target, ex *guest.Executor) error {
	_, err := ex.Run(ctx, guest.Command{Args: []string{"userdel", "--remove", string(a)}})
	return err
}

// readSecret reads a secret from an environment variable or a file (its
// first line).
func readSecret(env, file string) (guest.Secret, error) {
	if env != "" {
		return guest.NewSecret(os.Getenv(env)), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return guest.Secret{}, err
	}
	return guest.NewSecret(strings.TrimRight(string(b), "\r\n")), nil
}

func (pg PostgreSQLConfig) dsn() (string, error) {
	switch {
	case pg.DSN != "":
		return pg.DSN, nil
	case pg.DSNEnv != "":
		return os.Getenv(pg.DSNEnv), nil
	case pg.DSNFile != "":
		b, err := os.ReadFile(pg.DSNFile)
		return strings.TrimSpace(string(b)), err
	}
	return "", nil
}

// parse turns a pool's configuration into an ipam.Pool.
func (pc PoolConfig) parse() (ipam.Pool, error) {
	pre, err := netip.ParsePrefix(pc.Prefix)
	if err != nil || !pre.Addr().Is4() {
		return ipam.Pool{}, &fieldError{"prefix", fmt.Sprintf("%q is not an IPv4 prefix such as 203.0.113.0/28", pc.Prefix)}
	}
	p := ipam.Pool{Name: pc.Name, Prefix: pre.Masked()}
	if pc.Gateway != "" {
		if p.Gateway, err = netip.ParseAddr(pc.Gateway); err != nil || !pre.Contains(p.Gateway) {
			return ipam.Pool{}, &fieldError{"gateway", fmt.Sprintf("%q is not an address in %s", pc.Gateway, pre)}
		}
	}
	for i, ex := range pc.Exclude {
		from, to, isRange := strings.Cut(ex, "-")
		a, err1 := netip.ParseAddr(strings.TrimSpace(from))
		b := a
		var err2 error
		if isRange {
			b, err2 = netip.ParseAddr(strings.TrimSpace(to))
		}
		if err1 != nil || err2 != nil || !pre.Contains(a) || !pre.Contains(b) || b.Less(a) {
			return ipam.Pool{}, &fieldError{fmt.Sprintf("exclude[%d]", i), fmt.Sprintf("%q is not an address or FROM-TO range in %s", ex, pre)}
		}
		p.Reserved = append(p.Reserved, ipam.Range{From: a, To: b})
	}
	if err := p.Validate(); err != nil {
		return ipam.Pool{}, &fieldError{"prefix", err.Error()}
	}
	return p, nil
}

// policy turns a checked profile into an enroll.Policy.
func (pol PolicyConfig) policy() enroll.Policy {
	p := enroll.Policy{Pool: pol.Pool, PoolByZone: pol.PoolByZone}
	for _, s := range pol.ManagementSources {
		p.ManagementSources = append(p.ManagementSources, netip.MustParsePrefix(s).Masked())
	}
	for _, f := range pol.Families {
		p.Families = append(p.Families, guest.ParseFamily(f))
	}
	if len(pol.Ports) > 0 {
		p.Ports = map[guest.OSFamily][]natfw.Port{}
		for f, ports := range pol.Ports {
			for _, s := range ports {
				port, _ := natfw.ParsePort(s)
				p.Ports[guest.ParseFamily(f)] = append(p.Ports[guest.ParseFamily(f)], port)
			}
		}
	}
	if len(pol.Requirements) > 0 {
		p.Requirements = map[guest.OSFamily]guest.Requirements{}
		for f, r := range pol.Requirements {
			p.Requirements[guest.ParseFamily(f)] = guest.Requirements{
				Distributions:  r.Distributions,
				MinFreeDiskMiB: r.MinFreeDiskMiB,
				DiskPath:       r.DiskPath,
				Commands:       slices.Clone(r.Commands),
			}
		}
	}
	return p
}

func parseDuration(s string) (time.Duration, error) { return time.ParseDuration(s) }
