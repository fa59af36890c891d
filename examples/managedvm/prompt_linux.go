package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/managedvm/managedvm/errs"
)

// terminalPrompt asks for a password on the controlling terminal with
// echo off.
func terminalPrompt(label string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", errs.New(errs.InvalidArgument, "", "no terminal to ask for the password on: give -password-file FILE (or - for standard input)")
	}
	defer tty.Close()
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", errs.New(errs.InvalidArgument, "", "no terminal to ask for the password on: give -password-file FILE (or - for standard input)")
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(tty, label)
	line, err := bufio.NewReader(tty).ReadString('\n')
	fmt.Fprintln(tty)
	if err != nil {
		return "", errs.Wrap(errs.InvalidArgument, "", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errs.New(errs.InvalidArgument, "", "the password is empty")
	}
	return line, nil
}
