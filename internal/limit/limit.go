// Package limit holds the input limits every portable type enforces, so
// that every driver of a contract (in memory, PostgreSQL, a vendor API)
// accepts and refuses exactly the same values, and the way untrusted values
// are quoted in error messages and logs.
//
// The classes, and their limits:
//
//	Name   pool, zone, profile, provider, template and network names:
//	       1 to 128 bytes of valid UTF-8, no control characters
//	Key    owners, request keys, VM IDs and other identifiers:
//	       1 to 255 bytes of valid UTF-8, no control characters
//	Label  attribute and label keys: as Name
//	Text   free-form values (attribute values, descriptions):
//	       0 to 4096 bytes of valid UTF-8, no NUL
//
// A value outside its class is an InvalidArgument error naming the field
// and quoting the value with Quote; nothing is changed.
package limit

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
)

// The limits, in bytes.
const (
	MaxName  = 128
	MaxKey   = 255
	MaxLabel = 128
	MaxText  = 4096
	// QuoteBytes is how much of an untrusted value Quote keeps.
	QuoteBytes = 64
)

// Quote quotes s for an error message or a log line: Go-quoted (every
// control character escaped), with at most QuoteBytes bytes between the
// quotes (a whole number of escaped characters), and an ellipsis after the
// closing quote when cut. The result is never longer than QuoteBytes+5
// bytes, whatever s holds.
func Quote(s string) string {
	q := strconv.Quote(s)
	if len(q) <= QuoteBytes+2 {
		return q
	}
	var b strings.Builder
	b.Grow(QuoteBytes + 5)
	b.WriteByte('"')
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		var e string
		if r == utf8.RuneError && size == 1 {
			e = strconv.Quote(s[:1])
		} else {
			e = strconv.QuoteRune(r)
		}
		e = e[1 : len(e)-1] // without its quotes
		if r == '\'' {
			e = "'"
		} else if r == '"' {
			e = `\"`
		}
		if n+len(e) > QuoteBytes {
			break
		}
		b.WriteString(e)
		n += len(e)
		s = s[size:]
	}
	b.WriteString(`"…`)
	return b.String()
}

// Name checks a name (see the package doc). field names it in the error,
// for example "pool name".
func Name(op, field, v string) error { return check(op, field, v, 1, MaxName, true) }

// Key checks a key, owner or identifier.
func Key(op, field, v string) error { return check(op, field, v, 1, MaxKey, true) }

// Label checks a label or attribute key.
func Label(op, field, v string) error { return check(op, field, v, 1, MaxLabel, true) }

// Text checks a free-form value of at most max bytes (MaxText when max is
// 0 or less): valid UTF-8 without NUL; control characters such as newlines
// are allowed, and are escaped whenever the value is quoted.
func Text(op, field, v string, max int) error {
	if max <= 0 {
		max = MaxText
	}
	return check(op, field, v, 0, max, false)
}

// Printable reports why v is not printable UTF-8 ("" if it is).
func Printable(v string) string {
	if PrintableASCII(v) {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= utf8.RuneSelf {
			return printableRunes(v[i:])
		}
		if c < 0x20 || c == 0x7f {
			return "has a control character"
		}
	}
	return ""
}

// printableRunes is Printable past the ASCII prefix.
func printableRunes(v string) string {
	for i, r := range v {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(v[i:]); size == 1 {
				return "is not valid UTF-8"
			}
		}
		if unicode.IsControl(r) {
			return "has a control character"
		}
	}
	return ""
}

// Why reports why v breaks the limits (min..max bytes; printable or only
// NUL-free valid UTF-8), or "" when it keeps them.
func Why(v string, min, max int, printable bool) string {
	switch {
	case len(v) < min && min == 1:
		return "is empty"
	case len(v) < min:
		return "is shorter than " + strconv.Itoa(min) + " bytes"
	case len(v) > max:
		return "is longer than " + strconv.Itoa(max) + " bytes"
	}
	if printable {
		return Printable(v)
	}
	if textASCII(v) {
		return ""
	}
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	for i := 0; i < len(v); i++ {
		if v[i] == 0 {
			return "has a NUL byte"
		}
	}
	return ""
}

func check(op, field, v string, min, max int, printable bool) error {
	why := Why(v, min, max, printable)
	if why == "" {
		return nil
	}
	if v == "" {
		return errs.Errorf(errs.InvalidArgument, op, "%s %s", field, why)
	}
	return errs.Errorf(errs.InvalidArgument, op, "%s %s %s", field, Quote(v), why)
}

// Cut shortens s to at most n bytes, at a character boundary, ending in an
// ellipsis when it was cut (for messages the library itself keeps, such as
// a journal's error).
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ell = "…"
	n -= len(ell)
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ell
}
