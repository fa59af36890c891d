package limit

// The checks run on every call of every portable type, so the common case
// (plain ASCII) is recognised eight bytes at a time; anything else goes to
// the exact rune-by-rune checks, which decide and word the answer.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// le64 is the little-endian word of an 8-byte string (one load).
func le64(w string) uint64 {
	_ = w[7]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// notPrintable sets the high bit of each byte of v that is not printable
// ASCII: its own high bit set (not ASCII), below 0x20 (with the high bit
// clear, v-0x20 borrows into the byte's high bit), or 0x7f (v^0x7f is zero
// there). A borrow can also flag a higher byte of a word that holds a bad
// byte already; a word of printable bytes is never flagged.
func notPrintable(v uint64) uint64 {
	del := v ^ (0x7f * ones)
	return v | ((v - 0x20*ones) &^ v) | ((del - ones) &^ del)
}

// notText sets the high bit of each byte of v that is not ASCII or is
// NUL (same borrow caveat as notPrintable).
func notText(v uint64) uint64 { return v | ((v - ones) &^ v) }

// PrintableASCII reports whether every byte of s is printable ASCII
// (0x20 to 0x7e); true for "".
func PrintableASCII(s string) bool {
	n := len(s)
	if n < 8 {
		for i := 0; i < n; i++ {
			if c := s[i]; c < 0x20 || c >= 0x7f {
				return false
			}
		}
		return true
	}
	// Whole words, then the last eight bytes again (overlapping the last
	// whole word) instead of a byte loop for the tail; the flags are or'ed
	// together and tested once.
	var bad uint64
	for i := 0; i+8 <= n; i += 8 {
		bad |= notPrintable(le64(s[i : i+8]))
	}
	bad |= notPrintable(le64(s[n-8:]))
	return bad&highs == 0
}

// textASCII reports whether every byte of s is ASCII other than NUL.
func textASCII(s string) bool {
	n := len(s)
	if n < 8 {
		for i := 0; i < n; i++ {
			if c := s[i]; c == 0 || c >= 0x80 {
				return false
			}
		}
		return true
	}
	var bad uint64
	for i := 0; i+8 <= n; i += 8 {
		bad |= notText(le64(s[i : i+8]))
	}
	bad |= notText(le64(s[n-8:]))
	return bad&highs == 0
}
