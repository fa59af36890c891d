package provider

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
)

// checkRejection fails unless err is nil or a bounded InvalidArgument
// error of at most 300 bytes (the conformance suite's bound) without
// control characters.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("code %v (%v), want InvalidArgument", errs.CodeOf(err), err)
	}
	msg := err.Error()
	if len(msg) > 300 {
		t.Fatalf("message of %d bytes", len(msg))
	}
	for _, r := range msg {
		if r < 0x20 || r == 0x7f {
			t.Fatalf("control character in %q", msg)
		}
	}
}

func printable(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || (r >= 0x7f && r < 0xa0)
	})
}

// FuzzProvisionSpecValidate: Validate never panics, refuses only with a
// bounded InvalidArgument, and accepts only fields within their limits.
func FuzzProvisionSpecValidate(f *testing.F) {
	f.Add("k1", "web-1", "debian-12", "z1", "vlan-100", "web-1.example.com", "spec")
	f.Add("", "a\x00b", "t", "z", "", "bad_host", "")
	f.Add(strings.Repeat("k", 256), strings.Repeat("n", 129), "\xff", "z\n", "n", strings.Repeat("h", 64), "s")
	f.Fuzz(func(t *testing.T, key, name, tmpl, zone, network, host, specName string) {
		s := ProvisionSpec{Key: key, Name: name, Template: tmpl, Zone: zone, Network: Network{Name: network},
			Customization: &Customization{Hostname: host, SpecName: specName}}
		err := s.Validate()
		checkRejection(t, err)
		if err != nil {
			return
		}
		for _, c := range []struct {
			v        string
			max      int
			required bool
		}{{key, limit.MaxKey, true}, {name, limit.MaxName, true}, {tmpl, limit.MaxKey, true}, {zone, limit.MaxName, true},
			{network, limit.MaxName, false}, {specName, limit.MaxName, false}} {
			if !printable(c.v, c.max) || (c.required && strings.TrimSpace(c.v) == "") {
				t.Fatalf("Validate accepted %q (limit %d)", c.v, c.max)
			}
		}
		if host != "" && !hostnameRE.MatchString(host) {
			t.Fatalf("Validate accepted the host name %q", host)
		}
	})
}

// hostnameRE is RFC 1123 as Validate documents it (the 253-byte bound is
// checked apart).
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func FuzzHostname(f *testing.F) {
	f.Add("web-1.example.com")
	f.Add("-a")
	f.Add(strings.Repeat("a.", 127))
	f.Fuzz(func(t *testing.T, h string) {
		want := len(h) <= MaxHostname && hostnameRE.MatchString(h)
		if got := validHostname(h); got != want {
			t.Fatalf("validHostname(%q) = %v, want %v", h, got, want)
		}
	})
}

func FuzzCursor(f *testing.F) {
	f.Add("vc1:42")
	f.Add("")
	f.Add("\x00\xff")
	f.Add(strings.Repeat("9", MaxCursor+1))
	f.Fuzz(func(t *testing.T, c string) {
		err := validCursor("provider.Watch", Cursor(c))
		checkRejection(t, err)
		if want := printable(c, MaxCursor); (err == nil) != want {
			t.Fatalf("validCursor(%q) = %v, want ok=%v", c, err, want)
		}
	})
}

func FuzzListOptions(f *testing.F) {
	f.Add("z1")
	f.Add("a\nb")
	f.Fuzz(func(t *testing.T, zone string) {
		err := ListOptions{Zone: zone}.Validate()
		checkRejection(t, err)
		if want := printable(zone, limit.MaxName); (err == nil) != want {
			t.Fatalf("ListOptions{Zone: %q}.Validate() = %v, want ok=%v", zone, err, want)
		}
	})
}
