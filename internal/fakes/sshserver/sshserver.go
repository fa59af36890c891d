package sshserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Config says which logins the server accepts.
type Config struct {
	// User is the only user name accepted (empty: any).
	User string
	// Password, if set, is accepted by password and keyboard-interactive
	// authentication.
	Password string
	// AuthorizedKeys are the public keys accepted.
	AuthorizedKeys []ssh.PublicKey
	// KeyboardInteractiveOnly refuses the "password" method, as servers
	// that only allow keyboard-interactive do.
	KeyboardInteractiveOnly bool
	// NoSFTP refuses the sftp subsystem.
	NoSFTP bool
	// MaxSessions limits concurrent sessions per connection (0: no limit),
	// as OpenSSH's MaxSessions does.
	MaxSessions int
}

// Server is a running in-process SSH server on a loopback port.
type Server struct {
	cfg    Config
	ln     net.Listener
	signer ssh.Signer

	mu      sync.Mutex
	conns   map[*ssh.ServerConn]struct{}
	procs   map[*exec.Cmd]struct{}
	execs   []string
	auths   []string
	closed  bool
	stall   bool
	wg      sync.WaitGroup
	sconfig *ssh.ServerConfig
}

// Start starts a server on 127.0.0.1 with a fresh ed25519 host key.
func Start(cfg Config) (*Server, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, signer: signer, conns: map[*ssh.ServerConn]struct{}{}, procs: map[*exec.Cmd]struct{}{}}
	sc := &ssh.ServerConfig{}
	sc.AddHostKey(signer)
	userOK := func(u string) bool { return cfg.User == "" || u == cfg.User }
	if cfg.Password != "" && !cfg.KeyboardInteractiveOnly {
		sc.PasswordCallback = func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			s.noteAuth("password")
			if userOK(c.User()) && string(pw) == cfg.Password {
				return nil, nil
			}
			return nil, errors.New("denied")
		}
	}
	if cfg.Password != "" {
		sc.KeyboardInteractiveCallback = func(c ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			s.noteAuth("keyboard-interactive")
			ans, err := ch(c.User(), "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			if userOK(c.User()) && len(ans) == 1 && ans[0] == cfg.Password {
				return nil, nil
			}
			return nil, errors.New("denied")
		}
	}
	if len(cfg.AuthorizedKeys) > 0 {
		sc.PublicKeyCallback = func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.noteAuth("publickey")
			if !userOK(c.User()) {
				return nil, errors.New("denied")
			}
			for _, k := range cfg.AuthorizedKeys {
				if string(k.Marshal()) == string(key.Marshal()) {
					return nil, nil
				}
			}
			return nil, errors.New("denied")
		}
	}
	s.sconfig = sc
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *Server) noteAuth(method string) {
	s.mu.Lock()
	s.auths = append(s.auths, method)
	s.mu.Unlock()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HostKey is the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.signer.PublicKey() }

// KnownHosts returns a known_hosts line for the server.
func (s *Server) KnownHosts() []byte {
	return []byte(knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey()) + "\n")
}

// Execs returns every command line the server was asked to run, in order.
func (s *Server) Execs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.execs...)
}

// AuthMethods returns the authentication methods clients tried, in order.
func (s *Server) AuthMethods() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

// StallChannelOpens makes the server leave channel opens (new sessions)
// unanswered while on is true, as a hung server would: the client waits
// for an answer that never comes.
func (s *Server) StallChannelOpens(on bool) {
	s.mu.Lock()
	s.stall = on
	s.mu.Unlock()
}

// DropConnections closes every client connection abruptly (commands keep
// running, as they would when a network path fails).
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// Close stops the server, drops every connection and kills the running
// commands.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	for p := range s.procs {
		if p.Process != nil {
			killGroup(p.Process, "KILL")
		}
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(nc)
		}()
	}
}

func (s *Server) serve(nc net.Conn) {
	conn, chans, reqs, err := ssh.NewServerConn(nc, s.sconfig)
	if err != nil {
		_ = nc.Close()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	s.conns[conn] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		_ = conn.Close()
	}()
	go ssh.DiscardRequests(reqs)
	var sessions sync.WaitGroup
	active := make(chan struct{}, max(s.cfg.MaxSessions, 1))
	for nch := range chans {
		s.mu.Lock()
		stall := s.stall
		s.mu.Unlock()
		if stall {
			continue
		}
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		if s.cfg.MaxSessions > 0 {
			select {
			case active <- struct{}{}:
			default:
				_ = nch.Reject(ssh.Prohibited, "too many sessions")
				continue
			}
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			s.session(ch, creqs)
			if s.cfg.MaxSessions > 0 {
				<-active
			}
		}()
	}
	sessions.Wait()
}

type session struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	env []string
}

func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	sess := &session{}
	done := make(chan struct{})
	started := false
	for {
		var req *ssh.Request
		var ok bool
		select {
		case req, ok = <-reqs:
		case <-done:
			return
		}
		if !ok {
			if started {
				<-done
			}
			return
		}
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				sess.env = append(sess.env, kv.Name+"="+kv.Value)
			}
			_ = req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &p) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			s.mu.Lock()
			s.execs = append(s.execs, p.Command)
			s.mu.Unlock()
			started = true
			if err := s.start(ch, sess, p.Command, done); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			_ = req.Reply(true, nil)
		case "subsystem":
			var p struct{ Name string }
			if started || s.cfg.NoSFTP || ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				_ = req.Reply(false, nil)
				continue
			}
			started = true
			_ = req.Reply(true, nil)
			go func() {
				defer close(done)
				// pkg/sftp's response goroutine can still write after Serve
				// returns; the lock orders those writes before CloseWrite.
				lc := &lockedChannel{Channel: ch}
				srv, err := sftp.NewServer(lc)
				if err != nil {
					return
				}
				_ = srv.Serve()
				_ = srv.Close()
				sendStatus(lc, 0)
			}()
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(req.Payload, &p) == nil {
				sess.signal(p.Signal)
			}
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

func (sess *session) signal(name string) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.cmd == nil || sess.cmd.Process == nil {
		return
	}
	killGroup(sess.cmd.Process, name)
}

func (s *Server) start(ch ssh.Channel, sess *session, line string, done chan struct{}) error {
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Env = append(os.Environ(), sess.env...)
	cmd.SysProcAttr = groupAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	sess.mu.Lock()
	err = cmd.Start()
	sess.cmd = cmd
	sess.mu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.procs[cmd] = struct{}{}
	s.mu.Unlock()
	go func() {
		_, _ = io.Copy(stdin, ch)
		_ = stdin.Close()
	}()
	go func() {
		defer close(done)
		var out sync.WaitGroup
		out.Add(2)
		go func() { defer out.Done(); _, _ = io.Copy(ch, stdout) }()
		go func() { defer out.Done(); _, _ = io.Copy(ch.Stderr(), stderr) }()
		out.Wait()
		err := cmd.Wait()
		s.mu.Lock()
		delete(s.procs, cmd)
		s.mu.Unlock()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				sendSignal(ch, ws.Signal())
				return
			}
		}
		sendStatus(ch, cmd.ProcessState.ExitCode())
	}()
	return nil
}

// lockedChannel serialises Write and CloseWrite on a channel, which
// x/crypto/ssh does not do itself, and refuses writes once the write side is
// closed.
type lockedChannel struct {
	ssh.Channel
	mu     sync.Mutex
	closed bool
}

func (c *lockedChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, io.ErrClosedPipe
	}
	return c.Channel.Write(p)
}

func (c *lockedChannel) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return c.Channel.CloseWrite()
}

func sendStatus(ch ssh.Channel, code int) {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(code))
	_, _ = ch.SendRequest("exit-status", false, b)
	_ = ch.CloseWrite()
}

func sendSignal(ch ssh.Channel, sig syscall.Signal) {
	name := signalName(sig)
	_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
		Signal     string
		CoreDumped bool
		Msg, Lang  string
	}{name, false, "", ""}))
	_ = ch.CloseWrite()
}
