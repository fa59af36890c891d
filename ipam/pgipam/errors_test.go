package pgipam_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/ipam"
	"github.com/managedvm/managedvm/ipam/pgipam"
)

// TestUnreachableIsUnavailable: with no server to talk to, nothing can have
// happened: every call is Unavailable (never OutcomeUnknown). No PostgreSQL
// needed.
func TestUnreachableIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cfg, err := pgxpool.ParseConfig("postgres://nobody@" + addr + "/none?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m := portable(pool)
	ctx := context.Background()
	calls := map[string]func() error{
		"Migrate": func() error { return pgipam.Migrate(ctx, pool) },
		"Open":    func() error { _, err := pgipam.Open(ctx, pool, nil); return err },
		"CreatePool": func() error {
			return m.CreatePool(ctx, ipam.Pool{Name: "p", Prefix: netip.MustParsePrefix("192.0.2.0/24")})
		},
		"Allocate": func() error {
			_, err := m.Allocate(ctx, ipam.Request{Pool: "p", Owner: "vm-1"})
			return err
		},
		"Release":    func() error { return m.Release(ctx, "p", "vm-1") },
		"DeletePool": func() error { return m.DeletePool(ctx, "p") },
		"Pools":      func() error { _, err := m.Pools(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); errs.CodeOf(err) != errs.Unavailable {
			t.Errorf("%s: %v (code %v), want Unavailable", name, err, errs.CodeOf(err))
		}
	}
}

// TestLostAnswerIsOutcomeUnknown: the connection drops after the server
// committed an allocation but before the answer arrived. Allocate says
// OutcomeUnknown (not Unavailable: the side effect happened), and calling
// it again reconciles: the owner gets the address the server recorded, and
// nothing leaked.
func TestLostAnswerIsOutcomeUnknown(t *testing.T) {
	url := pgURL(t)
	schema := newSchema(t, url)
	setup := openPool(t, url, schema, 1)
	ctx := context.Background()
	if err := pgipam.Migrate(ctx, setup); err != nil {
		t.Fatal(err)
	}
	p := ipam.Pool{Name: "p", Prefix: netip.MustParsePrefix("192.0.2.0/24")}
	if err := portable(setup).CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", proxy.port
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol // SQL text on the wire
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m := portable(pool)

	// Cut the connection once the server has finished (ReadyForQuery)
	// the statement that inserts the allocation.
	proxy.arm([]byte("INSERT INTO ipam_allocations"))
	_, err = m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	if errs.CodeOf(err) != errs.OutcomeUnknown {
		t.Fatalf("Allocate with the answer lost: %v (code %v), want OutcomeUnknown", err, errs.CodeOf(err))
	}
	if !proxy.cut.Load() {
		t.Fatal("the proxy never cut the connection")
	}
	// The allocation did happen.
	stored, err := portable(setup).Lookup(ctx, p.Name, "vm-1")
	if err != nil {
		t.Fatalf("Lookup after the lost answer: %v (the commit should have happened)", err)
	}
	// Reconcile: the same call again.
	again, err := m.Allocate(ctx, ipam.Request{Pool: p.Name, Owner: "vm-1"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Address != stored.Address {
		t.Errorf("Allocate again gave %v, the server recorded %v", again.Address, stored.Address)
	}
	if pi, err := m.Pool(ctx, p.Name); err != nil || pi.Used != 1 {
		t.Errorf("Pool after reconciling: %+v, %v; want 1 used", pi, err)
	}
}

// cutProxy forwards TCP to the server; once armed with a pattern, it lets
// the client's message containing it through, forwards nothing more from
// the server, and closes both sides when the server reports
// ReadyForQuery: the statement ran to the end, the client never hears.
type cutProxy struct {
	port    uint16
	target  string
	mu      sync.Mutex
	pattern []byte
	cut     atomic.Bool
}

func newCutProxy(t *testing.T, host string, port uint16) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &cutProxy{port: uint16(l.Addr().(*net.TCPAddr).Port), target: net.JoinHostPort(host, strconv.Itoa(int(port)))}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) arm(pattern []byte) {
	p.mu.Lock()
	p.pattern = pattern
	p.mu.Unlock()
}

func (p *cutProxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	var triggered atomic.Bool
	closeBoth := func() { client.Close(); server.Close() }
	go func() { // client -> server
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				p.mu.Lock()
				pat := p.pattern
				if pat != nil && bytes.Contains(buf[:n], pat) {
					triggered.Store(true)
					p.pattern = nil
				}
				p.mu.Unlock()
				if _, werr := server.Write(buf[:n]); werr != nil {
					closeBoth()
					return
				}
			}
			if err != nil {
				closeBoth()
				return
			}
		}
	}()
	// server -> client
	buf := make([]byte, 64<<10)
	ready := []byte{'Z', 0, 0, 0, 5}
	var held []byte
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if triggered.Load() {
				held = append(held, buf[:n]...)
				if bytes.Contains(held, ready) {
					p.cut.Store(true)
					closeBoth()
					return
				}
			} else if _, werr := client.Write(buf[:n]); werr != nil {
				closeBoth()
				return
			}
		}
		if err != nil {
			closeBoth()
			return
		}
	}
}
