//go:build !unix

package sshserver

import (
	"os"
	"strconv"
	"syscall"
)

// groupAttr: no process groups here.
func groupAttr() *syscall.SysProcAttr { return nil }

// killGroup can only kill the process itself on this platform: every
// signal but the ignorable ones ends it.
func killGroup(p *os.Process, name string) {
	switch name {
	case "KILL", "TERM", "INT", "QUIT", "HUP", "ABRT":
		_ = p.Kill()
	}
}

// signalName is sig's number: no SSH names here.
func signalName(sig syscall.Signal) string { return strconv.Itoa(int(sig)) }
