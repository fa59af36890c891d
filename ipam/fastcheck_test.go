package ipam

import (
	"strings"
	"testing"

	"github.com/managedvm/managedvm/internal/limit"
)

// printableASCII must never accept what limit refuses, and must accept
// every printable ASCII value limit accepts (else the fast path is lost).
func checkFast(t *testing.T, s string) {
	for _, max := range []int{limit.MaxName, limit.MaxKey} {
		fast := printableASCII(s, max)
		slow := limit.Key("", "", s) == nil && len(s) <= max
		ascii := true
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				ascii = false
			}
		}
		if fast && !slow {
			t.Fatalf("printableASCII(%q, %d) accepts what limit refuses", s, max)
		}
		if ascii && slow && !fast {
			t.Fatalf("printableASCII(%q, %d) refuses printable ASCII", s, max)
		}
	}
}

func TestPrintableASCII(t *testing.T) {
	base := "vsphere-prod/42110000-9c3e-5e6b-8f0a-000000000001"
	for _, s := range []string{"", "a", " ", "~", base, strings.Repeat("x", 128), strings.Repeat("x", 129), strings.Repeat("x", 255), strings.Repeat("x", 256)} {
		checkFast(t, s)
	}
	// Every byte value at every position of a 17-byte value (two words
	// and a tail).
	for pos := range 17 {
		for c := range 256 {
			b := []byte(strings.Repeat("a", 17))
			b[pos] = byte(c)
			checkFast(t, string(b))
			if want := c >= 0x20 && c < 0x7f; printableASCII(string(b), 128) != want {
				t.Fatalf("printableASCII with byte %#x at %d = %v, want %v", c, pos, !want, want)
			}
		}
	}
}

func FuzzPrintableASCII(f *testing.F) {
	f.Add("vsphere-prod/4211")
	f.Add("zone\x1fa\x7f\x80")
	f.Fuzz(func(t *testing.T, s string) { checkFast(t, s) })
}
