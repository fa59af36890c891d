// Package testkit holds the helpers every conformance suite and driver
// test shares, so that they check errors the same way.
package testkit

import (
	"testing"

	"github.com/managedvm/managedvm/errs"
)

// WantCode fails the test unless err carries code (errs.OK: err is nil).
// what says which call it was.
func WantCode(t testing.TB, what string, err error, code errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != code {
		t.Errorf("%s: code %v (%v), want %v", what, got, err, code)
	}
}

// MustCode is WantCode that stops the test.
func MustCode(t testing.TB, what string, err error, code errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != code {
		t.Fatalf("%s: code %v (%v), want %v", what, got, err, code)
	}
}

// Bounded fails the test if err's message is longer than max bytes or
// holds a control character: no message may grow with its input or carry a
// raw newline into a log.
func Bounded(t testing.TB, what string, err error, max int) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if len(msg) > max {
		t.Errorf("%s: message of %d bytes (limit %d): %.200s...", what, len(msg), max, msg)
	}
	for _, r := range msg {
		if r < 0x20 || r == 0x7f {
			t.Errorf("%s: control character %q in message %.200q", what, r, msg)
			break
		}
	}
}
