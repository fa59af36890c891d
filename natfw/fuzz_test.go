package natfw_test

import (
	"net/netip"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
)

// printable reports whether s keeps natfw's character rule for owners and
// descriptions: valid UTF-8 without control characters.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// maxQuoted is the longest limit.Quote output: every one of its
// QuoteBytes bytes may print as a 4-byte escape ("\x10"), plus the quotes
// and the ellipsis.
const maxQuoted = 2 + 4*limit.QuoteBytes + len("…")

// maxMessage bounds a Validate message, which quotes at most two values
// (owner and description) around fixed text.
const maxMessage = 2*maxQuoted + 100

// FuzzRuleValidate: Validate never panics, refuses with InvalidArgument
// and a bounded message, and accepts a rule exactly when its owner and
// description keep the limits (the rest of the rule is valid).
func FuzzRuleValidate(f *testing.F) {
	for _, s := range []string{"", "vm-1", "a\x00b", "a\nb", "a\xffb", strings.Repeat("o", natfw.MaxOwner), strings.Repeat("o", natfw.MaxOwner+1), strings.Repeat("é", 61)} {
		f.Add(s, "note", uint8(1), uint8(1))
		f.Add("vm-1", s, uint8(natfw.MaxPorts), uint8(natfw.MaxSources))
	}
	f.Add("vm-1", "", uint8(natfw.MaxPorts+1), uint8(1))
	f.Add("vm-1", "", uint8(1), uint8(natfw.MaxSources+1))
	f.Fuzz(func(t *testing.T, owner, desc string, nports, nsources uint8) {
		r := natfw.Rule{
			Owner: owner, Description: desc,
			Public: netip.MustParseAddr("203.0.113.1"), Local: netip.MustParseAddr("10.0.0.1"),
		}
		for i := range int(nports) {
			r.Ports = append(r.Ports, natfw.Port{Protocol: natfw.TCP, Number: uint16(1 + i)})
		}
		for i := range int(nsources) {
			r.Sources = append(r.Sources, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32))
		}
		err := r.Validate()
		want := len(owner) >= 1 && len(owner) <= natfw.MaxOwner && printable(owner) &&
			len(desc) <= natfw.MaxDescription && printable(desc) &&
			nports >= 1 && int(nports) <= natfw.MaxPorts && nsources >= 1 && int(nsources) <= natfw.MaxSources
		if (err == nil) != want {
			t.Fatalf("Validate(owner %q, description %q, %d ports, %d sources) = %v, want ok=%v", owner, desc, nports, nsources, err, want)
		}
		if err != nil {
			testkit.WantCode(t, "Validate", err, errs.InvalidArgument)
			testkit.Bounded(t, "Validate", err, maxMessage)
		}
		if oerr := natfw.ValidateOwner(owner); (oerr == nil) != (len(owner) >= 1 && len(owner) <= natfw.MaxOwner && printable(owner)) {
			t.Fatalf("ValidateOwner(%q) = %v", owner, oerr)
		} else if oerr != nil {
			testkit.Bounded(t, "ValidateOwner", oerr, maxQuoted+60)
		}
	})
}

// FuzzParsePort: ParsePort never panics; what it accepts prints back as
// itself (lower-cased), and its errors are InvalidArgument and bounded.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"tcp/22", "UDP/53", "tcp/0", "sctp/1", "tcp/65536", "tcp/", "/22", "tcp/22\n", strings.Repeat("x", 16<<10)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := natfw.ParsePort(s)
		if err != nil {
			testkit.WantCode(t, "ParsePort", err, errs.InvalidArgument)
			testkit.Bounded(t, "ParsePort", err, maxQuoted+60)
			return
		}
		if q, err := natfw.ParsePort(p.String()); err != nil || q != p {
			t.Fatalf("ParsePort(%q) = %v, but ParsePort(%q) = %v, %v", s, p, p.String(), q, err)
		}
	})
}
