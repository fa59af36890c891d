// Package winrmserver is an in-process WinRM (WS-Management) server for
// tests: enough of the protocol for github.com/masterzen/winrm's messages
// and managedvm's guest/winrm executor.
//
// It serves HTTPS with a certificate signed by a throw-away CA
// (CACertPEM, CertSHA256; CertNotBefore/CertNotAfter make expired or
// not-yet-valid certificates) or plain HTTP. Authentication is NTLM, per
// connection as http.sys does it: an unauthenticated request gets 401
// "WWW-Authenticate: Negotiate", the NEGOTIATE a CHALLENGE (NTLMv2 with
// extended session security, a timestamp; SIGN, SEAL and KEY_EXCH only
// when the NEGOTIATE asks for them, as Windows does; never LM_KEY), and
// the AUTHENTICATE's NTLMv2 proof is verified against the one account's
// password, so a wrong password is refused; its MIC is checked when the
// client announces one. Basic is optional.
//
// # Message encryption over plain HTTP
//
// Over plain HTTP the server behaves like a Windows guest with its
// default AllowUnencrypted=false: an unsealed message (even right after a
// valid NTLM handshake) and a Basic login are answered HTTP 401 and not
// processed, as Windows does (hashicorp/packer#6205 for NTLM without
// sealing, diyan/pywinrm#59 and #258 for Basic); Options.AllowUnencrypted
// accepts them. A sealed message (MS-WSMV 2.2.9.1.1, multipart/encrypted
// with protocol application/HTTP-SPNEGO-session-encrypted) is really
// opened: the exported session key is derived from the handshake
// (NTLMv2 SessionBaseKey, decrypting the client's random key under
// KEY_EXCH), the message is decrypted with the client-to-server RC4
// sealing key and its HMAC-MD5 signature and sequence number are checked
// (MS-NLMP 3.4); the answer is sealed and signed with the server-to-client
// keys. A message that fails the check is answered 400 and not processed
// (Windows' exact answer to a bad signature is not established), and its
// connection must authenticate again. An empty POST after the handshake
// is answered 200, as pywinrm expects. Stats counts SealedRequests,
// SealFailures and UnencryptedRefused. It implements Create (shell), Command, Send (stdin), Receive
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
