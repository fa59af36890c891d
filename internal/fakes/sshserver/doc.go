// Package sshserver is an in-process SSH server for tests: it speaks the
// real protocol (golang.org/x/crypto/ssh), so the real client code of
// guest/ssh runs against it.
//
// Exec requests run through /bin/sh -c as the current user, in their own
// process group, with the session's environment requests applied; the
// "signal" request signals that process group; the exit status (or the
// signal that ended the command) is reported as OpenSSH does. The SFTP
// subsystem (github.com/pkg/sftp) is served unless Config.NoSFTP is set.
//
// # Concurrency
//
// A Server is safe for concurrent use; every connection and session runs
// in its own goroutines. Close stops the listener, drops every connection
// and kills the commands still running.
package sshserver
