package netreq

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/report"
)

// ProbeOptions tune Probe. The zero value is usable.
type ProbeOptions struct {
	// Concurrency is how many ports are checked at once (default 8).
	Concurrency int
	// Timeout bounds the check of one port: connect, handshake and
	// greeting (default 5s).
	Timeout time.Duration
	// Deadline bounds the whole probe (default 30s); ports not checked by
	// then fail with "not checked before the deadline".
	Deadline time.Duration
	// RootCAs verify the servers' certificates; nil means the system's.
	RootCAs *x509.CertPool
	// ExpiryWarning: a certificate expiring sooner than this is a Warn
	// (default 30 days).
	ExpiryWarning time.Duration
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
	// Dial connects; nil means a net.Dialer's DialContext.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// EHLOName is the name Probe gives in SMTP EHLO (default "localhost").
	EHLOName string
}

// NotCheckable is the Detail of the row of a flow Probe cannot check.
const NotCheckable = "not checkable from here"

// Probe checks every port of every checkable flow from where it runs and
// returns one row per port, in the order of flows: Pass, Warn (a
// certificate close to expiry, WinRM without TLS) or Fail, each failure
// with a Fix. A flow that is not checkable (it does not start here, or
// has no Host) is one Warn row whose Detail is NotCheckable. Probe sends
// no credentials anywhere, and nothing past a TLS handshake that failed
// verification.
func Probe(ctx context.Context, flows []Flow, opts *ProbeOptions) report.Report {
	var o ProbeOptions
	if opts != nil {
		o = *opts
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Second
	}
	if o.ExpiryWarning <= 0 {
		o.ExpiryWarning = 30 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	if o.EHLOName == "" {
		o.EHLOName = "localhost"
	}
	ctx, cancel := context.WithTimeout(ctx, o.Deadline)
	defer cancel()
	// over reports whether the probe's deadline has passed: a connection
	// deadline derived from it can fire before ctx.Err is set.
	deadline, _ := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }

	type job struct {
		f    Flow
		port uint16
	}
	var rows []report.Check
	var jobs []int // index into rows
	var work []job
	for _, f := range flows {
		name := f.Service + ": " + f.Source + " to " + f.Destination
		if !f.Checkable || f.Host == "" || f.Protocol != "tcp" {
			fix := "check it from the source: e.g. from a VM, connect to the destination on " + f.PortList()
			if f.Source == ManagedVMs {
				fix = "check from a managed VM that it reaches " + f.Destination + " on " + f.PortList()
			}
			rows = append(rows, report.Check{ID: "probe." + f.ID, Name: name, Status: report.Warn,
				Subject: f.Destination, Detail: NotCheckable, Fix: fix})
			continue
		}
		for _, p := range f.Ports {
			jobs = append(jobs, len(rows))
			work = append(work, job{f, p})
			rows = append(rows, report.Check{ID: fmt.Sprintf("probe.%s.%d", f.ID, p), Name: name,
				Subject: net.JoinHostPort(f.Host, strconv.Itoa(int(p)))})
		}
	}
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for i, j := range work {
		row := &rows[jobs[i]]
		acquired := false
		if !over() { // select picks at random when both are ready
			select {
			case sem <- struct{}{}:
				acquired = !over()
				if !acquired {
					<-sem
				}
			case <-ctx.Done():
			}
		}
		if !acquired {
			row.Status, row.Detail = report.Fail, "not checked before the deadline ("+o.Deadline.String()+")"
			row.Fix = "raise ProbeOptions.Deadline or Concurrency"
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			start := time.Now()
			row.Status, row.Detail, row.Fix = check(ctx, &o, j.f, j.port)
			if took := time.Since(start); row.Status == report.Fail && over() && took < o.Timeout {
				// The probe's deadline, not the port's timeout, ended the check.
				row.Detail = fmt.Sprintf("cut by the deadline (%s) after %s", o.Deadline, took.Round(time.Millisecond))
				row.Fix = "raise ProbeOptions.Deadline or Concurrency"
			}
		}()
	}
	wg.Wait()
	return report.Report{Checks: rows}
}

// check probes one port.
func check(ctx context.Context, o *ProbeOptions, f Flow, port uint16) (report.Status, string, string) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	addr := net.JoinHostPort(f.Host, strconv.Itoa(int(port)))
	p := &portCheck{o: o, f: f, port: port, addr: addr}
	conn, err := o.Dial(ctx, "tcp", addr)
	if err != nil {
		return p.dialFailure(ctx, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var detail string
	switch {
	case f.Kind.tlsFirst():
		tc, info, err := p.handshake(conn)
		if err != nil {
			return p.tlsFailure(ctx, info, err)
		}
		detail = info.String()
		if f.Kind == SMTPS {
			line, err := smtpGreeting(textproto.NewConn(tc))
			if err != nil {
				return p.greetingFailure(ctx, "SMTP 220 greeting after the TLS handshake", err)
			}
			detail = "greeting " + limit.Quote(line) + "; " + detail
		}
		if info.expiresSoon {
			return report.Warn, detail, "renew the certificate of " + p.name() + " before " + info.notAfter.Format(time.DateOnly)
		}
	case f.Kind == SSH:
		banner, err := sshBanner(conn)
		if err != nil {
			return p.greetingFailure(ctx, "SSH identification banner", err)
		}
		detail = "banner " + limit.Quote(banner)
	case f.Kind == SMTP:
		return p.smtpStartTLS(ctx, conn)
	case f.Kind == LDAP:
		return p.ldapStartTLS(ctx, conn)
	case f.Kind == PostgreSQL:
		return p.postgresTLS(ctx, conn)
	case f.Kind == RDP:
		proto, err := rdpConfirm(conn)
		if err != nil {
			return p.greetingFailure(ctx, "RDP X.224 connection confirm", err)
		}
		detail = "X.224 connection confirm" + proto
	case f.Kind == WinRMHTTP:
		return report.Warn, "connected; WinRM over HTTP is not encrypted at the transport",
			"prefer WinRM over HTTPS (5986) and close 5985"
	default:
		detail = "connected"
	}
	return report.Pass, detail, ""
}

type portCheck struct {
	o    *ProbeOptions
	f    Flow
	port uint16
	addr string
}

func (p *portCheck) name() string {
	if p.f.ServerName != "" {
		return p.f.ServerName
	}
	return p.f.Host
}

func (p *portCheck) firewallFix() string {
	return fmt.Sprintf("open TCP %d from this host to %s on every firewall in between", p.port, p.f.Host)
}

func (p *portCheck) dialFailure(ctx context.Context, err error) (report.Status, string, string) {
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return report.Fail, "connection refused: nothing listens, or a firewall rejects",
			fmt.Sprintf("start the service on %s port %d, or %s", p.f.Host, p.port, p.firewallFix())
	case errors.As(err, &dns):
		return report.Fail, "cannot resolve " + limit.Quote(p.f.Host), "fix the DNS name or its resolution on this host"
	case isTimeout(ctx, err):
		return report.Fail, "no answer within " + p.o.Timeout.String() + " (packets dropped on the way)", p.firewallFix()
	}
	return report.Fail, "cannot connect: " + limit.Quote(err.Error()), p.firewallFix()
}

func (p *portCheck) greetingFailure(ctx context.Context, what string, err error) (report.Status, string, string) {
	if isTimeout(ctx, err) {
		return report.Fail, "connected, but no " + what + " within " + p.o.Timeout.String(),
			fmt.Sprintf("check that port %d on %s is the expected service and that no proxy holds the connection", p.port, p.f.Host)
	}
	return report.Fail, "connected, but no " + what + ": " + limit.Quote(err.Error()),
		fmt.Sprintf("check that port %d on %s is the expected service (%s)", p.port, p.f.Host, p.f.Kind)
}

func isTimeout(ctx context.Context, err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) || ctx.Err() != nil
}

// certInfo is what the handshake learned about the server's certificate.
type certInfo struct {
	seen        bool
	names       []string
	issuer      string
	notAfter    time.Time
	version     uint16
	expiresSoon bool
	now         time.Time
}

func (c certInfo) String() string {
	days := int(c.notAfter.Sub(c.now).Hours() / 24)
	return fmt.Sprintf("%s, certificate for %s trusted (issuer %s), expires %s (in %d days)",
		tls.VersionName(c.version), quoteAll(c.names), limit.Quote(c.issuer), c.notAfter.Format(time.DateOnly), days)
}

func quoteAll(s []string) string {
	if len(s) == 0 {
		return "no names"
	}
	if len(s) > 4 {
		s = append(s[:4:4], fmt.Sprintf("%d more", len(s)-4))
	}
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = limit.Quote(x)
	}
	return strings.Join(q, ", ")
}

// handshake runs a TLS client handshake over conn, verifying the chain
// against RootCAs and the name against the flow's server name; the
// verification runs inside the handshake, so a refused certificate ends it
// before any application byte is sent.
func (p *portCheck) handshake(conn net.Conn) (*tls.Conn, *certInfo, error) {
	info := &certInfo{now: p.o.Now()}
	name := p.name()
	cfg := &tls.Config{
		ServerName:         name,
		InsecureSkipVerify: true, // verified below, with the details kept for the report
		MinVersion:         tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no certificate")
			}
			leaf := cs.PeerCertificates[0]
			info.seen, info.issuer, info.notAfter, info.version = true, leaf.Issuer.String(), leaf.NotAfter, cs.Version
			info.names = append(info.names, leaf.DNSNames...)
			for _, ip := range leaf.IPAddresses {
				info.names = append(info.names, ip.String())
			}
			if len(info.names) == 0 && leaf.Subject.CommonName != "" {
				info.names = []string{leaf.Subject.CommonName}
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: p.o.RootCAs, Intermediates: inter, CurrentTime: info.now})
			return err
		},
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, info, err
	}
	info.expiresSoon = info.notAfter.Sub(info.now) < p.o.ExpiryWarning
	return tc, info, nil
}

func (p *portCheck) tlsFailure(ctx context.Context, info *certInfo, err error) (report.Status, string, string) {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	name := limit.Quote(p.name())
	switch {
	case errors.As(err, &unknown):
		return report.Fail, fmt.Sprintf("certificate for %s is not trusted: issuer %s is an unknown authority", quoteAll(info.names), limit.Quote(info.issuer)),
			"add the issuing CA to the trust store of this host (ProbeOptions.RootCAs, the driver's RootCAs), or install a certificate from a trusted CA"
	case errors.As(err, &hostname):
		return report.Fail, fmt.Sprintf("certificate is for %s, not %s", quoteAll(info.names), name),
			"install a certificate whose subject alternative names include " + name + ", or configure the name the certificate carries"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return report.Fail, fmt.Sprintf("certificate for %s expired on %s", quoteAll(info.names), info.notAfter.Format(time.DateOnly)),
			"renew the certificate of " + name
	case errors.As(err, &invalid):
		return report.Fail, "certificate refused: " + limit.Quote(invalid.Error()), "install a valid server certificate on " + name
	case !info.seen && isTimeout(ctx, err):
		return report.Fail, "connected, but no TLS handshake within " + p.o.Timeout.String(),
			fmt.Sprintf("check that port %d on %s speaks TLS", p.port, p.f.Host)
	}
	return report.Fail, "TLS handshake failed: " + limit.Quote(err.Error()),
		fmt.Sprintf("check that port %d on %s speaks TLS (1.2 or later)", p.port, p.f.Host)
}

// sshBanner reads the server's identification string (RFC 4253 4.2),
// skipping the other lines a server may send first.
func sshBanner(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(r, 256)
	for range 20 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return "", errors.New("line longer than 255 bytes")
			}
			return "", err
		}
		s := strings.TrimRight(string(line), "\r\n")
		if strings.HasPrefix(s, "SSH-") {
			if !strings.HasPrefix(s, "SSH-2.0-") && !strings.HasPrefix(s, "SSH-1.99-") {
				return "", fmt.Errorf("protocol version not 2.0: %s", limit.Quote(s))
			}
			return s, nil
		}
	}
	return "", errors.New("no SSH- line in the first 20 lines")
}

// smtpGreeting reads the 220 greeting and returns its first line.
func smtpGreeting(c *textproto.Conn) (string, error) {
	_, msg, err := c.ReadResponse(220)
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(msg, "\n")
	return first, nil
}

func (p *portCheck) smtpStartTLS(ctx context.Context, conn net.Conn) (report.Status, string, string) {
	tp := textproto.NewConn(conn)
	greeting, err := smtpGreeting(tp)
	if err != nil {
		return p.greetingFailure(ctx, "SMTP 220 greeting", err)
	}
	id, err := tp.Cmd("EHLO %s", p.o.EHLOName)
	if err != nil {
		return p.greetingFailure(ctx, "EHLO reply", err)
	}
	tp.StartResponse(id)
	_, ext, err := tp.ReadResponse(250)
	tp.EndResponse(id)
	if err != nil {
		return p.greetingFailure(ctx, "EHLO reply", err)
	}
	offered := false
	for _, l := range strings.Split(ext, "\n")[1:] {
		if kw, _, _ := strings.Cut(strings.TrimSpace(l), " "); strings.EqualFold(kw, "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		_, _ = tp.Cmd("QUIT")
		return report.Fail, "greeting " + limit.Quote(greeting) + ", but the relay does not offer STARTTLS",
			"enable STARTTLS on the relay (notifications never go over an unprotected connection), or use implicit TLS on 465"
	}
	id, err = tp.Cmd("STARTTLS")
	if err == nil {
		tp.StartResponse(id)
		_, _, err = tp.ReadResponse(220)
		tp.EndResponse(id)
	}
	if err != nil {
		return p.greetingFailure(ctx, "220 reply to STARTTLS", err)
	}
	tc, info, err := p.handshake(conn)
	if err != nil {
		return p.tlsFailure(ctx, info, err)
	}
	_, _ = textproto.NewConn(tc).Cmd("QUIT")
	detail := "greeting " + limit.Quote(greeting) + ", STARTTLS offered; " + info.String()
	if info.expiresSoon {
		return report.Warn, detail, "renew the certificate of " + p.name() + " before " + info.notAfter.Format(time.DateOnly)
	}
	return report.Pass, detail, ""
}
