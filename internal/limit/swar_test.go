package limit

import (
	"strings"
	"testing"
)

func refPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func refTextASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Every byte value at every position of values from 0 to 25 bytes (short,
// whole words, words and an overlapping tail), against a byte loop.
func TestASCIIFastPaths(t *testing.T) {
	for n := range 26 {
		for pos := range n {
			for c := range 256 {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				s := string(b)
				if got, want := PrintableASCII(s), refPrintableASCII(s); got != want {
					t.Fatalf("PrintableASCII(%q) = %v, want %v", s, got, want)
				}
				if got, want := textASCII(s), refTextASCII(s); got != want {
					t.Fatalf("textASCII(%q) = %v, want %v", s, got, want)
				}
			}
		}
	}
	if !PrintableASCII("") || !textASCII("") {
		t.Fatal(`"" is ASCII`)
	}
}

func FuzzASCIIFastPaths(f *testing.F) {
	f.Add("vsphere-prod/4211")
	f.Add("zone\x1fa\x7f\x80\x00")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := PrintableASCII(s), refPrintableASCII(s); got != want {
			t.Fatalf("PrintableASCII(%q) = %v, want %v", s, got, want)
		}
		if got, want := textASCII(s), refTextASCII(s); got != want {
			t.Fatalf("textASCII(%q) = %v, want %v", s, got, want)
		}
	})
}
