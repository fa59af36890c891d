// Package ssh is the guest transport for Linux guests over SSH
// (golang.org/x/crypto/ssh, uploads through github.com/pkg/sftp): Dial
// returns a *guest.Executor over a *Driver.
//
//	hk, err := ssh.KnownHosts(knownHostsData) // or PinnedKey, TrustOnFirstUse
//	ex, err := ssh.Dial(ctx, ssh.Config{Addr: "203.0.113.7", Credentials: cred, HostKeys: hk},
//		&ssh.Options{Executor: &guest.Options{Timeout: 5 * time.Minute}})
//	defer ex.Close()
//	out, err := guest.Output(ctx, ex, guest.Command{Args: []string{"uname", "-r"}})
//
// # Host keys
//
// Host keys are always verified: Config.HostKeys is required, and the zero
// policy is refused. KnownHosts checks OpenSSH known_hosts data the host
// application supplies (at most MaxKnownHosts bytes), read as OpenSSH reads
// it (github.com/skeema/knownhosts over golang.org/x/crypto/ssh/knownhosts
// does the host matching):
//   - plain host names and addresses, and hashed ones ("|1|...", what
//     ssh-keyscan -H, ssh-keygen -H and Debian's HashKnownHosts yes write);
//   - patterns with * and ?, several names on a line, and negation (!);
//   - "[host]:port" entries for a port other than 22; when the port has
//     none, an entry for the host without a port still vouches for the key
//     it lists (a different key there leaves the host unknown), as OpenSSH
//     does;
//   - @cert-authority lines: a host certificate signed by a listed
//     authority is accepted when it is a host certificate, names the
//     dialed host (the address as given, for example 127.0.0.1) among its
//     principals or names none, and is valid now; a certificate whose
//     authority is not listed is judged by its key alone;
//   - @revoked lines: a revoked key, or a certificate whose key or authority
//     is revoked, is refused (HostKeyError.Revoked).
//
// The server is asked for the host key types that the entries for it hold
// (host certificates first when an authority is listed for it; never the
// type of a revoked key), then for the other types, so a server with
// ed25519, ECDSA and RSA keys shows one that the entries can check, and a
// server without any of them shows a key that is then refused as a
// mismatch, not a failed handshake. PinnedKey trusts one key (or SHA256
// fingerprint; by fingerprint the server shows its preferred key type,
// which must be the pinned key's). TrustOnFirstUse judges listed hosts
// like KnownHosts and accepts a host that has no entry at all after
// handing a known_hosts line for its key ("[host]:port type key", which
// the real ssh accepts with StrictHostKeyChecking=yes) to a callback (for
// new VMs, whose keys are unknown), but never replaces a known key and
// never accepts a revoked one. A refused key is a *HostKeyError
// (errs.PermissionDenied) naming the host and the fingerprints: unknown,
// mismatch (possible man-in-the-middle), revoked, or a refused host
// certificate. InsecureAcceptAnyHostKey is the only way to accept any key,
// and its name says what it is.
//
// # Authentication and sudo
//
// Credentials may hold a private key (with a passphrase), a password
// (password and keyboard-interactive methods), or both, the key first.
// Command.Sudo runs the command line under "sudo -S" for users other than
// root: sudo's prompt is a random string, the password is written to
// standard input only when that prompt appears (never on a command line),
// and the caller's Stdin reaches the command only after sudo has started
// it; sudo's own messages never reach Result.Stderr.
//
// # Commands
//
// One connection serves every command (at most Options.MaxSessions at
// once, 10 by default, like OpenSSH's MaxSessions); a connection that
// drops is dialed again on the next call, or at once when it ends while a
// session is being opened (nothing ran yet). Opening a session waits at
// most until the context ends, even on a server that never answers. Each command is the line
// guest.ShellCommandLine builds, run by the login shell (which must be a
// POSIX-style shell: sh, dash, bash, ksh, zsh), which first prints its
// process id on stderr (the executor strips it). Canceling the
// context, a deadline, or Command.Timeout (guest.Options.Timeout by
// default) stops the remote command: SIGTERM
// and then SIGKILL, each sent both as an SSH signal request and as a kill
// of the command's process group from a second session (OpenSSH ignores
// signal requests on root logins), then the session is closed; Run returns
// within about Options.KillGrace and a half.
//
// # Uploads
//
// Upload writes a dot-named temporary file beside the target, sets its
// mode (and owner), then renames it over the target (posix-rename over
// SFTP, mv over exec), so readers see the old content or the new, never a
// part. Without the sftp subsystem (or with Options.NoSFTP) it uses sh,
// cat, chmod and mv. Uploads write as the login user.
//
// # Limits
//
// Dial checks the whole Config and Options before any network I/O, so a
// malformed one is errs.InvalidArgument and never a name lookup or a
// connection: Config.Addr is "host", "host:port", "[ipv6]" or
// "[ipv6]:port" with an IP address or a DNS name (at most MaxHostLen
// bytes, labels of letters, digits, '-' and '_') and a decimal port from 1
// to 65535; the credentials keep the limits every transport shares
// (guest.Credentials.Validate: a user name of 1 to MaxUsernameLen bytes of
// printable UTF-8, a password or passphrase of at most MaxPasswordLen
// bytes without NUL, CR or LF, a private key of at most MaxPrivateKeyLen
// bytes), and more: the user name has no white space and the private key
// must parse; Options.DialTimeout and KillGrace are not negative (zero
// means the default);
// Options.MaxSessions is 0 (default 10) to MaxMaxSessions. Known_hosts data
// is at most MaxKnownHosts bytes, each line as OpenSSH's format has it. An
// offending value is quoted in the message (control characters escaped)
// and cut to 64 bytes (limit.Quote), as user names, hosts and sudo's
// messages are in every other error; secrets never are.
//
// # Errors
//
// A malformed Config, Options or known_hosts data is errs.InvalidArgument
// (see Limits); a refused login is errs.Unauthenticated; an untrusted host
// key a *HostKeyError (errs.PermissionDenied: retrying cannot help); an
// unreachable host errs.Unavailable. A non-zero exit is a *guest.ExitError; a command ended
// by a signal a *SignalError (errs.OutcomeUnknown); a connection lost
// mid-command wraps guest.ErrSessionLost (errs.OutcomeUnknown); a session
// the server would not open (nothing ran) is errs.Unavailable; a refused
// sudo is errs.PermissionDenied. Errors and logs never contain arguments,
// scripts, passwords or keys.
//
// # Options, As
//
// Options.Executor holds the *guest.Executor's options: the default
// command timeout (guest.Options.Timeout, which replaced CommandTimeout)
// and telemetry; Options.Logger gets the driver's own records (connects,
// reconnects) and, unless Options.Executor sets one, the per-call ones.
// Executor.As reaches the *Driver (Addr).
//
// # Concurrency
//
// A Driver and its Executor are safe for concurrent use. Dialer adapts Dial to the
// orchestrator's guest.Dialer (enroll.Config.Dialer).
package ssh
