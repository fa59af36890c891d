package ipam

import "github.com/managedvm/managedvm/internal/limit"

// The checks of names and owners run on every call, before the driver's
// work, so they have a fast path: a value of printable ASCII (0x20 to
// 0x7e) within the length limit is valid by limit's rules (valid UTF-8, no
// control character), and is recognized eight bytes at a time (limit.PrintableASCII). Anything
// else (empty, too long, non-ASCII, a control byte) goes to limit.Name or
// limit.Key, which decide, and word the error.

// printableASCII reports whether s holds 1 to max bytes, all of them
// printable ASCII.
func printableASCII(s string, max int) bool {
	return len(s) != 0 && len(s) <= max && limit.PrintableASCII(s)
}

func checkName(field, v string) error {
	if printableASCII(v, limit.MaxName) {
		return nil
	}
	return limit.Name("", field, v)
}

func checkKey(field, v string) error {
	if printableASCII(v, limit.MaxKey) {
		return nil
	}
	return limit.Key("", field, v)
}
