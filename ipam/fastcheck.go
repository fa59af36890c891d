package ipam

import "github.com/managedvm/managedvm/internal/limit"

// The checks of names and owners run on every call, before the driver's
// work, so they have a fast path: a value of printable ASCII (0x20 to
// 0x7e) within the length limit is valid by limit's rules (valid UTF-8, no
// control character), and is recognized eight bytes at a time. Anything
// else (empty, too long, non-ASCII, a control byte) goes to limit.Name or
// limit.Key, which decide, and word the error.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// printableASCII reports whether s holds 1 to max bytes, all of them
// printable ASCII.
func printableASCII(s string, max int) bool {
	n := len(s)
	if n == 0 || n > max {
		return false
	}
	i := 0
	for ; i+8 <= n; i += 8 {
		w := s[i : i+8] // of known length: one 8-byte load, no bounds checks
		v := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		// A byte with its high bit set (not ASCII), below 0x20 (with the
		// high bit clear, v-0x20 borrows into the byte's high bit), or
		// 0x7f (v^0x7f is zero there).
		del := v ^ (0x7f * ones)
		if (v|((v-0x20*ones)&^v)|((del-ones)&^del))&highs != 0 {
			return false
		}
	}
	for ; i < n; i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
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
