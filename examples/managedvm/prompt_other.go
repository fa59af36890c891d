//go:build !linux

package main

import "github.com/managedvm/managedvm/errs"

// terminalPrompt is only written for Linux terminals here.
func terminalPrompt(string) (string, error) {
	return "", errs.New(errs.Unimplemented, "", "no password prompt on this system: give -password-file FILE (or - for standard input)")
}
