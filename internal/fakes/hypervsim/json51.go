package hypervsim

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"unicode/utf16"
)

// obj is a PowerShell hashtable: ConvertTo-Json writes its keys in the
// order the .NET Hashtable enumerates them, which is neither insertion
// nor alphabetical order. writeJSON mimics that with an order fixed by a
// hash of the key, so a reader that depends on key order breaks here as
// it would on Windows.
type obj map[string]any

// writeJSON writes v as Windows PowerShell 5.1's ConvertTo-Json -Compress
// writes it (JavaScriptSerializer: no white space; ", \ and control
// characters escaped, and <, >, &, ' as \u003c, \u003e, \u0026, \u0027;
// an empty array []; $null null), followed by the templates' own step:
// every non-ASCII UTF-16 code unit as \uXXXX in lower-case hex.
// Values are obj, []any, []obj, []string, string, bool and nil.
func writeJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		writeString(b, x)
	case obj:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return bucket(keys[i]) < bucket(keys[j]) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeJSON(b, x[k])
		}
		b.WriteByte('}')
	case []obj:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case []string:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, e)
		}
		b.WriteByte(']')
	default:
		panic(fmt.Sprintf("hypervsim: no JSON for %T", v))
	}
}

func bucket(k string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(k))
	return h.Sum32()
}

func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20, r == '<', r == '>', r == '&', r == '\'':
			fmt.Fprintf(b, `\u%04x`, r)
		case r < 0x80:
			b.WriteRune(r)
		default:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(b, `\u%04x`, u)
			}
		}
	}
	b.WriteByte('"')
}
