package guest

import "testing"

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"9.4", "9", 1}, {"9", "9.4", -1}, {"10", "9", 1}, {"9", "10", -1},
		{"22.04", "22.04", 0}, {"8.10", "8.9", 1}, {"", "1", -1}, {"1", "", 1},
		{"10.0.20348", "10.0", 1}, {"bookworm", "bullseye", -1}, {"11", "11", 0},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestSupportedList(t *testing.T) {
	if got := supportedList(map[string]string{"rhel": "8", "debian": "11", "alpine": ""}); got != "alpine, debian 11+, rhel 8+" {
		t.Fatalf("supportedList = %q", got)
	}
}
