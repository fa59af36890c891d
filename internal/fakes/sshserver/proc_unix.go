//go:build unix

package sshserver

import (
	"os"
	"strconv"
	"syscall"
)

var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP,
	"ILL": syscall.SIGILL, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
	"QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// groupAttr starts a command in a process group of its own, so a signal
// reaches everything it started.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup sends the named signal (SSH names: "TERM", "KILL", ...) to p's
// process group; unknown names are ignored.
func killGroup(p *os.Process, name string) {
	if sig, ok := signals[name]; ok {
		_ = syscall.Kill(-p.Pid, sig)
	}
}

// signalName is the SSH name of sig ("TERM"), or its number.
func signalName(sig syscall.Signal) string {
	for n, s := range signals {
		if s == sig {
			return n
		}
	}
	return strconv.Itoa(int(sig))
}
