// Package winrm is the guest transport for Windows guests over WinRM
// (WS-Management), built on github.com/masterzen/winrm's SOAP messages,
// github.com/Azure/go-ntlmssp (NTLM over HTTPS) and
// github.com/bodgit/ntlmssp (NTLM with message sealing over HTTP): New
// returns a *guest.Executor over a *Driver.
//
//	ex, err := winrm.New("203.0.113.10", guest.Password(`CORP\ops`, pw), &winrm.Options{CACertPEM: ca})
//	out, err := guest.Output(ctx, ex, guest.Command{Args: []string{"Get-Service", "WinRM"}})
//
// # Dialer
//
// Dialer is a guest.Dialer (for enroll.Config.Dialer), the counterpart
// of ssh.Dialer: it reaches a Windows target at its public IP over HTTPS
// with NTLM (unless DialerConfig.Options say otherwise, or OptionsFor per
// target), on Options.Port or else 5986 (5985 with Options.HTTP), a port
// that must be among the target's Ports when it lists any. It
// authenticates before it returns (one "exit 0" command, whose shell is
// kept for the next command), so refused credentials are
// errs.Unauthenticated from Dial.
//
// # Security
//
// HTTPS on port 5986 with certificate verification is the default: against
// Options.CACertPEM, a certificate pinned by its SHA-256
// (Options.PinnedCertSHA256), or the system's roots. A certificate that
// fails verification (unknown authority, wrong name, expired, pin
// mismatch) stops the request before any credential is sent.
// InsecureSkipVerify accepts any certificate (tests only).
//
// Plain HTTP (port 5985, Options.HTTP) works with the Windows default
// AllowUnencrypted=false: after the NTLM handshake, every message is
// sealed as MS-WSMV 2.2.9.1.1 describes (a multipart/encrypted body of
// protocol application/HTTP-SPNEGO-session-encrypted: the SOAP envelope
// RC4-encrypted under the client-to-server sealing key of the NTLMv2
// session, with an HMAC-MD5 signature and sequence number), and every
// answer must come back sealed under the server-to-client keys with a
// valid signature; an answer that does not is refused. Each lane's
// connection has its own NTLM session. A connection the guest no longer
// knows (reopened, or after a service restart) gets 401 and is
// authenticated again before the message is resent, which is safe because
// nothing ran. Sealing costs an extra empty round trip per new connection
// (pywinrm's handshake) and RC4 over each message. HTTP does not
// authenticate the guest by a certificate, and RC4 is old: prefer HTTPS.
//
// NTLM (user, DOMAIN\user or user@domain) is the default authentication,
// HTTP Basic an option (Options.Basic). Basic cannot be sealed, so Basic
// over plain HTTP sends the password and every command readable to the
// network; New refuses it unless Options.InsecureUnencryptedBasic is set,
// and the guest must have AllowUnencrypted=true. The password never
// appears in errors or logs, and scripts and arguments never appear in
// logs or errors.
//
// # Configuration limits
//
// New checks its arguments and returns errs.InvalidArgument, before any
// network I/O, for: a host that is not an IP address (IPv6 with or
// without brackets, no zone) or a DNS name (labels of letters, digits, '-'
// and '_', 1-63 bytes each, MaxHost (253) bytes in all, no port: that is
// Options.Port), with the same rule for Options.TLSServerName; a Port
// outside 0-65535; a user name that is empty, longer than MaxUserName
// (256) bytes, not UTF-8, holds a control character or one of
// "/[]:;|=,+*?<> (which Windows forbids in account names), or more than
// one '\' or '@' or an empty part, or starts or ends with white space; an
// empty password, one longer than MaxPassword (1024) bytes, not UTF-8 or
// holding a NUL, CR or LF (the limits every transport shares are
// guest.Credentials.Validate); a CACertPEM that
// holds no PEM block, a block other than CERTIFICATE, or a certificate
// that does not parse; a PinnedCertSHA256 that is not 32 bytes;
// conflicting options (TLS options with HTTP, InsecureSkipVerify with a CA
// or pin, Basic over HTTP without InsecureUnencryptedBasic); negative
// OperationTimeout; an EnvelopeSize below MinEnvelopeSize (16384). The
// message quotes the offending value (never the password) with
// limit.Quote, cut to 64 bytes, as every other message quotes user names
// and hosts.
//
// # Commands
//
// Run sends every Command as one PowerShell script through
// powershell.exe -EncodedCommand (guest.PowerShellScript, preceded by
// $ProgressPreference = 'SilentlyContinue'), so nothing is ever quoted by
// the caller: Args run with the call operator, each argument a
// single-quoted literal. Cmdlets therefore receive Args as positional
// values, never as parameter names ("-Raw" is a string); use Script for
// named parameters. RunCmd sends a cmd.exe command line as is. A command
// line holds at most MaxCommandLine (8191) characters, so a script may be
// about 3,000 characters long: upload longer scripts and run the file.
// Standard input is streamed through WinRM Send messages (a nil Stdin is
// an empty one) while output comes through Receive. When Run returns, no
// request for its command is still in flight: a Send still unanswered once
// the output is complete gets a few seconds, then is cancelled. Stdin is
// not read after Run returns, but a Read already blocked in it is not
// interrupted (Run does not wait for it). Exit codes come back as
// *guest.ExitError. The error records powershell.exe serializes on stderr
// ("#< CLIXML" ...) are decoded to their text in Result.Stderr and
// ExitError.Stderr; a Command.Stderr writer receives the stream as sent.
// Sudo is Unimplemented: connect as an administrator.
//
// Shells are reused: up to Options.MaxIdleShells stay open between
// commands (a negative value opens a new shell per command). A reused shell
// that the guest has dropped meanwhile is replaced once, which is safe
// because a fault to the Command request means nothing ran.
//
// Each request travels on a connection of its own "lane": NTLM
// authenticates connections, and its three legs must share one, which a
// shared pool cannot promise under concurrency. An authenticated lane
// serves its next requests without a new handshake.
//
// # Uploads
//
// Upload streams the content as base64 lines through the standard input of
// one PowerShell command, in Send messages that fit Options.EnvelopeSize,
// into a temporary file beside the target; a second command checks the
// file's SHA-256 with Get-FileHash and moves it over the target
// (Move-Item -Force). On any failure, cancellation included, the
// temporary file is removed. UploadOptions.Mode is ignored (the file gets
// its directory's ACL); Owner is Unimplemented.
//
// # Errors
//
// Invalid commands and options are errs.InvalidArgument and send nothing.
// A refused login (HTTP 401) is errs.Unauthenticated with a message saying
// NTLM (or Basic) was refused. A refused server certificate (TLS
// verification failed: unknown authority, wrong name, expired, pin
// mismatch) is errs.PermissionDenied, the code of SSH's host-key
// mismatch, not Unavailable: retrying cannot help. Over sealed HTTP, an
// answer that fails its NTLM check, or comes back unsealed, is
// errs.OutcomeUnknown (the request was delivered and may have run). A
// non-zero exit is *guest.ExitError (errs.FailedPrecondition). A
// connection lost while a command runs wraps
// guest.ErrSessionLost (errs.OutcomeUnknown); a guest that cannot be
// reached before anything started is errs.Unavailable. Canceling the
// context, or Command.Timeout / guest.Options.Timeout passing, signals terminate
// to the remote command, deletes its shell and returns errs.Canceled or
// errs.DeadlineExceeded. WS-Management faults are errs.FailedPrecondition
// (errs.PermissionDenied for access denied). After Close, Run and Upload
// return guest.ErrClosed.
//
// # Options, As
//
// Options.Executor holds the *guest.Executor's options: the default
// command timeout (guest.Options.Timeout, which replaced Options.Timeout)
// and telemetry; Options.Logger gets the driver's own records and, unless
// Options.Executor sets one, the per-call ones. Executor.As reaches the
// *Driver, whose RunCmd runs a cmd.exe command line (it checks its own
// arguments, the closed state and the context, as it is reached past the
// Executor, and records no span).
//
// # Concurrency
//
// A Driver and its Executor are safe for concurrent use: each command
// runs in a shell of its own. The shared winrm.DefaultParameters of the
// client library is never used or changed; every Driver builds its own
// parameters.
package winrm
