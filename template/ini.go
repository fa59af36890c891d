package template

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"

	"github.com/managedvm/managedvm/errs"
)

// INIFile is an INI document: sections of key=value entries, in order.
// Entries before the first section are not supported: every entry lives in
// a section ("DEFAULT" for oslo.config files such as cloudbase-init's).
type INIFile struct {
	Sections []INISection
}

// INISection is one [Name] section.
type INISection struct {
	Name    string
	Entries []INIEntry
}

// INIEntry is one key=value line.
type INIEntry struct {
	Key, Value string
}

var (
	iniKeyRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	iniSectionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_. -]*[A-Za-z0-9_.-]$|^[A-Za-z0-9_]$`)
)

// Get returns the value of key in section, and whether it is there.
func (f INIFile) Get(section, key string) (string, bool) {
	for _, s := range f.Sections {
		if s.Name != section {
			continue
		}
		for _, e := range s.Entries {
			if e.Key == key {
				return e.Value, true
			}
		}
	}
	return "", false
}

// Encode writes f as "[section]" lines followed by "key=value" lines, a
// blank line between sections. Section names are letters, digits, '_', '.',
// '-' and inner spaces; keys are letters, digits, '_', '.', '-'; values are
// one line of text without control characters and without leading or
// trailing white space (INI readers trim it). Duplicate sections or keys,
// and anything else, are InvalidArgument: an encoded file always parses back
// to f.
func (f INIFile) Encode() ([]byte, error) {
	const op = "template.INIFile.Encode"
	var b bytes.Buffer
	sections := map[string]bool{}
	for i, s := range f.Sections {
		if !iniSectionRE.MatchString(s.Name) {
			return nil, invalidf(op, "section name %s is not allowed", quoteName(s.Name))
		}
		if sections[s.Name] {
			return nil, invalidf(op, "section %s appears twice", quoteName(s.Name))
		}
		sections[s.Name] = true
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("[" + s.Name + "]\n")
		keys := map[string]bool{}
		for _, e := range s.Entries {
			if !iniKeyRE.MatchString(e.Key) {
				return nil, invalidf(op, "[%s] key %s is not allowed", s.Name, quoteName(e.Key))
			}
			if keys[e.Key] {
				return nil, invalidf(op, "[%s] key %s appears twice", s.Name, quoteName(e.Key))
			}
			keys[e.Key] = true
			if why := textProblem(e.Value, false); why != "" {
				return nil, invalidf(op, "[%s] %s value %s", s.Name, e.Key, why)
			}
			if strings.ContainsRune(e.Value, '\t') {
				return nil, invalidf(op, "[%s] %s value contains a tab", s.Name, e.Key)
			}
			if strings.TrimSpace(e.Value) != e.Value {
				return nil, invalidf(op, "[%s] %s value has leading or trailing white space", s.Name, e.Key)
			}
			b.WriteString(e.Key + "=" + e.Value + "\n")
		}
	}
	return b.Bytes(), nil
}

// ParseINI parses an INI document: [section] headers, key=value (or
// key: value) entries with white space around keys and values trimmed,
// and '#' or ';' comment lines. Continuation lines, entries outside a
// section, lines without '=' and duplicate sections or keys are
// InvalidArgument.
func ParseINI(data []byte) (INIFile, error) {
	const op = "template.ParseINI"
	var f INIFile
	var cur *INISection
	keys := map[string]bool{}
	sections := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		raw := strings.TrimSuffix(sc.Text(), "\r")
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case raw[0] == ' ' || raw[0] == '\t':
			return INIFile{}, invalidf(op, "line %d: continuation lines are not supported", n)
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return INIFile{}, invalidf(op, "line %d: unterminated section header", n)
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			if name == "" {
				return INIFile{}, invalidf(op, "line %d: empty section name", n)
			}
			if sections[name] {
				return INIFile{}, invalidf(op, "line %d: section %s appears twice", n, quoteName(name))
			}
			sections[name] = true
			f.Sections = append(f.Sections, INISection{Name: name})
			cur = &f.Sections[len(f.Sections)-1]
			keys = map[string]bool{}
		default:
			if cur == nil {
				return INIFile{}, invalidf(op, "line %d: entry outside a section", n)
			}
			i := strings.IndexAny(line, "=:")
			if i <= 0 {
				return INIFile{}, invalidf(op, "line %d: not a key=value entry", n)
			}
			key, value := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
			if keys[key] {
				return INIFile{}, invalidf(op, "line %d: key %s appears twice in [%s]", n, quoteName(key), cur.Name)
			}
			keys[key] = true
			cur.Entries = append(cur.Entries, INIEntry{Key: key, Value: value})
		}
	}
	if err := sc.Err(); err != nil {
		return INIFile{}, errs.Wrap(errs.InvalidArgument, op, err)
	}
	return f, nil
}
