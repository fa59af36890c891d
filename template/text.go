package template

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/managedvm/managedvm/errs"
)

// problems collects the reasons an input is rejected; they become one
// InvalidArgument error. Messages name fields and indexes, never values that
// may be secret (passwords, file contents, commands).
type problems struct {
	op   string
	list []string
}

func (p *problems) addf(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return errs.New(errs.InvalidArgument, p.op, strings.Join(p.list, "; "))
}

func invalidf(op, format string, args ...any) error {
	return errs.Errorf(errs.InvalidArgument, op, format, args...)
}

func internalf(op, format string, args ...any) error {
	return errs.Errorf(errs.Internal, op, format, args...)
}

// textProblem says why s cannot be carried unchanged by every format this
// package writes (YAML read by PyYAML, JSON, XML 1.0, INI), or "" if it can.
// multiline allows line feeds and carriage returns.
func textProblem(s string, multiline bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == '\t':
		case r == '\n' || r == '\r':
			if !multiline {
				return "contains a line break"
			}
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return "contains a control character"
		case r == 0x2028 || r == 0x2029:
			return "contains a Unicode line or paragraph separator"
		case r == 0xfeff:
			return "contains a byte order mark"
		case r == 0xfffe || r == 0xffff:
			return "contains a Unicode noncharacter"
		}
	}
	return ""
}

// checkText records a problem when s is not acceptable text.
func (p *problems) checkText(field, s string, multiline bool) {
	if why := textProblem(s, multiline); why != "" {
		p.addf("%s %s", field, why)
	}
}

func isASCIIAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// quoteName quotes a name for an error message, shortened so that a hostile
// input cannot make messages huge.
func quoteName(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return fmt.Sprintf("%q", s)
}
