package limit

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"pool-a", `"pool-a"`},
		{"a\nb\x00", `"a\nb\x00"`},
		{strings.Repeat("x", 64), `"` + strings.Repeat("x", 64) + `"`},
		{strings.Repeat("x", 65), `"` + strings.Repeat("x", 64) + `"…`},
		{strings.Repeat("x", 63) + "é", `"` + strings.Repeat("x", 63) + `"…`},
		{strings.Repeat("\x00", 100), `"` + strings.Repeat(`\x00`, 16) + `"…`},
		{strings.Repeat("\n", 100), `"` + strings.Repeat(`\n`, 32) + `"…`},
		{strings.Repeat(`"`, 100), `"` + strings.Repeat(`\"`, 32) + `"…`},
		{strings.Repeat("'", 100), `"` + strings.Repeat("'", 64) + `"…`},
		{strings.Repeat("\xff", 100), `"` + strings.Repeat(`\xff`, 16) + `"…`},
	} {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%.20q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestClasses(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"name ok", Name("op", "pool name", "pool-a"), true},
		{"name empty", Name("op", "pool name", ""), false},
		{"name 128", Name("op", "pool name", strings.Repeat("n", MaxName)), true},
		{"name 129", Name("op", "pool name", strings.Repeat("n", MaxName+1)), false},
		{"name NUL", Name("op", "pool name", "a\x00b"), false},
		{"name newline", Name("op", "pool name", "a\nb"), false},
		{"name DEL", Name("op", "pool name", "a\x7fb"), false},
		{"name C1", Name("op", "pool name", "a\u0085b"), false},
		{"name bad utf8", Name("op", "pool name", "a\xffb"), false},
		{"name U+FFFD itself", Name("op", "pool name", "a\uFFFDb"), true},
		{"name unicode", Name("op", "pool name", "zürich-1"), true},
		{"key 255", Key("op", "owner", strings.Repeat("k", MaxKey)), true},
		{"key 256", Key("op", "owner", strings.Repeat("k", MaxKey+1)), false},
		{"text empty", Text("op", "value", "", 0), true},
		{"text newline", Text("op", "value", "a\nb", 0), true},
		{"text NUL", Text("op", "value", "a\x00b", 0), false},
		{"text long", Text("op", "value", strings.Repeat("t", MaxText+1), 0), false},
		{"text max", Text("op", "value", "abcd", 3), false},
	} {
		if (c.err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, c.err, c.ok)
		}
		if c.err != nil && errs.CodeOf(c.err) != errs.InvalidArgument {
			t.Errorf("%s: code %v", c.name, errs.CodeOf(c.err))
		}
	}
}

func TestMessageBounded(t *testing.T) {
	err := Key("ipam.Allocate", "owner", strings.Repeat("\n", 100000))
	if len(err.Error()) > 400 {
		t.Fatalf("message of %d bytes", len(err.Error()))
	}
	if strings.ContainsAny(err.Error(), "\n\x00") {
		t.Fatalf("control character in %q", err.Error())
	}
}

func FuzzQuote(f *testing.F) {
	f.Add("pool-a")
	f.Add(strings.Repeat("é", 40))
	f.Add("\x00\n\xff")
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		if !strings.HasSuffix(q, "…") {
			if u, err := strconv.Unquote(q); err != nil || u != s {
				t.Fatalf("Quote(%q) = %s does not unquote to its input", s, q)
			}
		} else if u, err := strconv.Unquote(strings.TrimSuffix(q, "…")); err != nil || !strings.HasPrefix(s, u) {
			t.Fatalf("Quote(%q) = %s is not a quoted prefix (%v)", s, q, err)
		}
		if len(q) > QuoteBytes+5 {
			t.Fatalf("Quote grew to %d bytes", len(q))
		}
		for _, r := range q {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character in %q", q)
			}
		}
		if !utf8.ValidString(q) {
			t.Fatalf("invalid UTF-8 in %q", q)
		}
	})
}

func FuzzName(f *testing.F) {
	f.Add("pool-a")
	f.Add("a\x00")
	f.Add(strings.Repeat("x", 200))
	f.Fuzz(func(t *testing.T, s string) {
		err := Name("op", "name", s)
		ok := len(s) >= 1 && len(s) <= MaxName && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
			return r < 0x20 || (r >= 0x7f && r < 0xa0)
		})
		if (err == nil) != ok {
			t.Fatalf("Name(%q) = %v, want ok=%v", s, err, ok)
		}
		if err != nil {
			if errs.CodeOf(err) != errs.InvalidArgument {
				t.Fatalf("code %v", errs.CodeOf(err))
			}
			if len(err.Error()) > 400 {
				t.Fatalf("message of %d bytes", len(err.Error()))
			}
		}
	})
}
