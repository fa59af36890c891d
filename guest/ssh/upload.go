package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/pkg/sftp"
	xssh "golang.org/x/crypto/ssh"
)

// Upload writes r to p atomically: a temporary file beside p (a dot file),
// its mode (and owner, with opts.Owner), then a rename over p. It uses
// SFTP when the server offers it and exec (sh, cat, chmod, mv) otherwise.
// On any failure (the context, the reader, the guest) the temporary file is
// removed and p is left as it was.
func (e *Driver) Upload(ctx context.Context, p string, r io.Reader, opts guest.UploadOptions) error {
	mode := opts.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	dir, base := path.Split(p)
	if dir == "" {
		dir = "./"
	}
	tmp := dir + "." + base + ".mvm-" + randomToken()[:12]
	e.mu.Lock()
	noSFTP := e.noSFTP
	e.mu.Unlock()
	if !noSFTP {
		err := e.uploadSFTP(ctx, p, tmp, r, mode, opts.Owner == "")
		if err == nil && opts.Owner != "" {
			// Owner, then rename, through exec (sftp's chown wants ids).
			_, err = e.Run(ctx, guest.Command{Args: []string{"sh", "-c", `chown -- "$1" "$2" && mv -f "$2" "$3"`, "sh", opts.Owner, tmp, p}})
			if err != nil {
				e.removeTemp(tmp)
			}
		}
		if !errors.Is(err, errNoSFTP) {
			return err
		}
		e.mu.Lock()
		e.noSFTP = true
		e.mu.Unlock()
		e.log.Debug("ssh: no sftp subsystem, uploads use exec", "addr", e.addr)
	}
	return e.uploadExec(ctx, p, tmp, r, mode, opts.Owner)
}

var errNoSFTP = errors.New("no sftp subsystem")

// ctxReader fails once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error // the source's own error, if any
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// sftpClient starts an SFTP client on a session of its own, as
// sftp.NewClient does, but opened with newSession and given up (the
// session closed) when ctx ends before the SFTP handshake does.
func (e *Driver) sftpClient(ctx context.Context, client *xssh.Client) (*sftp.Client, error) {
	sess, err := e.newSession(ctx, client)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = sess.Close() })
	defer stop()
	sc, err := sftpOnSession(sess)
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	return sc, nil
}

// sftpOnSession starts the sftp subsystem on sess and a client over it.
func sftpOnSession(sess *xssh.Session) (*sftp.Client, error) {
	w, err := sess.StdinPipe()
	if err != nil {
		return nil, err
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		return nil, err
	}
	return sftp.NewClientPipe(r, &sessionCloser{WriteCloser: w, sess: sess}, sftp.UseConcurrentWrites(true))
}

// sessionCloser closes the SFTP session's channel with the client's
// standard input (sftp.Client.Close closes only that).
type sessionCloser struct {
	io.WriteCloser
	sess *xssh.Session
}

func (s *sessionCloser) Close() error {
	err := s.WriteCloser.Close()
	_ = s.sess.Close()
	return err
}

// uploadSFTP writes the temporary file and, with rename, renames it over p.
func (e *Driver) uploadSFTP(ctx context.Context, p, tmp string, r io.Reader, mode fs.FileMode, rename bool) error {
	release, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	client, err := e.connection(ctx)
	if err != nil {
		return err
	}
	sc, err := e.sftpClient(ctx, client)
	if err != nil {
		if e.isClosed() {
			return guest.ErrClosed
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if strings.Contains(err.Error(), "subsystem request failed") {
			return errNoSFTP
		}
		return errs.Wrap(errs.Unavailable, "", err)
	}
	defer sc.Close()
	stop := context.AfterFunc(ctx, func() { _ = sc.Close() })
	defer stop()
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return e.sftpErr(ctx, err)
	}
	cleanup := func() {
		_ = f.Close()
		if ctx.Err() != nil { // the sftp client is closed: use a fresh one
			e.removeTemp(tmp)
			return
		}
		_ = sc.Remove(tmp)
	}
	src := &ctxReader{ctx: ctx, r: r}
	if _, err := f.ReadFrom(src); err != nil {
		cleanup()
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if src.err != nil {
			return errs.Wrap(errs.Unknown, "", fmt.Errorf("reading the content: %w", src.err))
		}
		return e.sftpErr(ctx, err)
	}
	if err := f.Chmod(mode); err != nil {
		cleanup()
		return e.sftpErr(ctx, err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return e.sftpErr(ctx, err)
	}
	if !rename {
		return nil
	}
	if err := sc.PosixRename(tmp, p); err != nil {
		cleanup()
		return e.sftpErr(ctx, err)
	}
	return nil
}

func (e *Driver) sftpErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if e.isClosed() {
		return guest.ErrClosed
	}
	var se *sftp.StatusError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errs.Wrap(errs.NotFound, "", err)
	case errors.Is(err, fs.ErrPermission):
		return errs.Wrap(errs.PermissionDenied, "", err)
	case errors.As(err, &se):
		return errs.Wrap(errs.FailedPrecondition, "", err)
	}
	return guest.SessionLost("", err)
}

// removeTemp removes a temporary file on a fresh, short context: the
// caller's may be done.
func (e *Driver) removeTemp(tmp string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = e.Run(ctx, guest.Command{Args: []string{"rm", "-f", "--", tmp}})
}

func (e *Driver) uploadExec(ctx context.Context, p, tmp string, r io.Reader, mode fs.FileMode, owner string) error {
	// Create the temporary file (private until the content is whole).
	create := guest.Command{Args: []string{"sh", "-c", `umask 077 && set -C && : > "$1"`, "sh", tmp}}
	if _, err := e.Run(ctx, create); err != nil {
		return err
	}
	src := &ctxReader{ctx: ctx, r: r}
	_, err := e.Run(ctx, guest.Command{Args: []string{"sh", "-c", `cat > "$1"`, "sh", tmp}, Stdin: src})
	if cerr := ctx.Err(); cerr != nil {
		err = cerr
	} else if err == nil && src.err != nil {
		err = errs.Wrap(errs.Unknown, "", fmt.Errorf("reading the content: %w", src.err))
	}
	if err == nil {
		script := `chmod "$1" "$2" && mv -f "$2" "$3"`
		args := []string{"sh", "-c", script, "sh", fmt.Sprintf("%o", mode), tmp, p}
		if owner != "" {
			args = []string{"sh", "-c", `chown -- "$4" "$2" && ` + script, "sh", fmt.Sprintf("%o", mode), tmp, p, owner}
		}
		_, err = e.Run(ctx, guest.Command{Args: args})
	}
	if err != nil {
		e.removeTemp(tmp)
		return err
	}
	return nil
}
