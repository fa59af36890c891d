// Package winrmserver is an in-process WinRM (WS-Management) server for
// tests: enough of the protocol for github.com/masterzen/winrm's messages
// and managedvm's guest/winrm executor.
//
// It serves HTTPS with a certificate signed by a throw-away CA
// (CACertPEM, CertSHA256; CertNotBefore/CertNotAfter make expired or
// not-yet-valid certificates) or plain HTTP. Authentication is NTLM, per
// connection as IIS does it: an unauthenticated request gets 401
// "WWW-Authenticate: Negotiate", the NEGOTIATE a CHALLENGE (no KEY_EXCH,
// no LM_KEY), and the AUTHENTICATE's NTLMv2 proof is verified against the
// one account's password, so a wrong password is refused. Basic is
// optional. It implements Create (shell), Command, Send (stdin), Receive
// (base64 stdout/stderr, CommandState Done with ExitCode, w:TimedOut
// faults after OperationTimeout), Signal (terminate) and Delete, with
// faults for unknown shells, too-large envelopes and command lines over
// 8191 characters.
//
// Commands run through a Handler that sees the decoded PowerShell script
// of "powershell.exe -EncodedCommand" command lines; Requests records
// them so tests can assert exactly what was sent. Interpreter is a
// Handler that runs a small PowerShell subset for real over a host
// directory standing for the guest's drives (see Interpreter); statements
// outside the subset fail loudly instead of pretending.
//
// # Concurrency
//
// A Server is safe for concurrent use; each command runs in its own
// goroutine until it returns or is terminated.
package winrmserver
