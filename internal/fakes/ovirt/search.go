package ovirt

import (
	"errors"
	"strconv"
	"strings"
)

// term is one condition of a search: field op value.
type term struct {
	field, op, value string
}

// query is a parsed search: a disjunction of conjunctions, a page
// number (0: none) and a sort.
type query struct {
	any      [][]term
	page     int
	sortBy   string
	sortDesc bool
}

var errSyntax = errors.New("syntax error")

// tokens splits a search string on white space, keeping "quoted values".
func tokens(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inQ := false
	for _, r := range s {
		switch {
		case r == '"':
			inQ = !inQ
		case !inQ && (r == ' ' || r == '\t'):
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if inQ {
		return nil, errSyntax
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, nil
}

// parseQuery reads the subset of the engine's search language the fake
// understands: "field=value" terms (=, !=, <, >, <=, >=; * as a wildcard
// in = and !=), "and" (or juxtaposition), "or", "page N" and
// "sortby field [asc|desc]". fields lists the searchable fields.
func parseQuery(s string, fields map[string]bool) (query, error) {
	var q query
	toks, err := tokens(s)
	if err != nil {
		return q, err
	}
	cur := []term{}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch strings.ToLower(t) {
		case "and":
			continue
		case "or":
			q.any = append(q.any, cur)
			cur = []term{}
			continue
		case "page":
			if i+1 >= len(toks) {
				return q, errSyntax
			}
			n, err := strconv.Atoi(toks[i+1])
			if err != nil || n < 1 {
				return q, errSyntax
			}
			q.page = n
			i++
			continue
		case "sortby":
			if i+1 >= len(toks) || !fields[strings.ToLower(toks[i+1])] {
				return q, errSyntax
			}
			q.sortBy = strings.ToLower(toks[i+1])
			i++
			if i+1 < len(toks) {
				switch strings.ToLower(toks[i+1]) {
				case "asc":
					i++
				case "desc":
					q.sortDesc = true
					i++
				}
			}
			continue
		}
		// field op value, possibly split over tokens ("name = x").
		expr := t
		for !hasOp(expr) || strings.HasSuffix(expr, "=") || strings.HasSuffix(expr, "<") || strings.HasSuffix(expr, ">") {
			if i+1 >= len(toks) {
				return q, errSyntax
			}
			i++
			expr += toks[i]
		}
		tm, ok := splitTerm(expr)
		if !ok || !fields[tm.field] {
			return q, errSyntax
		}
		cur = append(cur, tm)
	}
	q.any = append(q.any, cur)
	return q, nil
}

func hasOp(s string) bool { return strings.ContainsAny(s, "=<>") }

func splitTerm(s string) (term, bool) {
	for _, op := range [...]string{"!=", "<=", ">=", "=", "<", ">"} {
		if i := strings.Index(s, op); i > 0 {
			return term{field: strings.ToLower(s[:i]), op: op, value: s[i+len(op):]}, i+len(op) <= len(s)
		}
	}
	return term{}, false
}

// empty says whether q has no condition (it matches everything).
func (q query) empty() bool { return len(q.any) == 1 && len(q.any[0]) == 0 }

// match says whether get's fields satisfy q.
func (q query) match(get func(field string) string, caseSensitive bool) bool {
	for _, all := range q.any {
		ok := true
		for _, t := range all {
			if !t.holds(get(t.field), caseSensitive) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (t term) holds(v string, caseSensitive bool) bool {
	want := t.value
	if !caseSensitive {
		v, want = strings.ToLower(v), strings.ToLower(want)
	}
	a, errA := strconv.ParseInt(v, 10, 64)
	b, errB := strconv.ParseInt(want, 10, 64)
	numeric := errA == nil && errB == nil
	switch t.op {
	case "=":
		return wildcard(want, v)
	case "!=":
		return !wildcard(want, v)
	case "<":
		if numeric {
			return a < b
		}
		return v < want
	case ">":
		if numeric {
			return a > b
		}
		return v > want
	case "<=":
		if numeric {
			return a <= b
		}
		return v <= want
	case ">=":
		if numeric {
			return a >= b
		}
		return v >= want
	}
	return false
}

// wildcard matches s against p where * stands for any run of characters.
func wildcard(p, s string) bool {
	if !strings.Contains(p, "*") {
		return p == s
	}
	parts := strings.Split(p, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i := 1; i < len(parts)-1; i++ {
		j := strings.Index(s, parts[i])
		if j < 0 {
			return false
		}
		s = s[j+len(parts[i]):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
